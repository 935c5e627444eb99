//! [`PostgresJournal`]: runs in a PostgreSQL database.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::backend::sql_backend;
use super::errors::store_error;
use super::schema::migrate_error;
use super::writer::{durable_journal_impl, DurableJournal};
use super::{Prune, RunSummary, StoreOptions};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::journal::RunId;

/// The schema's migrations, in `migrations/postgres`.
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A durable [`Journal`](crate::orchestration::Journal) in a PostgreSQL
/// database (see [`store`](super)): for a team, or runs on several machines
/// that resume each other's runs. The same schema design and the same
/// statements as `SqliteJournal` (feature `sqlite`), so both stores
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
    super::sql::POSTGRES
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
        let shown = url_without_password(url);
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|error| store_error(&format!("connecting to {shown}"), &error))?;
        let pool = Self::pool(connect, &shown).await?;
        MIGRATIONS
            .run(&pool)
            .await
            .map_err(|error| migrate_error(&shown, &error))?;
        Ok(Self {
            journal: DurableJournal::start(PostgresBackend { pool }, options),
        })
    }

    /// Connects to the database at `url` for reading only: to list and read
    /// the runs as a role that may not write them (a dashboard's, an
    /// analyst's). Nothing is set up or changed — every transaction is
    /// read-only, whatever the role may do — so the database must be up to
    /// date (the first [`connect`](Self::connect) that may write it brings
    /// a database an older version wrote up to date). Appending to it
    /// fails: a run under it fails at its first event with a `Store` error.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the
    /// server cannot be reached (retryable), the role may not read the
    /// journal's tables, the database has none, or its schema is older or
    /// newer than this version's.
    pub async fn connect_read_only(url: &str) -> Result<Self> {
        let shown = url_without_password(url);
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|error| store_error(&format!("connecting to {shown}"), &error))?;
        let connect = connect.options([("default_transaction_read_only", "on")]);
        let pool = Self::pool(connect, &shown).await?;
        let applied = sqlx::query_scalar(super::schema::APPLIED_MIGRATIONS)
            .fetch_all(&pool)
            .await
            .map_err(|error| match &error {
                // 42P01: undefined_table.
                sqlx::Error::Database(database) if database.code().as_deref() == Some("42P01") => {
                    super::schema::not_a_store(&shown)
                }
                _ => store_error(&format!("reading {shown}"), &error),
            })?;
        super::schema::check_versions(&applied, &MIGRATIONS, &shown)?;
        Ok(Self {
            journal: DurableJournal::start(PostgresBackend { pool }, StoreOptions::default()),
        })
    }

    /// A pool of connections to `connect` (`shown` in messages).
    async fn pool(connect: PgConnectOptions, shown: &str) -> Result<PgPool> {
        // One connection first: a pool retries a refused connection until its
        // acquire timeout and then reports only that it timed out.
        let first = async {
            let connection = PgConnection::connect_with(&connect).await?;
            connection.close().await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, first).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(store_error(&format!("connecting to {shown}"), &error)),
            Err(_) => {
                let message = format!(
                    "connecting to {shown}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                );
                return Err(OrchestrationError::store(message, true));
            }
        }
        PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(connect)
            .await
            .map_err(|error| store_error(&format!("connecting to {shown}"), &error))
    }

    /// The newest `limit` top-level runs, newest first.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the database cannot be read.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        self.journal.runs(limit).await
    }

    /// The newest `limit` top-level runs whose id starts with `prefix`
    /// (hexadecimal digits, as `orchestra` takes an id's start).
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the database cannot be read.
    pub async fn runs_starting_with(&self, prefix: &str, limit: usize) -> Result<Vec<RunSummary>> {
        self.journal.runs_starting_with(prefix, limit).await
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

    /// Writes every event appended so far, then closes the connections to
    /// the database, waiting for those in use to be given back. The journal
    /// can then be read or written no more (its calls fail with `Store`
    /// errors); call it when a process is done with the store.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the
    /// last events could not be written (the connections are closed all
    /// the same).
    pub async fn close(&self) -> Result<()> {
        self.journal.close().await
    }
}

/// A database URL as messages may show it: without the password of its
/// user information (split at the last `@`, so a password holding an `@`
/// is cut whole) nor any `password` parameter of its query.
#[must_use]
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (address, query) = match rest.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (rest, None),
    };
    let address = match address.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => address.to_owned(),
    };
    let kept: Vec<&str> = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !name.to_ascii_lowercase().contains("password")
        })
        .collect();
    if kept.is_empty() {
        format!("{scheme}://{address}")
    } else {
        format!("{scheme}://{address}?{}", kept.join("&"))
    }
}
