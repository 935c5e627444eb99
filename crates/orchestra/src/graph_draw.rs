//! Drawing a graph group: a `start` and an `end` point inside its frame, its
//! nodes (maps and joins noted under them; asks with their question), its edges, its routes' branches
//! labelled with their conditions (`default` for the fallback), and its loops
//! as dashed arrows back, labelled with their `until` and bound.

use std::collections::HashMap;

use claude_agent_sdk::orchestration::RunBudget;

use crate::graph::{join_label, Diagram, Edge, Item};
use crate::workflow::graph_model::{GraphSpec, RouteBy, END, START};
use crate::workflow::{Group, Workflow};

type Ends = (Vec<String>, Vec<String>);

impl Diagram {
    /// Adds the inside of graph group `group` and returns its start and end.
    pub(crate) fn graph(
        &mut self,
        workflow: &Workflow,
        group: &Group,
        spec: &GraphSpec,
        depth: usize,
    ) -> Ends {
        let start = self.point(START);
        let mut ends: HashMap<String, Ends> = HashMap::new();
        for node in &group.steps {
            let id = node.name();
            let note = note(spec, id);
            let drawn = self.step(workflow, node, depth, note);
            ends.insert(id.to_owned(), drawn);
        }
        for ask in &spec.asks {
            let id = self.fresh("q");
            let question = ask.question.lines().next().unwrap_or_default();
            self.items.push(Item::Node {
                id: id.clone(),
                label: format!("{}\nask: {question}", ask.id),
            });
            ends.insert(ask.id.clone(), (vec![id.clone()], vec![id]));
        }
        let end = self.point(END);
        ends.insert(START.to_owned(), (Vec::new(), vec![start.clone()]));
        ends.insert(END.to_owned(), (vec![end.clone()], Vec::new()));
        let arrow =
            |from: &str, to: &str, label: Option<String>, dashed: bool, edges: &mut Vec<Edge>| {
                let (Some(from), Some(to)) = (ends.get(from), ends.get(to)) else {
                    return;
                };
                for exit in &from.1 {
                    for entry in &to.0 {
                        edges.push(Edge {
                            from: exit.clone(),
                            to: entry.clone(),
                            label: label.clone(),
                            dashed,
                        });
                    }
                }
            };
        let mut edges = Vec::new();
        for (from, to) in &spec.edges {
            arrow(from, to, None, false, &mut edges);
        }
        for route in &spec.routes {
            match &route.by {
                RouteBy::Conditions(branches) => {
                    for branch in branches {
                        for to in &branch.to {
                            arrow(
                                &route.from,
                                to,
                                Some(branch.condition.to_string()),
                                false,
                                &mut edges,
                            );
                        }
                    }
                }
                RouteBy::Router { agent, choices } => {
                    for to in choices {
                        let label = format!("{agent} says {to}");
                        arrow(&route.from, to, Some(label), false, &mut edges);
                    }
                }
            }
            for to in &route.default {
                arrow(
                    &route.from,
                    to,
                    Some("default".to_owned()),
                    false,
                    &mut edges,
                );
            }
        }
        for lp in &spec.loops {
            let until = lp
                .until
                .as_ref()
                .map_or_else(|| "repeat".to_owned(), |c| format!("until {c}"));
            let label = format!("{until} · ≤{} passes", lp.max_iterations);
            arrow(lp.last(), lp.first(), Some(label), true, &mut edges);
        }
        self.edges.extend(edges);
        (vec![start], vec![end])
    }

    fn point(&mut self, label: &str) -> String {
        let id = self.fresh("p");
        self.items.push(Item::Point {
            id: id.clone(),
            label: label.to_owned(),
        });
        id
    }
}

/// What a node's box says below its kind: its map and its join.
fn note(spec: &GraphSpec, id: &str) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(map) = spec.map(id) {
        let mut line = format!("map over {}", map.over.as_str());
        if let Some(limit) = map.parallel_limit {
            line.push_str(&format!(" · ≤{limit} at once"));
        }
        lines.push(line);
    }
    if let Some(policy) = spec.join(id) {
        lines.push(format!("join {}", join_label(policy)));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// "$0.5, 20k tokens, 30 steps, 2m" for a budget's bounds. The step bound
/// is drawn when it is not the default, or when it is all the budget says (a
/// workflow may restate the default).
pub(crate) fn budget_label(budget: &RunBudget) -> String {
    let only_steps = budget.max_cost_usd.is_none()
        && budget.max_tokens.is_none()
        && budget.max_duration.is_none();
    let mut parts = Vec::new();
    if let Some(cost) = budget.max_cost_usd {
        parts.push(format!("${cost}"));
    }
    if let Some(tokens) = budget.max_tokens {
        parts.push(format!("{tokens} tokens"));
    }
    if only_steps || budget.max_steps != RunBudget::new().max_steps {
        parts.push(format!("{} steps", budget.max_steps));
    }
    if let Some(time) = budget.max_duration {
        parts.push(format!("{}s", time.as_secs_f64()));
    }
    parts.join(", ")
}
