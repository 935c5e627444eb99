//! The SQL both stores run: one schema design, one set of statements
//! (`$1` placeholders, which SQLite and PostgreSQL both read), written once
//! here and instantiated for each database by [`sql_backend!`]; what differs
//! between the two databases is a [`Dialect`].
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

/// Implements [`Backend`](super::writer::Backend) and the listing methods
/// for `$backend`, a struct with a `pool: sqlx::Pool<$db>` field; `$dialect`
/// is its database's [`Dialect`].
macro_rules! sql_backend {
    ($backend:ty, $db:ty, $name:literal, $dialect:expr) => {
        #[async_trait::async_trait]
        impl $crate::orchestration::store::writer::Backend for $backend {
            async fn write(
                &self,
                batch: &$crate::orchestration::store::rows::Batch,
            ) -> $crate::orchestration::Result<()> {
                use $crate::orchestration::store::backend as sql;
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::store_error(concat!("writing to ", $name), &error)
                };
                let dialect: &sql::Dialect = &$dialect;
                let mut tx = self.pool.begin().await.map_err(fail)?;
                for run in &batch.runs {
                    sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::INSERT_RUN)))
                        .bind(&run.id)
                        .bind(&run.root)
                        .bind(&run.origin)
                        .bind(&run.parent)
                        .bind(&run.resumes)
                        .bind(&run.orchestrator)
                        .bind(&run.label)
                        .bind(run.started_us)
                        .bind(&run.host)
                        .bind(run.pid)
                        .bind(&run.forks)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }
                for chunk in sql::insert_chunks(&batch.events) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(sql::INSERT_EVENTS);
                    insert.push_values(chunk, |mut row, event| {
                        row.push_bind(&event.root)
                            .push_bind(&event.run)
                            .push_bind(event.at_us)
                            .push_bind(event.kind)
                            .push_bind(&event.body);
                    });
                    insert.build().execute(&mut *tx).await.map_err(fail)?;
                }
                for end in &batch.ends {
                    sqlx::query(sql::END_RUN)
                        .bind(&end.id)
                        .bind(end.status)
                        .bind(end.finished_us)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }
                for (root, totals) in &batch.totals {
                    sqlx::query(sql::ADD_TOTALS)
                        .bind(root)
                        .bind(totals.events)
                        .bind(totals.tokens)
                        .bind(totals.cost_usd)
                        .bind(sql::MAX_TOKENS)
                        .bind(sql::MAX_COST_USD)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }
                tx.commit().await.map_err(fail)
            }

            async fn read_trees(
                &self,
                runs: &[$crate::orchestration::RunId],
            ) -> $crate::orchestration::Result<Vec<$crate::orchestration::JournalEvent>> {
                use sqlx::Row as _;
                use $crate::orchestration::store::backend as sql;
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::store_error(
                        concat!("reading from ", $name),
                        &error,
                    )
                };
                use $crate::orchestration::store::silence;
                let mut roots: Vec<String> = Vec::new();
                for run in runs {
                    let root: Option<String> = silence::answered(
                        async {
                            sqlx::query_scalar(sql::ROOT_OF)
                                .bind(run.to_string())
                                .fetch_optional(&self.pool)
                                .await
                                .map_err(fail)
                        },
                        0,
                    )
                    .await?;
                    if let Some(root) = root {
                        if !roots.contains(&root) {
                            roots.push(root);
                        }
                    }
                }
                let mut events = Vec::new();
                for root in &roots {
                    // Row by row: a long history on a slow link is read
                    // as long as rows keep coming; a silent store is not
                    // waited for past the bound.
                    let mut rows = sqlx::query(sql::TREE_EVENTS).bind(root).fetch(&self.pool);
                    while let Some(row) = silence::next_row(&mut rows, fail).await? {
                        let run: String = row.try_get(0).map_err(fail)?;
                        let at_us: i64 = row.try_get(1).map_err(fail)?;
                        let body: String = row.try_get(2).map_err(fail)?;
                        events.push($crate::orchestration::store::rows::decode(
                            &run, at_us, &body,
                        )?);
                    }
                }
                Ok(events)
            }

            async fn claim(
                &self,
                run: $crate::orchestration::RunId,
                by: $crate::orchestration::RunId,
            ) -> $crate::orchestration::Result<
                std::result::Result<$crate::orchestration::RunId, $crate::orchestration::RunId>,
            > {
                use sqlx::Row as _;
                use $crate::orchestration::store::backend as sql;
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::store_error(
                        concat!("claiming a run in ", $name),
                        &error,
                    )
                };
                let dialect: &sql::Dialect = &$dialect;
                let info = sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::CLAIM_INFO)))
                    .bind(run.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(fail)?;
                let Some(info) = info else {
                    return Err($crate::orchestration::OrchestrationError::InvalidConfig(
                        format!(concat!("run {} is not in ", $name), run),
                    ));
                };
                let origin: String = info.try_get(0).map_err(fail)?;
                let resumed_by: Option<String> = info.try_get(1).map_err(fail)?;
                let status: String = info.try_get(2).map_err(fail)?;
                let host: String = info.try_get(3).map_err(fail)?;
                let pid: i64 = info.try_get(4).map_err(fail)?;
                let heartbeat_age_us: Option<i64> = info.try_get(5).map_err(fail)?;
                let started_us: i64 = info.try_get(6).map_err(fail)?;
                let orchestrator: String = info.try_get(7).map_err(fail)?;
                let label: Option<String> = info.try_get(8).map_err(fail)?;
                // A run that claimed it and never started, in a process
                // that is gone (killed, or its store failed, between the
                // claim and the run's start), holds nothing: its claim is
                // taken over, or no run could ever continue this one.
                if let Some(other) = &resumed_by {
                    if !self.never_started(other).await.map_err(fail)? {
                        return Ok(Err($crate::orchestration::store::run_id(other)));
                    }
                }
                let owner = $crate::orchestration::store::Owner {
                    status: &status,
                    host: &host,
                    pid,
                    heartbeat_age_us,
                    started_us,
                };
                if owner.still_running(run) {
                    return Err($crate::orchestration::OrchestrationError::InvalidConfig(
                        format!(
                            "run {run} is still running (process {pid} on {host}); a run \
                             whose process died can be resumed once its heartbeat is {} s old",
                            $crate::orchestration::store::STALE_AFTER.as_secs()
                        ),
                    ));
                }
                // The claim and the claiming run's row, in one transaction.
                let mut tx = self.pool.begin().await.map_err(fail)?;
                let claim = match &resumed_by {
                    None => sqlx::query(sql::CLAIM)
                        .bind(run.to_string())
                        .bind(by.to_string()),
                    Some(other) => sqlx::query(sql::TAKE_OVER_CLAIM)
                        .bind(run.to_string())
                        .bind(by.to_string())
                        .bind(other.clone()),
                };
                let claimed = claim.execute(&mut *tx).await.map_err(fail)?;
                if claimed.rows_affected() == 1 {
                    if let Some(other) = &resumed_by {
                        sqlx::query(sql::ABANDONED_CLAIMER)
                            .bind(other)
                            .execute(&mut *tx)
                            .await
                            .map_err(fail)?;
                    }
                    let now = $crate::orchestration::store::micros(chrono::Utc::now());
                    sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::INSERT_CLAIMER)))
                        .bind(by.to_string())
                        .bind(&origin)
                        .bind(run.to_string())
                        .bind(orchestrator)
                        .bind(label)
                        .bind(now)
                        .bind($crate::orchestration::store::host_name())
                        .bind(i64::from(std::process::id()))
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                    tx.commit().await.map_err(fail)?;
                    return Ok(Ok($crate::orchestration::store::run_id(&origin)));
                }
                tx.rollback().await.map_err(fail)?;
                // Another process claimed it between the two statements, or
                // pruned it.
                let other: Option<Option<String>> =
                    sqlx::query_scalar("SELECT resumed_by FROM runs WHERE id = $1")
                        .bind(run.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(fail)?;
                match other {
                    Some(other) => {
                        Ok(Err(other.map_or(by, |other| {
                            $crate::orchestration::store::run_id(&other)
                        })))
                    }
                    None => Err($crate::orchestration::OrchestrationError::InvalidConfig(
                        format!(concat!("run {} is not in ", $name, " (pruned)"), run),
                    )),
                }
            }

            async fn heartbeat(
                &self,
                runs: &[$crate::orchestration::RunId],
            ) -> $crate::orchestration::Result<()> {
                use $crate::orchestration::store::backend as sql;
                let dialect: &sql::Dialect = &$dialect;
                let statement = dialect.clocked(sql::HEARTBEAT);
                for run in runs {
                    sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                        .bind(run.to_string())
                        .execute(&self.pool)
                        .await
                        .map_err(|error| {
                            $crate::orchestration::store::store_error(
                                concat!("writing a heartbeat to ", $name),
                                &error,
                            )
                        })?;
                }
                Ok(())
            }

            async fn summaries(
                &self,
                filter: &str,
                bind: Option<String>,
                limit: usize,
            ) -> $crate::orchestration::Result<Vec<$crate::orchestration::store::RunSummary>>
            {
                use sqlx::Row as _;
                use $crate::orchestration::store::{
                    backend as sql, count_from_real, finite_cost, from_micros, run_id, Owner,
                };
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::store_error(
                        concat!("listing runs in ", $name),
                        &error,
                    )
                };
                let dialect: &sql::Dialect = &$dialect;
                let text = format!(
                    "{} {filter} ORDER BY started_us DESC, id DESC LIMIT {}",
                    dialect.clocked(sql::SUMMARY),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                if let Some(value) = bind {
                    query = query.bind(value);
                }
                let rows = query.fetch_all(&self.pool).await.map_err(fail)?;
                let mut summaries = Vec::with_capacity(rows.len());
                for row in rows {
                    let id: String = row.try_get(0).map_err(fail)?;
                    let origin: String = row.try_get(1).map_err(fail)?;
                    let resumes: Option<String> = row.try_get(2).map_err(fail)?;
                    let resumed_by: Option<String> = row.try_get(3).map_err(fail)?;
                    let status: String = row.try_get(6).map_err(fail)?;
                    let started: i64 = row.try_get(7).map_err(fail)?;
                    let finished: Option<i64> = row.try_get(8).map_err(fail)?;
                    let events: i64 = row.try_get(9).map_err(fail)?;
                    // A REAL here is an SQLite sum that overflowed, written
                    // before sums saturated (see `ADD_TOTALS`).
                    let tokens: i64 = match row.try_get::<i64, _>(10) {
                        Ok(tokens) => tokens,
                        Err(error) => row
                            .try_get::<f64, _>(10)
                            .map(count_from_real)
                            .map_err(|_| fail(error))?,
                    };
                    let cost_usd: f64 = row.try_get(11).map_err(fail)?;
                    let host: String = row.try_get(12).map_err(fail)?;
                    let pid: i64 = row.try_get(13).map_err(fail)?;
                    let heartbeat_age_us: Option<i64> = row.try_get(14).map_err(fail)?;
                    let forks: Option<String> = row.try_get(15).map_err(fail)?;
                    // A row that says `running` whose process is gone is a
                    // crashed run, not a running one.
                    let owner = Owner {
                        status: &status,
                        host: &host,
                        pid,
                        heartbeat_age_us,
                        started_us: started,
                    };
                    let id = run_id(&id);
                    summaries.push($crate::orchestration::store::RunSummary {
                        id,
                        origin: run_id(&origin),
                        resumes: resumes.as_deref().map(run_id),
                        resumed_by: resumed_by.as_deref().map(run_id),
                        forks: forks.as_deref().map(run_id),
                        orchestrator: row.try_get(4).map_err(fail)?,
                        label: row.try_get(5).map_err(fail)?,
                        status: owner.status(id),
                        started: from_micros(started),
                        finished: finished.map(from_micros),
                        events: u64::try_from(events).unwrap_or(0),
                        tokens: u64::try_from(tokens).unwrap_or(0),
                        cost_usd: finite_cost(cost_usd),
                    });
                }
                Ok(summaries)
            }

            async fn prune_runs(
                &self,
                which: $crate::orchestration::store::Prune,
            ) -> $crate::orchestration::Result<u64> {
                use sqlx::Row as _;
                use $crate::orchestration::store::{backend as sql, silence, TopRun};
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::store_error(concat!("pruning ", $name), &error)
                };
                let dialect: &sql::Dialect = &$dialect;
                // Chosen and deleted in one transaction that other
                // processes cannot write under (see `PruneLock`). Every
                // wait for the store is bounded (see `silence`): each
                // statement, each row read, and each chunk of a tree's
                // events deleted (see `EVENTS_PER_DELETE`) — a big prune
                // goes on as long as the store answers.
                let lock = &dialect.prune_lock;
                let mut tx = silence::answered(
                    async { self.pool.begin_with(lock.begin).await.map_err(fail) },
                    0,
                )
                .await?;
                for statement in lock.then {
                    silence::answered(
                        async {
                            sqlx::query(*statement)
                                .execute(&mut *tx)
                                .await
                                .map_err(fail)
                        },
                        0,
                    )
                    .await?;
                }
                let mut runs = Vec::new();
                {
                    let choosing = dialect.clocked(sql::TOP_LEVEL_RUNS);
                    let mut rows =
                        sqlx::query(sqlx::AssertSqlSafe(choosing.as_str())).fetch(&mut *tx);
                    while let Some(row) = silence::next_row(&mut rows, fail).await? {
                        runs.push(TopRun {
                            id: row.try_get(0).map_err(fail)?,
                            origin: row.try_get(1).map_err(fail)?,
                            status: row.try_get(2).map_err(fail)?,
                            host: row.try_get(3).map_err(fail)?,
                            pid: row.try_get(4).map_err(fail)?,
                            heartbeat_age_us: row.try_get(5).map_err(fail)?,
                            started_us: row.try_get(6).map_err(fail)?,
                            forks: row.try_get(7).map_err(fail)?,
                        });
                    }
                }
                // The finished runs `which` selects (a crashed one counts as
                // finished, a live one never does), in whole chains of
                // resumes only: a run that a kept (or running) run
                // continues, directly or not, is what resuming the kept one
                // reads.
                let doomed = $crate::orchestration::store::chosen_for_pruning(which, &runs);
                for root in &doomed {
                    let mut after = i64::MIN;
                    loop {
                        let mut next: Vec<(i64, i64)> = Vec::new();
                        {
                            let mut rows = sqlx::query(sql::EVENT_SIZES)
                                .bind(root)
                                .bind(after)
                                .bind(sql::EVENTS_PER_DELETE)
                                .fetch(&mut *tx);
                            while let Some(row) = silence::next_row(&mut rows, fail).await? {
                                next.push((
                                    row.try_get(0).map_err(fail)?,
                                    row.try_get::<Option<i64>, _>(1).map_err(fail)?.unwrap_or(0),
                                ));
                            }
                        }
                        let chunk = sql::delete_chunk(&next);
                        let Some(&(last, _)) = chunk.last() else {
                            break;
                        };
                        silence::answered(
                            async {
                                sqlx::query(sql::DELETE_EVENTS)
                                    .bind(root)
                                    .bind(after)
                                    .bind(last)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(fail)
                            },
                            0,
                        )
                        .await?;
                        let all = chunk.len() == next.len()
                            && i64::try_from(next.len()).unwrap_or(i64::MAX)
                                < sql::EVENTS_PER_DELETE;
                        if all {
                            break;
                        }
                        after = last;
                    }
                    silence::answered(
                        async {
                            sqlx::query(sql::DELETE_RUNS)
                                .bind(root)
                                .execute(&mut *tx)
                                .await
                                .map_err(fail)
                        },
                        0,
                    )
                    .await?;
                }
                silence::answered(async { tx.commit().await.map_err(fail) }, 0).await?;
                Ok(doomed.len() as u64)
            }
        }

        impl $backend {
            /// Whether run `claimer`, which claimed a run, never started
            /// and never will: none of its events was stored and its
            /// process is gone (see `Owner::still_running`). A claimer the
            /// store has no row of (a claim made before claims wrote one)
            /// cannot be told apart from a live one: it is not.
            async fn never_started(&self, claimer: &str) -> std::result::Result<bool, sqlx::Error> {
                use sqlx::Row as _;
                use $crate::orchestration::store::backend as sql;
                let dialect: &sql::Dialect = &$dialect;
                let Some(info) =
                    sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::CLAIMER_INFO)))
                        .bind(claimer)
                        .fetch_optional(&self.pool)
                        .await?
                else {
                    return Ok(false);
                };
                let status: String = info.try_get(0)?;
                let host: String = info.try_get(1)?;
                let pid: i64 = info.try_get(2)?;
                let heartbeat_age_us: Option<i64> = info.try_get(3)?;
                let started_us: i64 = info.try_get(4)?;
                let events: i64 = info.try_get(5)?;
                let owner = $crate::orchestration::store::Owner {
                    status: &status,
                    host: &host,
                    pid,
                    heartbeat_age_us,
                    started_us,
                };
                Ok(events == 0
                    && !owner.still_running($crate::orchestration::store::run_id(claimer)))
            }
        }
    };
}
pub(crate) use sql_backend;

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
