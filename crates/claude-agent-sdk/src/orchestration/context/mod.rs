//! [`ExecutionContext`]: what runs share — state, journal, cancellation and an observer.
//!
//! A context is a cheap handle (`Clone` is an `Arc` bump) that callers own when
//! they need more than the output of a run: they keep its trace after a failure,
//! cancel it from another task or thread, and share state between agents.
//! Agents reach the context they run under with [`ExecutionContext::current`],
//! without it being threaded through [`Agent::execute`](super::Agent::execute).
//!
//! A context may serve several runs, one after another or at once. Each run
//! has its own [`RunId`] and its own trace (the `execution_trace` of its
//! output); the context's [`get_trace`](ExecutionContext::get_trace) is the
//! history of every run made under it, each record naming its run. So a
//! context keeps every run made under it for as long as it lives (the ids,
//! and in its default [`InMemoryJournal`] their events): a process that runs
//! for good makes a context per run, or keeps its runs in a durable store.
//!
//! ```
//! use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let ctx = ExecutionContext::new(ExecutionConfig::new());
//!
//! // Store state
//! ctx.set_state("key", serde_json::json!("value")).await;
//!
//! // Retrieve state
//! if let Some(value) = ctx.get_state("key").await {
//!     println!("State: {}", value);
//! }
//!
//! // Get execution trace
//! let trace = ctx.get_trace().await;
//! println!("Executions: {}", trace.agent_executions.len());
//! # assert_eq!(ctx.get_state("key").await, Some(serde_json::json!("value")));
//! # });
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

pub use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::human::FinishedStep;
use crate::orchestration::journal::{view, InMemoryJournal, Journal, LiveJournal, NodeId, RunId};
use crate::orchestration::observer::RunObserver;
use crate::orchestration::resume::Continuation;
use crate::orchestration::stop_token::StopToken;
pub use crate::orchestration::trace::{AgentExecution, ExecutionTrace, NestedTrace};

mod state;

type State = HashMap<String, serde_json::Value>;

/// Shared state, journal and cancellation of the runs made under it.
///
/// Locks inside a context are only ever held for a map or vector operation,
/// never across an agent's `.await`.
#[derive(Clone)]
pub struct ExecutionContext {
    inner: Arc<Inner>,
}

struct Inner {
    config: ExecutionConfig,
    state: Arc<RwLock<State>>,
    /// The runs not nested in another whose changes the state holds: those
    /// made under a handle sharing it, and those a resumed run replayed
    /// into it (see [`Continuation`]). Shared with the state.
    state_runs: Arc<Mutex<HashSet<RunId>>>,
    /// Answers to the questions agents ask, by question id.
    answers: Arc<RwLock<HashMap<String, String>>>,
    journal: Arc<dyn Journal>,
    /// The journal again, when it is a [`LiveJournal`] (a private context's),
    /// which keeps traces rather than events: traces are asked of it.
    live: Option<Arc<LiveJournal>>,
    cancellation: StopToken,
    clock: Clock,
    observer: Option<Arc<dyn RunObserver>>,
    /// When the context was made: the start of its history.
    created: DateTime<Utc>,
    /// The runs made under this context (not those nested in them).
    history: Arc<Mutex<History>>,
    /// The stopped run the next run under this handle continues (see
    /// [`resume`](mod@super::resume)); taken by the first run not nested in another.
    continuation: Mutex<Option<Box<Continuation>>>,
    /// Steps that finished inside graphs nested in this context's run when
    /// it paused, by the node they ran in: the run nested in that node, when
    /// the run resumes, reuses them (see [`human`](super::human)).
    paused_inside: Mutex<HashMap<(NodeId, u32), Vec<FinishedStep>>>,
    /// The steps the next run under this handle reuses: what the run nested
    /// here had finished when it paused.
    finished_before: Mutex<Vec<FinishedStep>>,
}

