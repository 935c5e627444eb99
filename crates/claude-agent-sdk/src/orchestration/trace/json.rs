//! How traces are written to and read from JSON, at any depth, without
//! recursing once per level of nesting (a thread's stack would not survive a
//! run nested a thousand levels deep).
//!
//! A trace is written as an object — `run_id`, `start_time`, `end_time`,
//! `agent_executions` — whose records hold their nested traces inline, in the
//! same shape, for the first [`INLINE_DEPTH`] levels. A record deeper than
//! that writes `"nested": {"continued": i}` instead, and the trace it would
//! have held is written as entry `i` of the top-level trace's `continued`
//! list (itself inline for another [`INLINE_DEPTH`] levels, and so on). Every
//! trace a run produces in practice is plainly nested; a deep one is a
//! handful of plainly nested pieces.
//!
//! Reading keeps each record's nested trace as a JSON value until its level
//! is built, and builds levels from a work list, so it never recurses once
//! per level either. (A JSON value, not raw text: serde's buffered paths —
//! a trace inside a `#[serde(flatten)]` struct or a tagged enum — cannot
//! hand raw text on. A value holds at most [`INLINE_DEPTH`] levels, as
//! written, well within the JSON reader's own nesting limit.)

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{AgentExecution, ExecutionTrace};
use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::journal::{NodeId, RunId};

/// The deepest nesting a trace read from JSON may have.
pub const MAX_TRACE_DEPTH: usize = 4096;

/// How many levels of nested traces are written inline before the rest
/// continues in the top-level `continued` list.
pub(crate) const INLINE_DEPTH: usize = 16;

/// The traces waiting to be written in the `continued` list.
#[derive(Default)]
struct Continued<'t>(RefCell<Vec<&'t ExecutionTrace>>);

/// A trace being written, `depth` levels below the trace that is written
/// whole (the top one, or an entry of `continued`).
struct TraceAt<'c, 't> {
    trace: &'t ExecutionTrace,
    depth: usize,
    continued: &'c Continued<'t>,
    /// Whether this is the top-level trace, which writes the `continued` list.
    top: bool,
}

struct RecordsAt<'c, 't> {
    records: &'t [AgentExecution],
    depth: usize,
    continued: &'c Continued<'t>,
}

struct RecordAt<'c, 't> {
    record: &'t AgentExecution,
    depth: usize,
    continued: &'c Continued<'t>,
    /// Whether the nested trace is written as a top-level trace of its own
    /// (a record written alone has no top-level list to continue in).
    nested_on_top: bool,
}

/// What a record deeper than [`INLINE_DEPTH`] writes for its nested trace.
#[derive(Serialize)]
struct ContinuedAt {
    continued: usize,
}

struct ContinuedList<'c, 't>(&'c Continued<'t>);

impl Serialize for ExecutionTrace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let continued = Continued::default();
        TraceAt {
            trace: self,
            depth: 0,
            continued: &continued,
            top: true,
        }
        .serialize(serializer)
    }
}

impl Serialize for TraceAt<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("ExecutionTrace", 5)?;
        match &self.trace.run_id {
            Some(run) => state.serialize_field("run_id", run)?,
            None => state.skip_field("run_id")?,
        }
        state.serialize_field("start_time", &self.trace.start_time)?;
        state.serialize_field("end_time", &self.trace.end_time)?;
        state.serialize_field(
            "agent_executions",
            &RecordsAt {
                records: &self.trace.agent_executions,
                depth: self.depth,
                continued: self.continued,
            },
        )?;
        if self.top {
            // Written last: by now the records above have queued every
            // trace too deep to write inline.
            state.serialize_field("continued", &ContinuedList(self.continued))?;
        }
        state.end()
    }
}

impl Serialize for RecordsAt<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.records.len()))?;
        for record in self.records {
            seq.serialize_element(&RecordAt {
                record,
                depth: self.depth,
                continued: self.continued,
                nested_on_top: false,
            })?;
        }
        seq.end()
    }
}

