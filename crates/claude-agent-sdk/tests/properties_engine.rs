//! Property tests of the engine's invariants (scheduler, executor, journal),
//! for generated mixes of agents that succeed, fail permanently, recover
//! from transient failures, fail transiently forever, panic, sleep or hang —
//! in both patterns, flat and nested one level, under an optional attempt
//! timeout, an optional run timeout and an optional stop from outside (the
//! context cancelled before the run or from another task while it runs, or
//! the caller dropping the run's future).
//!
//! Most cases run on a paused-clock runtime, so time is virtual and exact; a
//! few run on a multi-threaded runtime in real time, to let the engine's tasks
//! race for real. Every case checks:
//!
//! 1. the journal is well formed: every attempt that starts finishes exactly
//!    once, after it started; a run's events lie between its `RunStarted` and
//!    its one `RunFinished`; a nested run lies inside the attempt it runs in;
//!    retries are announced before they start; on the paused clock, each
//!    run's events are dated in the order they were appended;
//! 2. the counts add up: the trace (nested traces included) holds one ended
//!    record per `AttemptStarted`, and no agent gets more than
//!    `max_retries + 1` attempts in a run;
//! 3. no agent outlives its run: when `orchestrate*` returns nothing is
//!    running (when its future is dropped: nothing is running once the
//!    aborted tasks got a turn), and nothing starts or reaches the journal
//!    afterwards;
//! 4. the result agrees with the journal (every run's outcome follows its
//!    pattern's rule from how its nodes ended) and, for flat runs in paused
//!    time, with a timing model of the agents: the exact result, the exact
//!    virtual time the run took and the exact number of attempts of each
//!    agent.
//!
//! Two properties pin faults these tests found: a nested run in flight when
//! the caller drops the outer run writes nothing after the outer run
//! finished, and on a multi-threaded runtime a run's events are dated in
//! append order.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, AttemptOutcome, EventKind, ExecutionConfig, ExecutionContext,
    ExecutionTrace, InMemoryJournal, JoinPolicy, JournalEvent, NodeId, OrchestrationError,
    Orchestrator, OrchestratorAgent, OrchestratorInput, OrchestratorOutput, ParallelOrchestrator,
    Result, RetryPolicy, RunId, RunOutcome, SequentialOrchestrator,
};
use common::{permanent, transient};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type Check<T = ()> = std::result::Result<T, TestCaseError>;

/// The fixed delay between attempts in the flat runs (the model needs it exact).
const RETRY_DELAY_MS: u64 = 10;
/// The default run timeout of [`ExecutionConfig`].
const DEFAULT_RUN_TIMEOUT_MS: u64 = 300_000;
/// Stands for "never".
const NEVER: u64 = u64::MAX;
/// What the generated panics say (the panic hook keeps them quiet).
const PANIC_MESSAGE: &str = "generated panic";
/// The name of the `OrchestratorAgent` in nested runs.
const NESTED_AGENT: &str = "nested";

// ---------------------------------------------------------------------------
// Generated agents
// ---------------------------------------------------------------------------

/// How one generated agent behaves, on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Succeeds,
    FailsPermanently,
    /// Fails transiently on its first `k` calls, then succeeds.
    Recovers(u32),
    FailsTransientlyForever,
    Panics,
    /// Sleeps this many milliseconds, then succeeds.
    Sleeps(u64),
    Hangs,
}

/// What the test sees of every generated agent at once.
#[derive(Debug, Default)]
struct Live {
    /// Attempts started, all agents together.
    started: AtomicUsize,
    /// Attempts whose future is alive (not finished, not dropped).
    running: AtomicUsize,
}

impl Live {
    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

/// Counts one attempt as running while alive.
struct LiveGuard(Arc<Live>);

impl LiveGuard {
    fn enter(live: &Arc<Live>) -> Self {
        live.started.fetch_add(1, Ordering::SeqCst);
        live.running.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An agent that behaves as generated.
struct Generated {
    name: String,
    behaviour: Behaviour,
    clock: Clock,
    calls: AtomicU32,
    live: Arc<Live>,
}

impl Generated {
    fn boxed(name: String, behaviour: Behaviour, clock: Clock, live: &Arc<Live>) -> Box<dyn Agent> {
        Box::new(Self {
            name,
            behaviour,
            clock,
            calls: AtomicU32::new(0),
            live: Arc::clone(live),
        })
    }
}

#[async_trait]
impl Agent for Generated {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "behaves as generated"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = LiveGuard::enter(&self.live);
        let ok = || {
            Ok(AgentOutput::new(format!(
                "{}({})",
                self.name, input.content
            )))
        };
        match self.behaviour {
            Behaviour::Succeeds => ok(),
            Behaviour::FailsPermanently => Err(permanent("permanent")),
            Behaviour::Recovers(k) if call <= k => Err(transient("transient")),
            Behaviour::Recovers(_) => ok(),
            Behaviour::FailsTransientlyForever => Err(transient("transient forever")),
            Behaviour::Panics => panic!("{PANIC_MESSAGE} in {}", self.name),
            Behaviour::Sleeps(ms) => {
                tokio::time::sleep(self.clock.ms(ms)).await;
                ok()
            }
            Behaviour::Hangs => std::future::pending().await,
        }
    }
}

/// Retries what is retryable, at most `max_retries` times, always after the
/// same delay — so the model can tell the exact time of everything.
#[derive(Debug)]
struct FixedRetry(Duration);

impl RetryPolicy for FixedRetry {
    fn retry_delay(
        &self,
        error: &OrchestrationError,
        failed_attempt: u32,
        max_retries: usize,
    ) -> Option<Duration> {
        (error.is_retryable() && (failed_attempt as usize) <= max_retries).then_some(self.0)
    }
}

// ---------------------------------------------------------------------------
// Generated setups
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Sequential,
    Parallel,
}

impl Pattern {
    fn orchestrator_name(self) -> &'static str {
        match self {
            Self::Sequential => "SequentialOrchestrator",
            Self::Parallel => "ParallelOrchestrator",
        }
    }
}

