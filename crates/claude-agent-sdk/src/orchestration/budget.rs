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
//! pipeline, fan-out or graph, any `orchestrate` call an agent makes — is
//! bounded by the budgets of the runs around it too. What a nested run
//! spends counts in every run around it the moment it is spent, so the runs
//! nested in one run share what is left of its budget: two branches of a
//! fan-out spending at once cannot both spend the same remainder. A nested
//! run that crosses the budget of a run around it stops as it would at its
//! own (its error names the limit, and says it was not its own); the run
//! whose budget it was then fails naming its own budget. Nothing a nested
//! run spent is lost: a retried step's failed attempts are paid for, and a
//! step whose agent ran a nested orchestration but reports less usage than
//! that spent is charged what was spent (one that reports it, as an
//! `OrchestratorAgent` does, is not charged twice). A budget over a group
//! bounds the agents inside it as they go, not only once the group is done.
//!
//! Budgets are checked before each step starts — so a run started after a
//! budget around it was crossed (an agent's `orchestrate` or `run_agent`
//! call) starts nothing — and after each step ends, whether it succeeded or
//! not (a step whose router then failed is still charged); a step is not
//! retried once a budget is crossed. A resumed run counts the steps it
//! takes back as their outputs report (what runs nested in them spent
//! beyond that is not kept), so a pause does not reset a budget.
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

    /// Checks that every limit set is a bound: a cost limit must be a
    /// number of dollars, zero or more (NaN would bound nothing, as every
    /// comparison with it is false). A run checks its budget before it
    /// starts anything.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::RunBudget;
    ///
    /// assert!(RunBudget::new().with_max_cost_usd(0.0).validate().is_ok());
    /// assert!(RunBudget::new().with_max_cost_usd(f64::NAN).validate().is_err());
    /// ```
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`](super::OrchestrationError::InvalidConfig)
    /// naming the limit that is not a bound.
    pub fn validate(&self) -> crate::orchestration::Result<()> {
        match self.max_cost_usd {
            Some(dollars) if dollars.is_nan() || dollars < 0.0 => {
                Err(crate::orchestration::OrchestrationError::InvalidConfig(
                    format!("the cost budget must be zero or more US dollars, not {dollars}"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The token and dollar bounds of one run's budget.
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

    /// Whether it bounds anything.
    fn is_bounded(self) -> bool {
        self.tokens.is_some() || self.cost_usd.is_some()
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

/// A running sum of usage, shared by whoever adds to it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally(Arc<Mutex<Usage>>);

impl Tally {
    fn lock(&self) -> MutexGuard<'_, Usage> {
        // A sum changes only by whole additions: poisoning is ignored.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `usage`.
    pub(crate) fn add(&self, usage: Usage) {
        *self.lock() += usage;
    }

    /// The total so far.
    pub(crate) fn total(&self) -> Usage {
        *self.lock()
    }
}

/// One run's spending of tokens and dollars: its budget's bounds, what it
/// spent — its steps' charges, and what the runs nested in its attempts
/// spent, as they spent it — and, for a nested run, where it is nested.
#[derive(Debug, Default)]
pub(crate) struct Spending {
    allowance: Allowance,
    spent: Tally,
    within: Option<Within>,
    /// Whether this run's budget or that of any run around it bounds
    /// tokens or dollars (when none does, nothing needs checking).
    bounded: bool,
}

/// Where a nested run's spending goes too: the attempt it runs in (which
/// learns what its nested runs spent) and that attempt's run.
#[derive(Debug, Clone)]
pub(crate) struct Within {
    pub(crate) run: Arc<Spending>,
    pub(crate) attempt: Tally,
}

impl Spending {
    /// The spending of a run with `budget`, nested where `within` says.
    pub(crate) fn new(budget: &RunBudget, within: Option<Within>) -> Self {
        let allowance = Allowance::of(budget);
        let bounded =
            allowance.is_bounded() || within.as_ref().is_some_and(|within| within.run.bounded);
        Self {
            allowance,
            spent: Tally::default(),
            within,
            bounded,
        }
    }

    /// Adds `usage` to what the run spent, and to what every run around it
    /// spent (a loop up the nesting, not recursion).
    pub(crate) fn add(&self, usage: Usage) {
        self.spent.add(usage);
        let mut within = self.within.as_ref();
        while let Some(outer) = within {
            outer.attempt.add(usage);
            outer.run.spent.add(usage);
            within = outer.run.within.as_ref();
        }
    }

    /// The first budget crossed — this run's own, or that of a run around
    /// it (the error then says so) — if any.
    pub(crate) fn crossed(&self) -> Option<BudgetExceeded> {
        if !self.bounded {
            return None;
        }
        if let Some(own) = self.allowance.crossed_by(&self.spent.total()) {
            return Some(own);
        }
        let mut within = self.within.as_ref();
        while let Some(outer) = within {
            let run = &outer.run;
            if let Some(theirs) = run.allowance.crossed_by(&run.spent.total()) {
                return Some(theirs.with_culprit(INHERITED.to_owned()));
            }
            within = run.within.as_ref();
        }
        None
    }
}

/// Why a nested run crossed a budget that is not its own.
const INHERITED: &str = "the budget is that of a run around it, which the runs nested in it \
     spent past together";

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
            Self::CostUsd => "cost",
            Self::Duration => "time",
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
                self.budget,
                self.budget.amount(self.limit),
                self.budget.amount(self.used)
            )?;
        }
        if let Some(culprit) = &self.culprit {
            write!(f, ": {culprit}")?;
        }
        Ok(())
    }
}

impl Budget {
    /// `value` of this budget as people read it: `$0.25`, `1.5s`, `1200`
    /// (dollars to the hundredth of a cent, seconds to the hundredth).
    fn amount(self, value: f64) -> String {
        let trimmed = |text: String| {
            let text = text.trim_end_matches('0').trim_end_matches('.');
            if text.is_empty() || text == "-" {
                "0".to_owned()
            } else {
                text.to_owned()
            }
        };
        match self {
            Self::Steps | Self::Tokens => format!("{value}"),
            Self::CostUsd => format!("${}", trimmed(format!("{value:.4}"))),
            Self::Duration => format!("{}s", trimmed(format!("{value:.2}"))),
        }
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
    fn amounts_read_as_money_time_and_counts() {
        assert_eq!(Budget::CostUsd.amount(0.1 + 0.2), "$0.3");
        assert_eq!(Budget::CostUsd.amount(0.000_04), "$0");
        assert_eq!(Budget::Duration.amount(2.007_413_644), "2.01s");
        assert_eq!(Budget::Duration.amount(60.0), "60s");
        assert_eq!(Budget::Tokens.amount(1200.0), "1200");
    }

    #[test]
    fn tokens_and_cost_are_checked_against_what_was_spent() {
        let budget = Allowance::of(&RunBudget::new().with_max_tokens(100).with_max_cost_usd(1.0));
        assert_eq!(budget.crossed_by(&Usage::new(50, 50)), None);
        let over = budget.crossed_by(&Usage::new(60, 50)).unwrap();
        assert_eq!((over.budget, over.used), (Budget::Tokens, 110.0));
        let costly = budget
            .crossed_by(&Usage::new(1, 1).with_cost_usd(1.5))
            .unwrap();
        assert_eq!(costly.budget, Budget::CostUsd);
        assert!(
            costly
                .to_string()
                .contains("cost budget (limit $1, used $1.5)"),
            "{costly}"
        );
    }
}
