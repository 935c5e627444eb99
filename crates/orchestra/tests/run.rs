//! `orchestra run`, end to end: the offline main job, inputs, outputs, exit
//! codes, retries, tokens, secrets, and TOML and YAML giving the same run.

mod common;

use common::{example, fixture, json, orchestra, scratch, texts, write};
use predicates::prelude::*;

#[test]
fn the_offline_repo_report_runs_in_seconds_and_exits_0() {
    let started = std::time::Instant::now();
    let output = orchestra()
        .args(["run"])
        .arg(example("repo-report.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    for heading in [
        "# Repository report",
        "## Crates",
        "## Latest commits",
        "## Contributors",
    ] {
        assert!(
            stdout.contains(heading),
            "{heading} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains("- orchestra 0.1.0"), "{stdout}");
    assert!(stdout.contains("lines of Rust in"), "{stdout}");
    // Progress is logged line by line (stderr is not a terminal here)...
    assert!(
        stderr.contains("commits: running (attempt 1/2)"),
        "{stderr}"
    );
    assert!(stderr.contains("facts: done in"), "{stderr}");
    // ... and the run ends with the summary table.
    assert!(
        stderr.contains("kind      attempts  duration  tokens  status"),
        "{stderr}"
    );
    for agent in [
        "commits",
        "contributors",
        "crates",
        "size",
        "largest",
        "todos",
        "report",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.trim_start().starts_with(agent) && l.ends_with("done")),
            "no done row for {agent}:\n{stderr}"
        );
    }
}

#[test]
fn toml_and_yaml_give_identical_runs() {
    let run = |file: &str| {
        let output = orchestra()
            .args(["run", "--json", "--input", "hello"])
            .arg(fixture(file))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.status.code(), Some(0), "{}", texts(&output).1);
        let value = json(&texts(&output).0);
        let mut attempts = Vec::new();
        fn walk(trace: &serde_json::Value, depth: usize, out: &mut Vec<String>) {
            for record in trace["agent_executions"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{depth}:{}#{}:{}:{}",
                    record["agent_name"],
                    record["attempt"],
                    record["success"],
                    record["output"]["content"]
                ));
                if record.get("nested").is_some() {
                    walk(&record["nested"], depth + 1, out);
                }
            }
        }
        walk(&value["execution_trace"], 0, &mut attempts);
        attempts.sort();
        let contents: Vec<serde_json::Value> = value["agent_outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| o["content"].clone())
            .collect();
        (value["result"].clone(), contents, attempts)
    };
    let from_toml = run("pipeline.toml");
    let from_yaml = run("pipeline.yaml");
    assert_eq!(
        from_toml.0,
        "upper=HELLO count=5 inner=[> HELLO] input-was=pipeline"
    );
    assert_eq!(from_toml.2.len(), 7, "{:?}", from_toml.2);
    assert_eq!(from_toml, from_yaml);

    // The shipped examples agree too (on everything but the clock).
    let shape = |file: &str| {
        let output = orchestra()
            .args(["run", "--json"])
            .arg(example(file))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let value = json(&texts(&output).0);
        let names: Vec<String> = value["agent_outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                o["content"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        (value["success"].clone(), names)
    };
    assert_eq!(shape("repo-report.toml"), shape("repo-report.yaml"));
}

