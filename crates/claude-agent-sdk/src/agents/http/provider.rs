//! [`Provider`]: one HTTP back end — a pooled client, a base URL, a key, a
//! limiter and prices — shared by every agent that talks to it, and how its
//! requests are sent and their replies read. How a provider is made is
//! [`ProviderBuilder`]'s.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;

use super::failure::{self, ErrorDetail};
use super::limiter::{RateLimiter, RatePermit};
use super::pricing::PriceTable;
use super::sse::{SseDecoder, SseEvent};
use crate::orchestration::{AgentError, OrchestrationError, Result};

mod builder;

pub use builder::ProviderBuilder;

/// Largest error body read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How long an error body is read for its message after the status came.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);
/// How long the end of a stream is awaited after its last event.
const STREAM_END_GRACE: Duration = Duration::from_millis(250);
/// Largest non-streamed reply accepted.
const REPLY_LIMIT: usize = 64 * 1024 * 1024;

/// One HTTP back end and the connection pool, limiter and prices its agents share.
///
/// A `Provider` is a cheap handle (`Clone` is an `Arc` bump): make one per back
/// end and hand it to every agent, so they all share one pooled HTTP client (with
/// rustls) and one [`RateLimiter`]. Each agent decides the wire format; the
/// provider only knows where the back end is and how hard it may be pushed.
///
/// ```
/// use claude_agent_sdk::agents::{Provider, ProviderLimits};
/// use std::time::Duration;
///
/// let local = Provider::builder("vllm", "http://127.0.0.1:8000/v1")
///     .with_limits(ProviderLimits::new().with_max_concurrent(16))
///     .with_request_timeout(Duration::from_secs(120))
///     .build()?;
/// assert_eq!(local.base_url(), "http://127.0.0.1:8000/v1");
/// assert!(!local.has_api_key());
/// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
/// ```
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    base_url: String,
    api_key: Option<String>,
    /// The key as a (sensitive) header value, made once (the Claude agent
    /// sends it as is; an OpenAI-compatible one as a bearer token).
    #[cfg_attr(not(feature = "claude"), allow(dead_code))]
    key_header: Option<HeaderValue>,
    key_env: Option<&'static str>,
    client: reqwest::Client,
    limiter: RateLimiter,
    prices: PriceTable,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.inner.name)
            .field("base_url", &failure::shown_url(&self.inner.base_url))
            .field(
                "api_key",
                &self.inner.api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("limits", self.inner.limiter.limits())
            .finish_non_exhaustive()
    }
}

/// A response with a success status, and the limiter slot held while it is read.
pub(crate) struct Accepted {
    pub(crate) response: reqwest::Response,
    pub(crate) request_id: Option<String>,
    _permit: RatePermit,
}

impl Accepted {
    /// The response, its request id, and the limiter slot to hold while reading it.
    pub(crate) fn into_parts(self) -> (reqwest::Response, Option<String>, RatePermit) {
        (self.response, self.request_id, self._permit)
    }
}

/// What a wire format says about its errors.
pub(crate) struct WireErrors {
    /// Extracts the provider's error type and message from a JSON error body.
    pub(crate) parse: fn(&serde_json::Value) -> Option<ErrorDetail>,
    /// Response headers that carry the request id, in order of preference.
    pub(crate) request_id_headers: &'static [&'static str],
}

impl Provider {
    /// The back end's name, as given to the builder.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The base URL, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Whether an API key is configured.
    #[must_use]
    pub fn has_api_key(&self) -> bool {
        self.inner.api_key.is_some()
    }

    /// The limiter every agent of this provider queues on.
    #[must_use]
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The configured prices.
    #[must_use]
    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    /// The key, or the error an agent that needs one returns before any request.
    pub(crate) fn require_api_key(&self) -> Result<&str> {
        self.inner.api_key.as_deref().ok_or_else(|| {
            let hint = match self.inner.key_env {
                Some(var) => format!("set {var} or pass a key with ProviderBuilder::with_api_key"),
                None => "pass a key with ProviderBuilder::with_api_key".to_owned(),
            };
            OrchestrationError::InvalidConfig(format!(
                "{} needs an API key and none is configured: {hint}",
                self.inner.name
            ))
        })
    }

