//! Checking a graph group: its nodes resolve like any group's steps; every id
//! in `edges`, `routes`, `loops`, `maps` and `joins` names one of its nodes
//! (or `start`/`end` where they make sense), with a did-you-mean; conditions
//! and bounds are valid; and finally the library checks the shape (every node
//! can run and reach the end, every cycle is a bounded loop).

use std::collections::HashSet;
use std::sync::Arc;

use claude_agent_sdk::orchestration::{
    Agent, AgentOutput, ExecutionConfig, GraphProblem, JoinPolicy, SimpleAgent,
};

use super::check_condition::check_condition;
use super::check_flow::{FlowChecker, Target};
use super::diagnostics::Diagnostic;
use super::graph_model::{Branch, GraphSpec, LoopSpec, MapSpec, RouteBy, RouteSpec, END, START};
use super::located::{Located, Span};
use super::model::{Group, Mode, Node};
use super::raw::RawFlow;
use super::raw_graph::{RawLoop, RawMap, RawRoute};
use super::values::{JoinSpec, Step};

/// Where an id may stand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Node,
    From,
    To,
}

impl FlowChecker<'_, '_> {
    /// Resolves the graph group `raw` with its `nodes`.
    pub(super) fn graph_group(
        &mut self,
        raw: &RawFlow,
        nodes: &Located<Vec<Located<Step>>>,
        name: String,
        config: ExecutionConfig,
    ) -> Option<Group> {
        let written: Vec<(String, Option<Span>)> = nodes
            .value
            .iter()
            .enumerate()
            .map(|(index, step)| {
                let id = match &step.value {
                    Step::Ref(id) => id.trim().to_owned(),
                    Step::Inline(inner) => inner.id.as_ref().map_or_else(
                        || format!("{name}.{}", index + 1),
                        |id| id.value.trim().to_owned(),
                    ),
                };
                (id, step.span)
            })
            .collect();
        for (id, span) in &written {
            if id == START || id == END {
                self.checker.error(
                    Diagnostic::new(format!("a node cannot be called `{id}`"), *span)
                        .with_label("`start` and `end` stand for the graph's start and end"),
                );
            }
        }
        let root = self.stack.is_empty();
        let asks = self.asks(raw, &name, root, &written);
        let before = self.checker.problems.len();
        self.stack.push(name.clone());
        let mut steps = Vec::new();
        for (index, step) in nodes.value.iter().enumerate() {
            if let Some(node) = self.step(step, &name, index, &config) {
                steps.push(node);
            }
        }
        self.stack.pop();
        let node_ids: Vec<String> = written.iter().map(|(id, _)| id.clone()).collect();
        let ids: Vec<String> = node_ids
            .iter()
            .cloned()
            .chain(asks.iter().map(|ask| ask.id.clone()))
            .collect();
        let mut wiring = Wiring {
            graph: &name,
            ids: &ids,
            known: ids.iter().map(String::as_str).collect(),
            edges: HashSet::new(),
            spec: GraphSpec {
                asks,
                ..GraphSpec::default()
            },
        };
        for edge in &raw.edges {
            wiring.edge(self, edge);
        }
        for route in &raw.routes {
            wiring.route(self, route, &config);
        }
        for lp in &raw.loops {
            wiring.repeat(self, lp);
        }
        for map in &raw.maps {
            wiring.map(self, map, &steps);
        }
        for join in &raw.joins {
            if let Some(node) = wiring.id(self, &join.value.node, Place::Node) {
                let policy = match join.value.policy.value {
                    JoinSpec::All => JoinPolicy::All,
                    JoinSpec::Any => JoinPolicy::Any,
                    JoinSpec::AtLeast(k) => {
                        if k == 0 {
                            self.checker
                                .error_at(join.value.policy.span, "`at_least` must be at least 1");
                        }
                        JoinPolicy::AtLeast(usize::try_from(k).unwrap_or(usize::MAX))
                    }
                };
                wiring.spec.joins.push((node, policy));
            }
        }
        let spec = wiring.spec;
        if self.checker.problems.len() == before {
            // Each problem at the node it is about (its entry in `nodes`),
            // or at `nodes` when it is about none.
            let everything = raw.nodes.as_ref().and_then(|n| n.span);
            for problem in shape(&name, &node_ids, &spec, &config) {
                let at = problem
                    .nodes
                    .first()
                    .and_then(|node| written.iter().find(|(id, _)| id == node))
                    .and_then(|(_, span)| *span)
                    .or(everything);
                self.checker.error(
                    Diagnostic::new(format!("graph `{name}` cannot run"), at)
                        .with_label(in_workflow_words(&problem.message)),
                );
            }
        }
        Some(Group {
            name,
            description: raw.description.as_ref().map(|d| self.checker.text(d)),
            mode: Mode::Graph,
            config,
            steps,
            graph: Some(Box::new(spec)),
            budget: None,
            fail_fast: false,
        })
    }
}