/// How time passes in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// A current-thread runtime on tokio's paused clock: time is virtual and
    /// exact, and the model applies.
    Paused,
    /// A multi-threaded runtime in real time, a generated millisecond
    /// lasting 100 µs.
    Real,
}

impl Clock {
    /// How long `ms` generated milliseconds last.
    fn ms(self, ms: u64) -> Duration {
        match self {
            Self::Paused => Duration::from_millis(ms),
            Self::Real => Duration::from_micros(ms * 100),
        }
    }

    fn runtime(self) -> tokio::runtime::Runtime {
        match self {
            Self::Paused => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build(),
            Self::Real => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
        }
        .unwrap()
    }

    /// How long to watch, after a run returned, that nothing happens anymore.
    fn afterwards(self) -> Duration {
        match self {
            Self::Paused => Duration::from_secs(3600),
            Self::Real => Duration::from_millis(50),
        }
    }
}

/// What stops a run from outside, if anything.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Nothing,
    /// The context is cancelled before the run starts.
    CancelBefore,
    /// Another task cancels the context this many milliseconds into the run.
    CancelAfter(u64),
    /// The caller drops the run's future this many milliseconds into the run.
    DropAfter(u64),
}

impl Stop {
    fn cancel_at_ms(self) -> u64 {
        match self {
            Self::CancelBefore => 0,
            Self::CancelAfter(ms) => ms,
            Self::Nothing | Self::DropAfter(_) => NEVER,
        }
    }

    fn drop_at_ms(self) -> u64 {
        match self {
            Self::DropAfter(ms) => ms,
            _ => NEVER,
        }
    }
}

/// Everything about a run but its agents.
#[derive(Debug, Clone, Copy)]
struct Setup {
    clock: Clock,
    retries: usize,
    attempt_timeout_ms: Option<u64>,
    run_timeout_ms: Option<u64>,
    stop: Stop,
    limit: usize,
    join: JoinPolicy,
}

impl Setup {
    fn config(&self, retry: Option<Arc<dyn RetryPolicy>>) -> ExecutionConfig {
        let mut config = ExecutionConfig::new()
            .with_max_retries(self.retries)
            .with_parallel_limit(self.limit)
            .with_join_policy(self.join)
            .with_logging(false);
        if let Some(ms) = self.attempt_timeout_ms {
            config = config.with_agent_timeout(self.clock.ms(ms));
        }
        if let Some(ms) = self.run_timeout_ms {
            config = config.with_timeout(self.clock.ms(ms));
        }
        if let Some(retry) = retry {
            config = config.with_retry_policy(retry);
        }
        config
    }

    fn run_timeout_ms(&self) -> u64 {
        self.run_timeout_ms.unwrap_or(DEFAULT_RUN_TIMEOUT_MS)
    }

    /// When the engine must stop the run (cancelled, or out of time),
    /// whatever its agents do.
    fn engine_stop_ms(&self) -> u64 {
        self.stop.cancel_at_ms().min(self.run_timeout_ms())
    }

    /// When the call must have returned (or been dropped) at the latest.
    fn return_by_ms(&self) -> u64 {
        self.engine_stop_ms().min(self.stop.drop_at_ms())
    }
}

// Sleeps end in 5 ms and attempt timeouts in 0 ms, so an attempt never ends
// on its own exactly when its timeout fires.
fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Succeeds),
        1 => Just(Behaviour::FailsPermanently),
        1 => (1_u32..=2).prop_map(Behaviour::Recovers),
        1 => Just(Behaviour::FailsTransientlyForever),
        1 => Just(Behaviour::Panics),
        3 => prop::sample::select(vec![5_u64, 25, 45, 85, 165, 325]).prop_map(Behaviour::Sleeps),
        1 => Just(Behaviour::Hangs),
    ]
}

/// The behaviours whose attempts end at once.
fn instant_behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Succeeds),
        1 => Just(Behaviour::FailsPermanently),
        1 => (1_u32..=2).prop_map(Behaviour::Recovers),
        1 => Just(Behaviour::FailsTransientlyForever),
        1 => Just(Behaviour::Panics),
    ]
}

/// The stops from outside; `drops`: whether the caller may drop the run.
fn stop(drops: bool) -> impl Strategy<Value = Stop> {
    let at = || prop::sample::select(vec![1_u64, 15, 60, 130, 250, 400]);
    prop_oneof![
        3 => Just(Stop::Nothing),
        1 => Just(Stop::CancelBefore),
        3 => at().prop_map(Stop::CancelAfter),
        if drops { 2 } else { 0 } => at().prop_map(Stop::DropAfter),
    ]
}

/// The caller drops the run, and nothing else stops it.
fn dropped() -> impl Strategy<Value = Stop> {
    prop::sample::select(vec![1_u64, 15, 60, 130, 250, 400]).prop_map(Stop::DropAfter)
}

fn setup(clock: Clock, stop: impl Strategy<Value = Stop>) -> impl Strategy<Value = Setup> {
    let run_timeout = prop::sample::select(vec![40_u64, 120, 250, 700]);
    // In real time every run is bounded: a hanging agent must not hold a case
    // for the default five minutes.
    let run_timeout = match clock {
        Clock::Paused => prop::option::weighted(0.5, run_timeout).boxed(),
        Clock::Real => run_timeout.prop_map(Some).boxed(),
    };
    (
        0_usize..=2,
        prop::option::weighted(0.5, prop::sample::select(vec![20_u64, 50, 100, 200])),
        run_timeout,
        stop,
        1_usize..=4,
        prop_oneof![3 => Just(JoinPolicy::All), 1 => Just(JoinPolicy::Any)],
    )
        .prop_map(
            move |(retries, attempt_timeout_ms, run_timeout_ms, stop, limit, join)| Setup {
                clock,
                retries,
                attempt_timeout_ms,
                run_timeout_ms,
                stop,
                limit,
                join,
            },
        )
}

fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![Just(Pattern::Sequential), Just(Pattern::Parallel)]
}

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------

/// Silences the generated panics (and only those) once per process.
fn quiet_generated_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !payload.starts_with(PANIC_MESSAGE) {
                default(info);
            }
        }));
    });
}

/// Everything a case observed.
struct Observed {
    /// What the call returned; `None` when the caller dropped it first.
    result: Option<Result<OrchestratorOutput>>,
    /// The time from the call to its return (or its drop).
    elapsed: Duration,
    /// The journal when the call returned (or was dropped).
    events: Vec<JournalEvent>,
    /// What reached the journal after that.
    late_events: Vec<JournalEvent>,
    /// The context's trace, read after the call returned.
    trace: ExecutionTrace,
    /// Attempts still alive when the call returned.
    running_at_return: usize,
    /// Attempts still alive once every task had a turn after the return.
    running_after_a_turn: usize,
    /// Whether the context had been cancelled when the call returned.
    cancelled_at_return: bool,
    /// Attempts started when the call returned, and a while later.
    started_then_later: (usize, usize),
    /// Attempts alive a while later.
    running_later: usize,
}

impl Observed {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.elapsed.as_millis()).unwrap()
    }

    fn describe(&self) -> String {
        match &self.result {
            None => "dropped".to_owned(),
            Some(Ok(output)) => format!("Ok({:?})", output.result),
            Some(Err(error)) => format!("Err({error:?})"),
        }
    }
}

fn run_case(
    pattern: Pattern,
    agents: Vec<Box<dyn Agent>>,
    config: ExecutionConfig,
    setup: &Setup,
    live: &Arc<Live>,
) -> Observed {
    quiet_generated_panics();
    let clock = setup.clock;
    let stop = setup.stop;
    clock.runtime().block_on(async {
        let journal = Arc::new(InMemoryJournal::new());
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
        match stop {
            Stop::CancelBefore => ctx.cancel(),
            Stop::CancelAfter(ms) => {
                let canceller = ctx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(clock.ms(ms)).await;
                    canceller.cancel();
                });
            }
            Stop::Nothing | Stop::DropAfter(_) => {}
        }
        let input = OrchestratorInput::new("x");
        let start = tokio::time::Instant::now();
        let run = async {
            match pattern {
                Pattern::Sequential => {
                    SequentialOrchestrator::new()
                        .with_config(config)
                        .orchestrate_with_context(agents, input, &ctx)
                        .await
                }
                Pattern::Parallel => {
                    ParallelOrchestrator::new()
                        .with_config(config)
                        .orchestrate_with_context(agents, input, &ctx)
                        .await
                }
            }
        };
        let result = match stop {
            Stop::DropAfter(ms) => tokio::time::timeout(clock.ms(ms), run).await.ok(),
            _ => Some(run.await),
        };
        let elapsed = start.elapsed();
        let running_at_return = live.running();
        let cancelled_at_return = ctx.is_cancelled();
        let events = journal.events();
        let started_then = live.started();
        // Aborted tasks are dropped when next polled: give every task a turn.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let running_after_a_turn = live.running();
        // Nothing may happen after the run returned: not even when the
        // canceller fires now, nor when every timer there is runs out.
        tokio::time::sleep(clock.afterwards()).await;
        let trace = ctx.get_trace().await;
        Observed {
            result,
            elapsed,
            running_at_return,
            running_after_a_turn,
            cancelled_at_return,
            late_events: journal.events().split_off(events.len()),
            events,
            trace,
            started_then_later: (started_then, live.started()),
            running_later: live.running(),
        }
    })
}

// ---------------------------------------------------------------------------
// Property 1: the journal is well formed
// ---------------------------------------------------------------------------

/// How a node of a run ended, as its run's events tell.
#[derive(Debug, Clone, PartialEq)]
enum NodeEnd {
    NotStarted,
    Succeeded,
    /// Its last attempt failed and no retry followed: the error.
    Failed(OrchestrationError),
    /// Its last attempt was cut short, or a retry was pending.
    Cut,
}

/// One run, as its events tell.
#[derive(Debug)]
struct RunView {
    orchestrator: String,
    nodes: Vec<String>,
    parent: Option<(RunId, NodeId, u32)>,
    outcome: Option<RunOutcome>,
    ends: Vec<NodeEnd>,
    /// Per node: the last attempt's outcome, and the highest retry announced.
    last: Vec<Option<(u32, AttemptOutcome)>>,
    retried_to: Vec<u32>,
}

type AttemptKey = (RunId, NodeId, u32);

