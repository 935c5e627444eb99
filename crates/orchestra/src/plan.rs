//! From a checked [`Workflow`] to library objects: one orchestrator for the
//! root group, and one agent per step, where a nested group is an
//! [`OrchestratorAgent`] around its own orchestrator.
//!
//! Every step is wrapped in a [`Step`] that keeps its output in the run's shared
//! state (for `{{output.ID}}` in templates) and bounds its attempts by the
//! agent's own `timeout`.

use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, OrchestrationError,
    Orchestrator, OrchestratorAgent, OrchestratorInput, OrchestratorOutput, ParallelOrchestrator,
    Result, SequentialOrchestrator,
};

use crate::factory::Factory;
use crate::template::output_key;
use crate::workflow::{Group, Mode, Node, Workflow};

/// The root group's orchestrator and its steps, ready to run.
pub struct Plan {
    root: Runner,
    steps: Vec<Box<dyn Agent>>,
}

enum Runner {
    Sequential(SequentialOrchestrator),
    Parallel(ParallelOrchestrator),
}

impl Runner {
    fn new(mode: Mode, config: &ExecutionConfig) -> Self {
        match mode {
            Mode::Sequential => {
                Self::Sequential(SequentialOrchestrator::new().with_config(config.clone()))
            }
            Mode::Parallel => {
                Self::Parallel(ParallelOrchestrator::new().with_config(config.clone()))
            }
        }
    }
}

impl Plan {
    /// Builds every agent of `workflow`.
    ///
    /// # Errors
    /// A message naming the agent the library refused to build.
    pub fn build(workflow: &Workflow) -> std::result::Result<Self, String> {
        let mut factory = Factory::new();
        let steps = steps(&workflow.flow, workflow, &mut factory)?;
        Ok(Self {
            root: Runner::new(workflow.flow.mode, &workflow.flow.config),
            steps,
        })
    }

    /// The root group's configuration (the one the run's context is made with).
    #[must_use]
    pub fn config(&self) -> &ExecutionConfig {
        match &self.root {
            Runner::Sequential(o) => o.config(),
            Runner::Parallel(o) => o.config(),
        }
    }

    /// Runs the flow on `input` under `ctx`.
    ///
    /// # Errors
    /// The run's error (see the library's orchestrators).
    pub async fn run(
        self,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        match self.root {
            Runner::Sequential(o) => o.orchestrate_with_context(self.steps, input, ctx).await,
            Runner::Parallel(o) => o.orchestrate_with_context(self.steps, input, ctx).await,
        }
    }
}

fn steps(
    group: &Group,
    workflow: &Workflow,
    factory: &mut Factory,
) -> std::result::Result<Vec<Box<dyn Agent>>, String> {
    group
        .steps
        .iter()
        .map(|node| step(node, workflow, factory))
        .collect()
}

fn step(
    node: &Node,
    workflow: &Workflow,
    factory: &mut Factory,
) -> std::result::Result<Box<dyn Agent>, String> {
    match node {
        Node::Agent(id) => {
            let def = workflow
                .agent(id)
                .ok_or_else(|| format!("the flow uses agent `{id}`, which is not declared"))?;
            let agent = factory.build(def)?;
            Ok(Box::new(Step::new(id, agent, def.timeout)))
        }
        Node::Group(group) => {
            let agents = steps(group, workflow, factory)?;
            let description = group
                .description
                .clone()
                .unwrap_or_else(|| format!("{} group", group.mode.as_str()));
            let agent: Box<dyn Agent> = match Runner::new(group.mode, &group.config) {
                Runner::Sequential(o) => {
                    Box::new(OrchestratorAgent::new(&group.name, description, o, agents))
                }
                Runner::Parallel(o) => {
                    Box::new(OrchestratorAgent::new(&group.name, description, o, agents))
                }
            };
            Ok(Box::new(Step::new(&group.name, agent, None)))
        }
    }
}

/// A step of the flow: the agent, its own attempt timeout, and its output kept
/// in the run's state under `output.ID`.
struct Step {
    id: String,
    inner: Box<dyn Agent>,
    timeout: Option<Duration>,
}

impl Step {
    fn new(id: &str, inner: Box<dyn Agent>, timeout: Option<Duration>) -> Self {
        Self {
            id: id.to_owned(),
            inner,
            timeout,
        }
    }
}

#[async_trait]
impl Agent for Step {
    fn name(&self) -> &str {
        &self.id
    }

    fn description(&self) -> &str {
        self.inner.description()
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.inner.execute(input);
        let output = match self.timeout {
            None => call.await?,
            Some(limit) => tokio::time::timeout(limit, call).await.map_err(|_| {
                OrchestrationError::Timeout(format!(
                    "agent `{}` exceeded its own {limit:?} timeout",
                    self.id
                ))
            })??,
        };
        if let Some(ctx) = ExecutionContext::current() {
            ctx.set_state(
                output_key(&self.id),
                serde_json::Value::String(output.content.clone()),
            )
            .await;
        }
        Ok(output)
    }
}
