//! Durable runs, end to end: every `run` is kept in a store; a run that
//! failed, or was stopped with Ctrl-C, is listed, shown and resumed without
//! running its finished steps again; a changed workflow is refused; old runs
//! are pruned.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{gated, marks, orchestra, resume_id, scratch, texts, write};

/// The row of step `id` in the summary table of `stderr`.
fn summary_row(stderr: &str, id: &str) -> String {
    stderr
        .lines()
        .find(|line| line.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("no row `{id}` in:\n{stderr}"))
        .to_owned()
}

#[test]
fn a_failed_run_is_listed_and_resumes_without_running_its_finished_steps_again() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let (_, stderr) = texts(&failed);
    let run = resume_id(&stderr);
    assert_eq!(run.len(), 32, "{stderr}");
    assert!(
        stderr.contains(&format!("--store {}", store.display())),
        "{stderr}"
    );
    assert_eq!(marks(dir.path()), 1);

    let listed = orchestra()
        .args(["runs", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (table, _) = texts(&listed);
    assert!(listed.status.success());
    assert!(
        table.contains(&run) && table.contains("gated.toml") && table.contains("failed"),
        "{table}"
    );

    std::fs::write(dir.path().join("open"), "").unwrap();
    let resumed = orchestra()
        .args(["resume", &run[..10], "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "one+two",
        "the template sees the reused step's output"
    );
    assert_eq!(marks(dir.path()), 1, "`first` ran again");

    let shown = orchestra()
        .args(["show", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (text, _) = texts(&shown);
    assert!(shown.status.success());
    assert!(text.contains("gate") && text.contains("resumed"), "{text}");

    let again = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(texts(&again).1.contains("resumed already"));

    let pruned = orchestra()
        .args(["prune", "--keep", "0", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(pruned.status.success());
    assert!(
        texts(&pruned).1.contains("deleted 2 run(s)"),
        "{}",
        texts(&pruned).1
    );
}

#[test]
fn a_changed_workflow_is_refused_unless_forced_naming_the_changed_agent() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    let run = resume_id(&texts(&failed).1);
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("+{{output.gate}}", " & {{output.gate}}");
    std::fs::write(&file, text).unwrap();
    std::fs::write(dir.path().join("open"), "").unwrap();

    let refused = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let (_, stderr) = texts(&refused);
    assert!(
        stderr.contains("agent `last` changed") && stderr.contains("--force"),
        "{stderr}"
    );

    let forced = orchestra()
        .args(["resume", &run, "--force", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", texts(&forced).1);
    assert_eq!(texts(&forced).0.trim(), "one & two");
}

#[test]
fn a_fork_reruns_what_follows_a_step_with_the_changed_workflow() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    std::fs::write(dir.path().join("open"), "").unwrap();
    let done = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    assert!(done.status.success());
    let listed = orchestra()
        .args(["runs", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let runs = common::json(&texts(&listed).0);
    let run = runs[0]["id"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("+{{output.gate}}", " then {{output.gate}}");
    std::fs::write(&file, text).unwrap();
    let forked = orchestra()
        .args(["fork", &run, "--after", "gate", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(forked.status.success(), "{}", texts(&forked).1);
    assert_eq!(texts(&forked).0.trim(), "one then two");
    assert_eq!(marks(dir.path()), 1, "the fork reused `first`");
}

#[test]
fn ctrl_c_prints_the_command_that_resumes_the_run_and_the_resume_finishes_it() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let slow = write(
        dir.path(),
        "slow.toml",
        &format!(
            r#"name = "slow"

[flow]
sequential = ["quick", "nap", "after"]

[[agents]]
id = "quick"
kind = "command"
shell = "echo ran >> {marks}; echo quick"
stdin = "none"

[[agents]]
id = "nap"
kind = "command"
shell = "test -f {open} || sleep 600; echo rested"
stdin = "none"

[[agents]]
id = "after"
kind = "template"
template = "{{{{output.quick}}}} {{{{output.nap}}}}"
"#,
            marks = dir.path().join("marks").display(),
            open = dir.path().join("open").display(),
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["run", "--store"])
        .arg(&store)
        .arg(&slow)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while marks(dir.path()) == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let run = resume_id(&stderr);

    std::fs::write(dir.path().join("open"), "").unwrap();
    let resumed = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", texts(&resumed).1);
    assert_eq!(texts(&resumed).0.trim(), "quick rested");
    assert_eq!(marks(dir.path()), 1);
}

#[test]
fn no_store_keeps_no_record() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    std::fs::write(dir.path().join("open"), "").unwrap();
    let output = orchestra()
        .args(["run", "--no-store"])
        .arg(&file)
        .env("ORCHESTRA_STORE", &store)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(!store.exists());
    assert!(!texts(&output).1.contains("kept in"));
}

/// The library's test stores: a throw-away PostgreSQL cluster (or `DATABASE_URL`).
#[path = "../../claude-agent-sdk/tests/store_support/mod.rs"]
mod store_support;

#[test]
fn a_run_kept_in_postgresql_resumes_from_another_process() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let place = runtime.block_on(store_support::Place::new(store_support::Kind::Postgres));
    let dir = scratch();
    let file = gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store", &place.address])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let (_, stderr) = texts(&failed);
    assert!(!stderr.contains("password"), "{stderr}");
    let run = resume_id(&stderr);
    std::fs::write(dir.path().join("open"), "").unwrap();
    let resumed = orchestra()
        .args(["resume", &run])
        .env("ORCHESTRA_STORE", &place.address)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", texts(&resumed).1);
    assert_eq!(texts(&resumed).0.trim(), "one+two");
    assert_eq!(marks(dir.path()), 1);
    let listed = orchestra()
        .args(["runs", "--store", &place.address])
        .output()
        .unwrap();
    let (table, _) = texts(&listed);
    assert!(
        table.contains(&run) && table.contains("succeeded"),
        "{table}"
    );
}

#[test]
fn without_a_folder_for_the_default_store_the_run_goes_on_unrecorded() {
    let dir = scratch();
    let file = gated(dir.path());
    std::fs::write(dir.path().join("open"), "").unwrap();
    let output = orchestra()
        .args(["run"])
        .arg(&file)
        .env_remove("ORCHESTRA_STORE")
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "one+two");
    assert!(stderr.contains("this run is not kept"), "{stderr}");

    // A store the user names and that cannot be opened fails the run.
    let unwritable = dir.path().join("open").join("runs.db");
    let output = orchestra()
        .args(["run", "--store"])
        .arg(&unwritable)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        texts(&output).1.contains("--no-store"),
        "{}",
        texts(&output).1
    );
}

#[test]
fn an_empty_store_name_is_a_usage_error_not_the_default_store() {
    let dir = scratch();
    let file = gated(dir.path());
    std::fs::write(dir.path().join("open"), "").unwrap();
    let state = dir.path().join("state");
    let shown = file.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["run", shown],
        &["run", "--json", shown],
        &["runs"],
        &["show", "0123abc"],
        &["prune", "--keep", "1"],
    ];
    for args in commands {
        for (flag, variable) in [(Some(""), None), (None, Some("")), (Some(" "), None)] {
            let mut command = orchestra();
            command
                .args(args)
                .env_remove("ORCHESTRA_STORE")
                .env("XDG_STATE_HOME", &state);
            if let Some(flag) = flag {
                command.args(["--store", flag]);
            }
            if let Some(variable) = variable {
                command.env("ORCHESTRA_STORE", variable);
            }
            let output = command.output().unwrap();
            let (stdout, stderr) = texts(&output);
            let case = format!("{args:?} --store {flag:?} ORCHESTRA_STORE={variable:?}");
            assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
            assert!(stderr.contains("empty"), "{case}: {stderr}");
            if args.contains(&"--json") {
                assert!(stdout.contains("\"refused\":true"), "{case}: {stdout}");
            }
        }
    }
    // Nothing ran, and the default store was not made.
    assert_eq!(marks(dir.path()), 0);
    assert!(!state.exists());
    // A run that keeps no record needs no store name.
    let output = orchestra()
        .args(["run", "--no-store"])
        .arg(&file)
        .env("ORCHESTRA_STORE", "")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", texts(&output).1);
}

#[test]
fn a_program_gets_its_attempts_idempotency_key_which_a_resume_keeps() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let keys = dir.path().join("keys");
    let file = write(
        dir.path(),
        "keys.toml",
        &format!(
            r#"name = "keys"

[flow]
sequential = ["pay", "gate"]

[[agents]]
id = "pay"
kind = "command"
shell = "echo \"$AGENT_IDEMPOTENCY_KEY\" >> {keys}; echo paid"
stdin = "none"

[[agents]]
id = "gate"
kind = "command"
shell = "echo \"$AGENT_IDEMPOTENCY_KEY\" >> {keys}; test -f {open}"
stdin = "none"
"#,
            keys = keys.display(),
            open = dir.path().join("open").display(),
        ),
    );
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    let run = resume_id(&texts(&failed).1);
    std::fs::write(dir.path().join("open"), "").unwrap();
    let resumed = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", texts(&resumed).1);
    let seen = std::fs::read_to_string(&keys).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    // pay once, gate twice (failed, then resumed) with the same key.
    assert_eq!(lines.len(), 3, "{seen}");
    assert!(
        lines[0].starts_with(&run) && lines[0].ends_with("/0.1/1"),
        "{seen}"
    );
    assert_eq!(lines[1], lines[2], "{seen}");
    assert!(lines[1].ends_with("/1.1/1"), "{seen}");
}

#[test]
fn a_run_waiting_for_an_answer_is_kept_and_continues_with_it_from_another_process() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(
        dir.path(),
        "ask.toml",
        &format!(
            r#"name = "ask"
input = "v2"

[flow]
nodes = ["plan", "ship"]
edges = ["start -> plan -> approve -> ship -> end"]

[[flow.asks]]
id = "approve"
question = "Ship it?"

[[agents]]
id = "plan"
kind = "command"
shell = "echo ran >> {marks}; echo plan"
stdin = "none"

[[agents]]
id = "ship"
kind = "template"
template = "shipped {{{{output.plan}}}} ({{{{input}}}})"
"#,
            marks = dir.path().join("marks").display(),
        ),
    );
    let waiting = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(waiting.status.code(), Some(3));
    let (_, stderr) = texts(&waiting);
    assert!(stderr.contains("--answer approve=ANSWER"), "{stderr}");
    let run = resume_id(&stderr);
    let resumed = orchestra()
        .args(["resume", &run, "--answer", "approve=yes", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "shipped plan (yes)");
    assert_eq!(marks(dir.path()), 1, "`plan` ran again");
    // Asked in the first run, answered in this one: one attempt, answered.
    let approve = summary_row(&stderr, "approve");
    assert!(
        approve.contains(" 1 ") && approve.ends_with("answered"),
        "{approve}"
    );
}

#[test]
fn resuming_a_run_that_succeeded_says_so_and_starts_no_run() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "done.toml", common::ONE_AGENT);
    common::run_kept(&store, &file);
    let run = common::stored_runs(&store)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resumed = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (_, stderr) = texts(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("nothing to resume"), "{stderr}");
    let runs = common::stored_runs(&store);
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "no new run");
}

#[test]
fn a_fork_after_a_step_inside_a_group_says_which_steps_it_can_name() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(
        dir.path(),
        "grouped.toml",
        r#"
[flow]
sequential = ["first", "g", "last"]

[[groups]]
id = "g"
parallel = ["x", "y"]

[[agents]]
id = "first"
kind = "template"
template = "1"

[[agents]]
id = "x"
kind = "template"
template = "x"

[[agents]]
id = "y"
kind = "template"
template = "y"

[[agents]]
id = "last"
kind = "template"
template = "{{input}}!"
"#,
    );
    common::run_kept(&store, &file);
    let runs = common::stored_runs(&store);
    let run = runs[0]["id"].as_str().unwrap_or_default().to_owned();
    let refused = orchestra()
        .args(["fork", &run, "--after", "x", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "`x` runs inside group `g`: `orchestra fork --after` can name only a top-level \
             step of the flow (`first`, `g`, `last`)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("fork after `first` to run `g`"), "{stderr}");
    assert_eq!(
        common::stored_runs(&store).as_array().map(Vec::len),
        Some(1),
        "nothing ran"
    );

    // A top-level step is forked after as before.
    let forked = orchestra()
        .args(["fork", &run, "--after", "g", "-q", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(forked.status.success(), "{}", texts(&forked).1);
}

#[test]
fn a_fork_after_a_step_the_workflow_does_not_have_is_a_usage_error_and_runs_nothing() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(
        dir.path(),
        "two.toml",
        r#"
[flow]
sequential = ["first", "second"]

[[agents]]
id = "first"
kind = "template"
template = "1"

[[agents]]
id = "second"
kind = "template"
template = "{{input}}2"
"#,
    );
    common::run_kept(&store, &file);
    let runs = common::stored_runs(&store);
    let run = runs[0]["id"].as_str().unwrap_or_default().to_owned();
    let refused = orchestra()
        .args(["fork", &run, "--after", "frist", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`frist` is not a step of") && stderr.contains("(`first`, `second`)"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `first`?"), "{stderr}");
    assert!(!stderr.contains("Forking"), "{stderr}");
    assert_eq!(
        common::stored_runs(&store).as_array().map(Vec::len),
        Some(1),
        "nothing ran"
    );
}

#[test]
fn runs_shows_a_quick_runs_duration_in_milliseconds_not_zero_seconds() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(
        dir.path(),
        "quick.toml",
        "[flow]\nsequential = [\"only\"]\n\n[[agents]]\nid = \"only\"\nkind = \"template\"\ntemplate = \"hi\"\n",
    );
    common::run_kept(&store, &file);
    let listed = orchestra()
        .args(["runs", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&listed);
    assert!(listed.status.success(), "{stderr}");
    let row = stdout
        .lines()
        .find(|line| line.contains("quick.toml"))
        .unwrap_or_default();
    // run, workflow, status, date, time, duration, ...
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells.get(5).is_some_and(|cell| cell.ends_with("ms")),
        "{stdout}"
    );
    assert!(!row.contains(" 0.0s "), "{stdout}");
}

#[test]
fn a_resumed_runs_summary_shows_the_steps_it_reused_as_done() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    let run = resume_id(&texts(&failed).1);
    std::fs::write(dir.path().join("open"), "").unwrap();
    let resumed = orchestra()
        .args(["resume", &run, "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    // `first` ran once, in the run that failed; `gate` failed there and
    // succeeded here.
    let first = summary_row(&stderr, "first");
    assert!(first.contains(" 1 ") && first.ends_with("done"), "{first}");
    let gate = summary_row(&stderr, "gate");
    assert!(gate.contains(" 2 ") && gate.ends_with("done"), "{gate}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let statuses: Vec<&str> = json["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["done", "done", "done"], "{stdout}");
    assert_eq!(marks(dir.path()), 1, "`first` ran again");
}

#[test]
fn a_forks_summary_shows_the_steps_it_reused_and_not_those_after() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    std::fs::write(dir.path().join("open"), "").unwrap();
    common::run_kept(&store, &file);
    let run = common::stored_runs(&store)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forked = orchestra()
        .args(["fork", &run, "--after", "first", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (_, stderr) = texts(&forked);
    assert!(forked.status.success(), "{stderr}");
    // `first` is reused (its one attempt, from the old run); `gate` and
    // `last` ran again, once each — the old run's attempts are not counted.
    for id in ["first", "gate", "last"] {
        let line = summary_row(&stderr, id);
        assert!(line.contains(" 1 ") && line.ends_with("done"), "{line}");
    }
    assert_eq!(marks(dir.path()), 1, "the fork reused `first`");
}

#[test]
fn a_fork_of_a_resumed_run_counts_none_of_the_chains_attempts_after_its_step() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    // The first run fails at `gate`; its resume, with the gate open, finishes.
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let first = resume_id(&texts(&failed).1);
    std::fs::write(dir.path().join("open"), "").unwrap();
    let resumed = orchestra()
        .args(["resume", &first, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", texts(&resumed).1);
    let second = common::stored_runs(&store)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forked = orchestra()
        .args(["fork", &second, "--after", "first", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (_, stderr) = texts(&forked);
    assert!(forked.status.success(), "{stderr}");
    // `first` is reused from the first run; `gate` and `last` ran once in
    // the fork: the failed attempts of the first run and the resume's are
    // not the fork's.
    for id in ["first", "gate", "last"] {
        let line = summary_row(&stderr, id);
        assert!(line.contains(" 1 ") && line.ends_with("done"), "{line}");
    }
}

#[test]
fn a_fork_after_a_step_that_never_finished_is_refused_as_a_usage_error() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let run = resume_id(&texts(&failed).1);
    // `last` never ran: there is nothing to fork after. Nothing runs, and
    // no failed run's summary is shown.
    let forked = orchestra()
        .args(["fork", &run, "--after", "last", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (_, stderr) = texts(&forked);
    assert_eq!(forked.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no finished step"), "{stderr}");
    assert!(!stderr.contains("not run"), "{stderr}");
    assert_eq!(marks(dir.path()), 1, "nothing ran again");
    assert_eq!(
        common::stored_runs(&store).as_array().map(Vec::len),
        Some(1)
    );
}

/// Runs `orchestra ARGS --store STORE`, checks that it succeeded, and
/// returns its standard output followed by its standard error.
fn on_store(args: &[&str], store: &Path) -> String {
    let ran = common::on_store(store, args);
    assert_eq!(
        ran.code,
        Some(0),
        "`orchestra {}` failed:\n{}{}",
        args.join(" "),
        ran.stdout,
        ran.stderr
    );
    ran.stdout + &ran.stderr
}

#[test]
fn runs_whose_agents_report_huge_usages_are_still_listed_with_saturated_totals() {
    let dir = scratch();
    let store = dir.path().join("huge.db");
    // Two agents reporting 5·10¹⁸ tokens and $10³⁰⁸ each: more than a
    // 64-bit count holds, and an infinite cost, summed plainly.
    let spend = r#"echo '{"content": "spent", "data": {"usage": {"input_tokens": 5000000000000000000, "output_tokens": 0, "cost_usd": 1e308}}}'"#;
    let file = write(
        dir.path(),
        "huge.toml",
        &format!(
            "name = \"huge\"\n\n[flow]\nsequential = [\"a\", \"b\"]\n\n\
             [[agents]]\nid = \"a\"\nkind = \"command\"\nshell = '''{spend}'''\nstdin = \"none\"\noutput = \"json\"\n\n\
             [[agents]]\nid = \"b\"\nkind = \"command\"\nshell = '''{spend}'''\nstdin = \"none\"\noutput = \"json\"\n"
        ),
    );
    common::run_kept(&store, &file);

    let table = on_store(&["runs"], &store);
    assert!(
        table.contains("9223372036854775807") && table.contains("$1.798e308"),
        "{table}"
    );
    assert!(!table.contains("inf"), "{table}");
    let runs = common::stored_runs(&store);
    assert_eq!(runs[0]["tokens"], serde_json::json!(i64::MAX), "{runs}");
    assert_eq!(runs[0]["cost_usd"], serde_json::json!(f64::MAX), "{runs}");
    let id = runs[0]["id"].as_str().unwrap_or_default().to_owned();
    let shown = on_store(&["show", &id], &store);
    assert!(shown.contains("9223372036854775807"), "{shown}");
}

#[test]
fn a_killed_run_is_listed_as_crashed_and_pruned_while_a_live_one_is_kept() {
    let dir = scratch();
    let store = dir.path().join("kill.db");
    let open = dir.path().join("open");
    // `nap` marks that it started, then waits for the file `open` (a loop,
    // not one long sleep: the shell a killed run leaves behind ends as soon
    // as `open` exists, or the test's folder is gone).
    let live = write(
        dir.path(),
        "live.toml",
        &format!(
            r#"name = "live"

[flow]
sequential = ["quick", "nap"]

[[agents]]
id = "quick"
kind = "command"
shell = "echo ran >> {marks}; echo quick"
stdin = "none"

[[agents]]
id = "nap"
kind = "command"
shell = "echo ran >> {marks}; while [ ! -f {open} ] && [ -d {dir} ]; do sleep 0.1; done; echo rested"
stdin = "none"
"#,
            marks = dir.path().join("marks").display(),
            open = open.display(),
            dir = dir.path().display(),
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["run", "--store"])
        .arg(&store)
        .arg(&live)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // `nap` started: `quick`'s end, and the run's start, are stored.
    let started = Instant::now();
    while marks(dir.path()) < 2 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(marks(dir.path()), 2, "the run never reached `nap`");

    // Alive: running, and never pruned.
    let table = on_store(&["runs"], &store);
    assert!(table.contains("running"), "{table}");
    let pruned = on_store(&["prune", "--keep", "0"], &store);
    assert!(pruned.contains("deleted 0 run(s)"), "{pruned}");
    std::thread::sleep(Duration::from_millis(1100));
    let pruned = on_store(&["prune", "--older-than", "1s"], &store);
    assert!(pruned.contains("deleted 0 run(s)"), "{pruned}");

    // Killed: no end is stored, and the run is crashed, not running.
    child.kill().unwrap();
    child.wait().unwrap();
    let run = common::crashed_run(&store);
    let table = on_store(&["runs"], &store);
    assert!(
        table.contains("crashed") && !table.contains("running"),
        "{table}"
    );

    // Resumed, it is crashed and resumed; the chain is finished and pruned.
    std::fs::write(&open, "").unwrap();
    let resumed = on_store(&["resume", &run], &store);
    assert!(resumed.starts_with("rested"), "{resumed}");
    assert_eq!(marks(dir.path()), 3, "`nap` ran again, `quick` did not");
    let table = on_store(&["runs"], &store);
    assert!(
        table.contains("crashed (resumed by") && table.contains("succeeded"),
        "{table}"
    );
    let pruned = on_store(&["prune", "--keep", "0"], &store);
    assert!(pruned.contains("deleted 2 run(s)"), "{pruned}");
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

#[test]
fn a_resumed_runs_summary_leaves_out_the_time_between_the_runs() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap();
    let run = resume_id(&texts(&failed).1);
    std::fs::write(dir.path().join("open"), "").unwrap();
    // The gap: far longer than any of the steps takes.
    std::thread::sleep(Duration::from_secs(3));
    let resumed = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let (_, stderr) = texts(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    // `gate` failed in the first run and succeeded in the resume: its time
    // is its attempts', not the three seconds between them.
    let gate = summary_row(&stderr, "gate");
    let cells: Vec<&str> = gate.split_whitespace().collect();
    let took = cells.get(3).map_or(f64::MAX, |cell| seconds(cell));
    assert!(took < 3.0, "{gate}");
}

/// `[first, g, last]` with group `g` = `[inner, gate]`: `inner` leaves a
/// mark, `gate` fails until the file `open` exists.
fn gated_group(dir: &Path) -> std::path::PathBuf {
    let workflow = format!(
        r#"name = "gated-group"

[flow]
sequential = ["first", "g", "last"]

[[groups]]
id = "g"
sequential = ["inner", "gate"]

[[agents]]
id = "first"
kind = "template"
template = "start"

[[agents]]
id = "inner"
kind = "command"
shell = "echo ran >> {marks}; echo inner"
stdin = "none"

[[agents]]
id = "gate"
kind = "command"
shell = "test -f {open} || {{ echo 'the gate is shut' >&2; exit 3; }}; echo gate"
stdin = "none"

[[agents]]
id = "last"
kind = "template"
template = "{{{{output.inner}}}}+{{{{output.gate}}}}"
"#,
        marks = dir.join("marks").display(),
        open = dir.join("open").display(),
    );
    write(dir, "gated-group.toml", &workflow)
}

#[test]
fn a_resumed_run_does_not_run_again_what_finished_inside_a_group_that_failed() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated_group(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert_eq!(marks(dir.path()), 1);
    let run = resume_id(&stderr);

    std::fs::write(dir.path().join("open"), "").unwrap_or_else(|e| panic!("{e}"));
    let resumed = orchestra()
        .args(["resume", &run, "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "inner+gate", "{stderr}");
    assert_eq!(
        marks(dir.path()),
        1,
        "`inner` finished inside `g` before: it is not run again"
    );
}
