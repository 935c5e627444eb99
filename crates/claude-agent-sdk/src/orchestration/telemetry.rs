//! `tracing` spans and events, compiled away without the `tracing` feature.
//!
//! Spans exist for every run and every agent attempt whenever the feature is on
//! (they cost a relaxed load when no subscriber listens): `orchestration`
//! (`pattern`, `agents`, and `run_id`, the id its journal and observer events
//! name) and `agent_attempt` (`agent`, `attempt`), at `INFO`. An attempt's span
//! is a child of its run's, a nested run's a child of the attempt that runs
//! it — whatever task they run on, including the tasks an agent spawns with
//! [`ExecutionContext::spawn`](super::ExecutionContext::spawn). Events for retries,
//! timeouts and failures are emitted only when
//! [`ExecutionConfig::enable_logging`](super::ExecutionConfig::enable_logging) is set.
//! The library never prints: a subscriber decides where events go.

use std::future::Future;

use crate::orchestration::journal::RunId;

/// Emits a `tracing` event at `$level` when `$enabled` is true.
macro_rules! log_event {
    ($enabled:expr, $level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        if $enabled {
            ::tracing::$level!($($arg)+);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = $enabled;
    }};
}
pub(crate) use log_event;

/// Runs `future` inside the span of a whole orchestration; its `run_id` is
/// recorded once the run has one ([`record_run_id`]).
#[cfg(feature = "tracing")]
pub(crate) fn in_run_span<F: Future>(
    pattern: &str,
    agents: usize,
    future: F,
) -> impl Future<Output = F::Output> {
    use tracing::Instrument;
    future.instrument(tracing::info_span!(
        "orchestration",
        pattern,
        agents,
        run_id = tracing::field::Empty
    ))
}

/// Records `run` as the `run_id` of the current run's span: the id its
/// journal events, observer events and stored record name.
#[cfg(feature = "tracing")]
pub(crate) fn record_run_id(run: RunId) {
    tracing::Span::current().record("run_id", tracing::field::display(run));
}

/// Records `run` as the `run_id` of the current run's span.
#[cfg(not(feature = "tracing"))]
pub(crate) fn record_run_id(_run: RunId) {}

/// Runs `future` inside the span of a whole orchestration.
#[cfg(not(feature = "tracing"))]
pub(crate) fn in_run_span<F: Future>(
    _pattern: &str,
    _agents: usize,
    future: F,
) -> impl Future<Output = F::Output> {
    future
}

/// `future`, polled inside the span current where it is made: a task
/// spawned to run a run's steps, or spawned by an agent, keeps recording
/// inside the run's (or the attempt's) span, as a task does not inherit it.
#[cfg(feature = "tracing")]
pub(crate) fn in_current_span<F: Future>(future: F) -> impl Future<Output = F::Output> {
    tracing::Instrument::in_current_span(future)
}

/// `future`, polled inside the span current where it is made.
#[cfg(not(feature = "tracing"))]
pub(crate) fn in_current_span<F: Future>(future: F) -> F {
    future
}

/// The span of one agent attempt.
#[cfg(feature = "tracing")]
pub(crate) struct AttemptSpan(tracing::Span);

#[cfg(feature = "tracing")]
impl AttemptSpan {
    pub(crate) fn new(agent: &str, attempt: u32) -> Self {
        Self(tracing::info_span!("agent_attempt", agent, attempt))
    }

    /// `future`, polled (and dropped) inside the span.
    pub(crate) fn instrument<F: Future + Unpin>(
        &self,
        future: F,
    ) -> impl Future<Output = F::Output> + Unpin {
        tracing::Instrument::instrument(future, self.0.clone())
    }

    /// Enters the span until the guard is dropped; never hold it across an `.await`.
    pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
        self.0.enter()
    }
}

/// The span of one agent attempt: nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
pub(crate) struct AttemptSpan;

#[cfg(not(feature = "tracing"))]
impl AttemptSpan {
    pub(crate) fn new(_agent: &str, _attempt: u32) -> Self {
        Self
    }

    pub(crate) fn instrument<F: Future>(&self, future: F) -> F {
        future
    }

    pub(crate) fn enter(&self) -> Entered {
        Entered
    }
}

/// What entering an [`AttemptSpan`] gives without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
pub(crate) struct Entered;
