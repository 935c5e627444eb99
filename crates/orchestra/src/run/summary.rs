//! The table printed after a run: one row per agent and group, in flow order,
//! with its attempts, duration, tokens and status.

use std::fmt::Write as _;

use claude_agent_sdk::orchestration::{ExecutionTrace, FailureReason, Usage};

use crate::table::{Align, Table};
use crate::traces::{self, human_duration, human_tokens, Status};
use crate::workflow::{Node, Workflow};

/// What the summary found.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The table and the errors of failed agents, as text.
    pub text: String,
    /// Whether any agent or group ended failed.
    pub any_failed: bool,
    /// Every agent's and group's outcome by id, in flow order (for `--json`).
    pub agents: Vec<serde_json::Value>,
    /// The failed items of maps, as `--json` lists failures (`index`,
    /// `agent_name`, `error`, and `item`, which names the item).
    pub item_failures: Vec<serde_json::Value>,
}

/// Sums up `trace` along `workflow`'s flow.
#[must_use]
pub fn summarize(workflow: &Workflow, trace: &ExecutionTrace) -> Summary {
    let attempts = traces::attempts(trace);
    let mut table = Table::new(&[
        ("agent", Align::Left),
        ("kind", Align::Left),
        ("attempts", Align::Right),
        ("duration", Align::Right),
        ("tokens", Align::Right),
        ("status", Align::Left),
    ]);
    let mut failures = Vec::new();
    let mut any_failed = false;
    let mut agents = Vec::new();
    let mut item_failures = Vec::new();
    let mut counted = 0;
    for row in rows(workflow) {
        let (name, depth) = match row {
            Row::Step(node, depth) => (node.name(), depth),
            Row::Ask(id) => (id, 1),
        };
        let mut summary = traces::summarize(&attempts, name);
        if let Row::Ask(_) = row {
            // An ask's attempt that paused the run is the question being
            // asked; once answered (in the run that resumed it), the answer
            // is its one attempt.
            let asked = attempts
                .iter()
                .filter(|a| a.record.agent_name == name)
                .filter(|a| a.record.error.as_deref().is_some_and(traces::is_waiting))
                .count();
            if summary.status == Status::Done {
                summary.attempts = summary.attempts.saturating_sub(asked);
            }
        }
        counted += summary.attempts;
        let kind = match row {
            Row::Step(Node::Agent(id), _) => workflow
                .agent(id)
                .map_or("agent", |agent| agent.kind.as_str())
                .to_owned(),
            Row::Step(Node::Group(group), _) => group.mode.as_str().to_owned(),
            Row::Ask(_) => "ask".to_owned(),
        };
        let mut status = summary.status.as_str();
        if let Row::Ask(_) = row {
            // An ask waiting for its answer has not failed: the run paused.
            let waiting = summary.error.as_deref().is_some_and(traces::is_waiting);
            status = match summary.status {
                Status::Done => "answered",
                Status::Failed if waiting => {
                    summary.status = Status::NotRun;
                    summary.error = None;
                    "waiting"
                }
                other => other.as_str(),
            };
        }
        let node = match row {
            Row::Step(node, _) => Some(node),
            Row::Ask(_) => None,
        };
        if summary.status == Status::Failed {
            any_failed = true;
            if !summary.failed_items.is_empty() {
                // A map: each failed item, named.
                for item in &summary.failed_items {
                    item_failures.push(serde_json::json!({
                        "index": item.node,
                        "agent_name": name,
                        "item": item.label,
                        "error": item.error,
                    }));
                    failures.push(failure_note(
                        name,
                        &format!("{name}, {}", item.label),
                        &item.error,
                    ));
                }
            } else if let (Some(Node::Agent(_)) | None, Some(error)) = (node, &summary.error) {
                failures.push(failure_note(name, name, error));
            }
        }
        agents.push(serde_json::json!({
            "id": name,
            "kind": kind,
            "group": matches!(node, Some(Node::Group(_))),
            "depth": depth,
            "status": status,
            "attempts": summary.attempts,
            "duration_ms": u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX),
            "output": summary.output,
            "error": summary.error,
            "usage": summary.usage,
        }));
        table.row(vec![
            format!("{}{name}", "  ".repeat(depth - 1)),
            kind,
            summary.attempts.to_string(),
            if summary.attempts == 0 {
                "—".to_owned()
            } else {
                human_duration(summary.duration)
            },
            human_tokens(&summary.usage),
            status.to_owned(),
        ]);
    }
    let total: Usage = trace.total_usage();
    table.row(vec![
        "total".to_owned(),
        String::new(),
        // The rows' attempts: a map's own step and the step a budget wraps
        // a group in are not attempts of their own.
        counted.to_string(),
        // A chain of runs (after a resume or a fork): the time they ran.
        traces::chain_duration(trace, &attempts).map_or_else(String::new, human_duration),
        human_tokens(&total),
        String::new(),
    ]);
    let mut text = table.render();
    for failure in failures {
        text.push_str(&failure);
    }
    Summary {
        text: workflow.redactor.redact(&text).into_owned(),
        any_failed,
        agents,
        item_failures,
    }
}

/// A row of the summary: a step of the flow at its depth, or an ask.
#[derive(Clone, Copy)]
pub(super) enum Row<'a> {
    Step(&'a Node, usize),
    Ask(&'a str),
}

/// The summary's rows in flow order: every step, and each of the root
/// graph's asks after the steps that feed it.
pub(super) fn rows(workflow: &Workflow) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    workflow
        .flow
        .walk(&mut |node, depth| rows.push(Row::Step(node, depth)));
    let Some(spec) = &workflow.flow.graph else {
        return rows;
    };
    for ask in &spec.asks {
        let feeds = |id: &str| {
            spec.edges
                .iter()
                .any(|(from, to)| from == id && *to == ask.id)
                || spec
                    .routes
                    .iter()
                    .any(|route| route.from == id && route.targets().contains(&ask.id))
        };
        // After the last row fed into it (with the rows below it), else first.
        let after = rows.iter().rposition(|row| match row {
            Row::Step(node, 1) => feeds(node.name()),
            Row::Ask(id) => feeds(id),
            Row::Step(..) => false,
        });
        let at = after.map_or(0, |index| {
            let below = rows[index + 1..]
                .iter()
                .take_while(|row| matches!(row, Row::Step(_, depth) if *depth > 1))
                .count();
            index + 1 + below
        });
        rows.insert(at, Row::Ask(&ask.id));
    }
    rows
}

/// The most lines of a failed agent's error shown under the table (its
/// program's last lines of standard error come after the first).
const FAILURE_LINES: usize = 12;

/// `✗ shown: error` for the summary, of agent `name`: the whole error, its
/// later lines (a program's standard error) indented under the first, bounded
/// — the one place on a terminal where a failure a tolerant join accepted is
/// explained.
fn failure_note(name: &str, shown: &str, error: &str) -> String {
    let reason = FailureReason::new(error);
    let mut lines = reason.said_of(name).lines();
    let mut note = format!("✗ {shown}: {}\n", lines.next().unwrap_or_default());
    let rest: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let skipped = rest.len().saturating_sub(FAILURE_LINES);
    if skipped > 0 {
        let _ = writeln!(note, "    … {skipped} earlier line(s)");
    }
    for line in &rest[skipped..] {
        let _ = writeln!(note, "    {line}");
    }
    note
}
