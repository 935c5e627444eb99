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
//! - [`context`]: [`ExecutionConfig`], and [`ExecutionContext`] — state, trace and
//!   cancellation of a run — with its [`ExecutionTrace`] of [`AgentExecution`]s,
//!   whose [`RecordedInput`] / [`RecordedOutput`] share their texts between
//!   records instead of copying them.
//! - [`errors`]: [`OrchestrationError`] and which errors are retryable.
//! - [`registry`]: [`AgentRegistry`], agents under stable ids with searchable metadata.
//! - [`usage`]: [`Usage`], the tokens and cost agents report, summed over a run.
//!
//! Every agent runs through the same layers: one *attempt* (panic containment,
//! attempt timeout, trace record), wrapped in *retries* with jittered
//! exponential backoff for retryable errors only, raced against the run's
//! *deadline* and *cancellation*.
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
mod agent_run;
mod attempt;
mod composition;
mod config;
pub mod context;
pub mod errors;
mod join_policy;
mod observer;
pub mod orchestrator;
pub mod patterns;
mod recorded;
pub mod registry;
mod retry;
mod step_input;
mod telemetry;
mod text_arena;
mod trace;
pub mod usage;

// Core types
pub use agent::{Agent, AgentError, AgentInput, AgentOutput, SimpleAgent};
pub use orchestrator::{
    AgentFailure, BaseOrchestrator, Orchestrator, OrchestratorInput, OrchestratorOutput,
};

// Context
pub use context::{AgentExecution, ExecutionConfig, ExecutionContext, ExecutionTrace};
pub use context::{ByteString, RecordedInput, RecordedOutput, Shared, SharedPart, SmolStr};

// Errors
pub use errors::{OrchestrationError, Result};

// Registry
pub use registry::{
    AgentFilter, AgentMetadata, AgentRegistry, AgentRegistryBuilder, RegistryError,
};

// Patterns
pub use composition::OrchestratorAgent;
pub use join_policy::JoinPolicy;
pub use observer::{RunEvent, RunObserver};
pub use patterns::{ParallelOrchestrator, SequentialOrchestrator};
pub use retry::Backoff;

// Usage accounting
pub use usage::Usage;
