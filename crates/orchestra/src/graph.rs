//! `orchestra graph`: the flow as a Mermaid or Graphviz diagram.
//!
//! Agents are boxes; each group is a frame around its steps. A sequential group
//! chains its steps; a parallel group fans out to its steps and back in; a
//! graph group draws its edges, its routes labelled with their conditions, its
//! loops as dashed arrows back labelled with their bound, its maps and joins in
//! their nodes' labels (see [`graph_draw`](crate::graph_draw)). The diagram runs
//! from `input` to `output`.

use std::fmt::Write as _;

use crate::cli::GraphFormat;
use crate::workflow::{Group, Mode, Node, Workflow};

/// The diagram of `workflow`'s flow.
#[must_use]
pub fn render(workflow: &Workflow, format: GraphFormat) -> String {
    let mut diagram = Diagram::default();
    let (entries, exits) = diagram.group(workflow, &workflow.flow, 0, None);
    for entry in entries {
        diagram.edge("input".to_owned(), entry);
    }
    for exit in exits {
        diagram.edge(exit, "output".to_owned());
    }
    // A label may hold a secret the workflow expands (a condition, a
    // question): masked before it is escaped, which would hide it from the
    // redactor (`#` is `#35;` in Mermaid).
    diagram.redact(|text| workflow.redactor.redact(text).into_owned());
    let name = workflow.redactor.redact(&workflow.name);
    match format {
        GraphFormat::Mermaid => diagram.mermaid(),
        GraphFormat::Dot => diagram.dot(&name),
    }
}

/// Boxes, frames and arrows, independent of the diagram language.
#[derive(Default)]
pub(crate) struct Diagram {
    /// Agent boxes, and `Open`/`Close` frame markers.
    pub(crate) items: Vec<Item>,
    pub(crate) edges: Vec<Edge>,
    next: usize,
}

/// An arrow, with its label, dashed for a loop's way back.
pub(crate) struct Edge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) label: Option<String>,
    pub(crate) dashed: bool,
}

pub(crate) enum Item {
    Node {
        id: String,
        label: String,
    },
    /// A graph's start or end.
    Point {
        id: String,
        label: String,
    },
    Open {
        id: String,
        label: String,
    },
    Close,
}

impl Diagram {
    /// A plain arrow.
    pub(crate) fn edge(&mut self, from: String, to: String) {
        self.edges.push(Edge {
            from,
            to,
            label: None,
            dashed: false,
        });
    }

    /// Adds `group` and returns the ids its arrows come in to and go out from.
    /// Adds a group (framed, with `note` — its join or map in the graph
    /// around it — in its frame's label) and returns its entries and exits.
    pub(crate) fn group(
        &mut self,
        workflow: &Workflow,
        group: &Group,
        depth: usize,
        note: Option<String>,
    ) -> (Vec<String>, Vec<String>) {
        // A frame for every group but a root of one step with nothing to
        // say of itself (a budget or a note is drawn on the frame).
        let frame = depth > 0
            || group.steps.len() > 1
            || group.graph.is_some()
            || group.budget.is_some()
            || note.is_some();
        if frame {
            let id = self.fresh("g");
            let mut label = format!("{} · {}", group.name, group.mode.as_str());
            if group.mode == Mode::Parallel {
                label.push_str(&format!(" · join {}", join_label(group.config.join_policy)));
            }
            if let Some(budget) = &group.budget {
                label.push_str(&format!(
                    " · budget {}",
                    crate::graph_draw::budget_label(budget)
                ));
            }
            if let Some(note) = &note {
                label.push_str(" · ");
                label.push_str(&note.replace('\n', " · "));
            }
            self.items.push(Item::Open { id, label });
        }
        if let Some(spec) = &group.graph {
            let ends = self.graph(workflow, group, spec, depth);
            self.items.push(Item::Close);
            return ends;
        }
        let parts: Vec<(Vec<String>, Vec<String>)> = group
            .steps
            .iter()
            .map(|step| self.step(workflow, step, depth, None))
            .collect();
        if frame {
            self.items.push(Item::Close);
        }
        match group.mode {
            Mode::Sequential => {
                for pair in parts.windows(2) {
                    for from in &pair[0].1 {
                        for to in &pair[1].0 {
                            self.edge(from.clone(), to.clone());
                        }
                    }
                }
                let entries = parts.first().map(|p| p.0.clone()).unwrap_or_default();
                let exits = parts.last().map(|p| p.1.clone()).unwrap_or_default();
                (entries, exits)
            }
            Mode::Parallel | Mode::Graph => parts.into_iter().fold(
                (Vec::new(), Vec::new()),
                |(mut entries, mut exits), (e, x)| {
                    entries.extend(e);
                    exits.extend(x);
                    (entries, exits)
                },
            ),
        }
    }

