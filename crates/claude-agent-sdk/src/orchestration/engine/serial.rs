//! Walking a run one step at a time: a pipeline, or a graph that never runs
//! two nodes at once, needs no workers and no lock around its state.
//!
//! A top-level run walks on a task of its own ([`drive_on_task`]) so that
//! it can leave a step behind: an agent that blocks its thread past the
//! run's stop cannot be stopped, and the run returns anyway, as a fan-out's
//! [workers](super::workers) do. A nested run, or a run of one borrowed
//! agent, walks on the caller's task ([`drive_inline`]): the attempt it
//! runs in leaves it behind when it must, and a borrowed agent cannot go to
//! a task of its own.

use std::sync::Arc;

use tokio::task::JoinError;
use tokio_util::task::AbortOnDropHandle;

use super::run_state::RunState;
use super::stop::STOP_GRACE;
use super::turns::Turns;
use super::walk::Walk;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::journal::Interruption;

/// How a walk on a task of its own ended.
pub(super) enum OnTask {
    /// It ended (see [`drive_inline`]).
    Walked(Box<RunState>, Option<Interruption>),
    /// The run stopped and its step did not within [`STOP_GRACE`]: it was
    /// left behind.
    Abandoned(Interruption),
}

/// Runs every step one at a time, as [`drive_inline`] does, on a task of
/// its own that the run can leave behind: when the run stops (its deadline,
/// a cancellation) and the running step does not stop within
/// [`STOP_GRACE`] — an agent that blocks its thread — the run returns
/// anyway and the attempt's record says it was abandoned, as in a fan-out.
pub(super) async fn drive_on_task(walk: Walk<'static>, state: RunState) -> OnTask {
    let run = Arc::clone(&walk.run);
    let mut walking = AbortOnDropHandle::new(ExecutionContext::spawn(async move {
        drive_inline(&walk, state).await
    }));
    let why = tokio::select! {
        biased;
        joined = &mut walking => return walked(joined),
        why = run.stop.stopped() => why,
    };
    // Stop: the running attempt is told, then awaited for a while.
    run.stop.token.cancel();
    match tokio::time::timeout(STOP_GRACE, &mut walking).await {
        Ok(joined) => walked(joined),
        Err(_) => {
            run.recorder.close(Interruption::Abandoned);
            OnTask::Abandoned(why)
        }
    }
}

/// What a walk's task returned. A panic is a bug of ours (agents' panics
/// are contained), which goes up to the caller; a task the runtime
/// cancelled (it is shutting down) was dropped.
fn walked(joined: std::result::Result<(RunState, Option<Interruption>), JoinError>) -> OnTask {
    match joined {
        Ok((state, interrupted)) => OnTask::Walked(Box::new(state), interrupted),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => OnTask::Abandoned(Interruption::Dropped),
    }
}

/// Runs every step on the caller's task, one at a time.
pub(super) async fn drive_inline(
    walk: &Walk<'_>,
    mut state: RunState,
) -> (RunState, Option<Interruption>) {
    let mut turns = Turns::new();
    while let Some(job) = state.next_job(walk) {
        let remake = |step| state.remake_input(walk, step);
        let end = walk.run_step(job, &remake).await;
        state.settle(walk, end);
        if let Some(why) = state.interrupted {
            return (state, Some(why));
        }
        // Agents that finish at once never yield on their own: take turns,
        // so that timers, a canceller and other tasks get to run.
        turns.take().await;
    }
    (state, None)
}
