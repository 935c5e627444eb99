//! Resuming a run from its journal: a run that stopped — its process
//! killed, a timeout, a failed agent since fixed, a question waiting for an
//! answer — continues where it stopped, without running again what finished.
//!
//! [`resume`] reads the stopped run's events from the context's
//! [`Journal`](super::Journal) (any store: the in-memory one in a process,
//! `SqliteJournal` or `PostgresJournal` — features `sqlite`, `postgres` —
//! across processes) and
//! starts a new run of the same orchestrator that *continues* it:
//!
//! - every step that finished successfully is not run again — its output
//!   comes from the journal, and the run moves on from it exactly as it did
//!   (where its router or loop condition sent it, as journaled with the
//!   step, not decided again on the state as it is now);
//! - a step that started and never finished (the process died in the middle
//!   of it) runs again: steps run **at least once**, and exactly once when
//!   they finished before the stop — what finished inside a graph,
//!   pipeline or fan-out nested in such a step (a subgraph, a map's items,
//!   an `OrchestratorAgent`) is handed back to it and not run again either
//!   (see `nested`);
//! - the changes the finished steps made to the shared state are replayed
//!   into the context — those of every attempt of such a step, a failed
//!   attempt that was retried included, as the run went on with them; those
//!   of a step that runs again are dropped. A context the stopped run ran
//!   under (or a handle sharing its state) holds them already and keeps what
//!   it has; a fresh one, in another process, gets them all, on top of what
//!   it was given before the resume. (An
//!   [`update_state`](super::ExecutionContext::update_state) is journaled as
//!   the value it made: one made on top of a dropped change keeps it.) A
//!   [`fork`] starts from the changes up to its fork point: under a context
//!   holding the forked run's changes, every key that run changed is set
//!   back to what those changes make of it (a value the key had before the
//!   forked run is not restored); other keys stay as they are;
//! - the new run is a run of its own in the journal (its own [`RunId`]), whose
//!   `RunStarted` event names the run it resumes; a chain of resumes reads
//!   back to the first run, and a run is resumed at most once — resuming it
//!   again means resuming the run that continued it.
//!
//! # Idempotency keys
//! Work that a step does outside the process (a payment, an e-mail, a row
//! written) may happen twice when a step runs again after a crash. Each
//! attempt has a key that stays the same when the same attempt of the same
//! step runs again in a resumed run:
//! [`ExecutionContext::idempotency_key`](super::ExecutionContext::idempotency_key),
//! `{first run id}/{node}.{activation}/{attempt}` (node: the node's position
//! in its graph; activation: which of the node's steps, from 1; nested runs
//! prefix theirs with the key of the attempt they run in). Give it to the
//! service that does the side effect, and it can refuse the second one.
//!
//! # What must match
//! The resumed run must be built the same way: in a pipeline or fan-out, the
//! same nodes (by agent name); in a graph, every step that finished must
//! still be there (its node id, with the same agent) — a graph may gain
//! nodes, or change those that never ran, between the runs. A difference is
//! an [`InvalidConfig`](super::OrchestrationError::InvalidConfig) error
//! naming it, and nothing runs. The input comes from the journal. Steps
//! handed back to a graph nested in a step that did not finish are matched
//! when that graph runs: one whose node it no longer has is left out (the
//! graph changed since: what it has runs anew); their agents are not
//! compared. A nested pipeline or fan-out matches its steps by agent name
//! (and which of the agents with that name each is), a pipeline only up to
//! its first change.

mod continuation;
mod history;
mod nested;

use std::collections::HashMap;

pub(crate) use continuation::Continuation;
pub(crate) use nested::{pattern_labels, pattern_position};

use crate::orchestration::agent::Agent;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::Result;
use crate::orchestration::journal::RunId;
use crate::orchestration::orchestrator::{Orchestrator, OrchestratorInput, OrchestratorOutput};

/// Resumes run `run` of `orchestrator` (see the [module docs](self)):
/// reads its events from `ctx`'s journal and runs what is left of it under
/// `ctx`, with the answers `ctx` holds for questions the run asked.
///
/// `agents` are the orchestrator's agents, as for
/// [`orchestrate_with_context`](Orchestrator::orchestrate_with_context)
/// (an empty list for a [`GraphOrchestrator`](super::GraphOrchestrator)).
///
/// # Errors
/// [`OrchestrationError::InvalidConfig`](super::OrchestrationError::InvalidConfig)
/// when the journal has no such run, the run kept no records (tracing was
/// off), it was resumed already, or the orchestrator's nodes differ from
/// the run's; otherwise what the resumed run returns.
pub async fn resume<O>(
    orchestrator: &O,
    agents: Vec<Box<dyn Agent>>,
    run: RunId,
    ctx: &ExecutionContext,
) -> Result<OrchestratorOutput>
where
    O: Orchestrator + ?Sized,
{
    resume_with_metadata(orchestrator, agents, run, HashMap::new(), ctx).await
}

/// As [`resume`], with `metadata` set in the input's metadata (the rest of
/// the input comes from the journal, as the finished steps were computed
/// from it): what changed about the run's surroundings since it stopped —
/// a new request id, the fingerprint of a definition that changed — which
/// the resumed run records, and a later resume of it reads.
///
/// # Errors
/// As [`resume`].
pub async fn resume_with_metadata<O>(
    orchestrator: &O,
    agents: Vec<Box<dyn Agent>>,
    run: RunId,
    metadata: HashMap<String, String>,
    ctx: &ExecutionContext,
) -> Result<OrchestratorOutput>
where
    O: Orchestrator + ?Sized,
{
    let continuation = Continuation::read(ctx, run).await?;
    for (id, answer) in &continuation.answers {
        if !ctx.answers().contains_key(id) {
            ctx.answer(id.clone(), answer.clone());
        }
    }
    let mut input = continuation.input.clone();
    input.metadata.extend(metadata);
    let ctx = ctx.clone().continuing(continuation);
    orchestrator
        .orchestrate_with_context(agents, input, &ctx)
        .await
}

/// Starts a new run of `orchestrator` from the state after the last
/// finished step of node `after` in run `run` (a graph's node id, or an
/// agent's name in a pipeline or fan-out): the steps that finished up to it
/// are not run again (their outputs and state changes are reused); what
/// came after runs anew — with changed agents, prompts or, given `input`, a
/// changed input. The old run and its history stay as they are; the fork is
/// a run of its own, which can itself be resumed or forked. Under the
/// context the old run ran under, the keys of the shared state it changed
/// start again from the changes up to the fork point (see the
/// [module docs](self)).
///
/// # Errors
/// As [`resume`], and
/// [`OrchestrationError::InvalidConfig`](super::OrchestrationError::InvalidConfig)
/// when the run has no finished step of `after`.
pub async fn fork<O>(
    orchestrator: &O,
    agents: Vec<Box<dyn Agent>>,
    run: RunId,
    after: &str,
    input: Option<OrchestratorInput>,
    ctx: &ExecutionContext,
) -> Result<OrchestratorOutput>
where
    O: Orchestrator + ?Sized,
{
    let continuation = Continuation::read(ctx, run).await?.fork_after(after)?;
    let input = input.unwrap_or_else(|| continuation.input.clone());
    let ctx = ctx.clone().continuing(continuation);
    orchestrator
        .orchestrate_with_context(agents, input, &ctx)
        .await
}
