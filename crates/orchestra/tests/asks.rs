//! Human input in workflows: `[[flow.asks]]` nodes pause the run for a
//! person's answer. Answers come from `--answer`/`--answers`; on a terminal
//! orchestra prompts and resumes without running finished nodes again;
//! elsewhere it exits 3 with the questions and the command that answers them.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{example, json, on_store, outcome, scratch, write, Terminal};

/// A graph that runs `plan` (counting its runs in `$COUNT`), asks `approve`,
/// and ships on a yes.
const COUNTED: &str = r#"
[flow]
nodes = ["plan", "ship", "hold"]
edges = ["start -> plan -> approve", "ship -> end", "hold -> end"]

[[flow.asks]]
id = "approve"
question = "Ship it?"

[[flow.routes]]
from = "approve"
when = [{ matches = "(?i)^\\s*y", to = "ship" }]
default = "hold"

[[agents]]
id = "plan"
kind = "command"
shell = "echo ran >> \"$COUNT\"; echo the plan"

[[agents]]
id = "ship"
kind = "template"
template = "shipped after {{input}}"

[[agents]]
id = "hold"
kind = "template"
template = "held: {{input}}"
"#;

#[test]
fn without_a_terminal_an_ask_exits_3_with_the_questions_and_the_command_to_answer() {
    let run = outcome(&["run"], &example("graph-ask.toml"), &[]);
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(3), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("input required: the run is waiting for answers to:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[approve] Ship this release? (yes/no)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Release plan for version 1.4.0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("graph-ask.toml --answer approve=ANSWER"),
        "{stderr}"
    );
}

#[test]
fn with_json_an_ask_prints_input_required_and_the_questions() {
    let run = outcome(&["run", "--json"], &example("graph-ask.toml"), &[]);
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(3), "{stderr}");
    let value = json(&stdout);
    assert_eq!(value["success"], false);
    assert_eq!(value["input_required"], true);
    assert_eq!(value["questions"][0]["id"], "approve");
    assert_eq!(value["questions"][0]["node"], "approve");
    assert!(value["questions"][0]["text"]
        .as_str()
        .is_some_and(|text| text.starts_with("Ship this release? (yes/no)")));
    assert!(value["answer_command"]
        .as_str()
        .is_some_and(|command| command.ends_with("--answer approve=ANSWER")));
}

