//! The crash test: a child process runs a graph on a store, is killed with
//! SIGKILL at a random point (several seeds per store: in the chain, in the
//! middle of an attempt, in the middle of the fan-out), and the run is
//! resumed here. Every execution of a step leaves a line in a marks file:
//! the steps the journal shows finished before the kill ran exactly once,
//! the others at most twice, and the final output is the uninterrupted run's.
//!
//! The child is this test binary run again, on the `child` test with
//! `CAS_CRASH_CHILD` set; without it, that test does nothing.

mod store_support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentInput, AgentOutput, AttemptOutcome, EventKind, ExecutionConfig,
    ExecutionContext, GraphOrchestrator, InMemoryJournal, Journal, Orchestrator, OrchestratorInput,
    Result, END, START,
};
use store_support::{Kind, Place, KINDS};

const CHAIN: [&str; 3] = ["s1", "s2", "s3"];
const FAN: [&str; 6] = ["f1", "f2", "f3", "f4", "f5", "f6"];
const TAIL: [&str; 2] = ["s4", "s5"];

/// Marks that it ran, waits a little (a kill may land here), then appends
/// its name to its input.
struct Marking {
    name: &'static str,
    marks: PathBuf,
}

#[async_trait]
impl Agent for Marking {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "leaves a mark"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.marks)
            .expect("open the marks file");
        // One write of the whole line: appends from several steps at once
        // never interleave.
        file.write_all(format!("{}\n", self.name).as_bytes())
            .expect("mark");
        drop(file);
        tokio::time::sleep(Duration::from_millis(15 + fastrand::u64(..20))).await;
        let content = input.content.replace('\n', " | ");
        Ok(AgentOutput::new(format!("{content}>{}", self.name)))
    }
}

fn graph(marks: &Path) -> GraphOrchestrator {
    let mut graph = GraphOrchestrator::new("crash").with_config(config());
    for name in CHAIN.iter().chain(&FAN).chain(&TAIL) {
        graph = graph.add_node(
            *name,
            Marking {
                name,
                marks: marks.to_path_buf(),
            },
        );
    }
    graph = graph
        .add_edge(START, "s1")
        .add_edge("s1", "s2")
        .add_edge("s2", "s3");
    for fan in FAN {
        graph = graph.add_edge("s3", fan).add_edge(fan, "s4");
    }
    graph.add_edge("s4", "s5").add_edge("s5", END)
}

fn config() -> ExecutionConfig {
    ExecutionConfig::new()
        .with_max_retries(0)
        .with_parallel_limit(3)
}

#[tokio::test]
async fn child() {
    let (Ok(kind), Ok(address), Ok(marks)) = (
        std::env::var("CAS_CRASH_CHILD"),
        std::env::var("CAS_CRASH_STORE"),
        std::env::var("CAS_CRASH_MARKS"),
    ) else {
        return;
    };
    let journal: Arc<dyn Journal> = match kind.as_str() {
        "sqlite" => Arc::new(
            claude_agent_sdk::orchestration::store::SqliteJournal::open(&address)
                .await
                .expect("open"),
        ),
        _ => Arc::new(
            claude_agent_sdk::orchestration::store::PostgresJournal::connect(&address)
                .await
                .expect("connect"),
        ),
    };
    println!("\nCAS-CHILD-READY");
    let ctx = ExecutionContext::new(config()).with_journal(journal);
    let _ = graph(Path::new(&marks))
        .orchestrate_with_context(vec![], OrchestratorInput::new("in"), &ctx)
        .await;
    println!("finished");
}

