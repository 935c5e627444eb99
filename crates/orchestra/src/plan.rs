//! From a checked [`Workflow`] to library objects: one orchestrator for the
//! root group, and one agent per step, where a nested group is an
//! [`OrchestratorAgent`] around its own orchestrator.
//!
//! Every step is wrapped in a [`Step`] that keeps its output in the run's shared
//! state (for `{{output.ID}}` in templates) and carries the agent's own
//! `retries` and `timeout` to the library, which runs the agent with them
//! instead of its group's `retries` and `agent_timeout`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    fork, resume_with_metadata, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, Orchestrator, OrchestratorAgent, OrchestratorInput, OrchestratorOutput,
    ParallelOrchestrator, Result, RunId, SequentialOrchestrator, END, START,
};

use std::sync::Arc;

use crate::factory::Factory;
use crate::fail_fast::{FailFast, Tripwire};
use crate::graph_plan::{wire, Routed};
use crate::template::keep_output;
use crate::workflow::graph_model::{GraphSpec, RouteBy};
use crate::workflow::{Group, Mode, Node, Workflow};

/// The root group's orchestrator and its steps, ready to run.
pub struct Plan {
    root: Runner,
    steps: Vec<Box<dyn Agent>>,
}

enum Runner {
    Sequential(SequentialOrchestrator),
    Parallel(ParallelOrchestrator),
    /// A graph carries its own agents (boxed: it is the largest by far).
    Graph(Box<GraphOrchestrator>),
}

/// The orchestrator of `group` and the agents it is given (none for a
/// graph). A sequential or parallel group with a budget runs as the one node
/// of a graph that carries the budget.
fn runner(
    group: &Group,
    workflow: &Workflow,
    factory: &mut Factory,
) -> std::result::Result<(Runner, Vec<Box<dyn Agent>>), String> {
    let config = &group.config;
    let (runner, agents) = match (&group.graph, group.mode) {
        (Some(spec), _) => (
            Runner::Graph(Box::new(graph(group, spec, workflow, factory)?)),
            Vec::new(),
        ),
        (None, Mode::Parallel) => (
            Runner::Parallel(
                ParallelOrchestrator::new()
                    .with_name(format!("group `{}`", group.name))
                    .with_config(config.clone()),
            ),
            steps(group, workflow, factory)?,
        ),
        (None, _) => (
            Runner::Sequential(
                SequentialOrchestrator::new()
                    .with_name(format!("group `{}`", group.name))
                    .with_config(config.clone()),
            ),
            steps(group, workflow, factory)?,
        ),
    };
    let Some(budget) = group.budget.as_deref().copied() else {
        return Ok((runner, agents));
    };
    let bounded = match runner {
        Runner::Graph(graph) => (*graph).with_budget(budget),
        Runner::Sequential(o) => budgeted(group, o, agents).with_budget(budget),
        Runner::Parallel(o) => budgeted(group, o, agents).with_budget(budget),
    };
    Ok((Runner::Graph(Box::new(bounded)), Vec::new()))
}

/// `orchestrator` over `agents` as the one node of a graph named after `group`.
fn budgeted<O: Orchestrator + 'static>(
    group: &Group,
    orchestrator: O,
    agents: Vec<Box<dyn Agent>>,
) -> GraphOrchestrator {
    let inner = OrchestratorAgent::new(&group.name, description(group), orchestrator, agents);
    GraphOrchestrator::new(&group.name)
        .with_config(group.config.clone().with_max_retries(0))
        .add_node(&group.name, inner)
        .add_edge(START, &group.name)
        .add_edge(&group.name, END)
}

fn description(group: &Group) -> String {
    group
        .description
        .clone()
        .unwrap_or_else(|| format!("{} group", group.mode.as_str()))
}

