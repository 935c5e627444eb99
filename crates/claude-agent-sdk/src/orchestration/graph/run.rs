//! Running a graph: the check's result compiled into the engine's
//! [`Branching`] (routers, loop conditions, splits by node index), a run or
//! a resumed run handed to the engine, and its report turned into the
//! graph's output — or into the pause that asks for human input.

use std::collections::HashSet;
use std::sync::Arc;

use super::check;
use super::nodes::NodeAgent;
use super::route::{Condition, RouteContext, Router, Split};
use super::GraphOrchestrator;
use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::branching::{decision_of, kept_decision, Branching};
use crate::orchestration::engine::driver::RunReport;
use crate::orchestration::engine::run_state::{Reuse, Reused};
use crate::orchestration::engine::scheduler::{Decision, Scheduler, StepKind};
use crate::orchestration::engine::stop::interruption_error;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::human::{FinishedStep, Pause};
use crate::orchestration::journal::{NodeId, StateChange};
use crate::orchestration::orchestrator::{AgentFailure, OrchestratorInput, OrchestratorOutput};
use crate::orchestration::patterns::{orchestrator_impl, run_pattern, Flow, TraceOut};
use crate::orchestration::resume::Continuation;

impl GraphOrchestrator {
    /// Runs the graph on `input`: a graph holds its agents, so this is
    /// [`orchestrate`](crate::orchestration::Orchestrator::orchestrate)
    /// with no agent list — under a context of its own, whose trace the
    /// output carries.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{AgentOutput, GraphOrchestrator, SimpleAgent, END, START};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let shout = SimpleAgent::new("shout", "upper-cases", |input| {
    ///     Ok(AgentOutput::new(input.content.to_uppercase()))
    /// });
    /// let graph = GraphOrchestrator::new("loud")
    ///     .add_node("shout", shout)
    ///     .add_edge(START, "shout")
    ///     .add_edge("shout", END);
    /// let output = graph.invoke("hello").await?;
    /// assert_eq!(output.result, "HELLO");
    /// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`orchestrate`](crate::orchestration::Orchestrator::orchestrate).
    pub async fn invoke(&self, input: impl Into<OrchestratorInput>) -> Result<OrchestratorOutput> {
        use crate::orchestration::Orchestrator as _;
        self.orchestrate(Vec::new(), input.into()).await
    }

    /// As [`invoke`](Self::invoke), under a caller-owned context (its journal,
    /// cancellation, answers and shared state):
    /// [`orchestrate_with_context`](crate::orchestration::Orchestrator::orchestrate_with_context)
    /// with no agent list.
    ///
    /// # Errors
    /// As [`orchestrate_with_context`](crate::orchestration::Orchestrator::orchestrate_with_context).
    pub async fn invoke_in(
        &self,
        input: impl Into<OrchestratorInput>,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        use crate::orchestration::Orchestrator as _;
        self.orchestrate_with_context(Vec::new(), input.into(), ctx)
            .await
    }

