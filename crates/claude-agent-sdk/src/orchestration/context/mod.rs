//! [`ExecutionContext`]: what runs share — state, journal, cancellation and observers.
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
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};

pub use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::human::FinishedStep;
use crate::orchestration::journal::{InMemoryJournal, Journal, LiveJournal, NodeId, RunId};
use crate::orchestration::observer::{Observers, RunObserver};
use crate::orchestration::resume::Continuation;
use crate::orchestration::stop_token::StopToken;
pub use crate::orchestration::trace::{AgentExecution, ExecutionTrace, NestedTrace};

mod clock;
mod history;
mod state;

pub(crate) use clock::Clock;
use history::History;

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
    /// runs under this context and its children (see [`RunObserver`]). The
    /// observers attached before keep hearing them too: each event is told
    /// to every observer, in the order they were attached.
    ///
    /// Handles cloned from this context before the call keep running
    /// without it; attach the observers first.
    #[must_use]
    pub fn with_observer(self, observer: Arc<dyn RunObserver>) -> Self {
        self.rebuilt(|inner| {
            inner.observer = Some(match inner.observer.take() {
                Some(before) => Arc::new(Observers(before, observer)),
                None => observer,
            });
        })
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

    /// Whether `self` and `other` are handles of one context.
    pub(crate) fn is_same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

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
