//! Edges of the registry (metadata that wins over the agent's own policies,
//! concurrent registration and execution) and of the live observer (what the
//! journal holds when an event is heard, nested runs, observers that panic).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentMetadata, AgentOutput, AgentRegistry, EventKind, ExecutionConfig,
    ExecutionContext, InMemoryJournal, Orchestrator, OrchestratorAgent, OrchestratorInput,
    ParallelOrchestrator, RegistryError, Result, RunEvent, RunId, RunObserver,
    SequentialOrchestrator,
};
use common::{echo, sleeper, transient, Scripted, Step};
use tokio::time::Instant;

/// An agent whose own policies say one thing (`max_retries`,
/// `attempt_timeout`); its attempts follow `script` (fail, or sleep and
/// succeed).
struct OwnPolicies {
    max_retries: usize,
    attempt_timeout: Duration,
    calls: Arc<AtomicUsize>,
    script: Vec<Step>,
}

#[async_trait]
impl Agent for OwnPolicies {
    fn name(&self) -> &str {
        "own"
    }
    fn description(&self) -> &str {
        "has policies of its own"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let step = self
            .script
            .get(call)
            .or(self.script.last())
            .cloned()
            .unwrap_or(Step::Ok("ok"));
        match step {
            Step::Fail(error) => Err(error),
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                Ok(AgentOutput::new(input.content))
            }
            Step::Ok(content) => Ok(AgentOutput::new(content)),
            Step::Panic(message) => panic!("{message}"),
        }
    }
    fn max_retries(&self) -> Option<usize> {
        Some(self.max_retries)
    }
    fn attempt_timeout(&self) -> Option<Duration> {
        Some(self.attempt_timeout)
    }
}

/// The most attempts the observer was told each agent may get.
#[derive(Default)]
struct MaxAttempts(Mutex<Vec<(String, u32)>>);

