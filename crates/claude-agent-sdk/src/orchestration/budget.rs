//! Budgets: how much one run may spend — steps, tokens, dollars, wall time.
//!
//! A graph with loops and maps can run for longer than its author meant; a
//! [`RunBudget`] bounds it. Tokens and cost are counted from the [`Usage`]
//! agents report as they finish (their output's `data["usage"]`), steps as
//! the run creates them, wall time from the run's start. When a run crosses
//! a budget it starts nothing more, lets the agents already running finish
//! (their records are kept), and fails with
//! [`OrchestrationError::BudgetExceeded`](super::OrchestrationError::BudgetExceeded),
//! which says which budget, its limit and what was used.
//!
//! A run nested in a step — a subgraph, an `OrchestratorAgent` over a
//! pipeline, fan-out or graph — is bounded by the runs around it too: it may
//! spend no more tokens or dollars than they had left when it started, and
//! it stops the moment it crosses that, as it would at its own budget (its
//! error says the limit was inherited). What it spent counts against the
//! runs around it — through the usage its step's output reports, or, when
//! the step failed, through what the runs nested in its attempts spent — so
//! the run whose budget it was fails naming its own budget, and a retried
//! step's failed attempts are paid for. A budget over a group bounds the
//! agents inside it as they go, not only once the group is done. Nested runs
//! started at the same moment (a fan-out's branches) each get what was left
//! then; together they may overshoot by what they spend at once, and the
//! outer run then stops at its next check.
//!
//! ```
//! use std::time::Duration;
//! use claude_agent_sdk::orchestration::RunBudget;
//!
//! let budget = RunBudget::new()
//!     .with_max_steps(200)
//!     .with_max_tokens(50_000)
//!     .with_max_cost_usd(0.50)
//!     .with_max_duration(Duration::from_secs(120));
//! assert_eq!(budget.max_steps, 200);
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::orchestration::usage::Usage;

/// The steps a graph run may take when its budget does not say: enough for
/// any graph a person draws, small enough that a loop that never ends is
/// caught in well under a second of overhead.
pub const DEFAULT_MAX_STEPS: usize = 10_000;

/// What one run may spend (see the module docs). Read from JSON, a missing
/// field takes its default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RunBudget {
    /// The most steps (node activations: one per node and loop iteration,
    /// and a map node's one more per item — a map over *n* items takes
    /// *n* + 1) the run may take. Default [`DEFAULT_MAX_STEPS`].
    pub max_steps: usize,
    /// The most tokens (input, output and cache) the run's agents may report.
    pub max_tokens: Option<u64>,
    /// The most the run's agents may report spending, in US dollars.
    pub max_cost_usd: Option<f64>,
    /// The longest the run may keep starting steps. Unlike the run's timeout
    /// (which cuts running agents short), crossing it lets running agents finish.
    #[serde(default, with = "optional_seconds")]
    pub max_duration: Option<Duration>,
}

impl Default for RunBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl RunBudget {
    /// The default budget: [`DEFAULT_MAX_STEPS`] steps, nothing else bounded.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_steps: DEFAULT_MAX_STEPS,
            max_tokens: None,
            max_cost_usd: None,
            max_duration: None,
        }
    }

    /// No bound at all (a pipeline's or fan-out's: its steps are its agents).
    pub(crate) fn unlimited() -> Self {
        Self {
            max_steps: usize::MAX,
            ..Self::new()
        }
    }

    /// Bounds the steps.
    #[must_use]
    pub fn with_max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// Bounds the tokens.
    #[must_use]
    pub fn with_max_tokens(mut self, tokens: u64) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// Bounds the cost, in US dollars.
    #[must_use]
    pub fn with_max_cost_usd(mut self, dollars: f64) -> Self {
        self.max_cost_usd = Some(dollars);
        self
    }

    /// Bounds the time during which steps may start.
    #[must_use]
    pub fn with_max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(duration);
        self
    }

    /// The first budget `spent` crosses, if any (steps and time are checked
    /// where they are counted).
    pub(crate) fn crossed_by(&self, spent: &Usage) -> Option<BudgetExceeded> {
        Allowance::of(self).crossed_by(spent)
    }
}