/// Checks property 1 and returns every run, by id, with the id of the one
/// top-level run.
fn check_journal(
    events: &[JournalEvent],
    retries: usize,
) -> Check<(RunId, HashMap<RunId, RunView>)> {
    let max_attempts = u32::try_from(retries).unwrap() + 1;
    let mut runs: HashMap<RunId, RunView> = HashMap::new();
    let mut started_at: HashMap<RunId, usize> = HashMap::new();
    let mut finished_at: HashMap<RunId, usize> = HashMap::new();
    let mut attempt_started: HashMap<AttemptKey, usize> = HashMap::new();
    let mut attempt_finished: HashMap<AttemptKey, usize> = HashMap::new();
    let mut retry_at: HashMap<AttemptKey, usize> = HashMap::new();
    let mut top = Vec::new();

    for (index, event) in events.iter().enumerate() {
        let run = event.run;
        if let EventKind::RunStarted {
            orchestrator,
            nodes,
            parent,
            ..
        } = &event.kind
        {
            prop_assert!(
                started_at.insert(run, index).is_none(),
                "run {run} started twice (event {index})"
            );
            if let Some(parent) = parent {
                let key = (parent.run, parent.node, parent.attempt);
                prop_assert!(
                    attempt_started.contains_key(&key) && !attempt_finished.contains_key(&key),
                    "nested run {run} starts outside its parent attempt {key:?} (event {index})"
                );
            } else {
                top.push(run);
            }
            runs.insert(
                run,
                RunView {
                    orchestrator: orchestrator.clone(),
                    nodes: nodes.clone(),
                    parent: parent.map(|p| (p.run, p.node, p.attempt)),
                    outcome: None,
                    ends: vec![NodeEnd::NotStarted; nodes.len()],
                    last: vec![None; nodes.len()],
                    retried_to: vec![0; nodes.len()],
                },
            );
            continue;
        }
        prop_assert!(
            started_at.contains_key(&run),
            "event {index} of run {run} comes before the run started: {:?}",
            event.kind
        );
        prop_assert!(
            !finished_at.contains_key(&run),
            "event {index} of run {run} comes after the run finished: {:?}",
            event.kind
        );
        let view = runs.get_mut(&run).unwrap();
        match &event.kind {
            EventKind::AttemptStarted {
                node,
                attempt,
                max_attempts: max,
                ..
            } => {
                let key = (run, *node, *attempt);
                prop_assert!(node.index() < view.nodes.len(), "unknown node {node}");
                prop_assert_eq!(*max, max_attempts, "max_attempts of {:?}", key);
                prop_assert!(
                    (1..=max_attempts).contains(attempt),
                    "attempt {:?} exceeds max_retries + 1",
                    key
                );
                prop_assert!(
                    attempt_started.insert(key, index).is_none(),
                    "attempt {:?} started twice",
                    key
                );
                if *attempt > 1 {
                    let before = (run, *node, *attempt - 1);
                    prop_assert!(
                        attempt_finished.contains_key(&before),
                        "attempt {:?} starts before attempt {:?} finished",
                        key,
                        before
                    );
                    prop_assert!(
                        retry_at.contains_key(&key),
                        "attempt {:?} starts without a retry scheduled",
                        key
                    );
                }
                if let Some((open, _)) = &view.last[node.index()] {
                    prop_assert_eq!(*open + 1, *attempt, "attempts of {} skip a number", node);
                }
            }
            EventKind::AttemptFinished {
                node,
                attempt,
                outcome,
                ..
            } => {
                let key = (run, *node, *attempt);
                prop_assert!(
                    attempt_started.contains_key(&key),
                    "attempt {:?} finished without starting (event {})",
                    key,
                    index
                );
                prop_assert!(
                    attempt_finished.insert(key, index).is_none(),
                    "attempt {:?} finished twice",
                    key
                );
                view.last[node.index()] = Some((*attempt, outcome.clone()));
            }
            EventKind::RetryScheduled {
                node, next_attempt, ..
            } => {
                let key = (run, *node, *next_attempt);
                let failed = (run, *node, next_attempt.saturating_sub(1));
                prop_assert!(
                    attempt_finished.contains_key(&failed),
                    "retry {:?} scheduled before attempt {:?} finished",
                    key,
                    failed
                );
                prop_assert!(
                    matches!(
                        view.last[node.index()],
                        Some((_, AttemptOutcome::Failed(_)))
                    ),
                    "retry {:?} after an attempt that did not fail",
                    key
                );
                prop_assert!(
                    *next_attempt <= max_attempts,
                    "retry {:?} beyond max_retries",
                    key
                );
                prop_assert!(
                    retry_at.insert(key, index).is_none(),
                    "retry {:?} twice",
                    key
                );
                view.retried_to[node.index()] = *next_attempt;
            }
            EventKind::RunFinished { outcome } => {
                finished_at.insert(run, index);
                view.outcome = Some(outcome.clone());
            }
            _ => {}
        }
    }

    for (&run, &start) in &started_at {
        prop_assert!(
            finished_at.contains_key(&run),
            "run {run} (started at event {start}) never finished"
        );
    }
    for (key, &start) in &attempt_started {
        let Some(&end) = attempt_finished.get(key) else {
            prop_assert!(false, "attempt {:?} (event {}) never finished", key, start);
            unreachable!();
        };
        prop_assert!(end > start, "attempt {:?} finished before it started", key);
    }
    // A nested run lies inside the attempt it runs in.
    for (&run, view) in &runs {
        if let Some(parent) = view.parent {
            let attempt_end = attempt_finished[&parent];
            prop_assert!(
                finished_at[&run] < attempt_end,
                "nested run {run} finishes after its parent attempt {parent:?}"
            );
        }
    }
    prop_assert_eq!(top.len(), 1, "one top-level run");

    // How each node ended.
    for view in runs.values_mut() {
        for (index, end) in view.ends.iter_mut().enumerate() {
            *end = match &view.last[index] {
                None if view.retried_to[index] > 0 => NodeEnd::Cut,
                None => NodeEnd::NotStarted,
                Some((_, AttemptOutcome::Succeeded(_))) => NodeEnd::Succeeded,
                Some((attempt, AttemptOutcome::Failed(error)))
                    if view.retried_to[index] <= *attempt =>
                {
                    NodeEnd::Failed(error.clone())
                }
                Some(_) => NodeEnd::Cut,
            };
        }
    }
    Ok((top[0], runs))
}

// ---------------------------------------------------------------------------
// Property 4, from the journal: each run's outcome follows its pattern's rule
// ---------------------------------------------------------------------------

fn is_interrupted(outcome: &RunOutcome) -> bool {
    matches!(outcome, RunOutcome::Interrupted(_))
}

