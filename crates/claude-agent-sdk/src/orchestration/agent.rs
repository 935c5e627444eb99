//! The [`Agent`] trait and the data that flows in and out of an agent.
//!
//! An agent is anything that turns an [`AgentInput`] into an [`AgentOutput`]
//! asynchronously: a call to an LLM, a program, a rule engine, or a whole
//! orchestration (see [`OrchestratorAgent`](super::OrchestratorAgent)). Orchestrators
//! only ever see this trait, so every agent composes with every pattern.
//!
//! ```
//! use async_trait::async_trait;
//! use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput, Result};
//!
//! struct Shout;
//!
//! #[async_trait]
//! impl Agent for Shout {
//!     fn name(&self) -> &str { "Shout" }
//!     fn description(&self) -> &str { "Upper-cases its input" }
//!     async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
//!         Ok(AgentOutput::new(input.content.to_uppercase()))
//!     }
//! }
//! # let out = tokio::runtime::Runtime::new().unwrap()
//! #     .block_on(Shout.execute(AgentInput::new("hi"))).unwrap();
//! # assert_eq!(out.content, "HI");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::orchestration::errors::{ErrorDetails, Result};

/// What an agent is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentInput {
    /// Main content or prompt for the agent.
    pub content: String,
    /// Additional structured context (JSON `null` when none was given).
    #[serde(default)]
    pub context: serde_json::Value,
    /// Free-form key-value metadata.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl AgentInput {
    /// An input with the given content, no context and no metadata.
    #[must_use]
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            context: serde_json::Value::Null,
            metadata: HashMap::new(),
        }
    }

    /// Replaces the structured context.
    #[must_use]
    pub fn with_context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    /// Adds (or replaces) one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// What an agent produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutput {
    /// Main response content.
    pub content: String,
    /// Additional structured data (JSON `null` when none was given).
    #[serde(default)]
    pub data: serde_json::Value,
    /// How confident the agent is in its answer, from 0.0 to 1.0.
    ///
    /// A value outside that range — NaN, an infinity, or a finite value set
    /// straight through this field — is *normalized* wherever it is read or
    /// written: NaN and infinities count as 0.0, finite values are clamped
    /// into `0.0..=1.0` (see [`AgentOutput::normalized_confidence`]). The
    /// engine normalizes every output an agent returns, serialization writes
    /// the normalized value, and deserialization reads `null` as 0.0, so
    /// every output that serializes reads back. A JSON output without the
    /// field has full confidence, as [`AgentOutput::new`] gives.
    #[serde(
        default = "confidence::full",
        serialize_with = "confidence::serialize",
        deserialize_with = "confidence::deserialize"
    )]
    pub confidence: f64,
    /// Free-form key-value metadata.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// An empty output with full confidence, as `AgentOutput::new("")`.
impl Default for AgentOutput {
    fn default() -> Self {
        Self::new("")
    }
}

impl AgentOutput {
    /// The confidence from which an output counts as successful.
    pub const SUCCESS_THRESHOLD: f64 = 0.5;

    /// The tokens and cost the agent reported (in `data["usage"]`), typed;
    /// `None` when it reported none.
    #[must_use]
    pub fn usage(&self) -> Option<crate::orchestration::Usage> {
        crate::orchestration::Usage::from_output(self)
    }

