//! `tracing` spans and events, compiled away without the `tracing` feature.
//!
//! Spans exist for every run and every agent attempt whenever the feature is on
//! (they cost a relaxed load when no subscriber listens); events for retries,
//! timeouts and failures are emitted only when
//! [`ExecutionConfig::enable_logging`](super::ExecutionConfig::enable_logging) is set.
//! The library never prints: a subscriber decides where events go.

use std::future::Future;

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

/// Runs `future` inside the span of a whole orchestration.
#[cfg(feature = "tracing")]
pub(crate) fn in_run_span<F: Future>(
    pattern: &str,
    agents: usize,
    future: F,
) -> impl Future<Output = F::Output> {
    use tracing::Instrument;
    future.instrument(tracing::info_span!("orchestration", pattern, agents))
}

/// Runs `future` inside the span of a whole orchestration.
#[cfg(not(feature = "tracing"))]
pub(crate) fn in_run_span<F: Future>(
    _pattern: &str,
    _agents: usize,
    future: F,
) -> impl Future<Output = F::Output> {
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
