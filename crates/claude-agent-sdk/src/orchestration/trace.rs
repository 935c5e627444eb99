//! Execution traces: one [`AgentExecution`] record per agent attempt.
//!
//! A trace is honest about what happened: every attempt gets a record — the
//! successful ones, the failed ones, and the ones cut short by a cancellation or
//! a deadline — with its attempt number, its input, its output or error, and its
//! timing. An agent that is itself an orchestration
//! ([`OrchestratorAgent`](super::OrchestratorAgent)) keeps its own trace in
//! [`AgentExecution::nested`], so nesting is never flattened away.
//!
//! Times come from one monotonic clock per [`ExecutionContext`](super::ExecutionContext),
//! anchored to UTC once, so `end_time - start_time == duration_ms` and the records
//! of one run are mutually consistent even if the wall clock jumps.
//!
//! What a record keeps of an attempt's input and output, and why those are
//! not plain [`AgentInput`](super::AgentInput)s and
//! [`AgentOutput`](super::AgentOutput)s, is explained on
//! [`RecordedInput`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
pub use smol_str::SmolStr;

use crate::orchestration::recorded::{RecordedInput, RecordedOutput};
use crate::orchestration::usage::Usage;

/// The history of a run: when it started and ended, and each agent attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionTrace {
    /// When the run (or the context that holds the trace) started, in UTC.
    pub start_time: DateTime<Utc>,
    /// When the run ended; `None` while it is still going.
    pub end_time: Option<DateTime<Utc>>,
    /// One record per agent attempt, in the order the attempts ended.
    pub agent_executions: Vec<AgentExecution>,
}

impl Default for ExecutionTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl ExecutionTrace {
    /// An empty trace starting now.
    #[must_use]
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }

    /// An empty trace starting at `start_time`.
    #[must_use]
    pub fn starting_at(start_time: DateTime<Utc>) -> Self {
        Self {
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

    /// The records of the attempts that failed.
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
        self.agent_executions
            .iter()
            .map(AgentExecution::usage)
            .sum()
    }
}

/// The record of one attempt of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentExecution {
    /// The agent's [`name`](super::Agent::name).
    pub agent_name: SmolStr,
    /// Which attempt this was, starting at 1.
    pub attempt: u32,
    /// When the attempt started, in UTC.
    pub start_time: DateTime<Utc>,
    /// When the attempt ended.
    pub end_time: Option<DateTime<Utc>>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// What the agent was given (its text shared with every record of the same input).
    pub input: RecordedInput,
    /// What the agent returned, when it succeeded.
    pub output: Option<RecordedOutput>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// Whether the attempt succeeded.
    pub success: bool,
    /// The trace of the orchestration this agent ran inside, when the agent is
    /// itself an orchestration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<Box<ExecutionTrace>>,
}

impl AgentExecution {
    /// How long the attempt took, when it has ended.
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        let end = self.end_time?;
        (end - self.start_time).to_std().ok()
    }

    /// What this attempt consumed: its nested run's total when it ran one,
    /// otherwise the usage its output reported (zero when none).
    #[must_use]
    pub fn usage(&self) -> Usage {
        match (&self.nested, &self.output) {
            (Some(nested), _) => nested.total_usage(),
            (None, Some(output)) => output.usage().unwrap_or_default(),
            (None, None) => Usage::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::agent::{AgentInput, AgentOutput};

    fn record(name: &str, success: bool) -> AgentExecution {
        let start = Utc::now();
        AgentExecution {
            agent_name: name.into(),
            attempt: 1,
            start_time: start,
            end_time: Some(start + chrono::TimeDelta::milliseconds(5)),
            duration_ms: Some(5),
            input: RecordedInput::from(AgentInput::new("in")),
            output: success.then(|| AgentOutput::new("out").into()),
            error: (!success).then(|| "boom".to_string()),
            success,
            nested: None,
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
            r.output = Some(
                AgentOutput::new("out")
                    .with_data(
                        serde_json::json!({"usage": {"input_tokens": input, "output_tokens": 1}}),
                    )
                    .into(),
            );
            r
        };
        let mut inner = ExecutionTrace::new();
        inner.agent_executions = vec![with_usage("inner", 5), record("inner", false)];
        let mut outer = with_usage("outer", 1000);
        outer.nested = Some(Box::new(inner));
        let mut trace = ExecutionTrace::new();
        trace.agent_executions = vec![with_usage("a", 10), outer, record("b", true)];
        let total = trace.total_usage();
        assert_eq!(total.input_tokens, 15);
        assert_eq!(total.output_tokens, 2);
    }

    #[test]
    fn trace_round_trips_through_json() {
        let mut trace = ExecutionTrace::new();
        let mut outer = record("outer", true);
        let mut inner = ExecutionTrace::new();
        inner.agent_executions.push(record("inner", true));
        outer.nested = Some(Box::new(inner));
        trace.agent_executions.push(outer);
        let json = serde_json::to_string(&trace).unwrap();
        assert_eq!(
            serde_json::from_str::<ExecutionTrace>(&json).unwrap(),
            trace
        );
    }
}
