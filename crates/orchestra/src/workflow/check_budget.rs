//! Checking a `budget`: every bound given is greater than zero.

use claude_agent_sdk::orchestration::RunBudget;

use super::checker::Checker;
use super::located::Located;
use super::raw_graph::RawBudget;

/// The run budget `raw` describes; problems are left in `checker`.
pub fn check_budget(checker: &mut Checker<'_>, raw: &Located<RawBudget>) -> RunBudget {
    let raw = &raw.value;
    let mut budget = RunBudget::new();
    if let Some(cost) = &raw.max_cost_usd {
        if !(cost.value.is_finite() && cost.value > 0.0) {
            checker.error_at(
                cost.span,
                "`max_cost_usd` must be a number greater than zero",
            );
        }
        budget = budget.with_max_cost_usd(cost.value);
    }
    if let Some(tokens) = &raw.max_tokens {
        if tokens.value == 0 {
            checker.error_at(tokens.span, "`max_tokens` must be at least 1");
        }
        budget = budget.with_max_tokens(tokens.value);
    }
    if let Some(steps) = &raw.max_steps {
        if steps.value == 0 {
            checker.error_at(steps.span, "`max_steps` must be at least 1");
        }
        budget = budget.with_max_steps(usize::try_from(steps.value).unwrap_or(usize::MAX));
    }
    if let Some(timeout) = &raw.timeout {
        if timeout.value.0.is_zero() {
            checker.error_at(
                timeout.span,
                "the budget's `timeout` must be greater than zero",
            );
        }
        budget = budget.with_max_duration(timeout.value.0);
    }
    budget
}
