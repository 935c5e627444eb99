//! [`Provider`]: one HTTP back end — a pooled client, a base URL, a key, a
//! limiter and prices — shared by every agent that talks to it.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::failure::{self, ErrorDetail};
use super::limiter::{ProviderLimits, RateLimiter, RatePermit};
use super::pricing::PriceTable;
use super::sse::{SseDecoder, SseEvent};
use crate::orchestration::{AgentError, OrchestrationError, Result};

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
    /// The key as a (sensitive) header value, made once.
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
    /// A builder for a back end called `name` (used in error messages) at `base_url`.
    #[must_use]
    pub fn builder(name: impl Into<String>, base_url: impl Into<String>) -> ProviderBuilder {
        ProviderBuilder::new(name, base_url)
    }

    /// The Anthropic API, configured from the environment: the key from
    /// `ANTHROPIC_API_KEY` and the base URL from `ANTHROPIC_BASE_URL` (default
    /// `https://api.anthropic.com`).
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] when `ANTHROPIC_API_KEY` is not set,
    /// or when the base URL is not an `http(s)` URL.
    pub fn anthropic() -> Result<Self> {
        Self::anthropic_builder().build_with_key()
    }

    /// A builder for the Anthropic API, preset from the environment as
    /// [`anthropic`](Self::anthropic) is; everything can be overridden in code.
    #[must_use]
    pub fn anthropic_builder() -> ProviderBuilder {
        let mut builder = ProviderBuilder::new(
            "anthropic",
            env("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into()),
        );
        builder.api_key = env("ANTHROPIC_API_KEY");
        builder.key_env = Some("ANTHROPIC_API_KEY");
        builder
    }

    /// OpenAI's API, configured from the environment: the key from
    /// `OPENAI_API_KEY` and the base URL from `OPENAI_BASE_URL` (default
    /// `https://api.openai.com/v1`).
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] when `OPENAI_API_KEY` is not set, or
    /// when the base URL is not an `http(s)` URL.
    pub fn openai() -> Result<Self> {
        Self::openai_builder().build_with_key()
    }

    /// A builder for OpenAI's API, preset from the environment as
    /// [`openai`](Self::openai) is.
    #[must_use]
    pub fn openai_builder() -> ProviderBuilder {
        let mut builder = ProviderBuilder::new(
            "openai",
            env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
        );
        builder.api_key = env("OPENAI_API_KEY");
        builder.key_env = Some("OPENAI_API_KEY");
        builder
    }

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

/// Builds a [`Provider`].
#[derive(Clone)]
pub struct ProviderBuilder {
    name: String,
    base_url: String,
    api_key: Option<String>,
    key_env: Option<&'static str>,
    limits: ProviderLimits,
    request_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    prices: PriceTable,
    headers: Vec<(String, String)>,
}

/// Shows neither the key nor the headers' values (a gateway's own key travels
/// in one), as [`Provider`]'s `Debug` does not.
impl fmt::Debug for ProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProviderBuilder")
            .field("name", &self.name)
            .field("base_url", &failure::shown_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("key_env", &self.key_env)
            .field("limits", &self.limits)
            .field("request_timeout", &self.request_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("prices", &self.prices)
            .field("headers", &header_names)
            .finish()
    }
}