    /// An output with the given content and full confidence (1.0).
    #[must_use]
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            data: serde_json::Value::Null,
            confidence: 1.0,
            metadata: HashMap::new(),
        }
    }

    /// Sets the confidence, normalized (see [`normalized_confidence`](Self::normalized_confidence)).
    #[must_use]
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = confidence::normalize(confidence);
        self
    }

    /// The confidence as it counts: NaN and infinities are 0.0, finite values
    /// are clamped into `0.0..=1.0`.
    #[must_use]
    pub fn normalized_confidence(&self) -> f64 {
        confidence::normalize(self.confidence)
    }

    /// Normalizes the confidence in place (see
    /// [`normalized_confidence`](Self::normalized_confidence)).
    pub(crate) fn normalize(&mut self) {
        self.confidence = confidence::normalize(self.confidence);
    }

    /// Replaces the structured data.
    #[must_use]
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// Adds (or replaces) one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Reports what producing this output cost: puts `usage` in
    /// `data["usage"]` ([`Usage::DATA_KEY`](crate::orchestration::Usage::DATA_KEY)),
    /// where the run's totals and budgets count it from. The other fields
    /// of an object `data` stay; `data` that is not an object (nor `null`)
    /// moves under `data["value"]`. Call it after
    /// [`with_data`](Self::with_data), which replaces the whole of `data`.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{AgentOutput, Usage};
    ///
    /// let output = AgentOutput::new("answer")
    ///     .with_data(serde_json::json!({ "sources": 3 }))
    ///     .with_usage(Usage::new(1200, 300).with_cost_usd(0.0081));
    /// assert_eq!(output.usage(), Some(Usage::new(1200, 300).with_cost_usd(0.0081)));
    /// assert_eq!(output.data["sources"], 3);
    /// ```
    #[must_use]
    pub fn with_usage(mut self, usage: crate::orchestration::Usage) -> Self {
        let key = crate::orchestration::Usage::DATA_KEY;
        let usage = serde_json::to_value(usage).unwrap_or_default();
        match &mut self.data {
            serde_json::Value::Object(fields) => {
                fields.insert(key.to_owned(), usage);
            }
            serde_json::Value::Null => self.data = serde_json::json!({ key: usage }),
            other => {
                let value = other.take();
                self.data = serde_json::json!({ key: usage, "value": value });
            }
        }
        self
    }

    /// Whether the agent stands behind its answer: a
    /// [normalized](Self::normalized_confidence) confidence of at least 0.5
    /// ([`SUCCESS_THRESHOLD`](Self::SUCCESS_THRESHOLD)).
    #[must_use]
    pub fn is_successful(&self) -> bool {
        self.normalized_confidence() >= Self::SUCCESS_THRESHOLD
    }
}

/// The one place where confidence values are normalized.
mod confidence {
    use serde::{Deserialize, Deserializer, Serializer};

    /// The confidence of an output that does not say: full.
    pub(super) fn full() -> f64 {
        1.0
    }

    /// NaN and infinities become 0.0 (the agent gave no usable confidence);
    /// finite values are clamped into `0.0..=1.0`.
    pub(super) fn normalize(confidence: f64) -> f64 {
        if confidence.is_finite() {
            confidence.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
    pub(super) fn serialize<S: Serializer>(
        confidence: &f64,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(normalize(*confidence))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Option::<f64>::deserialize(deserializer).map(|value| normalize(value.unwrap_or(0.0)))
    }
}

/// A participant in an orchestration.
///
/// Implementations must be `Send + Sync`: parallel orchestration runs agents on
/// every core. Return [`OrchestrationError::AgentError`](super::OrchestrationError::AgentError)
/// (or an [`AgentError`] with `?`) for failures a retry cannot cure, and a retryable
/// error such as [`OrchestrationError::transient`](super::OrchestrationError::transient)
/// for those it can. An agent that needs the running
/// [`ExecutionContext`](super::ExecutionContext) (shared state, cancellation) gets it
/// from [`ExecutionContext::current`](super::ExecutionContext::current).
#[async_trait]
pub trait Agent: Send + Sync {
    /// The agent's name, used in traces, results and errors.
    fn name(&self) -> &str;

    /// What the agent does, for people and registries.
    fn description(&self) -> &str;

    /// Runs the agent once on one input.
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput>;

    /// This agent's own retry budget, overriding the run's
    /// [`max_retries`](super::ExecutionConfig::max_retries) (default: none, the run's applies).
    ///
    /// Precedence, highest first: a registry's [`AgentMetadata::max_retries`](super::AgentMetadata::max_retries)
    /// when the agent is executed by id, then this, then the run's config.
    fn max_retries(&self) -> Option<usize> {
        None
    }

    /// This agent's own bound on each attempt, overriding the run's
    /// [`agent_timeout`](super::ExecutionConfig::agent_timeout) (default: none, the run's applies).
    ///
    /// Precedence, highest first: a registry's [`AgentMetadata::timeout_secs`](super::AgentMetadata::timeout_secs)
    /// when the agent is executed by id, then this, then the run's config.
    fn attempt_timeout(&self) -> Option<Duration> {
        None
    }
}

/// The future [`Agent::execute`] returns (what `#[async_trait]` makes of an
/// `async fn`): wrappers that forward to another agent return that agent's
/// future as it is, instead of boxing it again.
pub(crate) type ExecuteFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<AgentOutput>> + Send + 'a>>;

/// A boxed or shared agent is an agent too, running the agent's own future
/// (not one boxed around it).
macro_rules! forward_agent {
    ($($pointer:ty),*) => {$(
        #[async_trait]
        impl<A: Agent + ?Sized> Agent for $pointer {
            fn name(&self) -> &str {
                (**self).name()
            }

            fn description(&self) -> &str {
                (**self).description()
            }

            fn execute<'life0, 'async_trait>(
                &'life0 self,
                input: AgentInput,
            ) -> ExecuteFuture<'async_trait>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                (**self).execute(input)
            }

            fn max_retries(&self) -> Option<usize> {
                (**self).max_retries()
            }

            fn attempt_timeout(&self) -> Option<Duration> {
                (**self).attempt_timeout()
            }
        }
    )*};
}

forward_agent!(Box<A>, Arc<A>);

/// Shows the agent's name and description: a struct holding
/// `Box<dyn Agent>`s can derive `Debug`.
impl std::fmt::Debug for dyn Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name())
            .field("description", &self.description())
            .finish_non_exhaustive()
    }
}