    /// Continues a run that paused for human input (see [`human`](crate::orchestration::human)),
    /// under a fresh context: the steps the paused run finished are not run
    /// again (their outputs are reused, and go where their routers and loop
    /// conditions sent them before the pause), and the agents that asked get
    /// `answers` (question id → answer) from
    /// [`ExecutionContext::ask`]. A run may pause again on new questions.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{
    ///     Agent, AgentInput, AgentOutput, ExecutionContext, GraphOrchestrator,
    ///     OrchestrationError, Orchestrator, OrchestratorInput, Result, END, START,
    /// };
    ///
    /// struct Spender;
    /// #[async_trait::async_trait]
    /// impl Agent for Spender {
    ///     fn name(&self) -> &str { "spender" }
    ///     fn description(&self) -> &str { "spends money, with approval" }
    ///     async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
    ///         let ctx = ExecutionContext::current().expect("runs in a run");
    ///         let answer = ctx.ask("approve", "Spend $50?")?;
    ///         Ok(AgentOutput::new(format!("{}: {answer}", input.content)))
    ///     }
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let graph = GraphOrchestrator::new("buy")
    ///     .add_node("spend", Spender)
    ///     .add_edge(START, "spend")
    ///     .add_edge("spend", END);
    /// let Err(OrchestrationError::InputRequired(pause)) =
    ///     graph.orchestrate(vec![], OrchestratorInput::new("order")).await
    /// else {
    ///     panic!("the run should pause");
    /// };
    /// assert_eq!(pause.questions[0].text, "Spend $50?");
    /// let output = graph.resume(*pause, [("approve", "yes")]).await?;
    /// assert_eq!(output.result, "order: yes");
    /// # Ok::<(), OrchestrationError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`orchestrate`](crate::orchestration::Orchestrator::orchestrate);
    /// [`OrchestrationError::InvalidConfig`] when `pause` names a node this
    /// graph does not have.
    pub async fn resume<I, K, V>(&self, pause: Pause, answers: I) -> Result<OrchestratorOutput>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let ctx = ExecutionContext::private(self.base.config().clone());
        self.resume_with_context(pause, answers, &ctx, TraceOut::Take)
            .await
    }

    /// As [`resume`](Self::resume), under a caller-owned context (which
    /// keeps the answers).
    ///
    /// # Errors
    /// As [`resume`](Self::resume).
    pub async fn resume_in<I, K, V>(
        &self,
        pause: Pause,
        answers: I,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.resume_with_context(pause, answers, ctx, TraceOut::Attach)
            .await
    }

    async fn resume_with_context<I, K, V>(
        &self,
        pause: Pause,
        answers: I,
        ctx: &ExecutionContext,
        trace: TraceOut,
    ) -> Result<OrchestratorOutput>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let input = pause.input.unwrap_or_default();
        // The resumed run continues the paused one (in the journal, and in
        // its idempotency keys).
        let ctx = match pause.run {
            Some(previous) => ctx.clone().continuing(Continuation::after_pause(
                previous,
                pause.origin.unwrap_or(previous),
                input.clone(),
            )),
            None => ctx.clone(),
        };
        let ctx = &ctx;
        for (id, answer) in pause.answers {
            ctx.answer(id, answer);
        }
        for (id, answer) in answers {
            ctx.answer(id, answer);
        }
        // The state the run had when it paused, unless the context holds
        // it (the run paused under it, or a handle sharing its state): a
        // context seeded before the resume gets the paused values too.
        if !pause.run.is_some_and(|run| ctx.holds_changes_of(run)) {
            ctx.replay_state(
                &HashSet::new(),
                pause
                    .state
                    .into_iter()
                    .map(|(key, value)| (key, StateChange::Set(value))),
            );
        }
        let reuse = self.reuse(pause.finished, ctx, false)?;
        self.run_reusing(vec![], input, ctx, trace, reuse).await
    }

    /// What a run under `ctx` reuses of `finished`, the steps a paused run
    /// finished: this graph's own steps' outputs, returned; the steps of the
    /// graphs nested in its nodes, kept in `ctx` for the runs nested there.
    /// A step naming a node this graph does not have is an error when this
    /// graph is the one resumed; in a graph nested in a step (handed back by
    /// the run around it), it is left out: the graph changed since, and what
    /// it has runs anew.
    fn reuse(
        &self,
        finished: Vec<FinishedStep>,
        ctx: &ExecutionContext,
        nested: bool,
    ) -> Result<Reuse> {
        let position = |id: &str| {
            let position = self.nodes.iter().position(|node| node.id == id);
            position.map(NodeId::from_index).ok_or_else(|| {
                OrchestrationError::InvalidConfig(format!(
                    "the paused run names node `{id}`, which graph `{}` does not have",
                    self.base.name()
                ))
            })
        };
        let mut reuse = Reuse::new();
        for mut step in finished {
            let named = step.within.first().map_or(&step.node, |outer| &outer.node);
            if nested && position(named).is_err() {
                continue;
            }
            if step.within.is_empty() {
                let decision = step
                    .decision
                    .as_ref()
                    .and_then(|kept| decision_of(kept, |id| position(id).ok()));
                let reused = Reused {
                    output: step.output,
                    decision,
                };
                reuse.insert((position(&step.node)?, step.activation), reused);
            } else {
                let enclosing = step.within.remove(0);
                let node = position(&enclosing.node)?;
                ctx.keep_paused_inside((node, enclosing.activation), vec![step]);
            }
        }
        Ok(reuse)
    }

    async fn run(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
        trace: TraceOut,
    ) -> Result<OrchestratorOutput> {
        // A subgraph whose enclosing run resumes reuses what it finished.
        let reuse = self.reuse(ctx.take_finished_before(), ctx, true)?;
        self.run_reusing(agents, input, ctx, trace, reuse).await
    }

    async fn run_reusing(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
        trace: TraceOut,
        reuse: Reuse,
    ) -> Result<OrchestratorOutput> {
        if !agents.is_empty() {
            return Err(OrchestrationError::InvalidConfig(format!(
                "graph `{}` carries its own agents: pass an empty list, not {}",
                self.base.name(),
                agents.len()
            )));
        }
        let prepared = self.prepared()?;
        let agents = match &prepared.agents {
            Some(agents) => Arc::clone(agents),
            None => {
                let mut agents: Vec<Box<dyn Agent>> = Vec::with_capacity(self.nodes.len());
                for node in &self.nodes {
                    let (agent, options) = node.source.resolve(&node.options)?;
                    agents.push(NodeAgent::boxed(agent, options));
                }
                Arc::new(agents)
            }
        };
        let flow = Flow {
            graph: prepared.graph.clone(),
            branching: Some(Arc::clone(&prepared.compiled) as Arc<dyn Branching>),
            budget: self.budget,
            reuse,
        };
        let kept_input = input.clone();
        let compiled = Arc::clone(&prepared.compiled);
        run_pattern(&self.base, flow, agents, input, ctx, trace, |report| {
            // A crossed budget, a cancel or a timeout ends the run: no pause
            // to resume.
            if !report.asked.is_empty() && report.stopped.is_none() && report.interrupted.is_none()
            {
                return Err(self.paused(&report, compiled.as_ref(), kept_input, ctx));
            }
            conclude(report, compiled.as_ref(), self.base.name())
        })
        .await
    }

    /// The pause of a run whose steps asked questions.
    fn paused(
        &self,
        report: &RunReport,
        compiled: &Compiled,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> OrchestrationError {
        let finished = report
            .scheduler
            .steps()
            .iter()
            .zip(&report.outputs)
            .enumerate()
            .filter(|(_, (step, _))| step.kind == StepKind::Agent)
            .filter_map(|(index, (step, output))| {
                let mut finished = FinishedStep::new(
                    self.nodes.get(step.node.index())?.id.clone(),
                    step.activation,
                    output.clone()?,
                );
                finished.decision = report
                    .decisions
                    .get(index)
                    .and_then(Option::as_ref)
                    .map(|decision| kept_decision(decision, compiled));
                Some(finished)
            })
            .chain(report.finished_inside.iter().cloned())
            .collect();
        OrchestrationError::InputRequired(Box::new(Pause {
            questions: report
                .asked
                .iter()
                .map(|(_, question)| question.clone())
                .collect(),
            finished,
            answers: ctx.answers(),
            input: Some(input),
            state: ctx.read_state().clone(),
            run: Some(report.run),
            origin: report.origin,
        }))
    }
}