/// What a run may spend of tokens and dollars: its budget's bounds, and
/// for a run nested in a step, what the runs around it had left when it
/// started — it may spend no more than that either.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Allowance {
    pub(crate) tokens: Option<u64>,
    pub(crate) cost_usd: Option<f64>,
}

impl Allowance {
    /// The token and cost bounds of `budget`.
    pub(crate) fn of(budget: &RunBudget) -> Self {
        Self {
            tokens: budget.max_tokens,
            cost_usd: budget.max_cost_usd,
        }
    }

    /// The tighter of the two, bound by bound.
    pub(crate) fn min(self, other: Self) -> Self {
        Self {
            tokens: tighter(self.tokens, other.tokens, u64::min),
            cost_usd: tighter(self.cost_usd, other.cost_usd, f64::min),
        }
    }

    /// What is left of it once `spent` is spent (never less than nothing).
    pub(crate) fn left_after(self, spent: &Usage) -> Self {
        Self {
            tokens: self
                .tokens
                .map(|limit| limit.saturating_sub(spent.total_tokens())),
            cost_usd: self
                .cost_usd
                .map(|limit| (limit - spent.cost_usd.unwrap_or(0.0)).max(0.0)),
        }
    }

    /// The first bound `spent` crosses, if any.
    pub(crate) fn crossed_by(self, spent: &Usage) -> Option<BudgetExceeded> {
        if let Some(limit) = self.tokens {
            let used = spent.total_tokens();
            if used > limit {
                return Some(BudgetExceeded::new(
                    Budget::Tokens,
                    limit as f64,
                    used as f64,
                ));
            }
        }
        if let (Some(limit), Some(used)) = (self.cost_usd, spent.cost_usd) {
            if used > limit {
                return Some(BudgetExceeded::new(Budget::CostUsd, limit, used));
            }
        }
        None
    }
}

/// What the runs nested in one attempt spent, added to as they spend. The
/// attempt's run counts it as its own spending when the attempt fails (a
/// successful attempt's output reports what it spent), and a run nested
/// later in the same attempt may spend only what is left after it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally(Arc<Mutex<Usage>>);

impl Tally {
    fn lock(&self) -> MutexGuard<'_, Usage> {
        // A sum changes only by whole additions: poisoning is ignored.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `usage`; returns the new total.
    pub(crate) fn add(&self, usage: Usage) -> Usage {
        let mut total = self.lock();
        *total += usage;
        *total
    }

    /// The total so far.
    pub(crate) fn total(&self) -> Usage {
        *self.lock()
    }
}

/// One run's spending of tokens and dollars: what it may spend, what its
/// steps spent, and — for a run nested in an attempt — that attempt's tally,
/// which it adds to as well.
#[derive(Debug, Default)]
pub(crate) struct Spending {
    allowance: Allowance,
    spent: Tally,
    reports_to: Option<Tally>,
}

impl Spending {
    pub(crate) fn new(allowance: Allowance, reports_to: Option<Tally>) -> Self {
        Self {
            allowance,
            spent: Tally::default(),
            reports_to,
        }
    }

    /// Adds `usage` to what the run spent (and to the tally of the attempt
    /// it is nested in); returns the run's new total.
    pub(crate) fn add(&self, usage: Usage) -> Usage {
        if let Some(tally) = &self.reports_to {
            tally.add(usage);
        }
        self.spent.add(usage)
    }

    /// What the run spent so far.
    pub(crate) fn total(&self) -> Usage {
        self.spent.total()
    }

    /// What a run nested in one of its attempts may spend, when the runs
    /// nested in that attempt already spent `nested`.
    pub(crate) fn left_for_nested(&self, nested: &Usage) -> Allowance {
        self.allowance.left_after(&(self.total() + *nested))
    }
}