/// A permanent, domain-level failure reported by an agent.
///
/// It converts into [`OrchestrationError::AgentError`](super::OrchestrationError::AgentError),
/// which is never retried, so `?` on it inside [`Agent::execute`] ends the agent's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<Box<ErrorDetails>>,
}

impl AgentError {
    /// An error with the given message.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: None,
        }
    }

    /// Attaches what the back end said (status code, request id, …).
    #[must_use]
    pub fn with_details(mut self, details: ErrorDetails) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// The message given to [`AgentError::new`].
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the back end said, when the agent attached it.
    #[must_use]
    pub fn details(&self) -> Option<&ErrorDetails> {
        self.details.as_deref()
    }
}

impl From<String> for AgentError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for AgentError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// An agent made from a name, a description and a synchronous closure.
///
/// ```
/// use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput};
/// use claude_agent_sdk::orchestration::agent::SimpleAgent;
///
/// let agent = SimpleAgent::new("QuickAgent", "A simple agent for quick tasks", |input| {
///     Ok(AgentOutput::new(format!("Processed: {}", input.content)))
/// });
/// # let out = tokio::runtime::Runtime::new().unwrap()
/// #     .block_on(agent.execute(AgentInput::new("x"))).unwrap();
/// # assert_eq!(out.content, "Processed: x");
/// ```
#[derive(Clone)]
pub struct SimpleAgent<F> {
    name: String,
    description: String,
    handler: F,
}

impl<F> SimpleAgent<F>
where
    F: Fn(AgentInput) -> Result<AgentOutput> + Send + Sync,
{
    /// Wraps `handler` as an agent called `name`.
    #[must_use]
    pub fn new(name: impl Into<String>, description: impl Into<String>, handler: F) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            handler,
        }
    }
}

