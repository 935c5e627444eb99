//! [`SqliteJournal`]: runs in one SQLite file.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::backend::sql_backend;
use super::errors::store_error;
use super::schema::migrate_error;
use super::writer::{durable_journal_impl, DurableJournal};
use super::{Prune, RunSummary, StoreOptions};
use crate::orchestration::errors::Result;
use crate::orchestration::journal::RunId;

/// A durable [`Journal`](crate::orchestration::Journal) in a SQLite file
/// (see [`store`](super)): no server, one file (with its `-wal` and `-shm`
/// companions while open), safe to share between processes on one machine.
///
/// Every commit is synced to disk (`synchronous = FULL` in WAL mode): a run
/// survives the machine losing power, not only its process dying.
///
/// ```no_run
/// use std::sync::Arc;
/// use claude_agent_sdk::orchestration::store::SqliteJournal;
/// use claude_agent_sdk::orchestration::{ExecutionConfig, ExecutionContext};
///
/// # async fn example() -> claude_agent_sdk::orchestration::Result<()> {
/// let journal = Arc::new(SqliteJournal::open("runs.db").await?);
/// let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
/// // … run under `ctx`; after a crash, `resume(&orchestrator, agents, run_id, &ctx)`.
/// for run in journal.runs(20).await? {
///     println!("{} {} {}", run.id, run.orchestrator, run.status);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqliteJournal {
    journal: DurableJournal<SqliteBackend>,
    path: PathBuf,
}

/// An exclusive lock on `FILE.lock`, beside a journal's file, held while a
/// process sets the file up; released when dropped (or when the process dies).
struct SetupLock {
    /// The locked file: closing it releases the lock.
    _file: std::fs::File,
}

