//! Ready agents for real back ends, each behind a cargo feature:
//!
//! | Agent | Back end | Feature |
//! |-------|----------|---------|
//! | [`ClaudeAgent`] | the Anthropic Messages API (HTTPS, SSE streaming) | `claude` |
//! | [`OpenAiCompatibleAgent`] | `/v1/chat/completions`: OpenAI, vLLM, Ollama, llama.cpp, LM Studio… | `openai` |
//! | [`ClaudeCodeAgent`] | the Claude Code command-line program (`claude -p`) | `claude-code` |
//! | [`CommandAgent`] | any program: input on stdin, output from stdout | `process` |
//! | [`LocalModelAgent`] | a GGUF model run in-process on the CPU (candle): no key, no server | `local` |
//!
//! (`agents` turns all five on.) They implement
//! [`Agent`](crate::orchestration::Agent) like any other agent, so they plug into
//! the registry and every orchestrator unchanged, and they report failures so that
//! the orchestrators' retry machinery does the right thing:
//!
//! - rate limits (429), overload (529), server errors (500/502/503/504), dropped
//!   connections and timeouts are retryable
//!   ([`OrchestrationError::Transient`](crate::orchestration::OrchestrationError::Transient)
//!   or [`Timeout`](crate::orchestration::OrchestrationError::Timeout)), and a
//!   `retry-after` header becomes the least delay before the next attempt;
//! - 400/401/403/404 and malformed replies are permanent
//!   ([`AgentError`](crate::orchestration::OrchestrationError::AgentError)) and carry
//!   the back end's own message;
//! - a missing API key or program is an
//!   [`InvalidConfig`](crate::orchestration::OrchestrationError::InvalidConfig) error
//!   before any request is made.
//!
//! HTTP agents share a [`Provider`]: one pooled HTTP client (rustls), a base URL,
//! a key, and a [`RateLimiter`] (requests per minute and concurrent requests) that
//! every agent of the provider queues on, so a fan-out of hundreds of agents
//! against one API queues politely instead of provoking a storm of 429s.
//!
//! Every agent that knows its token usage puts a
//! [`Usage`](crate::orchestration::Usage) in its output's `data["usage"]`; a run's
//! totals come from
//! [`OrchestratorOutput::total_usage`](crate::orchestration::OrchestratorOutput::total_usage).
//!
//! Agents spawned programs run in their own process group, which is killed when
//! the attempt times out or is cancelled: no orphans. A process about to exit
//! gives the programs being stopped their grace period with
//! `wait_for_stopping_programs`, or, when it must exit at once, kills every
//! program still running or stopping with `kill_running_programs` (Unix).

#[cfg(any(
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "process",
    feature = "local"
))]
mod delta;
#[cfg(feature = "http")]
#[cfg_attr(
    not(any(feature = "claude", feature = "openai")),
    allow(dead_code, unused_imports)
)]
mod http;
#[cfg(all(feature = "subprocess", unix))]
mod open_files;
#[cfg(any(
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "local"
))]
mod prompt;
#[cfg(any(feature = "claude", feature = "openai"))]
mod reply;
#[cfg(all(feature = "subprocess", unix))]
mod stop;
#[cfg(any(
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "process"
))]
mod stream;
#[cfg(feature = "subprocess")]
mod subprocess;

#[cfg(feature = "claude")]
mod claude;
#[cfg(feature = "claude-code")]
mod claude_code;
#[cfg(feature = "process")]
mod command;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "openai")]
mod openai;

#[cfg(any(
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "process",
    feature = "local"
))]
pub use delta::TextDelta;
#[cfg(feature = "http")]
pub use http::{
    PriceTable, Pricing, Provider, ProviderBuilder, ProviderLimits, RateLimiter, RatePermit,
};
#[cfg(any(
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "local"
))]
pub use prompt::PromptTemplate;

#[cfg(feature = "claude")]
pub use claude::{ClaudeAgent, DEFAULT_CLAUDE_MODEL};
#[cfg(feature = "claude-code")]
pub use claude_code::{ClaudeCodeAgent, ClaudeCodeEvent, ClaudeCodeOutputFormat};
#[cfg(feature = "process")]
pub use command::{CommandAgent, OutputMode, StdinMode};
#[cfg(feature = "local")]
pub use local::{LocalModel, LocalModelAgent, LocalModelError};
#[cfg(all(feature = "subprocess", unix))]
pub use open_files::raise_open_files_limit;
#[cfg(feature = "openai")]
pub use openai::OpenAiCompatibleAgent;
#[cfg(all(feature = "subprocess", unix))]
pub use stop::{kill_running_programs, wait_for_stopping_programs, STOP_GRACE};
#[cfg(any(
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "process"
))]
pub use stream::{event_stream, text_delta_stream, OwnedTextDelta};
#[cfg(feature = "subprocess")]
pub use subprocess::IDEMPOTENCY_KEY_VARIABLE;

/// The code blocks of `docs/agents.md`, compiled (and the offline ones run) as
/// doctests when every agent feature is on.
#[cfg(all(
    doctest,
    feature = "claude",
    feature = "openai",
    feature = "claude-code",
    feature = "process"
))]
#[doc = include_str!("../../../../docs/agents.md")]
pub struct AgentsGuide;
