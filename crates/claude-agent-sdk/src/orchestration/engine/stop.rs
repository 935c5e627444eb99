//! When a run must stop: its cancellation and its deadline, as values that
//! travel down to every attempt and every nested run.

use std::time::Duration;

use tokio::time::Instant;

use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::journal::Interruption;
use crate::orchestration::stop_token::StopToken;

/// How long a stopping run waits for its attempts to stop before it abandons
/// them. Attempts that await stop at once; only an agent that blocks its
/// thread (which nothing can stop) is ever abandoned.
pub(crate) const STOP_GRACE: Duration = Duration::from_millis(100);

/// How long a run that was stopped (cancelled, out of time) waits for a
/// durable store to commit its last events before it returns anyway: a
/// store that stopped answering would otherwise hold it for the store's own
/// bound (`store::silence`), long past the stop its caller asked for.
pub(crate) const STORE_GRACE: Duration = Duration::from_secs(2);

/// A run's stop conditions.
#[derive(Debug, Clone)]
pub(crate) struct RunStop {
    /// Cancelled when the run must stop early: a child of the parent
    /// attempt's token for a nested run, of the context's otherwise.
    pub(crate) token: StopToken,
    /// For a nested run, its context's own cancellation too (its token
    /// derives from the enclosing attempt's, not from its context's); `None`
    /// when the token derives from the context's, which then reaches it.
    pub(crate) context: Option<StopToken>,
    /// When the run must be over, if it is bounded: its own timeout, or the
    /// enclosing attempt's deadline, whichever is sooner.
    pub(crate) deadline: Option<Instant>,
    /// Which of the two that is, for the error that says time ran out.
    pub(crate) limit: TimeLimit,
}

/// What bounds a run's time, as the error that says it ran out names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeLimit {
    /// Its own timeout.
    Own(Duration),
    /// The deadline of the attempt it is nested in, which comes first.
    Enclosing,
}

impl TimeLimit {
    /// The limit of a run whose own `timeout` starts `now`, nested in an
    /// attempt due at `enclosing` (if it is), with the deadline it makes.
    pub(crate) fn of(
        timeout: Duration,
        now: Instant,
        enclosing: Option<Instant>,
    ) -> (Self, Option<Instant>) {
        let own = now.checked_add(timeout);
        match (own, enclosing) {
            (Some(own), Some(enclosing)) if enclosing < own => (Self::Enclosing, Some(enclosing)),
            (None, Some(enclosing)) => (Self::Enclosing, Some(enclosing)),
            (own, _) => (Self::Own(timeout), own),
        }
    }
}

impl RunStop {
    /// Why the run must stop, if it must stop now.
    pub(crate) fn check(&self) -> Option<Interruption> {
        self.check_at(Instant::now())
    }

    /// Why the run must stop, if it must stop at `now`.
    pub(crate) fn check_at(&self, now: Instant) -> Option<Interruption> {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            Some(Interruption::TimedOut)
        } else if self.token.is_cancelled()
            || self.context.as_ref().is_some_and(StopToken::is_cancelled)
        {
            Some(Interruption::Cancelled)
        } else {
            None
        }
    }

    /// Completes when the run must stop, with why.
    pub(crate) async fn stopped(&self) -> Interruption {
        let deadline = async {
            match self.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let context = async {
            match &self.context {
                Some(context) => context.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = deadline => Interruption::TimedOut,
            () = self.token.cancelled() => self.check().unwrap_or(Interruption::Cancelled),
            () = context => Interruption::Cancelled,
        }
    }
}

/// The sooner of two optional instants.
pub(crate) fn sooner(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The error of a run called `orchestrator`, whose time `limit` bounds, that was
/// cut short by `why` (also what an observer hears for an attempt cut short).
pub(crate) fn interruption_error(
    why: Interruption,
    orchestrator: &str,
    limit: TimeLimit,
) -> OrchestrationError {
    match (why, limit) {
        // An attempt abandoned when its run stopped (cancelled, timed out,
        // failing fast) was stopped by the run, not by a clock of its own:
        // the journal says it was abandoned; to its agent, it was cancelled.
        (Interruption::Cancelled | Interruption::Dropped | Interruption::Abandoned, _) => {
            OrchestrationError::Cancelled
        }
        (Interruption::TimedOut, TimeLimit::Own(timeout)) => OrchestrationError::Timeout(format!(
            "{orchestrator} exceeded its {timeout:?} run timeout"
        )),
        (Interruption::TimedOut, TimeLimit::Enclosing) => OrchestrationError::Timeout(format!(
            "{orchestrator} was cut short by the deadline of the attempt it runs in"
        )),
    }
}
