//! Signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP cancel the run through its
//! context, kill every program the agents started (no orphans), write the
//! partial trace, and exit with 128 + the signal's number.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{fixture, json, scratch, write, Terminal};

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

// ---------------------------------------------------------------------------
// A second signal: out at once.

/// An `orchestra` process whose standard error is read as it comes.
struct Orchestra {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Orchestra {
    /// Starts `orchestra` with `args` (standard error not a terminal).
    fn start(args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .env("ORCHESTRA_STORE", common::test_store())
            .env("NO_COLOR", "1")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let (lines_tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success());
    }

    /// Waits for a line of standard error holding `text`.
    fn wait_for_line(&mut self, text: &str, timeout: Duration) {
        let started = Instant::now();
        while !self.seen.iter().any(|line| line.contains(text)) {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.seen.push(line);
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                panic!("no `{text}` in:\n{}", self.seen.join("\n"));
            }
        }
    }

    /// Its exit status once it exits within `timeout` (it is killed, and the
    /// test fails, otherwise), and all it wrote on standard error.
    fn exit_within(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.seen.extend(self.lines.try_iter());
                panic!(
                    "orchestra did not exit within {timeout:?}:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader thread ends with the pipe.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }
}

/// A workflow whose one agent runs a program that ignores SIGTERM, and so
/// does the `sleep` it starts: once both run, `ready` holds their pids. The
/// program does so once: when `once` exists (it makes it), it says
/// `resumed` and exits.
fn stubborn_workflow(ready: &std::path::Path, once: &std::path::Path) -> String {
    format!(
        r#"[flow]
sequential = ["stubborn"]

[[agents]]
id = "stubborn"
kind = "command"
stdin = "none"
shell = """
if [ -e '{once}' ]; then echo resumed; exit 0; fi
touch '{once}'
trap '' TERM
sleep 1000 &
echo "$$ $!" > '{ready}.tmp'
mv '{ready}.tmp' '{ready}'
wait
"""
"#,
        once = once.display(),
        ready = ready.display(),
    )
}

/// Writes the stubborn workflow in `dir`, runs it (`orchestra run OPTIONS
/// FILE`), and waits until its program and the `sleep` it starts run: the
/// run, and their pids.
fn run_stubborn(dir: &std::path::Path, options: &[&std::ffi::OsStr]) -> (Orchestra, Leftovers) {
    let ready = dir.join("ready");
    let file = write(
        dir,
        "stubborn.toml",
        &stubborn_workflow(&ready, &dir.join("once")),
    );
    let mut args = vec!["run".as_ref()];
    args.extend_from_slice(options);
    args.push(file.as_os_str());
    let run = Orchestra::start(&args);
    wait_until("the program to start", Duration::from_secs(30), || {
        ready.exists()
    });
    let text = std::fs::read_to_string(&ready).unwrap_or_else(|e| panic!("{e}"));
    let pids: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    assert_eq!(pids.len(), 2, "{text}");
    (run, Leftovers(pids))
}

/// Whether `pid` runs (a zombie no one reaps yet does not count).
fn is_running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    })
}

/// Kills what a failed test left running.
fn kill_all(pids: &[String]) {
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(Stdio::null())
            .status();
    }
}

/// The programs of a test, killed if it fails before they are gone.
struct Leftovers(Vec<String>);

impl Leftovers {
    /// Waits (5 s at most) until none of them runs: nothing else than
    /// `orchestra`, gone by now, could have stopped them.
    fn assert_gone(mut self, stderr: &str) {
        let pids = &self.0;
        let started = Instant::now();
        while pids.iter().any(|pid| is_running(pid)) {
            if started.elapsed() > Duration::from_secs(5) {
                kill_all(pids);
                panic!("programs left running (orphans) {pids:?}:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.0.clear();
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        kill_all(&self.0);
    }
}

/// Runs the stubborn workflow with `--no-store`, sends `first` and, once
/// its note is out, `second`: what orchestra exited with and said.
fn stopped_twice(first: &str, second: &str, first_name: &str) -> (Option<i32>, String) {
    let dir = scratch();
    let (mut run, pids) = run_stubborn(dir.path(), &["--no-store".as_ref()]);
    run.signal(first);
    run.wait_for_line(
        &format!("{first_name}: cancelling the run... ({first_name} again to exit now)"),
        Duration::from_secs(10),
    );
    run.signal(second);
    // The program ignores SIGTERM: without the second signal, `orchestra`
    // would wait for its grace period, STOP_GRACE (2 s), to end.
    // The second signal comes while the run stops or, the run over, while
    // orchestra waits for the program's grace period: either way, out now.
    let (status, stderr) = run.exit_within(Duration::from_secs(10));
    pids.assert_gone(&stderr);
    (status.code(), stderr)
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_kills_a_program_that_ignores_sigterm() {
    let (code, stderr) = stopped_twice("-INT", "-INT", "Ctrl-C");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("Ctrl-C again: exiting now"), "{stderr}");
}

#[test]
fn a_second_signal_of_another_kind_exits_at_once_with_the_first_ones_code() {
    let (code, stderr) = stopped_twice("-TERM", "-HUP", "SIGTERM");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("SIGHUP: exiting now"), "{stderr}");
}

#[test]
fn a_second_ctrl_c_exits_at_once_while_the_store_holds_up_the_runs_end() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let trace = dir.path().join("trace.json");
    let (mut run, pids) = run_stubborn(
        dir.path(),
        &[
            "--store".as_ref(),
            store.as_os_str(),
            "--trace".as_ref(),
            trace.as_os_str(),
        ],
    );
    // Another process takes the store's write lock and keeps it: the run
    // cannot record its end (SQLite's busy timeout is 10 s).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let lock = runtime.block_on(async {
        use sqlx::ConnectOptions as _;
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&store)
            .busy_timeout(Duration::from_secs(20))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        db
    });
    run.signal("-INT");
    run.wait_for_line("Ctrl-C: cancelling the run", Duration::from_secs(10));
    run.signal("-INT");
    let (status, stderr) = run.exit_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Ctrl-C again: exiting now"), "{stderr}");
    pids.assert_gone(&stderr);
    // Out at once, the run still stopping: no summary, no trace.
    assert!(!stderr.contains("total"), "{stderr}");
    assert!(!trace.exists(), "{stderr}");
    drop(lock);

    // As the note says: with its end not recorded, the run is listed as
    // crashed, and resuming it runs what did not finish.
    assert!(stderr.contains("crashed"), "{stderr}");
    let id = common::crashed_run(&store);
    assert!(
        stderr.contains(&format!("orchestra resume {id}")),
        "{stderr}"
    );
    let resumed = common::orchestra()
        .args(["resume", &id, "--store"])
        .arg(&store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, resumed_stderr) = common::texts(&resumed);
    assert!(resumed.status.success(), "{resumed_stderr}");
    assert_eq!(stdout.trim(), "resumed", "{resumed_stderr}");
}

