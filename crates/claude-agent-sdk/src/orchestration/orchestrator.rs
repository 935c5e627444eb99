//! The [`Orchestrator`] trait, its input and output, and [`BaseOrchestrator`],
//! the shared machinery patterns are built from.
//!
//! A pattern decides *which* agent runs *when* and on *what* — it builds a
//! graph for the engine (see ARCHITECTURE.md) — and everything else (the
//! configuration check, the run's deadline, retries, attempt timeouts, the
//! journal, spans and logs) is the engine's, so every pattern (and every
//! custom orchestrator built on [`BaseOrchestrator`]) behaves the same way
//! under failure.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::walk::Overrides;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::trace::ExecutionTrace;
use crate::orchestration::usage::Usage;

/// What an orchestration is asked to do.
///
/// ```
/// use claude_agent_sdk::orchestration::OrchestratorInput;
///
/// let input = OrchestratorInput::new("Analyze market trends")
///     .with_context(serde_json::json!({"region": "US"}))
///     .with_metadata("request_id", "12345");
/// assert_eq!(input.metadata["request_id"], "12345");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrchestratorInput {
    /// Main content or prompt; the first agent (or every agent, in parallel) gets it.
    pub content: String,
    /// Structured context handed to every agent.
    #[serde(default)]
    pub context: serde_json::Value,
    /// Metadata handed to every agent.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl OrchestratorInput {
    /// An input with the given content, no context and no metadata.
    #[must_use]
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            context: serde_json::Value::Null,
            metadata: HashMap::new(),
        }
    }

    /// Replaces the structured context.
    #[must_use]
    pub fn with_context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    /// Adds (or replaces) one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// An input of just this content: `graph.invoke("text")`.
impl From<String> for OrchestratorInput {
    fn from(content: String) -> Self {
        Self::new(content)
    }
}

/// An input of just this content: `graph.invoke("text")`.
impl From<&str> for OrchestratorInput {
    fn from(content: &str) -> Self {
        Self::new(content)
    }
}

impl From<OrchestratorInput> for AgentInput {
    fn from(input: OrchestratorInput) -> Self {
        Self {
            content: input.content,
            context: input.context,
            metadata: input.metadata,
        }
    }
}

impl From<AgentInput> for OrchestratorInput {
    fn from(input: AgentInput) -> Self {
        Self {
            content: input.content,
            context: input.context,
            metadata: input.metadata,
        }
    }
}

/// An agent that failed in a run that still returned `Ok` (see
/// [`JoinPolicy`](super::JoinPolicy)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentFailure {
    /// The agent's position in the list given to the orchestrator.
    pub index: usize,
    /// The agent's name.
    pub agent_name: String,
    /// Why it failed (its last error).
    pub error: String,
}

/// What an orchestration produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrchestratorOutput {
    /// The final result: the last agent's content (sequential) or the numbered
    /// list of every agent's content (parallel).
    pub result: String,
    /// The successful agents' outputs, in the order the agents were given.
    pub agent_outputs: Vec<AgentOutput>,
    /// Every attempt of every agent.
    pub execution_trace: ExecutionTrace,
    /// Whether every agent succeeded.
    pub success: bool,
    /// The agents that failed, when the join policy tolerated failures.
    pub failures: Vec<AgentFailure>,
}

impl OrchestratorOutput {
    /// A successful output with an empty trace.
    #[must_use]
    pub fn new(result: impl Into<String>, agent_outputs: Vec<AgentOutput>) -> Self {
        Self {
            result: result.into(),
            agent_outputs,
            execution_trace: ExecutionTrace::new(),
            success: true,
            failures: Vec::new(),
        }
    }

    /// Records agents that failed without failing the run; marks the output unsuccessful
    /// when there are any.
    #[must_use]
    pub fn with_failures(mut self, failures: Vec<AgentFailure>) -> Self {
        self.success = failures.is_empty();
        self.failures = failures;
        self
    }

    /// Whether every agent of the run succeeded.
    #[must_use]
    pub fn is_successful(&self) -> bool {
        self.success
    }

