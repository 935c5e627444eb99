//! Taking turns: a walker whose agents never wait still lets the runtime's
//! other tasks run.
//!
//! An agent that answers at once (a template, a cache hit, CPU work) never
//! returns `Pending`, so a walker running one after another would keep its
//! thread for the whole run: on a current-thread runtime the canceller, the
//! timers and every other task would wait for its end. So a walker yields
//! once it has held its thread for a [`SLICE`] of real time.
//!
//! Why time and not tokio's cooperative budget (which yields every 128
//! resource operations): a yield costs a trip through the runtime's
//! scheduler — a poll of the I/O driver and, on an idle multi-thread
//! runtime, waking another worker, which may then take the walker over to
//! its own core. For steps of a microsecond, yielding every 128 of them
//! costs more than the steps; for steps of a second, 128 of them are two
//! minutes without a turn. A time slice bounds both: at most one yield per
//! millisecond of work, and no walker keeps its thread much longer than a
//! millisecond past the step it is in.

use std::time::{Duration, Instant};

/// How long a walker may hold its thread before it yields.
pub(crate) const SLICE: Duration = Duration::from_millis(1);

/// When a walker last gave its thread back (see the module docs).
///
/// Real time, not tokio's clock: a paused test clock does not advance while
/// a walker runs, but the walker still holds its thread.
#[derive(Debug)]
pub(crate) struct Turns {
    since: Instant,
}

impl Turns {
    /// A walker that has just started (or just waited).
    pub(crate) fn new() -> Self {
        Self {
            since: Instant::now(),
        }
    }

    /// Yields to the runtime if the walker has held its thread for a slice.
    pub(crate) async fn take(&mut self) {
        if self.due_at(Instant::now()) {
            tokio::task::yield_now().await;
            self.since = Instant::now();
        }
    }

    /// Whether, at `now`, the walker has held its thread for a slice.
    fn due_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= SLICE
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_turn_is_due_after_a_slice_and_not_before() {
        let turns = Turns::new();
        let since = turns.since;
        assert!(!turns.due_at(since));
        assert!(!turns.due_at(since + SLICE / 2));
        assert!(turns.due_at(since + SLICE));
        // A clock read before the slice started (another thread's) is no turn.
        assert!(!turns.due_at(since.checked_sub(SLICE).unwrap_or(since)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_walker_that_held_its_thread_for_a_slice_lets_other_tasks_run() {
        let other_ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&other_ran);
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let mut turns = Turns::new();
        let start = Instant::now();
        while start.elapsed() < SLICE {
            std::hint::spin_loop();
        }
        assert!(!other_ran.load(Ordering::SeqCst));
        turns.take().await;
        assert!(other_ran.load(Ordering::SeqCst));
        // The slice starts again after the turn.
        assert!(!turns.due_at(turns.since));
    }
}
