//! A run in progress: the scheduler, and what the steps produced so far.
//!
//! [`RunState`] is what the walkers of a run change, while the
//! [`Walk`] they share stays as it is: the state sits with the one task
//! that walks a pipeline, and behind the workers' lock for anything that
//! runs steps at once. One step goes: [`RunState::next_job`] (the scheduler
//! hands out a step and its input is made), [`Walk::run_step`] (the executor
//! runs it, outside any lock, and the graph's router decides where its
//! output goes), [`RunState::settle`] (the scheduler hears how it ended;
//! maps are gathered, new steps announced, budgets checked).

use std::collections::{HashMap, HashSet};

use super::gathered::{gathered_content, gathered_input, gathered_results, GatheredPart};
use super::scheduler::{Completion, Decision, Scheduler, StepId, StepInput, StepKind};
use super::walk::{Job, StepEnd, Walk};
use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::budget::{Budget, BudgetExceeded};
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::executor::{InputOrigin, NodeFailure};
use crate::orchestration::human::{EnclosingStep, FinishedStep, Question};
use crate::orchestration::journal::{Interruption, NodeId};
use crate::orchestration::usage::Usage;

/// Finished steps by node and activation (see [`RunState::reusing`]).
pub(crate) type Reuse = HashMap<(NodeId, u32), Reused>;

/// A step that finished in an earlier run: what it produced, and what its
/// node decided then, when it had something to decide (the resumed run
/// takes the same way rather than deciding again on the state as it is
/// now).
#[derive(Debug, Clone)]
pub(crate) struct Reused {
    pub(crate) output: AgentOutput,
    pub(crate) decision: Option<Decision>,
}

/// The scheduler and what the run produced so far.
pub(crate) struct RunState {
    pub(crate) scheduler: Scheduler,
    /// Each step's output, when it succeeded (a map step's: its items' gathered).
    pub(crate) outputs: Vec<Option<AgentOutput>>,
    /// The steps that failed for good, with their errors.
    pub(crate) failures: Vec<(StepId, OrchestrationError)>,
    /// The first interruption a step saw.
    pub(crate) interrupted: Option<Interruption>,
    /// The budget the run crossed (it starts nothing more).
    pub(crate) exceeded: Option<BudgetExceeded>,
    /// The journal's failure to store what the run did (it starts nothing
    /// more, and fails with it).
    pub(crate) store_failure: Option<OrchestrationError>,
    /// Each map step's items (kept after the map is gathered: the JSON
    /// results a step after it gets name them).
    items: HashMap<StepId, Vec<String>>,
    /// How many steps were announced to the journal (graph runs only).
    announced: usize,
    /// Whether steps are announced (a graph's; a pattern's steps are its nodes).
    announce: bool,
    /// Outputs of steps a paused run finished, by node and activation: a
    /// resumed run reuses them instead of running the steps again.
    reuse: Reuse,
    /// The steps whose outputs were reused: they ran in an earlier run, so
    /// this run's journal has no record of them to take a successor's
    /// input from.
    reused: HashSet<StepId>,
    /// What each step that succeeded decided, by step, when its node
    /// decides (a pause keeps it with the step's output).
    pub(crate) decisions: Vec<Option<Decision>>,
    /// The questions steps asked (the run pauses: nothing new starts).
    pub(crate) asked: Vec<(StepId, Question)>,
    /// The steps that finished inside graphs nested in the steps that asked
    /// (their paths start with the asking step's node).
    pub(crate) finished_inside: Vec<FinishedStep>,
}

impl RunState {
    pub(crate) fn new(scheduler: Scheduler, announce: bool) -> Self {
        let count = scheduler.graph().len();
        let mut outputs = Vec::with_capacity(count);
        outputs.resize_with(count, || None);
        Self {
            scheduler,
            outputs,
            failures: Vec::new(),
            interrupted: None,
            exceeded: None,
            store_failure: None,
            items: HashMap::new(),
            announced: 0,
            announce,
            reuse: HashMap::new(),
            reused: HashSet::new(),
            decisions: Vec::new(),
            asked: Vec::new(),
            finished_inside: Vec::new(),
        }
    }

    /// Reuses `outputs` (by node and activation) instead of running those steps.
    pub(crate) fn reusing(mut self, outputs: Reuse) -> Self {
        self.reuse = outputs;
        self
    }

