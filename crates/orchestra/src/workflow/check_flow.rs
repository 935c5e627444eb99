//! Checking the flow: every step names a declared agent or group, no group
//! contains itself, every agent runs at most once, and every group's settings
//! are in range.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use claude_agent_sdk::orchestration::{Backoff, ExecutionConfig, JoinPolicy};

use super::check_agents::is_valid_id;
use super::check_budget::check_budget;
use super::checker::Checker;
use super::diagnostics::Diagnostic;
use super::located::{Located, Span};
use super::model::{Group, Mode, Node};
use super::raw::RawFlow;
use super::values::{JoinSpec, Step};

/// What a name in the flow can refer to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Agent { enabled: bool },
    Group(usize),
}

/// What the flow check learns about each agent it places.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// Retries of the group the agent runs in.
    pub retries: usize,
    /// Attempt timeout of that group.
    pub agent_timeout: Option<Duration>,
}

/// Resolves the flow into groups.
pub struct FlowChecker<'c, 'a> {
    pub(super) checker: &'c mut Checker<'a>,
    groups: &'c [Located<RawFlow>],
    pub(super) names: HashMap<String, (Target, Option<Span>)>,
    /// Names already used in the flow, with where.
    used: HashMap<String, Option<Span>>,
    /// The groups being resolved, outermost first (for cycles).
    pub(super) stack: Vec<String>,
    /// Where each agent runs.
    pub placements: HashMap<String, Placement>,
    /// Whether the flow was found nested too deep (reported once).
    too_deep: bool,
}

/// Reports `name`, declared at `here` and at `other`, at whichever of the two
/// comes later in the file, naming the line of the first: the checks meet
/// agents before groups, but "first declared" means first in the file.
fn declared_twice(
    checker: &mut Checker<'_>,
    name: &str,
    here: Option<Span>,
    other: Option<Span>,
    note: &str,
) {
    let (later, first) = match (here, other) {
        (Some(here), Some(other)) if other.start > here.start => (Some(other), Some(here)),
        _ => (here, other),
    };
    let first = checker.line_of(first);
    checker.error(
        Diagnostic::new(format!("`{name}` is declared twice"), later)
            .with_label(format!("{note}first declared on {first}")),
    );
}

/// The deepest nesting of groups a flow may have.
///
/// Every layer that handles the flow — this check, the plan, the drawings, the
/// summary — walks it group by group; bounding the depth here keeps a file
/// from exhausting their stacks (a chain of 5,000 groups once crashed
/// `validate`). Groups written in place meet the readers' own bound first
/// ([`super::parse::INLINE_GROUPS`], the same in TOML and YAML).
pub const MAX_DEPTH: usize = 64;

impl<'c, 'a> FlowChecker<'c, 'a> {
    /// A checker for a flow over `agents` (id, enabled, place) and `groups`.
    pub fn new(
        checker: &'c mut Checker<'a>,
        agents: &[(String, bool, Option<Span>)],
        groups: &'c [Located<RawFlow>],
    ) -> Self {
        let mut names = HashMap::new();
        for (id, enabled, span) in agents {
            names.insert(id.clone(), (Target::Agent { enabled: *enabled }, *span));
        }
        for (index, group) in groups.iter().enumerate() {
            let Some(id) = &group.value.id else {
                checker.error(
                    Diagnostic::new("a group in `groups` needs an `id`", group.span)
                        .with_help(Some("add for example: id = \"reviews\"".to_owned())),
                );
                continue;
            };
            let name = id.value.trim().to_owned();
            if !is_valid_id(&name) {
                checker.error_at(id.span, format!("invalid group id `{name}`"));
                continue;
            }
            if let Some((_, other)) = names.get(&name) {
                declared_twice(
                    checker,
                    &name,
                    id.span,
                    *other,
                    "agents and groups share one namespace; ",
                );
                continue;
            }
            names.insert(name, (Target::Group(index), id.span));
        }
        Self {
            checker,
            groups,
            names,
            used: HashMap::new(),
            stack: Vec::new(),
            placements: HashMap::new(),
            too_deep: false,
        }
    }

    /// Every name a step can use.
    pub fn names(&self) -> HashSet<String> {
        self.names.keys().cloned().collect()
    }

