//! A new user's review of the stored runs: `runs`, `show`, `resume`,
//! `fork` and `prune` at their edges — the summary of a chain of runs, how
//! `show` tells attempts that never ended and asks that wait apart from
//! failures, run ids that name a nested run or are too long, and a workflow
//! file that moved since its run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{gated, marks, resume_id, scratch, write};

/// `orchestra ARGS --store STORE`: (exit code, stdout, stderr).
fn on(store: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let ran = common::on_store(store, args);
    (ran.code, ran.stdout, ran.stderr)
}

/// A duration as the summary writes it (`850ms`, `12.3s`, `2m05s`), in seconds.
fn seconds(cell: &str) -> f64 {
    if let Some(ms) = cell.strip_suffix("ms") {
        return ms.parse::<f64>().unwrap_or(f64::MAX) / 1000.0;
    }
    if let Some((minutes, rest)) = cell.split_once('m') {
        let secs = rest.trim_end_matches('s').parse::<f64>().unwrap_or(0.0);
        return minutes.parse::<f64>().unwrap_or(f64::MAX) * 60.0 + secs;
    }
    cell.trim_end_matches('s')
        .parse::<f64>()
        .unwrap_or(f64::MAX)
}

/// The duration in the `total` row of the summary in `stderr`, in seconds.
fn total_seconds(stderr: &str) -> f64 {
    let row = stderr
        .lines()
        .find(|line| line.split_whitespace().next() == Some("total"))
        .unwrap_or_else(|| panic!("no total row in:\n{stderr}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    cells.get(2).map_or(f64::MAX, |cell| seconds(cell))
}

/// Runs the gated workflow in `dir` (it fails), waits `gap`, opens the gate:
/// the failed run's id.
fn failed_then_opened(dir: &Path, store: &Path, gap: Duration) -> String {
    let file = gated(dir);
    let (code, _, stderr) = on(store, &["run", file.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(1), "{stderr}");
    std::thread::sleep(gap);
    std::fs::write(dir.join("open"), "").unwrap_or_else(|e| panic!("{e}"));
    resume_id(&stderr)
}

// ---------------------------------------------------------------------------
// The summary after a resume or a fork covers the chain of runs: its total
// is the time the runs took, not the hours between them.

#[test]
fn a_resumed_runs_total_leaves_out_the_time_between_the_runs() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let run = failed_then_opened(dir.path(), &store, Duration::from_secs(3));
    let (code, _, stderr) = on(&store, &["resume", &run]);
    assert_eq!(code, Some(0), "{stderr}");
    let total = total_seconds(&stderr);
    assert!(
        total < 3.0,
        "the total counts the 3 s between the runs:\n{stderr}"
    );
}

#[test]
fn a_forks_total_leaves_out_the_time_since_the_forked_run() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let run = failed_then_opened(dir.path(), &store, Duration::from_secs(3));
    let (code, _, stderr) = on(&store, &["fork", &run, "--after", "first"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(marks(dir.path()), 1, "`first` ran again:\n{stderr}");
    let total = total_seconds(&stderr);
    assert!(
        total < 3.0,
        "the total counts the 3 s since the run:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// `show`: an attempt's status says what happened to it.

#[test]
fn show_of_a_fork_names_the_run_and_the_step_it_forked_after() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let run = failed_then_opened(dir.path(), &store, Duration::ZERO);
    let (code, _, stderr) = on(&store, &["fork", &run, "--after", "first"]);
    assert_eq!(code, Some(0), "{stderr}");
    // The newest run is the fork.
    let runs = common::stored_runs(&store);
    assert_eq!(runs[0]["forks"], run.as_str(), "{runs:#}");
    let fork = runs[0]["id"].as_str().unwrap_or_default().to_owned();
    let (code, shown, stderr) = on(&store, &["show", &fork]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        shown.contains(&format!("forks     {run}, after `first`")),
        "{shown}"
    );
    // The listing marks it too, by the forked run's id as a prefix finds it.
    let (code, table, stderr) = on(&store, &["runs"]);
    assert_eq!(code, Some(0), "{stderr}");
    let row = table
        .lines()
        .find(|line| line.starts_with(&fork))
        .unwrap_or_else(|| panic!("no row for the fork in:\n{table}"));
    assert!(row.contains(&format!("(fork of {})", &run[..12])), "{row}");
}

/// The row of `agent` in the attempts table `show` printed.
fn attempt_row<'a>(shown: &'a str, agent: &str) -> &'a str {
    shown
        .lines()
        .find(|line| line.split_whitespace().next() == Some(agent))
        .unwrap_or_else(|| panic!("no row `{agent}` in:\n{shown}"))
}

#[test]
fn show_lists_the_attempt_a_killed_run_never_ended_as_not_finished_not_ok() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let started = dir.path().join("started");
    let open = dir.path().join("open");
    // `wait` says it started, then waits for `open` (a loop that ends once
    // the file exists or the folder is gone: nothing is left behind).
    let file = write(
        dir.path(),
        "killed.toml",
        &format!(
            r#"name = "killed"

[flow]
sequential = ["quick", "wait"]

[[agents]]
id = "quick"
kind = "template"
template = "quick"

[[agents]]
id = "wait"
kind = "command"
shell = "touch {started}; while [ ! -f {open} ] && [ -d {dir} ]; do sleep 0.1; done; echo rested"
stdin = "none"
"#,
            started = started.display(),
            open = open.display(),
            dir = dir.path().display(),
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let waiting = Instant::now();
    while !started.exists() && waiting.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.exists(), "the run never reached `wait`");
    // `wait`'s start is written to the store by a task of its own, soon
    // after the program starts: kill once the store holds it.
    let stored = |shown: &str| {
        shown
            .lines()
            .any(|line| line.split_whitespace().next() == Some("wait"))
    };
    while waiting.elapsed() < Duration::from_secs(30) {
        let listed = common::stored_runs(&store);
        let id = listed[0]["id"].as_str().unwrap_or_default().to_owned();
        if !id.is_empty() && stored(&on(&store, &["show", &id]).1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: the run's end, and `wait`'s, are never stored.
    child.kill().unwrap_or_else(|e| panic!("{e}"));
    child.wait().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&open, "").unwrap_or_else(|e| panic!("{e}"));
    let run = common::crashed_run(&store);

    let (code, shown, stderr) = on(&store, &["show", &run]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(attempt_row(&shown, "quick").contains("ok"), "{shown}");
    let row = attempt_row(&shown, "wait");
    assert!(
        row.contains("not finished") && !row.ends_with("ok"),
        "an attempt that never ended is listed as it were done:\n{shown}"
    );
}

#[test]
fn show_lists_an_ask_waiting_for_its_answer_as_waiting_not_failed() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = common::example("graph-ask.toml");
    let (code, _, stderr) = on(&store, &["run", file.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(3), "{stderr}");
    let run = resume_id(&stderr);

    let (code, shown, stderr) = on(&store, &["show", &run]);
    assert_eq!(code, Some(0), "{stderr}");
    let row = attempt_row(&shown, "approve");
    assert!(
        row.contains("waiting") && !row.contains("failed"),
        "the run paused; its ask did not fail:\n{shown}"
    );
}

// ---------------------------------------------------------------------------
// Run ids.

/// `[first, g, last]` with group `g` = `[inner, gate]`, `gate` failing
/// until the file `open` exists: the failed run's JSON.
fn failed_nested(dir: &Path, store: &Path) -> serde_json::Value {
    let file = write(
        dir,
        "nested.toml",
        &format!(
            r#"name = "nested"

[flow]
sequential = ["first", "g", "last"]

[[groups]]
id = "g"
sequential = ["inner", "gate"]

[[agents]]
id = "first"
kind = "template"
template = "one"

[[agents]]
id = "inner"
kind = "template"
template = "in"

[[agents]]
id = "gate"
kind = "command"
shell = "test -f {open} || exit 3; echo two"
stdin = "none"

[[agents]]
id = "last"
kind = "template"
template = "{{{{output.first}}}}+{{{{output.gate}}}}"
"#,
            open = dir.join("open").display(),
        ),
    );
    let (code, stdout, stderr) = on(store, &["run", "--json", file.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(1), "{stderr}");
    common::json(&stdout)
}

#[test]
fn resuming_or_forking_a_nested_runs_id_names_the_top_level_run_to_use() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let failed = failed_nested(dir.path(), &store);
    let top = failed["run_id"].as_str().unwrap_or_default().to_owned();
    let nested = failed["execution_trace"]["agent_executions"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|record| record["nested"]["run_id"].as_str())
        .unwrap_or_else(|| panic!("no nested run in {failed:#}"))
        .to_owned();
    assert_ne!(nested, top);
    std::fs::write(dir.path().join("open"), "").unwrap_or_else(|e| panic!("{e}"));

    for args in [
        vec!["resume", nested.as_str()],
        vec!["fork", nested.as_str(), "--after", "first"],
    ] {
        let (code, _, stderr) = on(&store, &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&top) && !stderr.contains("--file"),
            "{args:?} should name the run {top} to use, not ask for the file:\n{stderr}"
        );
    }
    // Nothing ran: the top-level run resumes as told.
    let (code, stdout, stderr) = on(&store, &["resume", &top, "-q"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "one+two");
}

#[test]
fn a_run_id_longer_than_32_digits_is_not_a_run_id_rather_than_an_unknown_prefix() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    common::run_kept(&store, &write(dir.path(), "one.toml", common::ONE_AGENT));
    let runs = common::stored_runs(&store);
    let id = runs[0]["id"].as_str().unwrap_or_default().to_owned();
    let (code, _, stderr) = on(&store, &["show", &format!("{id}0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not a run id") && !stderr.contains("starting with"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// The workflow file.

#[test]
fn resuming_a_run_whose_workflow_file_is_gone_says_to_give_it_with_file() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let run = failed_then_opened(dir.path(), &store, Duration::ZERO);
    let moved = dir.path().join("moved.toml");
    std::fs::rename(dir.path().join("gated.toml"), &moved).unwrap_or_else(|e| panic!("{e}"));

    let (code, _, stderr) = on(&store, &["resume", &run]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("gated.toml") && stderr.contains("--file"),
        "the message should say how to name the file now:\n{stderr}"
    );
    let (code, stdout, stderr) = on(
        &store,
        &[
            "resume",
            &run,
            "-q",
            "--file",
            moved.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "one+two");
    assert_eq!(marks(dir.path()), 1, "`first` ran again");
}
