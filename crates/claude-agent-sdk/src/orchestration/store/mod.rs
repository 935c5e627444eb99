//! Durable journals: the events of runs in a database, so that a run that
//! stopped — its process killed, the machine restarted — can be
//! [resumed](mod@crate::orchestration::resume) from any process.
//!
//! Two stores share one schema design (`migrations/sqlite`,
//! `migrations/postgres`) and one writer:
//!
//! - `SqliteJournal` (feature `sqlite`): one file, WAL, no server — the
//!   default of the `orchestra` command.
//! - `PostgresJournal` (feature `postgres`): a PostgreSQL server, for a
//!   team or several machines.
//!
//! (Each is documented when its feature is on.)
//!
//! # What is stored, and how it grows
//! Each [`JournalEvent`](super::JournalEvent) is one row, appended and never
//! rewritten: an attempt's output is stored once, in the event that ends the
//! attempt, and nothing else is ever copied — the store grows with what the
//! runs produced, linearly in their length. Each run also has one row
//! (what it is, how it ended, its totals) for listing runs without reading
//! their events; it is written when the run starts and completed when it
//! ends. Reading a run takes one indexed query for its whole tree of nested
//! runs.
//!
//! # When an event is stored
//! [`append`](super::Journal::append) never waits: events go to a writer task
//! that stores them in batches, one transaction per batch (group commit:
//! many steps finishing at once share a transaction). A run commits each
//! step's end before the steps that depend on it start, and its last event
//! before it returns, so a resumed run finds every step that finished. If the
//! store fails (a server that went away, a full disk), the run stops starting
//! steps and fails with a retryable [`Store`](super::OrchestrationError::Store)
//! error; it can be resumed once the store is back.
//!
//! # Secrets
//! Values given to [`StoreOptions::with_secret`] are replaced by
//! [`REDACTED`] in everything stored, so no API key or password reaches the
//! database (a resumed run then reads the redacted text). They are replaced
//! in the strings of an event's JSON, not in its text, so a secret that
//! reads like JSON (`null`, digits) cannot make the event unreadable.
//!
//! # Pruning
//! A prune chooses and deletes its runs in one transaction that other
//! processes cannot write under, so a run another process resumes at that
//! moment is either kept or refused as gone — never deleted under the run
//! that continues it. Like every wait for the store, it is bounded: each of
//! its statements must be answered within 30 s, and a run's events are
//! deleted a bounded chunk at a time, so a big prune goes on while the
//! server answers and a silent server fails it (retryably, having deleted
//! nothing).
//!
//! # Which clock
//! Whether a run of another machine still runs is told by its heartbeat,
//! written and judged on the store's clock alone (a PostgreSQL server's:
//! see [`STALE_AFTER`]), never by comparing one machine's time with
//! another's.

mod backend;
mod rows;
mod silence;
mod sql;
mod writer;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
pub use postgres::{url_without_password, PostgresJournal};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteJournal;

use super::journal::RunId;

/// What a redacted secret reads as in a store.
pub const REDACTED: &str = "[redacted]";

/// How a store is opened.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Values never stored, each with what is stored in its place (see
    /// [`with_secret`](Self::with_secret)).
    pub secrets: Vec<(String, String)>,
    /// What the runs written through this journal are called in listings
    /// (a workflow file, a job name).
    pub label: Option<String>,
}

impl StoreOptions {
    /// Default options: no secrets, no label.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Never stores `value`: it is replaced by [`REDACTED`] wherever it
    /// appears. Values shorter than four characters are ignored (they would
    /// mangle ordinary text, and are no secrets).
    #[must_use]
    pub fn with_secret(self, value: impl Into<String>) -> Self {
        self.with_secret_as(value, REDACTED)
    }

    /// Never stores `value`: it is replaced by `replacement` (a reference
    /// such as `${API_KEY}`) wherever it appears. Values shorter than four
    /// characters are ignored.
    #[must_use]
    pub fn with_secret_as(
        mut self,
        value: impl Into<String>,
        replacement: impl Into<String>,
    ) -> Self {
        let value = value.into();
        if value.chars().count() >= 4 {
            self.secrets.push((value, replacement.into()));
        }
        self
    }

