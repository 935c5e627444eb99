//! Reading a stopped run's history from the journal into a
//! [`Continuation`].
//!
//! A run that was resumed, or forked, is not the whole story: a resumed run
//! can stop and be resumed again, and a fork starts from the history of the
//! run it forks. So reading follows the links each run's start journals,
//! back to the first run of its chain of resumes and, when that one is a
//! fork, into the forked run's history up to the fork point, and puts the
//! pieces together oldest first.
//!
//! Each run of the chain is read from its own events into a [`Session`]:
//! the steps it finished, the answers it was given, the state changes the
//! new run keeps (see [`nested`](super::nested) for what it keeps of the
//! runs nested in steps that did not finish).

use std::collections::{HashMap, HashSet};

use super::continuation::{Continuation, Finished, KeptChange, StepNode};
use super::nested::{finished_inside, Attempts, FinishedInside};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::journal::{
    AttemptOutcome, EventKind, ForkPoint, JournalEvent, NodeId, ParentAttempt, RunId, RunOutcome,
    StateChange,
};
use crate::orchestration::orchestrator::OrchestratorInput;

impl Continuation {
    /// Reads the history of `run` from `ctx`'s journal: its chain of
    /// resumes back to the first run, and when that one is a fork, the
    /// history of the forked run up to the fork point (and so on, a fork of
    /// a fork read the same way, in a loop).
    pub(super) async fn read(ctx: &ExecutionContext, run: RunId) -> Result<Self> {
        let journal = ctx.journal();
        // Chains of resumes, newest first; each but the last is a fork of
        // the next one's newest run.
        let mut chains: Vec<Vec<Session>> = Vec::new();
        let mut next = Some(run);
        let mut sessions = 0_usize;
        while let Some(newest) = next.take() {
            let mut chain = Vec::new();
            let mut at = Some(newest);
            while let Some(id) = at {
                let events = journal.read_checked(&[id]).await?;
                let session = Session::of(id, &events)?;
                at = session.resumes;
                chain.push(session);
                sessions += 1;
                if sessions > 100_000 {
                    return Err(OrchestrationError::InvalidConfig(format!(
                        "run {run}: its chain of resumed and forked runs does not end"
                    )));
                }
            }
            next = chain
                .last()
                .and_then(|first| first.forks.as_ref())
                .map(|fork| fork.run);
            chains.push(chain);
        }
        let mut history: Option<Self> = None;
        while let Some(mut chain) = chains.pop() {
            let first = chain.last().map_or(run, |session| session.run);
            let mut continuation =
                match (history.take(), chain.last().and_then(|s| s.forks.clone())) {
                    // A fork: the forked run's history up to the fork point,
                    // which came into the state with the fork.
                    (Some(forked), Some(fork)) => {
                        let mut taken = forked.fork_after(&fork.after)?;
                        for kept in &mut taken.state {
                            kept.run = first;
                        }
                        taken.runs.clear();
                        taken
                    }
                    _ => Self::empty(first),
                };
            for session in chain.iter_mut().rev() {
                continuation.finished.append(&mut session.finished);
                continuation.answers.extend(session.answers.drain());
                continuation.state.append(&mut session.state);
                continuation.runs.push(session.run);
                continuation.touched.extend(session.touched.drain());
                continuation.inside.append(&mut session.inside);
            }
            let newest = chain.swap_remove(0);
            continuation.previous = newest.run;
            // Idempotency keys start with the first run of the newest chain
            // (a fork's keys are its own).
            continuation.origin = first;
            continuation.input = newest.input;
            continuation.nodes = newest.nodes;
            continuation.fork = None;
            history = Some(continuation);
        }
        history.ok_or_else(|| {
            OrchestrationError::InvalidConfig(format!("the journal has no run {run}"))
        })
    }
}

/// What one run of a chain left: read from its own events (not those of
/// the runs nested in it, which run again inside the steps that did not
/// finish).
struct Session {
    run: RunId,
    resumes: Option<RunId>,
    forks: Option<ForkPoint>,
    input: OrchestratorInput,
    nodes: Vec<String>,
    finished: Vec<Finished>,
    answers: HashMap<String, String>,
    state: Vec<KeptChange>,
    /// Every key a change in it (or in the runs nested in it) touched.
    touched: HashSet<String>,
    inside: Vec<FinishedInside>,
}

