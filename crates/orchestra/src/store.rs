//! Where `orchestra` keeps its runs: every `run` is durable by default, in a
//! SQLite file in the user's state folder; `--store` (or `ORCHESTRA_STORE`)
//! names another SQLite file or a `postgres://` URL, and `--no-store` keeps
//! a run in memory only.
//!
//! The default file is `$XDG_STATE_HOME/orchestra/runs.db`, or
//! `~/.local/state/orchestra/runs.db` when `XDG_STATE_HOME` is not set.

use std::path::PathBuf;
use std::sync::Arc;

use claude_agent_sdk::orchestration::store::{
    url_without_password, PostgresJournal, Prune, RunSummary, SqliteJournal, StoreOptions,
};
use claude_agent_sdk::orchestration::{Journal, OrchestrationError, RunId};

use crate::cli::StoreArgs;

/// An open store.
#[derive(Debug, Clone)]
pub enum RunStore {
    Sqlite(Arc<SqliteJournal>),
    Postgres(Arc<PostgresJournal>),
}

/// Where the store is, as the user named it (or the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// Whether `args` name a store (`--store` or `ORCHESTRA_STORE`) rather
    /// than leave the default (an empty name names none, and is refused:
    /// see [`chosen`](Self::chosen)).
    pub fn is_explicit(args: &StoreArgs) -> bool {
        args.store.is_some()
    }

    /// The location `args` choose: `--store`, `ORCHESTRA_STORE` (read by clap),
    /// or the default file.
    ///
    /// # Errors
    /// No folder for the default file; or an empty name — `--store ""`, or
    /// the variable set to nothing —, which is not taken for the default:
    /// a variable meant to hold a store that came out empty would
    /// otherwise send the runs elsewhere without a word.
    pub fn chosen(args: &StoreArgs) -> Result<Self, String> {
        let Some(text) = args.store.as_deref() else {
            return default_file().map(Self::Sqlite);
        };
        if text.trim().is_empty() {
            return Err(EMPTY_NAME.to_owned());
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        let path = text.strip_prefix("sqlite://").unwrap_or(text);
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// How messages name it (a URL without its password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => url_without_password(url),
        }
    }

    /// The `--store` flag that names this location again (empty for the
    /// default), for commands printed for the user to run.
    pub fn flag(&self) -> String {
        match self {
            Self::Sqlite(path) if default_file().ok().as_ref() == Some(path) => String::new(),
            Self::Sqlite(path) => format!(" --store {}", shell_quote(&path.display().to_string())),
            // The variable when it holds the URL (its password stays out of
            // the terminal); otherwise the URL, without its password (which
            // `PGPASSWORD` or `~/.pgpass` can give).
            Self::Postgres(url)
                if std::env::var("ORCHESTRA_STORE").is_ok_and(|set| set == *url) =>
            {
                " --store \"$ORCHESTRA_STORE\"".to_owned()
            }
            Self::Postgres(url) => format!(" --store {}", shell_quote(&url_without_password(url))),
        }
    }

    /// Opens the store to read it: as [`open`](Self::open) when this
    /// process may write it (an older store is brought up to date), and
    /// otherwise read-only — a SQLite file another user's service writes,
    /// on a read-only mount or kept from a CI job, or a PostgreSQL database
    /// as a role that may only read it, can be listed and shown.
    pub async fn open_to_read(&self) -> Result<RunStore, String> {
        let problem = match self.open_journal(StoreOptions::new()).await {
            Ok(store) => return Ok(store),
            Err(problem) => problem,
        };
        let read_only = match self {
            Self::Sqlite(path) if path.is_file() => SqliteJournal::open_read_only(path)
                .await
                .map(|store| RunStore::Sqlite(Arc::new(store))),
            // A server that did not answer would not answer again.
            Self::Postgres(url) if !problem.is_retryable() => {
                PostgresJournal::connect_read_only(url)
                    .await
                    .map(|store| RunStore::Postgres(Arc::new(store)))
            }
            _ => return Err(self.failed_to_open(&problem)),
        };
        read_only.map_err(|error| {
            format!(
                "{}; nor can it be read read-only: {error}",
                self.failed_to_open(&problem)
            )
        })
    }

    /// Opens the store (creating the file and its folder when missing).
    pub async fn open(&self, options: StoreOptions) -> Result<RunStore, String> {
        self.open_journal(options)
            .await
            .map_err(|error| self.failed_to_open(&error))
    }

    fn failed_to_open(&self, error: &OrchestrationError) -> String {
        format!("cannot open the run store {}: {error}", self.describe())
    }

    async fn open_journal(&self, options: StoreOptions) -> Result<RunStore, OrchestrationError> {
        Ok(match self {
            Self::Sqlite(path) => {
                RunStore::Sqlite(Arc::new(SqliteJournal::open_with(path, options).await?))
            }
            Self::Postgres(url) => {
                RunStore::Postgres(Arc::new(PostgresJournal::connect_with(url, options).await?))
            }
        })
    }
}

