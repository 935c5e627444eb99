//! The run store commands (`runs`, `show`, `resume`, `fork`, `prune`) at
//! their edges: forks resumed and pruned, resumes of a workflow changed and
//! forced, run ids older than any listing, PostgreSQL URLs with passwords
//! and servers that refuse, the resume command printed, `--json` when the
//! store cannot be opened.

mod common;

use std::path::Path;

use common::{gated, marks, orchestra, resume_id, scratch, texts, write};

/// `orchestra ARGS --store STORE`: (exit code, stdout, stderr).
fn on(store: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let ran = common::on_store(store, args);
    (ran.code, ran.stdout, ran.stderr)
}

// ---------------------------------------------------------------------------
// Forks: a fork is stored as if it *resumed* the run it forks.

/// A fork that failed, resumed, must continue the fork — whose history is
/// the forked run's steps up to `--after` — and not take back what the old
/// run finished after that step.
#[test]
fn a_resumed_fork_runs_the_steps_after_its_fork_point_instead_of_reusing_the_old_runs() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let data = dir.path().join("data");
    let file = write(
        dir.path(),
        "fork.toml",
        &format!(
            r#"name = "fork"

[flow]
sequential = ["a", "b", "c"]

[[agents]]
id = "a"
kind = "command"
shell = "echo a"
stdin = "none"

[[agents]]
id = "b"
kind = "command"
shell = "cat {data}"
stdin = "none"

[[agents]]
id = "c"
kind = "template"
template = "{{{{output.a}}}}+{{{{output.b}}}}"
"#,
            data = data.display()
        ),
    );
    std::fs::write(&data, "old").unwrap();
    let (code, stdout, stderr) = on(&store, &["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "a+old");
    let old = common::stored_runs(&store)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Fork after `a` to run `b` on new data; `b` fails (no data yet).
    std::fs::remove_file(&data).unwrap();
    let (code, _, stderr) = on(&store, &["fork", &old, "--after", "a"]);
    assert_eq!(code, Some(1), "{stderr}");
    let fork = resume_id(&stderr);

    // The data is there now: resuming the fork runs `b` (it never finished
    // in the fork) and `c` after it.
    std::fs::write(&data, "new").unwrap();
    let (code, stdout, stderr) = on(&store, &["resume", &fork]);
    assert_eq!(
        (code, stdout.trim()),
        (Some(0), "a+new"),
        "the resumed fork took back `b` and `c` from the run it forked:\n{stderr}"
    );
}

/// The idempotency key of an attempt is the same when the attempt runs
/// again in a resumed run: a fork's keys start with the fork's id, and so
/// must its resume's (not the forked run's, whose own attempt of the same
/// step had that key — a service would refuse the fork's as a duplicate).
#[test]
fn a_resumed_fork_keeps_the_forks_idempotency_keys() {
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
    let (code, _, stderr) = on(&store, &["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let old = resume_id(&stderr);
    let (code, _, stderr) = on(&store, &["fork", &old, "--after", "pay"]);
    assert_eq!(code, Some(1), "{stderr}");
    let fork = resume_id(&stderr);
    std::fs::write(dir.path().join("open"), "").unwrap();
    let (code, _, stderr) = on(&store, &["resume", &fork]);
    assert_eq!(code, Some(0), "{stderr}");

    let seen = std::fs::read_to_string(&keys).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    // old: pay, gate; fork: gate; resumed fork: gate.
    assert_eq!(lines.len(), 4, "{seen}");
    assert!(lines[2].starts_with(&fork), "{seen}");
    assert_eq!(
        lines[3], lines[2],
        "the resumed fork's `gate` has another key than the fork's (old run {old}):\n{seen}"
    );
}

/// A fork of a resumed run, kept by `prune --keep 1` (the newest), must keep
/// the runs it reads when it is resumed.
#[test]
fn pruning_keeps_the_history_a_kept_fork_of_a_resumed_run_needs() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let (code, _, stderr) = on(&store, &["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let first = resume_id(&stderr);
    // Resumed with the gate still shut: fails again.
    let (code, _, stderr) = on(&store, &["resume", &first]);
    assert_eq!(code, Some(1), "{stderr}");
    let second = resume_id(&stderr);
    let (code, _, stderr) = on(&store, &["fork", &second, "--after", "first"]);
    assert_eq!(code, Some(1), "{stderr}");
    let fork = resume_id(&stderr);
    assert_eq!(marks(dir.path()), 1);

    let (code, _, stderr) = on(&store, &["prune", "--keep", "1"]);
    assert_eq!(code, Some(0), "{stderr}");

    std::fs::write(dir.path().join("open"), "").unwrap();
    let (code, stdout, stderr) = on(&store, &["resume", &fork]);
    assert_eq!(
        code,
        Some(0),
        "the fork cannot be resumed after `prune --keep 1` kept it: {stderr}"
    );
    assert_eq!(stdout.trim(), "one+two");
    assert_eq!(marks(dir.path()), 1, "`first` ran again");
}

// ---------------------------------------------------------------------------
// Secrets: a PostgreSQL URL's password must never be echoed.

/// A URL nothing listens at (port 1 on the loopback).
const NOWHERE: &str = "127.0.0.1:1";

#[test]
fn a_postgres_password_given_as_a_url_parameter_is_not_echoed() {
    let url = format!("postgres://someone@{NOWHERE}/runs?password=Hunter2Secret");
    let output = orchestra()
        .args(["runs", "--store", &url])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        !stdout.contains("Hunter2Secret") && !stderr.contains("Hunter2Secret"),
        "the password is echoed:\n{stderr}"
    );
}

#[test]
fn a_postgres_password_holding_an_at_sign_is_not_echoed() {
    // `@` in a password is read by URL parsers (the last `@` ends the
    // user information), and is common in generated passwords.
    let url = format!("postgres://someone:p@Hunter2Secret@{NOWHERE}/runs");
    let output = orchestra()
        .args(["runs", "--store", &url])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        !stdout.contains("Hunter2Secret") && !stderr.contains("Hunter2Secret"),
        "part of the password is echoed:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Run ids.

/// `show`, `resume` and `fork` take the start of an id "as `runs` shows
/// it": a run must be found by its prefix however many runs are newer.
#[test]
fn a_run_id_prefix_finds_a_run_older_than_the_newest_ten_thousand() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    common::run_kept(&store, &file);
    let old = common::stored_runs(&store)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 10,000 newer finished runs (a few months of a CI job), written as the
    // store writes run rows.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::ConnectOptions as _;
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&store)
            .connect()
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
             INSERT INTO runs (id, root, origin, orchestrator, label, status, started_us, \
             finished_us, host, pid) \
             SELECT printf('%032x', i), printf('%032x', i), printf('%032x', i), 'sequential', \
             'x.toml', 'succeeded', r.started_us + i, r.started_us + i + 1, r.host, r.pid \
             FROM n, (SELECT started_us, host, pid FROM runs LIMIT 1) AS r",
        )
        .execute(&mut db)
        .await
        .unwrap();
    });
    let (code, stdout, stderr) = on(&store, &["show", &old[..12]]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&old), "{stdout}");
}