impl ProviderBuilder {
    /// A builder for a back end called `name` at `base_url`, without a key, with
    /// the default [`ProviderLimits`], a 600 s request timeout and a 10 s connect
    /// timeout.
    #[must_use]
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            key_env: None,
            limits: ProviderLimits::default(),
            request_timeout: Some(Duration::from_secs(600)),
            read_timeout: None,
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            prices: PriceTable::default(),
            headers: Vec::new(),
        }
    }

    /// Sets the base URL.
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the API key.
    #[must_use]
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Removes the API key (for local servers that want none).
    #[must_use]
    pub fn without_api_key(mut self) -> Self {
        self.api_key = None;
        self
    }

    /// Sets the limits all agents of the provider share.
    #[must_use]
    pub fn with_limits(mut self, limits: ProviderLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Bounds each request, reading the reply included (default 600 s).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Removes the bound on requests (attempt timeouts still apply).
    #[must_use]
    pub fn without_request_timeout(mut self) -> Self {
        self.request_timeout = None;
        self
    }

    /// Bounds every wait for the reply's next bytes — its head, and each chunk of
    /// a streamed body — so that a stream that stalls fails at once (with a
    /// retryable timeout) instead of at the end of the request timeout. The
    /// bound restarts with every read. Default: none, because a reply that is
    /// not streamed sends nothing until the model has finished; set it for
    /// streaming agents, above the server's keep-alive interval (Anthropic
    /// sends a `ping` event every few seconds).
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Bounds connecting (default 10 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s).
    #[must_use]
    pub fn with_pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Sets the prices agents use to cost their usage.
    #[must_use]
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Adds a header sent with every request (a gateway's own key, an
    /// organization id, a beta flag).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] for a base URL that is not `http(s)`,
    /// invalid limits, a header or key that cannot be sent, or a TLS setup that
    /// cannot be made.
    pub fn build(self) -> Result<Provider> {
        let invalid = |what: String| OrchestrationError::InvalidConfig(what);
        let url = reqwest::Url::parse(self.base_url.trim()).map_err(|e| {
            invalid(format!(
                "{}: invalid base URL `{}`: {e}",
                self.name,
                failure::shown_url(&self.base_url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "{}: the base URL `{}` is not http(s)",
                self.name,
                failure::shown_url(&self.base_url)
            )));
        }
        let limiter = RateLimiter::new(self.limits)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                invalid(format!("{}: invalid header name `{name}`: {e}", self.name))
            })?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                invalid(format!(
                    "{}: invalid value for header `{name}`: {e}",
                    self.name
                ))
            })?;
            headers.append(name, value);
        }
        let api_key = self.api_key.filter(|key| !key.trim().is_empty());
        let key_header = match &api_key {
            None => None,
            Some(key) => {
                let mut value = HeaderValue::from_str(key).map_err(|_| {
                    invalid(format!(
                        "{}: the API key contains characters a header cannot carry",
                        self.name
                    ))
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let mut client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&self.name)?)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .default_headers(headers)
            .user_agent(concat!("claude-agent-sdk-rust/", env!("CARGO_PKG_VERSION")));
        if let Some(timeout) = self.request_timeout {
            client = client.timeout(timeout);
        }
        if let Some(timeout) = self.read_timeout {
            client = client.read_timeout(timeout);
        }
        let client = client.build().map_err(|e| {
            invalid(format!(
                "{}: cannot build the HTTP client: {}",
                self.name,
                failure::error_chain(&e)
            ))
        })?;
        Ok(Provider {
            inner: Arc::new(Inner {
                name: self.name,
                base_url: url.as_str().trim_end_matches('/').to_owned(),
                api_key,
                key_header,
                key_env: self.key_env,
                client,
                limiter,
                prices: self.prices,
            }),
        })
    }

    /// Builds the provider, which must have a key.
    fn build_with_key(self) -> Result<Provider> {
        let provider = self.build()?;
        provider.require_api_key()?;
        Ok(provider)
    }
}

/// rustls with the *ring* crypto provider and the platform's certificate
/// verifier, offering HTTP/2 and HTTP/1.1. Made once per process (loading the
/// system's roots is not free) and cloned for each provider.
fn tls_config(provider: &str) -> Result<rustls::ClientConfig> {
    static SHARED: OnceLock<std::result::Result<rustls::ClientConfig, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt;
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_platform_verifier()
            .map_err(|e| e.to_string())?
            .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(config)
        })
        .clone()
        .map_err(|e| {
            OrchestrationError::InvalidConfig(format!("{provider}: cannot set up TLS: {e}"))
        })
}

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
