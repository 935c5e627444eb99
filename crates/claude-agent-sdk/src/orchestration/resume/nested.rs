//! What a resumed run keeps of the runs nested in its steps.
//!
//! A step whose attempt runs a graph, pipeline or fan-out of its own — a
//! subgraph node, an
//! [`OrchestratorAgent`](crate::orchestration::OrchestratorAgent),
//! `orchestra`'s maps and groups — and did not finish (the process died, the
//! run was stopped) runs again when its run resumes. What finished *inside*
//! it is not run again: those steps are handed to the run nested in the same
//! step when it runs again (same node, same activation: each loop pass and
//! map item gets back its own), which reuses them as a paused run's are
//! reused ([`FinishedStep::within`]). The state changes their attempts made
//! are replayed with them.
//!
//! The rule, for a step nested any number of runs deep: it is reused when it
//! finished inside attempts none of which finished, each of them the last
//! attempt of its step (the one that runs again; an attempt that failed and
//! was retried is over), and each of them a graph's node or a pipeline's or
//! fan-out's. An attempt's changes to the shared state are kept when a step
//! it ran inside (its own, or one around it) is not run again: a top-level
//! step that finished, or a nested step handed back — whether the attempt
//! itself succeeded or failed and was retried, as the run went on with
//! them.
//!
//! A graph's steps are handed back by node id and activation. A pipeline's
//! or fan-out's steps are its agents, which have no ids: they are handed
//! back by agent name and which of the agents with that name each is (see
//! [`pattern_labels`]), so that a pipeline changed since (an agent added,
//! removed or renamed) takes back only the steps of the agents it still has.

use std::collections::{HashMap, HashSet};

use super::continuation::StepNode;
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::human::{EnclosingStep, FinishedStep};
use crate::orchestration::journal::{
    AttemptOutcome, EventKind, JournalEvent, NodeId, ParentAttempt, RunId, StepDecision,
};

/// A step that finished inside a run nested in a top-level step that did
/// not finish: the top-level step it goes back to, and the step as the
/// graph nested there reuses it.
#[derive(Debug, Clone)]
pub(crate) struct FinishedInside {
    /// The top-level step's node and activation.
    pub(crate) top: (StepNode, u32),
    pub(crate) step: FinishedStep,
}

/// How the attempts of a run and the runs nested in it ended, and where
/// each nested run sits.
pub(super) struct Attempts {
    parents: HashMap<RunId, ParentAttempt>,
    succeeded: HashSet<(RunId, NodeId, u32)>,
    /// The steps one of whose attempts succeeded.
    finished: HashSet<(RunId, NodeId)>,
    /// The attempts that ended asking a person (their failure's root cause
    /// is a question).
    asked: HashSet<(RunId, NodeId, u32)>,
    /// The last attempt each step started.
    last: HashMap<(RunId, NodeId), u32>,
}

impl Attempts {
    pub(super) fn of(events: &[JournalEvent]) -> Self {
        let mut parents = HashMap::new();
        let mut succeeded = HashSet::new();
        let mut finished = HashSet::new();
        let mut asked = HashSet::new();
        let mut last = HashMap::new();
        for event in events {
            match &event.kind {
                EventKind::RunStarted {
                    parent: Some(parent),
                    ..
                } => {
                    parents.insert(event.run, *parent);
                }
                EventKind::AttemptStarted { node, attempt, .. } => {
                    let latest = last.entry((event.run, *node)).or_insert(*attempt);
                    *latest = (*latest).max(*attempt);
                }
                EventKind::AttemptFinished {
                    node,
                    attempt,
                    outcome: AttemptOutcome::Succeeded(_),
                    ..
                } => {
                    succeeded.insert((event.run, *node, *attempt));
                    finished.insert((event.run, *node));
                }
                EventKind::AttemptFinished {
                    node,
                    attempt,
                    outcome: AttemptOutcome::Failed(error),
                    ..
                } if matches!(error.root_cause(), OrchestrationError::InputRequired(_)) => {
                    asked.insert((event.run, *node, *attempt));
                }
                _ => {}
            }
        }
        Self {
            parents,
            succeeded,
            finished,
            asked,
            last,
        }
    }

