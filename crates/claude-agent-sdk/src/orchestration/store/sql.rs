//! The SQL both stores run: one schema design, one set of statements
//! (`$1` placeholders, which SQLite and PostgreSQL both read), written once
//! here and run for each database by the backend
//! ([`sql_backend!`](super::backend::sql_backend)); what differs between the
//! two databases is a [`Dialect`]. Also here: how big a batch one statement
//! writes or deletes.
//!
//! # Heartbeats: one clock
//! Whether a run of another machine still runs is told by the age of its
//! heartbeat ([`STALE_AFTER`](super::STALE_AFTER)). Machines' clocks differ,
//! so no machine's clock is used: a heartbeat is the database's time
//! ([`Dialect::now_us`]), written by the statement that writes it, and its
//! age is the database's time minus it, computed by the statement that reads
//! it — the difference of two readings of one clock, the PostgreSQL server's,
//! whichever machines wrote and read the row. (A SQLite store is one
//! machine's: its clock is that machine's.) A run's start and end stay the
//! writing machine's time: they are shown, and a run's start is compared
//! with its process's start on its own machine (`Owner::pid_reused`).

/// Where a statement reads the database's clock: replaced by its
/// [`Dialect::now_us`] (see [`Dialect::clocked`]).
pub(crate) const NOW_US: &str = "{now_us}";

/// Inserts the runs that started, with a first heartbeat; a resumed run's
/// row, which its claim wrote first ([`INSERT_CLAIMER`]), is completed.
/// Reads the clock ([`NOW_US`]).
pub(crate) const INSERT_RUN: &str = "INSERT INTO runs \
    (id, root, origin, parent, resumes, orchestrator, label, status, started_us, host, pid, \
    heartbeat_us, forks) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, {now_us}, $11) \
    ON CONFLICT (id) DO UPDATE SET root = excluded.root, origin = excluded.origin, \
    parent = excluded.parent, resumes = excluded.resumes, orchestrator = excluded.orchestrator, \
    label = excluded.label, started_us = excluded.started_us, host = excluded.host, \
    pid = excluded.pid, heartbeat_us = excluded.heartbeat_us, forks = excluded.forks";
/// Says a running run's process is alive: the database's time now ([`NOW_US`]).
pub(crate) const HEARTBEAT: &str =
    "UPDATE runs SET heartbeat_us = {now_us} WHERE id = $1 AND status = 'running'";
/// The start of a multi-row insert of events.
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO events (root, run, at_us, kind, body) ";
/// Records a run's end.
pub(crate) const END_RUN: &str = "UPDATE runs SET status = $2, finished_us = $3 WHERE id = $1";
/// Adds to a top-level run's totals: `$2` events, `$3` tokens and `$4`
/// dollars (both at least 0), the sums stopping at `$5` ([`MAX_TOKENS`])
/// and `$6` ([`MAX_COST_USD`]).
///
/// Agents report what they like, and a plain sum would overflow: SQLite
/// turns an integer sum that overflows into a REAL (which no listing could
/// read back as a count), PostgreSQL refuses it (the run's writes fail), and
/// a cost sum becomes infinite on SQLite and an error on PostgreSQL. Each
/// guard compares with the room left (`$5 - $3`, which cannot overflow)
/// before adding, in the one statement; it also sets a sum an older version
/// left as a REAL or as infinity to the cap.
pub(crate) const ADD_TOTALS: &str = "UPDATE runs SET events = events + $2, \
    tokens = CASE WHEN tokens > $5 - $3 THEN $5 ELSE tokens + $3 END, \
    cost_usd = CASE WHEN cost_usd > $6 - $4 THEN $6 ELSE cost_usd + $4 END \
    WHERE id = $1";
