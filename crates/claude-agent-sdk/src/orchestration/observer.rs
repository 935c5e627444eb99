//! Live run events for progress displays, metrics and audit logs.
//!
//! A [`RunObserver`] attached to an [`ExecutionContext`](super::ExecutionContext)
//! hears every run start and end, every step a graph makes (which graph node
//! it is), every attempt start and end, and every retry as it is scheduled —
//! the moment it happens, not after the run. They are
//! told by the recorder that appends the run's [journal](super::journal)
//! events, in the same order, so the two always agree: every attempt that
//! starts also finishes, exactly once, also when it is cut short. Events borrow from the run, so an observer that
//! keeps nothing costs no allocation.
//!
//! Observers are called inline on the agent's task: keep them quick and
//! non-blocking (update a counter, send on a channel, redraw a progress bar).
//! An observer that panics is contained: that event is lost to it (and
//! logged as a `tracing` warning), and the run goes on exactly as if it had
//! returned — the same in every pattern.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use claude_agent_sdk::orchestration::{
//!     Agent, AgentOutput, ExecutionConfig, ExecutionContext, Orchestrator, OrchestratorInput,
//!     ParallelOrchestrator, RunEvent, RunObserver, SimpleAgent,
//! };
//!
//! #[derive(Default)]
//! struct CountAttempts(AtomicUsize);
//!
//! impl RunObserver for CountAttempts {
//!     fn on_event(&self, event: &RunEvent<'_>) {
//!         if let RunEvent::AttemptStarted { .. } = event {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let counter = Arc::new(CountAttempts::default());
//! let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(counter.clone());
//! let agents: Vec<Box<dyn Agent>> = vec![
//!     Box::new(SimpleAgent::new("a", "", |i| Ok(AgentOutput::new(i.content)))),
//!     Box::new(SimpleAgent::new("b", "", |i| Ok(AgentOutput::new(i.content)))),
//! ];
//! ParallelOrchestrator::new()
//!     .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
//!     .await?;
//! assert_eq!(counter.0.load(Ordering::Relaxed), 2);
//! # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
//! # }).unwrap();
//! ```

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::orchestration::agent::AgentOutput;
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::journal::{NodeId, ParentAttempt, RunId};

/// Something that happened in a run.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RunEvent<'a> {
    /// An orchestration started.
    RunStarted {
        /// The run.
        run: RunId,
        /// The attempt the run is nested in, if it is.
        parent: Option<ParentAttempt>,
        /// The orchestrator's name.
        orchestrator: &'a str,
        /// How many agents it was given.
        agents: usize,
    },
    /// An orchestration ended.
    RunFinished {
        /// The run.
        run: RunId,
        /// The orchestrator's name.
        orchestrator: &'a str,
        /// Its error, when it failed (or was cancelled, or timed out).
        error: Option<&'a OrchestrationError>,
    },
    /// A graph made a step: one activation of one of its nodes (a loop's
    /// pass, a map's item). The attempt events of the step name it as their
    /// `node`: this says which graph node that is — what a display of a
    /// graph's progress shows, where several nodes may run one agent.
    StepAdded {
        /// The run.
        run: RunId,
        /// The step, as its attempt events name it (their `node`).
        step: NodeId,
        /// The graph node it is an activation of, by its id.
        node: &'a str,
        /// The name of the agent it runs.
        agent: &'a str,
        /// The pass of the loop the node is in (1 outside loops).
        iteration: u32,
        /// For a map's item: the item's index.
        item: Option<u32>,
    },
    /// An attempt of an agent started.
    AttemptStarted {
        /// The run.
        run: RunId,
        /// The agent's node in the run; in a graph, the step: one per
        /// activation of a node and per map item, as the journal names it
        /// (`EventKind::StepAdded`), so a loop's passes are told apart.
        node: NodeId,
        /// The agent's name.
        agent: &'a str,
        /// The attempt's number, from 1.
        attempt: u32,
        /// The most attempts the agent may get.
        max_attempts: u32,
    },
    /// An attempt of an agent ended: successfully, with an error, timed out,
    /// or cut short (then with `Cancelled` or `Timeout`).
    AttemptFinished {
        /// The run.
        run: RunId,
        /// The agent's node in the run; in a graph, the step: one per
        /// activation of a node and per map item, as the journal names it
        /// (`EventKind::StepAdded`), so a loop's passes are told apart.
        node: NodeId,
        /// The agent's name.
        agent: &'a str,
        /// The attempt's number, from 1.
        attempt: u32,
        /// What the attempt produced.
        outcome: Result<&'a AgentOutput, &'a OrchestrationError>,
        /// How long it took.
        elapsed: Duration,
    },
    /// A failed attempt will be retried after `delay`.
    RetryScheduled {
        /// The run.
        run: RunId,
        /// The agent's node in the run; in a graph, the step: one per
        /// activation of a node and per map item, as the journal names it
        /// (`EventKind::StepAdded`), so a loop's passes are told apart.
        node: NodeId,
        /// The agent's name.
        agent: &'a str,
        /// The number of the attempt that will follow.
        next_attempt: u32,
        /// How long the retry waits.
        delay: Duration,
        /// The error that caused the retry.
        error: &'a OrchestrationError,
    },
}

/// Receives the [`RunEvent`]s of every run under a context.
pub trait RunObserver: Send + Sync {
    /// Called once per event, inline, on the task where it happened.
    fn on_event(&self, event: &RunEvent<'_>);
}

/// The observers attached to one context: the ones attached before, then
/// the last one. A panic of the first does not keep the event from the
/// second; it is passed on once both heard the event (and contained where
/// observers are called).
pub(crate) struct Observers(
    pub(crate) Arc<dyn RunObserver>,
    pub(crate) Arc<dyn RunObserver>,
);

impl RunObserver for Observers {
    fn on_event(&self, event: &RunEvent<'_>) {
        let first = catch_unwind(AssertUnwindSafe(|| self.0.on_event(event)));
        self.1.on_event(event);
        if let Err(panic) = first {
            resume_unwind(panic);
        }
    }
}
