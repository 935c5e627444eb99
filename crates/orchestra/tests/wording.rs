//! Messages speak the workflow's language, not the libraries' underneath:
//! no Rust type names or parser options, YAML help for YAML files, a hint for
//! YAML's yes/no booleans, short echoes of huge lines, "not retried" for
//! failures that will not be retried, relative programs explained, bad output
//! paths refused before the run, Chrome-trace tracks named after agents.

mod common;

use common::{fixture, json, outcome, scratch, write};

#[test]
fn parser_messages_speak_the_workflows_words() {
    let dir = scratch();
    let yaml = write(
        dir.path(),
        "dup.yaml",
        "flow:\n  sequential: [a]\n  sequential: [b]\nagents:\n  - {id: a, kind: template, template: x}\n",
    );
    let run = outcome(&["validate"], &yaml, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("error: `sequential` is given twice"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("DuplicateKeyPolicy"), "{}", run.stderr);

    let toml = write(
        dir.path(),
        "types.toml",
        "[flow]\nsequential = [\"a\"]\nretries = -3\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n",
    );
    let run = outcome(&["validate"], &toml, &[]);
    assert!(
        run.stderr
            .contains("expected a whole number from 0 to 4294967295"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("u32"), "{}", run.stderr);

    let huge = write(
        dir.path(),
        "huge.toml",
        "[flow]\nsequential = [\"a\"]\nparallel_limit = 1e308\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n",
    );
    let run = outcome(&["validate"], &huge, &[]);
    assert!(run.stderr.contains("1e308"), "{}", run.stderr);
    assert!(!run.stderr.contains("0000000000000000"), "{}", run.stderr);

    let empty = write(
        dir.path(),
        "empty.yaml",
        "agents:\n  - {id: a, kind: template, template: x}\n",
    );
    let run = outcome(&["validate"], &empty, &[]);
    assert!(
        run.stderr.contains("flow:\n  sequential: [first-agent"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("[flow]"), "{}", run.stderr);
}

#[test]
fn an_unclosed_yaml_bracket_is_named_where_it_opened() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "unclosed.yaml",
        "flow:\n  sequential: [a, b\nagents:\n  - {id: a, kind: template, template: x}\n",
    );
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the `[` on line 2, column 15 is never closed: add `]` where its items end"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_value_in_a_closed_yaml_list_gets_no_unclosed_bracket_hint() {
    let dir = scratch();
    for flow in [
        "flow:\n  sequential: [a, 5]\n",
        "flow: {sequential: [a, 5]}\n",
    ] {
        let text = format!("{flow}agents:\n  - {{id: a, kind: template, template: x}}\n");
        let file = write(dir.path(), "typed.yaml", &text);
        let run = outcome(&["validate"], &file, &[]);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr.contains("invalid type: integer `5`"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("never closed"), "{}", run.stderr);
    }
}

#[test]
fn yaml_yes_and_no_in_equals_get_a_quote_it_hint() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "norway.yaml",
        "flow:\n  nodes: [a, b]\n  edges: [\"start -> a\", \"b -> end\"]\n  routes:\n    - from: a\n      when: [{equals: no, to: b}]\n      default: end\nagents:\n  - {id: a, kind: template, template: \"no\"}\n  - {id: b, kind: template, template: reached}\n",
    );
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`equals: no` compares with the boolean false, not the text \"no\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("quote it to compare text: equals: \"no\""),
        "{}",
        run.stderr
    );
}

#[test]
fn a_huge_line_is_not_echoed_whole() {
    let dir = scratch();
    let text = format!(
        "[flow]\nsequential = [\"a\"]\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"{}{{{{nope}}}}\"\n",
        "x".repeat(2_000_000)
    );
    let file = write(dir.path(), "huge-line.toml", &text);
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(
        run.code,
        Some(2),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        run.stderr.len() < 5_000,
        "{} bytes of diagnostics",
        run.stderr.len()
    );
    assert!(run.stderr.contains("{{nope}}"), "{}", run.stderr);
}

#[test]
fn a_permanent_failure_is_not_announced_as_the_first_of_several_attempts() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "once.toml",
        "[flow]\nsequential = [\"bad\"]\n[[agents]]\nid = \"bad\"\nkind = \"command\"\nshell = \"exit 1\"\n",
    );
    let run = outcome(&["run"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("bad: failed (not retried: the failure is permanent)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("attempt 1/4 failed"), "{}", run.stderr);
    // The agent is named once per message.
    assert!(
        run.stderr.contains(
            "error: the run failed: agent `bad` failed: `sh -c exit 1` failed with exit code 1"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("✗ bad: `sh -c exit 1` failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_relative_program_next_to_the_workflow_says_how_to_run_it() {
    let dir = scratch();
    let sub = dir.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("{e}"));
    let helper = write(&sub, "helper.sh", "#!/bin/sh\necho helped\n");
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let file = write(
        &sub,
        "helper.toml",
        "[flow]\nsequential = [\"h\"]\n[[agents]]\nid = \"h\"\nkind = \"command\"\ncommand = [\"./helper.sh\"]\n",
    );
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(!run.stderr.contains("not on PATH"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("it is next to the workflow file, but the program runs in"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("working_dir = \".\""), "{}", run.stderr);
}

#[test]
fn a_trace_path_that_is_a_directory_is_refused_before_anything_runs() {
    let dir = scratch();
    let marker = dir.path().join("ran");
    let file = write(
        dir.path(),
        "mark.toml",
        "[flow]\nsequential = [\"mark\"]\n[[agents]]\nid = \"mark\"\nkind = \"command\"\nshell = \"touch \\\"$MARK\\\"\"\n",
    );
    for flag in ["--trace", "--chrome-trace"] {
        let run = outcome(
            &["run", flag, &dir.path().to_string_lossy()],
            &file,
            &[("MARK", &marker.to_string_lossy())],
        );
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr.contains("it is a directory; give a file name"),
            "{}",
            run.stderr
        );
        assert!(!marker.exists(), "the run started");
    }
}

#[test]
fn chrome_trace_tracks_are_named_after_their_agents() {
    let dir = scratch();
    let chrome = dir.path().join("chrome.json");
    let run = outcome(
        &[
            "run",
            "-q",
            "--input",
            "x",
            "--chrome-trace",
            &chrome.to_string_lossy(),
        ],
        &fixture("pipeline.toml"),
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let chrome = json(&std::fs::read_to_string(&chrome).unwrap_or_default());
    let tracks: Vec<String> = chrome["traceEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str().map(str::to_owned))
        .collect();
    assert!(!tracks.is_empty());
    assert!(tracks.iter().all(|t| !t.starts_with("lane ")), "{tracks:?}");
    assert!(tracks.iter().any(|t| t.contains("upper")), "{tracks:?}");
}

#[test]
fn a_name_declared_twice_is_reported_where_it_comes_second_in_the_file() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "twice.toml",
        "[flow]\nsequential = [\"g\"]\n\n[[groups]]\nid = \"g\"\nsequential = [\"a\"]\n\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n\n[[agents]]\nid = \"g\"\nkind = \"template\"\ntemplate = \"x\"\n",
    );
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("twice.toml:14:7"), "{}", run.stderr);
    assert!(
        run.stderr.contains("first declared on line 5"),
        "{}",
        run.stderr
    );
}
