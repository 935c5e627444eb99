//! `--json` for scripts: besides the library's whole output, `agents`
//! gives every agent's and group's outcome by id, nested ones and failures
//! included; and `run`, `resume` and `fork` print one JSON document in every
//! outcome — a refusal (exit 2) and a resume with nothing to resume too;
//! `runs --json` prints one when it cannot list the runs.

mod common;

use std::path::Path;

use common::{gated, json, outcome, resume_id, scratch, write};

#[test]
fn json_gives_every_agents_outcome_by_id_nested_ones_and_failures_included() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "outcomes.toml",
        r#"
[flow]
sequential = ["first", "checks", "last"]
retries = 0

[[groups]]
id = "checks"
parallel = ["ok", "bad"]
join = "any"

[[agents]]
id = "first"
kind = "command"
command = ["echo", "one"]

[[agents]]
id = "ok"
kind = "command"
command = ["echo", "fine"]

[[agents]]
id = "bad"
kind = "command"
shell = "echo 'no space left' >&2; exit 1"

[[agents]]
id = "last"
kind = "template"
template = "{{output.ok}}"
"#,
    );
    let run = outcome(&["run", "--json"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let value = json(&run.stdout);
    let agents = value["agents"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = agents.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids, ["first", "checks", "ok", "bad", "last"], "{value}");
    let by_id = |id: &str| {
        agents
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_id("first")["status"], "done");
    assert_eq!(by_id("first")["output"], "one");
    assert_eq!(by_id("first")["attempts"], 1);
    assert_eq!(by_id("checks")["group"], true);
    assert_eq!(by_id("checks")["kind"], "parallel");
    assert_eq!(by_id("ok")["depth"], 2);
    assert_eq!(by_id("ok")["output"], "fine");
    assert_eq!(by_id("bad")["status"], "failed");
    assert_eq!(by_id("bad")["output"], serde_json::Value::Null);
    assert!(
        by_id("bad")["error"]
            .as_str()
            .is_some_and(|e| e.contains("exit code 1") && e.contains("no space left")),
        "{value}"
    );
    assert_eq!(by_id("last")["output"], "fine");
    assert!(by_id("last")["usage"].is_object());
    assert!(value["execution_trace"].is_object());
}

/// Runs `orchestra ARGS --store STORE` to its end: its exit code, standard
/// output and standard error.
fn on_store(store: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let ran = common::on_store(store, args);
    (ran.code, ran.stdout, ran.stderr)
}

/// The one JSON document standard output holds (anything else, or nothing,
/// fails the test).
fn document(stdout: &str, stderr: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| {
        panic!("standard output is not one JSON document ({e}): {stdout:?}\n{stderr}")
    })
}

/// Checks that `stdout` is a refusal's document, exit 2: not a success,
/// `refused`, the reason as `error` (which contains `reason`), and the run
/// it names as `run_id` (`None`: `null`); and that standard error still says
/// the reason as it did without `--json`.
fn assert_refused(outcome: &(Option<i32>, String, String), reason: &str, run: Option<&str>) {
    let (code, stdout, stderr) = outcome;
    assert_eq!(*code, Some(2), "{stderr}");
    let value = document(stdout, stderr);
    assert_eq!(value["success"], false, "{value}");
    assert_eq!(value["refused"], true, "{value}");
    assert!(
        value["error"].as_str().is_some_and(|e| e.contains(reason)),
        "`{reason}` not in {value}"
    );
    assert_eq!(value["run_id"], serde_json::json!(run), "{value}");
    assert!(stderr.contains(reason), "{stderr}");
}

#[test]
fn resume_json_of_a_run_that_succeeded_says_there_is_nothing_to_resume() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "done.toml", common::ONE_AGENT);
    common::run_kept(&store, &file);
    let runs = common::stored_runs(&store);
    let run = runs[0]["id"].as_str().unwrap_or_default().to_owned();

    let (code, stdout, stderr) = on_store(&store, &["resume", "--json", &run[..10]]);
    assert_eq!(code, Some(0), "{stderr}");
    let value = document(&stdout, &stderr);
    assert_eq!(value["success"], true, "{value}");
    assert_eq!(value["nothing_to_resume"], true, "{value}");
    assert_eq!(value["run_id"], run.as_str(), "the whole id: {value}");
    // What the run produced, as the store keeps it.
    let records = value["execution_trace"]["agent_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(records.len(), 1, "{value}");
    assert_eq!(records[0]["agent_name"], "a", "{value}");
    assert_eq!(records[0]["output"]["content"], "x", "{value}");
    // The person reading standard error is told as before, and no run
    // started.
    assert!(stderr.contains("nothing to resume"), "{stderr}");
    assert_eq!(
        common::stored_runs(&store).as_array().map(Vec::len),
        Some(1)
    );
}

