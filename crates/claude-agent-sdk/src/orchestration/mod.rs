//! Agent orchestration: coordinate many agents on one task.
//!
//! The module is built from small pieces, each in the file named after it:
//!
//! - [`agent`]: the [`Agent`] trait and its [`AgentInput`] / [`AgentOutput`].
//! - [`orchestrator`]: the [`Orchestrator`] trait and [`BaseOrchestrator`], the
//!   machinery every pattern shares.
//! - [`patterns`]: [`SequentialOrchestrator`] (pipelines) and
//!   [`ParallelOrchestrator`] (fan-out/fan-in), composable through
//!   [`OrchestratorAgent`].
//! - [`graph`]: [`GraphOrchestrator`] — routes, bounded loops, maps, joins,
//!   subgraphs; with [`human`] ([`Question`], [`Pause`]: a run that asks a
//!   person pauses and resumes) and [`budget`] ([`RunBudget`]).
//! - [`resume`](mod@resume): [`resume()`] and [`fork`] a stopped run from its
//!   journal; the durable journals are in `store` (features `sqlite`,
//!   `postgres`).
//! - [`context`]: [`ExecutionConfig`], and [`ExecutionContext`] — state, journal
//!   and cancellation of runs — with the [`ExecutionTrace`] of [`AgentExecution`]s
//!   a run's journal shows.
//! - [`journal`]: the [`Journal`] every change of a run's state is appended to,
//!   as [`JournalEvent`]s.
//! - [`errors`]: [`OrchestrationError`] and which errors are retryable.
//! - [`registry`]: [`AgentRegistry`], agents under stable ids with searchable metadata.
//! - [`usage`]: [`Usage`], the tokens and cost agents report, summed over a run.
//!
//! Underneath, one engine runs every flow: a *scheduler* decides which node of
//! the run's graph starts next, an *executor* runs each node's attempts through
//! small layers (retry policy, attempt timeout, panic containment, recording),
//! and a *journal* keeps every change of the run's state — see ARCHITECTURE.md.
//!
//! ```
//! use claude_agent_sdk::orchestration::{
//!     Agent, AgentOutput, Orchestrator, OrchestratorInput, SequentialOrchestrator, SimpleAgent,
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let agents: Vec<Box<dyn Agent>> = vec![Box::new(SimpleAgent::new("echo", "", |input| {
//!     Ok(AgentOutput::new(input.content))
//! }))];
//! let output = SequentialOrchestrator::new()
//!     .orchestrate(agents, OrchestratorInput::new("hello"))
//!     .await?;
//! assert_eq!(output.result, "hello");
//! assert!(output.is_successful());
//! # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
//! # }).unwrap();
//! ```

pub mod agent;
pub mod budget;
mod composition;
mod config;
pub mod context;
mod engine;
pub mod errors;
mod executor;
pub mod graph;
pub mod human;
mod join_policy;
pub mod journal;
mod observer;
pub mod orchestrator;
pub mod patterns;
pub mod registry;
pub mod resume;
mod scope;
#[cfg_attr(not(feature = "local"), allow(unused_imports))]
pub(crate) use scope::current_deadline;
mod stop_token;
#[cfg(feature = "store")]
pub mod store;
mod telemetry;
mod trace;
pub mod usage;

// Core types
pub use agent::{Agent, AgentError, AgentInput, AgentOutput, SimpleAgent};
pub use orchestrator::{
    AgentFailure, BaseOrchestrator, Orchestrator, OrchestratorInput, OrchestratorOutput,
};

// Context
pub use context::{AgentExecution, ExecutionConfig, ExecutionContext, ExecutionTrace, NestedTrace};
pub use trace::MAX_TRACE_DEPTH;

// The journal
pub use journal::{
    AttemptOutcome, EventKind, ForkPoint, InMemoryJournal, InputSource, Interruption, Journal,
    JournalEvent, NodeId, ParentAttempt, RunId, RunOutcome, StateChange, StepDecision,
};

// Errors
pub use errors::{ErrorDetails, FailureReason, OrchestrationError, Result};

// Registry
pub use registry::{
    AgentFilter, AgentMetadata, AgentRegistry, AgentRegistryBuilder, RegistryError,
};

// Patterns
pub use composition::OrchestratorAgent;
pub use executor::retry::{Backoff, ExponentialRetry, RetryPolicy};
pub use graph::{
    GraphOrchestrator, GraphProblem, NodeOptions, Route, RouteContext, Split, END, START,
};
pub use join_policy::JoinPolicy;
pub use observer::{RunEvent, RunObserver};
pub use patterns::{ParallelOrchestrator, SequentialOrchestrator};

// Usage accounting and budgets
pub use budget::{Budget, BudgetExceeded, RunBudget};
pub use human::{EnclosingStep, FinishedStep, Pause, Question};
pub use resume::{fork, resume, resume_with_metadata};
pub use usage::Usage;