impl RunObserver for MaxAttempts {
    fn on_event(&self, event: &RunEvent<'_>) {
        if let RunEvent::AttemptStarted {
            agent,
            max_attempts,
            ..
        } = event
        {
            self.0
                .lock()
                .unwrap()
                .push(((*agent).to_owned(), *max_attempts));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn metadata_retries_and_timeout_win_over_the_agents_own() {
    // The agent allows no retry and one second per attempt; the metadata
    // allows two retries and ten seconds: the metadata wins.
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = OwnPolicies {
        max_retries: 0,
        attempt_timeout: Duration::from_secs(1),
        calls: Arc::clone(&calls),
        script: vec![
            Step::Fail(transient("busy")),
            Step::Sleep(Duration::from_secs(5)),
        ],
    };
    let registry = AgentRegistry::new();
    registry
        .register(
            Box::new(agent),
            AgentMetadata::new("own", "own", "", "test")
                .with_max_retries(2)
                .with_timeout(10),
        )
        .await
        .unwrap();
    let seen = Arc::new(MaxAttempts::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(seen.clone());
    let output = registry
        .execute_agent_with_context("own", AgentInput::new("x"), &ctx)
        .await
        .expect("the metadata's retry and timeout apply");
    assert_eq!(output.content, "x");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        *seen.0.lock().unwrap(),
        vec![("own".to_owned(), 3), ("own".to_owned(), 3)]
    );

    // The other way round: the agent allows five retries and an hour; the
    // metadata allows none and one second.
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = OwnPolicies {
        max_retries: 5,
        attempt_timeout: Duration::from_secs(3600),
        calls: Arc::clone(&calls),
        script: vec![Step::Sleep(Duration::from_secs(60))],
    };
    let registry = AgentRegistry::new();
    registry
        .register(
            Box::new(agent),
            AgentMetadata::new("own", "own", "", "test")
                .with_max_retries(0)
                .with_timeout(1),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let error = registry
        .execute_agent("own", AgentInput::new("x"))
        .await
        .expect_err("one attempt of one second");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

/// Runs the registry's agent `own` on its input.
struct Caller(Arc<AgentRegistry>);

#[async_trait]
impl Agent for Caller {
    fn name(&self) -> &str {
        "caller"
    }
    fn description(&self) -> &str {
        "calls the registry"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.0.execute_agent("own", input).await
    }
}

#[tokio::test(start_paused = true)]
async fn metadata_wins_when_the_registry_is_called_inside_a_running_agent() {
    // A registry call from inside an orchestrated agent is a nested run: the
    // metadata still decides its retries, not the orchestrator's config nor
    // the agent's own.
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = Arc::new(AgentRegistry::new());
    registry
        .register(
            Box::new(OwnPolicies {
                max_retries: 0,
                attempt_timeout: Duration::from_secs(3600),
                calls: Arc::clone(&calls),
                script: vec![
                    Step::Fail(transient("busy")),
                    Step::Fail(transient("busy")),
                    Step::Ok("third time"),
                ],
            }),
            AgentMetadata::new("own", "own", "", "test").with_max_retries(2),
        )
        .await
        .unwrap();
    let caller = Caller(Arc::clone(&registry));
    let seen = Arc::new(MaxAttempts::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(seen.clone());
    let output = SequentialOrchestrator::new()
        .with_max_retries(0)
        .orchestrate_with_context(vec![Box::new(caller)], OrchestratorInput::new("x"), &ctx)
        .await
        .expect("the nested call retries as its metadata says");
    assert_eq!(output.result, "third time");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let own: Vec<u32> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(agent, _)| agent == "own")
        .map(|(_, max)| *max)
        .collect();
    assert_eq!(own, vec![3, 3, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_id_registered_at_once_from_many_tasks_is_admitted_once() {
    let registry = Arc::new(AgentRegistry::new());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                let registered = registry
                    .register(echo("a"), AgentMetadata::new("a", "a", "", "test"))
                    .await;
                // Executing while others register: the one registered agent runs.
                let ran = registry.execute_agent("a", AgentInput::new("x")).await;
                (registered, ran)
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let (registered, ran) = task.await.unwrap();
        match registered {
            Ok(()) => admitted += 1,
            Err(error) => assert_eq!(error, RegistryError::DuplicateId("a".into())),
        }
        assert_eq!(ran.unwrap().content, "a(x)");
    }
    assert_eq!(admitted, 1);
    assert_eq!(registry.count().await, 1);
}

#[tokio::test]
async fn bad_ids_are_refused_by_name() {
    let registry = AgentRegistry::new();
    for id in ["", "   ", "\t\n"] {
        assert_eq!(
            registry
                .register(echo("a"), AgentMetadata::new(id, "a", "", "test"))
                .await,
            Err(RegistryError::EmptyId),
            "{id:?}"
        );
    }
    for id in ["", "missing", "a\0"] {
        let error = registry
            .execute_agent(id, AgentInput::new("x"))
            .await
            .expect_err("nothing is registered");
        assert!(error.to_string().contains("no agent with id"), "{error}");
    }
}

/// What the journal should already hold when the observer hears `event`.
fn counterpart(event: &RunEvent<'_>) -> (RunId, String) {
    match event {
        RunEvent::RunStarted { run, .. } => (*run, "RunStarted".into()),
        RunEvent::RunFinished { run, .. } => (*run, "RunFinished".into()),
        RunEvent::AttemptStarted {
            run, node, attempt, ..
        } => (*run, format!("AttemptStarted {} {attempt}", node.0)),
        RunEvent::AttemptFinished {
            run, node, attempt, ..
        } => (*run, format!("AttemptFinished {} {attempt}", node.0)),
        RunEvent::RetryScheduled {
            run,
            node,
            next_attempt,
            ..
        } => (*run, format!("RetryScheduled {} {next_attempt}", node.0)),
        _ => unreachable!("a new kind of event"),
    }
}

fn describe(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::RunStarted { .. } => "RunStarted".into(),
        EventKind::RunFinished { .. } => "RunFinished".into(),
        EventKind::AttemptStarted { node, attempt, .. } => {
            format!("AttemptStarted {} {attempt}", node.0)
        }
        EventKind::AttemptFinished { node, attempt, .. } => {
            format!("AttemptFinished {} {attempt}", node.0)
        }
        EventKind::RetryScheduled {
            node, next_attempt, ..
        } => format!("RetryScheduled {} {next_attempt}", node.0),
        _ => return None,
    })
}

/// Checks, as each event is heard, that the journal already holds it — the
/// observer hears what the journal has, in the same order.
struct JournalFirst {
    journal: Arc<InMemoryJournal>,
    heard: Mutex<Vec<(RunId, String)>>,
    missing: Mutex<Vec<String>>,
}

impl RunObserver for JournalFirst {
    fn on_event(&self, event: &RunEvent<'_>) {
        let (run, what) = counterpart(event);
        let journaled = self
            .journal
            .events()
            .iter()
            .any(|e| e.run == run && describe(&e.kind).as_deref() == Some(what.as_str()));
        if !journaled {
            self.missing.lock().unwrap().push(what.clone());
        }
        self.heard.lock().unwrap().push((run, what));
    }
}

#[tokio::test(start_paused = true)]
async fn the_journal_holds_every_event_the_observer_hears_in_the_same_order() {
    let journal = Arc::new(InMemoryJournal::new());
    let observer = Arc::new(JournalFirst {
        journal: Arc::clone(&journal),
        heard: Mutex::default(),
        missing: Mutex::default(),
    });
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(journal.clone())
        .with_observer(observer.clone());
    let (flaky, _) =
        Scripted::new("flaky", [Step::Fail(transient("busy")), Step::Ok("ok")]).boxed();
    let inner = OrchestratorAgent::new(
        "inner",
        "a nested pipeline",
        SequentialOrchestrator::new(),
        vec![echo("deep"), flaky],
    );
    let output = SequentialOrchestrator::new()
        .with_max_retries(2)
        .orchestrate_with_context(
            vec![echo("first"), Box::new(inner)],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .unwrap();
    assert!(output.is_successful());
    assert_eq!(
        *observer.missing.lock().unwrap(),
        Vec::<String>::new(),
        "events heard before the journal had them"
    );
    let journaled: Vec<(RunId, String)> = journal
        .events()
        .iter()
        .filter_map(|e| describe(&e.kind).map(|what| (e.run, what)))
        .collect();
    assert_eq!(*observer.heard.lock().unwrap(), journaled);
}

/// Panics on every event it hears.
struct AlwaysPanics(AtomicUsize);

impl RunObserver for AlwaysPanics {
    fn on_event(&self, _event: &RunEvent<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("the observer is broken");
    }
}

#[tokio::test(start_paused = true)]
async fn an_observer_that_always_panics_changes_nothing_nested_or_dropped() {
    let observer = Arc::new(AlwaysPanics(AtomicUsize::new(0)));
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(observer.clone());
    let (flaky, _) =
        Scripted::new("flaky", [Step::Fail(transient("busy")), Step::Ok("ok")]).boxed();
    let inner = OrchestratorAgent::new(
        "inner",
        "a nested fan-out",
        ParallelOrchestrator::new().with_max_retries(2),
        vec![echo("deep"), flaky],
    );
    let output = SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![echo("first"), Box::new(inner)],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .expect("a panicking observer does not fail the run");
    assert!(output.is_successful());
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 2);
    assert!(trace.agent_executions.iter().all(|record| record.success));
    let heard = observer.0.load(Ordering::SeqCst);
    // Every event was still told: two runs' starts and ends, five
    // attempts' starts and ends (first, inner, deep, flaky twice), one retry.
    assert_eq!(heard, 2 * 2 + 5 * 2 + 1);

    // A run dropped while an attempt is running closes its books through
    // the panicking observer too.
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(journal.clone())
        .with_observer(observer.clone());
    let (slow, _) = sleeper("slow", Duration::from_secs(60));
    let cut = tokio::time::timeout(
        Duration::from_secs(1),
        SequentialOrchestrator::new().orchestrate_with_context(
            vec![slow],
            OrchestratorInput::new("x"),
            &ctx,
        ),
    )
    .await;
    assert!(cut.is_err());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let events = journal.events();
    for event in &events {
        let name = match &event.kind {
            EventKind::AttemptStarted { .. } => "started",
            EventKind::AttemptFinished { .. } => "finished",
            EventKind::RunFinished { .. } => "run finished",
            _ => continue,
        };
        *counts.entry(name).or_default() += 1;
    }
    assert_eq!(counts.get("started"), Some(&1));
    assert_eq!(counts.get("finished"), Some(&1));
    assert_eq!(counts.get("run finished"), Some(&1));
}