    /// The tokens and cost of the whole run: the trace's
    /// [`total_usage`](ExecutionTrace::total_usage), or — when trace records were
    /// turned off — the sum of the usage in [`agent_outputs`](Self::agent_outputs).
    /// A resumed run's trace holds the attempts it ran: the steps it took back
    /// from the run that paused (whose outputs are in `agent_outputs`, and
    /// count against its budget) were spent by that run, and are not counted
    /// here again.
    #[must_use]
    pub fn total_usage(&self) -> Usage {
        if self.execution_trace.agent_executions.is_empty() {
            self.agent_outputs
                .iter()
                .filter_map(Usage::from_output)
                .sum()
        } else {
            self.execution_trace.total_usage()
        }
    }
}

/// Coordinates a list of agents on one input.
///
/// Implementors provide [`orchestrate_with_context`](Self::orchestrate_with_context);
/// [`orchestrate`](Self::orchestrate) runs under a fresh context built from
/// [`config`](Self::config).
#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// The orchestrator's name.
    fn name(&self) -> &str;

    /// What the orchestrator does.
    fn description(&self) -> &str;

    /// The configuration that governs its runs.
    fn config(&self) -> &ExecutionConfig;

    /// Runs `agents` on `input` under a fresh context.
    ///
    /// # Errors
    /// Whatever the pattern defines: see [`SequentialOrchestrator`](super::SequentialOrchestrator)
    /// and [`ParallelOrchestrator`](super::ParallelOrchestrator).
    async fn orchestrate(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
    ) -> Result<OrchestratorOutput> {
        let ctx = ExecutionContext::new(self.config().clone());
        self.orchestrate_with_context(agents, input, &ctx).await
    }

    /// Runs `agents` on `input` under a caller-owned context: the caller shares its
    /// state, keeps its trace (also when the run fails) and can cancel it. The
    /// orchestrator's own config still governs retries, limits and timeouts.
    ///
    /// # Errors
    /// As [`orchestrate`](Self::orchestrate), and
    /// [`OrchestrationError::Cancelled`] when the context is cancelled.
    async fn orchestrate_with_context(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput>;

    /// Runs `agents` as one step of an enclosing run (what
    /// [`OrchestratorAgent`](super::OrchestratorAgent) calls): as
    /// [`orchestrate_with_context`](Self::orchestrate_with_context), except
    /// that the output's trace may be left empty — the enclosing run's trace
    /// already holds these records, nested under the step's own. The
    /// patterns leave it empty, which keeps deep nesting linear; the default
    /// calls `orchestrate_with_context`.
    ///
    /// # Errors
    /// As [`orchestrate_with_context`](Self::orchestrate_with_context).
    async fn orchestrate_nested(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        self.orchestrate_with_context(agents, input, ctx).await
    }
}

/// A boxed, shared or borrowed orchestrator is one too: a pattern picked at
/// run time (`Box<dyn Orchestrator>`) or shared between tasks
/// (`Arc<dyn Orchestrator>`) goes wherever an orchestrator does.
macro_rules! forward_orchestrator {
    ($($pointer:ty),*) => {$(
        #[async_trait]
        impl<O: Orchestrator + ?Sized> Orchestrator for $pointer {
            fn name(&self) -> &str {
                (**self).name()
            }

            fn description(&self) -> &str {
                (**self).description()
            }

            fn config(&self) -> &ExecutionConfig {
                (**self).config()
            }

            async fn orchestrate(
                &self,
                agents: Vec<Box<dyn Agent>>,
                input: OrchestratorInput,
            ) -> Result<OrchestratorOutput> {
                (**self).orchestrate(agents, input).await
            }

            async fn orchestrate_with_context(
                &self,
                agents: Vec<Box<dyn Agent>>,
                input: OrchestratorInput,
                ctx: &ExecutionContext,
            ) -> Result<OrchestratorOutput> {
                (**self).orchestrate_with_context(agents, input, ctx).await
            }

            async fn orchestrate_nested(
                &self,
                agents: Vec<Box<dyn Agent>>,
                input: OrchestratorInput,
                ctx: &ExecutionContext,
            ) -> Result<OrchestratorOutput> {
                (**self).orchestrate_nested(agents, input, ctx).await
            }
        }
    )*};
}

forward_orchestrator!(Box<O>, std::sync::Arc<O>, &O);

/// Shows the orchestrator's name and description: a struct holding
/// `Box<dyn Orchestrator>`s can derive `Debug`.
impl std::fmt::Debug for dyn Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("name", &self.name())
            .field("description", &self.description())
            .finish_non_exhaustive()
    }
}