/// The tighter of two optional bounds.
fn tighter<T>(a: Option<T>, b: Option<T>, min: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(min(a, b)),
        (a, b) => a.or(b),
    }
}

/// Which budget a run crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Budget {
    /// [`RunBudget::max_steps`].
    Steps,
    /// [`RunBudget::max_tokens`].
    Tokens,
    /// [`RunBudget::max_cost_usd`].
    CostUsd,
    /// [`RunBudget::max_duration`] (limit and use in seconds).
    Duration,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Steps => "steps",
            Self::Tokens => "tokens",
            Self::CostUsd => "cost (USD)",
            Self::Duration => "duration (s)",
        })
    }
}

/// A budget a run crossed: which, its limit, what was used, and — for the
/// step limit — the node (or loop) that ran away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BudgetExceeded {
    /// Which budget.
    pub budget: Budget,
    /// Its limit.
    pub limit: f64,
    /// What the run used when it stopped.
    pub used: f64,
    /// What used it up, when one thing did (a loop that ran away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
}

impl BudgetExceeded {
    pub(crate) fn new(budget: Budget, limit: f64, used: f64) -> Self {
        Self {
            budget,
            limit,
            used,
            culprit: None,
        }
    }

    pub(crate) fn with_culprit(mut self, culprit: String) -> Self {
        self.culprit = Some(culprit);
        self
    }
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.budget == Budget::Steps && self.used <= self.limit {
            // The step limit stops a run before the step that would cross
            // it: every step allowed ran, and the next one was refused.
            let next = self.limit + 1.0;
            let allowed = if self.limit == 1.0 {
                "the one step".to_owned()
            } else {
                format!("all {} steps", self.limit)
            };
            write!(
                f,
                "the run used {allowed} its steps budget allows, and its {next}{} step was \
                 refused",
                ordinal_suffix(next)
            )?;
        } else {
            write!(
                f,
                "the run crossed its {} budget (limit {}, used {})",
                self.budget, self.limit, self.used
            )?;
        }
        if let Some(culprit) = &self.culprit {
            write!(f, ": {culprit}")?;
        }
        Ok(())
    }
}

/// The suffix of ordinal `n`: `st` for 1 and 21, `nd`, `rd`, `th`...
fn ordinal_suffix(n: f64) -> &'static str {
    let n = n.abs() as u64;
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// `Option<Duration>` as seconds.
mod optional_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        // `Duration::MAX` is written rounded up to the next `f64`: a finite
        // number of seconds past the largest duration reads back as it.
        Option::<f64>::deserialize(deserializer)?
            .map(|seconds| match Duration::try_from_secs_f64(seconds) {
                Ok(duration) => Ok(duration),
                Err(_) if seconds.is_finite() && seconds > 0.0 => Ok(Duration::MAX),
                Err(error) => Err(serde::de::Error::custom(error)),
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_limit_says_which_step_was_refused() {
        let message = BudgetExceeded::new(Budget::Steps, 5.0, 5.0).to_string();
        assert_eq!(
            message,
            "the run used all 5 steps its steps budget allows, and its 6th step was refused"
        );
        let message = BudgetExceeded::new(Budget::Steps, 1.0, 1.0).to_string();
        assert_eq!(
            message,
            "the run used the one step its steps budget allows, and its 2nd step was refused"
        );
    }

    #[test]
    fn tokens_and_cost_are_checked_against_what_was_spent() {
        let budget = RunBudget::new().with_max_tokens(100).with_max_cost_usd(1.0);
        assert_eq!(budget.crossed_by(&Usage::new(50, 50)), None);
        let over = budget.crossed_by(&Usage::new(60, 50)).unwrap();
        assert_eq!((over.budget, over.used), (Budget::Tokens, 110.0));
        let costly = budget
            .crossed_by(&Usage::new(1, 1).with_cost_usd(1.5))
            .unwrap();
        assert_eq!(costly.budget, Budget::CostUsd);
        assert!(costly.to_string().contains("cost (USD) budget"));
    }
}
