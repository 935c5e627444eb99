//! When a parallel fan-out counts as a success although some agents failed.
//!
//! By default ([`JoinPolicy::All`]) every agent must succeed. A review by five
//! models that is useful as soon as three of them answer uses
//! [`JoinPolicy::AtLeast`]; a race for the first usable answer uses
//! [`JoinPolicy::Any`]. Under a tolerant policy the run returns `Ok`, lists the
//! failures in [`OrchestratorOutput::failures`](super::OrchestratorOutput::failures)
//! and reports `is_successful() == false` whenever any agent failed.

use serde::{Deserialize, Serialize};

use crate::orchestration::errors::OrchestrationError;

/// How many agents of a parallel run must succeed for the run to return `Ok`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "min")]
#[non_exhaustive]
pub enum JoinPolicy {
    /// Every agent must succeed (the default).
    #[default]
    All,
    /// At least this many agents must succeed.
    AtLeast(usize),
    /// At least one agent must succeed.
    Any,
}

impl JoinPolicy {
    /// How many successes out of `agents` satisfy the policy.
    #[must_use]
    pub fn required_successes(self, agents: usize) -> usize {
        match self {
            Self::All => agents,
            Self::AtLeast(k) => k,
            Self::Any => 1,
        }
    }

    /// Whether `successes` out of `agents` satisfy the policy.
    #[must_use]
    pub fn is_satisfied(self, successes: usize, agents: usize) -> bool {
        successes >= self.required_successes(agents)
    }

    /// Checks that the policy can be satisfied by `agents` agents.
    pub(crate) fn validate(self, agents: usize) -> Result<(), OrchestrationError> {
        match self {
            Self::AtLeast(0) => Err(OrchestrationError::InvalidConfig(
                "join policy AtLeast(0) accepts any outcome; use AtLeast(1) or Any".into(),
            )),
            Self::AtLeast(k) if k > agents => Err(OrchestrationError::InvalidConfig(format!(
                "join policy requires {k} successes but only {agents} agent(s) were given"
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_count_successes() {
        assert!(JoinPolicy::All.is_satisfied(3, 3));
        assert!(!JoinPolicy::All.is_satisfied(2, 3));
        assert!(JoinPolicy::AtLeast(2).is_satisfied(2, 3));
        assert!(!JoinPolicy::AtLeast(2).is_satisfied(1, 3));
        assert!(JoinPolicy::Any.is_satisfied(1, 3));
        assert!(!JoinPolicy::Any.is_satisfied(0, 3));
    }

    #[test]
    fn impossible_policies_are_invalid() {
        assert!(JoinPolicy::AtLeast(4).validate(3).is_err());
        assert!(JoinPolicy::AtLeast(0).validate(3).is_err());
        assert!(JoinPolicy::AtLeast(3).validate(3).is_ok());
    }

    #[test]
    fn policy_serializes_readably() {
        let json = serde_json::to_string(&JoinPolicy::AtLeast(2)).unwrap();
        assert_eq!(json, r#"{"kind":"at_least","min":2}"#);
        let back: JoinPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, JoinPolicy::AtLeast(2));
        assert_eq!(
            serde_json::from_str::<JoinPolicy>(r#"{"kind":"any"}"#).unwrap(),
            JoinPolicy::Any
        );
    }
}
