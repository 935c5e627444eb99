//! Checking a graph's `asks`: nodes that ask a person a question.
//!
//! An ask pauses the run until its answer is given; `orchestra run` then
//! resumes the paused graph without running its finished nodes again. Only
//! the root flow's graph can be resumed that way (a graph nested in another
//! group would run again from its start), so asks belong to the root flow.

use super::check_agents::is_valid_id;
use super::check_flow::FlowChecker;
use super::diagnostics::Diagnostic;
use super::graph_model::{AskSpec, END, START};
use super::located::Span;
use super::raw::RawFlow;

impl FlowChecker<'_, '_> {
    /// The asks of graph `graph` (whose other nodes are `nodes`), checked;
    /// `root` tells whether it is the root flow.
    pub(super) fn asks(
        &mut self,
        raw: &RawFlow,
        graph: &str,
        root: bool,
        nodes: &[(String, Option<Span>)],
    ) -> Vec<AskSpec> {
        let mut asks: Vec<AskSpec> = Vec::new();
        for ask in &raw.asks {
            let id = ask.value.id.value.trim().to_owned();
            let at = ask.value.id.span;
            if !root {
                self.checker.error(
                    Diagnostic::new(
                        format!("ask `{id}` is in graph `{graph}`, which is not the root flow"),
                        at,
                    )
                    .with_label("asks belong to the root flow's graph")
                    .with_help(Some(format!(
                        "move it to `[[flow.asks]]` (the root flow must then be a graph with \
                         `nodes`), and wire it with edges there; a run pauses and resumes at \
                         the root, so `{graph}` would otherwise run again from its start"
                    ))),
                );
                continue;
            }
            let taken = nodes.iter().any(|(node, _)| *node == id)
                || asks.iter().any(|other| other.id == id)
                || self.names.contains_key(&id);
            if !is_valid_id(&id) {
                self.checker.error(
                    Diagnostic::new(format!("invalid ask id `{id}`"), at)
                        .with_label("use letters, digits, `-`, `_` and `.`"),
                );
            } else if id == START || id == END {
                self.checker.error(
                    Diagnostic::new(format!("an ask cannot be called `{id}`"), at)
                        .with_label("`start` and `end` stand for the graph's start and end"),
                );
            } else if taken {
                self.checker.error(
                    Diagnostic::new(format!("`{id}` is declared twice"), at).with_label(
                        "an ask's id is a node id: it must differ from every agent, group and node",
                    ),
                );
            }
            let question = self.checker.text(&ask.value.question);
            if question.trim().is_empty() {
                self.checker.error(
                    Diagnostic::new(
                        format!("ask `{id}` has an empty question"),
                        ask.value.question.span,
                    )
                    .with_help(Some(
                        "say what the person should answer: question = \"Approve the plan?\""
                            .to_owned(),
                    )),
                );
            }
            asks.push(AskSpec { id, question });
        }
        asks
    }
}