#[test]
fn input_comes_from_the_flag_a_file_stdin_or_the_workflow() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "echo.toml",
        "input = \"the default\"\n[flow]\nsequential = [\"echo\"]\n[[agents]]\nid = \"echo\"\nkind = \"template\"\ntemplate = \"got: {{input}}\"\n",
    );
    orchestra()
        .args(["run", "-q", "--input", "from the flag"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout("got: from the flag\n");
    let input = write(dir.path(), "input.txt", "from a file");
    orchestra()
        .args(["run", "-q", "--input-file"])
        .arg(&input)
        .arg(&file)
        .assert()
        .code(0)
        .stdout("got: from a file\n");
    orchestra()
        .args(["run", "-q"])
        .arg(&file)
        .write_stdin("from stdin")
        .assert()
        .code(0)
        .stdout("got: from stdin\n");
    orchestra()
        .args(["run", "-q"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout("got: the default\n");
    orchestra()
        .args(["run", "--input", "a", "--input-file"])
        .arg(&input)
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    orchestra()
        .args(["run", "--input-file", "/no/such/input.txt"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the input file"));
}

#[test]
fn quiet_prints_the_result_only_and_json_prints_the_whole_output() {
    orchestra()
        .args(["run", "--quiet", "--input", "hi"])
        .arg(fixture("pipeline.toml"))
        .assert()
        .code(0)
        .stdout("upper=HI count=2 inner=[> HI] input-was=pipeline\n")
        .stderr("");

    let output = orchestra()
        .args(["run", "--json", "--input", "hi"])
        .arg(fixture("pipeline.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let value = json(&texts(&output).0);
    assert_eq!(value["success"], true);
    assert_eq!(value["agent_outputs"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        value["execution_trace"]["agent_executions"][1]["agent_name"],
        "fanout"
    );
    assert!(value["execution_trace"]["agent_executions"][1]["nested"].is_object());
}

#[test]
fn a_failing_agent_exits_1_and_later_steps_never_run() {
    let output = orchestra()
        .args(["run"])
        .arg(fixture("failing.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("boom: the disk is full"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("broken") && l.ends_with("failed")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("after") && l.ends_with("not run")),
        "{stderr}"
    );
    let total = stderr.find("\ntotal").unwrap_or(usize::MAX);
    let error = stderr.find("error: the run failed").unwrap_or(0);
    assert!(
        error > total,
        "the error should come after the summary:\n{stderr}"
    );

    // --json reports the failure as JSON too.
    let output = orchestra()
        .args(["run", "--json", "--quiet"])
        .arg(fixture("failing.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(1));
    let value = json(&texts(&output).0);
    assert_eq!(value["success"], false);
    assert!(value["error"]
        .as_str()
        .is_some_and(|e| e.contains("broken")));
}

#[test]
fn retries_are_shown_live_and_every_attempt_is_traced() {
    let dir = scratch();
    let trace = dir.path().join("trace.json");
    let chrome = dir.path().join("chrome.json");
    let output = orchestra()
        .args(["run", "--trace"])
        .arg(&trace)
        .arg("--chrome-trace")
        .arg(&chrome)
        .arg(fixture("flaky.toml"))
        .env("FLAKY_DIR", dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1. flaky: ok after 2 attempts"), "{stdout}");
    assert!(stderr.contains("flaky: attempt 1/3 failed"), "{stderr}");
    assert!(stderr.contains("flaky: retrying in"), "{stderr}");
    assert!(stderr.contains("(attempt 2/3)"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("flaky") && l.contains(" 2 ") && l.ends_with("done")),
        "{stderr}"
    );

    // Tokens reported by an agent show in its row and in the total.
    assert!(stderr.contains("12 in / 5 out"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("total") && l.contains("12 in / 5 out")),
        "{stderr}"
    );

    let trace = json(&std::fs::read_to_string(&trace).unwrap_or_default());
    let records = trace["agent_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(records.len(), 3);
    let flaky: Vec<_> = records
        .iter()
        .filter(|r| r["agent_name"] == "flaky")
        .collect();
    assert_eq!(flaky.len(), 2);
    assert_eq!(flaky[0]["success"], false);
    assert_eq!(flaky[1]["attempt"], 2);

    // The Chrome trace is valid JSON with one slice per attempt.
    let chrome = json(&std::fs::read_to_string(&chrome).unwrap_or_default());
    let slices: Vec<_> = chrome["traceEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(slices.len(), 3);
    assert_eq!(slices.iter().filter(|s| s["name"] == "flaky").count(), 2);
    assert!(slices
        .iter()
        .all(|s| s["ts"].is_i64() && s["dur"].as_i64() > Some(0)));
    // flaky #1 and priced ran at once: they sit on different lanes.
    let lane = |name: &str, attempt: u64| {
        slices
            .iter()
            .find(|s| s["name"] == name && s["args"]["attempt"] == attempt)
            .map(|s| s["tid"].clone())
    };
    assert_ne!(lane("flaky", 1), lane("priced", 1));
}

#[test]
fn chrome_trace_has_one_slice_per_attempt_of_nested_runs() {
    let dir = scratch();
    let chrome = dir.path().join("chrome.json");
    orchestra()
        .args(["run", "-q", "--input", "x", "--chrome-trace"])
        .arg(&chrome)
        .arg(fixture("pipeline.toml"))
        .assert()
        .code(0);
    let chrome = json(&std::fs::read_to_string(&chrome).unwrap_or_default());
    let events = chrome["traceEvents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut names: Vec<String> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["count", "fanout", "final", "inner", "quote", "upper", "wrap"]
    );
    assert!(events
        .iter()
        .any(|e| e["ph"] == "M" && e["name"] == "thread_name"));
}

#[test]
fn environment_values_are_never_echoed() {
    let dir = scratch();
    let trace = dir.path().join("trace.json");
    let file = write(
        dir.path(),
        "secret.yaml",
        "flow:\n  sequential: [leak, fail]\n  retries: 0\nagents:\n  - id: leak\n    kind: command\n    command: [echo, \"token=${SECRET_TOKEN}\"]\n  - id: fail\n    kind: command\n    shell: \"echo ${SECRET_TOKEN} >&2; exit 9\"\n",
    );
    let output = orchestra()
        .args(["run", "--json", "--trace"])
        .arg(&trace)
        .arg(&file)
        .env("SECRET_TOKEN", "sk-live-0123456789")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let written = std::fs::read_to_string(&trace).unwrap_or_default();
    for text in [&stdout, &stderr, &written] {
        assert!(
            !text.contains("sk-live-0123456789"),
            "secret leaked:\n{text}"
        );
    }
    assert!(written.contains("token=${SECRET_TOKEN}"), "{written}");
    assert!(stderr.contains("${SECRET_TOKEN}"), "{stderr}");
}

#[test]
fn the_run_timeout_fails_the_run_with_exit_1() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "slow.toml",
        "[flow]\nsequential = [\"slow\"]\ntimeout = \"300ms\"\n[[agents]]\nid = \"slow\"\nkind = \"command\"\ncommand = [\"sleep\", \"30\"]\nstdin = \"none\"\n",
    );
    let started = std::time::Instant::now();
    orchestra()
        .args(["run"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("timed out"));
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn an_agent_timeout_is_an_attempt_failure_that_is_retried() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "slow.toml",
        "[flow]\nsequential = [\"slow\"]\nretries = 1\nbackoff = { initial = \"10ms\" }\n[[agents]]\nid = \"slow\"\nkind = \"command\"\ncommand = [\"sleep\", \"30\"]\nstdin = \"none\"\ntimeout = \"200ms\"\n",
    );
    let output = orchestra()
        .args(["run"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = texts(&output).1;
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exceeded its 200ms timeout"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("slow") && l.contains(" 2 ") && l.ends_with("failed")),
        "{stderr}"
    );
}

#[test]
fn a_tolerant_join_returns_a_result_but_still_reports_the_failed_agent() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "any.toml",
        "[flow]\nparallel = [\"good\", \"bad\"]\njoin = \"any\"\nretries = 0\n[[agents]]\nid = \"good\"\nkind = \"template\"\ntemplate = \"fine\"\n[[agents]]\nid = \"bad\"\nkind = \"command\"\nshell = \"exit 4\"\n",
    );
    orchestra()
        .args(["run"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("1. good: fine"))
        .stderr(predicate::str::contains("✗ bad:"));
}