    /// The names that are declared but not used by the flow, in file order.
    pub fn unused(&self) -> Vec<(String, &'static str)> {
        let mut unused: Vec<(Option<usize>, String, &'static str)> = self
            .names
            .iter()
            .filter(|(name, _)| !self.used.contains_key(*name))
            .map(|(name, (target, span))| {
                let what = match target {
                    Target::Agent { .. } => "agent",
                    Target::Group(_) => "group",
                };
                (span.map(|s| s.start), name.clone(), what)
            })
            .collect();
        unused.sort();
        unused
            .into_iter()
            .map(|(_, name, what)| (name, what))
            .collect()
    }

    /// Resolves the root group `raw`, written at `span`.
    pub fn root(
        &mut self,
        raw: &RawFlow,
        span: Option<Span>,
        record_text_limit: Option<usize>,
    ) -> Option<Group> {
        let name = raw
            .id
            .as_ref()
            .map_or_else(|| "flow".to_owned(), |id| id.value.trim().to_owned());
        // A workflow's run has no time limit unless it sets `timeout`: the
        // library's default of 300 s once killed long runs with no word of it.
        let mut base = ExecutionConfig::new().with_timeout(Duration::MAX);
        if let Some(bytes) = record_text_limit {
            base = base.with_record_text_limit(bytes);
        }
        self.group(raw, span, name, &base)
    }

    fn group(
        &mut self,
        raw: &RawFlow,
        span: Option<Span>,
        name: String,
        inherited: &ExecutionConfig,
    ) -> Option<Group> {
        if self.stack.len() >= MAX_DEPTH {
            if !self.too_deep {
                self.too_deep = true;
                let path = match self.stack.as_slice() {
                    [first, .., last] => format!("{first} → … → {last} → {name}"),
                    _ => name.clone(),
                };
                self.checker.error(
                    Diagnostic::new(
                        format!("groups nest more than {MAX_DEPTH} levels deep at `{name}`"),
                        span,
                    )
                    .with_label(format!("inside {} groups: {path}", self.stack.len()))
                    .with_help(Some(
                        "list the steps of nested sequences in one `sequential` group, \
                         or split the workflow into files"
                            .to_owned(),
                    )),
                );
            }
            return None;
        }
        let (mode, steps) = self.mode_of(raw, span, &name)?;
        if steps.value.is_empty() {
            self.checker
                .error_at(steps.span, format!("group `{name}` has no steps"));
        }
        if mode != Mode::Graph {
            self.graph_fields_outside_graph(raw, &name);
        }
        let config = self.config(raw, &name, mode, inherited, steps.value.len());
        let budget = raw
            .budget
            .as_ref()
            .map(|budget| Box::new(check_budget(self.checker, budget)));
        if mode == Mode::Graph {
            let mut group = self.graph_group(raw, steps, name, config)?;
            group.budget = budget;
            return Some(group);
        }
        self.stack.push(name.clone());
        let mut nodes = Vec::new();
        for (index, step) in steps.value.iter().enumerate() {
            if let Some(node) = self.step(step, &name, index, &config) {
                nodes.push(node);
            }
        }
        self.stack.pop();
        let fail_fast = self.fail_fast(raw, &name, mode, &config);
        Some(Group {
            name,
            description: raw.description.as_ref().map(|d| self.checker.text(d)),
            mode,
            config,
            steps: nodes,
            graph: None,
            budget,
            fail_fast,
        })
    }

    /// The group's `fail_fast`, which only a parallel group that needs every
    /// step (`join = "all"`) can have.
    fn fail_fast(
        &mut self,
        raw: &RawFlow,
        name: &str,
        mode: Mode,
        config: &ExecutionConfig,
    ) -> bool {
        let Some(fail_fast) = &raw.fail_fast else {
            return false;
        };
        if !fail_fast.value {
            return false;
        }
        if mode != Mode::Parallel {
            self.checker.error(
                Diagnostic::new(
                    format!(
                        "`fail_fast` applies to parallel groups; `{name}` is {}",
                        mode.as_str()
                    ),
                    fail_fast.span,
                )
                .with_help(Some(
                    "a sequence already stops at its first failure; remove it".to_owned(),
                )),
            );
            return false;
        }
        if config.join_policy != JoinPolicy::All {
            self.checker.error(
                Diagnostic::new(
                    format!(
                        "`fail_fast` needs `join = \"all\"`; group `{name}` tolerates failures"
                    ),
                    fail_fast.span,
                )
                .with_help(Some(
                    "a tolerant join waits for the other steps by design: keep one of the two"
                        .to_owned(),
                )),
            );
            return false;
        }
        true
    }

    /// The group's mode and its steps (a graph's nodes).
    fn mode_of<'r>(
        &mut self,
        raw: &'r RawFlow,
        span: Option<Span>,
        name: &str,
    ) -> Option<(Mode, &'r Located<Vec<Located<Step>>>)> {
        let given: Vec<(Mode, &Located<Vec<Located<Step>>>)> = [
            (Mode::Sequential, raw.sequential.as_ref()),
            (Mode::Parallel, raw.parallel.as_ref()),
            (Mode::Graph, raw.nodes.as_ref()),
        ]
        .into_iter()
        .filter_map(|(mode, steps)| steps.map(|steps| (mode, steps)))
        .collect();
        match given.as_slice() {
            [one] => Some(*one),
            [] => {
                self.checker.error(
                    Diagnostic::new(
                        format!("group `{name}` has no steps"),
                        raw.id.as_ref().and_then(|id| id.span).or(span),
                    )
                    .with_help(Some(
                        "add `sequential = [...]`, `parallel = [...]` or a graph's `nodes = [...]`"
                            .to_owned(),
                    )),
                );
                None
            }
            [first, second, ..] => {
                self.checker.error(
                    Diagnostic::new(
                        format!(
                            "group `{name}` has both `{}` and `{}`",
                            first.0.key(),
                            second.0.key()
                        ),
                        second.1.span,
                    )
                    .with_help(Some("nest one inside the other instead".to_owned())),
                );
                None
            }
        }
    }

