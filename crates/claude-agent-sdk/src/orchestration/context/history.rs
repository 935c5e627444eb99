//! The context's history: which runs were made under it, and their traces
//! read back from the journal.
//!
//! A context keeps no trace of its own. The journal holds what its runs did;
//! the context keeps only the list of its runs (those not nested in one of
//! them) and how many still run — enough to know which of the journal's runs
//! are its history and whether that history has ended. A trace, of the whole
//! history or of one run, is read from the journal when asked for, and its
//! texts are cut as it is read when the journal keeps them whole (every
//! journal a run can be resumed from does).

use std::sync::{MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use super::ExecutionContext;
use crate::orchestration::journal::{view, RunId};
use crate::orchestration::trace::ExecutionTrace;

/// The runs made under a context.
#[derive(Debug, Default)]
pub(super) struct History {
    runs: Vec<RunId>,
    running: usize,
    last_end: Option<DateTime<Utc>>,
}

impl ExecutionContext {
    /// The history of every run made under this context, as one trace: the
    /// records of all its runs (each naming its [`run_id`](crate::orchestration::AgentExecution::run_id)),
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
    /// [`Orchestrator::orchestrate`](crate::orchestration::Orchestrator::orchestrate) keeps
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
    /// context of [`Orchestrator::orchestrate`](crate::orchestration::Orchestrator::orchestrate),
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
}
