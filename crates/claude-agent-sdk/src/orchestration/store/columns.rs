//! Values as a store's columns hold them, and back.
//!
//! Both databases keep times as microseconds since the Unix epoch, run ids
//! as text, and totals as numbers that versions before this one let
//! overflow. The writer, the readers and the listings share these
//! conversions, so every path reads a row the same way, and reads a row
//! this version did not write (an id it cannot parse, a sum that
//! overflowed) as something usable rather than failing the listing.

use chrono::{DateTime, Utc};

use crate::orchestration::journal::RunId;

/// Microseconds since the Unix epoch.
pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A token count stored as a REAL — an SQLite sum that overflowed, written
/// by a version whose sums did not saturate — as the count it stands for:
/// `as` saturates at `i64::MAX` (and reads NaN as 0).
#[allow(clippy::cast_possible_truncation)]
pub(super) fn count_from_real(count: f64) -> i64 {
    count as i64
}

/// A stored cost as a listing gives it: finite (a sum that became infinite,
/// written by a version whose sums did not saturate, reads as the largest
/// cost), so that it prints as a number and serializes as one (JSON has no
/// infinity).
pub(super) fn finite_cost(cost: f64) -> f64 {
    if cost.is_nan() {
        0.0
    } else {
        cost.clamp(-f64::MAX, f64::MAX)
    }
}

/// The id of a run in a row; a row the store did not write reads as a fresh id.
pub(super) fn run_id(text: &str) -> RunId {
    text.parse().unwrap_or_default()
}
