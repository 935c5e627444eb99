//! How the store commands reach the store: they open the one `--store`
//! (or `ORCHESTRA_STORE`, or the default) names — read-only when they only
//! read and may not write it —, run on it and close it, and end with a
//! message and an exit code when it cannot be opened; and what a stored
//! run's start event says. Apart because listing runs and starting runs
//! from stored ones ([`continuing`](super::continuing)) both need it, and
//! neither needs the other.

use claude_agent_sdk::orchestration::{AgentInput, EventKind, RunId};

use crate::cli::StoreArgs;
use crate::exit::Exit;
use crate::run::{self, Refusal};
use crate::store::{Location, RunStore};

/// A command's failure: its message and exit code.
pub(super) type Failure = (String, Exit);

pub(super) fn failed(message: impl Into<String>) -> Failure {
    (message.into(), Exit::Failed)
}

pub(super) fn usage(message: impl Into<String>) -> Failure {
    (message.into(), Exit::Usage)
}

/// What a command does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// It only reads: a store this process may not write is read read-only.
    Read,
    /// It writes: it runs, or deletes.
    Write,
}

/// Opens the store `args` choose and runs `command` on it.
pub(super) fn on_store<T, F, Fut>(
    args: &StoreArgs,
    access: Access,
    command: F,
) -> Result<T, Failure>
where
    F: FnOnce(RunStore) -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    (|| {
        let location = Location::chosen(args).map_err(usage)?;
        // These commands read a store: a store file named that is not there
        // is a mistyped path, not one to create.
        if let Location::Sqlite(path) = &location {
            if Location::is_explicit(args) && !path.exists() {
                return Err(usage(format!(
                    "there is no run store at `{}`",
                    path.display()
                )));
            }
        }
        let runtime = run::runtime().map_err(failed)?;
        runtime.block_on(async {
            let store = match access {
                Access::Read => location.open_to_read().await,
                Access::Write => {
                    location
                        .open(claude_agent_sdk::orchestration::store::StoreOptions::new())
                        .await
                }
            }
            .map_err(failed)?;
            let result = command(store.clone()).await;
            // What the command wrote is in the store already (a read
            // flushes first, and a run waits for its events): a failure to
            // close loses nothing.
            let _ = store.close().await;
            result
        })
    })()
}

/// As [`on_store`], for a command whose result is its exit code; a failure
/// is told as a [`Refusal`] is (with `json`, as a JSON document on standard
/// output too), and its exit code returned.
pub(super) fn with_store<F, Fut>(args: &StoreArgs, access: Access, json: bool, command: F) -> Exit
where
    F: FnOnce(RunStore) -> Fut,
    Fut: std::future::Future<Output = Result<Exit, Failure>>,
{
    on_store(args, access, command)
        .unwrap_or_else(|(message, exit)| Refusal::new(exit, message).tell(json))
}

/// What run `run`'s start event in `store` says: the input it was given,
/// the run it is nested in, and for a fork, the step it forked after.
#[derive(Default)]
pub(super) struct Started {
    pub(super) input: AgentInput,
    pub(super) parent: Option<RunId>,
    pub(super) fork_step: Option<String>,
}

pub(super) async fn started(store: &RunStore, run: RunId) -> Started {
    let events = store.journal().read(&[run]).await;
    events
        .into_iter()
        .find_map(|event| match event.kind {
            EventKind::RunStarted {
                input,
                parent,
                forks,
                ..
            } if event.run == run => Some(Started {
                input: *input,
                parent: parent.map(|parent| parent.run),
                fork_step: forks.map(|fork| fork.after),
            }),
            _ => None,
        })
        .unwrap_or_default()
}
