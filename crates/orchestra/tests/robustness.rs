//! No input makes `orchestra` panic: deep structures are refused with a
//! diagnostic, and a closed standard output ends the program quietly.

mod common;

use std::fmt::Write as _;
use std::process::Command;

use common::{outcome, parallel_of, scratch, write};

/// Runs `orchestra ARGS | head -c 1` in bash and returns orchestra's exit code
/// and its standard error.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let dir = scratch();
    let stderr = dir.path().join("stderr.txt");
    let status = Command::new("bash")
        // Runs go to the tests' store, not the user's.
        .env("ORCHESTRA_STORE", common::test_store())
        .arg("-c")
        .arg(r#""$0" "$@" 2>"$STDERR" | head -c 1 >/dev/null; exit "${PIPESTATUS[0]}""#)
        .arg(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .env("STDERR", &stderr)
        .env("NO_COLOR", "1")
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        status.code(),
        std::fs::read_to_string(&stderr).unwrap_or_default(),
    )
}

/// A workflow whose flow is the chain of named groups `g{first}` … `g{last}`,
/// the last holding the one agent.
fn chain_of_groups(first: usize, last: usize) -> String {
    let mut text = format!(
        "[flow]\nsequential = [\"g{first}\"]\n\n[[agents]]\nid = \"leaf\"\nkind = \"template\"\ntemplate = \"x\"\n"
    );
    for level in first..=last {
        let next = if level == last {
            "leaf".to_owned()
        } else {
            format!("g{}", level + 1)
        };
        let _ = write!(
            text,
            "\n[[groups]]\nid = \"g{level}\"\nsequential = [\"{next}\"]\n"
        );
    }
    text
}

