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

use super::{AttemptOutcome, EventKind, InputSource, JournalEvent, NodeId, ParentAttempt, RunId};
use crate::orchestration::agent::AgentInput;
use crate::orchestration::trace::{AgentExecution, ExecutionTrace};

/// The trace of run `run` (nested runs attached), if the events hold it.
pub(crate) fn run(events: Vec<JournalEvent>, run: RunId) -> Option<ExecutionTrace> {
    let mut runs = build(events);
    let index = runs.iter().position(|view| view.id == run)?;
    Some(runs.swap_remove(index).into_trace())
}

/// One trace holding the records of every run in `roots` (nested runs
/// attached), run after run, starting at `start_time`.
pub(crate) fn history(
    events: Vec<JournalEvent>,
    roots: &[RunId],
    start_time: DateTime<Utc>,
) -> ExecutionTrace {
    let mut by_id: HashMap<RunId, RunView> = build(events)
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

/// What the events say of one run.
struct RunView {
    id: RunId,
    parent: Option<ParentAttempt>,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    nodes: Vec<String>,
    input: AgentInput,
    /// Finished attempts' records, in the order the attempts finished.
    records: Vec<AgentExecution>,
    /// Unfinished attempts' records (a few: the attempts running).
    pending: Vec<AgentExecution>,
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
                let name = self.name_for(node);
                let mut record = AgentExecution::new(name, attempt, at, self.input_for(input));
                record.run_id = Some(self.id);
                record.node = Some(node);
                self.open[node.index()] = Some(self.pending.len());
                self.pending.push(record);
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
                let mut record = self.pending.swap_remove(index);
                // The record moved into the hole changes place.
                if let Some(moved) = self.pending.get(index).and_then(|moved| moved.node) {
                    self.open[moved.index()] = Some(index);
                }
                record.end_time = Some(at);
                record.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
                match outcome {
                    AttemptOutcome::Succeeded(output) => {
                        record.output = Some(output);
                        record.success = true;
                        self.succeeded[node.index()] = Some(self.records.len());
                    }
                    AttemptOutcome::Failed(error) => record.error = Some(error.to_string()),
                    AttemptOutcome::Interrupted(why) => {
                        record.error = Some(why.describe().to_owned());
                    }
                }
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
            | EventKind::StateChanged { .. } => {}
        }
    }

    /// The name of `node`'s agent for a new record: moved out of the run's
    /// list for its first attempt, copied from an earlier record after that
    /// (most nodes run once, and their names are then never copied).
    fn name_for(&mut self, node: NodeId) -> String {
        match self.nodes.get_mut(node.index()) {
            Some(name) if !name.is_empty() => std::mem::take(name),
            _ => self
                .pending
                .iter()
                .chain(self.records.iter().rev())
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

    /// The record of attempt `attempt` of `node`, finished or not.
    fn record_mut(&mut self, node: NodeId, attempt: u32) -> Option<&mut AgentExecution> {
        if let Some(index) = self.open_record(node, attempt) {
            return self.pending.get_mut(index);
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
        self.records.get_mut(index)
    }

    /// Finished records, then unfinished ones (in node order).
    fn into_records(self) -> Vec<AgentExecution> {
        let mut records = self.records;
        let mut pending = self.pending;
        pending.sort_by_key(|record| record.node);
        records.extend(pending);
        records
    }

    fn into_trace(self) -> ExecutionTrace {
        let mut trace = ExecutionTrace::starting_at(self.start);
        trace.run_id = Some(self.id);
        trace.end_time = self.end;
        trace.agent_executions = self.into_records();
        trace
    }
}

/// Every run the events hold, nested runs attached to their parents' records
/// and removed from the list.
fn build(events: Vec<JournalEvent>) -> Vec<RunView> {
    // The first run's attempts, counted in one quick pass, size its records
    // at once (a graph's run does not know its steps when it starts).
    let first_attempts = events.first().map_or(0, |first| {
        events
            .iter()
            .filter(|event| {
                event.run == first.run && matches!(event.kind, EventKind::AttemptStarted { .. })
            })
            .count()
    });
    let mut runs: Vec<RunView> = Vec::new();
    let mut index_of: HashMap<RunId, usize> = HashMap::new();
    // Events of one run mostly come together: remember the last one's place.
    let mut last: Option<(RunId, usize)> = None;
    for event in events {
        let JournalEvent { run, at, kind } = event;
        if let EventKind::RunStarted {
            nodes,
            input,
            parent,
            ..
        } = kind
        {
            index_of.insert(run, runs.len());
            let mut view = RunView::new(run, at, nodes, *input, parent);
            if runs.is_empty() {
                view.records.reserve(first_attempts);
            }
            runs.push(view);
            continue;
        }
        let index = match last {
            Some((id, index)) if id == run => Some(index),
            _ => index_of.get(&run).copied(),
        };
        let Some(index) = index else {
            continue; // events of a run whose start is not in this selection
        };
        last = Some((run, index));
        runs[index].apply(at, kind);
    }
    // Attach children to their parents, last started first: a child started
    // after its parent, so each child is complete when it is attached.
    let mut kept = Vec::new();
    while let Some(view) = runs.pop() {
        let parent = view
            .parent
            .and_then(|parent| index_of.get(&parent.run).map(|&i| (i, parent)))
            .filter(|&(i, _)| i < runs.len());
        match parent {
            Some((i, parent)) => {
                let trace = view.into_trace();
                if let Some(record) = runs[i].record_mut(parent.node, parent.attempt) {
                    record.nested = Some(Box::new(trace));
                }
            }
            None => kept.push(view),
        }
    }
    kept.reverse();
    kept
}
