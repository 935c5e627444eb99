//! A graph's nodes: where each one's agent comes from, and the policies it
//! runs under.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput, ExecuteFuture};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::registry::AgentRegistry;

/// The policies one node runs under; what it leaves unset comes from its
/// agent's own ([`Agent::max_retries`], [`Agent::attempt_timeout`]), then
/// from the graph's configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeOptions {
    /// Retries after the node's first attempt.
    pub max_retries: Option<usize>,
    /// Bound on each attempt.
    pub attempt_timeout: Option<Duration>,
}

impl NodeOptions {
    /// No options: the agent's and the configuration's policies apply.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the retries after the first attempt.
    #[must_use]
    pub fn with_max_retries(mut self, retries: usize) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Bounds each attempt.
    #[must_use]
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }
}

/// Where a node's agent comes from.
#[derive(Clone)]
pub(super) enum NodeSource {
    Agent(Arc<dyn Agent>),
    /// An agent of a registry, looked up when a run starts.
    Registry {
        registry: Arc<AgentRegistry>,
        id: String,
    },
}

impl NodeSource {
    /// The agent and the options it runs under: a registry's metadata wins
    /// over `options`, as when the registry runs the agent by id.
    pub(super) fn resolve(&self, options: &NodeOptions) -> Result<(Arc<dyn Agent>, NodeOptions)> {
        match self {
            Self::Agent(agent) => Ok((Arc::clone(agent), *options)),
            Self::Registry { registry, id } => {
                let (agent, overrides) = registry.runnable(id)?;
                let options = NodeOptions {
                    max_retries: overrides.max_retries,
                    attempt_timeout: overrides.attempt_timeout,
                };
                Ok((agent, options))
            }
        }
    }
}

/// A node that asks a person: its output is the answer to question
/// `question_id` (the question's text followed by the node's input, when it
/// has one).
pub(super) struct AskAgent {
    pub(super) name: String,
    pub(super) question_id: String,
    pub(super) question: String,
}

#[async_trait]
impl Agent for AskAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "asks a person"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let Some(ctx) = crate::orchestration::ExecutionContext::current() else {
            return Err(OrchestrationError::InvalidConfig(
                "a question node runs inside a run".into(),
            ));
        };
        let question = if input.content.is_empty() {
            self.question.clone()
        } else {
            format!("{}\n\n{}", self.question, input.content)
        };
        // Each pass of a loop asks afresh: pass n > 1 under `id#n` — and in a
        // subgraph, each pass of the loops and maps around it too.
        let activations = crate::orchestration::scope::current()
            .map_or_else(Vec::new, |scope| scope.activations());
        let id = crate::orchestration::Question::id_on_passes(&self.question_id, &activations);
        let answer = ctx.ask(&id, &question)?;
        Ok(AgentOutput::new(answer))
    }

    fn max_retries(&self) -> Option<usize> {
        Some(0)
    }
}

/// A node's agent with the node's options in front of the agent's own.
pub(super) struct NodeAgent {
    agent: Arc<dyn Agent>,
    options: NodeOptions,
}

impl NodeAgent {
    /// `agent` running as a graph node under `options`.
    pub(super) fn boxed(agent: Arc<dyn Agent>, options: NodeOptions) -> Box<dyn Agent> {
        Box::new(Self { agent, options })
    }
}

#[async_trait]
impl Agent for NodeAgent {
    fn name(&self) -> &str {
        self.agent.name()
    }

    fn description(&self) -> &str {
        self.agent.description()
    }

    fn execute<'life0, 'async_trait>(&'life0 self, input: AgentInput) -> ExecuteFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // The node's agent's own future, not one boxed around it.
        self.agent.execute(input)
    }

    fn max_retries(&self) -> Option<usize> {
        self.options
            .max_retries
            .or_else(|| self.agent.max_retries())
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.options
            .attempt_timeout
            .or_else(|| self.agent.attempt_timeout())
    }
}
