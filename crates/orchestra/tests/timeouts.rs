//! Time limits speak the workflow's language: a run that times out names the
//! group and the key that bounds it, and `agents` shows the limit that
//! applies (none unless the workflow sets one).

mod common;

use common::{is_running, outcome, scratch, write};

#[test]
fn a_run_timeout_names_the_group_and_says_how_to_raise_it() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "slow.toml",
        r#"
[flow]
sequential = ["mid"]
retries = 0

[[groups]]
id = "mid"
sequential = ["slow"]
timeout = "300ms"

[[agents]]
id = "slow"
kind = "command"
command = ["sleep", "30"]
stdin = "none"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("group `mid` exceeded its 300ms run timeout"),
        "{stderr}"
    );
    assert!(!stderr.contains("SequentialOrchestrator"), "{stderr}");
    assert!(
        stderr.contains("help: a group's `timeout` bounds its whole run"),
        "{stderr}"
    );
    assert!(stderr.contains("timeout = \"10m\""), "{stderr}");
}

#[test]
fn agents_shows_the_attempt_timeout_that_applies() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "limits.toml",
        r#"
[flow]
sequential = ["own", { sequential = ["inherited"], agent_timeout = "45s" }, "unbounded"]

[[agents]]
id = "own"
kind = "template"
template = "x"
timeout = "10m"

[[agents]]
id = "inherited"
kind = "template"
template = "x"

[[agents]]
id = "unbounded"
kind = "template"
template = "x"
"#,
    );
    let run = outcome(&["agents"], &file, &[]);
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    let timeout_of = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .and_then(|l| l.split_whitespace().rev().nth(1))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(timeout_of("own"), "10m", "{stdout}");
    assert_eq!(timeout_of("inherited"), "45s", "{stdout}");
    assert_eq!(timeout_of("unbounded"), "none", "{stdout}");
}

#[test]
fn a_timed_out_agent_leaves_no_process_behind_in_its_own_session_or_ignoring_sigterm() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "escaper.toml",
        r#"
[flow]
sequential = ["escaper"]
retries = 0
agent_timeout = "500ms"

[[agents]]
id = "escaper"
kind = "command"
shell = "setsid sh -c 'exec sleep 86431' & sh -c 'trap \"\" TERM; exec sleep 86432' & wait"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // Gone by the time orchestra exits: it waits out the grace period.
    for marker in ["sleep 86431", "sleep 86432"] {
        assert!(!is_running(marker), "`{marker}` outlived the run");
    }
}

#[test]
fn an_agents_sub_second_timeout_bounds_its_attempts_exactly_in_a_graph() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "hasty.toml",
        r#"
[flow]
nodes = ["slow"]
edges = ["start -> slow -> end"]
retries = 0

[[agents]]
id = "slow"
kind = "command"
command = ["sleep", "30"]
stdin = "none"
timeout = "300ms"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    // The bound the attempt ran under, not the registry's whole seconds.
    assert!(stderr.contains("exceeded its 300ms timeout"), "{stderr}");
}

#[test]
fn agents_shows_sub_second_timeouts_as_written() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "quick.toml",
        r#"
[flow]
sequential = ["own", { sequential = ["inherited"], agent_timeout = "1500ms" }]

[[agents]]
id = "own"
kind = "template"
template = "x"
timeout = "300ms"

[[agents]]
id = "inherited"
kind = "template"
template = "x"
"#,
    );
    let run = outcome(&["agents"], &file, &[]);
    let stdout = run.stdout;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let timeout_of = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .and_then(|l| l.split_whitespace().rev().nth(1))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(timeout_of("own"), "300ms", "{stdout}");
    assert_eq!(timeout_of("inherited"), "1.5s", "{stdout}");
}