/// Checks that `view`'s outcome is what its pattern makes of how its nodes
/// ended. A node whose attempt failed just as the run had to stop may count
/// as cut short (the executor checks the stop after a failed attempt), so an
/// interrupted run may show failed nodes where a cut one is expected.
fn check_run_rule(id: RunId, view: &RunView, join: JoinPolicy) -> Check {
    let outcome = view.outcome.as_ref().unwrap();
    let ends = &view.ends;
    let n = ends.len();
    let context = || {
        format!(
            "run {id} ({}) ended {outcome:?} with nodes {ends:?}",
            view.orchestrator
        )
    };
    // A caller may drop the run after its last node ended and before the run
    // could conclude: nobody got its result, and its journal says so.
    let dropped = matches!(
        outcome,
        RunOutcome::Interrupted(claude_agent_sdk::orchestration::Interruption::Dropped)
    );
    if view.orchestrator == Pattern::Sequential.orchestrator_name() {
        let first = ends.iter().position(|end| *end != NodeEnd::Succeeded);
        let Some(first) = first else {
            if !dropped {
                prop_assert_eq!(outcome, &RunOutcome::Succeeded, "{}", context());
            }
            return Ok(());
        };
        prop_assert!(
            ends[first + 1..]
                .iter()
                .all(|end| *end == NodeEnd::NotStarted),
            "nodes ran after node {} of a pipeline did not succeed: {}",
            first,
            context()
        );
        match (&ends[first], outcome) {
            (NodeEnd::Failed(_), RunOutcome::Failed(OrchestrationError::AgentFailed(name, _))) => {
                prop_assert_eq!(name, &view.nodes[first], "{}", context());
            }
            (
                NodeEnd::Failed(_) | NodeEnd::Cut | NodeEnd::NotStarted,
                RunOutcome::Interrupted(_),
            ) => {}
            _ => prop_assert!(false, "{}", context()),
        }
    } else {
        prop_assert_eq!(&view.orchestrator, Pattern::Parallel.orchestrator_name());
        let succeeded = ends
            .iter()
            .filter(|end| **end == NodeEnd::Succeeded)
            .count();
        let failed = ends
            .iter()
            .filter(|end| matches!(end, NodeEnd::Failed(_)))
            .count();
        if succeeded + failed < n {
            prop_assert!(is_interrupted(outcome), "{}", context());
        } else if is_interrupted(outcome) {
            prop_assert!(
                failed > 0 || dropped,
                "a run all of whose nodes succeeded was interrupted: {}",
                context()
            );
        } else if join.is_satisfied(succeeded, n) {
            prop_assert_eq!(outcome, &RunOutcome::Succeeded, "{}", context());
        } else if succeeded == 0 {
            match outcome {
                RunOutcome::Failed(OrchestrationError::AgentFailed(name, _)) => {
                    prop_assert_eq!(name, &view.nodes[0], "{}", context());
                }
                _ => prop_assert!(false, "{}", context()),
            }
        } else {
            prop_assert_eq!(
                outcome,
                &RunOutcome::Failed(OrchestrationError::PartialSuccess(failed)),
                "{}",
                context()
            );
        }
    }
    Ok(())
}

/// Checks that the top-level result is its run's outcome, and that an
/// interruption had its cause.
fn check_result_matches_journal(observed: &Observed, outcome: &RunOutcome, setup: &Setup) -> Check {
    use claude_agent_sdk::orchestration::Interruption;
    match (&observed.result, outcome) {
        (Some(Ok(_)), RunOutcome::Succeeded) => {}
        (Some(Err(error)), RunOutcome::Failed(logged)) => prop_assert_eq!(error, logged),
        (Some(Err(OrchestrationError::Cancelled)), RunOutcome::Interrupted(why)) => {
            prop_assert_eq!(*why, Interruption::Cancelled);
            prop_assert!(
                observed.cancelled_at_return,
                "Cancelled, but the context was not cancelled"
            );
        }
        (Some(Err(OrchestrationError::Timeout(_))), RunOutcome::Interrupted(why)) => {
            prop_assert!(
                matches!(why, Interruption::TimedOut | Interruption::Abandoned),
                "Timeout, but the journal says {:?}",
                why
            );
            let timeout = setup.clock.ms(setup.run_timeout_ms());
            prop_assert!(
                observed.elapsed >= timeout,
                "Timeout after {:?}, before the run timeout of {:?}",
                observed.elapsed,
                timeout
            );
        }
        (None, RunOutcome::Interrupted(Interruption::Dropped)) => {}
        (_, outcome) => prop_assert!(
            false,
            "the result {} is not the journal's outcome {:?}",
            observed.describe(),
            outcome
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties 2 and 3: counts add up, nothing outlives its run
// ---------------------------------------------------------------------------

/// Every record of `trace` and of the traces nested in it.
fn walk(trace: &ExecutionTrace) -> Vec<&claude_agent_sdk::orchestration::AgentExecution> {
    let mut records = Vec::new();
    let mut pending = vec![trace];
    while let Some(trace) = pending.pop() {
        for record in &trace.agent_executions {
            records.push(record);
            if let Some(nested) = &record.nested {
                pending.push(nested);
            }
        }
    }
    records
}

fn check_counts(observed: &Observed, runs: &HashMap<RunId, RunView>, retries: usize) -> Check {
    let attempts_started = observed
        .events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::AttemptStarted { .. }))
        .count();
    let nested_runs = runs.values().filter(|view| view.parent.is_some()).count();
    let check_trace = |trace: &ExecutionTrace, what: &str| -> Check {
        let records = walk(trace);
        prop_assert_eq!(
            records.len(),
            attempts_started,
            "{} records (nested included) vs AttemptStarted events",
            what
        );
        prop_assert_eq!(
            records
                .iter()
                .filter(|record| record.nested.is_some())
                .count(),
            nested_runs,
            "{}: every nested run hangs under its attempt",
            what
        );
        prop_assert!(trace.end_time.is_some(), "{} has no end time", what);
        let mut per_node: BTreeMap<(String, Option<NodeId>), usize> = BTreeMap::new();
        for record in &records {
            let Some(end) = record.end_time else {
                prop_assert!(
                    false,
                    "{}: {} attempt {} never ended",
                    what,
                    record.agent_name,
                    record.attempt
                );
                unreachable!();
            };
            prop_assert!(
                end >= record.start_time,
                "{}: a record ends before it starts",
                what
            );
            *per_node
                .entry((format!("{:?}", record.run_id), record.node))
                .or_default() += 1;
        }
        for (node, count) in per_node {
            prop_assert!(
                count <= retries + 1,
                "{}: {:?} had {} attempts in one run, more than max_retries + 1 = {}",
                what,
                node,
                count,
                retries + 1
            );
        }
        Ok(())
    };
    check_trace(&observed.trace, "the context's trace")?;
    if let Some(Ok(output)) = &observed.result {
        check_trace(&output.execution_trace, "the output's trace")?;
    }
    // The generated agents' calls are the attempts of every node but the
    // nested orchestrations.
    let generated_attempts = observed
        .events
        .iter()
        .filter(|event| match &event.kind {
            EventKind::AttemptStarted { node, .. } => {
                runs[&event.run].nodes[node.index()] != NESTED_AGENT
            }
            _ => false,
        })
        .count();
    prop_assert_eq!(
        observed.started_then_later.0,
        generated_attempts,
        "agents called vs AttemptStarted events"
    );
    Ok(())
}

fn check_nothing_outlives_the_run(observed: &Observed) -> Check {
    if observed.result.is_some() {
        prop_assert_eq!(
            observed.running_at_return,
            0,
            "attempts still running when the run returned"
        );
    }
    prop_assert_eq!(
        observed.running_after_a_turn,
        0,
        "attempts still running after the run returned (or was dropped) and every task had a turn"
    );
    prop_assert!(
        observed.late_events.is_empty(),
        "journal events after the run returned (or was dropped): {:#?}",
        observed.late_events
    );
    prop_assert_eq!(
        observed.started_then_later.0,
        observed.started_then_later.1,
        "agents started after the run returned"
    );
    prop_assert_eq!(observed.running_later, 0);
    Ok(())
}

/// Checks that the events of each run are dated in the order they were
/// appended ("events of one run are appended in the order they happened").
fn check_dates(events: &[JournalEvent]) -> Check {
    let mut last_at = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(previous) = last_at.insert(event.run, event.at) {
            prop_assert!(
                event.at >= previous,
                "event {} of run {} ({:?}) is dated {} before the event of its run appended before it",
                index,
                event.run,
                event.kind,
                previous - event.at
            );
        }
    }
    Ok(())
}

