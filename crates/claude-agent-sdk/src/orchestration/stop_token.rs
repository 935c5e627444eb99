//! [`StopToken`]: a cancellation token whose "is it cancelled?" never takes
//! a lock.
//!
//! tokio-util's `CancellationToken` wakes whoever awaits it, but asking it
//! whether it is cancelled locks its tree node — and every attempt of a
//! fan-out asks, from every core, about the same run. A `StopToken` pairs the
//! token with a chain of flags that mirrors the token tree: cancelling sets
//! the flag before the token, and a child reads its own flag and its
//! ancestors', so the two always agree. Cloning one is two reference counts,
//! not a lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// How many flags [`StopToken::is_cancelled`] reads before it asks the token:
/// enough for any ordinary nesting, and a bound on the cost of a deep one.
const FLAGS_READ: usize = 16;

/// A cancellation token with a lock-free [`is_cancelled`](Self::is_cancelled).
#[derive(Debug, Clone)]
pub(crate) struct StopToken {
    token: Arc<CancellationToken>,
    flag: Arc<Flag>,
}

#[derive(Debug)]
struct Flag {
    set: AtomicBool,
    parent: Option<Arc<Flag>>,
}

impl Default for StopToken {
    fn default() -> Self {
        Self::new()
    }
}

impl StopToken {
    /// A token not cancelled, with no parent.
    pub(crate) fn new() -> Self {
        Self {
            token: Arc::new(CancellationToken::new()),
            flag: Arc::new(Flag {
                set: AtomicBool::new(false),
                parent: None,
            }),
        }
    }

    /// A token cancelled with this one, or on its own.
    pub(crate) fn child(&self) -> Self {
        Self {
            token: Arc::new(self.token.child_token()),
            flag: Arc::new(Flag {
                set: AtomicBool::new(false),
                parent: Some(Arc::clone(&self.flag)),
            }),
        }
    }

    /// Cancels this token and its children.
    pub(crate) fn cancel(&self) {
        self.flag.set.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether this token or an ancestor was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        let mut flag = &*self.flag;
        for _ in 0..FLAGS_READ {
            if flag.set.load(Ordering::Acquire) {
                return true;
            }
            match &flag.parent {
                Some(parent) => flag = parent,
                None => return false,
            }
        }
        // A deep chain (runs nested many levels): rather than read every
        // ancestor's flag, ask the token, which cancellation reaches at once.
        self.token.is_cancelled()
    }

    /// Completes once this token or an ancestor is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.token.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flags_and_waiters_agree_down_the_tree_and_never_up() {
        let root = StopToken::new();
        let child = root.child();
        let grandchild = child.child();
        grandchild.cancel();
        assert!(grandchild.is_cancelled());
        assert!(!child.is_cancelled() && !root.is_cancelled());
        grandchild.cancelled().await;
        let sibling = child.child();
        root.cancel();
        assert!(child.is_cancelled() && sibling.is_cancelled());
        sibling.cancelled().await;
        let late = root.child();
        assert!(late.is_cancelled());
        late.cancelled().await;
    }

    #[test]
    fn a_deep_chain_still_sees_its_root_cancelled() {
        let root = StopToken::new();
        let mut leaf = root.child();
        for _ in 0..100 {
            leaf = leaf.child();
        }
        assert!(!leaf.is_cancelled());
        root.cancel();
        assert!(leaf.is_cancelled());
    }
}