/// The wiring being read, and the graph's node ids.
struct Wiring<'g> {
    graph: &'g str,
    ids: &'g [String],
    /// The ids, and the edges so far, to look up: a graph of thousands of
    /// nodes and edges once took seconds going through the lists.
    known: HashSet<&'g str>,
    edges: HashSet<(String, String)>,
    spec: GraphSpec,
}

impl Wiring<'_> {
    /// Resolves `id` written at `span`, where `start`/`end` may stand as `place` allows.
    fn resolve(
        &self,
        flow: &mut FlowChecker<'_, '_>,
        id: &str,
        span: Option<Span>,
        place: Place,
    ) -> Option<String> {
        let id = id.trim();
        let fits = match id {
            START => place == Place::From,
            END => place == Place::To,
            other => self.known.contains(other),
        };
        if fits {
            return Some(id.to_owned());
        }
        let graph = self.graph;
        let diagnostic = if id == START || id == END {
            Diagnostic::new(format!("`{id}` cannot stand here"), span)
                .with_label("`start` only begins an edge; `end` only ends an edge or a route")
        } else {
            let mut candidates: Vec<&str> = self.ids.iter().map(String::as_str).collect();
            match place {
                Place::From => candidates.push(START),
                Place::To => candidates.push(END),
                Place::Node => {}
            }
            let help = flow.checker.did_you_mean(id, candidates).or_else(|| {
                flow.names
                    .contains_key(id)
                    .then(|| format!("add `{id}` to the `nodes` of `{graph}`"))
            });
            Diagnostic::new(format!("unknown node `{id}` in graph `{graph}`"), span)
                .with_label("not one of the graph's `nodes` or `asks`")
                .with_help(help)
        };
        flow.checker.error(diagnostic);
        None
    }

    fn id(
        &self,
        flow: &mut FlowChecker<'_, '_>,
        id: &Located<String>,
        place: Place,
    ) -> Option<String> {
        self.resolve(flow, &id.value, id.span, place)
    }

    fn targets(
        &self,
        flow: &mut FlowChecker<'_, '_>,
        ids: &[String],
        span: Option<Span>,
    ) -> Option<Vec<String>> {
        let resolved: Vec<Option<String>> = ids
            .iter()
            .map(|id| self.resolve(flow, id, span, Place::To))
            .collect();
        if ids.is_empty() {
            flow.checker.error_at(span, "no node given");
            return None;
        }
        resolved.into_iter().collect()
    }

    fn add_edge(&mut self, from: String, to: String) {
        if self.edges.insert((from.clone(), to.clone())) {
            self.spec.edges.push((from, to));
        }
    }

    /// `a -> b -> c`.
    fn edge(&mut self, flow: &mut FlowChecker<'_, '_>, edge: &Located<String>) {
        let parts: Vec<&str> = edge.value.split("->").map(str::trim).collect();
        if parts.len() < 2 || parts.iter().any(|part| part.is_empty()) {
            flow.checker.error(
                Diagnostic::new(format!("`{}` is not an edge", edge.value), edge.span).with_help(
                    Some("write edges as \"from -> to\", or chains as \"a -> b -> c\"".to_owned()),
                ),
            );
            return;
        }
        let last = parts.len() - 1;
        let ids: Vec<Option<String>> = parts
            .iter()
            .enumerate()
            .map(|(at, part)| {
                let place = match at {
                    0 => Place::From,
                    n if n == last => Place::To,
                    _ => Place::Node,
                };
                self.resolve(flow, part, edge.span, place)
            })
            .collect();
        for pair in ids.windows(2) {
            if let (Some(from), Some(to)) = (&pair[0], &pair[1]) {
                self.add_edge(from.clone(), to.clone());
            }
        }
    }

    fn route(
        &mut self,
        flow: &mut FlowChecker<'_, '_>,
        route: &Located<RawRoute>,
        config: &ExecutionConfig,
    ) {
        let raw = &route.value;
        let from = self.id(flow, &raw.from, Place::Node);
        if let Some(from) = &from {
            if self.spec.routes.iter().any(|r| &r.from == from) {
                flow.checker.error_at(
                    raw.from.span,
                    format!("`{from}` has two routes: merge them"),
                );
            }
        }
        let default = self.targets(flow, &raw.default.value.ids(), raw.default.span);
        let by = match (&raw.router, raw.when.is_empty()) {
            (Some(router), true) => self.router(flow, raw, router, config),
            (None, false) => {
                let mut branches = Vec::new();
                for branch in &raw.when {
                    let condition =
                        check_condition(flow.checker, &branch.value.condition(), branch.span);
                    let to = self.targets(flow, &branch.value.to.value.ids(), branch.value.to.span);
                    if let (Some(condition), Some(to)) = (condition, to) {
                        branches.push(Branch { condition, to });
                    }
                }
                Some(RouteBy::Conditions(branches))
            }
            (Some(router), false) => {
                flow.checker.error(
                    Diagnostic::new("a route has both `when` and `router`", router.span)
                        .with_help(Some("keep one way of choosing".to_owned())),
                );
                None
            }
            (None, true) => {
                flow.checker.error(
                    Diagnostic::new("a route needs `when` branches or a `router`", route.span)
                        .with_help(Some(
                            "add for example: when = [{ contains = \"bug\", to = \"fix\" }]"
                                .to_owned(),
                        )),
                );
                None
            }
        };
        if let (Some(from), Some(by), Some(default)) = (from, by, default) {
            self.spec.routes.push(RouteSpec { from, by, default });
        }
    }

    fn router(
        &self,
        flow: &mut FlowChecker<'_, '_>,
        raw: &RawRoute,
        router: &Located<String>,
        config: &ExecutionConfig,
    ) -> Option<RouteBy> {
        let agent = router.value.trim();
        let is_agent = matches!(flow.names.get(agent), Some((Target::Agent { .. }, _)));
        if !is_agent {
            let agents = flow
                .names
                .iter()
                .filter(|(_, (t, _))| matches!(t, Target::Agent { .. }));
            let help = flow
                .checker
                .did_you_mean(agent, agents.map(|(name, _)| name.as_str()));
            flow.checker.error(
                Diagnostic::new(format!("unknown router agent `{agent}`"), router.span)
                    .with_label("a router is an agent declared in `agents`")
                    .with_help(help),
            );
        }
        // Its choices are checked whatever the agent: every problem at once.
        let used = is_agent
            .then(|| flow.use_agent(agent, router.span, config))
            .flatten();
        let Some(choices) = &raw.choices else {
            flow.checker.error(
                Diagnostic::new("a route with a `router` needs `choices`", router.span).with_help(
                    Some(
                        "list the node ids the router may answer: choices = [\"a\", \"b\"]"
                            .to_owned(),
                    ),
                ),
            );
            return None;
        };
        let ids: Vec<String> = choices.value.iter().map(|c| c.value.clone()).collect();
        let mut resolved = Vec::new();
        for choice in &choices.value {
            resolved.push(self.id(flow, choice, Place::To));
        }
        if ids.is_empty() {
            flow.checker.error_at(choices.span, "`choices` is empty");
        }
        used?;
        Some(RouteBy::Router {
            agent: agent.to_owned(),
            choices: resolved.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn repeat(&mut self, flow: &mut FlowChecker<'_, '_>, lp: &Located<RawLoop>) {
        let raw = &lp.value;
        if raw.body.value.is_empty() {
            flow.checker
                .error_at(raw.body.span, "a loop's `body` needs at least one node");
        }
        let body: Vec<Option<String>> = raw
            .body
            .value
            .iter()
            .map(|id| self.id(flow, id, Place::Node))
            .collect();
        if raw.max_iterations.value == 0 {
            flow.checker.error_at(
                raw.max_iterations.span,
                "`max_iterations` must be at least 1",
            );
        }
        let until = match &raw.until {
            Some(until) => match check_condition(flow.checker, &until.value, until.span) {
                Some(condition) => Some(condition),
                None => return,
            },
            None => None,
        };
        let Some(body) = body.into_iter().collect::<Option<Vec<String>>>() else {
            return;
        };
        if body.is_empty() {
            return;
        }
        for pair in body.windows(2) {
            self.add_edge(pair[0].clone(), pair[1].clone());
        }
        self.spec.loops.push(LoopSpec {
            body,
            until,
            max_iterations: raw.max_iterations.value,
        });
    }

    fn map(&mut self, flow: &mut FlowChecker<'_, '_>, map: &Located<RawMap>, steps: &[Node]) {
        let raw = &map.value;
        let Some(node) = self.id(flow, &raw.node, Place::Node) else {
            return;
        };
        if steps
            .iter()
            .any(|s| matches!(s, Node::Group(g) if g.name == node))
        {
            flow.checker.error(
                Diagnostic::new(
                    format!("`{node}` is a group; a map runs an agent"),
                    raw.node.span,
                )
                .with_help(Some(
                    "map an agent node, and put the group after it".to_owned(),
                )),
            );
            return;
        }
        if self.spec.asks.iter().any(|ask| ask.id == node) {
            flow.checker.error(
                Diagnostic::new(
                    format!("`{node}` is an ask; a map runs an agent"),
                    raw.node.span,
                )
                .with_help(Some("map an agent node after the ask".to_owned())),
            );
            return;
        }
        if self.spec.map(&node).is_some() {
            flow.checker
                .error_at(raw.node.span, format!("`{node}` is mapped twice"));
            return;
        }
        let parallel_limit = raw.parallel_limit.as_ref().map(|limit| {
            if limit.value == 0 {
                flow.checker
                    .error_at(limit.span, "`parallel_limit` must be at least 1");
            }
            usize::try_from(limit.value).unwrap_or(usize::MAX)
        });
        self.spec.maps.push(MapSpec {
            node,
            over: raw.over.value,
            parallel_limit,
        });
    }
}

/// The library's own check of the graph's shape, on stand-in agents.
fn shape(
    name: &str,
    ids: &[String],
    spec: &GraphSpec,
    config: &ExecutionConfig,
) -> Vec<GraphProblem> {
    let nodes: Vec<(String, Arc<dyn Agent>)> = ids
        .iter()
        .map(|id| {
            let agent: Arc<dyn Agent> = Arc::new(SimpleAgent::new(id.clone(), "", |_| {
                Ok(AgentOutput::new(""))
            }));
            (id.clone(), agent)
        })
        .collect();
    crate::graph_plan::wire(name, spec, nodes, config, None).problems()
}

/// A problem the library found, in the words of a workflow file.
fn in_workflow_words(message: &str) -> String {
    message
        .replace("__start__", START)
        .replace("__end__", END)
        .replace("START", START)
        .replace("END", END)
        .replace("add_loop", "a `loops` entry")
}
