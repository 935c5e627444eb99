//! Which schema a store has, and whether this version may use it.
//!
//! A store's schema is brought up to date by its migrations
//! (`migrations/sqlite`, `migrations/postgres`) when it is opened to write.
//! A store opened read-only cannot be brought up to date, and a store that
//! a newer version wrote has migrations this version does not know: either
//! would be misread. So a store is used only with exactly this version's
//! schema ([`check_versions`]), and a refusal says what to do about it
//! ([`migrate_error`]).

use super::errors::store_error;
use crate::orchestration::errors::{OrchestrationError, Result};

/// The versions of the migrations a store's schema has had applied.
pub(super) const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// The error for a database or file `shown` without the journal's tables.
pub(super) fn not_a_store(shown: &str) -> OrchestrationError {
    OrchestrationError::store(
        format!("{shown} is not a run store (it has no run tables)"),
        false,
    )
}

/// Checks that a store whose schema has had migrations `applied` has
/// exactly this version's schema, `migrations`: a store opened read-only
/// cannot be brought up to date (an older one), and a newer one is refused
/// as opening it to write refuses it.
pub(super) fn check_versions(
    applied: &[i64],
    migrations: &sqlx::migrate::Migrator,
    shown: &str,
) -> Result<()> {
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
        return Err(OrchestrationError::store(
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
pub(super) fn migrate_error(
    store: &str,
    error: &sqlx::migrate::MigrateError,
) -> OrchestrationError {
    use sqlx::migrate::MigrateError;
    match error {
        MigrateError::VersionMissing(version) | MigrateError::VersionTooNew(version, _) => {
            OrchestrationError::store(
                format!(
                    "{store} was written by a newer version of claude-agent-sdk (its schema has \
                     migration {version}, which this version does not know): upgrade, or use \
                     another store"
                ),
                false,
            )
        }
        MigrateError::Execute(error) => store_error(&format!("preparing {store}"), error),
        other => OrchestrationError::store(format!("preparing {store}: {other}"), false),
    }
}
