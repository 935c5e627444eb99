//! How HTTP failures become [`OrchestrationError`]s.
//!
//! | What happened | Error | Retried |
//! |---------------|-------|---------|
//! | 408, 409, 429, any 5xx (529 overloaded included) | `Transient`, with the `retry-after` hint | yes |
//! | any other 4xx | `AgentError` with the provider's own message | no |
//! | connection refused or reset, body cut short | `Transient` | yes |
//! | the request timed out | `Timeout` | yes |
//! | a request that cannot be built (bad URL, bad header) | `InvalidConfig` | no |

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::orchestration::{AgentError, ErrorDetails, OrchestrationError};

/// The longest `retry-after` honoured; longer hints are cut to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What a provider said about a failure, from its error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorDetail {
    /// The provider's error type or code, such as `rate_limit_error`.
    pub(crate) kind: Option<String>,
    /// The provider's message.
    pub(crate) message: String,
}

/// Whether a response with `status` is worth another attempt.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// The error for a non-success response.
pub(crate) fn status_error(
    provider: &str,
    status: StatusCode,
    detail: &ErrorDetail,
    request_id: Option<&str>,
    retry_after: Option<Duration>,
) -> OrchestrationError {
    let code = status.as_u16();
    let reason = match (code, status.canonical_reason()) {
        (529, _) => "Overloaded",
        (_, Some(reason)) => reason,
        (_, None) => "",
    };
    let mut message = format!("{provider} answered HTTP {code} {reason}");
    if let Some(kind) = &detail.kind {
        message.push_str(&format!(" ({kind})"));
    }
    message.push_str(": ");
    message.push_str(&detail.message);
    if let Some(id) = request_id {
        message.push_str(&format!(" [request id {id}]"));
    }
    let mut details = ErrorDetails::new().with_source(provider).with_status(code);
    if let Some(kind) = &detail.kind {
        details = details.with_code(kind.clone());
    }
    if let Some(id) = request_id {
        details = details.with_request_id(id);
    }
    let error = if is_retryable_status(status) {
        let error = OrchestrationError::transient(message);
        match retry_after {
            Some(delay) => error.with_retry_after(delay),
            None => error,
        }
    } else {
        OrchestrationError::AgentError(AgentError::new(message))
    };
    error.with_details(details)
}

/// `error` with the request id of the reply it was read from: an error inside
/// a 200 (an error object, an `error` event mid-stream, a stream cut short, a
/// malformed body) has no status line, but its request id is still what the
/// provider's support asks for. Details an error already carries are kept.
pub(crate) fn with_request_id(
    error: OrchestrationError,
    provider: &str,
    request_id: Option<&str>,
) -> OrchestrationError {
    let Some(id) = request_id else {
        return error;
    };
    let suffix = format!(" [request id {id}]");
    let details = || {
        ErrorDetails::new()
            .with_source(provider)
            .with_request_id(id)
    };
    match error {
        OrchestrationError::Transient {
            message,
            retry_after,
            details: None,
        } => OrchestrationError::Transient {
            message: message + &suffix,
            retry_after,
            details: Some(Box::new(details())),
        },
        OrchestrationError::AgentError(error) if error.details().is_none() => {
            OrchestrationError::AgentError(
                AgentError::new(format!("{}{suffix}", error.message())).with_details(details()),
            )
        }
        OrchestrationError::Timeout(message) => OrchestrationError::Timeout(message + &suffix),
        other => other,
    }
}