    /// Reports the graph settings of a sequential or parallel group.
    fn graph_fields_outside_graph(&mut self, raw: &RawFlow, name: &str) {
        let spans = [
            ("edges", raw.edges.first().and_then(|e| e.span)),
            ("routes", raw.routes.first().and_then(|e| e.span)),
            ("loops", raw.loops.first().and_then(|e| e.span)),
            ("maps", raw.maps.first().and_then(|e| e.span)),
            ("joins", raw.joins.first().and_then(|e| e.span)),
            ("asks", raw.asks.first().and_then(|e| e.span)),
        ];
        let counts = [
            raw.edges.len(),
            raw.routes.len(),
            raw.loops.len(),
            raw.maps.len(),
            raw.joins.len(),
            raw.asks.len(),
        ];
        for ((key, span), count) in spans.into_iter().zip(counts) {
            if count > 0 {
                self.checker.error(
                    Diagnostic::new(
                        format!("`{key}` applies to graph groups; `{name}` is not one"),
                        span,
                    )
                    .with_help(Some(
                        "list the group's steps in `nodes` to make it a graph".to_owned(),
                    )),
                );
            }
        }
    }

    /// Marks agent `id` as used at `span` (a router), as a step would.
    pub(super) fn use_agent(
        &mut self,
        id: &str,
        span: Option<Span>,
        config: &ExecutionConfig,
    ) -> Option<()> {
        self.reference(id, span, config).map(|_| ())
    }

    pub(super) fn step(
        &mut self,
        step: &Located<Step>,
        parent: &str,
        index: usize,
        config: &ExecutionConfig,
    ) -> Option<Node> {
        match &step.value {
            Step::Inline(raw) => {
                let name = match &raw.id {
                    Some(id) => {
                        let name = id.value.trim().to_owned();
                        if !is_valid_id(&name) {
                            self.checker
                                .error_at(id.span, format!("invalid group id `{name}`"));
                        } else if let Some((_, other)) = self.names.get(&name) {
                            declared_twice(self.checker, &name, id.span, *other, "");
                        }
                        name
                    }
                    None => format!("{parent}.{}", index + 1),
                };
                self.used.insert(name.clone(), step.span);
                self.group(raw, step.span, name, config)
                    .map(|group| Node::Group(Box::new(group)))
            }
            Step::Ref(id) => self.reference(id.trim(), step.span, config),
        }
    }