    /// Names the runs written through this journal in listings.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// How a run stands in a store: how the run itself ended (or that it has
/// not). A run that a resumed run continued keeps the status it ended with —
/// a paused run stays [`Paused`](Self::Paused) after its answers were given
/// and the resumed run finished — and names that run in
/// [`RunSummary::resumed_by`]: the runs still waiting for answers are the
/// paused ones whose `resumed_by` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Started and not ended, and its process is alive (or, on another
    /// machine, its heartbeat is fresh): running now.
    Running,
    /// Returned `Ok`.
    Succeeded,
    /// Returned an error.
    Failed,
    /// Cut short (cancelled, timed out, dropped).
    Interrupted,
    /// Stopped to wait for answers to its questions (still waiting unless
    /// [`RunSummary::resumed_by`] names the run that continued it).
    Paused,
    /// Started and never ended, and its process is gone: killed (`kill -9`,
    /// out of memory), crashed, or its machine stopped — on another machine,
    /// its heartbeat is [`STALE_AFTER`] old by the store's clock. Never stored: the run's row
    /// still says `running`, and a listing reads it as crashed once its
    /// owner is gone. It can be resumed, and pruned. (A run whose process id
    /// the system has since given to another process reads as running until
    /// that process ends too: a live process is never taken for dead.)
    Crashed,
}

impl RunStatus {
    /// The name stored in the database (a crashed run is stored as
    /// `running`: see [`Crashed`](Self::Crashed)).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Paused => "paused",
            Self::Crashed => "crashed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            "paused" => Self::Paused,
            _ => Self::Running,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run as a store lists it (a top-level run: the runs nested in it are
/// part of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run.
    pub id: RunId,
    /// The first run of its chain of resumes (itself when it resumes none).
    pub origin: RunId,
    /// The run it continues.
    pub resumes: Option<RunId>,
    /// The run that continues it.
    pub resumed_by: Option<RunId>,
    /// The run it forks, when it is a fork (a run of its own that starts
    /// from that run's history: see
    /// [`fork`](crate::orchestration::resume::fork)).
    pub forks: Option<RunId>,
    /// Its orchestrator's name.
    pub orchestrator: String,
    /// The label of the journal that wrote it ([`StoreOptions::with_label`]).
    pub label: Option<String>,
    /// How it stands: how the run itself ended, also when another run
    /// continued it (see [`RunStatus`] and [`resumed_by`](Self::resumed_by)).
    pub status: RunStatus,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// How many events it and its nested runs have.
    pub events: u64,
    /// The tokens its agents reported; the sum stops at `i64::MAX` (the
    /// largest count the databases hold) rather than overflow.
    pub tokens: u64,
    /// The cost its agents reported, in US dollars: a finite number, the sum
    /// stopping at [`f64::MAX`] rather than becoming infinite.
    pub cost_usd: f64,
}

/// Which runs a store's `prune` deletes: finished top-level
/// runs (with every run nested in them and all their events); a run still
/// running is never deleted, and a run is deleted only with its whole chain
/// of resumes — one that a kept or running run continues (which resuming
/// that run reads) stays, and so does the chain of a run a kept fork forks. A [crashed](RunStatus::Crashed) run — its process
/// gone without recording its end — counts as finished: it will never end
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prune {
    /// Those that started before this time.
    StartedBefore(DateTime<Utc>),
    /// All but the newest `n`.
    KeepNewest(usize),
}

/// A top-level run as a prune weighs it: one row of
/// [`TOP_LEVEL_RUNS`](sql::TOP_LEVEL_RUNS).
struct TopRun {
    id: String,
    /// The first run of its chain of resumes.
    origin: String,
    status: String,
    host: String,
    pid: i64,
    /// How old its heartbeat is, by the store's clock.
    heartbeat_age_us: Option<i64>,
    started_us: i64,
    /// The run it forks.
    forks: Option<String>,
}

impl TopRun {
    fn owner(&self) -> Owner<'_> {
        Owner {
            status: &self.status,
            host: &self.host,
            pid: self.pid,
            heartbeat_age_us: self.heartbeat_age_us,
            started_us: self.started_us,
        }
    }
}

