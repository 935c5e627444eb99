//! `orchestra graph`: the flow as a Mermaid or Graphviz diagram.
//!
//! Agents are boxes; each group is a frame around its steps. A sequential group
//! chains its steps; a parallel group fans out to its steps and back in. The
//! diagram runs from `input` to `output`.

use std::fmt::Write as _;

use crate::cli::GraphFormat;
use crate::workflow::{Group, Mode, Node, Workflow};

/// The diagram of `workflow`'s flow.
#[must_use]
pub fn render(workflow: &Workflow, format: GraphFormat) -> String {
    let mut diagram = Diagram::default();
    let (entries, exits) = diagram.group(workflow, &workflow.flow, 0);
    for entry in entries {
        diagram.edges.push(("input".to_owned(), entry));
    }
    for exit in exits {
        diagram.edges.push((exit, "output".to_owned()));
    }
    match format {
        GraphFormat::Mermaid => diagram.mermaid(),
        GraphFormat::Dot => diagram.dot(&workflow.name),
    }
}

/// Boxes, frames and arrows, independent of the diagram language.
#[derive(Default)]
struct Diagram {
    /// (node id, label, depth): agent boxes, and `Open`/`Close` frame markers.
    items: Vec<Item>,
    edges: Vec<(String, String)>,
    next: usize,
}

enum Item {
    Node { id: String, label: String },
    Open { id: String, label: String },
    Close,
}

impl Diagram {
    /// Adds `group` and returns the ids its arrows come in to and go out from.
    fn group(
        &mut self,
        workflow: &Workflow,
        group: &Group,
        depth: usize,
    ) -> (Vec<String>, Vec<String>) {
        let frame = depth > 0 || group.steps.len() > 1;
        if frame {
            let id = self.fresh("g");
            let mut label = format!("{} · {}", group.name, group.mode.as_str());
            if group.mode == Mode::Parallel {
                label.push_str(&format!(" · join {}", join_label(group)));
            }
            self.items.push(Item::Open { id, label });
        }
        let parts: Vec<(Vec<String>, Vec<String>)> = group
            .steps
            .iter()
            .map(|step| match step {
                Node::Agent(agent) => {
                    let id = self.fresh("a");
                    let kind = workflow.agent(agent).map_or("agent", |a| a.kind.as_str());
                    self.items.push(Item::Node {
                        id: id.clone(),
                        label: format!("{agent}\n{kind}"),
                    });
                    (vec![id.clone()], vec![id])
                }
                Node::Group(inner) => self.group(workflow, inner, depth + 1),
            })
            .collect();
        if frame {
            self.items.push(Item::Close);
        }
        match group.mode {
            Mode::Sequential => {
                for pair in parts.windows(2) {
                    for from in &pair[0].1 {
                        for to in &pair[1].0 {
                            self.edges.push((from.clone(), to.clone()));
                        }
                    }
                }
                let entries = parts.first().map(|p| p.0.clone()).unwrap_or_default();
                let exits = parts.last().map(|p| p.1.clone()).unwrap_or_default();
                (entries, exits)
            }
            Mode::Parallel => parts.into_iter().fold(
                (Vec::new(), Vec::new()),
                |(mut entries, mut exits), (e, x)| {
                    entries.extend(e);
                    exits.extend(x);
                    (entries, exits)
                },
            ),
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn mermaid(&self) -> String {
        let quote = |text: &str| text.replace('"', "#quot;").replace('\n', "<br/>");
        let mut out = String::from("flowchart LR\n    input([input])\n");
        let mut indent = 1;
        for item in &self.items {
            let pad = "    ".repeat(indent);
            match item {
                Item::Node { id, label } => {
                    let _ = writeln!(out, "{pad}{id}[\"{}\"]", quote(label));
                }
                Item::Open { id, label } => {
                    let _ = writeln!(out, "{pad}subgraph {id}[\"{}\"]", quote(label));
                    indent += 1;
                }
                Item::Close => {
                    indent -= 1;
                    let _ = writeln!(out, "{}end", "    ".repeat(indent));
                }
            }
        }
        out.push_str("    output([output])\n");
        for (from, to) in &self.edges {
            let _ = writeln!(out, "    {from} --> {to}");
        }
        out
    }

    fn dot(&self, name: &str) -> String {
        let quote = |text: &str| {
            text.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut out = format!(
            "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box, style=rounded];\n    input [shape=oval];\n    output [shape=oval];\n",
            quote(name)
        );
        let mut indent = 1;
        for item in &self.items {
            let pad = "    ".repeat(indent);
            match item {
                Item::Node { id, label } => {
                    let _ = writeln!(out, "{pad}{id} [label=\"{}\"];", quote(label));
                }
                Item::Open { id, label } => {
                    let _ = writeln!(out, "{pad}subgraph cluster_{id} {{");
                    let _ = writeln!(out, "{pad}    label=\"{}\";", quote(label));
                    indent += 1;
                }
                Item::Close => {
                    indent -= 1;
                    let _ = writeln!(out, "{}}}", "    ".repeat(indent));
                }
            }
        }
        for (from, to) in &self.edges {
            let _ = writeln!(out, "    {from} -> {to};");
        }
        out.push_str("}\n");
        out
    }
}

fn join_label(group: &Group) -> String {
    use claude_agent_sdk::orchestration::JoinPolicy;
    match group.config.join_policy {
        JoinPolicy::Any => "any".to_owned(),
        JoinPolicy::AtLeast(k) => format!("≥{k}"),
        _ => "all".to_owned(),
    }
}
