//! [`Usage`]: what an agent's call to a model cost, in tokens and (where known)
//! in US dollars.
//!
//! Agents that talk to a model put their usage in their output's
//! `data["usage"]` (see [`Usage::from_output`]); the totals of a run come from
//! [`ExecutionTrace::total_usage`](super::ExecutionTrace::total_usage) and
//! [`OrchestratorOutput::total_usage`](super::OrchestratorOutput::total_usage).
//!
//! ```
//! use claude_agent_sdk::orchestration::{AgentOutput, Usage};
//!
//! let first = Usage::new(1200, 300).with_cost_usd(0.0081);
//! let second = Usage::new(800, 200);
//! let output = AgentOutput::new("answer").with_data(serde_json::json!({ "usage": first }));
//! assert_eq!(Usage::from_output(&output), Some(first));
//!
//! let total: Usage = [first, second].into_iter().sum();
//! assert_eq!(total.input_tokens, 2000);
//! assert_eq!(total.total_tokens(), 2500);
//! assert_eq!(total.cost_usd, Some(0.0081)); // only the known costs add up
//! ```

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use crate::orchestration::agent::AgentOutput;

/// Tokens a model consumed and produced, and what that cost when it is known.
///
/// Following the Anthropic API, `input_tokens` excludes the tokens written to or
/// read from a prompt cache, which are counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens of input (prompt) processed outside any cache.
    pub input_tokens: u64,
    /// Tokens of output generated.
    pub output_tokens: u64,
    /// Input tokens written to a prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from a prompt cache.
    pub cache_read_input_tokens: u64,
    /// What the call cost in US dollars, when the back end reported it or a price
    /// table was configured; `None` when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// The key under which agents put their usage in [`AgentOutput::data`].
    pub const DATA_KEY: &'static str = "usage";

    /// Usage of `input_tokens` in and `output_tokens` out, no cache, unknown cost.
    #[must_use]
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            ..Self::default()
        }
    }

    /// Sets the prompt-cache token counts.
    #[must_use]
    pub fn with_cache_tokens(mut self, creation: u64, read: u64) -> Self {
        self.cache_creation_input_tokens = creation;
        self.cache_read_input_tokens = read;
        self
    }

    /// Sets the cost in US dollars.
    #[must_use]
    pub fn with_cost_usd(mut self, cost_usd: f64) -> Self {
        self.cost_usd = Some(cost_usd);
        self
    }

    /// Every token counted: input, output and both kinds of cache tokens.
    #[must_use]
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
    }

    /// Whether nothing was counted and no cost is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.total_tokens() == 0 && self.cost_usd.is_none()
    }

    /// The usage an agent reported in `output.data["usage"]`, if it reported any.
    #[must_use]
    pub fn from_output(output: &AgentOutput) -> Option<Self> {
        Self::from_data(&output.data)
    }

    /// The usage in an output's `data` (its `"usage"` object), if there is one.
    #[must_use]
    pub fn from_data(data: &serde_json::Value) -> Option<Self> {
        let value = data.get(Self::DATA_KEY)?;
        if !value.is_object() {
            return None;
        }
        Self::deserialize(value).ok()
    }

    /// What this counts beyond `counted`, field by field (never below
    /// zero): a step's reported usage beyond what was already counted for
    /// it. The cost is `None` when this one's is.
    pub(crate) fn beyond(&self, counted: &Self) -> Self {
        Self {
            input_tokens: self.input_tokens.saturating_sub(counted.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(counted.output_tokens),
            cache_creation_input_tokens: self
                .cache_creation_input_tokens
                .saturating_sub(counted.cache_creation_input_tokens),
            cache_read_input_tokens: self
                .cache_read_input_tokens
                .saturating_sub(counted.cache_read_input_tokens),
            cost_usd: self
                .cost_usd
                .map(|cost| (cost - counted.cost_usd.unwrap_or(0.0)).max(0.0)),
        }
    }
}

impl Add for Usage {
    type Output = Self;

    /// Sums token counts (saturating) and the known costs: the sum's cost is
    /// `None` only when neither side knew its cost.
    fn add(self, other: Self) -> Self {
        Self {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cache_creation_input_tokens: self
                .cache_creation_input_tokens
                .saturating_add(other.cache_creation_input_tokens),
            cache_read_input_tokens: self
                .cache_read_input_tokens
                .saturating_add(other.cache_read_input_tokens),
            cost_usd: match (self.cost_usd, other.cost_usd) {
                (Some(a), Some(b)) => Some(a + b),
                (known, None) | (None, known) => known,
            },
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

impl Sum for Usage {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

impl<'a> Sum<&'a Usage> for Usage {
    fn sum<I: Iterator<Item = &'a Usage>>(iter: I) -> Self {
        iter.copied().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_what_was_counted_is_never_below_zero() {
        let reported = Usage::new(100, 50).with_cost_usd(0.30);
        let counted = Usage::new(40, 80).with_cost_usd(0.10);
        let extra = reported.beyond(&counted);
        assert_eq!((extra.input_tokens, extra.output_tokens), (60, 0));
        assert!((extra.cost_usd.unwrap_or_default() - 0.20).abs() < 1e-12);
        assert_eq!(Usage::new(1, 1).beyond(&counted).cost_usd, None);
        assert_eq!(counted.beyond(&reported).cost_usd, Some(0.0));
    }

    #[test]
    fn sums_tokens_and_known_costs() {
        let a = Usage::new(10, 5).with_cache_tokens(1, 2).with_cost_usd(0.5);
        let b = Usage::new(1, 1);
        let mut total = a + b;
        assert_eq!(total.input_tokens, 11);
        assert_eq!(total.output_tokens, 6);
        assert_eq!(total.total_tokens(), 20);
        assert_eq!(total.cost_usd, Some(0.5));
        total += Usage::new(0, 0).with_cost_usd(0.25);
        assert_eq!(total.cost_usd, Some(0.75));
        assert_eq!((b + b).cost_usd, None);
        assert!(Usage::default().is_empty());
        assert_eq!(
            Usage::new(u64::MAX, 0) + Usage::new(1, 0),
            Usage::new(u64::MAX, 0)
        );
    }

    #[test]
    fn reads_usage_from_output_data_leniently() {
        let output = AgentOutput::new("x")
            .with_data(serde_json::json!({"usage": {"input_tokens": 3, "output_tokens": 4}}));
        assert_eq!(Usage::from_output(&output), Some(Usage::new(3, 4)));
        let no_usage = AgentOutput::new("x").with_data(serde_json::json!({"usage": 7}));
        assert_eq!(Usage::from_output(&no_usage), None);
        assert_eq!(Usage::from_output(&AgentOutput::new("x")), None);
    }

    #[test]
    fn round_trips_through_json_without_unknown_cost() {
        let usage = Usage::new(1, 2);
        let json = serde_json::to_value(usage).unwrap();
        assert!(json.get("cost_usd").is_none());
        assert_eq!(serde_json::from_value::<Usage>(json).unwrap(), usage);
    }
}