/// The ids of the top-level runs `which` deletes, of every top-level run
/// `runs` (newest first).
///
/// A run whose row says `running` is a candidate once its owner is gone
/// (the check a resume makes, [`Owner::still_running`]): otherwise a run
/// whose process was killed would stay forever, and so would every run of
/// its chain of resumes. A run whose process is alive never is.
fn chosen_for_pruning(which: Prune, runs: &[TopRun]) -> Vec<String> {
    let finished = runs
        .iter()
        .filter(|run| !run.owner().still_running(run_id(&run.id)));
    let candidates: Vec<String> = match which {
        Prune::StartedBefore(at) => {
            let before = micros(at);
            finished
                .filter(|run| run.started_us < before)
                .map(|run| run.id.clone())
                .collect()
        }
        // `runs` is newest first: the finished ones after the first `keep`.
        Prune::KeepNewest(keep) => finished.skip(keep).map(|run| run.id.clone()).collect(),
    };
    let chains: Vec<ChainLink> = runs
        .iter()
        .map(|run| ChainLink {
            id: run.id.clone(),
            origin: run.origin.clone(),
            forks: run.forks.clone(),
        })
        .collect();
    whole_chains(candidates, &chains)
}

/// A top-level run as it links to others: the first run of its chain of
/// resumes, and the run it forks.
struct ChainLink {
    id: String,
    origin: String,
    forks: Option<String>,
}

/// The runs of `candidates` (top-level run ids) whose whole chain of
/// resumes is among them, and that no kept run's history needs: a chain
/// with a kept run is kept, and so is the chain of the run a kept chain's
/// fork forks (and so on back, in a loop).
fn whole_chains(candidates: Vec<String>, runs: &[ChainLink]) -> Vec<String> {
    use std::collections::{HashMap, HashSet};
    let doomed: HashSet<&str> = candidates.iter().map(String::as_str).collect();
    let origin_of: HashMap<&str, &str> = runs
        .iter()
        .map(|run| (run.id.as_str(), run.origin.as_str()))
        .collect();
    let mut kept_chains: HashSet<&str> = runs
        .iter()
        .filter(|run| !doomed.contains(run.id.as_str()))
        .map(|run| run.origin.as_str())
        .collect();
    loop {
        let needed: Vec<&str> = runs
            .iter()
            .filter(|run| kept_chains.contains(run.origin.as_str()))
            .filter_map(|run| origin_of.get(run.forks.as_deref()?).copied())
            .filter(|origin| !kept_chains.contains(origin))
            .collect();
        if needed.is_empty() {
            break;
        }
        kept_chains.extend(needed);
    }
    runs.iter()
        .filter(|run| {
            doomed.contains(run.id.as_str()) && !kept_chains.contains(run.origin.as_str())
        })
        .map(|run| run.id.clone())
        .collect()
}

/// Microseconds since the Unix epoch.
fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A token count stored as a REAL — an SQLite sum that overflowed, written
/// by a version whose sums did not saturate — as the count it stands for:
/// `as` saturates at `i64::MAX` (and reads NaN as 0).
#[allow(clippy::cast_possible_truncation)]
fn count_from_real(count: f64) -> i64 {
    count as i64
}

/// A stored cost as a listing gives it: finite (a sum that became infinite,
/// written by a version whose sums did not saturate, reads as the largest
/// cost), so that it prints as a number and serializes as one (JSON has no
/// infinity).
fn finite_cost(cost: f64) -> f64 {
    if cost.is_nan() {
        0.0
    } else {
        cost.clamp(-f64::MAX, f64::MAX)
    }
}

/// The id of a run in a row; a row the store did not write reads as a fresh id.
fn run_id(text: &str) -> RunId {
    text.parse().unwrap_or_default()
}