fn counts(marks: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(marks) {
        for line in text.lines() {
            *counts.entry(line.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// What an uninterrupted run returns.
async fn reference() -> String {
    let folder = store_support::TempDir::new("crash-reference");
    let ctx = ExecutionContext::new(config()).with_journal(Arc::new(InMemoryJournal::new()));
    graph(&folder.path().join("marks"))
        .orchestrate_with_context(vec![], OrchestratorInput::new("in"), &ctx)
        .await
        .expect("the uninterrupted run")
        .result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_random_points_resumes_and_runs_each_finished_step_once() {
    let expected = reference().await;
    let mut killed_mid_fan_out = 0;
    for kind in KINDS {
        for seed in 0..8_u64 {
            let place = Place::new(kind).await;
            let folder = store_support::TempDir::new("crash");
            let marks = folder.path().join("marks");
            let mut child = Command::new(std::env::current_exe().expect("this test binary"))
                .args(["child", "--exact", "--nocapture", "--test-threads=1"])
                .env(
                    "CAS_CRASH_CHILD",
                    if kind == Kind::Sqlite {
                        "sqlite"
                    } else {
                        "postgres"
                    },
                )
                .env("CAS_CRASH_STORE", &place.address)
                .env("CAS_CRASH_MARKS", &marks)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the child");
            let stdout = child.stdout.take().expect("its stdout");
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines
                .by_ref()
                .map_while(std::result::Result::ok)
                .any(|line| line.contains("CAS-CHILD-READY"));
            assert!(
                ready,
                "{kind:?} seed {seed}: the child did not open its store"
            );
            // Kill it once the marks say how far it got — after mark `n`
            // (1–3: in the chain; 4–9: in the fan-out, three at a time, so
            // from mark 7 on some fan-out steps have finished and others have
            // not started; 10–11: in the tail) — and a few milliseconds more,
            // within the attempt that just started.
            let n = 1 + (seed as usize * 3) % 11;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while counts(&marks).values().sum::<usize>() < n && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut rng = fastrand::Rng::with_seed(seed * 7919 + 17);
            std::thread::sleep(Duration::from_millis(rng.u64(..10)));
            // SAFETY: sends SIGKILL to our own child.
            let killed = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            assert_eq!(killed, 0);
            let _ = child.wait();

            let store = place.open().await;
            let runs = store.runs(5).await;
            assert_eq!(runs.len(), 1, "{kind:?} seed {seed}: one run in the store");
            let run = runs[0].id;
            let before = counts(&marks);
            let events = store.journal().read(&[run]).await;
            let finished = finished_steps(&events);
            if finished.iter().any(|step| FAN.contains(&step.as_str()))
                && !TAIL.iter().any(|step| finished.contains(*step))
                && FAN.iter().any(|step| !finished.contains(*step))
            {
                killed_mid_fan_out += 1;
            }

            let ctx = ExecutionContext::new(config()).with_journal(store.journal());
            let output = resume(&graph(&marks), vec![], run, &ctx)
                .await
                .unwrap_or_else(|error| panic!("{kind:?} seed {seed}: resume failed: {error}"));
            assert_eq!(output.result, expected, "{kind:?} seed {seed}");
            let after = counts(&marks);
            for step in CHAIN.iter().chain(&FAN).chain(&TAIL) {
                let ran = after.get(*step).copied().unwrap_or(0);
                assert!(ran >= 1, "{kind:?} seed {seed}: {step} never ran");
                if finished.contains(*step) {
                    assert_eq!(
                        ran, 1,
                        "{kind:?} seed {seed}: {step} finished before the kill but ran {ran} times"
                    );
                } else {
                    assert!(ran <= 2, "{kind:?} seed {seed}: {step} ran {ran} times");
                    assert!(before.get(*step).copied().unwrap_or(0) <= 1);
                }
            }
        }
    }
    assert!(
        killed_mid_fan_out > 0,
        "no seed killed the run in the middle of its fan-out: adjust the delays"
    );
}

/// The names of the steps whose attempt the journal shows finished.
fn finished_steps(events: &[claude_agent_sdk::orchestration::JournalEvent]) -> HashSet<String> {
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut done = HashSet::new();
    for event in events {
        match &event.kind {
            EventKind::StepAdded { step, agent, .. } => {
                names.insert(step.0, agent.clone());
            }
            EventKind::AttemptFinished {
                node,
                outcome: AttemptOutcome::Succeeded(_),
                ..
            } => {
                if let Some(name) = names.get(&node.0) {
                    done.insert(name.clone());
                }
            }
            _ => {}
        }
    }
    done
}
