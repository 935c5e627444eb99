//! [`ClaudeAgent`]: an agent backed by the Anthropic Messages API.

mod wire;

use std::fmt;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;

use crate::agents::delta::{DeltaHandler, DeltaSink, TextDelta};
use crate::agents::http::{with_request_id, Pricing, Provider};
use crate::agents::prompt::PromptTemplate;
use crate::orchestration::{Agent, AgentInput, AgentOutput, OrchestrationError, Result};

/// The model used unless [`ClaudeAgent::with_model`] says otherwise.
pub const DEFAULT_CLAUDE_MODEL: &str = "claude-sonnet-4-5";

/// An agent that asks Claude through the Anthropic Messages API
/// (`POST /v1/messages`).
///
/// The input becomes the user message through a [`PromptTemplate`]; the reply's
/// text becomes the output's `content`, and `data` / `metadata` carry the model,
/// the stop reason, the token [`Usage`](crate::orchestration::Usage) (under
/// `data["usage"]`, priced when a [`Pricing`] is known) and the request id.
///
/// By default the reply is streamed (server-sent events), which keeps long
/// replies clear of idle-connection timeouts; [`on_text_delta`](Self::on_text_delta)
/// reports the text as it arrives. A missing API key fails with
/// [`InvalidConfig`](OrchestrationError::InvalidConfig) before any request; for how
/// HTTP failures map to retryable and permanent errors see [the module
/// docs](crate::agents).
///
/// ```no_run
/// use claude_agent_sdk::agents::{ClaudeAgent, Provider};
/// use claude_agent_sdk::orchestration::{Agent, AgentInput};
///
/// # async fn run() -> claude_agent_sdk::orchestration::Result<()> {
/// let anthropic = Provider::anthropic()?; // ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
/// let writer = ClaudeAgent::new("writer", &anthropic)
///     .with_model("claude-sonnet-4-5")
///     .with_system_prompt("You write crisp, friendly prose.")
///     .with_max_tokens(1024)
///     .with_temperature(0.7)
///     .on_text_delta(|delta| print!("{}", delta.text));
/// let output = writer.execute(AgentInput::new("A haiku about tides")).await?;
/// println!("\n{} tokens out", output.metadata["output_tokens"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClaudeAgent {
    name: String,
    description: String,
    provider: Provider,
    model: String,
    system: Option<String>,
    template: PromptTemplate,
    max_tokens: u32,
    temperature: Option<f64>,
    stop_sequences: Vec<String>,
    stream: bool,
    on_delta: Option<DeltaHandler>,
    pricing: Option<Pricing>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for ClaudeAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaudeAgent")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl ClaudeAgent {
    /// An agent called `name` on `provider`, with the default model, 4096 max
    /// tokens, streaming on, and the input content as the user message.
    #[must_use]
    pub fn new(name: impl Into<String>, provider: &Provider) -> Self {
        Self {
            name: name.into(),
            description: "Answers with Claude (Anthropic Messages API)".into(),
            provider: provider.clone(),
            model: DEFAULT_CLAUDE_MODEL.into(),
            system: None,
            template: PromptTemplate::default(),
            max_tokens: 4096,
            temperature: None,
            stop_sequences: Vec::new(),
            stream: true,
            on_delta: None,
            pricing: None,
            extra: serde_json::Map::new(),
        }
    }

    /// An agent on a fresh [`Provider::anthropic`] (from the environment). Agents
    /// that should share a limiter and a connection pool share one provider
    /// through [`new`](Self::new) instead.
    ///
    /// # Errors
    /// As [`Provider::anthropic`]: `ANTHROPIC_API_KEY` is not set, or the base URL
    /// is invalid.
    pub fn from_env(name: impl Into<String>) -> Result<Self> {
        Ok(Self::new(name, &Provider::anthropic()?))
    }

    /// Sets the description shown to people and registries.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the model, such as `claude-sonnet-4-5` or `claude-haiku-4-5`.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets the system prompt.
    #[must_use]
    pub fn with_system_prompt(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Sets how the input becomes the user message (see [`PromptTemplate`]).
    #[must_use]
    pub fn with_prompt_template(mut self, template: PromptTemplate) -> Self {
        self.template = template;
        self
    }

    /// Appends the input's context (as JSON) to the user message when the
    /// template does not place it.
    #[must_use]
    pub fn with_context_in_prompt(mut self, include: bool) -> Self {
        self.template = self.template.with_context(include);
        self
    }

    /// Sets the most tokens the reply may have (default 4096).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the sampling temperature, from 0.0 to 1.0.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Adds a stop sequence.
    #[must_use]
    pub fn with_stop_sequence(mut self, sequence: impl Into<String>) -> Self {
        self.stop_sequences.push(sequence.into());
        self
    }

    /// Streams the reply (the default) or asks for it whole.
    #[must_use]
    pub fn with_streaming(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Reports the reply's text as it streams in (a reply asked for whole is
    /// reported as one piece).
    #[must_use]
    pub fn on_text_delta(
        mut self,
        handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delta = Some(DeltaHandler::new(handler));
        self
    }

    /// Prices this agent's usage (otherwise the provider's price table applies).
    #[must_use]
    pub fn with_pricing(mut self, pricing: Pricing) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// Adds a field to the request body as is (`top_k`, `metadata`, `thinking`…);
    /// it replaces a field the agent would set itself.
    #[must_use]
    pub fn with_extra_body(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// The model asked for.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The provider the agent talks to.
    #[must_use]
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    fn validate(&self) -> Result<()> {
        let invalid = |why: String| {
            Err(OrchestrationError::InvalidConfig(format!(
                "agent `{}`: {why}",
                self.name
            )))
        };
        if self.model.trim().is_empty() {
            return invalid("the model is empty".into());
        }
        if self.max_tokens == 0 {
            return invalid("max_tokens must be greater than zero".into());
        }
        if let Some(t) = self.temperature {
            if !(0.0..=1.0).contains(&t) {
                return invalid(format!("temperature {t} is outside 0.0..=1.0"));
            }
        }
        Ok(())
    }

    /// The request body, serialized from borrowed fields; with extra fields, via
    /// a map so that they replace the agent's own.
    fn request_body(&self, input: &AgentInput) -> Result<Vec<u8>> {
        let prompt = self.template.render(input);
        let request = wire::MessagesRequest {
            model: &self.model,
            max_tokens: self.max_tokens,
            messages: [wire::UserMessage {
                role: "user",
                content: &prompt,
            }],
            system: self.system.as_deref(),
            temperature: self.temperature,
            stop_sequences: &self.stop_sequences,
            stream: self.stream,
        };
        let encoded = if self.extra.is_empty() {
            serde_json::to_vec(&request)
        } else {
            serde_json::to_value(&request).and_then(|mut body| {
                if let serde_json::Value::Object(map) = &mut body {
                    for (key, value) in &self.extra {
                        map.insert(key.clone(), value.clone());
                    }
                }
                serde_json::to_vec(&body)
            })
        };
        encoded.map_err(|e| {
            OrchestrationError::InvalidConfig(format!(
                "agent `{}`: cannot encode the request: {e}",
                self.name
            ))
        })
    }
}

#[async_trait]
impl Agent for ClaudeAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let key = self.provider.api_key_header()?;
        self.validate()?;
        let permit = self.provider.limiter().acquire().await;
        let request = self
            .provider
            .post("v1/messages")
            .header("x-api-key", key)
            .header("anthropic-version", wire::API_VERSION)
            .header(CONTENT_TYPE, "application/json")
            .body(self.request_body(&input)?);
        let (response, request_id, permit) = self
            .provider
            .send(permit, request, &wire::WIRE)
            .await?
            .into_parts();
        let sink = DeltaSink::new(self.on_delta.as_ref(), &self.name);
        let mut reply = self
            .provider
            .read_model_reply::<wire::StreamAssembler>(response, permit, sink)
            .await
            .map_err(|error| with_request_id(error, self.provider.name(), request_id.as_deref()))?;
        reply.request_id = request_id;
        Ok(reply.into_output(&self.provider, &self.model, self.pricing))
    }
}
