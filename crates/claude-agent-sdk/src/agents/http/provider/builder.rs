//! [`ProviderBuilder`]: how a [`Provider`] is made — where the back end is,
//! its key, how hard it may be pushed, its timeouts, prices and headers —
//! and the presets for Anthropic and OpenAI read from the environment.
//!
//! Settings are checked when the provider is built, not when an agent first
//! sends through it: a base URL that is not `http(s)`, limits that cannot
//! work, a header or key a request cannot carry, or a TLS setup that cannot
//! be made is an [`InvalidConfig`](OrchestrationError::InvalidConfig) error
//! from [`build`](ProviderBuilder::build), before any agent runs. A missing
//! key is not (a local server wants none), except for the presets, which
//! need one.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{Inner, Provider};
use crate::agents::http::failure;
use crate::agents::http::limiter::{ProviderLimits, RateLimiter};
use crate::agents::http::pricing::PriceTable;
use crate::orchestration::{OrchestrationError, Result};

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
