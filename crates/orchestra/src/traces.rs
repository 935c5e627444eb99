//! Reading execution traces: every attempt record, nested runs included, and
//! what each agent's attempts add up to.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use claude_agent_sdk::orchestration::{
    AgentExecution, ExecutionTrace, NodeId, OrchestrationError, RunId, Usage,
};

/// One trace of the runs `earlier` (oldest first) and then `last`: what a
/// resumed run's summary shows, since it reuses what they finished.
#[must_use]
pub fn joined(earlier: Vec<ExecutionTrace>, last: ExecutionTrace) -> ExecutionTrace {
    let Some(first) = earlier.first() else {
        return last;
    };
    let mut trace = ExecutionTrace::starting_at(first.start_time);
    trace.run_id = last.run_id;
    trace.end_time = last.end_time;
    for mut run in earlier.into_iter().chain(std::iter::once(last)) {
        trace.agent_executions.append(&mut run.agent_executions);
    }
    trace
}

/// Keeps the records of `trace` up to the last success of `step` (what a
/// fork after `step` reuses of the run it forks).
pub fn keep_until(trace: &mut ExecutionTrace, step: &str) {
    let last = trace
        .agent_executions
        .iter()
        .rposition(|record| record.success && record.agent_name == step);
    trace
        .agent_executions
        .truncate(last.map_or(0, |last| last + 1));
}

/// One attempt record and how deep it sits in nested runs (0 for the root run).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The record.
    pub record: &'a AgentExecution,
    /// How many nested runs it is inside.
    pub depth: usize,
    /// Which item of its map it is (from 1), and of how many, when it is an
    /// attempt of a map's item.
    pub item: Option<(usize, usize)>,
    /// The top-level run it belongs to (a resumed run's summary holds the
    /// attempts of the whole chain of runs).
    pub root: Option<RunId>,
}

impl Attempt<'_> {
    /// Its agent's name, and for a map's item which one: `research[2/3]`.
    #[must_use]
    pub fn label(&self) -> String {
        match self.item {
            Some((index, count)) => format!("{}[{index}/{count}]", self.record.agent_name),
            None => self.record.agent_name.clone(),
        }
    }

    /// When the attempt started.
    #[must_use]
    pub fn start(&self) -> DateTime<Utc> {
        self.record.start_time
    }

    /// When it ended (its start plus its duration when no end was recorded;
    /// the calendar's last moment for a duration that runs past it, as a
    /// trace file edited by hand can say).
    #[must_use]
    pub fn end(&self) -> DateTime<Utc> {
        self.record.end_time.unwrap_or_else(|| {
            let ms = i64::try_from(self.record.duration_ms.unwrap_or(0)).unwrap_or(i64::MAX);
            chrono::TimeDelta::try_milliseconds(ms)
                .and_then(|duration| self.record.start_time.checked_add_signed(duration))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        })
    }

    /// Its own usage: the output's (not its nested run's, which is counted in
    /// the nested records).
    #[must_use]
    pub fn own_usage(&self) -> Usage {
        if self.record.nested.is_some() {
            return Usage::default();
        }
        self.record
            .output
            .as_ref()
            .and_then(Usage::from_output)
            .unwrap_or_default()
    }
}

/// Every attempt of the trace, nested ones included, ordered by start time
/// (an enclosing attempt before the attempts inside it).
///
/// Iterative: a trace file read back may nest runs to any depth.
#[must_use]
pub fn attempts(trace: &ExecutionTrace) -> Vec<Attempt<'_>> {
    let mut out = Vec::new();
    // Each trace with, when it is a map's run, the map's items.
    let mut pending = vec![(trace, 0usize, None, None)];
    while let Some((trace, depth, map, root)) = pending.pop() {
        for record in &trace.agent_executions {
            let root = if depth == 0 { record.run_id } else { root };
            out.push(Attempt {
                record,
                depth,
                item: map.as_ref().and_then(|map: &MapItems| map.item_of(record)),
                root,
            });
            if let Some(nested) = &record.nested {
                pending.push((nested, depth + 1, MapItems::of(record), root));
            }
        }
    }
    out.sort_by(|a, b| a.start().cmp(&b.start()).then(a.depth.cmp(&b.depth)));
    out
}

