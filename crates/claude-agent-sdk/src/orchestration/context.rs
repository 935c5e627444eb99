//! [`ExecutionContext`]: what a run shares — state, trace and cancellation.
//!
//! A context is a cheap handle (`Clone` is an `Arc` bump) that callers own when
//! they need more than the output of a run: they keep its trace after a failure,
//! cancel it from another task or thread, and share state between agents.
//! Agents reach the context they run under with [`ExecutionContext::current`],
//! without it being threaded through [`Agent::execute`](super::Agent::execute).
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

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::observer::{RunEvent, RunObserver};
pub use crate::orchestration::recorded::{
    ByteString, RecordedInput, RecordedOutput, Shared, SharedPart,
};
pub use crate::orchestration::trace::{AgentExecution, ExecutionTrace, SmolStr};

type State = HashMap<String, serde_json::Value>;

/// Shared state, trace and cancellation of a run.
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
    trace: Arc<Mutex<ExecutionTrace>>,
    cancellation: Cancellation,
    clock: Clock,
    observer: Option<Arc<dyn RunObserver>>,
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionContext")
            .field("config", &self.inner.config)
            .field("cancelled", &self.is_cancelled())
            .field("observed", &self.inner.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl ExecutionContext {
    /// A fresh context: empty state, an empty trace starting now, not cancelled.
    #[must_use]
    pub fn new(config: ExecutionConfig) -> Self {
        Self::build(
            config,
            Arc::default(),
            Cancellation::new(),
            Clock::start(),
            None,
        )
    }

    fn build(
        config: ExecutionConfig,
        state: Arc<RwLock<State>>,
        cancellation: Cancellation,
        clock: Clock,
        observer: Option<Arc<dyn RunObserver>>,
    ) -> Self {
        let trace = Arc::new(Mutex::new(ExecutionTrace::starting_at(
            clock.wall_at(Instant::now()),
        )));
        Self {
            inner: Arc::new(Inner {
                config,
                state,
                trace,
                cancellation,
                clock,
                observer,
            }),
        }
    }

    /// Attaches an observer that hears every [`RunEvent`] of the
    /// runs under this context and its children (see [`RunObserver`]).
    ///
    /// Handles cloned from this context before the call keep running unobserved;
    /// attach the observer first.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.observer = Some(observer);
            return self;
        }
        // Already shared: a new handle on the same state, trace and cancellation.
        Self {
            inner: Arc::new(Inner {
                config: self.inner.config.clone(),
                state: Arc::clone(&self.inner.state),
                trace: Arc::clone(&self.inner.trace),
                cancellation: self.inner.cancellation.clone(),
                clock: self.inner.clock,
                observer: Some(observer),
            }),
        }
    }

    /// A context for a nested run: it shares this context's state and is
    /// cancelled with it, but keeps a trace of its own.
    #[must_use]
    pub fn child(&self, config: ExecutionConfig) -> Self {
        Self::build(
            config,
            Arc::clone(&self.inner.state),
            self.inner.cancellation.child(),
            self.inner.clock,
            self.inner.observer.clone(),
        )
    }

    /// The context the calling agent runs under, if it runs under one.
    ///
    /// Inside [`Agent::execute`](super::Agent::execute) called by an orchestrator or
    /// the registry this is always `Some`.
    #[must_use]
    pub fn current() -> Option<Self> {
        CURRENT_ATTEMPT.try_with(|scope| scope.context.clone()).ok()
    }

    /// The configuration the context was made with.
    #[must_use]
    pub fn config(&self) -> &ExecutionConfig {
        &self.inner.config
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub async fn set_state(&self, key: impl Into<String>, value: serde_json::Value) {
        self.write_state().insert(key.into(), value);
    }

    /// The value stored under `key`.
    pub async fn get_state(&self, key: &str) -> Option<serde_json::Value> {
        self.read_state().get(key).cloned()
    }

    /// Removes and returns the value stored under `key`.
    pub async fn remove_state(&self, key: &str) -> Option<serde_json::Value> {
        self.write_state().remove(key)
    }

    /// Reads and changes the value under `key` in one step, so concurrent agents
    /// never lose each other's updates (a counter, a list being appended to).
    ///
    /// ```
    /// # use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let ctx = ExecutionContext::new(ExecutionConfig::new());
    /// for _ in 0..3 {
    ///     ctx.update_state("visits", |slot| {
    ///         let n = slot.as_ref().and_then(|v| v.as_u64()).unwrap_or(0);
    ///         *slot = Some(serde_json::json!(n + 1));
    ///     }).await;
    /// }
    /// assert_eq!(ctx.get_state("visits").await, Some(serde_json::json!(3)));
    /// # });
    /// ```
    pub async fn update_state<R>(
        &self,
        key: &str,
        update: impl FnOnce(&mut Option<serde_json::Value>) -> R,
    ) -> R {
        let mut state = self.write_state();
        let mut slot = state.remove(key);
        let result = update(&mut slot);
        if let Some(value) = slot {
            state.insert(key.to_owned(), value);
        }
        result
    }

    /// A copy of the whole state.
    pub async fn state_snapshot(&self) -> HashMap<String, serde_json::Value> {
        self.read_state().clone()
    }

    /// A copy of the trace so far.
    pub async fn get_trace(&self) -> ExecutionTrace {
        self.lock_trace().clone()
    }

    /// Cancels every run under this context (and its children): in-flight agents
    /// are dropped, no new ones start, and the run ends with
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
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + '_ {
        self.inner.cancellation.token.cancelled()
    }

    /// Tells the observer, if any, about `event`.
    #[inline]
    pub(crate) fn emit<'e>(&self, event: impl FnOnce() -> RunEvent<'e>) -> bool {
        match &self.inner.observer {
            Some(observer) => {
                observer.on_event(&event());
                true
            }
            None => false,
        }
    }

    /// Whether an observer listens.
    pub(crate) fn is_observed(&self) -> bool {
        self.inner.observer.is_some()
    }

    pub(crate) fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// Makes room for `additional` more records, so a run that knows how many
    /// agents it has does not regrow (and copy) the trace as records arrive.
    pub(crate) fn reserve_records(&self, additional: usize) {
        self.lock_trace().agent_executions.reserve(additional);
    }

    pub(crate) fn record(&self, execution: AgentExecution) {
        self.lock_trace().agent_executions.push(execution);
    }

    /// Marks the trace as ended now.
    pub(crate) fn finish_trace(&self) {
        let now = self.inner.clock.wall_at(Instant::now());
        self.lock_trace().end_time = Some(now);
    }

    /// When the trace ended, if it has.
    pub(crate) fn get_trace_end(&self) -> Option<DateTime<Utc>> {
        self.lock_trace().end_time
    }

    /// Moves the trace out, leaving an empty one that starts now.
    pub(crate) fn take_trace(&self) -> ExecutionTrace {
        let fresh = ExecutionTrace::starting_at(self.inner.clock.wall_at(Instant::now()));
        std::mem::replace(&mut *self.lock_trace(), fresh)
    }

    fn lock_trace(&self) -> MutexGuard<'_, ExecutionTrace> {
        // A panic while holding this lock can only come from a push; the trace
        // stays structurally valid, so poisoning is ignored.
        self.inner
            .trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
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

