//! [`PostgresJournal`]: runs in a PostgreSQL database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::backend::sql_backend;
use super::writer::{durable_journal_impl, DurableJournal};
use super::{migrate_error, store_error, Prune, RunSummary, StoreOptions};
use crate::orchestration::errors::Result;
use crate::orchestration::journal::RunId;

/// A durable [`Journal`](crate::orchestration::Journal) in a PostgreSQL
/// database (see [`store`](super)): for a team, or runs on several machines
/// that resume each other's runs. The same schema design and the same
/// statements as [`SqliteJournal`](super::SqliteJournal), so both stores
/// keep the same things.
///
/// ```no_run
/// use std::sync::Arc;
/// use claude_agent_sdk::orchestration::store::PostgresJournal;
/// use claude_agent_sdk::orchestration::{ExecutionConfig, ExecutionContext};
///
/// # async fn example() -> claude_agent_sdk::orchestration::Result<()> {
/// let journal = Arc::new(PostgresJournal::connect("postgres://localhost/runs").await?);
/// let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresJournal {
    journal: DurableJournal<PostgresBackend>,
}

#[derive(Debug)]
struct PostgresBackend {
    pool: PgPool,
}

sql_backend!(
    PostgresBackend,
    sqlx::Postgres,
    "the PostgreSQL journal",
    super::backend::POSTGRES_PRUNE_LOCK
);
durable_journal_impl!(PostgresJournal);

impl PostgresJournal {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// and brings its schema up to date.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the
    /// server cannot be reached (retryable) or the database was written by a
    /// newer version of this crate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// As [`connect`](Self::connect), with `options` (secrets to redact, a label).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self> {
        let shown = redact_password(url);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|error| store_error(&format!("connecting to {shown}"), &error))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| migrate_error(&shown, &error))?;
        Ok(Self {
            journal: DurableJournal::start(PostgresBackend { pool }, options),
        })
    }

    /// The newest `limit` top-level runs, newest first.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the database cannot be read.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        self.journal.runs(limit).await
    }

    /// Run `run`, if the journal has it.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the database cannot be read.
    pub async fn run(&self, run: RunId) -> Result<Option<RunSummary>> {
        self.journal.run(run).await
    }

    /// Deletes the finished top-level runs `which` selects, with the runs
    /// nested in them and all their events; returns how many it deleted.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the database cannot be written.
    pub async fn prune(&self, which: Prune) -> Result<u64> {
        self.journal.prune(which).await
    }
}

/// `url` without its password, for messages.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}