/// This machine's name, for telling whether a running run's process is ours.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether process `pid` of this machine is alive.
fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// How often a running run's process writes its heartbeat.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How old a running run's heartbeat must be before another machine may
/// take the run for dead and resume it. The age is measured on one clock,
/// the store's — a PostgreSQL server's, whatever the clocks of the machines
/// that write and read the run say (a SQLite store's is its machine's):
/// the heartbeat is the store's time when it was written, and its age the
/// store's time when it is read minus it.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

/// A run row's owner, checked before the run is resumed or pruned, and when
/// it is listed.
struct Owner<'a> {
    status: &'a str,
    host: &'a str,
    pid: i64,
    /// How long ago its heartbeat was written, by the store's clock: the
    /// database computes it, in the query that reads the row, from its own
    /// time and the heartbeat (written with its own time too; see
    /// `sql::Dialect::now_us`). No machine's clock takes part.
    heartbeat_age_us: Option<i64>,
    /// When the run started (its machine's clock: compared only with the
    /// start of a process of that machine).
    started_us: i64,
}

impl Owner<'_> {
    /// How run `run` stands now: as its row says, but a `running` row whose
    /// owner is gone (see [`still_running`](Self::still_running)) is
    /// [crashed](RunStatus::Crashed).
    fn status(&self, run: RunId) -> RunStatus {
        // Only a row that says `running`: one with a status of a newer
        // version reads as before.
        if self.status == RunStatus::Running.as_str() && !self.still_running(run) {
            return RunStatus::Crashed;
        }
        RunStatus::parse(self.status)
    }

    /// Whether run `run` is still running, and so must not be resumed: in
    /// this process, when it started and has not finished (one whose end
    /// never reached the store is not); on this machine, when its process is
    /// alive — and is the process that started it, not a later one given
    /// the same process id; elsewhere, when its heartbeat is younger than
    /// [`STALE_AFTER`] by the store's clock. (A heartbeat from the store's
    /// future — the server's clock set back, or a row written by a version
    /// that wrote its machine's time — is fresh: a live run is never taken
    /// for dead.)
    fn still_running(&self, run: RunId) -> bool {
        if self.status != RunStatus::Running.as_str() {
            return false;
        }
        if self.host == host_name() {
            if self.pid == i64::from(std::process::id()) {
                return writer::runs_here(run);
            }
            return process_alive(self.pid) && !self.pid_reused();
        }
        let stale = i64::try_from(STALE_AFTER.as_micros()).unwrap_or(i64::MAX);
        self.heartbeat_age_us.is_some_and(|age| age < stale)
    }
}

impl Owner<'_> {
    /// Whether the process holding the run's process id now started after
    /// the run did: the run's own process is gone, and its id was given to
    /// another (a process starts its runs, never the other way round). The
    /// system tells start times to about a second: a start within
    /// [`PID_REUSE_SLACK_US`] of the run's is taken for its own.
    fn pid_reused(&self) -> bool {
        process_started_us(self.pid)
            .is_some_and(|started| started > self.started_us.saturating_add(PID_REUSE_SLACK_US))
    }
}

/// See [`Owner::pid_reused`].
const PID_REUSE_SLACK_US: i64 = 5_000_000;

/// When process `pid` of this machine started, in microseconds since the
/// epoch: from Linux's `/proc` (`None` elsewhere, or when it cannot tell).
fn process_started_us(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, `starttime`, in clock ticks since boot; counted after the
    // command's name, which may hold spaces and parentheses (field 3 is the
    // first after it).
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: i64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let booted_s: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: `sysconf` only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // `c_long` is narrower than `i64` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let ticks_per_second = i64::from(ticks_per_second);
    if ticks_per_second <= 0 {
        return None;
    }
    let since_boot_us = ticks.checked_mul(1_000_000)? / ticks_per_second;
    booted_s.checked_mul(1_000_000)?.checked_add(since_boot_us)
}

