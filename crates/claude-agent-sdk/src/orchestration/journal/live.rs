//! [`LiveJournal`]: the journal of a run nobody else reads, which keeps the
//! run's trace rather than its events.
//!
//! [`Orchestrator::orchestrate`](crate::orchestration::Orchestrator::orchestrate)
//! runs under a context of its own, whose only reader is the run itself: its
//! events are wanted once, to make the trace its output carries. Keeping them
//! in a list and building the trace after the run would write every event
//! to memory, read it back, and build the records on one thread at the end;
//! this journal applies each event to the run's view as it is appended,
//! while the data is fresh, on the thread that produced it. The trace is the
//! same view of the same events (`journal::view`), built earlier.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::memory::ResumeClaims;
use super::view::Views;
use super::{Journal, JournalEvent, RunId};
use crate::orchestration::trace::ExecutionTrace;

/// A journal that keeps the views of its runs — their traces — instead of
/// their events (see the module docs). [`read`](Journal::read) returns no
/// events: the context that owns it asks it for traces instead.
#[derive(Default)]
pub(crate) struct LiveJournal {
    views: Mutex<Views>,
    claims: ResumeClaims,
}

impl std::fmt::Debug for LiveJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveJournal").finish_non_exhaustive()
    }
}

impl LiveJournal {
    fn lock(&self) -> MutexGuard<'_, Views> {
        // A view changes only by whole events: poisoning is ignored.
        self.views.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `run`'s trace so far (nested runs attached).
    pub(crate) fn run_trace(&self, run: RunId) -> Option<ExecutionTrace> {
        let selected = self.lock().select(&[run], false);
        selected.into_run_trace(run)
    }

    /// Run `run`'s trace, moved out of the journal (its last reader).
    pub(crate) fn take_run_trace(&self, run: RunId) -> Option<ExecutionTrace> {
        let selected = self.lock().select(&[run], true);
        selected.into_run_trace(run)
    }

    /// The records of runs `roots`, run after run, as one trace starting at
    /// `start_time`.
    pub(crate) fn history(&self, roots: &[RunId], start_time: DateTime<Utc>) -> ExecutionTrace {
        let selected = self.lock().select(roots, false);
        selected.into_history(roots, start_time)
    }
}

#[async_trait]
impl Journal for LiveJournal {
    fn append(&self, event: JournalEvent) {
        self.lock().apply(event);
    }

    async fn read(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let _ = runs;
        Vec::new()
    }

    async fn claim_resume(
        &self,
        run: RunId,
        by: RunId,
    ) -> crate::orchestration::Result<Option<RunId>> {
        Ok(self.claims.claim(run, by))
    }
}
