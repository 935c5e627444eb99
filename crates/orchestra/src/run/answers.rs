//! Human input for a run: the answers given with `--answer ID=TEXT` and
//! `--answers FILE`, the prompt on a terminal, and what is said when a run
//! waits for answers no one can type (exit code 3, and the command that
//! answers).
//!
//! A workflow's `[[flow.asks]]` are nodes that ask a person; the library
//! pauses the run at them (`OrchestrationError::InputRequired`). Answers known
//! before the run are handed to its context, so those asks never pause. On a
//! terminal the run asks for the others and resumes in-process, reusing every
//! finished node's output; elsewhere (CI, pipes, `--json`) nobody can answer,
//! so it stops with code 3 and prints the questions and how to answer them.
//! `resume` of such a run, given no answer to any of its questions where
//! nobody can be asked, says the same and starts no run: a new run would
//! only pause on them again.

use crate::store::shell_quote;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use claude_agent_sdk::orchestration::{ExecutionTrace, Question, RunId};

use crate::cli::RunArgs;
use crate::workflow::graph_model::AskSpec;
use crate::workflow::Workflow;

/// The asks of `workflow` (they belong to its root graph).
#[must_use]
pub fn asks_of(workflow: &Workflow) -> &[AskSpec] {
    workflow
        .flow
        .graph
        .as_deref()
        .map_or(&[][..], |graph| graph.asks.as_slice())
}

/// The answers given on the command line (`run`'s and `resume`'s): those
/// of `--answers FILE` (`file`) first, then each `--answer ID=TEXT`
/// (`flags`, which win over the file), each naming one of the workflow's
/// asks.
///
/// # Errors
/// What is wrong with an answer or the file, in the words of the flags.
pub fn given(
    flags: &[String],
    file: Option<&Path>,
    workflow: &Workflow,
) -> Result<Vec<(String, String)>, String> {
    let mut answers = match file {
        Some(path) => read_file(path)?,
        None => Vec::new(),
    };
    for written in flags {
        let (id, text) = split_answer(written).ok_or_else(|| {
            format!("`--answer {written}` is not ID=TEXT: write for example --answer approve=yes")
        })?;
        answers.push((id, text));
    }
    check(&answers, workflow)?;
    Ok(answers)
}

