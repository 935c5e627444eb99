//! Execution traces in the Chrome trace-event format, which Perfetto
//! (ui.perfetto.dev) and chrome://tracing draw as a timeline.
//!
//! Every attempt — nested runs included — is one complete ("X") slice. Slices
//! are laid out on lanes (threads in the format's terms) so that no two slices
//! of a lane overlap: attempts that ran at once sit on separate lanes, one
//! after another on the same lane. Times are microseconds since the trace
//! started.

use serde_json::{json, Value};

use claude_agent_sdk::orchestration::ExecutionTrace;

use crate::traces::{self, Attempt};

/// The trace-event document for `trace`, named `workflow`.
#[must_use]
pub fn chrome_trace(workflow: &str, trace: &ExecutionTrace) -> Value {
    let attempts = traces::attempts(trace);
    let origin = trace.start_time;
    let micros = |at: chrono::DateTime<chrono::Utc>| -> i64 {
        (at - origin).num_microseconds().unwrap_or(i64::MAX).max(0)
    };
    let lanes = assign_lanes(&attempts, micros);
    let lane_count = lanes.iter().copied().max().map_or(0, |max| max + 1);

    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": { "name": format!("orchestra: {workflow}") },
    })];
    for lane in 0..lane_count {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": lane + 1,
            "args": { "name": lane_name(&attempts, &lanes, lane) },
        }));
    }
    for (attempt, lane) in attempts.iter().zip(&lanes) {
        let record = attempt.record;
        let start = micros(attempt.start());
        let duration = (micros(attempt.end()) - start).max(1);
        let usage = record.usage();
        let mut args = json!({
            "attempt": record.attempt,
            "success": record.success,
            "depth": attempt.depth,
        });
        if let Some(error) = &record.error {
            args["error"] = json!(error);
        }
        if let Some((index, count)) = attempt.item {
            args["item"] = json!(format!("{index} of {count}"));
        }
        if usage.total_tokens() > 0 {
            args["input_tokens"] = json!(usage.input_tokens);
            args["output_tokens"] = json!(usage.output_tokens);
        }
        if let Some(cost) = usage.cost_usd {
            args["cost_usd"] = json!(cost);
        }
        events.push(json!({
            "name": attempt.label(),
            "cat": if record.nested.is_some() { "group" } else { "agent" },
            "ph": "X",
            "ts": start,
            "dur": duration,
            "pid": 1,
            "tid": lane + 1,
            "args": args,
        }));
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

/// A lane's name: the agents whose attempts it holds, in order (the first
/// few, then how many more), so a track reads "research" and not "lane 3".
fn lane_name(attempts: &[Attempt<'_>], lanes: &[usize], lane: usize) -> String {
    const SHOWN: usize = 3;
    let mut names: Vec<&str> = Vec::new();
    for (attempt, _) in attempts.iter().zip(lanes).filter(|(_, l)| **l == lane) {
        let name = attempt.record.agent_name.as_str();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let more = names.len().saturating_sub(SHOWN);
    let mut name = names[..names.len().min(SHOWN)].join(", ");
    if more > 0 {
        name.push_str(&format!(" +{more} more"));
    }
    name
}

/// The lane of each attempt: the first lane free when it starts.
fn assign_lanes(
    attempts: &[Attempt<'_>],
    micros: impl Fn(chrono::DateTime<chrono::Utc>) -> i64,
) -> Vec<usize> {
    let mut lane_ends: Vec<i64> = Vec::new();
    attempts
        .iter()
        .map(|attempt| {
            let start = micros(attempt.start());
            let end = micros(attempt.end()).max(start + 1);
            match lane_ends.iter().position(|&busy_until| busy_until <= start) {
                Some(lane) => {
                    lane_ends[lane] = end;
                    lane
                }
                None => {
                    lane_ends.push(end);
                    lane_ends.len() - 1
                }
            }
        })
        .collect()
}
