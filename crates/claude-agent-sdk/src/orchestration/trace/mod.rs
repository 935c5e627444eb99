//! Execution traces: one [`AgentExecution`] record per agent attempt.
//!
//! A trace is a *view* of a run's [journal](crate::orchestration::journal): it is built from
//! the run's events — when the run ends, or when
//! [`ExecutionContext::get_trace`](crate::orchestration::ExecutionContext::get_trace) asks
//! (for the private context of `orchestrate`, as they are appended) —
//! so it is honest about what happened: every attempt gets a record — the
//! successful ones, the failed ones, the ones cut short by a cancellation or a
//! deadline, and (while a run is still going) the ones still running, with no
//! end time yet. An agent that is itself an orchestration
//! ([`OrchestratorAgent`](crate::orchestration::OrchestratorAgent)) keeps its own trace in
//! [`AgentExecution::nested`], so nesting is never flattened away.
//!
//! Records hold the specification's own [`AgentInput`] and [`AgentOutput`].
//! With [`ExecutionConfig::with_record_text_limit`](crate::orchestration::ExecutionConfig::with_record_text_limit)
//! their texts are cut to a bound (the rest elided, with its length) — the
//! contents, the strings of an output's data, and the gathered results a join
//! or a map hands on — so a run with big payloads keeps a small trace.
//!
//! Times come from one monotonic clock per [`ExecutionContext`](crate::orchestration::ExecutionContext),
//! anchored to UTC once, so `end_time - start_time == duration_ms` and the records
//! of one run are mutually consistent even if the wall clock jumps.
//!
//! Traces serialize to JSON with nested traces inline (see [`json`] for how
//! very deep nesting is written), and read back at any depth up to
//! [`MAX_TRACE_DEPTH`]: neither writing nor reading recurses per level.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::journal::{NodeId, RunId};
use crate::orchestration::usage::Usage;

pub(crate) mod cut;
mod json;

pub use json::MAX_TRACE_DEPTH;

/// The history of a run: when it started and ended, and each agent attempt.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutionTrace {
    /// The run this trace shows; `None` for a context's whole history (see
    /// [`ExecutionContext::get_trace`](crate::orchestration::ExecutionContext::get_trace)).
    pub run_id: Option<RunId>,
    /// When the run (or the context that holds the trace) started, in UTC.
    pub start_time: DateTime<Utc>,
    /// When the run ended; `None` while it is still going.
    pub end_time: Option<DateTime<Utc>>,
    /// One record per agent attempt, in the order the attempts ended; attempts
    /// still running come last, without an end time.
    pub agent_executions: Vec<AgentExecution>,
}

impl Default for ExecutionTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl ExecutionTrace {
    /// Cuts every record's input and output text (nested traces included)
    /// to at most `limit` bytes, as `record_text_limit` does while a run is
    /// recorded; without recursion, whatever the depth.
    pub(crate) fn cap_texts(&mut self, limit: usize) {
        let mut traces: Vec<&mut ExecutionTrace> = vec![self];
        while let Some(trace) = traces.pop() {
            for record in &mut trace.agent_executions {
                cut::cap_input(&mut record.input, limit);
                if let Some(output) = &mut record.output {
                    cut::cap_output(output, limit);
                }
                if let Some(nested) = record.nested.as_deref_mut() {
                    traces.push(nested);
                }
            }
        }
    }

    /// An empty trace starting now.
    #[must_use]
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }

    /// An empty trace starting at `start_time`.
    #[must_use]
    pub fn starting_at(start_time: DateTime<Utc>) -> Self {
        Self {
            run_id: None,
            start_time,
            end_time: None,
            agent_executions: Vec::new(),
        }
    }

    /// How long the run took; `None` until it has ended.
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        let end = self.end_time?;
        (end - self.start_time).to_std().ok()
    }

    /// The records of the attempts that succeeded.
    pub fn successes(&self) -> impl Iterator<Item = &AgentExecution> {
        self.agent_executions.iter().filter(|e| e.success)
    }

    /// The records of the attempts that failed (or have not ended).
    pub fn failures(&self) -> impl Iterator<Item = &AgentExecution> {
        self.agent_executions.iter().filter(|e| !e.success)
    }

    /// The records of every attempt of the agent called `name`.
    pub fn attempts_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AgentExecution> {
        self.agent_executions
            .iter()
            .filter(move |e| e.agent_name == name)
    }

    /// The tokens and cost the run's agents reported (see [`Usage`]), summed over
    /// every attempt, nested runs included.
    ///
    /// An attempt counts with the usage in its output's `data["usage"]`; a failed
    /// attempt has no output and counts as zero. An attempt that ran a nested
    /// orchestration counts with its nested trace's total instead, so nothing is
    /// counted twice and the tokens of a nested run that failed still count.
    #[must_use]
    pub fn total_usage(&self) -> Usage {
        // A walk with a stack of its own: deep nesting cannot overflow the thread's.
        let mut total = Usage::default();
        let mut pending = vec![self];
        while let Some(trace) = pending.pop() {
            for record in &trace.agent_executions {
                // A nested run that kept no records (tracing off) still
                // reports its spending in the output of the attempt it ran in.
                match (&record.nested, &record.output) {
                    (Some(nested), _) if !nested.agent_executions.is_empty() => {
                        pending.push(nested);
                    }
                    (_, Some(output)) => total += Usage::from_output(output).unwrap_or_default(),
                    (_, None) => {}
                }
            }
        }
        total
    }
}