impl Serialize for RecordAt<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record;
        let mut state = serializer.serialize_struct("AgentExecution", 12)?;
        state.serialize_field("agent_name", &record.agent_name)?;
        state.serialize_field("attempt", &record.attempt)?;
        state.serialize_field("start_time", &record.start_time)?;
        state.serialize_field("end_time", &record.end_time)?;
        state.serialize_field("duration_ms", &record.duration_ms)?;
        state.serialize_field("input", &record.input)?;
        state.serialize_field("output", &record.output)?;
        state.serialize_field("error", &record.error)?;
        state.serialize_field("success", &record.success)?;
        match &record.nested {
            Some(nested) if self.nested_on_top => state.serialize_field("nested", &**nested)?,
            Some(nested) if self.depth + 1 < INLINE_DEPTH => state.serialize_field(
                "nested",
                &TraceAt {
                    trace: nested,
                    depth: self.depth + 1,
                    continued: self.continued,
                    top: false,
                },
            )?,
            Some(nested) => {
                let mut queue = self.continued.0.borrow_mut();
                let at = ContinuedAt {
                    continued: queue.len(),
                };
                queue.push(nested);
                drop(queue);
                state.serialize_field("nested", &at)?;
            }
            None => state.skip_field("nested")?,
        }
        match &record.run_id {
            Some(run) => state.serialize_field("run_id", run)?,
            None => state.skip_field("run_id")?,
        }
        match &record.node {
            Some(node) => state.serialize_field("node", node)?,
            None => state.skip_field("node")?,
        }
        state.end()
    }
}

impl Serialize for ContinuedList<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The list grows while it is written (an entry may queue deeper ones).
        let mut seq = serializer.serialize_seq(None)?;
        let mut next = 0;
        loop {
            let Some(trace) = self.0 .0.borrow().get(next).copied() else {
                break;
            };
            seq.serialize_element(&TraceAt {
                trace,
                depth: 0,
                continued: self.0,
                top: false,
            })?;
            next += 1;
        }
        seq.end()
    }
}

impl Serialize for AgentExecution {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Alone, a record's nested trace is a top-level trace of its own,
        // with its own `continued` list (which reading expects too).
        let unused = Continued::default();
        RecordAt {
            record: self,
            depth: 0,
            continued: &unused,
            nested_on_top: true,
        }
        .serialize(serializer)
    }
}

/// A trace as read, its records' nested traces still raw.
#[derive(Deserialize)]
struct TraceShell {
    #[serde(default)]
    run_id: Option<RunId>,
    start_time: DateTime<Utc>,
    #[serde(default)]
    end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    agent_executions: Vec<RecordShell>,
    #[serde(default)]
    continued: Vec<Value>,
}

/// A record as read, its nested trace still raw.
#[derive(Deserialize)]
struct RecordShell {
    agent_name: String,
    attempt: u32,
    start_time: DateTime<Utc>,
    #[serde(default)]
    end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    duration_ms: Option<u64>,
    input: AgentInput,
    #[serde(default)]
    output: Option<AgentOutput>,
    #[serde(default)]
    error: Option<String>,
    success: bool,
    #[serde(default)]
    nested: Option<Value>,
    #[serde(default)]
    run_id: Option<RunId>,
    #[serde(default)]
    node: Option<NodeId>,
}

impl RecordShell {
    /// The record without its nested trace, and that trace's raw JSON.
    fn split(self) -> (AgentExecution, Option<Value>) {
        let record = AgentExecution {
            agent_name: self.agent_name,
            attempt: self.attempt,
            start_time: self.start_time,
            end_time: self.end_time,
            duration_ms: self.duration_ms,
            input: self.input,
            output: self.output,
            error: self.error,
            success: self.success,
            nested: None,
            run_id: self.run_id,
            node: self.node,
        };
        (record, self.nested)
    }
}

