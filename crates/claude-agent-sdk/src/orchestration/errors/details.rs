//! [`ErrorDetails`]: what a back end said about a failure.
//!
//! An error's kind decides what the engine does with it (retry or give up,
//! and when); its details are for the person reading it afterwards — who
//! answered, with which status and error code, under which request id — so
//! that the failed request can be found in the provider's logs. They ride
//! along on [`Transient`](super::OrchestrationError::Transient) and
//! [`AgentError`](super::OrchestrationError::AgentError) errors and are read
//! back through every `AgentFailed` layer with
//! [`OrchestrationError::details`](super::OrchestrationError::details), but
//! never steer a retry: they know nothing of the errors that carry them.

use serde::{Deserialize, Serialize};

/// What a back end said about a failure: enough to look the request up in the
/// provider's logs or to tell a rate limit from an outage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorDetails {
    /// Who answered (a provider's name, a program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The HTTP status code, for an HTTP back end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The back end's own error code or type, such as `rate_limit_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The request id the back end gave the failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorDetails {
    /// Empty details.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets who answered.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the HTTP status code.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the back end's error code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}