    /// Nothing: what a run's state is swapped with when it is taken.
    pub(crate) fn empty() -> Self {
        Self::new(Scheduler::new(super::graph::Graph::default(), 1, 0), false)
    }

    /// Whether the run may start another step.
    fn may_start(&mut self, walk: &Walk<'_>) -> bool {
        // What runs beside this one spent (nested in the same run around)
        // may have crossed a budget since this one's last step ended; and
        // a run may start after the crossing.
        self.check_spending(walk);
        if self.interrupted.is_some() || self.exceeded.is_some() || self.store_failure.is_some() {
            return false;
        }
        if let Some(limit) = walk.budget.max_duration {
            let used = walk.started.elapsed();
            if used > limit && self.scheduler.has_ready() {
                self.exceeded = Some(BudgetExceeded::new(
                    Budget::Duration,
                    limit.as_secs_f64(),
                    used.as_secs_f64(),
                ));
                return false;
            }
        }
        true
    }

    /// Whether a step is ready and the run may still start it (a paused
    /// run starts only the steps that ask a person).
    pub(crate) fn has_startable(&self) -> bool {
        self.interrupted.is_none()
            && self.exceeded.is_none()
            && self.store_failure.is_none()
            && if self.asked.is_empty() {
                self.scheduler.has_ready()
            } else {
                self.scheduler.has_ready_asking()
            }
    }

    /// The next step to run, its input made; map steps on the way are
    /// expanded into their items.
    pub(crate) fn next_job(&mut self, walk: &Walk<'_>) -> Option<Job> {
        self.announce_steps(walk);
        while self.may_start(walk) {
            // A run that paused starts nothing new but the questions ready
            // with it: the person hears them all at once.
            let step = if self.asked.is_empty() {
                self.scheduler.next()?
            } else {
                self.scheduler.next_asking()?
            };
            let info = self.scheduler.step(step)?.clone();
            if info.kind == StepKind::Map {
                self.expand(walk, step, info.node, &info.input);
                continue;
            }
            let reused = if self.reuse.is_empty() {
                None
            } else {
                self.reuse.remove(&(info.node, info.activation))
            };
            if let Some(Reused { output, decision }) = reused {
                // A step taken back costs what its output reports.
                let charge = Usage::from_output(&output).unwrap_or_default();
                // Finished before the run paused: its output, not a new run,
                // and the way it went then (decided again only when that
                // was not kept).
                self.reused.insert(step);
                let decision = match (decision, &walk.branching) {
                    (Some(decision), _) => Ok(Some(decision)),
                    (None, Some(branching)) => {
                        branching.decide(info.node, &output, info.iteration, &walk.run.ctx)
                    }
                    (None, None) => Ok(None),
                };
                let (outcome, decision) = match decision {
                    Ok(decision) => (Ok(output), decision),
                    Err(error) => (Err(NodeFailure::Failed(error)), None),
                };
                self.settle(
                    walk,
                    StepEnd {
                        step,
                        outcome,
                        decision,
                        charge,
                        store: None,
                    },
                );
                continue;
            }
            let (origin, input) = match &info.input {
                StepInput::RunInput => (InputOrigin::RunInput, None),
                StepInput::OutputOf(from)
                    if self.scheduler.step(*from).map(|s| s.kind) == Some(StepKind::Agent)
                        && (self.reused.is_empty() || !self.reused.contains(from)) =>
                {
                    (
                        InputOrigin::OutputOf(*from),
                        Some(self.input_of(walk, &info.input)),
                    )
                }
                other => (InputOrigin::Given, Some(self.input_of(walk, other))),
            };
            return Some(Job {
                step,
                node: info.node,
                activation: info.activation,
                iteration: info.iteration,
                origin,
                input,
            });
        }
        None
    }

    /// Splits map step `step`'s input into items and gives it their steps.
    fn expand(&mut self, walk: &Walk<'_>, step: StepId, node: NodeId, input: &StepInput) {
        let input = self.input_of(walk, input);
        let split = match &walk.branching {
            Some(branching) => branching.split(node, &input),
            None => Ok(Vec::new()),
        };
        match split {
            Ok(items) => {
                let count = items.len();
                self.items.insert(step, items);
                self.scheduler.expand(step, count);
            }
            Err(error) => {
                self.failures.push((step, error));
                self.scheduler.fail_map(step);
            }
        }
        self.gather(walk);
        self.announce_steps(walk);
    }