impl SetupLock {
    async fn acquire(path: &Path) -> Result<Self> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| {
                crate::orchestration::OrchestrationError::store(
                    format!("cannot open {}: {error}", lock_path.display()),
                    false,
                )
            })?;
        let waiting_since = std::time::Instant::now();
        loop {
            use std::os::fd::AsRawFd as _;
            // SAFETY: flock on a file descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Self { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::WouldBlock {
                return Err(crate::orchestration::OrchestrationError::store(
                    format!("cannot lock {}: {error}", lock_path.display()),
                    false,
                ));
            }
            if waiting_since.elapsed() > Duration::from_secs(60) {
                return Err(crate::orchestration::OrchestrationError::store(
                    format!(
                        "{} has been set up by another process for a minute: is one stuck?",
                        path.display()
                    ),
                    true,
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Why setting up a file failed.
enum Setup {
    Open(sqlx::Error),
    Migrate(sqlx::migrate::MigrateError),
}

impl Setup {
    /// Whether another process busy with the same file explains it (the
    /// setup lock keeps processes of this crate from migrating it at once:
    /// a table that "already exists" is another application's, for good).
    fn is_transient_setup(&self) -> bool {
        let busy = |error: &sqlx::Error| {
            super::errors::is_sqlite_code(error, super::errors::SQLITE_BUSY)
                || super::errors::is_sqlite_code(error, super::errors::SQLITE_LOCKED)
        };
        match self {
            Self::Open(error) => busy(error),
            Self::Migrate(
                sqlx::migrate::MigrateError::Execute(error)
                | sqlx::migrate::MigrateError::ExecuteMigration(error, _),
            ) => busy(error),
            Self::Migrate(_) => false,
        }
    }

    fn into_store_error(self, shown: &str) -> crate::orchestration::OrchestrationError {
        match self {
            Self::Open(error) => store_error(&format!("opening {shown}"), &error),
            Self::Migrate(error) => migrate_error(shown, &error),
        }
    }
}

/// The schema's migrations, in `migrations/sqlite`.
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Checks, without changing it, that the store in `pool` has exactly this
/// version's schema.
async fn check_schema(pool: &SqlitePool, shown: &str) -> Result<()> {
    let applied = sqlx::query_scalar(super::schema::APPLIED_MIGRATIONS)
        .fetch_all(pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(database) if database.message().contains("no such table") => {
                super::schema::not_a_store(shown)
            }
            _ => store_error(&format!("reading {shown}"), &error),
        })?;
    super::schema::check_versions(&applied, &MIGRATIONS, shown)
}

#[derive(Debug)]
struct SqliteBackend {
    pool: SqlitePool,
}

sql_backend!(
    SqliteBackend,
    sqlx::Sqlite,
    "the SQLite journal",
    super::sql::SQLITE
);
durable_journal_impl!(SqliteJournal);

impl SqliteJournal {
    /// Opens (or creates) the journal in file `path`, bringing its schema up
    /// to date.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the
    /// file cannot be opened or created, is not a SQLite database (or is
    /// damaged), or was written by a newer version of this crate.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// As [`open`](Self::open), with `options` (secrets to redact, a label).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                crate::orchestration::OrchestrationError::store(
                    format!("cannot create the folder of {shown}: {error}"),
                    false,
                )
            })?;
        }
        // Refused before the setup lock, which would leave a lock file
        // beside what is not a store.
        if path.is_dir() {
            return Err(crate::orchestration::OrchestrationError::store(
                format!("{shown} is a directory, not a store file"),
                false,
            ));
        }
        let connect = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|error| store_error(&format!("opening {shown}"), &error))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // Processes opening the file at once would race to set it up (WAL
        // mode, the migrations), and SQLite's migrations take no lock: they
        // take turns on a lock file beside it. A busy file (another process
        // in a long write) is tried again shortly.
        let _setting_up = SetupLock::acquire(&path).await?;
        let mut tries = 0_u32;
        let pool = loop {
            match Self::connect(connect.clone()).await {
                Ok(pool) => break pool,
                Err(error) if tries < 50 && error.is_transient_setup() => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20 + 10 * u64::from(tries))).await;
                }
                Err(error) => return Err(error.into_store_error(&shown)),
            }
        };
        Ok(Self {
            journal: DurableJournal::start(SqliteBackend { pool }, options),
            path,
        })
    }

    /// Opens the journal in file `path` for reading only: to list and read
    /// the runs of a store this process may not write — a file another
    /// user's service writes, a read-only mount, a copy kept from a CI job.
    /// Nothing is created, set up or changed, so the file must be there and
    /// up to date (the first [`open`](Self::open) that may write a store an
    /// older version wrote brings it up to date). Appending to it fails: a
    /// run under it fails at its first event with a `Store` error.
    ///
    /// A reader of a file in WAL mode needs its shared-memory file (`-shm`),
    /// which SQLite cannot make when nothing has the file open and its
    /// folder cannot be written: the file is then read as it is on disk (as
    /// an *immutable* file), which is all it holds, since a writer would
    /// have made that file. A writer that opens it meanwhile may commit
    /// what this reader does not see.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the
    /// file is not there or cannot be read, is not a store of this crate, or
    /// has a schema older or newer than this version's.
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(crate::orchestration::OrchestrationError::store(
                format!("there is no store file at {shown}"),
                false,
            ));
        }
        let connect = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|error| store_error(&format!("opening {shown}"), &error))?
            .filename(&path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = match Self::connect_read_only(connect.clone()).await {
            // SQLite could not make the `-shm` file (or open the folder).
            Err(error)
                if super::errors::is_sqlite_code(&error, super::errors::SQLITE_READONLY)
                    || super::errors::is_sqlite_code(&error, super::errors::SQLITE_CANTOPEN) =>
            {
                Self::connect_read_only(connect.immutable(true)).await
            }
            opened => opened,
        }
        .map_err(|error| store_error(&format!("reading {shown}"), &error))?;
        check_schema(&pool, &shown).await?;
        Ok(Self {
            journal: DurableJournal::start(SqliteBackend { pool }, StoreOptions::default()),
            path,
        })
    }

    /// Opens a read-only pool on the file, and reads from it (SQLite opens
    /// a file's WAL index at the first read).
    async fn connect_read_only(
        connect: SqliteConnectOptions,
    ) -> std::result::Result<SqlitePool, sqlx::Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(connect)
            .await?;
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&pool)
            .await?;
        Ok(pool)
    }

    /// Opens a pool on the file and brings its schema up to date.
    async fn connect(connect: SqliteConnectOptions) -> std::result::Result<SqlitePool, Setup> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await
            .map_err(Setup::Open)?;
        MIGRATIONS.run(&pool).await.map_err(Setup::Migrate)?;
        Self::check_writable(&pool).await.map_err(Setup::Open)?;
        Ok(pool)
    }

    /// Fails when the file can be read but not written (its mode, a
    /// read-only mount): SQLite then opens it read-only, and the run would
    /// fail at its first write instead of now. The statement touches no row
    /// and is rolled back.
    async fn check_writable(pool: &SqlitePool) -> std::result::Result<(), sqlx::Error> {
        let mut probe = pool.begin().await?;
        sqlx::query("DELETE FROM runs WHERE 0")
            .execute(&mut *probe)
            .await?;
        probe.rollback().await
    }

    /// The file the journal is in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest `limit` top-level runs, newest first.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the file cannot be read.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        self.journal.runs(limit).await
    }

    /// The newest `limit` top-level runs whose id starts with `prefix`
    /// (hexadecimal digits, as `orchestra` takes an id's start).
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the file cannot be read.
    pub async fn runs_starting_with(&self, prefix: &str, limit: usize) -> Result<Vec<RunSummary>> {
        self.journal.runs_starting_with(prefix, limit).await
    }

    /// Run `run`, if the journal has it.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the file cannot be read.
    pub async fn run(&self, run: RunId) -> Result<Option<RunSummary>> {
        self.journal.run(run).await
    }

    /// Deletes the finished top-level runs `which` selects, with the runs
    /// nested in them and all their events; returns how many it deleted.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the file cannot be written.
    pub async fn prune(&self, which: Prune) -> Result<u64> {
        self.journal.prune(which).await
    }

    /// Writes every event appended so far, then closes the connections to
    /// the file, waiting for those in use to be given back. The journal
    /// can then be read or written no more (its calls fail with `Store`
    /// errors); call it when a process is done with the store.
    /// SQLite moves what the file's write-ahead log (`-wal`) holds into the
    /// file itself when its last connection closes, and removes the `-wal`
    /// and `-shm` files: a process that ends without closing leaves them
    /// (the next one to open the file takes them in), and a copy of the
    /// file alone then lacks the runs they hold.
    ///
    /// # Errors
    /// [`Store`](crate::orchestration::OrchestrationError::Store) when the
    /// last events could not be written (the connections are closed all
    /// the same).
    pub async fn close(&self) -> Result<()> {
        self.journal.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_that_cannot_be_written_is_refused_when_it_opens() {
        let dir = std::env::temp_dir().join(format!("read-only-store-{}", RunId::new()));
        let path = dir.join("runs.db");
        let writable = SqliteJournal::open(&path).await;
        assert!(writable.is_ok(), "{:?}", writable.err());
        drop(writable);
        // Read-only, as SQLite opens a file whose mode or mount forbids
        // writing (a test run as root may write any file: the connection
        // is made read-only instead).
        let read_only = SqliteConnectOptions::from_str("sqlite:")
            .unwrap_or_else(|e| panic!("{e}"))
            .filename(&path)
            .read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(read_only)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = SqliteJournal::check_writable(&pool).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|error| error.to_string().contains("readonly")),
            "{refused:?}"
        );
        // And the file can still be written by a writer: the probe changed nothing.
        let again = SqliteJournal::open(&path).await;
        assert!(again.is_ok(), "{:?}", again.err());
        drop((pool, again));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