orchestrator_impl!(GraphOrchestrator);

/// A router and the targets it may name (`None`: END).
type RouterEntry = (Router, Vec<(String, Option<NodeId>)>);

/// The graph's decisions, with node ids resolved to indexes.
pub(super) struct Compiled {
    labels: Vec<String>,
    /// By node: its router and the nodes it may route to (`None`: END).
    routers: Vec<Option<RouterEntry>>,
    /// By node: the condition of the loop it closes.
    loops: Vec<Option<Condition>>,
    splits: Vec<Option<Split>>,
}

impl Compiled {
    pub(super) fn new(definition: &GraphOrchestrator, checked: &check::Checked) -> Self {
        let count = definition.nodes.len();
        let mut routers: Vec<Option<_>> = vec![None; count];
        for router in &definition.routers {
            if let Some(node) = checked.index.get(&router.from) {
                let targets = router
                    .targets
                    .iter()
                    .map(|target| (target.clone(), checked.index.get(target).copied()))
                    .collect();
                routers[node.index()] = Some((Arc::clone(&router.router), targets));
            }
        }
        let mut loops: Vec<Option<Condition>> = vec![None; count];
        for lp in &definition.loops {
            if let Some(node) = checked.index.get(&lp.from) {
                loops[node.index()] = Some(Arc::clone(&lp.again));
            }
        }
        Self {
            labels: definition.nodes.iter().map(|n| n.id.clone()).collect(),
            routers,
            loops,
            splits: definition.nodes.iter().map(|n| n.split.clone()).collect(),
        }
    }
}