#[test]
fn a_paused_runs_json_names_the_run_and_the_command_that_continues_it() {
    let run = outcome(&["run", "--json"], &example("graph-ask.toml"), &[]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let value = json(&run.stdout);
    let id = value["run_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id.len(), 32, "{value}");
    let command = value["resume_command"].as_str().unwrap_or_default();
    assert!(
        command.starts_with(&format!("orchestra resume {id} "))
            && command.ends_with(" --answer approve=ANSWER"),
        "{value}"
    );
    // The command as printed, answered, continues the paused run.
    let words: Vec<&str> = command.split(' ').skip(1).collect();
    let answered: Vec<String> = words
        .iter()
        .map(|word| word.replace("ANSWER", "yes"))
        .collect();
    let resumed = common::orchestra()
        .args(&answered)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("Shipped"), "{stdout}");
}

#[test]
fn answers_from_flags_and_files_finish_the_run_without_asking() {
    let dir = scratch();
    let lines = write(dir.path(), "answers.txt", "# approvals\napprove=no, wait\n");
    let object = write(dir.path(), "answers.json", r#"{"approve": "yes please"}"#);
    for (flags, expected) in [
        (
            vec!["--answer".to_owned(), "approve=yes".to_owned()],
            "Shipped",
        ),
        (
            vec!["--answers".to_owned(), lines.display().to_string()],
            "On hold (answer: no, wait)",
        ),
        (
            vec!["--answers".to_owned(), object.display().to_string()],
            "(approved: yes please)",
        ),
        (
            vec![
                "--answers".to_owned(),
                lines.display().to_string(),
                "--answer".to_owned(),
                "approve=yes".to_owned(),
            ],
            "(approved: yes)",
        ),
    ] {
        let args: Vec<&str> = std::iter::once("run")
            .chain(flags.iter().map(String::as_str))
            .collect();
        let run = outcome(&args, &example("graph-ask.toml"), &[]);
        let stdout = run.stdout;
        let stderr = run.stderr;
        assert_eq!(run.code, Some(0), "{flags:?}: {stderr}");
        assert!(stdout.contains(expected), "{flags:?}: {stdout}");
    }
}

#[test]
fn an_answers_file_starting_with_a_byte_order_mark_is_read() {
    let dir = scratch();
    let lines = write(dir.path(), "bom.txt", "\u{feff}approve=yes\n");
    let object = write(dir.path(), "bom.json", "\u{feff}{\"approve\": \"yes\"}");
    for file in [lines, object] {
        let shown = file.display().to_string();
        let run = outcome(
            &["run", "--answers", &shown],
            &example("graph-ask.toml"),
            &[],
        );
        assert_eq!(run.code, Some(0), "{shown}: {}", run.stderr);
        assert!(
            run.stdout.contains("(approved: yes)"),
            "{shown}: {}",
            run.stdout
        );
    }
}

#[test]
fn answers_that_name_no_ask_or_are_malformed_are_usage_errors() {
    let dir = scratch();
    let bad = write(dir.path(), "bad.json", r#"{"approve": 3}"#);
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec!["--answer".into(), "aprove=yes".into()],
            "an answer is given for `aprove`, which is not an ask of",
        ),
        (
            vec!["--answer".into(), "approve#1=yes".into()],
            "a first pass asks under `approve`",
        ),
        (
            vec!["--answer".into(), "approve".into()],
            "`--answer approve` is not ID=TEXT",
        ),
        (
            vec!["--answers".into(), bad.display().to_string()],
            "the answer to `approve` is 3, not a string",
        ),
    ];
    for (flags, expected) in cases {
        let args: Vec<&str> = std::iter::once("run")
            .chain(flags.iter().map(String::as_str))
            .collect();
        let run = outcome(&args, &example("graph-ask.toml"), &[]);
        let stderr = run.stderr;
        assert_eq!(run.code, Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn on_a_terminal_the_run_prompts_and_resumes_without_running_finished_nodes_again() {
    let dir = scratch();
    let file = write(dir.path(), "ask.toml", COUNTED);
    let count = dir.path().join("count");
    let store = dir.path().join("runs.db");
    // `script` gives orchestra a terminal for standard input and error.
    let command = format!(
        "'{}' run --store '{}' '{}'",
        env!("CARGO_BIN_EXE_orchestra"),
        store.display(),
        file.display()
    );
    let mut terminal = Terminal::start(&command, &[("COUNT", count.as_os_str())]);
    let started = Instant::now();
    assert!(
        terminal.read_until("[approve] Ship it?", Duration::from_secs(30)),
        "no prompt: {}",
        terminal.seen
    );
    terminal.type_in("yes\n");
    let waited = Duration::from_secs(30).saturating_sub(started.elapsed());
    let Some(status) = terminal.exit_within(waited) else {
        let _ = terminal.child.kill();
        panic!(
            "orchestra did not finish after the answer: {}",
            terminal.seen
        );
    };
    drop(terminal.child.stdin.take());
    std::thread::sleep(Duration::from_millis(50));
    terminal.drain();
    let seen = terminal.seen;
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("shipped after yes"), "{seen}");
    // `plan` ran once: the resumed run reused its output.
    let runs = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "{seen}");
    // The summary covers both halves of the run.
    assert!(
        seen.lines()
            .any(|l| l.starts_with("plan ") && l.trim_end().ends_with("done")),
        "{seen}"
    );
    // The store links the paused run to the one that resumed it, as
    // `orchestra resume` would: the paused run cannot be resumed again.
    let runs = common::stored_runs(&store);
    let (resumed, paused) = (&runs[0], &runs[1]);
    assert_eq!(paused["resumed_by"], resumed["id"], "{runs:#}");
    assert_eq!(resumed["resumes"], paused["id"], "{runs:#}");
    let paused_id = paused["id"].as_str().unwrap_or_default();
    let again = common::orchestra()
        .args(["resume", paused_id, "--answer", "approve=no", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = common::texts(&again);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("resumed already"), "{stderr}");
}

#[test]
fn asks_are_checked_like_nodes() {
    let dir = scratch();
    let nested = write(
        dir.path(),
        "nested.toml",
        r#"
[flow]
sequential = ["inner"]

[[groups]]
id = "inner"
nodes = ["plan"]
edges = ["start -> plan -> approve -> end"]
asks = [{ id = "approve", question = "ok?" }]

[[agents]]
id = "plan"
kind = "template"
template = "x"
"#,
    );
    let run = outcome(&["validate"], &nested, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(2), "{stderr}");
    assert!(
        stderr.contains("ask `approve` is in graph `inner`, which is not the root flow"),
        "{stderr}"
    );

    let typo = write(
        dir.path(),
        "typo.toml",
        r#"
[flow]
nodes = ["plan"]
edges = ["start -> plan -> aprove -> end"]

[[flow.asks]]
id = "approve"
question = "ok?"

[[flow.asks]]
id = "plan"
question = ""

[[agents]]
id = "plan"
kind = "template"
template = "x"
"#,
    );
    let run = outcome(&["validate"], &typo, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown node `aprove` in graph `flow`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `approve`?"), "{stderr}");
    assert!(stderr.contains("`plan` is declared twice"), "{stderr}");
    assert!(
        stderr.contains("ask `plan` has an empty question"),
        "{stderr}"
    );
}

#[test]
fn the_graph_draws_an_ask_with_its_question_and_its_edges() {
    let run = outcome(
        &["graph", "--format", "mermaid"],
        &example("graph-ask.toml"),
        &[],
    );
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    assert!(
        stdout.contains("[\"approve<br/>ask: Ship this release? (yes/no)\"]"),
        "{stdout}"
    );
    assert!(stdout.contains("-- \"default\" -->"), "{stdout}");
}

/// Drafts, then asks `review` until the answer starts with a "y".
const REVIEW_LOOP: &str = r#"
input = "v"

[flow]
nodes = ["draft", "done"]
edges = ["start -> draft", "review -> done -> end"]

[[flow.asks]]
id = "review"
question = "Good enough?"

[[flow.loops]]
body = ["draft", "review"]
until = { matches = "^y" }
max_iterations = 4

[[agents]]
id = "draft"
kind = "command"
shell = 'printf "%s+" "$(cat)"'

[[agents]]
id = "done"
kind = "template"
template = "final: {{input}}"
"#;

#[test]
fn an_ask_in_a_loop_is_answered_pass_by_pass_with_id_hash_n() {
    let dir = scratch();
    let file = write(dir.path(), "review.toml", REVIEW_LOOP);
    let first = outcome(&["run", "--no-store", "--answer", "review=no"], &file, &[]);
    assert_eq!(first.code, Some(3), "{}", first.stderr);
    assert!(
        first.stderr.contains("[review#2]"),
        "the second pass asks under review#2: {}",
        first.stderr
    );
    let both = outcome(
        &[
            "run",
            "--no-store",
            "--answer",
            "review=no",
            "--answer",
            "review#2=yes",
        ],
        &file,
        &[],
    );
    assert_eq!(both.code, Some(0), "{}", both.stderr);
    assert_eq!(both.stdout.trim(), "final: yes");
    let typo = outcome(
        &["run", "--no-store", "--answer", "reveiw#2=yes"],
        &file,
        &[],
    );
    assert_eq!(typo.code, Some(2), "{}", typo.stderr);
}

/// The summary table's rows, from the rule under its header to `total`
/// included, each as its cells.
fn table_rows(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .skip_while(|line| !line.starts_with("-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("total"))
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn an_ask_is_a_row_of_the_summary_and_of_json_agents_and_the_total_adds_up() {
    let file = example("graph-ask.toml");
    for (args, status, code) in [
        (vec!["run", "--answer", "approve=yes"], "answered", 0),
        (vec!["run"], "waiting", 3),
    ] {
        let run = outcome(&args, &file, &[]);
        let stderr = run.stderr;
        assert_eq!(run.code, Some(code), "{stderr}");
        let rows = table_rows(&stderr);
        let names: Vec<&str> = rows.iter().map(|row| row[0].as_str()).collect();
        // In flow order: after the node that feeds it.
        assert_eq!(names, ["plan", "approve", "ship", "hold"], "{stderr}");
        let approve = &rows[1];
        assert_eq!(approve[1], "ask", "{stderr}");
        assert_eq!(approve.last().map(String::as_str), Some(status), "{stderr}");
        let sum: usize = rows
            .iter()
            .filter_map(|row| row[2].parse::<usize>().ok())
            .sum();
        let total = stderr
            .lines()
            .find(|line| line.starts_with("total"))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|cell| cell.parse::<usize>().ok());
        assert_eq!(total, Some(sum), "{stderr}");
        // The log says what the ask did.
        assert!(stderr.contains("approve: asking"), "{stderr}");

        let json_args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let run = outcome(&json_args, &file, &[]);
        assert_eq!(run.code, Some(code), "{}", run.stderr);
        let value = json(&run.stdout);
        let agents = value["agents"].as_array().cloned().unwrap_or_default();
        let ids: Vec<&str> = agents.iter().filter_map(|a| a["id"].as_str()).collect();
        assert_eq!(ids, ["plan", "approve", "ship", "hold"], "{value}");
        assert_eq!(agents[1]["kind"], "ask");
        assert_eq!(agents[1]["status"], status);
        assert_eq!(agents[1]["attempts"], 1);
        if status == "answered" {
            assert_eq!(agents[1]["output"], "yes");
        } else {
            // Waiting is not a failure: no error.
            assert_eq!(agents[1]["error"], serde_json::Value::Null);
        }
    }
}

/// Two asks on parallel branches after a step that answers at once.
const TWO_ASKS: &str = r#"
input = "v"
[flow]
nodes = ["plan", "merge"]
edges = ["start -> plan", "plan -> legal", "plan -> money", "legal -> merge", "money -> merge", "merge -> end"]

[[flow.asks]]
id = "legal"
question = "Legal OK?"

[[flow.asks]]
id = "money"
question = "Budget OK?"

[[agents]]
id = "plan"
kind = "template"
template = "the plan"

[[agents]]
id = "merge"
kind = "template"
template = "merged: {{input}}"
"#;

#[test]
fn asks_ready_together_are_asked_in_one_round() {
    let dir = scratch();
    let file = write(dir.path(), "two.toml", TWO_ASKS);
    let run = outcome(&["run", "--no-store", "--json"], &file, &[]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let mut ids: Vec<String> = json(&run.stdout)["questions"]
        .as_array()
        .unwrap_or_else(|| panic!("questions: {}", run.stdout))
        .iter()
        .map(|question| question["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["legal", "money"]);
    let answered = outcome(
        &[
            "run",
            "--no-store",
            "--answer",
            "legal=yes",
            "--answer",
            "money=fine",
        ],
        &file,
        &[],
    );
    assert_eq!(answered.code, Some(0), "{}", answered.stderr);
    assert!(answered.stdout.contains("merged:"), "{}", answered.stdout);
}

#[test]
fn the_command_to_answer_a_run_fed_on_standard_input_carries_that_input() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "piped.toml",
        r#"
input = "the default"

[flow]
nodes = ["plan", "ship"]
edges = ["start -> plan -> approve", "ship -> end"]

[[flow.asks]]
id = "approve"
question = "Ship it?"

[[flow.routes]]
from = "approve"
when = [{ matches = "(?i)^\\s*y", to = "ship" }]
default = "end"

[[agents]]
id = "plan"
kind = "template"
template = "plan for {{input}}"

[[agents]]
id = "ship"
kind = "template"
template = "shipped {{output.plan}}"
"#,
    );
    let output = common::orchestra()
        .args(["run", "--no-store", "--json"])
        .arg(&file)
        .write_stdin("it's the piped text\n")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("--input 'it'\\''s the piped text\n' --answer approve=ANSWER"),
        "{stderr}"
    );
    let value = json(&String::from_utf8_lossy(&output.stdout));
    let command = value["answer_command"]
        .as_str()
        .unwrap_or_else(|| panic!("no answer_command in {value}"))
        .replace(" --json", "")
        .replace("ANSWER", "yes");
    // The printed command, run as printed (`orchestra` is the binary under
    // test), finishes the same run: on the piped input, not the default.
    let shell = Command::new("sh")
        .args([
            "-c",
            &format!("orchestra() {{ \"$ORCHESTRA\" \"$@\"; }}; {command}"),
        ])
        .env("ORCHESTRA", env!("CARGO_BIN_EXE_orchestra"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&shell.stdout);
    assert_eq!(
        shell.status.code(),
        Some(0),
        "{command}\n{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "shipped plan for it's the piped text",
        "{command}"
    );
}

/// How many runs `store` holds.
fn run_count(store: &std::path::Path) -> usize {
    common::stored_runs(store).as_array().map_or(0, Vec::len)
}

/// Runs `file` with `args` until it pauses (exit 3), kept in `store`: the
/// paused run's id.
fn paused_in(store: &std::path::Path, file: &std::path::Path, args: &[&str]) -> String {
    let file = file.to_str().unwrap_or_default();
    let all: Vec<&str> = ["run", "--json", file]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let paused = on_store(store, &all);
    assert_eq!(paused.code, Some(3), "{}", paused.stderr);
    json(&paused.stdout)["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn resuming_a_paused_run_without_answers_refuses_and_starts_no_run() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let run = paused_in(&store, &example("graph-ask.toml"), &[]);
    assert_eq!(run_count(&store), 1);

    let refused = on_store(&store, &["resume", &run]);
    let stderr = &refused.stderr;
    assert_eq!(refused.code, Some(3), "{stderr}");
    assert_eq!(refused.stdout, "", "{stderr}");
    // The questions, with their text, and how to answer them.
    assert!(
        stderr.contains("[approve] Ship this release? (yes/no)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--answer ID=TEXT") && stderr.contains("--answers FILE"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("orchestra resume {run} "))
            && stderr.contains("--answer approve=ANSWER"),
        "{stderr}"
    );
    // Nothing ran: no summary, and no new run in the store.
    assert!(!stderr.contains("total"), "{stderr}");
    assert_eq!(run_count(&store), 1, "{stderr}");

    // Answered, the same run resumes.
    let answered = on_store(&store, &["resume", &run, "--answer", "approve=yes"]);
    assert_eq!(answered.code, Some(0), "{}", answered.stderr);
    assert!(answered.stdout.contains("Shipped"), "{}", answered.stdout);
}

#[test]
fn resume_json_of_a_paused_run_without_answers_prints_the_pause_as_run_json_does() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = example("graph-ask.toml");
    let shown = file.to_str().unwrap_or_default();
    let paused = on_store(&store, &["run", "--json", shown]);
    assert_eq!(paused.code, Some(3), "{}", paused.stderr);
    let paused = json(&paused.stdout);
    let run = paused["run_id"].as_str().unwrap_or_default().to_owned();

    let refused = on_store(&store, &["resume", "--json", &run]);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    let value = json(&refused.stdout);
    let keys = |value: &serde_json::Value| {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(keys(&value), keys(&paused), "{value}");
    assert_eq!(value["success"], false);
    assert_eq!(value["input_required"], true);
    assert_eq!(value["questions"], paused["questions"], "{value}");
    assert_eq!(value["run_id"], run.as_str(), "{value}");
    assert_eq!(value["resume_command"], paused["resume_command"], "{value}");
    // The steps as the paused run left them.
    let agents = value["agents"].as_array().cloned().unwrap_or_default();
    let status = |id: &str| {
        agents
            .iter()
            .find(|agent| agent["id"] == id)
            .map(|agent| agent["status"].clone())
    };
    assert_eq!(status("plan"), Some("done".into()), "{value}");
    assert_eq!(status("approve"), Some("waiting".into()), "{value}");
    assert!(value["execution_trace"].is_object(), "{value}");
    // Standard error still says it, and no run started.
    assert!(refused.stderr.contains("[approve]"), "{}", refused.stderr);
    assert_eq!(run_count(&store), 1);
}

#[test]
fn a_resume_that_answers_none_of_the_questions_the_run_waits_for_is_refused() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "review.toml", REVIEW_LOOP);
    // The first pass is answered; the run waits on the second.
    let run = paused_in(&store, &file, &["--answer", "review=no"]);
    let refused = on_store(&store, &["resume", &run, "--answer", "review=no"]);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    assert!(refused.stderr.contains("[review#2]"), "{}", refused.stderr);
    assert_eq!(run_count(&store), 1);
    let answered = on_store(&store, &["resume", &run, "--answer", "review#2=yes"]);
    assert_eq!(answered.code, Some(0), "{}", answered.stderr);
    assert_eq!(answered.stdout.trim(), "final: yes");
}

#[test]
fn a_resume_that_answers_some_of_the_questions_goes_on_and_waits_for_the_rest() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "two.toml", TWO_ASKS);
    let run = paused_in(&store, &file, &[]);
    let partly = on_store(&store, &["resume", "--json", &run, "--answer", "legal=yes"]);
    assert_eq!(partly.code, Some(3), "{}", partly.stderr);
    let value = json(&partly.stdout);
    let ids: Vec<&str> = value["questions"]
        .as_array()
        .map(|questions| questions.iter().filter_map(|q| q["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["money"], "{value}");
    let next = value["run_id"].as_str().unwrap_or_default().to_owned();
    assert_ne!(next, run);
    assert_eq!(run_count(&store), 2);
    let done = on_store(&store, &["resume", &next, "--answer", "money=fine"]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stdout.contains("merged:"), "{}", done.stdout);
}

#[test]
fn resume_reads_answers_from_a_file_as_run_does() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let run = paused_in(&store, &example("graph-ask.toml"), &[]);
    let answers = write(dir.path(), "answers.txt", "approve=yes from a file\n");
    let shown = answers.to_str().unwrap_or_default();
    let resumed = on_store(&store, &["resume", &run, "--answers", shown]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert!(
        resumed.stdout.contains("(approved: yes from a file)"),
        "{}",
        resumed.stdout
    );
}
