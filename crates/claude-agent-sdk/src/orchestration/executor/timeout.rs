//! The timeout layer: an attempt runs until its agent is done, its attempt
//! timeout passes, or its run must stop — and then it stops *properly*.
//!
//! Stopping an attempt first tells the runs nested inside it to stop (the
//! attempt's stop token) and lets them finish stopping — still polling the
//! agent, so a nested run inside it can wind down and record its ends — for
//! at most [`STOP_GRACE`]; only then is the agent's future dropped. An agent
//! with no nested run is dropped at once.
//!
//! An answer given once the attempt timeout has passed is late, whatever it
//! is (say, a fallback after a run nested in the agent was cut short by that
//! very timeout, or what an agent that blocked its thread past it found):
//! the attempt timed out.

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
        // An answer given once the attempt's time is up is late (say, what a
        // nested run cut short by this very timeout left the agent, or what
        // an agent that blocked its thread past it found): the attempt timed
        // out, and its answer is not used.
        Ok(_) if times_out_at.is_some_and(|at| Instant::now() >= at) => return Bounded::TimedOut,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::orchestration::stop_token::StopToken;

    fn run_stop(deadline: Option<Instant>) -> RunStop {
        RunStop {
            token: StopToken::new(),
            context: None,
            deadline,
            limit: crate::orchestration::engine::stop::TimeLimit::Own(Duration::MAX),
        }
    }

    fn no_nested_runs() -> Option<TaskTracker> {
        None
    }

    /// `bounded` without an attempt timeout, and whether it stopped the
    /// attempt's nested runs.
    async fn watching_nested<F: Future>(work: F, run: &RunStop) -> (Bounded<F::Output>, bool) {
        let mut stopped_nested = false;
        let stop_nested = || {
            stopped_nested = true;
            None
        };
        let ended = bounded(work, stop_nested, run, None).await;
        (ended, stopped_nested)
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_done_before_its_timeout_is_done() {
        let run = run_stop(None);
        let at = Instant::now() + Duration::from_secs(5);
        let work = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            7
        };
        let ended = bounded(work, no_nested_runs, &run, Some(at)).await;
        assert!(matches!(ended, Bounded::Done(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_agent_times_out_at_its_timeout() {
        let run = run_stop(None);
        let start = Instant::now();
        let at = start + Duration::from_secs(5);
        let ended = bounded(std::future::pending::<()>(), no_nested_runs, &run, Some(at)).await;
        assert!(matches!(ended, Bounded::TimedOut));
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_that_waited_and_answers_as_its_time_is_up_is_late() {
        let run = run_stop(None);
        let at = Instant::now() + Duration::from_secs(1);
        let work = async {
            tokio::time::sleep_until(at).await;
            7
        };
        let ended = bounded(work, no_nested_runs, &run, Some(at)).await;
        assert!(matches!(ended, Bounded::TimedOut));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_once_the_time_is_up_is_late_even_without_waiting() {
        let run = run_stop(None);
        let ended = bounded(async { 7 }, no_nested_runs, &run, Some(Instant::now())).await;
        assert!(matches!(ended, Bounded::TimedOut));
    }

    #[tokio::test(start_paused = true)]
    async fn the_run_deadline_comes_before_a_later_attempt_timeout() {
        let start = Instant::now();
        let run = run_stop(Some(start + Duration::from_secs(2)));
        let at = start + Duration::from_secs(5);
        let ended = bounded(std::future::pending::<()>(), no_nested_runs, &run, Some(at)).await;
        assert!(matches!(
            ended,
            Bounded::Interrupted(Interruption::TimedOut)
        ));
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_run_interrupts_a_waiting_agent_and_stops_nested_runs_first() {
        let run = run_stop(None);
        let token = run.token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        });
        let (ended, stopped_nested) = watching_nested(std::future::pending::<()>(), &run).await;
        assert!(matches!(
            ended,
            Bounded::Interrupted(Interruption::Cancelled)
        ));
        assert!(stopped_nested);
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_ready_at_once_wins_over_a_run_already_stopped() {
        let run = run_stop(None);
        run.token.cancel();
        let (ended, stopped_nested) = watching_nested(async { 1 }, &run).await;
        assert!(matches!(ended, Bounded::Done(1)));
        assert!(!stopped_nested, "a finished attempt stops nothing");
    }
}
