//! The per-provider limiter: requests per minute and concurrent requests.
//!
//! Every agent of a [`Provider`](super::Provider) asks the provider's one
//! [`RateLimiter`] before each request. Concurrency is a fair (first come, first
//! served) semaphore held until the response has been read to its end; the pace
//! is a GCRA schedule — each request reserves the next start slot, so waiters
//! queue in order and never wake together; and a server's `retry-after` on a 429
//! or 529 pauses every request of the provider, not just the one that was told.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::orchestration::{OrchestrationError, Result};

/// How hard the agents of one provider may push it.
///
/// ```
/// use claude_agent_sdk::agents::ProviderLimits;
///
/// let limits = ProviderLimits::new()
///     .with_requests_per_minute(50)   // the API's published limit
///     .with_max_concurrent(8);        // at most 8 requests in flight
/// assert_eq!(limits.burst(), 1);      // about one second's worth at once
/// assert!(limits.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderLimits {
    /// Most requests started per minute; `None` for no limit (the default).
    pub requests_per_minute: Option<u32>,
    /// How many requests may start back to back before the per-minute pace
    /// applies; `None` for about one second's worth (`requests_per_minute / 60`,
    /// at least 1).
    pub burst: Option<u32>,
    /// Most requests in flight at once; `None` for no limit. Default 64.
    pub max_concurrent: Option<usize>,
}

impl Default for ProviderLimits {
    fn default() -> Self {
        Self {
            requests_per_minute: None,
            burst: None,
            max_concurrent: Some(64),
        }
    }
}

impl ProviderLimits {
    /// The default limits: no pace, at most 64 requests in flight.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// No limits at all.
    #[must_use]
    pub fn unlimited() -> Self {
        Self {
            requests_per_minute: None,
            burst: None,
            max_concurrent: None,
        }
    }

    /// Sets the most requests started per minute.
    #[must_use]
    pub fn with_requests_per_minute(mut self, requests: u32) -> Self {
        self.requests_per_minute = Some(requests);
        self
    }

    /// Sets how many requests may start back to back.
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Sets the most requests in flight at once.
    #[must_use]
    pub fn with_max_concurrent(mut self, requests: usize) -> Self {
        self.max_concurrent = Some(requests);
        self
    }

    /// Removes the bound on requests in flight.
    #[must_use]
    pub fn without_max_concurrent(mut self) -> Self {
        self.max_concurrent = None;
        self
    }

    /// The burst in force: the configured one, or about one second's worth.
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.burst
            .unwrap_or_else(|| self.requests_per_minute.unwrap_or(60).div_ceil(60))
            .max(1)
    }

    /// Checks that the limits let requests through at all.
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] for a zero rate, burst or concurrency.
    pub fn validate(&self) -> Result<()> {
        let zero = |what: &str| {
            Err(OrchestrationError::InvalidConfig(format!(
                "provider limit `{what}` must be greater than zero"
            )))
        };
        if self.requests_per_minute == Some(0) {
            return zero("requests_per_minute");
        }
        if self.burst == Some(0) {
            return zero("burst");
        }
        if self.max_concurrent == Some(0) {
            return zero("max_concurrent");
        }
        Ok(())
    }
}

/// Paces and bounds the requests of one provider; shared by all its agents.
#[derive(Debug)]
pub struct RateLimiter {
    limits: ProviderLimits,
    concurrency: Option<Arc<Semaphore>>,
    pace: Option<Mutex<Pace>>,
    paused_until: Mutex<Option<Instant>>,
}

/// A GCRA schedule: `next` is the theoretical arrival time of the next request.
#[derive(Debug)]
struct Pace {
    interval: Duration,
    tolerance: Duration,
    next: Option<Instant>,
}