/// A database error as a [`Store`](super::OrchestrationError::Store) error:
/// retryable when the database may come back (a lost connection, a busy
/// file, a full disk), permanent otherwise (a corrupt file, a schema from
/// elsewhere).
fn store_error(doing: &str, error: &sqlx::Error) -> super::OrchestrationError {
    let retryable = match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => may_come_back(database.as_ref()),
        _ => false,
    };
    super::OrchestrationError::store(format!("{doing}: {error}"), retryable)
}

/// Whether database error `error` ends once the database is back or has
/// room again: on PostgreSQL, connection exceptions (`08…`), shutdowns
/// (`57P…`) and insufficient resources (`53…`: a full disk, no memory, too
/// many connections); on SQLite, a busy or locked file and a full disk.
fn may_come_back(error: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    #[cfg(feature = "sqlite")]
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return sqlite_code(&code)
            .is_some_and(|code| matches!(code, SQLITE_BUSY | SQLITE_LOCKED | SQLITE_FULL));
    }
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
}

/// SQLite's primary result codes this module acts on.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY: i32 = 5;
#[cfg(feature = "sqlite")]
const SQLITE_LOCKED: i32 = 6;
#[cfg(feature = "sqlite")]
const SQLITE_READONLY: i32 = 8;
#[cfg(feature = "sqlite")]
const SQLITE_FULL: i32 = 13;
#[cfg(feature = "sqlite")]
const SQLITE_CANTOPEN: i32 = 14;

/// Whether `error` is SQLite's result `code` (extended codes included).
#[cfg(feature = "sqlite")]
fn is_sqlite_code(error: &sqlx::Error, code: i32) -> bool {
    match error {
        sqlx::Error::Database(database) => database
            .code()
            .and_then(|found| sqlite_code(&found))
            .is_some_and(|found| found == code),
        _ => false,
    }
}

/// The primary result code of SQLite's (extended) code `code`: an extended
/// code (`SQLITE_BUSY_SNAPSHOT`, 517) keeps its primary code in its low byte.
#[cfg(feature = "sqlite")]
fn sqlite_code(code: &str) -> Option<i32> {
    code.parse::<i32>().ok().map(|code| code & 0xff)
}

/// The versions of the migrations a store's schema has had applied.
const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// The error for a database or file `shown` without the journal's tables.
fn not_a_store(shown: &str) -> super::OrchestrationError {
    super::OrchestrationError::store(
        format!("{shown} is not a run store (it has no run tables)"),
        false,
    )
}

/// Checks that a store whose schema has had migrations `applied` has
/// exactly this version's schema, `migrations`: a store opened read-only
/// cannot be brought up to date (an older one), and a newer one is refused
/// as opening it to write refuses it.
fn check_versions(
    applied: &[i64],
    migrations: &sqlx::migrate::Migrator,
    shown: &str,
) -> super::Result<()> {
    let known: Vec<i64> = migrations
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| migration.version)
        .collect();
    if let Some(newer) = applied.iter().find(|version| !known.contains(version)) {
        return Err(migrate_error(
            shown,
            &sqlx::migrate::MigrateError::VersionMissing(*newer),
        ));
    }
    if known.iter().any(|version| !applied.contains(version)) {
        return Err(super::OrchestrationError::store(
            format!(
                "{shown} was written by an older version of claude-agent-sdk: open it once \
                 where it can be written, to bring it up to date, before reading it read-only"
            ),
            false,
        ));
    }
    Ok(())
}

/// A migration error in words a user can act on.
fn migrate_error(store: &str, error: &sqlx::migrate::MigrateError) -> super::OrchestrationError {
    use sqlx::migrate::MigrateError;
    match error {
        MigrateError::VersionMissing(version) | MigrateError::VersionTooNew(version, _) => {
            super::OrchestrationError::store(
                format!(
                    "{store} was written by a newer version of claude-agent-sdk (its schema has \
                     migration {version}, which this version does not know): upgrade, or use \
                     another store"
                ),
                false,
            )
        }
        MigrateError::Execute(error) => store_error(&format!("preparing {store}"), error),
        other => super::OrchestrationError::store(format!("preparing {store}: {other}"), false),
    }
}
