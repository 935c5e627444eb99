//! What a graph's author writes to steer a run: routes, loop conditions and
//! how a map splits its input.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::orchestration::agent::AgentOutput;
use crate::orchestration::errors::{OrchestrationError, Result};

/// The id of the graph's end: an edge (or a route) to `END` makes a node's
/// output one of the run's results.
pub const END: &str = "__end__";

/// The id of the graph's start: an edge from `START` makes a node run first,
/// on the run's input.
pub const START: &str = "__start__";

/// Where a router sends a node's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub(crate) targets: Vec<String>,
}

impl Route {
    /// To one node (or [`END`]).
    #[must_use]
    pub fn to(node: impl Into<String>) -> Self {
        Self {
            targets: vec![node.into()],
        }
    }

    /// To several nodes at once (a fan-out).
    #[must_use]
    pub fn to_all<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            targets: nodes.into_iter().map(Into::into).collect(),
        }
    }

    /// To the end: the output is a result of the run, and nothing follows.
    #[must_use]
    pub fn end() -> Self {
        Self::to(END)
    }

    /// The nodes routed to.
    #[must_use]
    pub fn targets(&self) -> &[String] {
        &self.targets
    }
}

/// What a router or loop condition sees: the node's output, the run's
/// shared state, and which loop iteration this is.
pub struct RouteContext<'a> {
    /// The id of the node whose output is routed.
    pub node: &'a str,
    /// Its output.
    pub output: &'a AgentOutput,
    /// The iteration of the loop the node is in (1 for the first pass, and
    /// outside loops).
    pub iteration: u32,
    pub(crate) state: &'a HashMap<String, serde_json::Value>,
}

impl RouteContext<'_> {
    /// A value of the run's shared state (see
    /// [`ExecutionContext::set_state`](crate::orchestration::ExecutionContext::set_state)).
    #[must_use]
    pub fn state(&self, key: &str) -> Option<&serde_json::Value> {
        self.state.get(key)
    }

    /// The output's content parsed as JSON, when it is JSON.
    #[must_use]
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.output.content.trim()).ok()
    }
}

impl fmt::Debug for RouteContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteContext")
            .field("node", &self.node)
            .field("iteration", &self.iteration)
            .finish_non_exhaustive()
    }
}

/// A router: picks where a node's output goes.
pub(crate) type Router = Arc<dyn Fn(&RouteContext<'_>) -> Route + Send + Sync>;

/// A loop condition: whether the loop goes round again.
pub(crate) type Condition = Arc<dyn Fn(&RouteContext<'_>) -> bool + Send + Sync>;

/// A custom split: the items of an input's content.
pub type SplitFn = Arc<dyn Fn(&str) -> Result<Vec<String>> + Send + Sync>;

/// How a map node splits its input into items, one step each.
#[derive(Clone)]
#[non_exhaustive]
pub enum Split {
    /// One item per non-empty line (trimmed).
    Lines,
    /// One item per element of a JSON array: strings as they are, anything
    /// else as its JSON text. Input that is not a JSON array fails the map.
    JsonArray,
    /// Whatever the function returns.
    Custom(SplitFn),
}

impl Split {
    /// A split by a function of the input's content.
    #[must_use]
    pub fn custom(split: impl Fn(&str) -> Result<Vec<String>> + Send + Sync + 'static) -> Self {
        Self::Custom(Arc::new(split))
    }

    /// The items of `content`.
    ///
    /// # Errors
    /// [`OrchestrationError::OrchestratorFailed`] when a JSON-array split is
    /// given anything else — the run's data, not its configuration, is at
    /// fault (a model that answered prose), as when a map's input splits
    /// into too few items; a custom split's own errors.
    pub fn items(&self, content: &str) -> Result<Vec<String>> {
        match self {
            Self::Lines => Ok(content
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect()),
            Self::JsonArray => {
                let value: serde_json::Value =
                    serde_json::from_str(content.trim()).map_err(|error| {
                        OrchestrationError::OrchestratorFailed(format!(
                            "a map over a JSON array was given something else ({}): {error}",
                            preview(content)
                        ))
                    })?;
                let serde_json::Value::Array(items) = value else {
                    return Err(OrchestrationError::OrchestratorFailed(format!(
                        "a map over a JSON array was given JSON that is not an array ({})",
                        preview(content)
                    )));
                };
                Ok(items
                    .into_iter()
                    .map(|item| match item {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    })
                    .collect())
            }
            Self::Custom(split) => split(content),
        }
    }
}

/// How many characters of a map's input an error about it shows.
const PREVIEW_CHARS: usize = 60;

/// The start of `content`, quoted, for an error that says what a map was
/// given (a model's answer may be long).
fn preview(content: &str) -> String {
    let content = content.trim();
    match content.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("`{}…`", &content[..cut]),
        None => format!("`{content}`"),
    }
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lines => "Lines",
            Self::JsonArray => "JsonArray",
            Self::Custom(_) => "Custom",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cut_lines_and_json_arrays() {
        assert_eq!(Split::Lines.items(" a \n\n b\n").unwrap(), ["a", "b"]);
        assert_eq!(
            Split::JsonArray.items(r#"["x", 2, {"k": 1}]"#).unwrap(),
            ["x", "2", r#"{"k":1}"#]
        );
        assert!(Split::JsonArray.items("{}").is_err());
        assert!(Split::JsonArray.items("nope").is_err());
        let long = format!("{}é and more", "x".repeat(59));
        assert_eq!(preview(&long), format!("`{}é…`", "x".repeat(59)));
        assert_eq!(preview(" short "), "`short`");
        let words = Split::custom(|text| Ok(text.split(',').map(str::to_owned).collect()));
        assert_eq!(words.items("a,b").unwrap(), ["a", "b"]);
    }
}
