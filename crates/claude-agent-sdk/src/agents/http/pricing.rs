//! [`Pricing`] and [`PriceTable`]: the cost of tokens, for back ends that do not
//! report it themselves.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::orchestration::Usage;

/// What one model charges, in US dollars per million tokens.
///
/// ```
/// use claude_agent_sdk::agents::Pricing;
/// use claude_agent_sdk::orchestration::Usage;
///
/// let sonnet = Pricing::per_million_tokens(3.0, 15.0).with_cache_prices(3.75, 0.30);
/// let cost = sonnet.cost(&Usage::new(1_000_000, 100_000));
/// assert!((cost - 4.5).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pricing {
    /// Dollars per million input tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output tokens.
    pub output_per_mtok: f64,
    /// Dollars per million tokens written to the prompt cache.
    pub cache_write_per_mtok: f64,
    /// Dollars per million tokens read from the prompt cache.
    pub cache_read_per_mtok: f64,
}

impl Pricing {
    /// Input and output prices per million tokens; cache writes are priced as
    /// input and cache reads are free until [`with_cache_prices`](Self::with_cache_prices).
    #[must_use]
    pub fn per_million_tokens(input: f64, output: f64) -> Self {
        Self {
            input_per_mtok: input,
            output_per_mtok: output,
            cache_write_per_mtok: input,
            cache_read_per_mtok: 0.0,
        }
    }

    /// Sets the prompt-cache prices per million tokens.
    #[must_use]
    pub fn with_cache_prices(mut self, write: f64, read: f64) -> Self {
        self.cache_write_per_mtok = write;
        self.cache_read_per_mtok = read;
        self
    }

    /// What `usage` costs at these prices, in US dollars.
    #[must_use]
    pub fn cost(&self, usage: &Usage) -> f64 {
        let millions = |tokens: u64| tokens as f64 / 1_000_000.0;
        millions(usage.input_tokens) * self.input_per_mtok
            + millions(usage.output_tokens) * self.output_per_mtok
            + millions(usage.cache_creation_input_tokens) * self.cache_write_per_mtok
            + millions(usage.cache_read_input_tokens) * self.cache_read_per_mtok
    }
}

/// Prices by model name. A model matches an entry with its exact name, or else
/// the longest entry its name starts with, so `claude-sonnet-4-5` also prices
/// `claude-sonnet-4-5-20250929`.
///
/// ```
/// use claude_agent_sdk::agents::{PriceTable, Pricing};
///
/// let table = PriceTable::new()
///     .with_price("claude-sonnet-4-5", Pricing::per_million_tokens(3.0, 15.0))
///     .with_price("claude-haiku-4-5", Pricing::per_million_tokens(1.0, 5.0));
/// assert!(table.get("claude-sonnet-4-5-20250929").is_some());
/// assert!(table.get("gpt-4o").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    prices: HashMap<String, Pricing>,
}

impl PriceTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the price of `model`.
    #[must_use]
    pub fn with_price(mut self, model: impl Into<String>, pricing: Pricing) -> Self {
        self.prices.insert(model.into(), pricing);
        self
    }

    /// The price of `model`: an exact entry, or the longest entry it starts with.
    #[must_use]
    pub fn get(&self, model: &str) -> Option<Pricing> {
        if let Some(exact) = self.prices.get(model) {
            return Some(*exact);
        }
        self.prices
            .iter()
            .filter(|(name, _)| !name.is_empty() && model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, pricing)| *pricing)
    }

    /// Whether the table has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let table = PriceTable::new()
            .with_price("gpt-4o", Pricing::per_million_tokens(2.5, 10.0))
            .with_price("gpt-4o-mini", Pricing::per_million_tokens(0.15, 0.6));
        assert_eq!(
            table.get("gpt-4o-mini-2024").map(|p| p.input_per_mtok),
            Some(0.15)
        );
        assert_eq!(
            table.get("gpt-4o-2024").map(|p| p.input_per_mtok),
            Some(2.5)
        );
        assert_eq!(table.get("gpt-4"), None);
    }

    #[test]
    fn cache_tokens_have_their_own_prices() {
        let p = Pricing::per_million_tokens(1.0, 2.0).with_cache_prices(4.0, 8.0);
        let usage = Usage::new(0, 0).with_cache_tokens(1_000_000, 1_000_000);
        assert!((p.cost(&usage) - 12.0).abs() < 1e-9);
    }
}
