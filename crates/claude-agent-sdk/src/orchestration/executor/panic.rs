//! The panic layer: a panicking agent is contained, whether it panics while
//! it runs or while it is dropped.
//!
//! [`CatchUnwind`] polls the agent's future inside `catch_unwind` and drops it
//! inside `catch_unwind` too, so a panic in an agent's `Drop` — when its
//! attempt is cut short by a timeout, a cancellation or the deadline — never
//! escapes into the orchestrator.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future whose panics — in `poll` and in `drop` — are caught. The future
/// is `Unpin` (an agent's boxed future), so it can be dropped on its own,
/// inside `catch_unwind`.
pub(crate) struct CatchUnwind<F> {
    inner: Option<F>,
}

impl<F: Future + Unpin> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
        Self {
            inner: Some(future),
        }
    }
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    /// The future's output, or the panic's message.
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err("the agent was polled after it ended".to_owned()));
        };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                self.drop_inner();
                Poll::Ready(Ok(output))
            }
            Err(payload) => {
                self.drop_inner();
                Poll::Ready(Err(panic_message(payload.as_ref())))
            }
        }
    }
}

impl<F> CatchUnwind<F> {
    /// Drops the inner future; a panic while doing so is swallowed (the
    /// attempt's outcome is already decided).
    fn drop_inner(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
        }
    }
}

impl<F> Drop for CatchUnwind<F> {
    fn drop(&mut self) {
        self.drop_inner();
    }
}

/// Calls `user_code` (an observer, a router, a retry policy: code of the
/// user's that the engine calls), its panic caught: `Err` with the panic's
/// message.
pub(crate) fn contained<T>(user_code: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(user_code)).map_err(|payload| panic_message(payload.as_ref()))
}

/// The message a panic carried.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("drop went wrong");
        }
    }

    #[tokio::test]
    async fn a_panic_while_polling_becomes_its_message() {
        let result = CatchUnwind::new(Box::pin(async { panic!("kaboom {}", 42) })).await;
        let message: String = match result {
            Err(message) => message,
            Ok(()) => unreachable!(),
        };
        assert_eq!(message, "kaboom 42");
    }

    #[tokio::test]
    async fn a_panic_while_dropping_is_contained() {
        let guard = PanicsOnDrop;
        let pending = CatchUnwind::new(Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        let mut pending = Box::pin(pending);
        assert!(futures::poll!(pending.as_mut()).is_pending());
        drop(pending); // must not unwind into the test
    }
}
