//! Running a graph's steps at the same time: a few workers, each a tokio
//! task, that take the next ready step from the run's `RunState`, run it
//! through the executor, and settle its outcome — so CPU-heavy agents use every
//! core, and a fan-out of 100,000 agents costs as many tasks as its
//! `parallel_limit`, not 100,000.
//!
//! The fleet grows with the work: a run starts with one worker, and a
//! worker that takes a step while another is ready and nobody waits for it
//! asks the driver for one more, up to the limit. A graph that runs one
//! step at a time (a router and its branch) never pays for the tasks its
//! `parallel_limit` would allow.
//!
//! The scheduler stays the one place that decides: the `RunState` holding
//! it sits behind the workers' shared lock, taken once per step (to settle
//! the step that ended and take the next). A worker with nothing ready while others still run
//! waits to be told that something became ready. When the run must stop,
//! the workers stop taking nodes; the driver tells the running attempts to
//! stop, waits for the workers for [`STOP_GRACE`], and writes off any
//! attempt that did not stop as abandoned.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::run_state::RunState;
use super::stop::STOP_GRACE;
use super::turns::Turns;
use super::walk::{Job, StepEnd, Walk};
use crate::orchestration::journal::Interruption;
use crate::orchestration::telemetry::in_current_span;

/// What the workers of a run share.
struct Fleet {
    walk: Arc<Walk<'static>>,
    books: Mutex<Books>,
    /// Told whenever a step may have become ready while workers wait, or the
    /// run is over.
    wake: Notify,
    /// Tells the driver that workers asked for another (see [`Books::wanted`]).
    grow: Notify,
    /// The most workers the run has.
    limit: usize,
}

/// What the workers change, under one lock.
struct Books {
    /// The scheduler and what the run produced so far.
    state: RunState,
    /// How many workers wait for a step to become ready (nobody is woken
    /// when nobody waits: a fan-out's workers never do until its end).
    waiting: usize,
    /// How many workers were started or asked for.
    workers: usize,
    /// How many workers were asked for and not started yet.
    wanted: usize,
}

impl Fleet {
    fn lock(&self) -> MutexGuard<'_, Books> {
        // Only the scheduler's bookkeeping runs under this lock.
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh copy of step `step`'s input (for a retry).
    fn remake_input(&self, step: super::scheduler::StepId) -> crate::orchestration::AgentInput {
        self.lock().state.remake_input(&self.walk, step)
    }
}

/// What a worker does next.
enum Next {
    Run(Job),
    Wait,
    Stop,
}

/// Runs every step of `state`'s scheduler with at most `parallel_limit`
/// workers; returns what the run produced and why it was cut short, if it was.
pub(crate) async fn drive(
    walk: Arc<Walk<'static>>,
    state: RunState,
) -> (RunState, Option<Interruption>) {
    // A pipeline or fan-out needs no more workers than it has nodes; a
    // graph's maps may run more steps at once than it has nodes.
    let mut limit = walk.config.parallel_limit.max(1);
    if walk.branching.is_none() {
        limit = limit.min(state.scheduler.graph().len().max(1));
    }
    let run = Arc::clone(&walk.run);
    let fleet = Arc::new(Fleet {
        walk,
        books: Mutex::new(Books {
            state,
            waiting: 0,
            workers: 1,
            wanted: 0,
        }),
        wake: Notify::new(),
        grow: Notify::new(),
        limit,
    });
    let mut workers = JoinSet::new();
    workers.spawn(in_current_span(work(Arc::clone(&fleet))));
    let mut interrupted = loop {
        tokio::select! {
            biased;
            joined = workers.join_next() => match joined {
                None => break None,
                // Agents, observers and a graph's routers have their panics
                // contained: a worker that panicked hit a bug of ours, which
                // goes up to the caller rather than leave its step unsettled.
                Some(Err(ended)) if ended.is_panic() => {
                    std::panic::resume_unwind(ended.into_panic())
                }
                Some(_) => {}
            },
            why = run.stop.stopped() => break Some(why),
            () = fleet.grow.notified() => {
                let wanted = std::mem::take(&mut fleet.lock().wanted);
                for _ in 0..wanted {
                    workers.spawn(in_current_span(work(Arc::clone(&fleet))));
                }
            }
        }
    };
    if interrupted.is_some() {
        // Stop: the running attempts are told, then awaited for a while.
        run.stop.token.cancel();
        fleet.wake.notify_waiters();
        let give_up_at = Instant::now() + STOP_GRACE;
        tokio::select! {
            () = join_all(&mut workers) => {}
            () = tokio::time::sleep_until(give_up_at) => {}
        }
        // What did not stop in time is abandoned: its record says so.
        run.recorder.close(Interruption::Abandoned);
        workers.abort_all();
    }
    let mut state = std::mem::replace(&mut fleet.lock().state, RunState::empty());
    if let Some(why) = state.interrupted.take() {
        interrupted.get_or_insert(why);
    }
    (state, interrupted)
}

/// Waits for every worker (one aborted by a runtime shutting down loses only
/// the step it was running, which then has no outcome).
async fn join_all(workers: &mut JoinSet<()>) {
    while workers.join_next().await.is_some() {}
}

/// One worker: takes ready steps and runs them until none is left to run or
/// the run must stop.
async fn work(fleet: Arc<Fleet>) {
    let mut ended: Option<StepEnd> = None;
    let mut waited = false;
    let mut turns = Turns::new();
    loop {
        let wake = fleet.wake.notified();
        tokio::pin!(wake);
        let (next, wake_others, grow) = {
            let mut books = fleet.lock();
            if std::mem::take(&mut waited) {
                books.waiting -= 1;
            }
            let state = &mut books.state;
            if let Some(end) = ended.take() {
                state.settle(&fleet.walk, end);
            }
            let next = match state.next_job(&fleet.walk) {
                Some(job) => Next::Run(job),
                None if state.scheduler.running() == 0 => Next::Stop,
                None if state.interrupted.is_some() => Next::Stop,
                None => Next::Wait,
            };
            let left_ready = books.state.has_startable();
            // Wake the waiting workers only when there is something for
            // them: a step left ready, or the run over.
            let wake_others = books.waiting > 0 && (left_ready || matches!(next, Next::Stop));
            // A step left ready that no worker waits for: one more worker,
            // while the limit allows.
            let grow = matches!(next, Next::Run(_))
                && left_ready
                && books.waiting == 0
                && books.workers < fleet.limit;
            if matches!(next, Next::Wait) {
                books.waiting += 1;
                waited = true;
            }
            if grow {
                books.workers += 1;
                books.wanted += 1;
            }
            (next, wake_others, grow)
        };
        if wake_others {
            fleet.wake.notify_waiters();
        }
        if grow {
            fleet.grow.notify_one();
        }
        match next {
            Next::Stop => return,
            Next::Wait => {
                tokio::select! {
                    biased;
                    _ = fleet.walk.run.stop.stopped() => return,
                    () = &mut wake => {}
                }
            }
            Next::Run(job) => {
                let remake = |step| fleet.remake_input(step);
                ended = Some(fleet.walk.run_step(job, &remake).await);
                // Agents that finish at once never yield on their own: take turns.
                turns.take().await;
            }
        }
    }
}