/// The graph of a graph group, its nodes built by `factory`.
fn graph(
    group: &Group,
    spec: &GraphSpec,
    workflow: &Workflow,
    factory: &mut Factory,
) -> std::result::Result<GraphOrchestrator, String> {
    let mut nodes = Vec::new();
    for node in &group.steps {
        let mut agent: Arc<dyn Agent> = Arc::from(step(node, workflow, factory)?);
        let routed_by = spec.routes.iter().find_map(|route| match &route.by {
            RouteBy::Router { agent, .. } if route.from == node.name() => Some(agent),
            _ => None,
        });
        if let Some(router) = routed_by {
            let router = step(&Node::Agent(router.clone()), workflow, factory)?;
            agent = Arc::new(Routed::new(agent, Arc::from(router)));
        }
        nodes.push((node.name().to_owned(), agent));
    }
    let graph = wire(
        &group.name,
        spec,
        nodes,
        &group.config,
        factory.map_counts(),
    );
    graph.validate().map_err(|error| error.to_string())?;
    Ok(graph)
}

impl Plan {
    /// Builds every agent of `workflow` with `factory`.
    ///
    /// # Errors
    /// A message naming the agent the library refused to build.
    pub fn build(workflow: &Workflow, mut factory: Factory) -> std::result::Result<Self, String> {
        let (root, steps) = runner(&workflow.flow, workflow, &mut factory)?;
        Ok(Self { root, steps })
    }

    /// The root group's configuration (the one the run's context is made with).
    #[must_use]
    pub fn config(&self) -> &ExecutionConfig {
        match &self.root {
            Runner::Sequential(o) => o.config(),
            Runner::Parallel(o) => o.config(),
            Runner::Graph(o) => o.config(),
        }
    }

    /// Runs the flow on `input` under `ctx`.
    ///
    /// # Errors
    /// The run's error (see the library's orchestrators).
    pub async fn run(
        &mut self,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        let steps = std::mem::take(&mut self.steps);
        self.root
            .orchestrator()
            .orchestrate_with_context(steps, input, ctx)
            .await
    }

    /// Continues stored run `run` under `ctx` (whose journal holds it).
    ///
    /// # Errors
    /// The continued run's error, or why it cannot be continued.
    pub async fn continue_stored(
        &mut self,
        run: RunId,
        metadata: HashMap<String, String>,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        let steps = std::mem::take(&mut self.steps);
        resume_with_metadata(self.root.orchestrator(), steps, run, metadata, ctx).await
    }

    /// Starts a new run from stored run `run`, after step `after`.
    ///
    /// # Errors
    /// The new run's error, or why it cannot start.
    pub async fn fork_stored(
        &mut self,
        run: RunId,
        after: &str,
        input: Option<OrchestratorInput>,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        let steps = std::mem::take(&mut self.steps);
        fork(self.root.orchestrator(), steps, run, after, input, ctx).await
    }
}

impl Runner {
    fn orchestrator(&self) -> &dyn Orchestrator {
        match self {
            Self::Sequential(o) => o,
            Self::Parallel(o) => o,
            Self::Graph(o) => o.as_ref(),
        }
    }
}

fn steps(
    group: &Group,
    workflow: &Workflow,
    factory: &mut Factory,
) -> std::result::Result<Vec<Box<dyn Agent>>, String> {
    let steps = group
        .steps
        .iter()
        .map(|node| step(node, workflow, factory))
        .collect::<std::result::Result<Vec<_>, String>>()?;
    if !group.fail_fast {
        return Ok(steps);
    }
    let wire = Tripwire::new();
    Ok(steps
        .into_iter()
        .map(|step| {
            let retries = step.max_retries().unwrap_or(group.config.max_retries);
            let attempts = retries.saturating_add(1);
            Box::new(FailFast::new(
                step,
                &group.name,
                Arc::clone(&wire),
                attempts,
            )) as Box<dyn Agent>
        })
        .collect())
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
            let retries = def
                .retries
                .map(|r| usize::try_from(r).unwrap_or(usize::MAX));
            Ok(Box::new(
                Step::new(id, agent).with_overrides(retries, def.timeout),
            ))
        }
        Node::Group(group) => {
            let (runner, agents) = runner(group, workflow, factory)?;
            let description = description(group);
            let agent: Box<dyn Agent> = match runner {
                Runner::Sequential(o) => {
                    Box::new(OrchestratorAgent::new(&group.name, description, o, agents))
                }
                Runner::Parallel(o) => {
                    Box::new(OrchestratorAgent::new(&group.name, description, o, agents))
                }
                Runner::Graph(o) => {
                    Box::new(OrchestratorAgent::new(&group.name, description, *o, agents))
                }
            };
            // A group is attempted once: its steps have their own retries,
            // and its `timeout` bounds the group's run, not one attempt of
            // many (a failed group is not run again whole).
            Ok(Box::new(
                Step::new(&group.name, agent).with_overrides(Some(0), None),
            ))
        }
    }
}

