//! How long a store may stay silent. A server behind a network partition,
//! or frozen, never answers nor fails: whoever waits for it would wait for
//! good. Every wait for a store goes through here, bounded — a write by its
//! size, a read by the time between two of its rows, a prune by each of its
//! statements (which delete a tree's events in chunks small enough to be
//! answered well within the bound: `sql::EVENTS_PER_DELETE`) — and a
//! store that stays silent past the bound is a retryable store error.
//!
//! The bounds sit well above the waits a store has of its own (SQLite's
//! busy timeout, a pool's wait for a connection: 10 s), so a store that is
//! merely busy is not cut.

use std::future::Future;
use std::time::Duration;

use futures::{Stream, TryStreamExt as _};

use crate::orchestration::errors::{OrchestrationError, Result};

/// How long a store may take to answer a small request (a write of a batch
/// with no output in it, a claim, a listing) or to send the next row of a
/// read.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What a write's size adds to [`ANSWER_WITHIN`]: a second a megabyte (a
/// link of 8 Mbit/s), so that big outputs on a slow link are not cut.
const BYTES_PER_SECOND: usize = 1_000_000;

/// `call`, a request sending `bytes` bytes to the store, unless the store
/// does not answer in time.
pub(crate) async fn answered<T>(call: impl Future<Output = Result<T>>, bytes: usize) -> Result<T> {
    let extra = u64::try_from(bytes / BYTES_PER_SECOND).unwrap_or(u64::MAX);
    let within = ANSWER_WITHIN.saturating_add(Duration::from_secs(extra));
    tokio::time::timeout(within, call)
        .await
        .unwrap_or_else(|_| Err(silent(within)))
}

/// The next row of a read, unless the store stays silent for
/// [`ANSWER_WITHIN`]: a big read on a slow link goes on as long as rows
/// keep coming.
pub(crate) async fn next_row<R, S>(
    rows: &mut S,
    fail: impl Fn(sqlx::Error) -> OrchestrationError,
) -> Result<Option<R>>
where
    S: Stream<Item = std::result::Result<R, sqlx::Error>> + Unpin,
{
    match tokio::time::timeout(ANSWER_WITHIN, rows.try_next()).await {
        Ok(row) => row.map_err(fail),
        Err(_) => Err(silent(ANSWER_WITHIN)),
    }
}

/// The error for a store silent for `within`.
fn silent(within: Duration) -> OrchestrationError {
    OrchestrationError::store(
        format!(
            "the store did not answer within {} s (is the server reachable?)",
            within.as_secs()
        ),
        true,
    )
}