/// The items of a map's run: the steps its agent ran in the run nested in
/// the map's record, in item order.
#[derive(Debug)]
pub struct MapItems<'a> {
    agent: &'a str,
    steps: Vec<Option<NodeId>>,
}

impl<'a> MapItems<'a> {
    /// The items of `record`'s nested run, when `record` is a map's.
    #[must_use]
    pub fn of(record: &'a AgentExecution) -> Option<Self> {
        let nested = record.nested.as_ref()?;
        if !is_map_run(record) {
            return None;
        }
        let steps: std::collections::BTreeSet<Option<NodeId>> = nested
            .agent_executions
            .iter()
            .filter(|item| item.agent_name == record.agent_name)
            .map(|item| item.node)
            .collect();
        Some(Self {
            agent: &record.agent_name,
            steps: steps.into_iter().collect(),
        })
    }

    /// Which item (from 1) of how many `record`, an attempt of the map's
    /// run, is; `None` for an attempt that is not one of its items.
    #[must_use]
    pub fn item_of(&self, record: &AgentExecution) -> Option<(usize, usize)> {
        if record.agent_name != self.agent {
            return None;
        }
        let index = self.steps.iter().position(|step| *step == record.node)?;
        Some((index + 1, self.steps.len()))
    }
}

/// How an agent's attempts ended, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its last attempt succeeded.
    Done,
    /// Its last attempt failed.
    Failed,
    /// Its last attempt was cut short by a cancellation or the run's deadline.
    Interrupted,
    /// It never started.
    NotRun,
}

impl Status {
    /// The word shown in tables.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::NotRun => "not run",
        }
    }
}

/// What the attempts of one agent (or group) add up to.
#[derive(Debug, Clone)]
pub struct AgentSummary {
    /// How many attempts it had (for a map node, the attempts of its items).
    pub attempts: usize,
    /// From its first attempt's start to its last attempt's end.
    pub duration: Duration,
    /// Usage over all its attempts (for a group, the usage of its steps).
    pub usage: Usage,
    /// How it ended: failed when any item of a map failed for good, also
    /// when the map's join accepted the failure (as a parallel group's
    /// failed step is).
    pub status: Status,
    /// The last attempt's error, if it failed (for a map with failed items,
    /// theirs, each named).
    pub error: Option<String>,
    /// The output of its last successful attempt.
    pub output: Option<String>,
    /// The items of its last map run that failed for good (none unless it is
    /// a map node).
    pub failed_items: Vec<FailedItem>,
}

/// An item of a map that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedItem {
    /// `item 2 of 3 (`who uses rust`)`.
    pub label: String,
    /// Its last attempt's error.
    pub error: String,
    /// The map node's position in the run it ran in.
    pub node: Option<usize>,
}

/// The records of `record`'s nested run that bear its own name: a map's
/// items, or the one step of a group with a budget (which runs as a graph
/// of its own). A group's other nested records never do (agents and groups
/// share one namespace).
fn under_its_name(record: &AgentExecution) -> impl Iterator<Item = &AgentExecution> {
    record
        .nested
        .iter()
        .flat_map(|nested| nested.agent_executions.iter())
        .filter(move |item| item.agent_name == record.agent_name)
}

/// Whether `record` only holds runs of its own step (see [`under_its_name`]).
fn runs_under_its_name(record: &AgentExecution) -> bool {
    under_its_name(record).next().is_some()
}

/// Whether `record` is the run of a map node: its records of its own name
/// are its items' attempts, agents' attempts with no nested run (a group
/// with a budget holds the group's run instead).
fn is_map_run(record: &AgentExecution) -> bool {
    runs_under_its_name(record) && under_its_name(record).all(|item| item.nested.is_none())
}