impl Branching for Compiled {
    fn decide(
        &self,
        node: NodeId,
        output: &AgentOutput,
        iteration: u32,
        ctx: &ExecutionContext,
    ) -> Result<Option<Decision>> {
        let router = self.routers.get(node.index()).and_then(Option::as_ref);
        let condition = self.loops.get(node.index()).and_then(Option::as_ref);
        if router.is_none() && condition.is_none() {
            return Ok(None);
        }
        let label = self.label(node);
        let state = ctx.read_state();
        let route = RouteContext {
            node: label,
            output,
            iteration,
            state: &state,
        };
        let again = match condition {
            Some(again) => contained(
                || again(&route),
                || format!("the loop condition of `{label}`"),
            )?,
            None => false,
        };
        let mut decision = Decision {
            again,
            ..Decision::default()
        };
        if let Some((router, targets)) = router {
            let chosen = contained(|| router(&route), || format!("the router of `{label}`"))?;
            let mut routes = Vec::with_capacity(chosen.targets.len());
            let mut ends = false;
            for target in &chosen.targets {
                match targets.iter().find(|(id, _)| id == target) {
                    Some((_, Some(next))) => routes.push(*next),
                    Some((_, None)) => ends = true,
                    None => {
                        return Err(OrchestrationError::InvalidConfig(format!(
                        "the router of `{label}` chose `{target}`, which is not among its targets"
                    )))
                    }
                }
            }
            decision.routes = Some(routes);
            decision.ends = Some(ends);
        }
        Ok(Some(decision))
    }

    fn split(&self, node: NodeId, input: &AgentInput) -> Result<Vec<String>> {
        match self.splits.get(node.index()).and_then(Option::as_ref) {
            // Our own splits' errors say what was wrong, not where: the
            // map is named.
            Some(split) => contained(
                || split.items(&input.content),
                || format!("the split of `{}`", self.label(node)),
            )?
            .map_err(|error| {
                let named = |why: String| format!("the map `{}`: {why}", self.label(node));
                match error {
                    OrchestrationError::OrchestratorFailed(why) => {
                        OrchestrationError::OrchestratorFailed(named(why))
                    }
                    OrchestrationError::InvalidConfig(why) => {
                        OrchestrationError::InvalidConfig(named(why))
                    }
                    other => other,
                }
            }),
            None => Ok(Vec::new()),
        }
    }

    fn label(&self, node: NodeId) -> &str {
        self.labels.get(node.index()).map_or("", String::as_str)
    }
}

/// What `decide` returns, run with its panics contained: a router, a loop
/// condition or a split that panics fails its step for good, as a panicking
/// agent does, instead of taking down the worker that ran it.
fn contained<T>(decide: impl FnOnce() -> T, what: impl FnOnce() -> String) -> Result<T> {
    crate::orchestration::executor::panic::contained(decide).map_err(|panic| {
        OrchestrationError::AgentError(AgentError::new(format!("{} panicked: {panic}", what())))
    })
}