impl Session {
    fn of(run: RunId, events: &[JournalEvent]) -> Result<Self> {
        let mut started = None;
        // A graph's steps, by step id: its node, agent and activation.
        let mut steps: Vec<(String, String, u32)> = Vec::new();
        let mut activations: HashMap<String, u32> = HashMap::new();
        let mut finished = Vec::new();
        let mut answers = HashMap::new();
        for event in events.iter().filter(|event| event.run == run) {
            match &event.kind {
                EventKind::RunStarted {
                    input,
                    nodes,
                    resumes,
                    forks,
                    ..
                } => started = Some((input, nodes, *resumes, forks)),
                EventKind::StepAdded {
                    step,
                    node,
                    agent,
                    activation,
                    ..
                } => {
                    let counted = activations.entry(node.clone()).or_insert(0);
                    *counted += 1;
                    if steps.len() <= step.index() {
                        steps.resize(step.index() + 1, Default::default());
                    }
                    let activation = activation.unwrap_or(*counted);
                    steps[step.index()] = (node.clone(), agent.clone(), activation);
                }
                EventKind::AttemptFinished {
                    node,
                    outcome: AttemptOutcome::Succeeded(output),
                    ..
                } => {
                    let step = (run, *node);
                    let (node, agent, activation) = match steps.get(node.index()) {
                        Some((label, agent, activation)) => {
                            (StepNode::Label(label.clone()), agent.clone(), *activation)
                        }
                        None => {
                            let agent = started
                                .and_then(|(_, nodes, _, _)| nodes.get(node.index()))
                                .cloned()
                                .unwrap_or_default();
                            (StepNode::Index(*node), agent, 1)
                        }
                    };
                    finished.push(Finished {
                        step,
                        node,
                        agent,
                        activation,
                        output: output.clone(),
                        decision: None,
                    });
                }
                EventKind::StepDecided { step, decision } => {
                    let decided = finished.iter_mut().rev().find(|f| f.step == (run, *step));
                    if let Some(finished) = decided {
                        finished.decision = Some(decision.clone());
                    }
                }
                EventKind::RunFinished {
                    outcome: RunOutcome::Failed(OrchestrationError::InputRequired(pause)),
                } => answers.extend(pause.answers.clone()),
                EventKind::AnswersGiven { answers: given } => answers.extend(given.clone()),
                _ => {}
            }
        }
        let Some((input, nodes, resumes, forks)) = started else {
            return Err(OrchestrationError::InvalidConfig(format!(
                "the journal has no run {run}"
            )));
        };
        let attempts = Attempts::of(events);
        let top_step = |step: NodeId| match steps.get(step.index()) {
            Some((label, _, activation)) if !label.is_empty() => {
                (StepNode::Label(label.clone()), *activation)
            }
            _ => (StepNode::Index(step), 1),
        };
        let (inside, handed_back) = finished_inside(run, events, &attempts, top_step);
        let state = kept_state_changes(run, events, &attempts, &handed_back)
            .into_iter()
            .map(|(step, key, change)| KeptChange {
                step: top_step(step),
                run,
                key,
                change,
            })
            .collect();
        let touched = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::StateChanged { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let input = OrchestratorInput {
            content: input.content.clone(),
            context: input.context.clone(),
            metadata: input.metadata.clone(),
        };
        Ok(Self {
            run,
            resumes,
            forks: forks.clone(),
            input,
            nodes: nodes.clone(),
            finished,
            answers,
            state,
            touched,
            inside,
        })
    }
}

/// The state changes of `events` (a run and the runs nested in it) that a
/// resumed run starts from — those made by attempts whose work it keeps
/// (see [`nested`](super::nested)), and by the attempts that asked the questions the run
/// paused on ([`Attempts::asked_in`]) — each with the top-level step (its
/// id in run `top`) whose work it is part of.
fn kept_state_changes(
    top: RunId,
    events: &[JournalEvent],
    attempts: &Attempts,
    handed_back: &HashSet<(RunId, NodeId)>,
) -> Vec<(NodeId, String, StateChange)> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::StateChanged {
                node,
                attempt,
                key,
                change,
            } => {
                let at = ParentAttempt {
                    run: event.run,
                    node: *node,
                    attempt: *attempt,
                };
                let step = attempts
                    .kept_in(top, at, handed_back)
                    .or_else(|| attempts.asked_in(top, at))?;
                Some((step, key.clone(), change.clone()))
            }
            _ => None,
        })
        .collect()
}