// ---------------------------------------------------------------------------
// Fingerprints: a run is refused when its workflow changed *since it started*.

/// `last`'s template changed.
fn change_last(file: &Path) {
    let text = std::fs::read_to_string(file)
        .unwrap()
        .replace("+{{output.gate}}", " then {{output.gate}}");
    std::fs::write(file, text).unwrap();
}

/// A run resumed with `--force` started from the changed workflow: when it
/// fails too, resuming it with the same workflow is no change at all.
#[test]
fn a_run_resumed_with_force_resumes_again_without_force_when_the_workflow_is_unchanged_since() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let (code, _, stderr) = on(&store, &["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let first = resume_id(&stderr);
    change_last(&file);
    // Forced, with the gate still shut: it fails again.
    let (code, _, stderr) = on(&store, &["resume", &first, "--force"]);
    assert_eq!(code, Some(1), "{stderr}");
    let second = resume_id(&stderr);

    std::fs::write(dir.path().join("open"), "").unwrap();
    let (code, stdout, stderr) = on(&store, &["resume", &second]);
    assert_eq!(
        code,
        Some(0),
        "the workflow did not change since run {second} started:\n{stderr}"
    );
    assert_eq!(stdout.trim(), "one then two");
}

/// `fork` is the way to run a changed workflow from a stored run: a fork
/// that fails is resumed with the workflow it was started with, no
/// `--force` needed.
#[test]
fn a_failed_fork_of_a_changed_workflow_resumes_without_force() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = gated(dir.path());
    let (code, _, stderr) = on(&store, &["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let old = resume_id(&stderr);
    change_last(&file);
    let (code, _, stderr) = on(&store, &["fork", &old, "--after", "first"]);
    assert_eq!(code, Some(1), "{stderr}");
    let fork = resume_id(&stderr);

    std::fs::write(dir.path().join("open"), "").unwrap();
    let (code, stdout, stderr) = on(&store, &["resume", &fork]);
    assert_eq!(
        code,
        Some(0),
        "the workflow did not change since the fork {fork} started:\n{stderr}"
    );
    assert_eq!(stdout.trim(), "one then two");
}

// ---------------------------------------------------------------------------
// PostgreSQL: clear errors, and a resume command that works as printed.

/// A server that refuses connections (a wrong port) must be told as such,
/// not as "pool timed out" after ten seconds of silent retries.
#[test]
fn a_postgres_server_that_refuses_connections_is_named_as_the_cause() {
    let started = std::time::Instant::now();
    let output = orchestra()
        .args([
            "runs",
            "--store",
            &format!("postgres://someone@{NOWHERE}/runs"),
        ])
        .output()
        .unwrap();
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("refused"),
        "after {:?}, the cause is not said:\n{stderr}",
        started.elapsed()
    );
}

/// The throw-away PostgreSQL cluster of the library's tests (or `DATABASE_URL`).
#[path = "../../claude-agent-sdk/tests/store_support/mod.rs"]
mod store_support;

/// After a run kept in PostgreSQL with `--store URL` fails, the command it
/// prints resumes it when typed as printed (`ORCHESTRA_STORE` is not set:
/// the store was named with `--store`).
#[test]
fn the_resume_command_printed_after_a_run_kept_in_postgresql_works_as_printed() {
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
        .env_remove("ORCHESTRA_STORE")
        .output()
        .unwrap();
    let (_, stderr) = texts(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    let printed = stderr
        .lines()
        .find_map(|line| {
            line.split_once("resume it with: ")
                .map(|(_, command)| command)
        })
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"))
        .to_owned();

    std::fs::write(dir.path().join("open"), "").unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_orchestra")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let resumed = std::process::Command::new("sh")
        .args(["-c", &printed])
        .env("PATH", path)
        .env_remove("ORCHESTRA_STORE")
        // Where the default store would be: not the user's.
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&resumed);
    assert_eq!(
        (resumed.status.code(), stdout.trim()),
        (Some(0), "one+two"),
        "`{printed}` does not resume the run:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// `--json`: a failed run prints JSON.

/// `run --json` documents `{"success": false, "error", ...}` for a failed
/// run (exit 1); a named store that cannot be opened fails the run (exit 1)
/// with nothing on standard output for a script to read.
#[test]
fn run_json_prints_a_json_failure_when_the_named_store_cannot_be_opened() {
    let dir = scratch();
    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    let not_a_store = write(dir.path(), "notes.txt", "my notes, not a database\n");
    let (code, stdout, stderr) = on(&not_a_store, &["run", "--json", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("standard output is not JSON ({e}): {stdout:?}\n{stderr}"));
    assert_eq!(value["success"], false, "{value}");
}

/// A directory given as the store is refused as such, and nothing is left
/// beside it (a lock file was).
#[test]
fn a_directory_given_as_the_store_is_refused_leaving_nothing_beside_it() {
    let dir = scratch();
    let store = dir.path().join("runs");
    std::fs::create_dir(&store).unwrap_or_else(|e| panic!("{e}"));
    let (code, _, stderr) = on(&store, &["runs"]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    let mut lock = store.as_os_str().to_owned();
    lock.push(".lock");
    assert!(
        !std::path::Path::new(&lock).exists(),
        "a lock file was left beside the directory"
    );
}