/// A gated workflow run once into a fresh store, stopped at its gate
/// (exit 1): the folder, the store, the workflow file and the run's id.
fn a_stopped_gated_run() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let (code, _, stderr) = on_store(&store, &["run", file.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(1), "{stderr}");
    let run = resume_id(&stderr);
    (dir, store, file, run)
}

#[test]
fn resume_json_prints_a_refusal_as_json_with_its_reason() {
    let (dir, store, file, run) = a_stopped_gated_run();

    // A run the store does not have.
    let unknown = on_store(&store, &["resume", "--json", "0123abc"]);
    assert_refused(&unknown, "no run starting with 0123abc", None);
    // An answer that is not ID=TEXT.
    let answer = on_store(&store, &["resume", "--json", &run, "--answer", "yes"]);
    assert_refused(&answer, "is not ID=TEXT", Some(&run));
    // A workflow file that is not there.
    let missing = dir.path().join("missing.toml");
    let args = [
        "resume",
        "--json",
        &run,
        "--file",
        missing.to_str().unwrap_or_default(),
    ];
    assert_refused(&on_store(&store, &args), "cannot read", Some(&run));

    // A workflow changed since the run started.
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    std::fs::write(
        &file,
        text.replace("+{{output.gate}}", " & {{output.gate}}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let changed = on_store(&store, &["resume", "--json", &run]);
    assert_refused(&changed, "changed since run", Some(&run));
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));

    // A run resumed already.
    std::fs::write(dir.path().join("open"), "").unwrap_or_else(|e| panic!("{e}"));
    let (code, stdout, stderr) = on_store(&store, &["resume", "--json", &run]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(document(&stdout, &stderr)["success"], true);
    let again = on_store(&store, &["resume", "--json", &run]);
    assert_refused(&again, "resumed already", Some(&run));
}

#[test]
fn fork_json_prints_a_refusal_as_json_with_its_reason() {
    let (dir, store, _file, run) = a_stopped_gated_run();

    // A step the workflow does not have: refused before anything runs.
    let unknown = on_store(&store, &["fork", "--json", &run, "--after", "frist"]);
    assert_refused(&unknown, "`frist` is not a step of", Some(&run));
    // A step that never finished: the store refuses the fork.
    let unfinished = on_store(&store, &["fork", "--json", &run, "--after", "last"]);
    assert_refused(&unfinished, "no finished step", Some(&run));
    assert_eq!(common::marks(dir.path()), 1, "nothing ran again");
}

#[test]
fn run_json_prints_a_refusal_as_json_with_its_reason() {
    let dir = scratch();
    let invalid = write(
        dir.path(),
        "invalid.toml",
        "[flow]\nsequential = [\"nobody\"]\n",
    );
    let refused = outcome(&["run", "--json"], &invalid, &[]);
    let value = document(&refused.stdout, &refused.stderr);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert_eq!(value["refused"], true, "{value}");
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not a valid workflow")),
        "{value}"
    );
    // Each problem, where it is.
    let problems = value["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems.iter().any(|p| p
            .as_str()
            .is_some_and(|p| { p.contains("invalid.toml:2:") && p.contains("`nobody`") })),
        "{value}"
    );
    // The detailed report still goes to standard error.
    assert!(refused.stderr.contains("--> "), "{}", refused.stderr);

    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    let nowhere = dir.path().join("no-such-dir").join("trace.json");
    let args = [
        "run",
        "--json",
        "--trace",
        nowhere.to_str().unwrap_or_default(),
    ];
    let refused = outcome(&args, &file, &[]);
    assert_refused(
        &(refused.code, refused.stdout, refused.stderr),
        "does not exist",
        None,
    );
}

#[test]
fn runs_json_prints_a_store_that_cannot_be_read_as_json_with_its_reason() {
    let dir = scratch();
    // A store file named that is not there: a usage error, as `run` refuses.
    let missing = dir.path().join("missing.db");
    let refused = on_store(&missing, &["runs", "--json"]);
    assert_refused(&refused, "there is no run store at", None);
    // A file that is not a store: a failure to read it (exit 1), not a refusal.
    let garbage = write(dir.path(), "garbage.db", &"not a database\n".repeat(20));
    let (code, stdout, stderr) = on_store(&garbage, &["runs", "--json"]);
    assert_eq!(code, Some(1), "{stderr}");
    let value = document(&stdout, &stderr);
    assert_eq!(value["success"], false, "{value}");
    assert_eq!(value.get("refused"), None, "{value}");
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot open the run store")),
        "{value}"
    );
    assert!(stderr.contains("cannot open the run store"), "{stderr}");
    // A limit that lists nothing is refused as JSON too.
    let store = dir.path().join("runs.db");
    let zero = on_store(&store, &["runs", "--json", "--limit", "0"]);
    assert_refused(&zero, "`--limit`", None);
}
