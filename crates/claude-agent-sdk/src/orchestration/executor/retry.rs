//! The retry layer's decision: whether a failed attempt gets another, and
//! after how long.
//!
//! A [`RetryPolicy`] decides, within bounds the executor keeps (a retryable
//! error, a retry left); the executor carries the decision out (it sleeps,
//! raced against the run's cancellation and deadline, and tries again). The default policy, [`ExponentialRetry`], retries what
//! [`OrchestrationError::is_retryable`] calls retryable, at most `max_retries`
//! times, on the [`Backoff`] schedule below. Users plug in their own through
//! [`ExecutionConfig::with_retry_policy`](crate::orchestration::ExecutionConfig::with_retry_policy).
//!
//! The nominal schedule comes from [`backon`]'s exponential backoff (100 ms, 200 ms,
//! 400 ms, … capped at [`Backoff::max`]). backon's own jitter only ever adds (up to
//! +100 %), which makes retry storms after an outage both late and unpredictable, so
//! it stays off and [`Backoff::shape`] spreads each nominal delay by at most
//! ±[`Backoff::jitter`] instead. A rate-limited back end that says how long to wait
//! (a `retry-after` hint, see [`OrchestrationError::retry_after`]) always gets at
//! least that long.
//!
//! Which errors are retried is decided by [`OrchestrationError::is_retryable`] alone.

use std::fmt;
use std::time::Duration;

use backon::ExponentialBuilder;
use serde::{Deserialize, Serialize};

use crate::orchestration::errors::OrchestrationError;