#[test]
fn validate_refuses_groups_nested_too_deep_instead_of_overflowing_the_stack() {
    let dir = scratch();
    let file = write(dir.path(), "deep.toml", &chain_of_groups(0, 4999));
    let run = outcome(&["validate"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(2), "{stderr}");
    assert!(
        stderr.contains("groups nest more than 64 levels deep at `g63`"),
        "{stderr}"
    );
    assert!(stderr.contains("flow → … → g62 → g63"), "{stderr}");
    assert_eq!(stderr.matches("nest more than").count(), 1, "{stderr}");

    // At the limit (the root and 63 groups), the flow runs.
    let file = write(dir.path(), "at-limit.toml", &chain_of_groups(1, 63));
    let run = outcome(&["run", "--quiet"], &file, &[]);
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    assert_eq!(stdout, "x\n");
}

#[test]
fn graph_into_a_closed_pipe_ends_quietly() {
    let dir = scratch();
    // Far more than a pipe's buffer, so the writer meets the closed end.
    let text = parallel_of(3000, "", "kind = \"template\"\ntemplate = \"{{input}}\"");
    let file = write(dir.path(), "wide.toml", &text);
    let file = file.to_string_lossy().into_owned();
    for format in ["dot", "mermaid"] {
        let (code, stderr) = into_closed_pipe(&["graph", &file, "--format", format]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn output_that_cannot_be_written_fails_the_command() {
    // A full disk is not a reader that stopped reading: the result is lost,
    // and the command says so and fails.
    let dir = scratch();
    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    let file = file.to_string_lossy().into_owned();
    for args in [
        vec!["run", "--no-store", "-q", file.as_str()],
        vec!["run", "--no-store", "-q", "--json", file.as_str()],
        vec!["graph", file.as_str()],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap_or_else(|e| panic!("/dev/full: {e}"));
        let ran = Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .env("ORCHESTRA_STORE", common::test_store())
            .args(&args)
            .stdout(full)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, stderr) = common::texts(&ran);
        assert_eq!(ran.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("writing to standard output failed"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn run_json_into_a_closed_pipe_ends_quietly_and_still_writes_the_trace() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "big.toml",
        r#"
[flow]
sequential = ["big"]

[[agents]]
id = "big"
kind = "command"
shell = "head -c 300000 /dev/zero | tr '\\0' x"
"#,
    );
    let trace = dir.path().join("trace.json");
    let (code, stderr) = into_closed_pipe(&[
        "run",
        "--json",
        "--trace",
        &trace.to_string_lossy(),
        &file.to_string_lossy(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(trace.is_file(), "{stderr}");
}

#[test]
fn runs_and_show_into_a_closed_pipe_end_quietly() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let store = store.to_string_lossy().into_owned();
    // A run whose record is far more than a pipe's buffer.
    let text = parallel_of(3000, "", "kind = \"template\"\ntemplate = \"{{input}}\"");
    let file = write(dir.path(), "wide.toml", &text);
    let store_path = std::path::Path::new(&store);
    common::run_kept(store_path, &file);
    let runs = common::stored_runs(store_path);
    let id = runs[0]["id"].as_str().unwrap_or_default().to_owned();
    for args in [
        vec!["show", id.as_str(), "--store", store.as_str()],
        vec!["runs", "--store", store.as_str()],
    ] {
        let (code, stderr) = into_closed_pipe(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn prune_with_an_age_beyond_the_calendar_deletes_nothing_and_does_not_panic() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    common::run_kept(&store, &file);
    let pruned = common::orchestra()
        .args(["prune", "--older-than", "1000000000d", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&pruned.stderr);
    assert_eq!(pruned.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("deleted 0 run(s)"), "{stderr}");
}

#[test]
fn a_workflow_path_to_an_endless_file_is_refused_without_reading_it_all() {
    let dir = scratch();
    let link = dir.path().join("endless.toml");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap_or_else(|e| panic!("{e}"));
    let checked = outcome(&["validate"], &link, &[]);
    assert_eq!(checked.code, Some(2), "{}", checked.stderr);
    assert!(checked.stderr.contains("larger than"), "{}", checked.stderr);
}

#[test]
fn an_unwritable_trace_path_is_refused_before_anything_runs() {
    let dir = scratch();
    let marker = dir.path().join("ran.txt");
    let file = write(
        dir.path(),
        "side-effect.toml",
        &format!(
            "[flow]\nsequential = [\"a\"]\n\n[[agents]]\nid = \"a\"\nkind = \"command\"\nshell = \"echo ran > '{}'; echo ok\"\n",
            marker.display()
        ),
    );
    // `/sys` takes no new files, whoever asks (root included).
    let trace = std::path::Path::new("/sys/orchestra-test-trace.json");
    let run = outcome(
        &["run", "--no-store", "--trace", &trace.to_string_lossy()],
        &file,
        &[],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("cannot write"), "{}", run.stderr);
    assert!(
        !marker.exists(),
        "the agent ran before the trace path was checked"
    );
}

#[test]
fn reading_a_store_that_is_not_there_is_a_usage_error_and_creates_nothing() {
    let dir = scratch();
    let store = dir.path().join("typo").join("runs.db");
    for command in ["runs", "prune"] {
        let mut orchestra = common::orchestra();
        orchestra.arg(command);
        if command == "prune" {
            orchestra.args(["--keep", "1"]);
        }
        let read = orchestra
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&read.stderr);
        assert_eq!(read.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("there is no run store"),
            "{command}: {stderr}"
        );
    }
    assert!(!dir.path().join("typo").exists(), "nothing was created");
}

/// A workflow whose flow holds `depth` groups written in place, one inside
/// the other, the innermost holding the one agent: TOML or YAML.
fn groups_in_place(depth: usize, yaml: bool) -> String {
    if yaml {
        let mut inner = "leaf".to_owned();
        for _ in 0..depth {
            inner = format!("{{sequential: [{inner}]}}");
        }
        format!("flow:\n  sequential: [{inner}]\nagents:\n  - {{id: leaf, kind: template, template: x}}\n")
    } else {
        let mut inner = "\"leaf\"".to_owned();
        for _ in 0..depth {
            inner = format!("{{ sequential = [{inner}] }}");
        }
        format!("[flow]\nsequential = [{inner}]\n\n[[agents]]\nid = \"leaf\"\nkind = \"template\"\ntemplate = \"x\"\n")
    }
}

#[test]
fn groups_written_in_place_nest_as_deep_in_toml_as_in_yaml() {
    let dir = scratch();
    let mut refusals = Vec::new();
    for (yaml, name) in [(false, "deep.toml"), (true, "deep.yaml")] {
        // 39 groups written in place (40 with the root) run in both formats.
        let file = write(dir.path(), name, &groups_in_place(39, yaml));
        let run = outcome(&["run", "--quiet"], &file, &[]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert_eq!(run.stdout, "x\n", "{name}");

        // One more is refused in both, with the same message naming the limit.
        let file = write(dir.path(), name, &groups_in_place(40, yaml));
        let run = outcome(&["validate"], &file, &[]);
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        let message = run.stderr.lines().next().unwrap_or_default().to_owned();
        assert!(
            message.contains("groups written in place nest more than 39 levels deep"),
            "{name}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("named groups nest up to 64 levels"),
            "{}",
            run.stderr
        );
        refusals.push(message);
    }
    assert_eq!(refusals[0], refusals[1]);
}
