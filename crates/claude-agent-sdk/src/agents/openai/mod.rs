//! [`OpenAiCompatibleAgent`]: an agent backed by any server that speaks OpenAI's
//! chat-completions API.

mod wire;

use std::fmt;

use async_trait::async_trait;

use crate::agents::delta::{DeltaHandler, DeltaSink, TextDelta};
use crate::agents::http::{with_request_id, Pricing, Provider};
use crate::agents::prompt::PromptTemplate;
use crate::orchestration::{Agent, AgentInput, AgentOutput, OrchestrationError, Result};

/// An agent that asks a model through `POST {base_url}/chat/completions`: OpenAI,
/// vLLM, Ollama, llama.cpp's server, LM Studio and hosted OpenAI-compatible
/// services.
///
/// The provider's base URL includes the API version, as in OpenAI's own SDKs
/// (`https://api.openai.com/v1`, `http://localhost:11434/v1` for Ollama,
/// `http://localhost:8000/v1` for vLLM). A key, when the provider has one, goes
/// in `Authorization: Bearer`; local servers need none.
///
/// The reply streams by default (with `stream_options.include_usage`, so usage
/// is reported; [`with_stream_usage`](Self::with_stream_usage) turns that off for
/// servers that reject it). The output is shaped as [`ClaudeAgent`](crate::agents::ClaudeAgent)'s:
/// the text as `content`, and model, finish reason, [`Usage`](crate::orchestration::Usage)
/// and request id in `data` and `metadata`.
///
/// ```no_run
/// use claude_agent_sdk::agents::{OpenAiCompatibleAgent, Provider};
/// use claude_agent_sdk::orchestration::{Agent, AgentInput};
///
/// # async fn run() -> claude_agent_sdk::orchestration::Result<()> {
/// let ollama = Provider::builder("ollama", "http://localhost:11434/v1").build()?;
/// let reviewer = OpenAiCompatibleAgent::new("reviewer", &ollama, "llama3.2")
///     .with_system_prompt("You review code for bugs.")
///     .with_temperature(0.2);
/// let output = reviewer.execute(AgentInput::new("fn add(a: i32, b: i32) -> i32 { a - b }")).await?;
/// println!("{}", output.content);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenAiCompatibleAgent {
    name: String,
    description: String,
    provider: Provider,
    model: String,
    system: Option<String>,
    template: PromptTemplate,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    stop: Vec<String>,
    stream: bool,
    stream_usage: bool,
    on_delta: Option<DeltaHandler>,
    pricing: Option<Pricing>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for OpenAiCompatibleAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatibleAgent")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatibleAgent {
    /// An agent called `name` asking `model` on `provider`, streaming, with the
    /// input content as the user message.
    #[must_use]
    pub fn new(name: impl Into<String>, provider: &Provider, model: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: "Answers with a model behind an OpenAI-compatible API".into(),
            provider: provider.clone(),
            model: model.into(),
            system: None,
            template: PromptTemplate::default(),
            max_tokens: None,
            temperature: None,
            stop: Vec::new(),
            stream: true,
            stream_usage: true,
            on_delta: None,
            pricing: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Replaces the model (as [`ClaudeAgent::with_model`](crate::agents::ClaudeAgent::with_model)
    /// does; `new` takes one because an OpenAI-compatible server has no default).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets the description shown to people and registries.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the system message.
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

    /// Sets `max_tokens` (not sent unless set).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the sampling temperature, from 0.0 to 2.0.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Adds a stop sequence.
    #[must_use]
    pub fn with_stop_sequence(mut self, sequence: impl Into<String>) -> Self {
        self.stop.push(sequence.into());
        self
    }

    /// Streams the reply (the default) or asks for it whole.
    #[must_use]
    pub fn with_streaming(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Asks a streamed reply to end with its usage (the default), through
    /// `stream_options.include_usage`.
    #[must_use]
    pub fn with_stream_usage(mut self, include: bool) -> Self {
        self.stream_usage = include;
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

    /// Adds a field to the request body as is (`top_p`, `seed`,
    /// `max_completion_tokens`…); it replaces a field the agent would set itself.
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
        if self.max_tokens == Some(0) {
            return invalid("max_tokens must be greater than zero".into());
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return invalid(format!("temperature {t} is outside 0.0..=2.0"));
            }
        }
        Ok(())
    }

    fn request_body(&self, input: &AgentInput) -> serde_json::Value {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.system {
            messages.push(serde_json::json!({ "role": "system", "content": system }));
        }
        messages
            .push(serde_json::json!({ "role": "user", "content": self.template.render(input) }));
        let mut body = serde_json::Map::new();
        body.insert("model".into(), self.model.clone().into());
        body.insert("messages".into(), messages.into());
        if let Some(max_tokens) = self.max_tokens {
            body.insert("max_tokens".into(), max_tokens.into());
        }
        if let Some(temperature) = self.temperature {
            body.insert("temperature".into(), temperature.into());
        }
        if !self.stop.is_empty() {
            body.insert("stop".into(), self.stop.clone().into());
        }
        if self.stream {
            body.insert("stream".into(), true.into());
            if self.stream_usage {
                body.insert(
                    "stream_options".into(),
                    serde_json::json!({ "include_usage": true }),
                );
            }
        }
        for (key, value) in &self.extra {
            body.insert(key.clone(), value.clone());
        }
        serde_json::Value::Object(body)
    }
}

#[async_trait]
impl Agent for OpenAiCompatibleAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.validate()?;
        let permit = self.provider.limiter().acquire().await;
        let mut request = self
            .provider
            .post("chat/completions")
            .json(&self.request_body(&input));
        if let Some(key) = self.provider.api_key() {
            request = request.bearer_auth(key);
        }
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