/// The right to make one request; the concurrency slot is released on drop.
#[derive(Debug)]
#[must_use = "the request's concurrency slot is released when the permit is dropped"]
pub struct RatePermit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl RateLimiter {
    /// A limiter enforcing `limits`.
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] when the limits do not validate.
    pub fn new(limits: ProviderLimits) -> Result<Self> {
        limits.validate()?;
        let pace = limits
            .requests_per_minute
            .and_then(NonZeroU32::new)
            .map(|rpm| {
                let interval = Duration::from_secs(60) / rpm.get();
                Mutex::new(Pace {
                    interval,
                    tolerance: interval.saturating_mul(limits.burst() - 1),
                    next: None,
                })
            });
        Ok(Self {
            limits,
            concurrency: limits
                .max_concurrent
                .map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)))),
            pace,
            paused_until: Mutex::new(None),
        })
    }

    /// The limits it enforces.
    #[must_use]
    pub fn limits(&self) -> &ProviderLimits {
        &self.limits
    }

    /// How many more requests could be in flight right now (`None`: unbounded).
    #[must_use]
    pub fn available_slots(&self) -> Option<usize> {
        self.concurrency.as_ref().map(|s| s.available_permits())
    }

    /// Waits until a request may start: a free concurrency slot first (in arrival
    /// order), then the end of any pause, then the request's start slot in the
    /// pace. A request whose slot came while a pause began waits the pause out
    /// and takes a new slot, so the requests queued during a pause keep the
    /// pace after it instead of starting together. Dropping the future gives up
    /// its place in the queue (a start slot it already reserved stays spent,
    /// which errs on the polite side).
    pub async fn acquire(&self) -> RatePermit {
        let slot = match &self.concurrency {
            // The semaphore is never closed, so acquiring only fails in theory.
            Some(semaphore) => Arc::clone(semaphore).acquire_owned().await.ok(),
            None => None,
        };
        loop {
            while let Some(until) = self.pause_in_force() {
                tokio::time::sleep_until(until).await;
            }
            let Some(start) = self.reserve_start() else {
                break;
            };
            tokio::time::sleep_until(start).await;
            if self.pause_in_force().is_none() {
                break;
            }
        }
        RatePermit { _slot: slot }
    }

    /// Holds back every request of the provider for `delay` from now (or longer,
    /// if an earlier pause ends later). Agents call it when the server answers
    /// with a `retry-after`.
    pub fn pause_for(&self, delay: Duration) {
        let Some(until) = Instant::now().checked_add(delay) else {
            return;
        };
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
        drop(paused);
        // The pace starts again where the pause ends: the slots booked
        // before it have passed by then.
        if let Some(pace) = &self.pace {
            let mut pace = pace.lock().unwrap_or_else(PoisonError::into_inner);
            pace.next = Some(pace.next.map_or(until, |next| next.max(until)));
        }
    }

    /// Reserves the next start slot of the pace; `None` when there is no pace.
    fn reserve_start(&self) -> Option<Instant> {
        let mut pace = self
            .pace
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let next = pace.next.map_or(now, |next| next.max(now));
        let start = next
            .checked_sub(pace.tolerance)
            .map_or(now, |earliest| earliest.max(now));
        pace.next = Some(next + pace.interval);
        Some(start)
    }

    fn pause_in_force(&self) -> Option<Instant> {
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *paused {
            Some(until) if until > Instant::now() => Some(until),
            Some(_) => {
                *paused = None;
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn zero_limits_are_invalid() {
        for limits in [
            ProviderLimits::new().with_requests_per_minute(0),
            ProviderLimits::new().with_burst(0),
            ProviderLimits::new().with_max_concurrent(0),
        ] {
            assert!(matches!(
                RateLimiter::new(limits),
                Err(OrchestrationError::InvalidConfig(_))
            ));
        }
        assert_eq!(
            ProviderLimits::new().with_requests_per_minute(600).burst(),
            10
        );
        assert_eq!(
            ProviderLimits::new().with_requests_per_minute(30).burst(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn paces_requests_per_minute_after_the_burst() {
        let limiter = RateLimiter::new(
            ProviderLimits::unlimited()
                .with_requests_per_minute(60)
                .with_burst(3),
        )
        .unwrap();
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..6 {
            let _permit = limiter.acquire().await;
            starts.push((Instant::now() - start).as_secs());
        }
        assert_eq!(starts, vec![0, 0, 0, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_get_distinct_slots_in_order() {
        let limiter = Arc::new(
            RateLimiter::new(
                ProviderLimits::unlimited()
                    .with_requests_per_minute(120)
                    .with_burst(1),
            )
            .unwrap(),
        );
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move {
                    let _permit = limiter.acquire().await;
                    (Instant::now() - start).as_millis()
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        times.sort_unstable();
        assert_eq!(times, vec![0, 500, 1000, 1500]);
    }

    #[tokio::test(start_paused = true)]
    async fn bounds_requests_in_flight() {
        let limiter =
            Arc::new(RateLimiter::new(ProviderLimits::new().with_max_concurrent(3)).unwrap());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (limiter, in_flight, peak) = (
                    Arc::clone(&limiter),
                    Arc::clone(&in_flight),
                    Arc::clone(&peak),
                );
                tokio::spawn(async move {
                    let _permit = limiter.acquire().await;
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(limiter.available_slots(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_back_every_request() {
        let limiter = RateLimiter::new(ProviderLimits::unlimited()).unwrap();
        let start = Instant::now();
        limiter.pause_for(Duration::from_secs(2));
        limiter.pause_for(Duration::from_secs(1)); // a shorter pause does not shorten it
        let _permit = limiter.acquire().await;
        assert_eq!((Instant::now() - start).as_secs(), 2);
        let _again = limiter.acquire().await;
        assert_eq!((Instant::now() - start).as_secs(), 2);
    }
}