/// The nodes whose steps failed for good (not retryable), with their
/// agents' names — but for map items and nodes in loops, which a retry may
/// run on other inputs.
fn failed_for_good(report: &RunReport) -> Vec<(NodeId, String)> {
    let scheduler = &report.scheduler;
    let graph = scheduler.graph();
    let mut nodes: Vec<(NodeId, String)> = Vec::new();
    for (step, error) in &report.failures {
        let Some(info) = scheduler.step(*step) else {
            continue;
        };
        let in_loop = graph.loops.iter().any(|lp| lp.body.contains(&info.node));
        if error.is_retryable() || info.item.is_some() || in_loop {
            continue;
        }
        if !nodes.iter().any(|(node, _)| *node == info.node) {
            nodes.push((info.node, report.names.get(info.node).to_owned()));
        }
    }
    nodes
}

/// Why no branch led on, when routers chose none: `": the router of `a`
/// chose no branch"`, nodes by their ids (empty when every router chose
/// one).
fn chose_nothing(report: &RunReport, compiled: &Compiled) -> String {
    let mut routers: Vec<String> = Vec::new();
    for (step, decision) in report.decisions.iter().enumerate() {
        let Some(decision) = decision else { continue };
        let chose_none =
            decision.routes.as_ref().is_some_and(Vec::is_empty) && decision.ends != Some(true);
        let Some(info) = report.scheduler.step(NodeId::from_index(step)) else {
            continue;
        };
        let name = format!("`{}`", compiled.label(info.node));
        if chose_none && !routers.contains(&name) {
            routers.push(name);
        }
    }
    match routers.as_slice() {
        [] => String::new(),
        [one] => format!(": the router of {one} chose no branch"),
        many => format!(": the routers of {} chose no branch", many.join(", ")),
    }
}

/// The output of a graph run: the results that reached the end, every
/// successful step's output, and the failures tolerated on the way.
fn conclude(report: RunReport, compiled: &Compiled, name: &str) -> Result<OrchestratorOutput> {
    if let Some(why) = report.interrupted {
        return Err(interruption_error(why, name, report.time_limit));
    }
    if let Some(stopped) = report.stopped {
        return Err(stopped);
    }
    let scheduler = &report.scheduler;
    let results: Vec<&AgentOutput> = scheduler
        .results()
        .iter()
        .filter_map(|step| report.outputs.get(step.index())?.as_ref())
        .collect();
    if results.is_empty() {
        let for_good = failed_for_good(&report);
        let chose_nothing = chose_nothing(&report, compiled);
        return Err(match report.failures.into_iter().next() {
            None => OrchestrationError::OrchestratorFailed(format!(
                "graph `{name}` ended without reaching END{chose_nothing}"
            )),
            // The first failure is retryable, but the nodes that failed for
            // good keep any run of the graph from reaching END: no retry
            // around it runs them again.
            Some((_, first))
                if first.is_retryable()
                    && !for_good.is_empty()
                    && !Scheduler::could_reach_end(scheduler.graph(), |node| {
                        for_good.iter().any(|(failed, _)| *failed == node)
                    }) =>
            {
                let names: Vec<String> = for_good
                    .iter()
                    .map(|(_, agent)| format!("`{agent}`"))
                    .collect();
                first.made_permanent(&format!(
                    "no retry can reach END: {} failed for good",
                    names.join(", ")
                ))
            }
            Some((_, first)) => first,
        });
    }
    let result = results
        .iter()
        .map(|output| output.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let failures = report
        .failures
        .iter()
        .map(|(step, error)| AgentFailure {
            index: step.index(),
            agent_name: scheduler
                .step(*step)
                .map_or("", |info| report.names.get(info.node))
                .to_owned(),
            error: match error {
                OrchestrationError::AgentFailed(_, reason) => reason.to_string(),
                other => other.to_string(),
            },
        })
        .collect();
    let outputs = report
        .outputs
        .into_iter()
        .enumerate()
        .filter(|(index, _)| {
            scheduler
                .step(NodeId::from_index(*index))
                .is_some_and(|step| step.kind == StepKind::Agent)
        })
        .filter_map(|(_, output)| output)
        .collect();
    Ok(OrchestratorOutput::new(result, outputs).with_failures(failures))
}