/// The runs made under a context.
#[derive(Debug, Default)]
struct History {
    runs: Vec<RunId>,
    running: usize,
    last_end: Option<DateTime<Utc>>,
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionContext")
            .field("config", &self.inner.config)
            .field("cancelled", &self.is_cancelled())
            .field("journal", &self.inner.journal)
            .field("observed", &self.inner.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl ExecutionContext {
    /// A fresh context: empty state, a new [`InMemoryJournal`], not cancelled.
    #[must_use]
    pub fn new(config: ExecutionConfig) -> Self {
        let clock = Clock::start();
        Self {
            inner: Arc::new(Inner {
                config,
                state: Arc::default(),
                state_runs: Arc::default(),
                answers: Arc::default(),
                journal: Arc::new(InMemoryJournal::new()),
                live: None,
                cancellation: StopToken::new(),
                created: clock.now(),
                clock,
                observer: None,
                history: Arc::default(),
                continuation: Mutex::new(None),
                paused_inside: Mutex::default(),
                finished_before: Mutex::default(),
            }),
        }
    }

    /// A handle on the same context with `change` applied to a copy of its
    /// parts (the same state, history and cancellation).
    fn rebuilt(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                config: shared.config.clone(),
                state: Arc::clone(&shared.state),
                state_runs: Arc::clone(&shared.state_runs),
                answers: Arc::clone(&shared.answers),
                journal: Arc::clone(&shared.journal),
                live: shared.live.clone(),
                cancellation: shared.cancellation.clone(),
                clock: shared.clock,
                observer: shared.observer.clone(),
                created: shared.created,
                history: Arc::clone(&shared.history),
                continuation: Mutex::new(None),
                paused_inside: Mutex::default(),
                finished_before: Mutex::default(),
            },
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Attaches an observer that hears every [`RunEvent`](super::RunEvent) of the
    /// runs under this context and its children (see [`RunObserver`]).
    ///
    /// Handles cloned from this context before the call keep running unobserved;
    /// attach the observer first.
    #[must_use]
    pub fn with_observer(self, observer: Arc<dyn RunObserver>) -> Self {
        self.rebuilt(|inner| inner.observer = Some(observer))
    }

    /// Keeps the events of the runs under this context (and its children) in
    /// `journal` instead of a fresh [`InMemoryJournal`].
    ///
    /// Handles cloned from this context before the call keep the old journal;
    /// attach the journal first.
    #[must_use]
    pub fn with_journal(self, journal: Arc<dyn Journal>) -> Self {
        self.rebuilt(|inner| {
            inner.journal = journal;
            inner.live = None;
        })
    }

    /// A fresh context for one run that nobody else reads (the one
    /// [`Orchestrator::orchestrate`](super::Orchestrator::orchestrate) makes):
    /// its journal keeps the run's trace, built as the run goes, rather than
    /// its events (see `journal::live`).
    pub(crate) fn private(config: ExecutionConfig) -> Self {
        let live = Arc::new(LiveJournal::default());
        let journal: Arc<dyn Journal> = live.clone();
        Self::new(config).rebuilt(|inner| {
            inner.journal = journal;
            inner.live = Some(live);
        })
    }

    /// A context for a nested run: it shares this context's state, journal,
    /// observer and clock and is cancelled with it, but keeps a history (and
    /// so a trace) of its own.
    #[must_use]
    pub fn child(&self, config: ExecutionConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Arc::clone(&self.inner.state),
                state_runs: Arc::clone(&self.inner.state_runs),
                answers: Arc::clone(&self.inner.answers),
                journal: Arc::clone(&self.inner.journal),
                live: self.inner.live.clone(),
                cancellation: self.inner.cancellation.child(),
                clock: self.inner.clock,
                observer: self.inner.observer.clone(),
                created: self.inner.clock.now(),
                history: Arc::default(),
                continuation: Mutex::new(None),
                paused_inside: Mutex::default(),
                finished_before: Mutex::default(),
            }),
        }
    }

    /// A handle whose next run continues `continuation` (see [`resume`](mod@super::resume)).
    pub(crate) fn continuing(self, continuation: Continuation) -> Self {
        self.rebuilt(|inner| {
            inner.continuation = Mutex::new(Some(Box::new(continuation)));
        })
    }

    /// The stopped run the run starting now continues, if any (once).
    pub(crate) fn take_continuation(&self) -> Option<Box<Continuation>> {
        self.inner
            .continuation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Keeps `steps`, which finished inside the graph nested in step `step`
    /// (a node and its activation) of this context's run when it paused, for
    /// the run nested there when it resumes.
    pub(crate) fn keep_paused_inside(&self, step: (NodeId, u32), steps: Vec<FinishedStep>) {
        self.inner
            .paused_inside
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(step)
            .or_default()
            .extend(steps);
    }

    /// The steps kept for the run nested in step `step` (once).
    pub(crate) fn take_paused_inside(&self, step: (NodeId, u32)) -> Vec<FinishedStep> {
        self.inner
            .paused_inside
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&step)
            .unwrap_or_default()
    }

    /// A handle whose next run reuses `steps` (see [`take_finished_before`](Self::take_finished_before)).
    pub(crate) fn finished_before(self, steps: Vec<FinishedStep>) -> Self {
        if steps.is_empty() {
            return self;
        }
        self.rebuilt(|inner| inner.finished_before = Mutex::new(steps))
    }

    /// The finished steps the run starting now reuses, if any (once).
    pub(crate) fn take_finished_before(&self) -> Vec<FinishedStep> {
        std::mem::take(
            &mut *self
                .inner
                .finished_before
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The idempotency key of the attempt this code runs in, `None` outside
    /// any attempt: `{first run id}/{node}.{activation}/{attempt}`. It stays
    /// the same when a [resumed](mod@super::resume) run runs the same attempt of
    /// the same step again, so a service given it can refuse to do a side
    /// effect twice (see [`resume`](mod@super::resume) for the guarantee).
    #[must_use]
    pub fn idempotency_key() -> Option<String> {
        crate::orchestration::scope::current().map(|scope| scope.idempotency_key())
    }

    /// The configuration the context was made with.
    #[must_use]
    pub fn config(&self) -> &ExecutionConfig {
        &self.inner.config
    }

    /// The journal the runs under this context append their events to.
    #[must_use]
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.inner.journal
    }

    /// Asks a person question `id` (see [`human`](super::human)): the answer,
    /// when this context (or the one it is a child of) holds one; otherwise
    /// [`OrchestrationError::InputRequired`](super::OrchestrationError::InputRequired)
    /// for the agent to return with `?`, which pauses the run. Graph runs
    /// pause ([`GraphOrchestrator::resume`](super::GraphOrchestrator::resume)
    /// continues them); a pipeline or fan-out has no pause — the question
    /// fails it, with `InputRequired` as the failure's
    /// [`root_cause`](super::OrchestrationError::root_cause), and a graph
    /// running it as a node pauses.
    ///
    /// ```
    /// # use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext};
    /// let ctx = ExecutionContext::new(ExecutionConfig::new());
    /// assert!(ctx.ask("budget", "Spend $50?").is_err());
    /// ctx.answer("budget", "yes");
    /// assert_eq!(ctx.ask("budget", "Spend $50?").unwrap(), "yes");
    /// ```
    ///
    /// # Errors
    /// `InputRequired` with the question, when there is no answer yet.
    pub fn ask(&self, id: &str, question: &str) -> super::Result<String> {
        let answers = self
            .inner
            .answers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match answers.get(id) {
            Some(answer) => Ok(answer.clone()),
            None => Err(super::OrchestrationError::InputRequired(Box::new(
                super::human::Pause::asking(super::human::Question::new(id, question)),
            ))),
        }
    }

    /// Gives the answer to question `id`.
    pub fn answer(&self, id: impl Into<String>, answer: impl Into<String>) {
        self.inner
            .answers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.into(), answer.into());
    }

    /// The answers this context holds, by question id.
    #[must_use]
    pub fn answers(&self) -> HashMap<String, String> {
        self.inner
            .answers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The history of every run made under this context, as one trace: the
    /// records of all its runs (each naming its [`run_id`](AgentExecution::run_id)),
    /// attempts still running included (without an end time). The trace
    /// starts when the context was made and has an end time once no run under
    /// it is running. For one run's own trace, see [`run_trace`](Self::run_trace).
    pub async fn get_trace(&self) -> ExecutionTrace {
        let (runs, end) = {
            let history = self.lock_history();
            let end = if history.running == 0 {
                history.last_end
            } else {
                None
            };
            (history.runs.clone(), end)
        };
        let mut trace = match &self.inner.live {
            Some(live) => live.history(&runs, self.inner.created),
            None => {
                let events = self.inner.journal.read(&runs).await;
                view::history(events, &runs, self.inner.created)
            }
        };
        trace.end_time = end;
        self.capped(trace)
    }

    /// Whether the journal keeps the texts of runs whole, whatever their
    /// `record_text_limit` says: every journal a run can be resumed from
    /// does (a resumed run reuses the outputs and the input), and the traces
    /// read from it are cut instead. Only the private journal of
    /// [`Orchestrator::orchestrate`](super::Orchestrator::orchestrate) keeps
    /// texts cut.
    pub(crate) fn keeps_whole_texts(&self) -> bool {
        self.inner.live.is_none()
    }

    /// `trace` with its texts cut to the configuration's
    /// `record_text_limit`, when it was read from a journal that keeps
    /// texts whole.
    fn capped(&self, trace: ExecutionTrace) -> ExecutionTrace {
        self.cut(trace, self.inner.config.record_text_limit)
    }

    /// `trace` with its texts cut to `limit`, when it was read from a
    /// journal that keeps texts whole (others cut them as they were kept).
    fn cut(&self, mut trace: ExecutionTrace, limit: Option<usize>) -> ExecutionTrace {
        if let Some(limit) = limit {
            if self.keeps_whole_texts() {
                trace.cap_texts(limit);
            }
        }
        trace
    }

    /// The trace of run `run` alone, nested runs included; `None` when the
    /// journal holds no such run.
    pub async fn run_trace(&self, run: RunId) -> Option<ExecutionTrace> {
        self.run_trace_cut(run, self.inner.config.record_text_limit)
            .await
    }

    /// Run `run`'s trace, its texts cut to `limit` (the `record_text_limit`
    /// of the orchestrator that ran it).
    pub(crate) async fn run_trace_cut(
        &self,
        run: RunId,
        limit: Option<usize>,
    ) -> Option<ExecutionTrace> {
        if let Some(live) = &self.inner.live {
            return live.run_trace(run);
        }
        let events = self.inner.journal.read(&[run]).await;
        view::run(events, run).map(|trace| self.cut(trace, limit))
    }

    /// Run `run`'s trace, its events moved out of the journal: for the private
    /// context of [`Orchestrator::orchestrate`](super::Orchestrator::orchestrate),
    /// which nobody else reads.
    pub(crate) async fn take_run_trace(&self, run: RunId) -> Option<ExecutionTrace> {
        if let Some(live) = &self.inner.live {
            return live.take_run_trace(run);
        }
        let events = self.inner.journal.take(&[run]).await;
        view::run(events, run)
    }

    /// The ids of the runs made under this context, in the order they started.
    #[must_use]
    pub fn run_ids(&self) -> Vec<RunId> {
        self.lock_history().runs.clone()
    }

    /// Cancels every run under this context (and its children): in-flight agents
    /// are stopped, no new ones start, and the run ends with
    /// [`OrchestrationError::Cancelled`](super::OrchestrationError::Cancelled).
    ///
    /// A plain method: call it from any task or thread.
    pub fn cancel(&self) {
        self.inner.cancellation.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called on this context or a parent.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation.is_cancelled()
    }

    /// Completes once the context is cancelled.
    pub async fn cancelled(&self) {
        self.inner.cancellation.cancelled().await;
    }

    /// The context's cancellation, for the engine to derive run tokens from.
    pub(crate) fn cancellation(&self) -> &StopToken {
        &self.inner.cancellation
    }

    pub(crate) fn observer(&self) -> Option<&Arc<dyn RunObserver>> {
        self.inner.observer.as_ref()
    }

    pub(crate) fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// Notes that run `run` started under this context; `listed`: whether it
    /// is one of the context's own runs ([`run_ids`](Self::run_ids)), not one
    /// nested in a run of this context (whose trace holds it).
    pub(crate) fn run_started(&self, run: RunId, listed: bool) {
        let mut history = self.lock_history();
        if listed {
            history.runs.push(run);
        }
        history.running += 1;
    }

    /// Whether `self` and `other` are handles of one context.
    pub(crate) fn is_same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Notes that a run under this context ended at `at`.
    pub(crate) fn run_ended(&self, at: DateTime<Utc>) {
        let mut history = self.lock_history();
        history.running = history.running.saturating_sub(1);
        history.last_end = Some(history.last_end.map_or(at, |last| last.max(at)));
    }

    fn lock_history(&self) -> MutexGuard<'_, History> {
        // Only pushes and counters change under this lock.
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A monotonic clock anchored once to UTC, so that timestamps of a run are
/// consistent with its durations and with tokio's (possibly paused) time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall: DateTime<Utc>,
    mono: Instant,
}