    fn reference(
        &mut self,
        id: &str,
        span: Option<Span>,
        config: &ExecutionConfig,
    ) -> Option<Node> {
        let Some((target, _)) = self.names.get(id).copied() else {
            let help = self
                .checker
                .did_you_mean(id, self.names.keys().map(String::as_str));
            self.checker.error(
                Diagnostic::new(format!("unknown agent `{id}`"), span)
                    .with_label("not declared in `agents` or `groups`")
                    .with_help(help),
            );
            return None;
        };
        if self.stack.iter().any(|open| open == id) {
            let start = self.stack.iter().position(|open| open == id).unwrap_or(0);
            let mut cycle: Vec<&str> = self.stack[start..].iter().map(String::as_str).collect();
            cycle.push(id);
            self.checker.error(
                Diagnostic::new(format!("group `{id}` contains itself"), span)
                    .with_label(format!("cycle: {}", cycle.join(" → "))),
            );
            return None;
        }
        if let Some(first) = self.used.get(id).copied() {
            let first = self.checker.line_of(first);
            self.checker.error(
                Diagnostic::new(format!("`{id}` appears twice in the flow"), span)
                    .with_label(format!("already used on {first}"))
                    .with_help(Some(
                        "each agent or group runs once per flow; declare a second one to run it again"
                            .to_owned(),
                    )),
            );
            return None;
        }
        self.used.insert(id.to_owned(), span);
        match target {
            Target::Agent { enabled } => {
                if !enabled {
                    self.checker.error(
                        Diagnostic::new(format!("agent `{id}` is disabled"), span)
                            .with_label("used here")
                            .with_help(Some(
                                "set `enabled = true` on it, or remove it from the flow".to_owned(),
                            )),
                    );
                }
                self.placements.insert(
                    id.to_owned(),
                    Placement {
                        retries: config.max_retries,
                        agent_timeout: config.agent_timeout,
                    },
                );
                Some(Node::Agent(id.to_owned()))
            }
            Target::Group(index) => {
                let groups = self.groups;
                let raw = &groups[index];
                self.group(&raw.value, raw.span, id.to_owned(), config)
                    .map(|group| Node::Group(Box::new(group)))
            }
        }
    }

    /// The group's configuration: what it inherits, overridden by what it sets.
    fn config(
        &mut self,
        raw: &RawFlow,
        name: &str,
        mode: Mode,
        inherited: &ExecutionConfig,
        steps: usize,
    ) -> ExecutionConfig {
        let mut config = inherited.clone().with_join_policy(JoinPolicy::All);
        let checker = &mut *self.checker;
        let positive = |checker: &mut Checker<'_>,
                        value: &Located<super::values::DurationSpec>,
                        what: &str| {
            if value.value.0.is_zero() {
                checker.error_at(value.span, format!("`{what}` must be greater than zero"));
            }
            value.value.0
        };
        if let Some(timeout) = &raw.timeout {
            config = config.with_timeout(positive(checker, timeout, "timeout"));
        }
        if let Some(timeout) = &raw.agent_timeout {
            config = config.with_agent_timeout(positive(checker, timeout, "agent_timeout"));
        }
        if let Some(retries) = &raw.retries {
            config = config.with_max_retries(usize::try_from(retries.value).unwrap_or(usize::MAX));
        }
        if let Some(limit) = &raw.parallel_limit {
            if limit.value == 0 {
                checker.error_at(limit.span, "`parallel_limit` must be at least 1");
            }
            config = config.with_parallel_limit(usize::try_from(limit.value).unwrap_or(usize::MAX));
        }
        if let Some(join) = &raw.join {
            if mode == Mode::Graph {
                checker.error(
                    Diagnostic::new(
                        format!("`join` applies to parallel groups; `{name}` is a graph"),
                        join.span,
                    )
                    .with_help(Some(
                        "give a graph's nodes their joins: joins = [{ node = \"...\", policy = \"any\" }]"
                            .to_owned(),
                    )),
                );
            } else if mode == Mode::Sequential {
                checker.error(
                    Diagnostic::new(
                        format!("`join` applies to parallel groups; `{name}` is sequential"),
                        join.span,
                    )
                    .with_help(Some("remove it, or make the group `parallel`".to_owned())),
                );
            }
            let policy = match join.value {
                JoinSpec::All => JoinPolicy::All,
                JoinSpec::Any => JoinPolicy::Any,
                JoinSpec::AtLeast(k) => {
                    let k = usize::try_from(k).unwrap_or(usize::MAX);
                    if k == 0 || k > steps {
                        checker.error_at(
                            join.span,
                            format!("`at_least` must be between 1 and the group's {steps} step(s), not {k}"),
                        );
                    }
                    JoinPolicy::AtLeast(k)
                }
            };
            config = config.with_join_policy(policy);
        }
        if let Some(backoff) = &raw.backoff {
            let current = config.backoff;
            let initial = backoff
                .value
                .initial
                .as_ref()
                .map_or(current.initial, |d| d.value.0);
            let max = backoff
                .value
                .max
                .as_ref()
                .map_or(current.max, |d| d.value.0);
            if initial > max {
                checker.error_at(backoff.span, "backoff `initial` is longer than `max`");
            }
            let mut schedule = Backoff::new(initial, max).with_jitter(current.jitter);
            if let Some(jitter) = &backoff.value.jitter {
                if !(0.0..=1.0).contains(&jitter.value) {
                    checker.error_at(jitter.span, "`jitter` must be between 0.0 and 1.0");
                }
                schedule = schedule.with_jitter(jitter.value);
            }
            config = config.with_backoff_schedule(schedule);
        }
        config
    }
}
