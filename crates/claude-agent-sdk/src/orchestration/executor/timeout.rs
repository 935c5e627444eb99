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

use tokio::time::Instant;

use crate::orchestration::engine::stop::{RunStop, STOP_GRACE};
use crate::orchestration::journal::Interruption;
use crate::orchestration::scope::AttemptScope;

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

/// Runs `work` (the agent's attempt, inside `scope`) under the attempt
/// timeout `times_out_at` and the run's stop conditions.
pub(crate) async fn bounded<F: Future>(
    work: F,
    scope: &AttemptScope,
    run: &RunStop,
    times_out_at: Option<Instant>,
) -> Bounded<F::Output> {
    let mut work = pin!(work);
    let timeout = async {
        match times_out_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        biased;
        output = &mut work => return Bounded::Done(output),
        why = run.stopped() => Bounded::Interrupted(why),
        () = timeout => Bounded::TimedOut,
    };
    // Stop the runs nested in this attempt, and let them finish stopping.
    if let Some(children) = scope.stop() {
        tokio::select! {
            biased;
            _ = &mut work => {}
            () = children.wait() => {}
            () = tokio::time::sleep(STOP_GRACE) => {}
        }
    }
    ended
}
