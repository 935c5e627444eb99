//! Test agents shared by the rule tests: scripted results, sleepers that measure
//! concurrency, panickers and drop detectors.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentError, AgentInput, AgentOutput, OrchestrationError, Result,
};
use tokio::time::Instant;

/// Returns `"<name>(<content>)"`.
pub struct Echo(pub &'static str);

#[async_trait]
impl Agent for Echo {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "wraps its input in its name"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        Ok(AgentOutput::new(format!("{}({})", self.0, input.content)))
    }
}

pub fn echo(name: &'static str) -> Box<dyn Agent> {
    Box::new(Echo(name))
}

/// What a probe saw and did, shared with the test.
#[derive(Default)]
pub struct Probe {
    pub calls: AtomicUsize,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub dropped_unfinished: AtomicUsize,
    pub inputs: Mutex<Vec<AgentInput>>,
    pub attempt_times: Mutex<Vec<Instant>>,
}

impl Probe {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }
    pub fn dropped_unfinished(&self) -> usize {
        self.dropped_unfinished.load(Ordering::SeqCst)
    }
    pub fn inputs(&self) -> Vec<AgentInput> {
        self.inputs.lock().unwrap().clone()
    }
    /// Gaps between consecutive attempts.
    pub fn gaps(&self) -> Vec<Duration> {
        let times = self.attempt_times.lock().unwrap();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// Counts a running attempt while alive; notes an attempt dropped before it finished.
struct RunningGuard<'a> {
    probe: &'a Probe,
    finished: bool,
}

impl<'a> RunningGuard<'a> {
    fn enter(probe: &'a Probe) -> Self {
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.max_running.fetch_max(now, Ordering::SeqCst);
        Self {
            probe,
            finished: false,
        }
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.probe.running.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.probe.dropped_unfinished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// How one attempt of a [`Scripted`] agent ends.
#[derive(Clone, Debug)]
pub enum Step {
    /// Succeed with this content (after the agent's delay).
    Ok(&'static str),
    /// Fail with this error (after the agent's delay).
    Fail(OrchestrationError),
    /// Sleep this long, then succeed with the input echoed.
    Sleep(Duration),
    /// Panic with this message.
    Panic(&'static str),
}

/// An agent whose attempts follow a script; the last step repeats.
pub struct Scripted {
    name: String,
    steps: Mutex<VecDeque<Step>>,
    last: Mutex<Option<Step>>,
    delay: Duration,
    pub probe: Arc<Probe>,
}

impl Scripted {
    pub fn new(name: impl Into<String>, steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            name: name.into(),
            steps: Mutex::new(steps.into_iter().collect()),
            last: Mutex::new(None),
            delay: Duration::ZERO,
            probe: Probe::new(),
        }
    }

    /// Every attempt first waits `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_probe(mut self, probe: Arc<Probe>) -> Self {
        self.probe = probe;
        self
    }

    fn next_step(&self) -> Step {
        let mut steps = self.steps.lock().unwrap();
        let mut last = self.last.lock().unwrap();
        match steps.pop_front() {
            Some(step) => {
                *last = Some(step.clone());
                step
            }
            None => last.clone().unwrap_or(Step::Ok("done")),
        }
    }

    pub fn boxed(self) -> (Box<dyn Agent>, Arc<Probe>) {
        let probe = Arc::clone(&self.probe);
        (Box::new(self), probe)
    }
}

#[async_trait]
impl Agent for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "follows a script"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.probe.calls.fetch_add(1, Ordering::SeqCst);
        self.probe.inputs.lock().unwrap().push(input.clone());
        self.probe
            .attempt_times
            .lock()
            .unwrap()
            .push(Instant::now());
        let step = self.next_step();
        let mut guard = RunningGuard::enter(&self.probe);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let result = match step {
            Step::Ok(content) => Ok(AgentOutput::new(content)),
            Step::Fail(error) => Err(error),
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                Ok(AgentOutput::new(input.content))
            }
            Step::Panic(message) => panic!("{message}"),
        };
        guard.finished = true;
        result
    }
}

pub fn ok(name: &str, content: &'static str) -> (Box<dyn Agent>, Arc<Probe>) {
    Scripted::new(name, [Step::Ok(content)]).boxed()
}

pub fn failing(name: &str, error: OrchestrationError) -> (Box<dyn Agent>, Arc<Probe>) {
    Scripted::new(name, [Step::Fail(error)]).boxed()
}

pub fn sleeper(name: &str, duration: Duration) -> (Box<dyn Agent>, Arc<Probe>) {
    Scripted::new(name, [Step::Sleep(duration)]).boxed()
}

pub fn permanent(message: &str) -> OrchestrationError {
    OrchestrationError::AgentError(AgentError::new(message))
}

pub fn transient(message: &str) -> OrchestrationError {
    OrchestrationError::transient(message)
}

/// Flag set when dropped: proves a future was cancelled.
pub struct DropFlag(pub Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Every started attempt of every run in `journal` finished exactly once,
/// and nothing of a run came after its last event.
pub fn assert_books_balanced(journal: &claude_agent_sdk::orchestration::InMemoryJournal) {
    let mut started: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut finished: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut over: std::collections::HashSet<String> = std::collections::HashSet::new();
    for event in journal.events() {
        let run = format!("{:?}", event.run);
        assert!(
            !over.contains(&run),
            "an event after its run finished: {:?}",
            event.kind
        );
        match &event.kind {
            claude_agent_sdk::orchestration::EventKind::AttemptStarted {
                node, attempt, ..
            } => {
                *started
                    .entry(format!("{run}/{node:?}/{attempt}"))
                    .or_default() += 1;
            }
            claude_agent_sdk::orchestration::EventKind::AttemptFinished {
                node, attempt, ..
            } => {
                *finished
                    .entry(format!("{run}/{node:?}/{attempt}"))
                    .or_default() += 1;
            }
            claude_agent_sdk::orchestration::EventKind::RunFinished { .. } => {
                over.insert(run);
            }
            _ => {}
        }
    }
    assert_eq!(started, finished, "every started attempt finished once");
    assert!(started.values().all(|&n| n == 1));
}