    /// Adds one step (with `note` under an agent's kind) and returns its
    /// entries and exits.
    pub(crate) fn step(
        &mut self,
        workflow: &Workflow,
        step: &Node,
        depth: usize,
        note: Option<String>,
    ) -> (Vec<String>, Vec<String>) {
        match step {
            Node::Agent(agent) => {
                let id = self.fresh("a");
                let kind = workflow.agent(agent).map_or("agent", |a| a.kind.as_str());
                let mut label = format!("{agent}\n{kind}");
                if let Some(note) = note {
                    label.push('\n');
                    label.push_str(&note);
                }
                self.items.push(Item::Node {
                    id: id.clone(),
                    label,
                });
                (vec![id.clone()], vec![id])
            }
            Node::Group(inner) => self.group(workflow, inner, depth + 1, note),
        }
    }

    /// Every label passed through `mask`.
    fn redact(&mut self, mask: impl Fn(&str) -> String) {
        for item in &mut self.items {
            if let Item::Node { label, .. } | Item::Point { label, .. } | Item::Open { label, .. } =
                item
            {
                *label = mask(label);
            }
        }
        for label in self.edges.iter_mut().filter_map(|edge| edge.label.as_mut()) {
            *label = mask(label);
        }
    }

    pub(crate) fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn mermaid(&self) -> String {
        let quote = mermaid_text;
        let mut out = String::from("flowchart LR\n    input([input])\n");
        let mut indent = 1;
        for item in &self.items {
            let pad = "    ".repeat(indent);
            match item {
                Item::Node { id, label } => {
                    let _ = writeln!(out, "{pad}{id}[\"{}\"]", quote(label));
                }
                Item::Point { id, label } => {
                    let _ = writeln!(out, "{pad}{id}((\"{}\"))", quote(label));
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
        for edge in &self.edges {
            let (from, to) = (&edge.from, &edge.to);
            let _ = match (&edge.label, edge.dashed) {
                (Some(label), true) => writeln!(out, "    {from} -. \"{}\" .-> {to}", quote(label)),
                (Some(label), false) => {
                    writeln!(out, "    {from} -- \"{}\" --> {to}", quote(label))
                }
                (None, true) => writeln!(out, "    {from} -.-> {to}"),
                (None, false) => writeln!(out, "    {from} --> {to}"),
            };
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
                Item::Point { id, label } => {
                    let _ = writeln!(out, "{pad}{id} [label=\"{}\", shape=circle];", quote(label));
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
        for edge in &self.edges {
            let mut attributes = Vec::new();
            if let Some(label) = &edge.label {
                attributes.push(format!("label=\"{}\"", quote(label)));
            }
            if edge.dashed {
                attributes.push("style=dashed".to_owned());
            }
            let _ = if attributes.is_empty() {
                writeln!(out, "    {} -> {};", edge.from, edge.to)
            } else {
                writeln!(
                    out,
                    "    {} -> {} [{}];",
                    edge.from,
                    edge.to,
                    attributes.join(", ")
                )
            };
        }
        out.push_str("}\n");
        out
    }
}

/// "all", "any" or "≥k".
pub(crate) fn join_label(policy: claude_agent_sdk::orchestration::JoinPolicy) -> String {
    use claude_agent_sdk::orchestration::JoinPolicy;
    match policy {
        JoinPolicy::Any => "any".to_owned(),
        JoinPolicy::AtLeast(k) => format!("≥{k}"),
        _ => "all".to_owned(),
    }
}

/// `text` as Mermaid shows it inside a quoted label: its entity codes for
/// the characters Mermaid would read as markup (`<verdict>` as an HTML tag,
/// `#1;` as a character code), and a line break for each newline.
fn mermaid_text(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => shown.push_str("#quot;"),
            '#' => shown.push_str("#35;"),
            '<' => shown.push_str("#lt;"),
            '>' => shown.push_str("#gt;"),
            '&' => shown.push_str("#amp;"),
            '\n' => shown.push_str("<br/>"),
            c => shown.push(c),
        }
    }
    shown
}