/// `url` as it may be shown: without the user name and password a base URL
/// can carry (`https://user:secret@proxy/v1` → `https://***@proxy/v1`).
/// Text that is not a URL is shown as it is.
pub(crate) fn shown_url(text: &str) -> String {
    let Ok(url) = reqwest::Url::parse(text.trim()) else {
        return text.to_owned();
    };
    if url.username().is_empty() && url.password().is_none() {
        return text.to_owned();
    }
    let mut shown = url.clone();
    // Neither fails on an http(s) URL with a host, the only kind that has
    // credentials to hide; the text is rebuilt by hand otherwise.
    if shown.set_password(None).is_ok() && shown.set_username("***").is_ok() {
        return shown.as_str().to_owned();
    }
    format!(
        "{}://***@{}",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

/// The error for a request that failed below HTTP (connecting, sending, reading).
pub(crate) fn transport_error(provider: &str, error: &reqwest::Error) -> OrchestrationError {
    // reqwest names the URL in its message, without its credentials (it
    // sends them as a header).
    let detail = error_chain(error);
    if error.is_builder() {
        OrchestrationError::InvalidConfig(format!("{provider}: cannot build the request: {detail}"))
    } else if error.is_timeout() {
        OrchestrationError::Timeout(format!("{provider}: the request timed out: {detail}"))
    } else if error.is_redirect() {
        OrchestrationError::AgentError(AgentError::new(format!(
            "{provider}: too many redirects: {detail}"
        )))
    } else if error.is_connect() {
        OrchestrationError::transient(format!("{provider}: cannot connect: {detail}"))
    } else {
        OrchestrationError::transient(format!("{provider}: the connection failed: {detail}"))
    }
}

/// A reply that could not be understood: permanent, with the start of the body.
pub(crate) fn malformed(provider: &str, what: &str, body: &[u8]) -> OrchestrationError {
    OrchestrationError::AgentError(AgentError::new(format!(
        "{provider} sent a malformed {what}: {}",
        snippet(body)
    )))
}

/// `error` and its sources, without repeating a message its source repeats.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The start of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX_CHARS: usize = 500;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut chars = text.char_indices();
    match chars.nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The error detail from a JSON error body, via `parse`, or the body itself.
pub(crate) fn error_detail(
    body: &[u8],
    parse: fn(&serde_json::Value) -> Option<ErrorDetail>,
) -> ErrorDetail {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| parse(&value))
        .unwrap_or_else(|| ErrorDetail {
            kind: None,
            message: snippet(body),
        })
}

/// The delay a server asked for: `retry-after-ms`, or `retry-after` in seconds
/// (fractions allowed) or as an HTTP date; at most [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let number = |text: &str, seconds_per_unit: f64| {
        text.parse::<f64>()
            .ok()
            .map(|n| n * seconds_per_unit)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())))
    };
    if let Some(delay) = header("retry-after-ms").and_then(|ms| number(ms, 0.001)) {
        return Some(delay);
    }
    let value = header("retry-after")?;
    number(value, 1.0).or_else(|| {
        let wait = http_date(value)? - Utc::now();
        Some(wait.to_std().unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
    })
}

/// An HTTP date in any of the three forms RFC 9110 (§5.6.7) has recipients
/// accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete
/// RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime's
/// (`Sun Nov  6 08:49:37 1994`), the last two always in UTC.
fn http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y"))
        .ok()?;
    Some(naive.and_utc())
}

/// The first of `names` present among the headers, as text.
pub(crate) fn header_text(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_reads_every_form() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.5")])),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Sun, 06 Nov 1994 08:49:37 GMT"
            )])),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "99999")])),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_map_to_retryable_or_permanent_errors() {
        let detail = ErrorDetail {
            kind: Some("rate_limit_error".into()),
            message: "slow down".into(),
        };
        let limited = status_error(
            "anthropic",
            StatusCode::TOO_MANY_REQUESTS,
            &detail,
            Some("req_1"),
            Some(Duration::from_secs(3)),
        );
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
        assert!(limited.to_string().contains(
            "HTTP 429 Too Many Requests (rate_limit_error): slow down [request id req_1]"
        ));
        let overloaded = StatusCode::from_u16(529).unwrap();
        assert!(status_error("a", overloaded, &detail, None, None)
            .to_string()
            .contains("529 Overloaded"));
        for code in [408, 409, 500, 502, 503, 504, 529] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 413, 422] {
            let error = status_error(
                "a",
                StatusCode::from_u16(code).unwrap(),
                &detail,
                None,
                None,
            );
            assert!(matches!(error, OrchestrationError::AgentError(_)), "{code}");
        }
    }

    #[test]
    fn snippets_are_short_and_never_empty() {
        assert_eq!(snippet(b"  "), "(empty body)");
        let long = "é".repeat(600);
        let cut = snippet(long.as_bytes());
        assert_eq!(cut.chars().count(), 501);
        assert!(cut.ends_with('…'));
        let detail = error_detail(b"<html>bad gateway</html>", |_| None);
        assert_eq!(detail.message, "<html>bad gateway</html>");
    }
}