impl<F> fmt::Debug for SimpleAgent<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleAgent")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F> Agent for SimpleAgent<F>
where
    F: Fn(AgentInput) -> Result<AgentOutput> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        (self.handler)(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_given_to_an_output_is_counted_and_keeps_its_data() {
        use crate::orchestration::Usage;
        let usage = Usage::new(7, 3).with_cost_usd(0.5);
        let bare = AgentOutput::new("x").with_usage(usage);
        assert_eq!(bare.usage(), Some(usage));
        assert_eq!(bare.data, serde_json::json!({ "usage": usage }));

        let object = AgentOutput::new("x")
            .with_data(serde_json::json!({ "usage": 1, "kept": true }))
            .with_usage(usage);
        assert_eq!(object.usage(), Some(usage));
        assert_eq!(object.data["kept"], true);

        let list = AgentOutput::new("x")
            .with_data(serde_json::json!([1, 2]))
            .with_usage(usage);
        assert_eq!(list.usage(), Some(usage));
        assert_eq!(list.data["value"], serde_json::json!([1, 2]));

        let nan = AgentOutput::new("x").with_usage(Usage::new(1, 1).with_cost_usd(f64::NAN));
        assert_eq!(nan.usage().map(|usage| usage.input_tokens), Some(1));
    }

    #[test]
    fn reported_usage_reads_back_typed() {
        let output = AgentOutput::new("x").with_data(serde_json::json!({
            "usage": { "input_tokens": 12, "output_tokens": 5, "cost_usd": 0.25 }
        }));
        let usage = output.usage().unwrap_or_default();
        assert_eq!((usage.input_tokens, usage.output_tokens), (12, 5));
        assert_eq!(usage.cost_usd, Some(0.25));
        assert!(AgentOutput::new("x").usage().is_none());
    }

    #[test]
    fn builders_fill_the_public_fields() {
        let input = AgentInput::new("Research quantum computing")
            .with_context(serde_json::json!({"depth": "advanced"}))
            .with_metadata("priority", "high");
        assert_eq!(input.content, "Research quantum computing");
        assert_eq!(input.context["depth"], "advanced");
        assert_eq!(input.metadata["priority"], "high");

        let output = AgentOutput::new("done")
            .with_confidence(0.95)
            .with_data(serde_json::json!({"articles": 5}))
            .with_metadata("duration_ms", "1500");
        assert_eq!(output.confidence, 0.95);
        assert_eq!(output.data["articles"], 5);
        assert_eq!(output.metadata["duration_ms"], "1500");
    }

    #[test]
    fn confidence_decides_success_and_is_clamped() {
        assert_eq!(AgentOutput::new("x").confidence, 1.0);
        assert!(AgentOutput::new("x").with_confidence(0.5).is_successful());
        assert!(!AgentOutput::new("x").with_confidence(0.49).is_successful());
        assert_eq!(AgentOutput::new("x").with_confidence(7.0).confidence, 1.0);
        assert_eq!(AgentOutput::new("x").with_confidence(-1.0).confidence, 0.0);
        assert_eq!(
            AgentOutput::new("x").with_confidence(f64::NAN).confidence,
            0.0
        );
    }

    #[test]
    fn non_finite_confidence_is_normalized_to_zero_everywhere() {
        for odd in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut output = AgentOutput::new("x");
            output.confidence = odd; // through the public field
            assert!(!output.is_successful(), "{odd}");
            assert_eq!(output.normalized_confidence(), 0.0);
            let json = serde_json::to_string(&output).unwrap();
            let back: AgentOutput = serde_json::from_str(&json).unwrap();
            assert_eq!(back.confidence, 0.0, "{json}");
        }
        let null: AgentOutput =
            serde_json::from_str(r#"{"content": "x", "confidence": null}"#).unwrap();
        assert_eq!(null.confidence, 0.0);
        let mut high = AgentOutput::new("x");
        high.confidence = 7.0;
        assert!(high.is_successful());
        assert_eq!(high.normalized_confidence(), 1.0);
    }

    #[test]
    fn data_types_round_trip_through_json() {
        let input = AgentInput::new("a").with_metadata("k", "v");
        let json = serde_json::to_string(&input).unwrap();
        assert_eq!(serde_json::from_str::<AgentInput>(&json).unwrap(), input);
        let output = AgentOutput::new("b").with_confidence(0.7);
        let json = serde_json::to_string(&output).unwrap();
        assert_eq!(serde_json::from_str::<AgentOutput>(&json).unwrap(), output);
    }

    #[tokio::test]
    async fn boxed_and_shared_agents_are_agents() {
        let agent = SimpleAgent::new("echo", "echoes", |input| {
            Ok(AgentOutput::new(input.content))
        });
        let shared: Arc<dyn Agent> = Arc::new(agent);
        let boxed: Box<dyn Agent> = Box::new(Arc::clone(&shared));
        assert_eq!(boxed.name(), "echo");
        assert_eq!(boxed.description(), "echoes");
        let out = boxed.execute(AgentInput::new("hello")).await.unwrap();
        assert_eq!(out.content, "hello");
    }
}