/// Which checks a case makes beyond the invariants every case checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dates {
    /// The events of each run are dated in append order.
    InOrder,
    /// Not checked (see the ignored property that checks it).
    Unchecked,
}

/// Properties 1–3 and the journal side of 4, for any run.
fn check_invariants(
    observed: &Observed,
    setup: &Setup,
    dates: Dates,
) -> Check<(RunId, HashMap<RunId, RunView>)> {
    check_nothing_outlives_the_run(observed)?;
    let (top, runs) = check_journal(&observed.events, setup.retries)?;
    if dates == Dates::InOrder {
        check_dates(&observed.events)?;
    }
    check_counts(observed, &runs, setup.retries)?;
    for (&id, view) in &runs {
        check_run_rule(id, view, setup.join)?;
    }
    check_result_matches_journal(observed, runs[&top].outcome.as_ref().unwrap(), setup)?;
    if setup.clock == Clock::Paused {
        // A run stops as soon as it must: its agents all stop when told.
        prop_assert!(
            observed.elapsed_ms() <= setup.return_by_ms(),
            "the run returned after {} ms, past its stop at {} ms",
            observed.elapsed_ms(),
            setup.return_by_ms()
        );
    }
    Ok((top, runs))
}

// ---------------------------------------------------------------------------
// Property 4, from a model: what a flat run must return, when, after how many
// attempts
// ---------------------------------------------------------------------------

/// How an agent ends when nothing stops it.
#[derive(Debug, Clone, Copy)]
struct Natural {
    attempts: usize,
    /// From its first attempt's start to its node's end; `NEVER` if it hangs.
    duration_ms: u64,
    succeeds: bool,
}

fn natural(behaviour: Behaviour, setup: &Setup) -> Natural {
    let retries = setup.retries as u64;
    let end = |attempts: u64, duration_ms: u64, succeeds: bool| Natural {
        attempts: attempts as usize,
        duration_ms,
        succeeds,
    };
    let times_out = |limit: u64| {
        end(
            retries + 1,
            (retries + 1) * limit + retries * RETRY_DELAY_MS,
            false,
        )
    };
    match behaviour {
        Behaviour::Succeeds => end(1, 0, true),
        Behaviour::FailsPermanently | Behaviour::Panics => end(1, 0, false),
        Behaviour::Recovers(k) if u64::from(k) <= retries => {
            end(u64::from(k) + 1, u64::from(k) * RETRY_DELAY_MS, true)
        }
        Behaviour::Recovers(_) | Behaviour::FailsTransientlyForever => {
            end(retries + 1, retries * RETRY_DELAY_MS, false)
        }
        Behaviour::Sleeps(ms) => match setup.attempt_timeout_ms {
            Some(limit) if limit < ms => times_out(limit),
            _ => end(1, ms, true),
        },
        Behaviour::Hangs => match setup.attempt_timeout_ms {
            Some(limit) => times_out(limit),
            None => end(1, NEVER, false),
        },
    }
}

/// What a run may return.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Ok,
    AgentFailed(String),
    PartialSuccess(usize),
    Cancelled,
    Timeout,
    /// The caller dropped the run first.
    Dropped,
}

