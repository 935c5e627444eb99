//! The graph parts of a workflow file as written: routes, loops, maps, joins,
//! conditions and budgets (see `docs/workflow.md`, "Graphs"). Like
//! [`raw`](super::raw), these types only describe the file's shape; their doc
//! comments are the JSON Schema's descriptions.

use schemars::JsonSchema;
use serde::Deserialize;

use super::located::Located;
use super::values::{DurationSpec, JoinSpec};

/// One node id, or several (a fan-out).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Targets {
    /// One node id (or `end`).
    One(String),
    /// Several node ids, all of which get the output.
    Many(Vec<String>),
}

impl Targets {
    /// The ids, in order.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        match self {
            Self::One(id) => vec![id.trim().to_owned()],
            Self::Many(ids) => ids.iter().map(|id| id.trim().to_owned()).collect(),
        }
    }
}

/// A condition on a node's output: exactly one of `contains`, `matches` or
/// `equals` (with an optional `field`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Condition")]
pub struct RawCondition {
    /// Holds when the output's text contains this string.
    pub contains: Option<Located<String>>,
    /// Holds when the output's text matches this regular expression (Rust `regex` syntax).
    pub matches: Option<Located<String>>,
    /// With `equals`: the field of the output's JSON to compare, as a JSON pointer
    /// (`/verdict/ok`) or a dotted path (`verdict.ok`). Without it, `equals`
    /// compares the whole output.
    pub field: Option<Located<String>>,
    /// Holds when the field (or the whole output, as JSON or as trimmed text)
    /// equals this value.
    pub equals: Option<Located<serde_json::Value>>,
}

/// A branch of a route: a condition and where the output goes when it holds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Branch")]
pub struct RawBranch {
    /// See `Condition`.
    pub contains: Option<Located<String>>,
    /// See `Condition`.
    pub matches: Option<Located<String>>,
    /// See `Condition`.
    pub field: Option<Located<String>>,
    /// See `Condition`.
    pub equals: Option<Located<serde_json::Value>>,
    /// The node(s) the output goes to, or `end`.
    pub to: Located<Targets>,
}

impl RawBranch {
    /// The branch's condition.
    #[must_use]
    pub fn condition(&self) -> RawCondition {
        RawCondition {
            contains: self.contains.clone(),
            matches: self.matches.clone(),
            field: self.field.clone(),
            equals: self.equals.clone(),
        }
    }
}

/// Where a node's output goes: the first branch of `when` whose condition
/// holds, or the answer of a `router` agent, or else `default`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Route")]
pub struct RawRoute {
    /// The node whose output is routed.
    pub from: Located<String>,
    /// Branches tried in order; the first whose condition holds is taken.
    #[serde(default)]
    pub when: Vec<Located<RawBranch>>,
    /// Instead of `when`: an agent that reads the output and answers with the id
    /// of the next node (one of `choices`).
    pub router: Option<Located<String>>,
    /// With `router`: the node ids (or `end`) the router may name.
    pub choices: Option<Located<Vec<Located<String>>>>,
    /// Where the output goes when no branch holds (or the router names no choice).
    pub default: Located<Targets>,
}

/// A bounded loop: after its last node, the run goes back to its first until
/// `until` holds, at most `max_iterations` passes in all.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Loop")]
pub struct RawLoop {
    /// The loop's nodes, first to last; edges between consecutive ones are implied.
    pub body: Located<Vec<Located<String>>>,
    /// Stop going round when the last node's output meets this condition
    /// (default: go round `max_iterations` times).
    pub until: Option<Located<RawCondition>>,
    /// The most passes through the body, the first included (at least 1).
    pub max_iterations: Located<u32>,
}

/// How a map splits its input into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SplitSpec {
    /// One item per non-empty line.
    Lines,
    /// One item per element of a JSON array.
    Json,
}

impl SplitSpec {
    /// As written in files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lines => "lines",
            Self::Json => "json",
        }
    }
}

/// A map: the node's agent runs once per item of its input.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Map")]
pub struct RawMap {
    /// The node (an agent node of `nodes`).
    pub node: Located<String>,
    /// What the items are: `lines` or the elements of a `json` array.
    pub over: Located<SplitSpec>,
    /// Most items running at once (default: the group's `parallel_limit`).
    pub parallel_limit: Option<Located<u32>>,
}

/// How many of a node's predecessors (for a map: its items) must succeed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Join")]
pub struct RawJoin {
    /// The node.
    pub node: Located<String>,
    /// "all" (the default), "any", or { at_least = N }.
    pub policy: Located<JoinSpec>,
}

/// A node that asks a person a question; the answer is its output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ask")]
pub struct RawAsk {
    /// The node's id, used in edges and routes like any node's, and the id the
    /// answer is given under (`orchestra run --answer ID=TEXT`).
    pub id: Located<String>,
    /// What is asked; the node's input (what its predecessors produced) is
    /// shown after it.
    pub question: Located<String>,
}

/// What a run may spend; crossing a bound fails the run.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Budget")]
pub struct RawBudget {
    /// Most US dollars the agents may report spending.
    pub max_cost_usd: Option<Located<f64>>,
    /// Most tokens (input, output and cache) the agents may report.
    pub max_tokens: Option<Located<u64>>,
    /// Most steps: one per node run, loop pass and map item (default 10000).
    pub max_steps: Option<Located<u64>>,
    /// Longest time during which steps may start (running agents finish).
    pub timeout: Option<Located<DurationSpec>>,
}