    /// The attempts runs `run` ran inside, innermost first, ending with one
    /// of run `top`'s; `None` when the run is not nested in `top`. Bounded
    /// by the number of runs, so a journal with a cycle of parents cannot
    /// loop.
    fn enclosing(&self, top: RunId, mut run: RunId) -> Option<Vec<ParentAttempt>> {
        let mut chain = Vec::new();
        while run != top {
            let parent = *self.parents.get(&run)?;
            chain.push(parent);
            if chain.len() > self.parents.len() {
                return None;
            }
            run = parent.run;
        }
        Some(chain)
    }

    /// The top-level step of run `top` whose question attempt `at` (in run
    /// `at.run`) asked, if it asked one that went all the way up — it and
    /// every attempt it ran inside ended asking — so that the run paused on
    /// it. What such an attempt kept in the shared state is kept for the
    /// run that answers: the step asks again, and finds what it kept (as
    /// a [`Pause`](crate::orchestration::Pause) resumed in memory does).
    pub(super) fn asked_in(&self, top: RunId, at: ParentAttempt) -> Option<NodeId> {
        let chain = self.enclosing(top, at.run)?;
        let asked = |attempt: &ParentAttempt| {
            self.asked
                .contains(&(attempt.run, attempt.node, attempt.attempt))
        };
        (asked(&at) && chain.iter().all(asked))
            .then(|| chain.last().map_or(at.node, |attempt| attempt.node))
    }

    fn succeeded(&self, attempt: ParentAttempt) -> bool {
        self.succeeded
            .contains(&(attempt.run, attempt.node, attempt.attempt))
    }

    /// Whether `attempt` is one whose step runs again with it: it did not
    /// succeed, and it is its step's last attempt.
    fn runs_again(&self, attempt: ParentAttempt) -> bool {
        !self.succeeded(attempt)
            && self.last.get(&(attempt.run, attempt.node)) == Some(&attempt.attempt)
    }

    /// The top-level step of run `top` whose work includes what attempt
    /// `at` did, if a resumed run keeps it (see the module docs): a step
    /// it ran inside is not run again — a top-level step that finished, or
    /// one of `handed_back`, the steps of nested runs handed back
    /// ([`finished_inside`]).
    pub(super) fn kept_in(
        &self,
        top: RunId,
        at: ParentAttempt,
        handed_back: &HashSet<(RunId, NodeId)>,
    ) -> Option<NodeId> {
        let chain = self.enclosing(top, at.run)?;
        let outermost = chain.last().map_or(at.node, |attempt| attempt.node);
        // The attempt, then the attempts around it, innermost first.
        let reused = std::iter::once(at)
            .chain(chain.iter().copied())
            .any(|attempt| {
                let step = (attempt.run, attempt.node);
                if attempt.run == top {
                    self.finished.contains(&step)
                } else {
                    handed_back.contains(&step)
                }
            });
        reused.then_some(outermost)
    }
}

