//! A database's errors as the journal's: retryable or not.
//!
//! A run whose store fails stops starting steps and fails with a
//! [`Store`](crate::orchestration::OrchestrationError::Store) error. Whether
//! that error is retryable tells its caller what to do next: a lost
//! connection, a busy file or a full disk ends once the database is back or
//! has room again, and the run can be resumed then; a corrupt file or a
//! schema from elsewhere does not end by waiting. [`store_error`] tells the
//! two apart, from sqlx's kinds of error and the database's own codes
//! (PostgreSQL's classes of SQLSTATE, SQLite's primary result codes).

use crate::orchestration::errors::OrchestrationError;

/// A database error as a [`Store`](OrchestrationError::Store) error:
/// retryable when the database may come back (a lost connection, a busy
/// file, a full disk), permanent otherwise (a corrupt file, a schema from
/// elsewhere).
pub(super) fn store_error(doing: &str, error: &sqlx::Error) -> OrchestrationError {
    let retryable = match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => may_come_back(database.as_ref()),
        _ => false,
    };
    OrchestrationError::store(format!("{doing}: {error}"), retryable)
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
pub(super) const SQLITE_BUSY: i32 = 5;
#[cfg(feature = "sqlite")]
pub(super) const SQLITE_LOCKED: i32 = 6;
#[cfg(feature = "sqlite")]
pub(super) const SQLITE_READONLY: i32 = 8;
#[cfg(feature = "sqlite")]
const SQLITE_FULL: i32 = 13;
#[cfg(feature = "sqlite")]
pub(super) const SQLITE_CANTOPEN: i32 = 14;

/// Whether `error` is SQLite's result `code` (extended codes included).
#[cfg(feature = "sqlite")]
pub(super) fn is_sqlite_code(error: &sqlx::Error, code: i32) -> bool {
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
