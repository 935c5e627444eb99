//! Traces as views of the journal: [`ExecutionTrace`]s built from events.
//!
//! Each run's events become its records — an attempt's record is made when
//! the attempt starts and completed when it finishes; one that never finished
//! stays without an end time — and each nested run's trace is attached to the
//! record of the attempt it ran inside. Runs are built in one pass and
//! attached children-first, without recursion, so the cost is linear in the
//! number of events whatever the depth of nesting.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::memory::{take_flagged, Wanted};
use super::{AttemptOutcome, EventKind, InputSource, JournalEvent, NodeId, ParentAttempt, RunId};
use crate::orchestration::agent::AgentInput;
use crate::orchestration::trace::{AgentExecution, ExecutionTrace, NestedTrace};

/// The trace of run `run` (nested runs attached), if the events hold it.
pub(crate) fn run(events: Vec<JournalEvent>, run: RunId) -> Option<ExecutionTrace> {
    folded(events).into_run_trace(run)
}

/// One trace holding the records of every run in `roots` (nested runs
/// attached), run after run, starting at `start_time`.
pub(crate) fn history(
    events: Vec<JournalEvent>,
    roots: &[RunId],
    start_time: DateTime<Utc>,
) -> ExecutionTrace {
    folded(events).into_history(roots, start_time)
}

/// The views of the runs `events` hold.
fn folded(events: Vec<JournalEvent>) -> Views {
    let mut views = Views::default();
    for event in events {
        views.apply(event);
    }
    views
}

/// An attempt that started and has not finished: what its record will
/// hold, kept small until the record is made.
#[derive(Clone)]
struct OpenAttempt {
    node: NodeId,
    attempt: u32,
    start: DateTime<Utc>,
    input: AgentInput,
    /// Where its input comes from, when it is still to be made.
    source: Option<InputSource>,
    /// The trace of a run nested in it.
    nested: Option<NestedTrace>,
}

impl OpenAttempt {
    /// Its record in run `run`, as far as it went (no end yet), on `input`.
    fn into_record(self, run: RunId, agent_name: String, input: AgentInput) -> AgentExecution {
        let mut record = AgentExecution::new(agent_name, self.attempt, self.start, input);
        record.nested = self.nested;
        record.run_id = Some(run);
        record.node = Some(self.node);
        record
    }
}

/// What the events say of one run.
#[derive(Clone)]
pub(crate) struct RunView {
    id: RunId,
    parent: Option<ParentAttempt>,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    nodes: Vec<String>,
    input: AgentInput,
    /// Finished attempts' records, in the order the attempts finished.
    /// Their inputs are filled in when the view is done (see `sources`).
    records: Vec<AgentExecution>,
    /// By record, where its input comes from when it is still to be made:
    /// copies of the run's input are made when the trace is, not while the
    /// run goes (on the thread that takes the trace, off the journal's lock).
    sources: Vec<Option<InputSource>>,
    /// Unfinished attempts (a few: the attempts running). Their records
    /// are made when they finish, in place.
    pending: Vec<OpenAttempt>,
    /// Where in `pending` the record of each node's unfinished attempt is (a
    /// node runs one attempt at a time).
    open: Vec<Option<usize>>,
    /// The record of each node's last successful attempt.
    succeeded: Vec<Option<usize>>,
    /// Where each finished attempt's record is: made when a nested run is
    /// first attached (most runs have none).
    located: Option<HashMap<(NodeId, u32), usize>>,
}

impl RunView {
    fn new(
        id: RunId,
        at: DateTime<Utc>,
        nodes: Vec<String>,
        input: AgentInput,
        parent: Option<ParentAttempt>,
    ) -> Self {
        let count = nodes.len();
        Self {
            id,
            parent,
            start: at,
            end: None,
            nodes,
            input,
            records: Vec::with_capacity(count),
            sources: Vec::with_capacity(count),
            pending: Vec::new(),
            open: vec![None; count],
            succeeded: vec![None; count],
            located: None,
        }
    }

    fn input_for(&self, source: InputSource) -> AgentInput {
        match source {
            InputSource::RunInput => self.input.clone(),
            InputSource::OutputOf(node) => {
                let content = self
                    .succeeded
                    .get(node.index())
                    .copied()
                    .flatten()
                    .and_then(|index| self.records.get(index))
                    .and_then(|record| record.output.as_ref())
                    .map(|output| output.content.clone())
                    .unwrap_or_default();
                AgentInput {
                    content,
                    context: self.input.context.clone(),
                    metadata: self.input.metadata.clone(),
                }
            }
            InputSource::Given(input) => *input,
        }
    }

