//! `fail_fast = true` on a parallel group: the first step that fails for good
//! stops its siblings at once, and the group fails.
//!
//! By default a parallel group lets every step run to its end and then
//! applies its `join` — a `join = "all"` group whose first step fails after a
//! second still waits for a sibling that takes minutes. With `fail_fast`,
//! each step is wrapped in a [`FailFast`] sharing one [`Tripwire`]: a step
//! whose attempt fails for good (a permanent error, or its last attempt)
//! trips it, and every sibling still running is cut short — its future is
//! dropped, which kills its programs — and fails naming the step that failed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentError, AgentInput, AgentOutput, OrchestrationError, Result,
};
use tokio::sync::Notify;

/// What the steps of one fail-fast group share: which step failed first.
#[derive(Default)]
pub struct Tripwire {
    failed: Mutex<Option<String>>,
    notify: Notify,
}

impl Tripwire {
    /// A tripwire for group `group`.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records that step `id` failed for good, unless another did first.
    fn trip(&self, id: &str) {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_none() {
            *failed = Some(id.to_owned());
        }
        drop(failed);
        self.notify.notify_waiters();
    }

    /// The step that failed, if one has.
    fn failed(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Completes with the failed step's id once one has failed.
    async fn tripped(&self) -> String {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(id) = self.failed() {
                return id;
            }
            notified.await;
        }
    }
}

/// A step of a fail-fast group.
pub struct FailFast {
    inner: Box<dyn Agent>,
    group: String,
    wire: Arc<Tripwire>,
    max_attempts: usize,
    attempts: AtomicUsize,
}

impl FailFast {
    /// `inner`, a step of group `group` that may make `max_attempts` attempts.
    #[must_use]
    pub fn new(
        inner: Box<dyn Agent>,
        group: &str,
        wire: Arc<Tripwire>,
        max_attempts: usize,
    ) -> Self {
        Self {
            inner,
            group: group.to_owned(),
            wire,
            max_attempts,
            attempts: AtomicUsize::new(0),
        }
    }

    fn stopped(&self, failed: &str) -> OrchestrationError {
        OrchestrationError::AgentError(AgentError::new(format!(
            "stopped: `{failed}` failed, and group `{}` fails fast (fail_fast = true)",
            self.group
        )))
    }
}

#[async_trait]
impl Agent for FailFast {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn description(&self) -> &str {
        self.inner.description()
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        if let Some(failed) = self.wire.failed() {
            return Err(self.stopped(&failed));
        }
        let attempt = self.attempts.fetch_add(1, Ordering::AcqRel) + 1;
        tokio::select! {
            result = self.inner.execute(input) => {
                if let Err(error) = &result {
                    if !error.is_retryable() || attempt >= self.max_attempts {
                        self.wire.trip(self.inner.name());
                    }
                }
                result
            }
            failed = self.wire.tripped() => Err(self.stopped(&failed)),
        }
    }

    fn max_retries(&self) -> Option<usize> {
        self.inner.max_retries()
    }

    fn attempt_timeout(&self) -> Option<std::time::Duration> {
        self.inner.attempt_timeout()
    }
}
