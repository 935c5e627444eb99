//! Signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP cancel the run through its
//! context, kill every program the agents started (no orphans), write the
//! partial trace, and exit with 128 + the signal's number.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{fixture, json, scratch, write};

/// The pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
                .unwrap_or(false)
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a run stopped by a signal left behind.
struct Stopped {
    status: std::process::ExitStatus,
    stderr: String,
    trace: serde_json::Value,
    chrome: serde_json::Value,
}

/// Runs two sleeping programs (one a shell with two children), sends `signal`
/// to `orchestra` once they run, and checks that every one of them died.
/// `markers` tell this run's processes from those of tests running alongside.
fn stop_with(signal: &str, markers: [&str; 3]) -> Stopped {
    let [first, second, third] = markers;
    let workflow = std::fs::read_to_string(fixture("sleepers.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .replace("98761", first)
        .replace("98762", second)
        .replace("98763", third);
    stop_run(&workflow, signal, markers, &["nap", "nested-nap"])
}

/// Runs `workflow`, sends `signal` once the agents `running` run and the
/// programs named by `markers` are up, and checks that they all died.
fn stop_run(workflow: &str, signal: &str, markers: [&str; 3], running: &[&str]) -> Stopped {
    let dir = scratch();
    let trace = dir.path().join("trace.json");
    let chrome = dir.path().join("chrome.json");
    let file = write(dir.path(), "workflow.toml", workflow);
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        // Runs go to the tests' store, not the user's.
        .env("ORCHESTRA_STORE", common::test_store())
        .args(["run", "--trace"])
        .arg(&trace)
        .arg("--chrome-trace")
        .arg(&chrome)
        .arg(&file)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));

    // Collect stderr as it comes.
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    wait_until("the agents to start", Duration::from_secs(30), || {
        seen.extend(lines.try_iter());
        running.iter().all(|agent| {
            let started = format!("] {agent}: running");
            seen.iter().any(|l| l.contains(&started))
        })
    });
    // The programs (and the grandchild of the shell) are up.
    wait_until("the sleep processes", Duration::from_secs(10), || {
        markers.iter().all(|m| !processes_with(m).is_empty())
    });

    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("orchestra did not exit after {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    seen.extend(lines.try_iter());

    // No orphans: every program of the run is gone, grandchildren included.
    wait_until("the sleep processes to die", Duration::from_secs(5), || {
        markers.iter().all(|m| processes_with(m).is_empty())
    });
    Stopped {
        status,
        stderr: seen.join("\n"),
        trace: json(&std::fs::read_to_string(&trace).unwrap_or_else(|e| panic!("no trace: {e}"))),
        chrome: json(&std::fs::read_to_string(&chrome).unwrap_or_default()),
    }
}

/// The partial trace holds both interrupted attempts, and the Chrome trace a
/// slice for each.
fn assert_partial_traces(stopped: &Stopped) {
    let trace = &stopped.trace;
    let records = trace["agent_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut names: Vec<&str> = records
        .iter()
        .filter_map(|r| r["agent_name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["nap", "nested-nap"], "{trace}");
    assert!(trace["end_time"].is_string(), "{trace}");
    for record in &records {
        assert_eq!(record["success"], false);
        assert_eq!(record["error"], "interrupted: the run was cancelled");
    }
    let slices = stopped.chrome["traceEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["ph"] == "X")
        .count();
    assert_eq!(slices, 2);
}

#[test]
fn ctrl_c_cancels_the_run_kills_its_programs_and_keeps_the_partial_trace() {
    let stopped = stop_with("-INT", ["98761", "98762", "98763"]);
    let stderr = &stopped.stderr;
    assert_eq!(stopped.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Ctrl-C: cancelling the run"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("nap") && l.ends_with("interrupted")),
        "{stderr}"
    );
    assert_partial_traces(&stopped);
}

#[test]
fn sigterm_cancels_the_run_kills_its_programs_keeps_the_partial_trace_and_exits_143() {
    let stopped = stop_with("-TERM", ["98771", "98772", "98773"]);
    let stderr = &stopped.stderr;
    assert_eq!(stopped.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("SIGTERM: cancelling the run"), "{stderr}");
    assert_partial_traces(&stopped);
}

#[test]
fn sighup_cancels_the_run_kills_its_programs_keeps_the_partial_trace_and_exits_129() {
    let stopped = stop_with("-HUP", ["98781", "98782", "98783"]);
    let stderr = &stopped.stderr;
    assert_eq!(stopped.status.code(), Some(129), "{stderr}");
    assert!(stderr.contains("SIGHUP: cancelling the run"), "{stderr}");
    assert_partial_traces(&stopped);
}

#[test]
fn ctrl_c_records_every_running_agent_as_interrupted_nested_ones_included() {
    let workflow = r#"
[flow]
sequential = ["first", "fan"]

[[groups]]
id = "fan"
parallel = ["a", "b", "inner"]

[[groups]]
id = "inner"
sequential = ["d", "e"]

[[agents]]
id = "first"
kind = "command"
command = ["echo", "go"]

[[agents]]
id = "a"
kind = "command"
shell = "sleep 98791"

[[agents]]
id = "b"
kind = "command"
command = ["sleep", "98792"]

[[agents]]
id = "d"
kind = "command"
shell = "sleep 98793"

[[agents]]
id = "e"
kind = "command"
command = ["echo", "never"]
"#;
    let stopped = stop_run(
        workflow,
        "-INT",
        ["98791", "98792", "98793"],
        &["a", "b", "d"],
    );
    let stderr = &stopped.stderr;
    assert_eq!(stopped.status.code(), Some(130), "{stderr}");
    // The log and the summary agree: what ran was interrupted, not failed.
    for agent in ["a", "b", "d", "inner", "fan"] {
        assert!(
            stderr.contains(&format!("] {agent}: interrupted: the run was cancelled")),
            "{agent}: {stderr}"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{agent} "))
                    && l.ends_with("interrupted")),
            "{agent}: {stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("e ") && l.ends_with("not run")),
        "{stderr}"
    );
    assert!(!stderr.contains("failed"), "{stderr}");

    // The partial trace holds every agent that was running, nested ones too.
    let mut names = Vec::new();
    let mut pending = vec![stopped.trace.clone()];
    while let Some(trace) = pending.pop() {
        for record in trace["agent_executions"].as_array().into_iter().flatten() {
            let name = record["agent_name"].as_str().unwrap_or_default().to_owned();
            if record["success"] == false {
                assert!(
                    record["error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("interrupted") || e == "execution cancelled"),
                    "{record}"
                );
            }
            names.push(name);
            match &record["nested"] {
                serde_json::Value::Array(runs) => pending.extend(runs.iter().cloned()),
                nested @ serde_json::Value::Object(_) => pending.push(nested.clone()),
                _ => {}
            }
        }
    }
    names.sort_unstable();
    assert_eq!(
        names,
        ["a", "b", "d", "fan", "first", "inner"],
        "{}",
        stopped.trace
    );
}