impl RunStore {
    /// The store as the journal of a context.
    pub fn journal(&self) -> Arc<dyn Journal> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// Writes what is pending and closes the store (a SQLite file then
    /// holds every run alone: see `SqliteJournal::close`).
    pub async fn close(&self) -> Result<(), String> {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
        .map_err(|error| error.to_string())
    }

    pub async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, String> {
        match self {
            Self::Sqlite(store) => store.runs(limit).await,
            Self::Postgres(store) => store.runs(limit).await,
        }
        .map_err(|error| error.to_string())
    }

    /// The newest `limit` top-level runs whose id starts with `prefix`.
    pub async fn runs_starting_with(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<RunSummary>, String> {
        match self {
            Self::Sqlite(store) => store.runs_starting_with(prefix, limit).await,
            Self::Postgres(store) => store.runs_starting_with(prefix, limit).await,
        }
        .map_err(|error| error.to_string())
    }

    pub async fn run(&self, run: RunId) -> Result<Option<RunSummary>, String> {
        match self {
            Self::Sqlite(store) => store.run(run).await,
            Self::Postgres(store) => store.run(run).await,
        }
        .map_err(|error| error.to_string())
    }

    pub async fn prune(&self, which: Prune) -> Result<u64, String> {
        match self {
            Self::Sqlite(store) => store.prune(which).await,
            Self::Postgres(store) => store.prune(which).await,
        }
        .map_err(|error| error.to_string())
    }

    /// The run `text` names: a whole id, or the start of one that only one
    /// stored run has (as `runs` shows them).
    pub async fn find(&self, text: &str) -> Result<RunSummary, String> {
        let text = text.trim();
        if let Ok(id) = text.parse::<RunId>() {
            if text.len() == 32 {
                return self
                    .run(id)
                    .await?
                    .ok_or_else(|| format!("no run {text} in the store"));
            }
        }
        if text.is_empty() || text.len() > 32 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{text}` is not a run id (32 hexadecimal digits, or the start of one)"
            ));
        }
        let prefix = text.to_ascii_lowercase();
        // Two are enough to tell a prefix that names one run from one that
        // does not.
        let mut matching: Vec<RunSummary> = self.runs_starting_with(&prefix, 2).await?;
        if matching.len() > 1 {
            return Err(format!(
                "more than one run starts with {text}: give more of the id (`orchestra runs` lists them)"
            ));
        }
        matching
            .pop()
            .ok_or_else(|| format!("no run starting with {text} in the store"))
    }
}

/// Why there is no store: none named, and no folder for the default one.
const NO_STORE: &str = "no run store: none is named (`--store PATH|URL`, or the \
                            environment variable ORCHESTRA_STORE) and the default one has no \
                            folder (set XDG_STATE_HOME or HOME)";

/// Why an empty store name is refused.
const EMPTY_NAME: &str = "the run store's name is empty (`--store \"\"`, or the environment \
                          variable ORCHESTRA_STORE set to nothing): name a SQLite file or a \
                          postgres:// URL, or leave both unset for the default store";

/// The default store file.
fn default_file() -> Result<PathBuf, String> {
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("state"),
            None => return Err(NO_STORE.to_owned()),
        },
    };
    Ok(state.join("orchestra").join("runs.db"))
}

/// `text` quoted for a POSIX shell when it needs to be.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