impl Expect {
    fn matches(&self, result: Option<&Result<OrchestratorOutput>>) -> bool {
        match (self, result) {
            (Self::Ok, Some(Ok(_))) => true,
            (Self::AgentFailed(want), Some(Err(OrchestrationError::AgentFailed(name, _)))) => {
                want == name
            }
            (Self::PartialSuccess(want), Some(Err(OrchestrationError::PartialSuccess(count)))) => {
                want == count
            }
            (Self::Cancelled, Some(Err(OrchestrationError::Cancelled))) => true,
            (Self::Timeout, Some(Err(OrchestrationError::Timeout(_)))) => true,
            (Self::Dropped, None) => true,
            _ => false,
        }
    }
}

/// A flat run left alone: when it ends, what it returns, and how many
/// attempts each agent gets.
fn natural_run(
    pattern: Pattern,
    behaviours: &[Behaviour],
    setup: &Setup,
) -> (u64, Expect, Vec<usize>) {
    let naturals: Vec<Natural> = behaviours.iter().map(|b| natural(*b, setup)).collect();
    let mut attempts = vec![0; naturals.len()];
    match pattern {
        Pattern::Sequential => {
            let mut now = 0_u64;
            for (index, agent) in naturals.iter().enumerate() {
                attempts[index] = agent.attempts;
                now = now.saturating_add(agent.duration_ms);
                if !agent.succeeds {
                    return (now, Expect::AgentFailed(format!("a{index}")), attempts);
                }
            }
            (now, Expect::Ok, attempts)
        }
        Pattern::Parallel => {
            // The scheduler hands the agents out in order, as slots free up.
            let mut slots = vec![0_u64; setup.limit.min(naturals.len())];
            let mut end = 0_u64;
            for (index, agent) in naturals.iter().enumerate() {
                let slot = (0..slots.len()).min_by_key(|&s| slots[s]).unwrap();
                attempts[index] = agent.attempts;
                slots[slot] = slots[slot].saturating_add(agent.duration_ms);
                end = end.max(slots[slot]);
            }
            let succeeded = naturals.iter().filter(|agent| agent.succeeds).count();
            let expect = if setup.join.is_satisfied(succeeded, naturals.len()) {
                Expect::Ok
            } else if succeeded == 0 {
                Expect::AgentFailed("a0".into())
            } else {
                Expect::PartialSuccess(naturals.len() - succeeded)
            };
            (end, expect, attempts)
        }
    }
}