/// A step of the flow: the agent under the step's id, its output kept in the
/// run's state under `output.ID`, and the agent's own retry budget and attempt
/// bound, when the workflow file gives them.
///
/// The library's runner asks every agent for [`Agent::max_retries`] and
/// [`Agent::attempt_timeout`] and prefers them to the group's `retries` and
/// `agent_timeout`, so a timed-out attempt fails as a retryable
/// [`Timeout`](claude_agent_sdk::orchestration::OrchestrationError::Timeout)
/// and is traced like any other attempt.
struct Step {
    id: String,
    inner: Box<dyn Agent>,
    retries: Option<usize>,
    timeout: Option<Duration>,
}

impl Step {
    fn new(id: &str, inner: Box<dyn Agent>) -> Self {
        Self {
            id: id.to_owned(),
            inner,
            retries: None,
            timeout: None,
        }
    }

    /// The agent's own `retries` and `timeout` from the workflow file.
    fn with_overrides(mut self, retries: Option<usize>, timeout: Option<Duration>) -> Self {
        self.retries = retries;
        self.timeout = timeout;
        self
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

    async fn execute(&self, mut input: AgentInput) -> Result<AgentOutput> {
        // The workflow's fingerprints ride in the run's input for the run
        // store (to refuse resuming a changed workflow); they are not the
        // agents' input (a template's `{{metadata.*}}`, a program's stdin).
        input.metadata.remove(crate::run::fingerprint::KEY);
        let output = self.inner.execute(input).await?;
        keep_output(&self.id, &output).await;
        Ok(output)
    }

    fn max_retries(&self) -> Option<usize> {
        self.retries.or_else(|| self.inner.max_retries())
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout.or_else(|| self.inner.attempt_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claude_agent_sdk::orchestration::SimpleAgent;

    fn echo() -> Box<dyn Agent> {
        Box::new(SimpleAgent::new("echo", "echoes", |input| {
            Ok(AgentOutput::new(input.content))
        }))
    }

    #[tokio::test]
    async fn a_step_forwards_the_agent_under_its_id() {
        let step = Step::new("first", echo());
        assert_eq!(step.name(), "first");
        assert_eq!(step.description(), "echoes");
        let output = step.execute(AgentInput::new("hi")).await;
        assert_eq!(output.map(|o| o.content).ok().as_deref(), Some("hi"));
    }

    #[test]
    fn a_flow_without_timeout_has_no_run_limit_and_one_with_it_keeps_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let plan_of = |text: &str| {
            let path = dir.path().join("w.toml");
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            let workflow = crate::workflow::load(&path, crate::workflow::Strictness::Structure)
                .unwrap_or_else(|e| panic!("{}", e.render()));
            Plan::build(&workflow, Factory::new()).unwrap_or_else(|e| panic!("{e}"))
        };
        let agent = "[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n";
        let unbounded = plan_of(&format!("[flow]\nsequential = [\"a\"]\n{agent}"));
        assert_eq!(unbounded.config().timeout, Duration::MAX);
        let bounded = plan_of(&format!(
            "[flow]\nsequential = [\"a\"]\ntimeout = \"10m\"\n{agent}"
        ));
        assert_eq!(bounded.config().timeout, Duration::from_secs(600));
    }

    #[test]
    fn a_step_carries_the_agents_own_retries_and_timeout() {
        let plain = Step::new("plain", echo());
        assert_eq!(plain.max_retries(), None);
        assert_eq!(plain.attempt_timeout(), None);

        let tuned =
            Step::new("tuned", echo()).with_overrides(Some(4), Some(Duration::from_millis(250)));
        assert_eq!(tuned.max_retries(), Some(4));
        assert_eq!(tuned.attempt_timeout(), Some(Duration::from_millis(250)));
    }
}