    /// Applies one event (not a run start).
    fn apply(&mut self, at: DateTime<Utc>, kind: EventKind) {
        match kind {
            EventKind::AttemptStarted {
                node,
                attempt,
                input,
                ..
            } => {
                if node.index() >= self.open.len() {
                    return; // a node the run does not have
                }
                // A copy of the run's input is made with the trace; a step's
                // output is copied now, while it is at hand.
                let (input, source) = match input {
                    InputSource::RunInput => (AgentInput::default(), Some(InputSource::RunInput)),
                    other => (self.input_for(other), None),
                };
                self.open[node.index()] = Some(self.pending.len());
                self.pending.push(OpenAttempt {
                    node,
                    attempt,
                    start: at,
                    input,
                    source,
                    nested: None,
                });
            }
            EventKind::AttemptFinished {
                node,
                attempt,
                outcome,
                elapsed,
            } => {
                let Some(index) = self.open_record(node, attempt) else {
                    return; // an end without a start: nothing to complete
                };
                self.open[node.index()] = None;
                let mut open = self.pending.swap_remove(index);
                // The attempt moved into the hole changes place.
                if let Some(moved) = self.pending.get(index) {
                    self.open[moved.node.index()] = Some(index);
                }
                let (output, error) = match outcome {
                    AttemptOutcome::Succeeded(output) => {
                        self.succeeded[node.index()] = Some(self.records.len());
                        (Some(output), None)
                    }
                    AttemptOutcome::Failed(error) => (None, Some(error.to_string())),
                    AttemptOutcome::Interrupted(why) => (None, Some(why.describe().to_owned())),
                };
                let agent_name = self.name_for(node);
                let input = std::mem::take(&mut open.input);
                self.sources.push(open.source.take());
                let mut record = open.into_record(self.id, agent_name, input);
                record.end_time = Some(at);
                record.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
                record.success = output.is_some();
                record.output = output;
                record.error = error;
                self.records.push(record);
            }
            EventKind::StepAdded { step, agent, .. } => {
                let index = step.index();
                if index >= self.nodes.len() {
                    self.nodes.resize_with(index + 1, String::new);
                    self.open.resize(index + 1, None);
                    self.succeeded.resize(index + 1, None);
                }
                self.nodes[index] = agent;
            }
            EventKind::RunFinished { .. } => self.end = Some(at),
            EventKind::RetryScheduled { .. }
            | EventKind::RunStarted { .. }
            | EventKind::StepDecided { .. }
            | EventKind::StateChanged { .. }
            | EventKind::AnswersGiven { .. } => {}
        }
    }

    /// The name of `node`'s agent for a new record: moved out of the run's
    /// list for its first record, copied from an earlier record after that
    /// (most nodes run once, and their names are then never copied).
    fn name_for(&mut self, node: NodeId) -> String {
        match self.nodes.get_mut(node.index()) {
            Some(name) if !name.is_empty() => std::mem::take(name),
            _ => self
                .records
                .iter()
                .rev()
                .find(|record| record.node == Some(node))
                .map(|record| record.agent_name.clone())
                .unwrap_or_default(),
        }
    }

    /// Where in `pending` the record of `node`'s unfinished attempt
    /// `attempt` is.
    fn open_record(&self, node: NodeId, attempt: u32) -> Option<usize> {
        let index = self.open.get(node.index()).copied().flatten()?;
        (self.pending.get(index)?.attempt == attempt).then_some(index)
    }

    /// Where the trace of a run nested in attempt `attempt` of `node` goes,
    /// finished or not.
    fn nested_mut(&mut self, node: NodeId, attempt: u32) -> Option<&mut Option<NestedTrace>> {
        if let Some(index) = self.open_record(node, attempt) {
            return self.pending.get_mut(index).map(|open| &mut open.nested);
        }
        let records = &self.records;
        let located = self.located.get_or_insert_with(|| {
            records
                .iter()
                .enumerate()
                .filter_map(|(index, record)| Some(((record.node?, record.attempt), index)))
                .collect()
        });
        let index = *located.get(&(node, attempt))?;
        self.records.get_mut(index).map(|record| &mut record.nested)
    }

    /// Finished records, then unfinished ones (in node order), their inputs
    /// made.
    fn into_records(mut self) -> Vec<AgentExecution> {
        let sources = std::mem::take(&mut self.sources);
        for (index, source) in sources.into_iter().enumerate() {
            let Some(source) = source else { continue };
            let input = self.input_for(source);
            if let Some(record) = self.records.get_mut(index) {
                record.input = input;
            }
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|open| open.node);
        for mut open in pending {
            let input = match open.source.take() {
                Some(source) => self.input_for(source),
                None => std::mem::take(&mut open.input),
            };
            let agent_name = self.name_for(open.node);
            self.records
                .push(open.into_record(self.id, agent_name, input));
        }
        self.records
    }