/// Where a run's token total stops: the largest `BIGINT`.
pub(crate) const MAX_TOKENS: i64 = i64::MAX;
/// Where a run's cost total stops: the largest finite `DOUBLE PRECISION`
/// (bound, not written in the SQL: each database would parse the decimal
/// text on its own).
pub(crate) const MAX_COST_USD: f64 = f64::MAX;
/// The top-level runs of some runs.
pub(crate) const ROOT_OF: &str = "SELECT root FROM runs WHERE id = $1";
/// A tree's events, in append order.
pub(crate) const TREE_EVENTS: &str =
    "SELECT run, at_us, body FROM events WHERE root = $1 ORDER BY seq";
/// Claims a run for the run that continues it.
pub(crate) const CLAIM: &str =
    "UPDATE runs SET resumed_by = $2 WHERE id = $1 AND resumed_by IS NULL";
/// Claims a run from `$3`, a run that claimed it and never started (see
/// [`ABANDONED_CLAIMER`]).
pub(crate) const TAKE_OVER_CLAIM: &str =
    "UPDATE runs SET resumed_by = $2 WHERE id = $1 AND resumed_by = $3";
/// What a claim needs to know of a run (its owner: its heartbeat's age by
/// the database's clock, [`NOW_US`]).
pub(crate) const CLAIM_INFO: &str = "SELECT origin, resumed_by, status, host, pid, \
    {now_us} - heartbeat_us, started_us, orchestrator, label FROM runs WHERE id = $1";
/// The row of the run that claims run `$3` — written with the claim, so
/// that a claim is never made by a run the store has no row of: `$2` its
/// chain's origin, `$4` and `$5` the claimed run's orchestrator and label
/// (until its own start completes the row), `$6` now (its start), `$7` and
/// `$8` this process; its heartbeat, the database's time ([`NOW_US`]). It
/// counts no events until its start is stored.
pub(crate) const INSERT_CLAIMER: &str = "INSERT INTO runs \
    (id, root, origin, parent, resumes, orchestrator, label, status, started_us, host, pid, \
    heartbeat_us) \
    VALUES ($1, $1, $2, NULL, $3, $4, $5, 'running', $6, $7, $8, {now_us})";
/// What a claim needs to know of the run that claimed a run before it:
/// its owner (its heartbeat's age by the database's clock, [`NOW_US`]), and
/// whether its start was ever stored (a row counts its events).
pub(crate) const CLAIMER_INFO: &str = "SELECT status, host, pid, {now_us} - heartbeat_us, \
    started_us, events FROM runs WHERE id = $1";
/// Deletes the row of a run that claimed a run and never started (no
/// event of it was stored).
pub(crate) const ABANDONED_CLAIMER: &str =
    "DELETE FROM runs WHERE id = $1 AND events = 0 AND parent IS NULL";
/// The columns of a run summary, then its owner's (whether a `running` run
/// still runs: its heartbeat's age by the database's clock, [`NOW_US`]).
pub(crate) const SUMMARY: &str = "SELECT id, origin, resumes, resumed_by, orchestrator, label, \
    status, started_us, finished_us, events, tokens, cost_usd, host, pid, \
    {now_us} - heartbeat_us, forks FROM runs";
/// Every top-level run, newest first, with what a prune weighs: the first
/// run of its chain of resumes, its owner (whether a `running` run still
/// runs: only the process's machine can tell, so it is decided in Rust, not
/// in SQL; its heartbeat's age is the database's, [`NOW_US`]), its start,
/// and the run it forks.
pub(crate) const TOP_LEVEL_RUNS: &str = "SELECT id, origin, status, host, pid, \
    {now_us} - heartbeat_us, started_us, forks FROM runs WHERE parent IS NULL \
    ORDER BY started_us DESC, id DESC";
/// The next events of tree `$1` a prune deletes, with the size of their
/// bodies: after event `$2`, the first `$3` ([`EVENTS_PER_DELETE`]).
/// `octet_length` reads a stored value's size, not the value, in both
/// databases.
pub(crate) const EVENT_SIZES: &str = "SELECT seq, CAST(octet_length(body) AS BIGINT) \
    FROM events WHERE root = $1 AND seq > $2 ORDER BY seq LIMIT $3";
