//! One step of a run, walked: what every walker of a run shares, and
//! [`Walk::run_step`], which runs a step's attempts and decides where its
//! output goes.
//!
//! A run's steps are walked one at a time ([`serial`](super::serial)) or by
//! several [workers](super::workers) at once. Either way the walkers share
//! one [`Walk`] (the agents, the run's input, the policies, the graph's
//! [`Branching`]), which nothing changes while the run goes on. That is why
//! a step can run outside the lock that guards the run's
//! [`RunState`](super::run_state::RunState): only what the state hands out
//! ([`Job`]) and what it is handed back ([`StepEnd`]) cross that lock.
//!
//! A run's agents are owned or borrowed ([`Agents`]). Owned agents can go to
//! tasks of their own ([`Walk::into_owned`]); one borrowed agent runs on the
//! caller's task.

use std::sync::Arc;

use tokio::time::Instant;

use super::branching::{kept_decision, Branching};
use super::recorder::NodeNames;
use super::scheduler::{Decision, StepId};
use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::budget::RunBudget;
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::executor::retry::RetryPolicy;
use crate::orchestration::executor::{
    run_node, AttemptInputs, InputOrigin, NodeFailure, NodePolicy, RunShared, StepKey,
};
use crate::orchestration::journal::NodeId;
use crate::orchestration::scope::RunBooks;
use crate::orchestration::usage::Usage;

/// A run's agents: owned (they can go to tasks of their own), or one
/// borrowed agent (run on the caller's task).
pub(crate) enum Agents<'a> {
    Owned(Arc<Vec<Box<dyn Agent>>>),
    Borrowed(&'a dyn Agent),
}

impl Agents<'_> {
    pub(crate) fn get(&self, node: NodeId) -> Option<&dyn Agent> {
        match self {
            Self::Owned(agents) => agents.get(node.index()).map(|agent| agent.as_ref()),
            Self::Borrowed(agent) => (node.index() == 0).then_some(*agent),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Self::Owned(agents) => agents.len(),
            Self::Borrowed(_) => 1,
        }
    }

    pub(super) fn names(&self) -> NodeNames {
        match self {
            Self::Owned(agents) => NodeNames::Agents(Arc::clone(agents)),
            Self::Borrowed(agent) => NodeNames::One(Arc::from(agent.name())),
        }
    }
}

/// Per-run settings that win over the agents' own and the config's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overrides {
    pub(crate) max_retries: Option<usize>,
    pub(crate) attempt_timeout: Option<std::time::Duration>,
}

/// What every walker of a run shares.
pub(crate) struct Walk<'a> {
    pub(crate) run: Arc<RunShared>,
    /// The agents, by node.
    pub(crate) agents: Agents<'a>,
    pub(crate) input: Arc<AgentInput>,
    pub(crate) config: ExecutionConfig,
    pub(crate) overrides: Overrides,
    pub(crate) retry: Arc<dyn RetryPolicy>,
    pub(crate) branching: Option<Arc<dyn Branching>>,
    pub(crate) budget: RunBudget,
    /// When the run started (for the duration budget).
    pub(crate) started: Instant,
    /// Whether the journal stores durably: each step's end is then
    /// committed before the steps after it start.
    pub(crate) durable: bool,
}

/// A step to run: the step, its node, and its input when it is not the
/// run's own (made under the lock, where the outputs it reads cannot move).
pub(crate) struct Job {
    pub(crate) step: StepId,
    pub(crate) node: NodeId,
    /// Which of the node's activations the step is, from 1.
    pub(crate) activation: u32,
    /// The iteration of the loop the node is in (1 outside loops).
    pub(crate) iteration: u32,
    pub(crate) origin: InputOrigin,
    pub(crate) input: Option<AgentInput>,
}

/// How a step ended: its outcome and, when it succeeded, the decision on
/// where its output goes (`None`: its node decides nothing).
pub(crate) struct StepEnd {
    pub(crate) step: StepId,
    pub(crate) outcome: std::result::Result<AgentOutput, NodeFailure>,
    pub(crate) decision: Option<Decision>,
    /// What it spent that was not counted as it ran (see
    /// [`Success::uncounted`](crate::orchestration::executor::Success::uncounted)).
    pub(crate) charge: Usage,
    /// The journal's failure to store the step's end, when it failed.
    pub(crate) store: Option<OrchestrationError>,
}