    /// The key as a sensitive header value, or the error of
    /// [`require_api_key`](Self::require_api_key).
    #[cfg(feature = "claude")]
    pub(crate) fn api_key_header(&self) -> Result<HeaderValue> {
        self.require_api_key()?;
        self.inner.key_header.clone().ok_or_else(|| {
            OrchestrationError::InvalidConfig("the API key cannot be sent as a header".into())
        })
    }

    /// The key, when one is configured.
    #[cfg(feature = "openai")]
    pub(crate) fn api_key(&self) -> Option<&str> {
        self.inner.api_key.as_deref()
    }

    /// A POST request to `path` under the base URL.
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.inner.client.post(format!(
            "{}/{}",
            self.inner.base_url,
            path.trim_start_matches('/')
        ))
    }

    /// Sends `request` under `permit` (a slot of [`limiter`](Self::limiter), taken
    /// before the request is built, so that queued agents wait cheaply); a
    /// non-success status becomes the matching error (and a `retry-after` on
    /// 429/503/529 pauses the provider).
    pub(crate) async fn send(
        &self,
        permit: RatePermit,
        request: reqwest::RequestBuilder,
        wire: &WireErrors,
    ) -> Result<Accepted> {
        let response = request
            .send()
            .await
            .map_err(|error| failure::transport_error(&self.inner.name, &error))?;
        let status = response.status();
        let request_id = failure::header_text(response.headers(), wire.request_id_headers);
        if status.is_success() {
            return Ok(Accepted {
                response,
                request_id,
                _permit: permit,
            });
        }
        let retry_after = failure::retry_after(response.headers());
        if let Some(delay) = retry_after {
            if matches!(status.as_u16(), 429 | 503 | 529) {
                self.inner.limiter.pause_for(delay);
            }
        }
        // The status says what happened; the body only adds the provider's words.
        let body = read_prefix(response, ERROR_BODY_LIMIT).await;
        let detail = failure::error_detail(&body, wire.parse);
        Err(failure::status_error(
            &self.inner.name,
            status,
            &detail,
            request_id.as_deref(),
            retry_after,
        ))
    }

    /// Reads a whole (non-streamed) reply.
    pub(crate) async fn read_reply(&self, response: reqwest::Response) -> Result<Vec<u8>> {
        self.read_limited(response, REPLY_LIMIT).await
    }

    /// Feeds each server-sent event of `response` to `on_event` until it breaks
    /// (`Ok(true)`) or the stream ends (`Ok(false)`).
    pub(crate) async fn read_events(
        &self,
        mut response: reqwest::Response,
        mut on_event: impl FnMut(SseEvent) -> Result<ControlFlow<()>>,
    ) -> Result<bool> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failure::transport_error(&self.inner.name, &error))?
        {
            decoder.push(&chunk, &mut events).map_err(|why| {
                failure::malformed(&self.inner.name, "event stream", why.as_bytes())
            })?;
            for event in events.drain(..) {
                if on_event(event)?.is_break() {
                    // Read the stream's end too, so the connection goes back to
                    // the pool; a server that keeps it open loses it instead.
                    let drain = async { while let Ok(Some(_)) = response.chunk().await {} };
                    let _ = tokio::time::timeout(STREAM_END_GRACE, drain).await;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn read_limited(&self, mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failure::transport_error(&self.inner.name, &error))?
        {
            if body.len() + chunk.len() > limit {
                return Err(OrchestrationError::AgentError(AgentError::new(format!(
                    "{}: the reply is larger than {limit} bytes",
                    self.inner.name
                ))));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The first `limit` bytes of a body, or what could be read of them within
/// [`ERROR_BODY_WAIT`]: the start of an error body that is too long (a long
/// message quoting the prompt), cut short or stalled still says what went
/// wrong, and the status, already known, is not held back.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while body.len() < limit {
            let Ok(Some(chunk)) = response.chunk().await else {
                break;
            };
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    };
    let _ = tokio::time::timeout(ERROR_BODY_WAIT, read).await;
    body
}

/// Whether a response is a server-sent event stream.
pub(crate) fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}
