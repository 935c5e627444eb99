//! Edges of what a run exports and what its templates read: `orchestra
//! trace` on what `run --json` printed whatever the outcome, a trace written
//! to a FIFO, the Chrome
//! trace-event file, the OTLP run span's status, and `{{output.ID}}` of a map.

mod common;

use common::{json, outcome, scratch, write};

/// A sequence whose second agent fails for good.
const FAILING: &str = r#"
[flow]
sequential = ["first", "broken"]
retries = 0

[[agents]]
id = "first"
kind = "template"
template = "ok"

[[agents]]
id = "broken"
kind = "command"
shell = "echo 'no luck' >&2; exit 1"
"#;

/// A graph that pauses on a question.
const ASKING: &str = r#"
[flow]
nodes = ["plan", "ship"]
edges = ["start -> plan -> approve -> ship -> end"]

[[flow.asks]]
id = "approve"
question = "Ship?"

[[agents]]
id = "plan"
kind = "template"
template = "plan for {{input}}"

[[agents]]
id = "ship"
kind = "template"
template = "shipped"
"#;

#[test]
fn trace_reads_what_run_json_printed_for_a_failed_or_paused_run() {
    let dir = scratch();
    for (name, text, code, agent) in [
        ("failing.toml", FAILING, 1, "broken"),
        ("asking.toml", ASKING, 3, "plan"),
    ] {
        let file = write(dir.path(), name, text);
        let ran = outcome(
            &["run", "--no-store", "--json", "--input", "v1"],
            &file,
            &[],
        );
        assert_eq!(ran.code, Some(code), "{name}: {}", ran.stderr);
        assert!(
            json(&ran.stdout)["execution_trace"].is_object(),
            "{name}: {}",
            ran.stdout
        );
        let printed = write(dir.path(), &format!("{name}.json"), &ran.stdout);
        let shown = outcome(&["trace"], &printed, &[]);
        assert_eq!(shown.code, Some(0), "{name}: {}", shown.stderr);
        assert!(shown.stdout.contains(agent), "{name}: {}", shown.stdout);
    }
}

#[test]
fn a_trace_written_to_a_fifo_reaches_its_reader_whole() {
    let dir = scratch();
    let fifo = dir.path().join("trace.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(made.success());
    let file = write(dir.path(), "failing.toml", FAILING);
    // The reader comes once the run has started (as `cat` in another shell
    // would), and reads to the end.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            std::fs::read_to_string(&fifo).unwrap_or_else(|e| panic!("{e}"))
        })
    };
    let ran = outcome(
        &["run", "--no-store", "--trace", &fifo.display().to_string()],
        &file,
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let read = reader
        .join()
        .unwrap_or_else(|_| panic!("the reader failed"));
    let records = &json(&read)["agent_executions"];
    assert_eq!(
        records.as_array().map(Vec::len),
        Some(2),
        "{read}\n{}",
        ran.stderr
    );
}

#[test]
fn a_chrome_trace_keeps_parallel_nested_retried_and_cut_short_attempts_apart() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "lanes.toml",
        r#"
name = 'lanes "quoted" 日本'

[flow]
sequential = ["prep", "both", "slow"]
agent_timeout = "300ms"
retries = 1
backoff = { initial = "1ms", max = "1ms" }

[[groups]]
id = "both"
parallel = ["left", "right"]

[[agents]]
id = "prep"
kind = "template"
template = "x"

[[agents]]
id = "left"
kind = "command"
shell = "sleep 0.1; echo left"

[[agents]]
id = "right"
kind = "command"
shell = "sleep 0.1; echo right"

[[agents]]
id = "slow"
kind = "command"
shell = "sleep 5"
"#,
    );
    let path = dir.path().join("chrome.json");
    let ran = outcome(
        &[
            "run",
            "--no-store",
            "-q",
            "--chrome-trace",
            &path.display().to_string(),
        ],
        &file,
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let doc = json(&text);
    let events = doc["traceEvents"].as_array().cloned().unwrap_or_default();
    let slices: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let of = |name: &str| -> Vec<&serde_json::Value> {
        slices
            .iter()
            .copied()
            .filter(|e| e["name"] == name)
            .collect()
    };
    // Every slice has a place and a positive length.
    for slice in &slices {
        assert!(slice["ts"].as_i64().is_some_and(|ts| ts >= 0), "{slice}");
        assert!(slice["dur"].as_i64().is_some_and(|d| d >= 1), "{slice}");
    }
    // Two agents that ran at once sit on two tracks.
    let (left, right) = (of("left"), of("right"));
    assert_eq!((left.len(), right.len()), (1, 1), "{text}");
    assert_ne!(left[0]["tid"], right[0]["tid"], "{text}");
    // Both timed-out attempts of `slow`, each marked failed.
    let slow = of("slow");
    assert_eq!(slow.len(), 2, "{text}");
    assert!(slow.iter().all(|s| s["args"]["success"] == false), "{text}");
    // No two slices of a track overlap.
    for a in &slices {
        for b in &slices {
            let (ta, tb) = (a["ts"].as_i64(), b["ts"].as_i64());
            let (Some(ta), Some(tb)) = (ta, tb) else {
                continue;
            };
            if std::ptr::eq(*a, *b) || a["tid"] != b["tid"] || ta > tb {
                continue;
            }
            let end_a = ta + a["dur"].as_i64().unwrap_or(0);
            assert!(end_a <= tb, "{a} overlaps {b}");
        }
    }
    // The workflow's name is the process's, quotes and all.
    let process = events.iter().find(|e| e["name"] == "process_name");
    assert_eq!(
        process.map(|p| p["args"]["name"].clone()),
        Some(serde_json::json!("orchestra: lanes \"quoted\" 日本")),
        "{text}"
    );
}