impl Clock {
    fn start() -> Self {
        Self {
            wall: Utc::now(),
            mono: Instant::now(),
        }
    }

    /// The UTC time of the monotonic instant `at`.
    pub(crate) fn wall_at(&self, at: Instant) -> DateTime<Utc> {
        let since = at.saturating_duration_since(self.mono);
        TimeDelta::from_std(since)
            .ok()
            .and_then(|delta| self.wall.checked_add_signed(delta))
            .unwrap_or(self.wall)
    }

    /// The UTC time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.wall_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_is_shared_with_children_but_histories_are_not() {
        let parent = ExecutionContext::new(ExecutionConfig::new());
        let child = parent.child(ExecutionConfig::new());
        child.set_state("k", serde_json::json!(1)).await;
        assert_eq!(parent.get_state("k").await, Some(serde_json::json!(1)));
        assert_eq!(parent.remove_state("k").await, Some(serde_json::json!(1)));
        assert_eq!(child.get_state("k").await, None);
        child.run_started(RunId::new(), true);
        assert_eq!(child.run_ids().len(), 1);
        assert!(parent.run_ids().is_empty());
    }

    #[test]
    fn cancelling_a_parent_cancels_its_children_from_any_thread() {
        let parent = ExecutionContext::new(ExecutionConfig::new());
        let child = parent.child(ExecutionConfig::new());
        let handle = Arc::new(parent.clone());
        std::thread::spawn(move || handle.cancel()).join().unwrap();
        assert!(parent.is_cancelled());
        assert!(child.is_cancelled());
    }

    #[tokio::test]
    async fn cancellation_reaches_grandchildren_but_never_goes_up() {
        let root = ExecutionContext::new(ExecutionConfig::new());
        let child = root.child(ExecutionConfig::new());
        let grandchild = child.child(ExecutionConfig::new());
        grandchild.cancel();
        assert!(grandchild.is_cancelled());
        assert!(!child.is_cancelled());
        assert!(!root.is_cancelled());
        let sibling = child.child(ExecutionConfig::new());
        root.cancel();
        assert!(child.is_cancelled() && sibling.is_cancelled());
        sibling.cancelled().await;
        let late = root.child(ExecutionConfig::new());
        assert!(late.is_cancelled());
        late.cancelled().await;
    }

    #[tokio::test]
    async fn current_is_none_outside_an_attempt() {
        assert!(ExecutionContext::current().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_tokio_time() {
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        let start = ctx.clock().now();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert_eq!(ctx.clock().now(), start + TimeDelta::seconds(3));
    }
}