/// The most characters of an item's input shown in its label.
const ITEM_INPUT_CHARS: usize = 40;

/// The items of map run `record` that failed for good, in item order.
fn failed_items(record: &AgentExecution) -> Vec<FailedItem> {
    let Some(nested) = &record.nested else {
        return Vec::new();
    };
    // Each item is a step (a node id) of the nested run; its last attempt
    // tells how it ended.
    let mut last: std::collections::BTreeMap<Option<NodeId>, &AgentExecution> =
        std::collections::BTreeMap::new();
    for item in nested
        .agent_executions
        .iter()
        .filter(|item| item.agent_name == record.agent_name)
    {
        let newer = last
            .get(&item.node)
            .is_none_or(|seen| (item.attempt, item.start_time) >= (seen.attempt, seen.start_time));
        if newer {
            last.insert(item.node, item);
        }
    }
    let count = last.len();
    last.values()
        .enumerate()
        .filter(|(_, item)| !item.success)
        .filter_map(|(index, item)| {
            let error = item.error.clone().unwrap_or_default();
            if is_interruption(&error) {
                return None;
            }
            let text = item.input.content.trim();
            let first = text.lines().next().unwrap_or_default().trim();
            let mut shown: String = first.chars().take(ITEM_INPUT_CHARS).collect();
            if shown.len() < first.len() || first.len() < text.len() {
                shown.push('…');
            }
            let input = if shown.is_empty() {
                String::new()
            } else {
                format!(" (`{shown}`)")
            };
            Some(FailedItem {
                label: format!("item {} of {count}{input}", index + 1),
                error,
                node: record.node.and_then(|node| usize::try_from(node.0).ok()),
            })
        })
        .collect()
}

/// How the error of an attempt that asked a question and waits for its
/// answer begins (the library's `InputRequired`).
const WAITING: &str = "waiting for input";

/// Whether an attempt's error says it waits for an answer (its run paused)
/// rather than failed.
pub fn is_waiting(error: &str) -> bool {
    error.starts_with(WAITING)
}

/// The questions an attempt's error says it waits for an answer to.
pub fn waiting_for(error: &str) -> Option<&str> {
    error.strip_prefix(WAITING)?.strip_prefix(": ")
}

/// Whether an attempt's error says it was cut short rather than failed.
pub fn is_interruption(error: &str) -> bool {
    error.starts_with("interrupted") || error == OrchestrationError::Cancelled.to_string()
}

