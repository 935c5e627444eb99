//! The limits users hit: open files with many agents at once, the size of a
//! command's output, and what traces keep of big texts.

mod common;

use std::process::Command;

use common::{json, outcome, parallel_of, scratch, write};

#[test]
fn many_agents_at_once_start_under_a_low_soft_open_files_limit() {
    let dir = scratch();
    let text = parallel_of(
        150,
        "parallel_limit = 150\nretries = 0",
        "kind = \"command\"\ncommand = [\"sleep\", \"0.5\"]\nstdin = \"none\"",
    );
    let file = write(dir.path(), "many.toml", &text);
    // 150 programs hold ~600 descriptors: far past a soft limit of 64, within
    // the hard limit orchestra raises it to.
    let output = Command::new("bash")
        // Runs go to the tests' store, not the user's.
        .env("ORCHESTRA_STORE", common::test_store())
        .arg("-c")
        .arg(r#"ulimit -Sn 64 && exec "$0" run --quiet "$1""#)
        .arg(env!("CARGO_BIN_EXE_orchestra"))
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}

#[test]
fn max_output_bounds_what_a_command_may_print() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "chatty.toml",
        r#"
[flow]
sequential = ["chatty"]
retries = 0

[[agents]]
id = "chatty"
kind = "command"
shell = "head -c 5000 /dev/zero | tr '\\0' x"
max_output = "1KiB"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("printed more than 1024 bytes"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`max_output` in a workflow"),
        "{}",
        run.stderr
    );
}

#[test]
fn trace_text_limit_cuts_big_texts_in_the_trace_but_not_the_result() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "big.toml",
        r#"
trace_text_limit = "1KiB"

[flow]
sequential = ["big", "echo"]

[[agents]]
id = "big"
kind = "command"
shell = "head -c 100000 /dev/zero | tr '\\0' x"

[[agents]]
id = "echo"
kind = "command"
command = ["cat"]
"#,
    );
    let trace = dir.path().join("trace.json");
    let run = outcome(&["run", "--trace", &trace.to_string_lossy()], &file, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout.trim_end().len(), 100_000);
    let written = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(written.len() < 20_000, "trace of {} bytes", written.len());
    let value = json(&written);
    let first = &value["agent_executions"][0]["output"]["content"];
    assert!(
        first.as_str().is_some_and(|text| text.len() < 2_000),
        "{first}"
    );
}

#[test]
fn a_group_that_reaches_its_timeout_is_not_run_again_whole() {
    let dir = scratch();
    let marks = dir.path().join("marks");
    let file = write(
        dir.path(),
        "slow.toml",
        &format!(
            r#"
[flow]
sequential = ["mid"]

[[groups]]
id = "mid"
sequential = ["slow"]
timeout = "300ms"

[[agents]]
id = "slow"
kind = "command"
shell = "echo started >> '{marks}'; sleep 30"
stdin = "none"
"#,
            marks = marks.display()
        ),
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("group `mid` exceeded its 300ms run timeout"),
        "{stderr}"
    );
    // The flow's default retries are the steps' own: the group ran once.
    let started = std::fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(started.lines().count(), 1, "{stderr}");
}