/// The steps of run `top`'s nested runs that finished inside top-level
/// steps that did not (see the module docs), in the order they finished,
/// and the (run, step) of each. `top_steps` names the top run's steps (by
/// step id: node and activation).
pub(super) fn finished_inside(
    top: RunId,
    events: &[JournalEvent],
    attempts: &Attempts,
    top_steps: impl Fn(NodeId) -> (StepNode, u32),
) -> (Vec<FinishedInside>, HashSet<(RunId, NodeId)>) {
    // Each nested graph run's steps, by step id: node id and activation.
    let mut labels: HashMap<RunId, Vec<(String, u32)>> = HashMap::new();
    let mut counts: HashMap<(RunId, String), u32> = HashMap::new();
    let mut decisions: HashMap<(RunId, NodeId), StepDecision> = HashMap::new();
    for event in events.iter().filter(|event| event.run != top) {
        match &event.kind {
            // A pipeline's or fan-out's steps are its nodes, named up front.
            EventKind::RunStarted { nodes, .. } if !nodes.is_empty() => {
                labels.insert(event.run, pattern_labels(nodes.iter().map(String::as_str)));
            }
            EventKind::StepAdded {
                step,
                node,
                activation,
                ..
            } => {
                let count = counts.entry((event.run, node.clone())).or_insert(0);
                *count += 1;
                let steps = labels.entry(event.run).or_default();
                if steps.len() <= step.index() {
                    steps.resize(step.index() + 1, Default::default());
                }
                steps[step.index()] = (node.clone(), activation.unwrap_or(*count));
            }
            EventKind::StepDecided { step, decision } => {
                decisions.insert((event.run, *step), decision.clone());
            }
            _ => {}
        }
    }
    let label = |run: RunId, step: NodeId| {
        labels
            .get(&run)
            .and_then(|steps| steps.get(step.index()))
            .filter(|(label, _)| !label.is_empty())
            .cloned()
    };
    let mut inside = Vec::new();
    let mut handed_back = HashSet::new();
    for event in events.iter().filter(|event| event.run != top) {
        let EventKind::AttemptFinished {
            node: step,
            outcome: AttemptOutcome::Succeeded(output),
            ..
        } = &event.kind
        else {
            continue;
        };
        let Some(chain) = attempts.enclosing(top, event.run) else {
            continue;
        };
        // Inside attempts that all run again, all the way out: a finished
        // one around it is reused whole, a failed one that was retried is over.
        if !chain.iter().all(|around| attempts.runs_again(*around)) {
            continue;
        }
        let (Some((node, activation)), Some((outermost, between))) =
            (label(event.run, *step), chain.split_last())
        else {
            continue;
        };
        // The steps between the top-level one and this, outermost first.
        let within: Option<Vec<EnclosingStep>> = between
            .iter()
            .rev()
            .map(|around| {
                label(around.run, around.node)
                    .map(|(node, activation)| EnclosingStep::new(node, activation))
            })
            .collect();
        let Some(within) = within else {
            continue;
        };
        let mut finished = FinishedStep::new(node, activation, output.clone());
        finished.within = within;
        finished.decision = decisions.get(&(event.run, *step)).cloned();
        handed_back.insert((event.run, *step));
        inside.push(FinishedInside {
            top: top_steps(outermost.node),
            step: finished,
        });
    }
    (inside, handed_back)
}

/// How the steps of a pipeline or fan-out whose agents are named `names`
/// are handed back: each by its agent's name and which of the agents with
/// that name it is, from 1 (the inverse of [`pattern_position`]).
pub(crate) fn pattern_labels<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, u32)> {
    let mut seen: HashMap<&str, u32> = HashMap::new();
    names
        .map(|name| {
            let count = seen.entry(name).or_insert(0);
            *count += 1;
            (name.to_owned(), *count)
        })
        .collect()
}

/// The position, among agents named `names`, of the `occurrence`-th agent
/// named `name` (see [`pattern_labels`]); `None` when there is none.
pub(crate) fn pattern_position<'a>(
    mut names: impl Iterator<Item = &'a str>,
    name: &str,
    occurrence: u32,
) -> Option<usize> {
    let nth = usize::try_from(occurrence.checked_sub(1)?).ok()?;
    names
        .by_ref()
        .enumerate()
        .filter(|(_, agent)| *agent == name)
        .nth(nth)
        .map(|(position, _)| position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_steps_are_labelled_by_name_and_occurrence_and_found_again() {
        let names = ["a", "b", "a", "c", "a"];
        let labels = pattern_labels(names.iter().copied());
        assert_eq!(
            labels,
            [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3)]
                .map(|(name, count)| (name.to_owned(), count))
        );
        for (position, (name, occurrence)) in labels.iter().enumerate() {
            assert_eq!(
                pattern_position(names.iter().copied(), name, *occurrence),
                Some(position)
            );
        }
        assert_eq!(pattern_position(names.iter().copied(), "a", 4), None);
        assert_eq!(pattern_position(names.iter().copied(), "a", 0), None);
        assert_eq!(pattern_position(names.iter().copied(), "z", 1), None);
    }
}