/// A context's cancellation: the token wakes whoever awaits it, the flags answer
/// [`ExecutionContext::is_cancelled`] without a lock.
///
/// `CancellationToken::is_cancelled` takes the token's mutex, and every agent of a
/// parallel run asks before it starts, so on several cores that mutex would
/// bounce between them. The flags are set by
/// [`cancel`](Self::cancel) before the token is, and a child reads its ancestors'
/// flags too, so both always agree on whether the context is cancelled.
#[derive(Clone)]
struct Cancellation {
    token: CancellationToken,
    flag: Arc<CancelFlag>,
}

struct CancelFlag {
    set: AtomicBool,
    parent: Option<Arc<CancelFlag>>,
}

impl Cancellation {
    fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            flag: Arc::new(CancelFlag {
                set: AtomicBool::new(false),
                parent: None,
            }),
        }
    }

    /// Cancelled with this one, or on its own.
    fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
            flag: Arc::new(CancelFlag {
                set: AtomicBool::new(false),
                parent: Some(Arc::clone(&self.flag)),
            }),
        }
    }

    fn cancel(&self) {
        self.flag.set.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_cancelled(&self) -> bool {
        let mut flag = &*self.flag;
        loop {
            if flag.set.load(Ordering::Acquire) {
                return true;
            }
            match &flag.parent {
                Some(parent) => flag = parent,
                None => return false,
            }
        }
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
}

tokio::task_local! {
    static CURRENT_ATTEMPT: AttemptScope;
}

/// What an agent attempt can reach through the task-local scope.
///
/// One scope serves every attempt a [`Runner`](super::agent_run::Runner) runs
/// (a whole pipeline, or one worker of a fan-out), so an attempt costs no
/// task-local swap and no reference count update.
pub(crate) struct AttemptScope {
    context: ExecutionContext,
    nested: Arc<NestedSlot>,
}

impl AttemptScope {
    /// A scope for `context`, whose nested orchestrations leave their traces in `nested`.
    pub(crate) fn new(context: &ExecutionContext, nested: &Arc<NestedSlot>) -> Self {
        Self {
            context: context.clone(),
            nested: Arc::clone(nested),
        }
    }
}

/// Where a nested orchestration leaves its trace for the attempt running it.
/// Shared between the task-local scope and the runner, whose attempt records
/// take it — also a record written as its attempt is dropped.
#[derive(Default)]
pub(crate) struct NestedSlot {
    filled: AtomicBool,
    trace: Mutex<Option<Box<ExecutionTrace>>>,
}

impl NestedSlot {
    fn put(&self, trace: ExecutionTrace) {
        *self.trace.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(trace));
        self.filled.store(true, Ordering::Release);
    }

    /// The trace left here, if any; cheap when there is none.
    pub(crate) fn take(&self) -> Option<Box<ExecutionTrace>> {
        // A load first: an attempt that ran no nested orchestration (almost
        // every attempt) pays no read-modify-write.
        if !self.filled.load(Ordering::Relaxed) || !self.filled.swap(false, Ordering::Acquire) {
            return None;
        }
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Runs `future` (a runner's attempts) in `scope`: [`ExecutionContext::current`]
/// returns its context, and a nested orchestration can attach its trace.
pub(crate) fn scope<F: Future>(scope: AttemptScope, future: F) -> TaskLocalFuture<AttemptScope, F> {
    CURRENT_ATTEMPT.scope(scope, future)
}

/// Hands `trace` to the record of the attempt currently running, if any.
pub(crate) fn attach_nested_trace(trace: ExecutionTrace) {
    // Outside an attempt there is no record to attach to, and nothing to do.
    let _ = CURRENT_ATTEMPT.try_with(|scope| scope.nested.put(trace));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_is_shared_with_children_but_traces_are_not() {
        let parent = ExecutionContext::new(ExecutionConfig::new());
        let child = parent.child(ExecutionConfig::new());
        child.set_state("k", serde_json::json!(1)).await;
        assert_eq!(parent.get_state("k").await, Some(serde_json::json!(1)));
        assert_eq!(parent.remove_state("k").await, Some(serde_json::json!(1)));
        assert_eq!(child.get_state("k").await, None);
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
        // The waiters agree with the flags.
        sibling.cancelled().await;
        let late = root.child(ExecutionConfig::new());
        assert!(late.is_cancelled());
        late.cancelled().await;
    }

    #[tokio::test]
    async fn current_is_only_set_inside_an_attempt_scope() {
        assert!(ExecutionContext::current().is_none());
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        ctx.set_state("who", serde_json::json!("me")).await;
        let seen = scope(AttemptScope::new(&ctx, &Arc::default()), async {
            let current = ExecutionContext::current().unwrap();
            current.get_state("who").await
        })
        .await;
        assert_eq!(seen, Some(serde_json::json!("me")));
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_tokio_time() {
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        let start = ctx.get_trace().await.start_time;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        ctx.finish_trace();
        let trace = ctx.get_trace().await;
        assert_eq!(trace.end_time, Some(start + TimeDelta::seconds(3)));
    }
}