/// How long `attempts` took: from the first start to the last end within
/// each top-level run, added up over the runs (a resumed run's chain leaves
/// out the time between its runs).
fn active_time(attempts: &[&Attempt<'_>]) -> Duration {
    let mut spans: Vec<(Option<RunId>, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for attempt in attempts {
        match spans.iter_mut().find(|(root, ..)| *root == attempt.root) {
            Some((_, first, last)) => {
                *first = (*first).min(attempt.start());
                *last = (*last).max(attempt.end());
            }
            None => spans.push((attempt.root, attempt.start(), attempt.end())),
        }
    }
    spans
        .iter()
        .map(|(_, first, last)| (*last - *first).to_std().unwrap_or_default())
        .sum()
}

/// How long the run of `trace` took: from its start to its end, less the
/// time between its top-level runs when it holds a chain of them (a resumed
/// run's, or a fork's: the runs they continue may have stopped days before).
#[must_use]
pub fn chain_duration(trace: &ExecutionTrace, all: &[Attempt<'_>]) -> Option<Duration> {
    let whole = trace.duration()?;
    // Each top-level run's first start and last end, in the order they ran.
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut span_of: std::collections::HashMap<Option<RunId>, usize> =
        std::collections::HashMap::new();
    for attempt in all.iter().filter(|a| a.depth == 0) {
        match span_of.get(&attempt.root) {
            Some(&index) => spans[index].1 = spans[index].1.max(attempt.end()),
            None => {
                span_of.insert(attempt.root, spans.len());
                spans.push((attempt.start(), attempt.end()));
            }
        }
    }
    let mut latest = spans.first().map(|(_, end)| *end);
    let mut gaps = Duration::ZERO;
    for (start, end) in spans.iter().skip(1) {
        if let Some(before) = latest {
            gaps += (*start - before).to_std().unwrap_or_default();
        }
        latest = latest.max(Some(*end));
    }
    Some(whole.saturating_sub(gaps))
}

/// Sums up the attempts named `name` in `all`.
#[must_use]
pub fn summarize(all: &[Attempt<'_>], name: &str) -> AgentSummary {
    let mine: Vec<&Attempt<'_>> = all.iter().filter(|a| a.record.agent_name == name).collect();
    // A map node's own records only hold its items' runs (a group with a
    // budget's, its one run): its attempts are those (when it had any).
    let items: Vec<&Attempt<'_>> = mine
        .iter()
        .copied()
        .filter(|a| !runs_under_its_name(a.record))
        .collect();
    let counted = if items.is_empty() { &mine } else { &items };
    let last = mine.iter().max_by_key(|a| a.end());
    let duration = active_time(&mine);
    let usage = counted.iter().map(|a| a.record.usage()).sum();
    let failed = mine
        .iter()
        .filter(|a| is_map_run(a.record))
        .max_by_key(|a| a.end())
        .map(|map| failed_items(map.record))
        .unwrap_or_default();
    let (status, error) = match last {
        None => (Status::NotRun, None),
        Some(last) if last.record.success && failed.is_empty() => (Status::Done, None),
        Some(last) => {
            let error = last.record.error.clone().unwrap_or_default();
            // A nested run that saw the stop first ends "cancelled"; its
            // group was interrupted like the agents in it.
            if !last.record.success && is_interruption(&error) {
                (Status::Interrupted, Some(error))
            } else if failed.is_empty() {
                (Status::Failed, Some(error))
            } else {
                let named: Vec<String> = failed
                    .iter()
                    .map(|item| format!("{}: {}", item.label, item.error))
                    .collect();
                (Status::Failed, Some(named.join("\n")))
            }
        }
    };
    let output = mine
        .iter()
        .filter(|a| a.record.success)
        .max_by_key(|a| a.end())
        .and_then(|a| a.record.output.as_ref())
        .map(|output| output.content.clone());
    AgentSummary {
        output,
        attempts: counted.len(),
        duration,
        usage,
        status,
        error,
        failed_items: failed,
    }
}

/// What `run --json` prints, whatever the run's outcome (an
/// `OrchestratorOutput`, a failed or a paused run): its trace.
#[derive(serde::Deserialize)]
struct Printed {
    execution_trace: ExecutionTrace,
}

/// Reads a trace file: an `ExecutionTrace`, or what `run --json` printed
/// (whose trace is used), also for a run that failed or paused.
///
/// # Errors
/// Why the file cannot be read or is not a trace.
pub fn read(path: &Path) -> Result<ExecutionTrace, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let as_trace = serde_json::from_str::<ExecutionTrace>(&text);
    match as_trace {
        Ok(trace) => Ok(trace),
        Err(trace_error) => serde_json::from_str::<Printed>(&text)
            .map(|printed| printed.execution_trace)
            .map_err(|_| {
                format!(
                    "`{}` is not an execution trace: {trace_error}",
                    path.display()
                )
            }),
    }
}

/// A duration for people: `850ms`, `12.3s`, `2m05s`.
#[must_use]
pub fn human_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Token counts for people: `—` for none, else `in→out` totals.
#[must_use]
pub fn human_tokens(usage: &Usage) -> String {
    if usage.total_tokens() == 0 {
        return "—".to_owned();
    }
    let mut text = format!("{} in / {} out", usage.input_tokens, usage.output_tokens);
    if let Some(cost) = usage.cost_usd {
        text.push_str(&format!(" (${cost:.4})"));
    }
    text
}
