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
mod columns;
mod errors;
mod owner;
mod prune;
mod rows;
mod schema;
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

pub use owner::STALE_AFTER;
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