    /// Tells the scheduler how a step ended and keeps its output, its
    /// failure or the interruption it saw.
    pub(crate) fn settle(&mut self, walk: &Walk<'_>, end: StepEnd) {
        let StepEnd {
            step,
            outcome,
            decision,
            charge,
            store,
        } = end;
        if let Some(error) = store {
            self.store_failure.get_or_insert(error);
        }
        if !charge.is_empty() {
            walk.run.spending.add(charge);
        }
        let how = match outcome {
            Ok(output) => {
                self.keep(step, output);
                Completion::Succeeded
            }
            Err(NodeFailure::Failed(error)) => {
                let question = match error.root_cause() {
                    // A pattern has no pause: the question fails its run,
                    // and the graph around it (if any) pauses.
                    OrchestrationError::InputRequired(pause) if self.announce => Some(pause),
                    _ => None,
                };
                if let Some(pause) = question {
                    // A question: the run pauses (nothing new starts).
                    let label = self.label_of(walk, step);
                    for question in &pause.questions {
                        // Steps asking one question (by id) get one answer:
                        // the pause lists it once.
                        if self.asked.iter().any(|(_, asked)| asked.id == question.id) {
                            continue;
                        }
                        let mut question = question.clone();
                        question.node.get_or_insert_with(|| label.clone());
                        self.asked.push((step, question));
                    }
                    // What a graph nested in this step finished stays with
                    // the pause, under this step.
                    let activation = self.scheduler.step(step).map_or(1, |s| s.activation);
                    for finished in &pause.finished {
                        let mut finished = finished.clone();
                        let enclosing = EnclosingStep::new(label.clone(), activation);
                        finished.within.insert(0, enclosing);
                        self.finished_inside.push(finished);
                    }
                    Completion::Interrupted
                } else {
                    self.failures.push((step, error));
                    Completion::Failed
                }
            }
            Err(NodeFailure::Interrupted(why)) => {
                self.interrupted.get_or_insert(why);
                Completion::Interrupted
            }
        };
        // Whatever the step's end, spending may have crossed a budget: its
        // output's, its nested runs' (a failed attempt's too), or that of a
        // run beside it nested in the same run around.
        self.check_spending(walk);
        match decision {
            Some(decision) => {
                self.scheduler.complete(step, how, &decision);
                if how == Completion::Succeeded {
                    if self.decisions.len() <= step.index() {
                        self.decisions.resize_with(step.index() + 1, || None);
                    }
                    self.decisions[step.index()] = Some(decision);
                }
            }
            None => self.scheduler.complete(step, how, &Decision::default()),
        }
        self.gather(walk);
        self.announce_steps(walk);
    }

    fn keep(&mut self, step: StepId, output: AgentOutput) {
        if self.outputs.len() <= step.index() {
            self.outputs.resize_with(step.index() + 1, || None);
        }
        self.outputs[step.index()] = Some(output);
    }

    /// Stops the run (nothing new starts) if what it spent — or what the
    /// runs nested in it or around it spent — crossed its budget or that of
    /// a run around it.
    fn check_spending(&mut self, walk: &Walk<'_>) {
        if self.exceeded.is_none() {
            self.exceeded = walk.run.spending.crossed();
        }
    }

    /// Makes the outputs of the map steps whose items all completed: their
    /// contents, one after another (the JSON results are made when a step
    /// reads them, see [`input_of`](Self::input_of)).
    fn gather(&mut self, walk: &Walk<'_>) {
        for map in self.scheduler.take_gathered() {
            match self.scheduler.ended(map) {
                Some(Completion::Succeeded) => {
                    let content = gathered_content(&self.map_parts(walk, map));
                    self.keep(map, AgentOutput::new(content));
                }
                Some(Completion::Failed) => self.too_few_items(walk, map),
                _ => {}
            }
        }
    }