impl TraceShell {
    /// The trace without its records' nested traces, and their JSON by
    /// record index.
    fn split(self) -> (ExecutionTrace, Vec<(usize, Value)>) {
        let mut raw = Vec::new();
        let mut trace = ExecutionTrace::starting_at(self.start_time);
        trace.run_id = self.run_id;
        trace.end_time = self.end_time;
        trace.agent_executions = self
            .agent_executions
            .into_iter()
            .enumerate()
            .map(|(index, record)| {
                let (record, nested) = record.split();
                if let Some(nested) = nested {
                    raw.push((index, nested));
                }
                record
            })
            .collect();
        (trace, raw)
    }
}

/// Builds a trace from its top-level shell: nested traces are read level by
/// level from a work list, and attached children first.
fn assemble<E: serde::de::Error>(mut top: TraceShell) -> Result<ExecutionTrace, E> {
    let mut continued: Vec<Option<Value>> = std::mem::take(&mut top.continued)
        .into_iter()
        .map(Some)
        .collect();
    // Every trace read so far, with its depth and the (trace, record) it
    // belongs in; a child is always read after its parent.
    let mut built: Vec<(ExecutionTrace, Option<(usize, usize)>)> = Vec::new();
    let mut depths: Vec<usize> = Vec::new();
    let mut pending: Vec<(usize, usize, Value)> = Vec::new();
    let (trace, raw) = top.split();
    built.push((trace, None));
    depths.push(0);
    pending.extend(raw.into_iter().map(|(record, text)| (0, record, text)));
    while let Some((parent, record, text)) = pending.pop() {
        let depth = depths[parent] + 1;
        if depth > MAX_TRACE_DEPTH {
            return Err(E::custom(format!(
                "the trace is nested more than {MAX_TRACE_DEPTH} runs deep"
            )));
        }
        let text = match continued_at(&text) {
            Some(at) => continued
                .get_mut(at.continued)
                .and_then(Option::take)
                .ok_or_else(|| {
                    E::custom(format!(
                        "continued trace {} is missing or referred to twice",
                        at.continued
                    ))
                })?,
            None => text,
        };
        let shell = TraceShell::deserialize(text).map_err(E::custom)?;
        if !shell.continued.is_empty() {
            return Err(E::custom(
                "only the top-level trace may have a `continued` list",
            ));
        }
        let (trace, raw) = shell.split();
        let index = built.len();
        built.push((trace, Some((parent, record))));
        depths.push(depth);
        pending.extend(raw.into_iter().map(|(record, text)| (index, record, text)));
    }
    while built.len() > 1 {
        let Some((trace, Some((parent, record)))) = built.pop() else {
            return Err(E::custom("internal error: a nested trace lost its parent"));
        };
        if let Some(slot) = built
            .get_mut(parent)
            .and_then(|(parent, _)| parent.agent_executions.get_mut(record))
        {
            slot.nested = Some(trace.into());
        }
    }
    built
        .pop()
        .map(|(trace, _)| trace)
        .ok_or_else(|| E::custom("internal error: no trace was read"))
}

/// Where a nested trace written as `{"continued": i}` continues, if `value`
/// is one.
fn continued_at(value: &Value) -> Option<ContinuedAt> {
    let object = value.as_object()?;
    let index = object.get("continued")?.as_u64()?;
    (object.len() == 1).then_some(ContinuedAt {
        continued: usize::try_from(index).ok()?,
    })
}

impl<'de> Deserialize<'de> for ExecutionTrace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        assemble(TraceShell::deserialize(deserializer)?)
    }
}

impl<'de> Deserialize<'de> for AgentExecution {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (mut record, nested) = RecordShell::deserialize(deserializer)?.split();
        if let Some(nested) = nested {
            let trace = ExecutionTrace::deserialize(nested).map_err(D::Error::custom)?;
            record.nested = Some(trace.into());
        }
        Ok(record)
    }
}