impl<'a> Walk<'a> {
    /// The same walk with owned agents, which can go to tasks of their own;
    /// `Err` with the walk itself when its agent is borrowed.
    pub(crate) fn into_owned(self) -> std::result::Result<Walk<'static>, Box<Self>> {
        let agents = match self.agents {
            Agents::Owned(agents) => agents,
            Agents::Borrowed(_) => return Err(Box::new(self)),
        };
        Ok(Walk {
            run: self.run,
            agents: Agents::Owned(agents),
            input: self.input,
            config: self.config,
            overrides: self.overrides,
            retry: self.retry,
            branching: self.branching,
            budget: self.budget,
            started: self.started,
            durable: self.durable,
        })
    }

    /// Runs `job` through the executor, then asks the graph where its
    /// output goes. A retry of a step fed by another gets its input afresh
    /// from `remake` (the run's state makes it).
    pub(crate) async fn run_step(
        &self,
        job: Job,
        remake: &(dyn Fn(StepId) -> AgentInput + Sync),
    ) -> StepEnd {
        let Some(agent) = self.agents.get(job.node) else {
            return StepEnd {
                step: job.step,
                outcome: Err(NodeFailure::Failed(missing_agent(job.node))),
                decision: None,
                charge: Usage::default(),
                store: None,
            };
        };
        let fresh = || match job.origin {
            InputOrigin::RunInput => AgentInput::clone(&self.input),
            _ => remake(job.step),
        };
        let inputs = AttemptInputs {
            first: job.input,
            fresh: &fresh,
        };
        let policy = self.policy(agent);
        let step = StepKey {
            step: job.step,
            node: job.node,
            activation: job.activation,
        };
        // What the step spent is worked out before its router or loop
        // condition decides: a decision that fails does not unspend it.
        let (mut outcome, charge) =
            match run_node(&self.run, step, agent, inputs, job.origin, &policy).await {
                Ok(success) => {
                    let charge = success.uncounted();
                    (Ok(success.output), charge)
                }
                Err(failure) => (Err(failure), Usage::default()),
            };
        let mut decision = None;
        // A step left behind by a run that has returned (it blocked its
        // thread past the stop) decides nothing: the run is over.
        let run_over = RunBooks::is_closed(self.run.as_ref());
        if let (Ok(output), Some(branching), false) = (&outcome, &self.branching, run_over) {
            match branching.decide(job.node, output, job.iteration, &self.run.ctx) {
                Ok(decided) => decision = decided,
                Err(error) => outcome = Err(NodeFailure::Failed(error)),
            }
            // Journaled with the step's end, so a resumed run that reuses
            // the step goes the same way.
            if let Some(decided) = &decision {
                let kept = kept_decision(decided, branching.as_ref());
                self.run.recorder.step_decided(job.step, kept);
            }
        }
        // A durable journal commits the step's end before anything that
        // follows it starts: a resumed run never runs it again.
        let store = if self.durable {
            self.run.ctx.journal().flush().await.err()
        } else {
            None
        };
        StepEnd {
            step: job.step,
            outcome,
            decision,
            charge,
            store,
        }
    }

    /// The policies `agent` runs under.
    pub(crate) fn policy<'p>(&'p self, agent: &dyn Agent) -> NodePolicy<'p> {
        policy_for(agent, &self.config, self.overrides, self.retry.as_ref())
    }

    /// The name of node `node`'s agent (empty when it has none).
    pub(super) fn agent_name(&self, node: NodeId) -> &str {
        self.agents.get(node).map_or("", |agent| agent.name())
    }
}

/// The error for a node without an agent (a graph built wrong).
pub(crate) fn missing_agent(node: NodeId) -> OrchestrationError {
    OrchestrationError::OrchestratorFailed(format!("node {node} has no agent"))
}

/// The policies `agent` runs under: `overrides` win, then the agent's own,
/// then `config`'s.
fn policy_for<'p>(
    agent: &dyn Agent,
    config: &ExecutionConfig,
    overrides: Overrides,
    retry: &'p dyn RetryPolicy,
) -> NodePolicy<'p> {
    NodePolicy {
        max_retries: overrides
            .max_retries
            .or_else(|| agent.max_retries())
            .unwrap_or(config.max_retries),
        attempt_timeout: overrides
            .attempt_timeout
            .or_else(|| agent.attempt_timeout())
            .or(config.agent_timeout),
        retry,
        log: config.enable_logging,
    }
}