/// Deletes tree `$1`'s events after event `$2` up to event `$3`.
pub(crate) const DELETE_EVENTS: &str =
    "DELETE FROM events WHERE root = $1 AND seq > $2 AND seq <= $3";
/// Deletes a tree's runs, in one statement: a tree has far fewer runs than
/// events (each run stores its start, an attempt's start and end, …).
pub(crate) const DELETE_RUNS: &str = "DELETE FROM runs WHERE root = $1";

/// How many events one `INSERT` writes (within both databases' limits on
/// bound values).
pub(crate) const EVENTS_PER_INSERT: usize = 1000;

/// The most bytes of event bodies one `INSERT` carries (an event larger
/// than this goes alone): far below PostgreSQL's 1 GB limit on a message,
/// so many big outputs stored at once take several statements, not one
/// that the server refuses.
pub(crate) const BYTES_PER_INSERT: usize = 64 * 1024 * 1024;

/// `events` cut into what one `INSERT` writes each: at most
/// [`EVENTS_PER_INSERT`] events and [`BYTES_PER_INSERT`] bytes of bodies.
pub(crate) fn insert_chunks(events: &[super::rows::EventRow]) -> Vec<&[super::rows::EventRow]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, event) in events.iter().enumerate() {
        let full = index - start == EVENTS_PER_INSERT
            || (index > start && bytes + event.body.len() > BYTES_PER_INSERT);
        if full {
            chunks.push(&events[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += event.body.len();
    }
    if start < events.len() {
        chunks.push(&events[start..]);
    }
    chunks
}

/// How many events one `DELETE` of a prune deletes at most.
///
/// A server answers a statement only once it has run it, so a prune that
/// deleted a big tree's events in one statement would be silent for as
/// long as the delete takes — minutes, for millions of events or gigabytes
/// of outputs on a slow disk — and could not be told from a server that
/// stopped answering. A prune deletes a tree's events in statements of at
/// most this many events and [`BYTES_PER_DELETE`] bytes of bodies (each
/// well under a second on a healthy server), and waits for each answer at
/// most the silence bound: a prune of any size goes on as long as the
/// server keeps answering, and fails once it is silent.
pub(crate) const EVENTS_PER_DELETE: i64 = 10_000;

/// The most bytes of event bodies one `DELETE` of a prune deletes (an
/// event larger than this goes alone): see [`EVENTS_PER_DELETE`].
pub(crate) const BYTES_PER_DELETE: i64 = 64 * 1024 * 1024;

/// Of a tree's next events (`(seq, bytes of its body)`, in order, at most
/// [`EVENTS_PER_DELETE`]), those one `DELETE` takes: the first, and those
/// after it while their bodies hold at most [`BYTES_PER_DELETE`] bytes.
pub(crate) fn delete_chunk(events: &[(i64, i64)]) -> &[(i64, i64)] {
    let mut bytes: i64 = 0;
    for (index, (_, size)) in events.iter().enumerate() {
        bytes = bytes.saturating_add((*size).max(0));
        if index > 0 && bytes > BYTES_PER_DELETE {
            return &events[..index];
        }
    }
    events
}

/// What differs between the two databases (every statement is shared).
pub(crate) struct Dialect {
    /// How a prune locks the runs.
    pub(crate) prune_lock: PruneLock,
    /// The database's clock, the time heartbeats are written with and
    /// judged by: an SQL expression of the time now, in microseconds since
    /// the Unix epoch (an integer). On PostgreSQL, the server's clock — one
    /// clock for every machine that uses the store; on SQLite, the clock of
    /// the machine whose process runs the statement (a SQLite store is one
    /// machine's: its processes share the file's memory-mapped WAL index,
    /// which no network file system shares).
    pub(crate) now_us: &'static str,
}

impl Dialect {
    /// `statement` reading this database's clock where it says [`NOW_US`].
    pub(crate) fn clocked(&self, statement: &str) -> String {
        statement.replace(NOW_US, self.now_us)
    }
}

/// SQLite: see [`SQLITE_PRUNE_LOCK`]; the clock is the machine's
/// (`unixepoch('subsec')`: milliseconds).
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Dialect = Dialect {
    prune_lock: SQLITE_PRUNE_LOCK,
    now_us: "CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
};

/// PostgreSQL: see [`POSTGRES_PRUNE_LOCK`]; the clock is the server's
/// (`clock_timestamp()`: the time as the statement reads it, not when its
/// transaction began).
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Dialect = Dialect {
    prune_lock: POSTGRES_PRUNE_LOCK,
    now_us: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
};

/// How a prune keeps other processes from changing the runs while it
/// chooses and deletes them: the transaction's `BEGIN`, then statements run
/// first in it. Otherwise a run chosen for deletion could be resumed (or
/// its chain continued) by another process between the choice and the
/// delete, and the running run would lose the history it continues.
pub(crate) struct PruneLock {
    pub(crate) begin: &'static str,
    pub(crate) then: &'static [&'static str],
}

/// SQLite: `BEGIN IMMEDIATE` takes the file's write lock before the
/// transaction reads anything (waiting up to the busy timeout).
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_PRUNE_LOCK: PruneLock = PruneLock {
    begin: "BEGIN IMMEDIATE",
    then: &[],
};

/// PostgreSQL: runs may be read, not written (a claim, a new run, a run's
/// end wait) until the prune commits.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_PRUNE_LOCK: PruneLock = PruneLock {
    begin: "BEGIN",
    then: &["LOCK TABLE runs IN EXCLUSIVE MODE"],
};