/// The trace of the orchestration an agent ran inside
/// ([`AgentExecution::nested`]): an [`ExecutionTrace`] — it derefs to one —
/// that drops without recursing, however deep the nesting goes (dropping
/// traces nested in traces field by field would take stack per level).
/// Keeping this on the nested link, not on `ExecutionTrace`, leaves traces
/// and records plain values users move out of
/// (`for record in trace.agent_executions`).
#[derive(Clone, PartialEq)]
pub struct NestedTrace(Box<ExecutionTrace>);

impl NestedTrace {
    /// `trace`, as a record's nested trace.
    #[must_use]
    pub fn new(trace: ExecutionTrace) -> Self {
        Self(Box::new(trace))
    }

    /// The trace, moved out.
    #[must_use]
    pub fn into_inner(mut self) -> ExecutionTrace {
        let start_time = self.0.start_time;
        std::mem::replace(&mut *self.0, ExecutionTrace::starting_at(start_time))
    }
}

impl From<ExecutionTrace> for NestedTrace {
    fn from(trace: ExecutionTrace) -> Self {
        Self::new(trace)
    }
}

impl std::ops::Deref for NestedTrace {
    type Target = ExecutionTrace;

    fn deref(&self) -> &ExecutionTrace {
        &self.0
    }
}

impl std::ops::DerefMut for NestedTrace {
    fn deref_mut(&mut self) -> &mut ExecutionTrace {
        &mut self.0
    }
}

/// Written and read as the trace itself (at any depth,
/// without recursing).
impl serde::Serialize for NestedTrace {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for NestedTrace {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ExecutionTrace::deserialize(deserializer).map(Self::new)
    }
}

impl std::fmt::Debug for NestedTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Drop for NestedTrace {
    fn drop(&mut self) {
        // The records of the traces below are taken out onto a heap stack;
        // each nested trace is dropped with no records left in it.
        let mut pending = vec![std::mem::take(&mut self.0.agent_executions)];
        while let Some(mut records) = pending.pop() {
            for record in &mut records {
                if let Some(mut nested) = record.nested.take() {
                    pending.push(std::mem::take(&mut nested.agent_executions));
                }
            }
        }
    }
}

/// The record of one attempt of one agent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentExecution {
    /// The agent's [`name`](crate::orchestration::Agent::name).
    pub agent_name: String,
    /// Which attempt this was, starting at 1.
    pub attempt: u32,
    /// When the attempt started, in UTC.
    pub start_time: DateTime<Utc>,
    /// When the attempt ended; `None` while it is still running.
    pub end_time: Option<DateTime<Utc>>,
    /// How long the attempt took, in milliseconds; `None` while it is running.
    pub duration_ms: Option<u64>,
    /// What the agent was given.
    pub input: AgentInput,
    /// What the agent returned, when it succeeded.
    pub output: Option<AgentOutput>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// Whether the attempt succeeded.
    pub success: bool,
    /// The trace of the orchestration this agent ran inside, when the agent is
    /// itself an orchestration.
    pub nested: Option<NestedTrace>,
    /// The run the attempt belongs to.
    pub run_id: Option<RunId>,
    /// What the attempt ran: in a pipeline or fan-out, the node (the
    /// agent's position in the list it was given); in a graph, the *step* —
    /// one per node activation, loop pass and map item, numbered as the run
    /// made them (the journal's [`StepAdded`](crate::orchestration::EventKind::StepAdded)
    /// names each step's graph node) — not the node's position among the
    /// graph's nodes.
    pub node: Option<NodeId>,
}

impl AgentExecution {
    /// A record of an attempt that started at `start_time` and has not ended.
    #[must_use]
    pub fn new(
        agent_name: impl Into<String>,
        attempt: u32,
        start_time: DateTime<Utc>,
        input: AgentInput,
    ) -> Self {
        Self {
            agent_name: agent_name.into(),
            attempt,
            start_time,
            end_time: None,
            duration_ms: None,
            input,
            output: None,
            error: None,
            success: false,
            nested: None,
            run_id: None,
            node: None,
        }
    }

