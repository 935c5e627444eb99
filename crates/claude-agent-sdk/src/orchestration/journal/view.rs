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
    /// Finished attempts, in the order they finished.
    records: Vec<AgentExecution>,
    /// Attempts that started and have not finished.
    open: HashMap<(NodeId, u32), AgentExecution>,
    /// The order attempts started in (finished ones are skipped when read).
    started: Vec<(NodeId, u32)>,
    /// Where each finished attempt's record is.
    finished: HashMap<(NodeId, u32), usize>,
    /// The record of each node's last successful attempt.
    succeeded: HashMap<NodeId, usize>,
}

impl RunView {
    fn input_for(&self, source: &InputSource) -> AgentInput {
        match source {
            InputSource::RunInput => self.input.clone(),
            InputSource::OutputOf(node) => {
                let content = self
                    .succeeded
                    .get(node)
                    .and_then(|&index| self.records.get(index))
                    .and_then(|record| record.output.as_ref())
                    .map(|output| output.content.clone())
                    .unwrap_or_default();
                AgentInput {
                    content,
                    context: self.input.context.clone(),
                    metadata: self.input.metadata.clone(),
                }
            }
            InputSource::Given(input) => input.clone(),
        }
    }

    fn into_records(mut self) -> Vec<AgentExecution> {
        let mut records = self.records;
        for key in &self.started {
            records.extend(self.open.remove(key));
        }
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
    let mut runs: Vec<RunView> = Vec::new();
    let mut index_of: HashMap<RunId, usize> = HashMap::new();
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
            runs.push(RunView {
                id: run,
                parent,
                start: at,
                end: None,
                nodes,
                input,
                records: Vec::new(),
                open: HashMap::new(),
                started: Vec::new(),
                finished: HashMap::new(),
                succeeded: HashMap::new(),
            });
            continue;
        }
        let Some(view) = index_of.get(&run).and_then(|&i| runs.get_mut(i)) else {
            continue; // events of a run whose start is not in this selection
        };
        apply(view, at, kind);
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
                let key = (parent.node, parent.attempt);
                let owner = &mut runs[i];
                let record = match owner.finished.get(&key) {
                    Some(&at) => owner.records.get_mut(at),
                    None => owner.open.get_mut(&key),
                };
                if let Some(record) = record {
                    record.nested = Some(Box::new(trace));
                }
            }
            None => kept.push(view),
        }
    }
    kept.reverse();
    kept
}

/// Applies one event (not a run start) to its run's view.
fn apply(view: &mut RunView, at: DateTime<Utc>, kind: EventKind) {
    match kind {
        EventKind::AttemptStarted {
            node,
            attempt,
            input,
            ..
        } => {
            let name = view.nodes.get(node.index()).cloned().unwrap_or_default();
            let mut record = AgentExecution::new(name, attempt, at, view.input_for(&input));
            record.run_id = Some(view.id);
            record.node = Some(node);
            view.started.push((node, attempt));
            view.open.insert((node, attempt), record);
        }
        EventKind::AttemptFinished {
            node,
            attempt,
            outcome,
            elapsed,
        } => {
            let key = (node, attempt);
            let Some(mut record) = view.open.remove(&key) else {
                return; // an end without a start: nothing to complete
            };
            record.end_time = Some(at);
            record.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
            match outcome {
                AttemptOutcome::Succeeded(output) => {
                    record.output = Some(output);
                    record.success = true;
                    view.succeeded.insert(node, view.records.len());
                }
                AttemptOutcome::Failed(error) => record.error = Some(error.to_string()),
                AttemptOutcome::Interrupted(why) => record.error = Some(why.describe().to_owned()),
            }
            view.finished.insert(key, view.records.len());
            view.records.push(record);
        }
        EventKind::RunFinished { .. } => view.end = Some(at),
        EventKind::RetryScheduled { .. } | EventKind::RunStarted { .. } => {}
    }
}