fn check_model(
    observed: &Observed,
    pattern: Pattern,
    behaviours: &[Behaviour],
    setup: &Setup,
    runs: &HashMap<RunId, RunView>,
    top: RunId,
) -> Check {
    let (end, natural_result, natural_attempts) = natural_run(pattern, behaviours, setup);
    // Whatever happens first decides; at a tie, any of the tied may.
    let before = matches!(setup.stop, Stop::CancelBefore);
    let candidates = if before {
        vec![(0, Expect::Cancelled)]
    } else {
        vec![
            (end, natural_result),
            (setup.stop.cancel_at_ms(), Expect::Cancelled),
            (setup.run_timeout_ms(), Expect::Timeout),
            (setup.stop.drop_at_ms(), Expect::Dropped),
        ]
    };
    let first = candidates.iter().map(|(at, _)| *at).min().unwrap();
    let allowed: Vec<&Expect> = candidates
        .iter()
        .filter(|(at, _)| *at == first)
        .map(|(_, expect)| expect)
        .collect();
    prop_assert!(
        allowed
            .iter()
            .any(|expect| expect.matches(observed.result.as_ref())),
        "returned {} after {} ms; the model allows {:?} (natural end {} ms, run stopped at {} ms)",
        observed.describe(),
        observed.elapsed_ms(),
        allowed,
        if end == NEVER {
            "never".to_owned()
        } else {
            end.to_string()
        },
        setup.return_by_ms()
    );
    prop_assert_eq!(observed.elapsed_ms(), first, "how long the run took");
    let view = &runs[&top];
    let attempts: Vec<usize> = view
        .last
        .iter()
        .map(|last| last.as_ref().map_or(0, |(attempt, _)| *attempt as usize))
        .collect();
    if before {
        prop_assert!(
            attempts.iter().all(|&n| n == 0),
            "attempts {:?} after a cancel before the run",
            attempts
        );
    } else if end < setup.return_by_ms() {
        prop_assert_eq!(attempts, natural_attempts, "attempts per agent");
    } else {
        for (index, (&got, &most)) in attempts.iter().zip(&natural_attempts).enumerate() {
            prop_assert!(
                got <= most,
                "a{} had {} attempts, more than the {} it needs",
                index,
                got,
                most
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

fn flat_agents(behaviours: &[Behaviour], clock: Clock, live: &Arc<Live>) -> Vec<Box<dyn Agent>> {
    behaviours
        .iter()
        .enumerate()
        .map(|(i, b)| Generated::boxed(format!("a{i}"), *b, clock, live))
        .collect()
}

/// A nested run: an `OrchestratorAgent` of `inner_pattern` at `position`
/// among the outer agents.
#[derive(Debug, Clone)]
struct Nesting {
    outer_pattern: Pattern,
    inner_pattern: Pattern,
    outer: Vec<Behaviour>,
    inner: Vec<Behaviour>,
    position: usize,
}

fn nesting() -> impl Strategy<Value = Nesting> {
    (
        prop_oneof![
            3 => Just((Pattern::Sequential, Pattern::Parallel)),
            1 => Just((Pattern::Parallel, Pattern::Sequential)),
            1 => Just((Pattern::Parallel, Pattern::Parallel)),
            1 => Just((Pattern::Sequential, Pattern::Sequential)),
        ],
        prop::collection::vec(behaviour(), 0..4),
        prop::collection::vec(behaviour(), 1..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |((outer_pattern, inner_pattern), outer, inner, index)| Nesting {
                position: index.index(outer.len() + 1),
                outer_pattern,
                inner_pattern,
                outer,
                inner,
            },
        )
}

/// A flat run of `behaviours`: every invariant, and in paused time the
/// exact result, duration and attempts the model predicts.
fn flat_case(pattern: Pattern, behaviours: &[Behaviour], setup: &Setup, dates: Dates) -> Check {
    let live = Arc::new(Live::default());
    let retry: Arc<dyn RetryPolicy> = Arc::new(FixedRetry(setup.clock.ms(RETRY_DELAY_MS)));
    let observed = run_case(
        pattern,
        flat_agents(behaviours, setup.clock, &live),
        setup.config(Some(retry)),
        setup,
        &live,
    );
    let (top, runs) = check_invariants(&observed, setup, dates)?;
    if setup.clock == Clock::Paused {
        check_model(&observed, pattern, behaviours, setup, &runs, top)?;
    }
    Ok(())
}

/// One orchestration nested in another through `OrchestratorAgent` (the
/// default, jittered retry policy): every invariant, nested runs included.
fn nested_case(nesting: &Nesting, setup: &Setup, dates: Dates) -> Check {
    let live = Arc::new(Live::default());
    let config = setup.config(None);
    let inner: Vec<Box<dyn Agent>> = nesting
        .inner
        .iter()
        .enumerate()
        .map(|(i, b)| Generated::boxed(format!("n{i}"), *b, setup.clock, &live))
        .collect();
    let nested: Box<dyn Agent> = match nesting.inner_pattern {
        Pattern::Sequential => Box::new(OrchestratorAgent::new(
            NESTED_AGENT,
            "a nested pipeline",
            SequentialOrchestrator::new().with_config(config.clone()),
            inner,
        )),
        Pattern::Parallel => Box::new(OrchestratorAgent::new(
            NESTED_AGENT,
            "a nested fan-out",
            ParallelOrchestrator::new().with_config(config.clone()),
            inner,
        )),
    };
    let mut agents = flat_agents(&nesting.outer, setup.clock, &live);
    agents.insert(nesting.position, nested);
    let observed = run_case(nesting.outer_pattern, agents, config, setup, &live);
    let (top, runs) = check_invariants(&observed, setup, dates)?;
    let node = NodeId(u32::try_from(nesting.position).unwrap());
    prop_assert!(
        runs.values().all(|view| view
            .parent
            .is_none_or(|(run, n, _)| run == top && n == node)),
        "every run but the top one runs in an attempt of the nested agent"
    );
    // A nested attempt succeeds only if the run inside it did.
    if let Some((attempt, AttemptOutcome::Succeeded(_))) = &runs[&top].last[node.index()] {
        let inner = runs
            .values()
            .find(|view| view.parent == Some((top, node, *attempt)));
        prop_assert!(
            inner.is_some(),
            "a successful nested attempt without its run"
        );
        prop_assert_eq!(
            inner.unwrap().outcome.as_ref(),
            Some(&RunOutcome::Succeeded),
            "the run inside a successful nested attempt"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Other people edit this crate: keep failures in the report, not in files.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn flat_runs_keep_the_invariants_and_follow_the_model(
        pattern in pattern(),
        behaviours in prop::collection::vec(behaviour(), 1..8),
        setup in setup(Clock::Paused, stop(true)),
    ) {
        flat_case(pattern, &behaviours, &setup, Dates::InOrder)?;
    }

    #[test]
    fn nested_runs_keep_the_invariants(
        nesting in nesting(),
        setup in setup(Clock::Paused, stop(false)),
    ) {
        nested_case(&nesting, &setup, Dates::InOrder)?;
    }

    #[test]
    fn nested_runs_dropped_by_their_caller_write_nothing_afterwards(
        nesting in nesting(),
        setup in setup(Clock::Paused, dropped()),
    ) {
        nested_case(&nesting, &setup, Dates::InOrder)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Flat runs whose tasks race on several threads in real time (no model:
    /// real time is not exact).
    #[test]
    fn flat_runs_keep_the_invariants_on_a_multi_threaded_runtime(
        pattern in pattern(),
        behaviours in prop::collection::vec(behaviour(), 1..8),
        setup in setup(Clock::Real, stop(true)),
    ) {
        flat_case(pattern, &behaviours, &setup, Dates::Unchecked)?;
    }

    /// Nested runs whose tasks race on several threads in real time.
    #[test]
    fn nested_runs_keep_the_invariants_on_a_multi_threaded_runtime(
        nesting in nesting(),
        setup in setup(Clock::Real, stop(false)),
    ) {
        nested_case(&nesting, &setup, Dates::Unchecked)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        // The failure is a race: shrinking it finds little.
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    /// Fan-outs whose attempts start and end on several threads at once: the
    /// events of each run are dated in the order they were appended. (A race:
    /// each case runs its fan-out 20 times.)
    #[test]
    fn journal_dates_follow_append_order_on_a_multi_threaded_runtime(
        behaviours in prop::collection::vec(instant_behaviour(), 4..16),
        limit in 2_usize..=8,
    ) {
        quiet_generated_panics();
        let live = Arc::new(Live::default());
        Clock::Real.runtime().block_on(async {
            for _ in 0..20 {
                let journal = Arc::new(InMemoryJournal::new());
                let ctx =
                    ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
                let config = ExecutionConfig::new()
                    .with_parallel_limit(limit)
                    .with_max_retries(2)
                    .with_logging(false)
                    .with_retry_policy(Arc::new(FixedRetry(Duration::ZERO)));
                let _ = ParallelOrchestrator::new()
                    .with_config(config)
                    .orchestrate_with_context(
                        flat_agents(&behaviours, Clock::Real, &live),
                        OrchestratorInput::new("x"),
                        &ctx,
                    )
                    .await;
                check_dates(&journal.events())?;
            }
            Check::Ok(())
        })?;
    }
}
