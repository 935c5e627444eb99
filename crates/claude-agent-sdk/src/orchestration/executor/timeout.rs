//! The timeout layer: an attempt runs until its agent is done, its attempt
//! timeout passes, or its run must stop — and then it stops *properly*.
//!
//! Stopping an attempt first tells the runs nested inside it to stop (the
//! attempt's stop token) and lets them finish stopping — still polling the
//! agent, so a nested run inside it can wind down and record its ends — for
//! at most [`STOP_GRACE`]; only then is the agent's future dropped. An agent
//! with no nested run is dropped at once.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::orchestration::engine::stop::{RunStop, STOP_GRACE};
use crate::orchestration::journal::Interruption;

/// How a bounded attempt ended.
#[derive(Debug)]
pub(crate) enum Bounded<T> {
    /// The agent finished.
    Done(T),
    /// The attempt timeout passed first.
    TimedOut,
    /// The run had to stop first.
    Interrupted(Interruption),
}

/// Runs `work` (the agent's attempt) under the attempt timeout
/// `times_out_at` and the run's stop conditions. When the attempt has to
/// stop, `stop_nested` stops the runs nested in it first (and says what to
/// wait on for them to finish stopping, if any is running).
pub(crate) async fn bounded<F: Future>(
    work: F,
    stop_nested: impl FnOnce() -> Option<TaskTracker>,
    run: &RunStop,
    times_out_at: Option<Instant>,
) -> Bounded<F::Output> {
    let mut work = pin!(work);
    // The agent is polled first, and what it races against is set up only
    // when it first has to wait: a quick agent (one that never waits) pays
    // for no timer, and a waiting one for one allocation.
    let mut stop = None;
    let ended = std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let stop = stop.get_or_insert_with(|| Box::pin(must_stop(run, times_out_at)));
        stop.as_mut().poll(cx).map(Err)
    })
    .await;
    let ended = match ended {
        Ok(output) => return Bounded::Done(output),
        Err(ended) => ended,
    };
    // Stop the runs nested in this attempt, and let them finish stopping.
    if let Some(children) = stop_nested() {
        tokio::select! {
            biased;
            _ = &mut work => {}
            () = children.wait() => {}
            () = tokio::time::sleep(STOP_GRACE) => {}
        }
    }
    ended
}

/// Completes when an attempt must stop: its run stops, or its timeout
/// (`times_out_at`) passes.
async fn must_stop<T>(run: &RunStop, times_out_at: Option<Instant>) -> Bounded<T> {
    let timeout = async {
        match times_out_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        why = run.stopped() => Bounded::Interrupted(why),
        () = timeout => Bounded::TimedOut,
    }
}
