//! What a run leaves once it is over: the result on standard output (or
//! the JSON document with `--json`), the summary on standard error, the
//! trace files, where the store keeps the run and the command that resumes
//! it — and the exit code, which follows from them. Apart from running it
//! ([`execute`](super::execute)) so that what a run says of its end is
//! worded in one place: a resume that starts no run for want of answers
//! ([`no_run`](super::no_run)) names the command that resumes it as a
//! paused run does.

use std::path::Path;

use claude_agent_sdk::orchestration::{
    ExecutionTrace, OrchestrationError, OrchestratorOutput, Pause, Question, RunId,
};

use super::{answers, summary};
use crate::chrome;
use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::redacted_json;
use crate::store::{shell_quote, Location};
use crate::workflow::Workflow;

/// Prints the result (stdout) and the summary (stderr); the exit code follows
/// from them.
pub(super) fn report(
    workflow: &Workflow,
    result: &Result<OrchestratorOutput, OrchestrationError>,
    trace: &ExecutionTrace,
    args: &RunArgs,
    kept: Option<(&Location, RunId)>,
) -> Exit {
    let run_id = kept.map(|(_, run)| run.to_string());
    let redact = |text: &str| workflow.redactor.redact(text).into_owned();
    let redact_json =
        |json: &str| redacted_json::redact_text(&workflow.redactor, json).into_owned();
    let summary = summary::summarize(workflow, trace);
    let exit = match result {
        Ok(output) => {
            if args.output.json {
                let json = serde_json::to_value(output).and_then(|mut value| {
                    if let Some(object) = value.as_object_mut() {
                        object.insert("agents".to_owned(), summary.agents.clone().into());
                        // A failure a tolerant join accepted fails the run's
                        // outcome, as its exit code says; a map's failed
                        // items are listed with the steps that failed.
                        if summary.any_failed {
                            object.insert("success".to_owned(), false.into());
                        }
                        if let Some(serde_json::Value::Array(failures)) = object.get_mut("failures")
                        {
                            failures.extend(summary.item_failures.iter().cloned());
                        }
                    }
                    serde_json::to_string_pretty(&value)
                });
                match json {
                    Ok(json) => outln!("{}", redact_json(&json)),
                    Err(e) => errln!("error: cannot encode the output as JSON: {e}"),
                }
            } else {
                outln!("{}", redact(output.result.trim_end_matches('\n')));
            }
            if summary.any_failed || !output.is_successful() {
                Exit::Failed
            } else {
                Exit::Success
            }
        }
        Err(OrchestrationError::InputRequired(pause)) => {
            if args.output.json {
                let piped = piped_input(pause, args, workflow);
                let value = answers::waiting_document(
                    &pause.questions,
                    answers::answer_command(&pause.questions, piped),
                    kept.map(|(place, run)| (run, resume_command(place, run, &pause.questions))),
                    &summary.agents,
                    trace,
                );
                outln!("{}", redact_json(&value.to_string()));
            }
            Exit::InputRequired
        }
        Err(error) => {
            if args.output.json {
                let value = serde_json::json!({
                    "error": error.to_string(),
                    "success": false,
                    "run_id": run_id,
                    "agents": summary.agents,
                    "execution_trace": trace,
                });
                outln!("{}", redact_json(&value.to_string()));
            }
            Exit::Failed
        }
    };
    if !args.output.quiet {
        errln!();
        err!("{}", summary.text);
    }
    match result {
        Err(OrchestrationError::Cancelled) => {
            let kept = args
                .output
                .trace
                .as_ref()
                .map(|path| format!("; the partial trace is in `{}`", path.display()))
                .unwrap_or_default();
            errln!("cancelled: the run was stopped and its programs killed{kept}");
        }
        Err(OrchestrationError::InputRequired(pause)) => {
            let piped = piped_input(pause, args, workflow);
            err!(
                "{}",
                redact(&answers::waiting_text(&pause.questions, piped))
            );
        }
        Err(error) => {
            let message = error.to_string();
            errln!("error: the run failed: {}", redact(&message));
            if let Some(help) = timeout_help(&message, workflow) {
                errln!("  = help: {help}");
            }
        }
        Ok(_) => {}
    }
    exit
}

/// How to change the limit a timed-out run hit, in the workflow's words.
fn timeout_help(message: &str, workflow: &Workflow) -> Option<String> {
    let file = workflow.path.display();
    if message.contains("run timeout") {
        Some(format!(
            "a group's `timeout` bounds its whole run (no limit unless set); \
             raise it on that group in `{file}`, e.g. timeout = \"10m\""
        ))
    } else if message.contains("timeout") && message.contains("attempt") {
        Some(format!(
            "an agent's `timeout` (or its group's `agent_timeout`) bounds each \
             attempt; raise it in `{file}`, e.g. timeout = \"10m\""
        ))
    } else {
        None
    }
}

/// Writes `--trace` and `--chrome-trace`.
pub(super) fn write_traces(
    workflow: &Workflow,
    trace: &ExecutionTrace,
    args: &RunArgs,
) -> Result<(), String> {
    let write = |path: &Path, json: Result<String, serde_json::Error>| -> Result<(), String> {
        let json = json.map_err(|e| format!("cannot encode `{}`: {e}", path.display()))?;
        std::fs::write(
            path,
            redacted_json::redact_text(&workflow.redactor, &json).as_bytes(),
        )
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    };
    if let Some(path) = &args.output.trace {
        write(path, serde_json::to_string_pretty(trace))?;
    }
    if let Some(path) = &args.output.chrome_trace {
        write(
            path,
            serde_json::to_string(&chrome::chrome_trace(&workflow.name, trace)),
        )?;
    }
    Ok(())
}

/// Says where the run is kept and, when it did not finish, how to resume it
/// (with the answers it waits for, when it asked).
pub(super) fn tell_where_the_run_is(
    location: &Location,
    run: RunId,
    result: &Result<OrchestratorOutput, OrchestrationError>,
    quiet: bool,
) {
    match result {
        Ok(_) if quiet => {}
        Ok(_) => errln!("run {run} is kept in {}", location.describe()),
        Err(OrchestrationError::InputRequired(pause)) => errln!(
            "run {run} is kept in {}; answer and continue it (finished steps are not run \
             again) with:\n  {}",
            location.describe(),
            resume_command(location, run, &pause.questions)
        ),
        Err(_) => errln!(
            "run {run} is kept in {}; resume it with: {}",
            location.describe(),
            resume_command(location, run, &[])
        ),
    }
}

/// What the paused run read from standard input (see
/// [`answers::piped_input`]).
fn piped_input<'p>(pause: &'p Pause, args: &RunArgs, workflow: &Workflow) -> Option<&'p str> {
    let input = pause.input.as_ref()?;
    answers::piped_input(args, workflow, &input.content)
}

/// The command that resumes run `run`, kept in `location`, answering
/// `questions`.
pub(super) fn resume_command(location: &Location, run: RunId, questions: &[Question]) -> String {
    let answers: String = questions
        .iter()
        .map(|question| format!(" --answer {}=ANSWER", shell_quote(&question.id)))
        .collect();
    format!("orchestra resume {run}{}{answers}", location.flag())
}
