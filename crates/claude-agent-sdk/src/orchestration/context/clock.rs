//! [`Clock`]: the one clock a run's timestamps and durations are read from.
//!
//! Durations are measured on tokio's monotonic clock (which a test can pause
//! and advance), timestamps are UTC. Reading both clocks separately would let
//! them drift apart — a step could seem to end before it started, and paused
//! time would stop the durations but not the timestamps — so a context reads
//! the UTC time once, when it is made, and dates every later instant from
//! there on the monotonic clock. Child contexts share their parent's clock.

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

/// A monotonic clock anchored once to UTC, so that timestamps of a run are
/// consistent with its durations and with tokio's (possibly paused) time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall: DateTime<Utc>,
    mono: Instant,
}

impl Clock {
    pub(super) fn start() -> Self {
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