    /// How long the attempt took, when it has ended.
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        let end = self.end_time?;
        (end - self.start_time).to_std().ok()
    }

    /// Whether the attempt has ended.
    #[must_use]
    pub fn has_ended(&self) -> bool {
        self.end_time.is_some()
    }

    /// What this attempt consumed: its nested run's total when it ran one,
    /// otherwise the usage its output reported (zero when none).
    #[must_use]
    pub fn usage(&self) -> Usage {
        match (&self.nested, &self.output) {
            (Some(nested), _) if !nested.agent_executions.is_empty() => nested.total_usage(),
            (_, Some(output)) => Usage::from_output(output).unwrap_or_default(),
            (_, None) => Usage::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, success: bool) -> AgentExecution {
        let start = Utc::now();
        AgentExecution {
            end_time: Some(start + chrono::TimeDelta::milliseconds(5)),
            duration_ms: Some(5),
            output: success.then(|| AgentOutput::new("out")),
            error: (!success).then(|| "boom".to_string()),
            success,
            ..AgentExecution::new(name, 1, start, AgentInput::new("in"))
        }
    }

    #[test]
    fn duration_needs_an_end() {
        let mut trace = ExecutionTrace::new();
        assert_eq!(trace.duration(), None);
        trace.end_time = Some(trace.start_time + chrono::TimeDelta::milliseconds(1500));
        assert_eq!(trace.duration(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn filters_split_successes_and_failures() {
        let mut trace = ExecutionTrace::new();
        trace.agent_executions = vec![record("a", true), record("b", false), record("a", false)];
        assert_eq!(trace.successes().count(), 1);
        assert_eq!(trace.failures().count(), 2);
        assert_eq!(trace.attempts_of("a").count(), 2);
        assert_eq!(
            trace.agent_executions[0].duration(),
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn total_usage_sums_outputs_and_nested_runs_once() {
        let with_usage = |name: &str, input: u64| {
            let mut r = record(name, true);
            r.output = Some(AgentOutput::new("out").with_data(
                serde_json::json!({"usage": {"input_tokens": input, "output_tokens": 1}}),
            ));
            r
        };
        let mut inner = ExecutionTrace::new();
        inner.agent_executions = vec![with_usage("inner", 5), record("inner", false)];
        let mut outer = with_usage("outer", 1000);
        outer.nested = Some(inner.into());
        let mut trace = ExecutionTrace::new();
        trace.agent_executions = vec![with_usage("a", 10), outer, record("b", true)];
        let total = trace.total_usage();
        assert_eq!(total.input_tokens, 15);
        assert_eq!(total.output_tokens, 2);
    }

    fn nested_chain(depth: usize) -> ExecutionTrace {
        let mut trace = ExecutionTrace::new();
        trace.agent_executions.push(record("leaf", true));
        for level in 0..depth {
            let mut outer = ExecutionTrace::new();
            let mut step = record(&format!("level{level}"), true);
            step.nested = Some(trace.into());
            outer.agent_executions.push(record("sibling", false));
            outer.agent_executions.push(step);
            trace = outer;
        }
        trace
    }

    #[test]
    fn trace_round_trips_through_json() {
        let trace = nested_chain(2);
        let json = serde_json::to_string(&trace).unwrap();
        assert_eq!(
            serde_json::from_str::<ExecutionTrace>(&json).unwrap(),
            trace
        );
        let one = &trace.agent_executions[1];
        let json = serde_json::to_string(one).unwrap();
        assert_eq!(&serde_json::from_str::<AgentExecution>(&json).unwrap(), one);
    }

    #[test]
    fn a_deeply_nested_trace_reads_back_and_drops() {
        let trace = nested_chain(1000);
        let json = serde_json::to_string(&trace).unwrap();
        let back: ExecutionTrace = serde_json::from_str(&json).unwrap();
        assert_eq!(back.total_usage(), trace.total_usage());
        let mut depth = 0;
        let mut level = &back;
        while let Some(nested) = level
            .agent_executions
            .last()
            .and_then(|r| r.nested.as_ref())
        {
            depth += 1;
            level = nested;
        }
        assert_eq!(depth, 1000);
    }

    #[test]
    fn a_deeply_nested_record_alone_round_trips() {
        let trace = nested_chain(40);
        let record = &trace.agent_executions[1];
        let json = serde_json::to_string(record).unwrap();
        assert_eq!(
            &serde_json::from_str::<AgentExecution>(&json).unwrap(),
            record
        );
    }

    #[test]
    fn a_deep_trace_continues_in_a_flat_list_and_shallow_ones_stay_inline() {
        let shallow = serde_json::to_value(nested_chain(3)).unwrap();
        assert!(shallow["agent_executions"][1]["nested"].is_object());
        assert_eq!(shallow["continued"], serde_json::json!([]));
        let deep = serde_json::to_value(nested_chain(40)).unwrap();
        let pieces = deep["continued"].as_array().unwrap().len();
        assert_eq!(pieces, 40 / json::INLINE_DEPTH);
    }

    #[test]
    fn a_trace_deeper_than_the_bound_is_refused_not_overflowed() {
        let open = r#"{"start_time":"2026-01-01T00:00:00Z","agent_executions":[{"agent_name":"a","attempt":1,"start_time":"2026-01-01T00:00:00Z","input":{"content":"x"},"success":true,"nested":"#;
        let leaf = r#"{"start_time":"2026-01-01T00:00:00Z","agent_executions":[]}"#;
        let levels = MAX_TRACE_DEPTH + 1;
        let json = format!("{}{leaf}{}", open.repeat(levels), "}]}".repeat(levels));
        // Refused — by the bound, or by the JSON reader's own — never a crash.
        assert!(serde_json::from_str::<ExecutionTrace>(&json).is_err());
    }
}