#[test]
fn a_template_reads_a_maps_gathered_output_not_one_of_its_items() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "mapped.toml",
        r#"
[flow]
nodes = ["split", "each", "report"]
edges = ["start -> split -> each -> report -> end"]

[[flow.maps]]
node = "each"
over = "lines"

[[agents]]
id = "split"
kind = "template"
template = "one\ntwo\nthree"

[[agents]]
id = "each"
kind = "command"
command = ["tr", "a-z", "A-Z"]

[[agents]]
id = "report"
kind = "template"
template = "{{output.each}}"
"#,
    );
    let ran = outcome(&["run", "--no-store", "-q"], &file, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let result = ran.stdout.trim();
    for item in ["ONE", "TWO", "THREE"] {
        assert!(result.contains(item), "{result}");
    }
}

/// The spans a run sent to a fake collector.
#[cfg(feature = "otel")]
fn exported_spans(
    file: &std::path::Path,
    env: &[(&str, &str)],
    code: i32,
) -> Vec<serde_json::Value> {
    let collector = common::FakeServer::start(|_| "{}".to_owned());
    let ran = outcome(
        &["run", "-q", "--no-store", "--otlp", &collector.url],
        file,
        env,
    );
    assert_eq!(ran.code, Some(code), "{}", ran.stderr);
    let requests = collector.requests();
    assert_eq!(requests.len(), 1, "{}", ran.stderr);
    common::otlp_spans(&json(&requests[0].body))
}

#[cfg(feature = "otel")]
#[test]
fn the_run_span_says_how_the_run_ended_not_whether_an_attempt_failed() {
    let dir = scratch();
    // `flaky` fails once and succeeds on its retry: the run succeeds.
    let flaky = common::fixture("flaky.toml");
    let dir_text = dir.path().display().to_string();
    let spans = exported_spans(&flaky, &[("FLAKY_DIR", &dir_text)], 0);
    let root = spans
        .iter()
        .find(|s| s.get("parentSpanId").is_none())
        .unwrap_or_else(|| panic!("no run span: {spans:?}"));
    assert_ne!(root["status"]["code"], 2, "{root}");
    assert!(
        spans.iter().any(|s| s["status"]["code"] == 2),
        "the failed attempt keeps its error: {spans:?}"
    );

    // A budget refuses the second step: no attempt failed, the run did.
    let budgeted = write(
        dir.path(),
        "budgeted.toml",
        r#"
[budget]
max_steps = 1

[flow]
nodes = ["a", "b"]
edges = ["start -> a -> b -> end"]

[[agents]]
id = "a"
kind = "template"
template = "a"

[[agents]]
id = "b"
kind = "template"
template = "b"
"#,
    );
    let spans = exported_spans(&budgeted, &[], 1);
    let root = spans
        .iter()
        .find(|s| s.get("parentSpanId").is_none())
        .unwrap_or_else(|| panic!("no run span: {spans:?}"));
    assert_eq!(root["status"]["code"], 2, "{root}");
    let message = root["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("budget"), "{root}");
}

#[test]
fn after_a_failed_map_a_template_reads_what_the_map_held_before_not_an_item() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "failed-map.toml",
        r#"
[flow]
nodes = ["split", "each", "report", "wait", "peek"]
edges = ["start -> split -> each -> report -> end", "split -> wait -> peek -> end"]

[[flow.maps]]
node = "each"
over = "lines"

[[agents]]
id = "split"
kind = "template"
template = "one\ntwo\nthree"

[[agents]]
id = "each"
kind = "command"
shell = "read item; [ \"$item\" != two ] && echo \"$item\" | tr a-z A-Z"
retries = 0

[[agents]]
id = "report"
kind = "template"
template = "{{output.each}}"

[[agents]]
id = "wait"
kind = "command"
command = ["sleep", "1"]
stdin = "none"

[[agents]]
id = "peek"
kind = "template"
template = "peek:[{{output.each}}]"
"#,
    );
    // The run reaches END through `peek`, with the map's failure reported.
    let ran = outcome(&["run", "--no-store", "-q"], &file, &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(ran.stdout.trim(), "peek:[]", "{}", ran.stderr);
}