    /// A map that failed with no item failing: its input split into fewer
    /// items than its join needs to succeed. Its failure says so.
    fn too_few_items(&mut self, walk: &Walk<'_>, map: StepId) {
        let items = self.scheduler.items_of(map);
        let failed = Some(Completion::Failed);
        if items
            .iter()
            .any(|item| self.scheduler.ended(*item) == failed)
        {
            return; // the failing items' errors say why
        }
        let Some(node) = self.scheduler.step(map).map(|step| step.node) else {
            return;
        };
        let join = self.scheduler.graph().nodes[node.index()].join;
        let required = join.required_successes(items.len());
        let error = OrchestrationError::OrchestratorFailed(format!(
            "map `{}` needs {required} item(s) to succeed (its join policy: {join:?}), but its \
             input split into {} item(s)",
            self.label_of(walk, map),
            items.len()
        ));
        self.failures.push((map, error));
    }

    /// The outputs of map step `map`'s items that succeeded, in item order.
    fn map_parts<'s>(&'s self, walk: &'s Walk<'_>, map: StepId) -> Vec<GatheredPart<'s>> {
        let items = self.items.get(&map).map_or(&[][..], Vec::as_slice);
        self.scheduler
            .items_of(map)
            .iter()
            .zip(items)
            .enumerate()
            .filter_map(|(index, (step, item))| {
                let output = self.outputs.get(step.index())?.as_ref()?;
                Some(GatheredPart {
                    agent: walk.agent_name(self.scheduler.step(*step)?.node),
                    item: Some((index, item.as_str())),
                    output,
                })
            })
            .collect()
    }

    /// The graph node id of step `step`'s node.
    fn label_of(&self, walk: &Walk<'_>, step: StepId) -> String {
        let node = self.scheduler.step(step).map_or(step, |info| info.node);
        match &walk.branching {
            Some(branching) => branching.label(node).to_owned(),
            None => walk.agent_name(node).to_owned(),
        }
    }

    /// Tells the journal about the steps added since the last call.
    fn announce_steps(&mut self, walk: &Walk<'_>) {
        if !self.announce {
            return;
        }
        let steps = self.scheduler.steps();
        for (index, step) in steps.iter().enumerate().skip(self.announced) {
            // A step taken back from the run this one resumes was announced
            // there: announced again by every resume, a conversation resumed
            // at each turn would journal its whole history again each time.
            if self.reuse.contains_key(&(step.node, step.activation)) {
                continue;
            }
            let label = walk
                .branching
                .as_ref()
                .map_or("", |branching| branching.label(step.node));
            walk.run.recorder.step_added(
                NodeId::from_index(index),
                step.node,
                label,
                step.activation,
                step.iteration,
                step.item.map(|(_, item)| item),
            );
        }
        self.announced = steps.len();
    }

    /// A fresh copy of the input step `step` gets (for a retry).
    pub(crate) fn remake_input(&self, walk: &Walk<'_>, step: StepId) -> AgentInput {
        match self.scheduler.step(step) {
            Some(info) => self.input_of(walk, &info.input),
            None => AgentInput::clone(&walk.input),
        }
    }

    /// The input a step on `input` gets.
    fn input_of(&self, walk: &Walk<'_>, input: &StepInput) -> AgentInput {
        let content = match input {
            StepInput::RunInput => return AgentInput::clone(&walk.input),
            StepInput::OutputOf(step) => {
                let output = self.outputs.get(step.index()).and_then(Option::as_ref);
                let is_map = self.scheduler.step(*step).map(|s| s.kind) == Some(StepKind::Map);
                match output {
                    Some(gathered) if is_map => {
                        let results = gathered_results(&self.map_parts(walk, *step));
                        return gathered_input(&walk.input, gathered.content.clone(), results);
                    }
                    Some(output) => output.content.clone(),
                    None => String::new(),
                }
            }
            StepInput::Gathered(steps) => {
                let parts: Vec<GatheredPart<'_>> = steps
                    .iter()
                    .filter_map(|step| {
                        let output = self.outputs.get(step.index())?.as_ref()?;
                        Some(GatheredPart {
                            agent: walk.agent_name(self.scheduler.step(*step)?.node),
                            item: None,
                            output,
                        })
                    })
                    .collect();
                let (content, results) = (gathered_content(&parts), gathered_results(&parts));
                return gathered_input(&walk.input, content, results);
            }
            StepInput::Item { map, index } => self
                .items
                .get(map)
                .and_then(|items| items.get(*index as usize))
                .cloned()
                .unwrap_or_default(),
        };
        AgentInput {
            content,
            context: walk.input.context.clone(),
            metadata: walk.input.metadata.clone(),
        }
    }
}
