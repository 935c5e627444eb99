//! What a Claude Code run that reports an error means for retrying.
//!
//! Claude Code reports a failed API call as a result with `is_error: true`,
//! the HTTP status in `api_error_status` — and, surprisingly, `subtype:
//! "success"`. The status decides, as for the HTTP agents: 408, 409, 429 and
//! 5xx (529 overloaded included) are transient; any other 4xx (a bad key, a
//! bad request) repeats itself and is permanent, so a wrong key fails at once
//! instead of being retried for minutes. Without a status, a reported error
//! stays retryable (most are overloads or dropped connections), except running
//! out of turns.

use crate::orchestration::{AgentError, OrchestrationError};

/// What a result that reports an error says.
pub(super) struct Reported<'a> {
    /// The agent's name.
    pub agent: &'a str,
    /// The program, as configured.
    pub binary: &'a str,
    /// How the process ended ("exit code 1").
    pub exit: String,
    /// The result's `subtype`.
    pub subtype: Option<&'a str>,
    /// The result's text.
    pub text: &'a str,
    /// The HTTP status of the failed API call, when one failed.
    pub api_status: Option<u16>,
    /// The tail of stderr, as a suffix.
    pub stderr: &'a str,
}

/// The error for a run whose result reports a failure.
pub(super) fn reported_failure(reported: &Reported<'_>) -> OrchestrationError {
    let Reported {
        agent,
        binary,
        exit,
        subtype,
        text,
        api_status,
        stderr,
    } = reported;
    if let Some(status) = api_status {
        let message =
            format!("`{binary}`'s API request failed with HTTP {status} ({exit}): {text}{stderr}");
        return if matches!(status, 408 | 409 | 429) || *status >= 500 {
            OrchestrationError::Transient {
                message,
                retry_after: None,
                details: None,
            }
        } else {
            OrchestrationError::AgentError(AgentError::new(format!(
                "agent `{agent}`: {message} (not retried: the request itself was refused)"
            )))
        };
    }
    match subtype.unwrap_or("error") {
        "error_max_turns" => OrchestrationError::AgentError(AgentError::new(format!(
            "agent `{agent}`: `{binary}` ran out of turns (error_max_turns, {exit}): \
             {text}{stderr} (raise `max_turns` to let it go on)"
        ))),
        // An error reported as "success": the run failed.
        "success" => OrchestrationError::AgentFailed(
            (*agent).to_owned(),
            format!("`{binary}` failed ({exit}): {text}{stderr}").into(),
        ),
        other => OrchestrationError::AgentFailed(
            (*agent).to_owned(),
            format!("`{binary}` stopped with {other} ({exit}): {text}{stderr}").into(),
        ),
    }
}

/// The model id in a `modelUsage` key: `claude-opus-4-8[1m]` names the model
/// `claude-opus-4-8` used with a 1M-token context.
pub(super) fn model_id(usage_key: &str) -> &str {
    match usage_key.find('[') {
        Some(at) if usage_key.ends_with(']') && at > 0 => &usage_key[..at],
        _ => usage_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(subtype: &'static str, api_status: Option<u16>) -> OrchestrationError {
        reported_failure(&Reported {
            agent: "coder",
            binary: "claude",
            exit: "exit code 1".to_owned(),
            subtype: Some(subtype),
            text: "Invalid API key",
            api_status,
            stderr: "",
        })
    }

    #[test]
    fn a_refused_request_is_permanent_and_says_what_failed() {
        let error = reported("success", Some(401));
        assert!(!error.is_retryable());
        let text = error.to_string();
        assert!(text.contains("API request failed with HTTP 401"), "{text}");
        assert!(!text.contains("reported success"), "{text}");
    }

    #[test]
    fn overloads_and_rate_limits_are_transient() {
        for status in [408, 409, 429, 500, 529] {
            assert!(reported("success", Some(status)).is_retryable(), "{status}");
        }
    }

    #[test]
    fn without_a_status_an_error_is_retryable_but_running_out_of_turns_is_not() {
        assert!(reported("success", None).is_retryable());
        assert!(reported("error_during_execution", None).is_retryable());
        assert!(!reported("error_max_turns", None).is_retryable());
        assert!(reported("success", None)
            .to_string()
            .contains("`claude` failed (exit code 1)"));
    }

    #[test]
    fn model_ids_drop_the_context_suffix() {
        assert_eq!(model_id("claude-opus-4-8[1m]"), "claude-opus-4-8");
        assert_eq!(model_id("claude-sonnet-4-5"), "claude-sonnet-4-5");
    }
}