/// The machinery shared by all orchestrators: configuration, validation, the run's
/// deadline, retries, attempt timeouts, traces, spans and logs.
///
/// A custom orchestrator holds one and calls [`execute_agent`](Self::execute_agent)
/// for each agent it runs:
///
/// ```
/// use async_trait::async_trait;
/// use claude_agent_sdk::orchestration::{
///     Agent, AgentInput, AgentOutput, BaseOrchestrator, ExecutionConfig, ExecutionContext,
///     Orchestrator, OrchestratorInput, OrchestratorOutput, Result,
/// };
///
/// /// Runs only the first agent.
/// struct FirstOnly(BaseOrchestrator);
///
/// #[async_trait]
/// impl Orchestrator for FirstOnly {
///     fn name(&self) -> &str { self.0.name() }
///     fn description(&self) -> &str { self.0.description() }
///     fn config(&self) -> &ExecutionConfig { self.0.config() }
///     async fn orchestrate_with_context(
///         &self,
///         agents: Vec<Box<dyn Agent>>,
///         input: OrchestratorInput,
///         ctx: &ExecutionContext,
///     ) -> Result<OrchestratorOutput> {
///         let first = agents.first().ok_or_else(|| {
///             claude_agent_sdk::orchestration::OrchestrationError::InvalidConfig("no agents".into())
///         })?;
///         let output = self.0.execute_agent(first.as_ref(), input.into(), ctx).await?;
///         let mut result = OrchestratorOutput::new(output.content.clone(), vec![output]);
///         result.execution_trace = ctx.get_trace().await;
///         Ok(result)
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct BaseOrchestrator {
    name: String,
    description: String,
    config: ExecutionConfig,
}

impl BaseOrchestrator {
    /// A base with the default configuration.
    #[must_use]
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            config: ExecutionConfig::default(),
        }
    }

    /// Replaces the configuration.
    #[must_use]
    pub fn with_config(mut self, config: ExecutionConfig) -> Self {
        self.config = config;
        self
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ExecutionConfig {
        &self.config
    }

    /// The configuration, to change in place.
    pub fn config_mut(&mut self) -> &mut ExecutionConfig {
        &mut self.config
    }

    /// Runs one agent under this configuration: retries with backoff, the attempt
    /// timeout, a trace record per attempt in `ctx`, and `ctx`'s cancellation. The
    /// run timeout starts with this call. (Without an orchestrator at hand,
    /// [`ExecutionContext::run_agent`] does the same under the context's own
    /// configuration.)
    ///
    /// # Errors
    /// [`OrchestrationError::AgentFailed`] with the agent's name and last error,
    /// [`OrchestrationError::Cancelled`], or [`OrchestrationError::Timeout`] when the
    /// run timeout passes.
    pub async fn execute_agent(
        &self,
        agent: &dyn Agent,
        input: AgentInput,
        ctx: &ExecutionContext,
    ) -> Result<AgentOutput> {
        crate::orchestration::engine::run_one(
            agent,
            input,
            ctx,
            &self.config,
            &self.name,
            Overrides::default(),
        )
        .await
    }
}

/// Fails unless called on a tokio runtime: runs need its timers and tasks.
pub(crate) fn require_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(OrchestrationError::InvalidConfig(
            "orchestrations run on a tokio runtime: call them from inside one \
             (for example under #[tokio::main])"
                .into(),
        ));
    }
    // Deadlines and backoff need the runtime's timers; tokio has no way to
    // ask whether they are on but to make a timer (which panics if not).
    let timers = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO)));
    if timers.is_err() {
        return Err(OrchestrationError::InvalidConfig(
            "orchestrations need the tokio runtime's timers: build it with \
             `enable_time()` (or `enable_all()`)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_convert_both_ways() {
        let input = OrchestratorInput::new("x")
            .with_context(serde_json::json!({"a": 1}))
            .with_metadata("k", "v");
        let agent_input: AgentInput = input.clone().into();
        assert_eq!(agent_input.content, "x");
        assert_eq!(agent_input.context["a"], 1);
        assert_eq!(OrchestratorInput::from(agent_input), input);
    }

    #[test]
    fn failures_make_an_output_unsuccessful() {
        let ok = OrchestratorOutput::new("r", vec![]);
        assert!(ok.is_successful());
        let partial = OrchestratorOutput::new("r", vec![]).with_failures(vec![AgentFailure {
            index: 1,
            agent_name: "b".into(),
            error: "boom".into(),
        }]);
        assert!(!partial.is_successful());
    }
}