/// Whether every answer of `answers` is to an ask of `workflow` (an ask
/// inside a loop is asked again under `ID#n` on pass n > 1).
///
/// # Errors
/// The answer that matches no ask, with the asks there are.
fn check(answers: &[(String, String)], workflow: &Workflow) -> Result<(), String> {
    let asks = asks_of(workflow);
    for (id, _) in answers {
        if asks
            .iter()
            .any(|ask| &ask.id == id || ask.id == Question::ask_of(id))
        {
            if let Some(problem) = never_asked(id) {
                return Err(problem);
            }
            continue;
        }
        let file = workflow.path.display();
        if asks.is_empty() {
            return Err(format!(
                "an answer is given for `{id}`, but `{file}` asks nothing (answers are for its `[[flow.asks]]`)"
            ));
        }
        let ids: Vec<&str> = asks.iter().map(|ask| ask.id.as_str()).collect();
        let hint = crate::workflow::suggest_name(id, ids.iter().copied())
            .map_or_else(String::new, |name| format!("; did you mean `{name}`?"));
        return Err(format!(
            "an answer is given for `{id}`, which is not an ask of `{file}` (its asks: {}){hint}",
            ids.iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Why no pass ever asks under `id` (`ID#passes`), when none does: passes
/// count from 1, and a question whose passes are all first passes is asked
/// under its bare id.
fn never_asked(id: &str) -> Option<String> {
    let ask = Question::ask_of(id);
    let passes = id.get(ask.len() + 1..)?;
    let numbers: Vec<u64> = passes
        .split('.')
        .map(|pass| pass.parse().unwrap_or(u64::MAX))
        .collect();
    if numbers.contains(&0) {
        return Some(format!(
            "an answer is given for `{id}`, but passes count from 1: no pass asks under it"
        ));
    }
    numbers.iter().all(|&pass| pass == 1).then(|| {
        format!(
            "an answer is given for `{id}`, but a first pass asks under `{ask}`: answer `{ask}=…`"
        )
    })
}

/// `ID=TEXT` split at its first `=`, with a non-empty id.
fn split_answer(written: &str) -> Option<(String, String)> {
    let (id, text) = written.split_once('=')?;
    let id = id.trim();
    (!id.is_empty()).then(|| (id.to_owned(), text.to_owned()))
}

/// The answers in the file at `path` (see [`parse_answers`]).
fn read_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the answers file `{shown}`: {e}"))?;
    parse_answers(&text, &shown)
}

/// The answers in `text`, the content of answers file `shown`: a JSON object
/// of strings, or `ID=TEXT` lines (blank lines and lines starting with `#`
/// are skipped).
fn parse_answers(text: &str, shown: &str) -> Result<Vec<(String, String)>, String> {
    // Some editors start a UTF-8 file with a byte-order mark: it is not part
    // of the first id (workflow files are read the same way).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("the answers file `{shown}` is not a JSON object: {e}"))?;
        return object
            .into_iter()
            .map(|(id, value)| match value {
                serde_json::Value::String(text) => Ok((id, text)),
                other => Err(format!(
                    "in the answers file `{shown}`, the answer to `{id}` is {other}, not a string: write \"{id}\": \"...\""
                )),
            })
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| {
            split_answer(line).ok_or_else(|| {
                format!(
                    "line {} of the answers file `{shown}` is not ID=TEXT (or the file a JSON object): `{line}`",
                    index + 1
                )
            })
        })
        .collect()
}

/// Whether a person can be asked: standard input and error are a terminal,
/// and the output is not `--json` (which scripts read).
#[must_use]
pub fn can_prompt(args: &RunArgs) -> bool {
    !args.output.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks each question on the terminal (standard error), reading one line
/// per answer from standard input; `None` when the input ends first.
#[must_use]
pub fn prompt(questions: &[Question]) -> Option<Vec<(String, String)>> {
    let stdin = std::io::stdin();
    let mut answers = Vec::new();
    for question in questions {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "\n? [{}] {}", question.id, question.text.trim_end());
        let _ = write!(err, "> ");
        let _ = err.flush();
        drop(err);
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => answers.push((
                question.id.clone(),
                line.trim_end_matches(['\n', '\r']).to_owned(),
            )),
        }
    }
    Some(answers)
}

/// Inputs up to this size go into the command that answers as `--input`;
/// a bigger one is left to the reader, as `--input-file INPUT`.
const MAX_INLINE_INPUT: usize = 4096;

/// The input a run of `args` read from standard input (`input`, its whole
/// input), which running the command again does not have — `None` when it
/// came from `--input`, `--input-file` or the workflow's own `input`.
#[must_use]
pub fn piped_input<'a>(args: &RunArgs, workflow: &Workflow, input: &'a str) -> Option<&'a str> {
    let given = args.input.is_some() || args.input_file.is_some();
    (!given && workflow.default_input.as_deref() != Some(input)).then_some(input)
}

/// The command that runs again with answers to `questions`: this command as
/// it was typed, with an `--answer` per question (and the input it read from
/// standard input, `piped`, which a command typed again does not have) —
/// `None` for `resume` and `fork`, whose run is continued by resuming the
/// new run (see the line that names it).
#[must_use]
pub fn answer_command(questions: &[Question], piped: Option<&str>) -> Option<String> {
    let typed: Vec<String> = std::env::args().skip(1).collect();
    if matches!(typed.first().map(String::as_str), Some("resume" | "fork")) {
        return None;
    }
    let mut words: Vec<String> = vec!["orchestra".to_owned()];
    words.extend(typed.iter().map(|arg| shell_quote(arg)));
    match piped {
        Some(input) if input.len() <= MAX_INLINE_INPUT => {
            words.push(format!("--input {}", shell_quote(input)));
        }
        Some(_) => words.push("--input-file INPUT".to_owned()),
        None => {}
    }
    for question in questions {
        words.push(format!("--answer {}=ANSWER", shell_quote(&question.id)));
    }
    Some(words.join(" "))
}

/// The questions of a waiting run, as text for standard error.
#[must_use]
pub fn waiting_text(questions: &[Question], piped: Option<&str>) -> String {
    let mut text = listed(
        "input required: the run is waiting for answers to:",
        questions,
    );
    match answer_command(questions, piped) {
        Some(command) => {
            text.push_str(&format!(
                "answer them and run again (or run on a terminal to be asked):\n  {command}\n"
            ));
            if command.contains("--input-file INPUT") {
                text.push_str("  (INPUT: a file holding what this run read from standard input)\n");
            }
        }
        None => text.push_str("answer them by resuming the run named below\n"),
    }
    text
}