    fn into_trace(self) -> ExecutionTrace {
        let mut trace = ExecutionTrace::starting_at(self.start);
        trace.run_id = Some(self.id);
        trace.end_time = self.end;
        trace.agent_executions = self.into_records();
        trace
    }
}

/// The views of runs, built one event at a time: from a list of events read
/// back, or as the events are appended (a [`LiveJournal`](super::LiveJournal)).
#[derive(Default)]
pub(crate) struct Views {
    /// Each run's view, in the order the runs started.
    runs: Vec<RunView>,
    index_of: HashMap<RunId, usize>,
    /// Events of one run mostly come together: the last one's run and place.
    last: Option<(RunId, usize)>,
}

impl Views {
    /// Applies one event.
    pub(crate) fn apply(&mut self, event: JournalEvent) {
        let JournalEvent { run, at, kind } = event;
        if let EventKind::RunStarted {
            nodes,
            input,
            parent,
            ..
        } = kind
        {
            self.index_of.insert(run, self.runs.len());
            self.runs.push(RunView::new(run, at, nodes, *input, parent));
            return;
        }
        let index = match self.last {
            Some((id, index)) if id == run => Some(index),
            _ => self.index_of.get(&run).copied(),
        };
        let Some(index) = index else {
            return; // events of a run whose start is not in this selection
        };
        self.last = Some((run, index));
        self.runs[index].apply(at, kind);
    }

    /// Runs `roots` and every run nested in them, moved out of these views
    /// when `take`, copied otherwise.
    pub(crate) fn select(&mut self, roots: &[RunId], take: bool) -> Self {
        let mut wanted = Wanted::new(roots);
        let flags: Vec<bool> = self
            .runs
            .iter()
            .map(|view| wanted.starts(view.id, view.parent.map(|parent| parent.run)))
            .collect();
        let selected = if take {
            take_flagged(&mut self.runs, flags)
        } else {
            let copies = self.runs.iter().zip(&flags).filter(|(_, &f)| f);
            copies.map(|(view, _)| view.clone()).collect()
        };
        if take {
            self.reindex();
        }
        let mut views = Self {
            runs: selected,
            ..Self::default()
        };
        views.reindex();
        views
    }

    fn reindex(&mut self) {
        self.index_of = self
            .runs
            .iter()
            .enumerate()
            .map(|(index, view)| (view.id, index))
            .collect();
        self.last = None;
    }

    /// Every run, nested runs attached to their parents' records and removed
    /// from the list.
    pub(crate) fn finish(self) -> Vec<RunView> {
        let Self {
            mut runs, index_of, ..
        } = self;
        // Attach children to their parents, last started first: a child
        // started after its parent, so each child is complete when it is
        // attached.
        let mut kept = Vec::new();
        while let Some(view) = runs.pop() {
            let parent = view
                .parent
                .and_then(|parent| index_of.get(&parent.run).map(|&i| (i, parent)))
                .filter(|&(i, _)| i < runs.len());
            match parent {
                Some((i, parent)) => {
                    let trace = view.into_trace();
                    if let Some(nested) = runs[i].nested_mut(parent.node, parent.attempt) {
                        *nested = Some(trace.into());
                    }
                }
                None => kept.push(view),
            }
        }
        kept.reverse();
        kept
    }

    /// The trace of run `run` (nested runs attached), if the views hold it.
    pub(crate) fn into_run_trace(self, run: RunId) -> Option<ExecutionTrace> {
        let mut runs = self.finish();
        let index = runs.iter().position(|view| view.id == run)?;
        Some(runs.swap_remove(index).into_trace())
    }

    /// One trace holding the records of every run in `roots` (nested runs
    /// attached), run after run, starting at `start_time`.
    pub(crate) fn into_history(self, roots: &[RunId], start_time: DateTime<Utc>) -> ExecutionTrace {
        let mut by_id: HashMap<RunId, RunView> = self
            .finish()
            .into_iter()
            .map(|view| (view.id, view))
            .collect();
        let mut trace = ExecutionTrace::starting_at(start_time);
        for root in roots {
            if let Some(view) = by_id.remove(root) {
                trace.agent_executions.extend(view.into_records());
            }
        }
        trace
    }
}