#[cfg(test)]
mod tests {
    use super::super::rows::EventRow;
    use super::*;

    fn event(bytes: usize) -> EventRow {
        EventRow {
            root: String::new(),
            run: String::new(),
            at_us: 0,
            kind: "attempt_finished",
            body: "x".repeat(bytes),
        }
    }

    #[test]
    fn inserts_are_bounded_by_count_and_by_bytes() {
        let small: Vec<EventRow> = (0..2500).map(|_| event(1)).collect();
        let sizes: Vec<usize> = insert_chunks(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let big = BYTES_PER_INSERT / 2 + 1;
        let large: Vec<EventRow> = (0..3).map(|_| event(big)).collect();
        let sizes: Vec<usize> = insert_chunks(&large).iter().map(|c| c.len()).collect();
        assert_eq!(
            sizes,
            [1, 1, 1],
            "two halves and a byte do not fit one insert"
        );
        let huge = vec![event(BYTES_PER_INSERT + 1)];
        assert_eq!(
            insert_chunks(&huge).len(),
            1,
            "an event larger than the bound goes alone"
        );
        assert!(insert_chunks(&[]).is_empty());
    }

    #[test]
    fn a_prunes_deletes_are_bounded_by_bytes_and_take_at_least_one_event() {
        let small: Vec<(i64, i64)> = (1..=5).map(|seq| (seq, 10)).collect();
        assert_eq!(delete_chunk(&small).len(), 5);
        let half = BYTES_PER_DELETE / 2;
        let big = [(1, half), (2, half), (3, 1), (4, 1)];
        assert_eq!(
            delete_chunk(&big),
            &big[..2],
            "two halves fit one delete, a byte more does not"
        );
        let huge = [(7, BYTES_PER_DELETE * 3), (8, 1)];
        assert_eq!(delete_chunk(&huge), &huge[..1], "a huge event goes alone");
        assert_eq!(delete_chunk(&[(1, i64::MAX), (2, i64::MAX)]).len(), 1);
        assert!(delete_chunk(&[]).is_empty());
    }
}