/// How long to wait between the attempts of one agent. Read from JSON, a
/// missing field takes its default.
///
/// ```
/// use claude_agent_sdk::orchestration::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::default();
/// assert_eq!(backoff.initial, Duration::from_millis(100));
/// assert_eq!(backoff.max, Duration::from_secs(10));
/// assert_eq!(backoff.jitter, 0.2);
/// let nominal: Vec<_> = backoff.nominal_delays(4).collect();
/// assert_eq!(nominal.len(), 4);
/// assert!(nominal[3] > nominal[2]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Backoff {
    /// The nominal delay before the first retry.
    pub initial: Duration,
    /// The cap on the nominal delay; the delay doubles until it reaches it.
    pub max: Duration,
    /// The relative spread around each nominal delay, from 0.0 (none) to 1.0.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// A schedule starting at `initial` and doubling up to `max`, with ±20 % jitter.
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            ..Self::default()
        }
    }

    /// Sets the relative jitter, clamped into `0.0..=1.0`.
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// backon's builder for at most `retries` delays, without backon's own jitter.
    pub(crate) fn builder(&self, retries: usize) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_max_times(retries)
    }

    /// The nominal (unjittered) delays before each of `retries` retries.
    pub fn nominal_delays(&self, retries: usize) -> impl Iterator<Item = Duration> {
        use backon::BackoffBuilder;
        self.builder(retries).build()
    }

    /// The delay actually slept: `nominal` spread by the jitter, and never less
    /// than the error's retry-after hint.
    #[must_use]
    pub fn shape(&self, nominal: Duration, error: &OrchestrationError) -> Duration {
        let spread = if self.jitter > 0.0 {
            1.0 + self.jitter * (2.0 * fastrand::f64() - 1.0)
        } else {
            1.0
        };
        // Saturating: a schedule whose delays reach `Duration::MAX` waits that
        // long (the run's deadline cuts it short), it does not overflow.
        let jittered = Duration::try_from_secs_f64(nominal.as_secs_f64() * spread.max(0.0))
            .unwrap_or(Duration::MAX);
        match error.retry_after() {
            Some(hint) => jittered.max(hint),
            None => jittered,
        }
    }

    /// Checks that the schedule makes sense.
    pub(crate) fn validate(&self) -> Result<(), OrchestrationError> {
        if self.initial > self.max {
            return Err(OrchestrationError::InvalidConfig(format!(
                "backoff initial delay {:?} exceeds its maximum {:?}",
                self.initial, self.max
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(OrchestrationError::InvalidConfig(format!(
                "backoff jitter {} is outside 0.0..=1.0",
                self.jitter
            )));
        }
        Ok(())
    }
}

/// Decides whether a failed attempt is tried again.
///
/// ```
/// use std::time::Duration;
/// use claude_agent_sdk::orchestration::{OrchestrationError, RetryPolicy};
///
/// /// Retries timeouts only, once, after a second.
/// #[derive(Debug)]
/// struct TimeoutsOnce;
///
/// impl RetryPolicy for TimeoutsOnce {
///     fn retry_delay(&self, error: &OrchestrationError, failed_attempt: u32, _max_retries: usize) -> Option<Duration> {
///         (matches!(error, OrchestrationError::Timeout(_)) && failed_attempt == 1)
///             .then_some(Duration::from_secs(1))
///     }
/// }
/// assert!(TimeoutsOnce.retry_delay(&OrchestrationError::Timeout("t".into()), 1, 3).is_some());
/// assert!(TimeoutsOnce.retry_delay(&OrchestrationError::Cancelled, 1, 3).is_none());
/// ```
pub trait RetryPolicy: Send + Sync + fmt::Debug {
    /// After attempt number `failed_attempt` (from 1) failed with `error`:
    /// how long to wait before the next attempt, or `None` to give up.
    /// `max_retries` is the agent's retry budget (see
    /// [`ExecutionConfig::max_retries`](crate::orchestration::ExecutionConfig::max_retries)).
    ///
    /// The executor asks only when a retry is allowed — the error is
    /// retryable ([`OrchestrationError::is_retryable`]: a permanent error
    /// stays permanent) and the budget has a retry left — so a policy can
    /// retry less than the default, never more. The wait is never shorter
    /// than the error's [`retry_after`](OrchestrationError::retry_after)
    /// hint: a shorter delay is raised to it.
    fn retry_delay(
        &self,
        error: &OrchestrationError,
        failed_attempt: u32,
        max_retries: usize,
    ) -> Option<Duration>;
}

/// The default [`RetryPolicy`]: retryable errors only, at most `max_retries`
/// retries, delays from a [`Backoff`] (jittered, floored by retry-after hints).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExponentialRetry {
    /// The delay schedule.
    pub backoff: Backoff,
}

impl ExponentialRetry {
    /// The policy with `backoff`'s schedule.
    #[must_use]
    pub fn new(backoff: Backoff) -> Self {
        Self { backoff }
    }
}

impl RetryPolicy for ExponentialRetry {
    fn retry_delay(
        &self,
        error: &OrchestrationError,
        failed_attempt: u32,
        max_retries: usize,
    ) -> Option<Duration> {
        if !error.is_retryable() {
            return None;
        }
        let retry = usize::try_from(failed_attempt).ok()?.checked_sub(1)?;
        let nominal = self.backoff.nominal_delays(max_retries).nth(retry)?;
        Some(self.backoff.shape(nominal, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_retries_retryable_errors_within_the_budget() {
        let policy = ExponentialRetry::new(Backoff::default().with_jitter(0.0));
        let busy = OrchestrationError::transient("busy");
        let delays: Vec<_> = (1..=4).map(|n| policy.retry_delay(&busy, n, 3)).collect();
        assert!(delays[..3].iter().all(Option::is_some), "{delays:?}");
        assert_eq!(delays[3], None, "three retries, then no more");
        assert!(delays[1] > delays[0]);
        let permanent = OrchestrationError::AgentError("no".into());
        assert_eq!(policy.retry_delay(&permanent, 1, 3), None);
    }

    #[test]
    fn nominal_schedule_doubles_and_is_capped() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u128> = backoff.nominal_delays(5).map(|d| d.as_millis()).collect();
        assert_eq!(delays.len(), 5);
        // backon computes in f32: allow a millisecond of rounding.
        let expected = [100, 200, 400, 500, 500];
        for (got, want) in delays.iter().zip(expected) {
            assert!(got.abs_diff(want) <= 1, "{delays:?}");
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let backoff = Backoff::default();
        let nominal = Duration::from_millis(1000);
        let plain = OrchestrationError::Timeout("t".into());
        for _ in 0..10_000 {
            let d = backoff.shape(nominal, &plain).as_millis();
            assert!((800..=1200).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_hint_is_a_floor() {
        let backoff = Backoff::default();
        let limited = OrchestrationError::transient("429").with_retry_after(Duration::from_secs(5));
        for _ in 0..1000 {
            assert!(backoff.shape(Duration::from_millis(100), &limited) >= Duration::from_secs(5));
        }
    }

    #[test]
    fn bad_schedules_are_rejected() {
        let inverted = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert!(matches!(
            inverted.validate(),
            Err(OrchestrationError::InvalidConfig(_))
        ));
        assert_eq!(Backoff::default().with_jitter(5.0).jitter, 1.0);
    }
}
