//! The commands that run no agent — `agents`, `graph`, `trace`, `schema` —
//! and usage errors.

mod common;

use common::{example, fixture, json, orchestra, scratch, texts};
use predicates::prelude::*;

#[test]
fn agents_lists_the_registry_metadata_as_a_table() {
    let output = orchestra()
        .arg("agents")
        .arg(fixture("pipeline.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let header = stdout.lines().next().unwrap_or_default();
    for column in [
        "id", "kind", "category", "tools", "skills", "tags", "version", "retries", "timeout",
        "enabled",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(stdout.contains("final"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("final") && l.contains("2.1.0")),
        "{stdout}"
    );
    assert!(stderr.contains("5 of 5 agent(s) match"), "{stderr}");
}

#[test]
fn agents_filters_like_the_registry() {
    let ids = |args: &[&str]| -> Vec<String> {
        let output = orchestra()
            .arg("agents")
            .arg(fixture("pipeline.yaml"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.status.code(), Some(0));
        texts(&output)
            .0
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&["--category", "text"]), ["quote", "upper", "wrap"]);
    assert_eq!(
        ids(&["--tag", "offline", "--tag", "text"]),
        ["quote", "upper"]
    );
    assert_eq!(ids(&["--tool", "wc"]), ["count"]);
    assert_eq!(ids(&["--enabled", "--category", "writing"]), ["final"]);
    assert!(ids(&["--skill", "nothing"]).is_empty());
}

#[test]
fn agents_and_graph_need_no_environment_variables() {
    orchestra()
        .arg("agents")
        .arg(example("claude-review.toml"))
        .args(["--skill", "code-review"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("correctness"))
        .stdout(predicate::str::contains("clarity"))
        .stdout(predicate::str::contains("editor").not());
}

#[test]
fn graph_draws_the_nested_flow_in_mermaid_and_dot() {
    let output = orchestra()
        .arg("graph")
        .arg(fixture("pipeline.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let mermaid = texts(&output).0;
    assert_eq!(output.status.code(), Some(0));
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("subgraph"), "{mermaid}");
    assert!(
        mermaid.contains("fanout · parallel · join all"),
        "{mermaid}"
    );
    assert!(mermaid.contains("inner · sequential"), "{mermaid}");
    assert!(mermaid.contains("[\"upper<br/>command\"]"), "{mermaid}");
    assert_eq!(
        mermaid.matches("subgraph").count(),
        mermaid.matches("\n    end").count()
            + mermaid.matches("\n        end").count()
            + mermaid.matches("\n            end").count()
    );
    // upper fans out to both branches, and both branches fan in to final.
    let id = |label: &str| {
        mermaid
            .lines()
            .find(|l| l.contains(&format!("[\"{label}<br/>")))
            .and_then(|l| l.trim().split('[').next())
            .unwrap_or_default()
            .to_owned()
    };
    for (from, to) in [
        ("upper", "count"),
        ("upper", "quote"),
        ("quote", "wrap"),
        ("count", "final"),
        ("wrap", "final"),
    ] {
        let edge = format!("{} --> {}", id(from), id(to));
        assert!(
            mermaid.contains(&edge),
            "no edge {from} -> {to} ({edge}) in:\n{mermaid}"
        );
    }

    orchestra()
        .args(["graph", "--format", "dot"])
        .arg(fixture("pipeline.yaml"))
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("digraph \"pipeline\" {"))
        .stdout(predicate::str::contains("subgraph cluster_"))
        .stdout(predicate::str::contains("input -> "))
        .stdout(predicate::str::contains(" -> output;"));
    orchestra()
        .args(["graph", "--format", "png"])
        .arg(fixture("pipeline.yaml"))
        .assert()
        .code(2);
}

#[test]
fn trace_shows_a_saved_trace_as_a_table_and_a_timeline() {
    let dir = scratch();
    let saved = dir.path().join("trace.json");
    orchestra()
        .args(["run", "-q", "--trace"])
        .arg(&saved)
        .arg(fixture("flaky.toml"))
        .env("FLAKY_DIR", dir.path())
        .assert()
        .code(0);
    let output = orchestra()
        .arg("trace")
        .arg(&saved)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = texts(&output).0;
    assert_eq!(output.status.code(), Some(0));
    // The columns are as wide as what they hold (a start of +155ms widens
    // its column on a slow machine): the header's words, in order.
    let header: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        header.starts_with(&["agent", "attempt", "start", "duration"]),
        "{stdout}"
    );
    assert!(stdout.contains("3 attempt(s)"), "{stdout}");
    assert!(stdout.contains("flaky #1"), "{stdout}");
    assert!(stdout.contains("flaky #2"), "{stdout}");
    assert!(stdout.contains('░') && stdout.contains('█'), "{stdout}");
    assert!(stdout.contains("12 in / 5 out"), "{stdout}");

    // The JSON output of `run --json` is a trace file too.
    let output_json = dir.path().join("output.json");
    let output = orchestra()
        .args(["run", "--json", "--quiet", "--input", "x"])
        .arg(fixture("pipeline.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&output_json, &output.stdout).unwrap_or_else(|e| panic!("{e}"));
    orchestra()
        .arg("trace")
        .arg(&output_json)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("    quote"))
        .stdout(predicate::str::contains("7 attempt(s)"));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"not\": \"a trace\"}").unwrap_or_else(|e| panic!("{e}"));
    orchestra()
        .arg("trace")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not an execution trace"));
    orchestra()
        .args(["trace", "/no/such/trace.json"])
        .assert()
        .code(2);
}

#[test]
fn schema_prints_the_json_schema_of_workflow_files() {
    let output = orchestra()
        .arg("schema")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(0));
    let schema = json(&texts(&output).0);
    assert_eq!(schema["title"], "orchestra workflow");
    for property in ["agents", "groups", "flow", "working_dir", "input"] {
        assert!(schema["properties"].get(property).is_some(), "{property}");
    }
    let text = schema.to_string();
    for kind in ["claude", "claude-code", "openai", "command", "template"] {
        assert!(text.contains(&format!("\"{kind}\"")), "{kind}");
    }
    assert!(text.contains("at_least"));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    orchestra().assert().code(2);
    orchestra().arg("frobnicate").assert().code(2);
    orchestra().args(["run"]).assert().code(2);
    orchestra()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Exit codes: 0 success, 1 an agent or the run failed, 2 bad usage",
        ));
    orchestra()
        .args(["run", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("--chrome-trace"));
    orchestra()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("orchestra "));
    let dir = scratch();
    orchestra()
        .args(["run", "--trace"])
        .arg(dir.path().join("no/such/dir/trace.json"))
        .arg(fixture("pipeline.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn runs_limit_0_is_a_usage_error_not_an_empty_store() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = dir.path().join("one.toml");
    std::fs::write(&file, common::ONE_AGENT).unwrap_or_else(|e| panic!("{e}"));
    common::run_kept(&store, &file);
    let listed = orchestra()
        .args(["runs", "--limit", "0", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&listed);
    assert_eq!(listed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`--limit`"), "{stderr}");
    assert!(!stderr.contains("no runs in the store"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // Any other limit lists the run.
    let listed = orchestra()
        .args(["runs", "--limit", "1", "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.status.code(), Some(0));
    assert!(texts(&listed).0.contains("one"), "{}", texts(&listed).0);
}

#[cfg(not(feature = "otel"))]
#[test]
fn otlp_needs_the_otel_feature() {
    orchestra()
        .args(["run", "--otlp", "http://127.0.0.1:4318"])
        .arg(fixture("pipeline.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`otel` feature"));
}