#[test]
fn ctrl_c_at_a_prompt_cancels_the_run_without_waiting_for_an_answer() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(
        dir.path(),
        "ask.toml",
        r#"[flow]
nodes = ["plan", "ship"]
edges = ["start -> plan -> approve", "approve -> ship", "ship -> end"]

[[flow.asks]]
id = "approve"
question = "Ship it?"

[[agents]]
id = "plan"
kind = "command"
command = ["echo", "the plan"]

[[agents]]
id = "ship"
kind = "template"
template = "shipped after {{input}}"
"#,
    );
    // `script` gives orchestra a terminal; nothing is ever typed.
    let command = format!(
        "'{}' run --store '{}' '{}'",
        env!("CARGO_BIN_EXE_orchestra"),
        store.display(),
        file.display()
    );
    let mut terminal = Terminal::start(&command, &[]);
    let asked = terminal.read_until("[approve] Ship it?", Duration::from_secs(30));
    let marker = store.display().to_string();
    let orchestra = processes_with(&marker).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.starts_with(env!("CARGO_BIN_EXE_orchestra").as_bytes()))
    });
    let (true, Some(orchestra)) = (asked, orchestra) else {
        let _ = terminal.child.kill();
        panic!("no prompt: {}", terminal.seen);
    };
    let sent = Command::new("kill")
        .args(["-INT", &orchestra])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sent.success());
    let noted = terminal.read_until(
        "Ctrl-C: cancelling the run... (Ctrl-C again to exit now)",
        Duration::from_secs(10),
    );
    let status = terminal.exit_within(Duration::from_secs(10));
    let (true, Some(status)) = (noted, status) else {
        let _ = Command::new("kill").args(["-KILL", &orchestra]).status();
        let _ = terminal.child.kill();
        panic!(
            "orchestra waited for an answer after Ctrl-C: {}",
            terminal.seen
        );
    };
    drop(terminal.child.stdin.take());
    assert_eq!(status.code(), Some(130), "{}", terminal.seen);
    // The display's last footer counts the question as what it is.
    let (_, after) = terminal
        .seen
        .split_once("cancelling the run")
        .unwrap_or_else(|| panic!("{}", terminal.seen));
    assert!(after.contains("1 waiting for an answer"), "{after}");
    assert!(!after.contains("running"), "{after}");
}

// ---------------------------------------------------------------------------
// A signal once the run is over: out at once.

#[test]
fn a_signal_once_the_run_is_over_exits_at_once() {
    let dir = scratch();
    // The trace goes to a FIFO nobody reads: once the run is over and its
    // summary printed, `orchestra` waits to open it, for ever.
    let trace = dir.path().join("trace.fifo");
    let made = Command::new("mkfifo")
        .arg(&trace)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(made.success());
    let file = write(
        dir.path(),
        "hello.toml",
        r#"[flow]
sequential = ["hello"]

[[agents]]
id = "hello"
kind = "command"
command = ["echo", "hello"]
"#,
    );
    let mut run = Orchestra::start(&[
        "run".as_ref(),
        "--no-store".as_ref(),
        "--trace".as_ref(),
        trace.as_os_str(),
        file.as_os_str(),
    ]);
    run.wait_for_line("total", Duration::from_secs(30));
    // The first signal: there is no run left to cancel.
    run.signal("-INT");
    let (status, stderr) = run.exit_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Ctrl-C: exiting now"), "{stderr}");
    assert!(!stderr.contains("cancelling"), "{stderr}");
}