/// What `resume` says of stored run `run`, paused on `questions`, when it is
/// given no answer to any of them (`given`: the answers it is given) and
/// nobody can be asked: it is not resumed — a new run would only pause on
/// them again —, and `resume` (the command that resumes it, answering
/// them) says how to answer.
#[must_use]
pub fn unanswered_text(
    run: RunId,
    questions: &[Question],
    given: &[(String, String)],
    resume: &str,
) -> String {
    let mut text = listed(
        &format!("input required: run {run} is waiting for answers to:"),
        questions,
    );
    let why = if given.is_empty() {
        "no answer is given, and nobody can be asked (not on a terminal, or `--json`)".to_owned()
    } else {
        let ids: Vec<String> = given.iter().map(|(id, _)| format!("`{id}`")).collect();
        format!(
            "the answers given (to {}) answer none of them",
            ids.join(", ")
        )
    };
    text.push_str(&format!(
        "{why}: resuming it would only ask again, so no run starts\n\
         answer them with `--answer ID=TEXT` (repeatable) or `--answers FILE` (a JSON \
         object, or ID=TEXT lines):\n  {resume}\n"
    ));
    text
}

/// What `run --json` prints when a run pauses, and `resume --json` when it
/// does not resume a paused run for want of answers: the `questions`, the
/// command that runs the workflow again answering them (`answer`, for
/// `run`), the run the store keeps and the command that resumes it
/// answering them (`kept`), the steps' outcomes (`agents`) and what ran
/// (`trace`).
#[must_use]
pub fn waiting_document(
    questions: &[Question],
    answer: Option<String>,
    kept: Option<(RunId, String)>,
    agents: &[serde_json::Value],
    trace: &ExecutionTrace,
) -> serde_json::Value {
    let (run_id, resume_command) = kept
        .map(|(run, command)| (run.to_string(), command))
        .unzip();
    serde_json::json!({
        "success": false,
        "input_required": true,
        "questions": questions,
        "answer_command": answer,
        "run_id": run_id,
        "resume_command": resume_command,
        "agents": agents,
        "execution_trace": trace,
    })
}

/// `heading` and a line per question, `[ID] text` (the text's further lines
/// indented under it).
fn listed(heading: &str, questions: &[Question]) -> String {
    let mut text = format!("{heading}\n");
    for question in questions {
        let mut lines = question.text.trim_end().lines();
        text.push_str(&format!(
            "  [{}] {}\n",
            question.id,
            lines.next().unwrap_or_default()
        ));
        for line in lines {
            let indent = if line.trim().is_empty() { "" } else { "      " };
            text.push_str(&format!("{indent}{line}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_to_answer_carries_piped_input_inline_or_as_a_file() {
        let questions = vec![Question::new("approve", "Ship it?")];
        let small = answer_command(&questions, Some("two words")).unwrap_or_default();
        assert!(
            small.ends_with(" --input 'two words' --answer approve=ANSWER"),
            "{small}"
        );
        let big = "x".repeat(MAX_INLINE_INPUT + 1);
        let command = answer_command(&questions, Some(&big)).unwrap_or_default();
        assert!(
            command.ends_with(" --input-file INPUT --answer approve=ANSWER"),
            "{command}"
        );
        let text = waiting_text(&questions, Some(&big));
        assert!(
            text.contains("INPUT: a file holding what this run read"),
            "{text}"
        );
        let none = answer_command(&questions, None).unwrap_or_default();
        assert!(!none.contains("--input"), "{none}");
    }

    #[test]
    fn answers_split_at_the_first_equals_sign() {
        assert_eq!(
            split_answer("approve=yes = sure"),
            Some(("approve".to_owned(), "yes = sure".to_owned()))
        );
        assert_eq!(split_answer("=x"), None);
        assert_eq!(split_answer("approve"), None);
    }

    #[test]
    fn answers_for_passes_no_run_asks_under_are_refused() {
        assert_eq!(never_asked("review"), None);
        assert_eq!(never_asked("review#2"), None);
        assert_eq!(never_asked("review#2.1"), None);
        assert_eq!(never_asked("review#1.3"), None);
        let first = never_asked("review#1").unwrap_or_default();
        assert!(first.contains("answer `review=…`"), "{first}");
        assert!(never_asked("review#1.1").is_some());
        let zero = never_asked("review#0").unwrap_or_default();
        assert!(zero.contains("count from 1"), "{zero}");
        assert!(never_asked("review#2.0").is_some());
    }

    #[test]
    fn an_answers_file_may_start_with_a_byte_order_mark() {
        let expected = vec![("approve".to_owned(), "yes".to_owned())];
        for text in ["\u{feff}approve=yes\n", "\u{feff}{\"approve\": \"yes\"}"] {
            assert_eq!(
                parse_answers(text, "a.txt"),
                Ok(expected.clone()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("graph-ask.toml"), "graph-ask.toml");
        assert_eq!(shell_quote("my file"), "'my file'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
