//! The OpenAI chat-completions wire format: the reply (JSON or server-sent
//! events ending in `[DONE]`) and the error bodies of the servers that speak it.

use std::ops::ControlFlow;

use serde::Deserialize;

use crate::agents::delta::DeltaSink;
use crate::agents::http::{
    is_retryable_status, malformed, ErrorDetail, ReplyFormat, SseEvent, WireErrors,
};
use crate::agents::reply::ModelReply;
use crate::orchestration::{AgentError, OrchestrationError, Result, Usage};

/// How OpenAI-compatible servers report errors, and the `x-request-id` header.
pub(super) const WIRE: WireErrors = WireErrors {
    parse: parse_error,
    request_id_headers: &["x-request-id", "request-id"],
};

/// `{"error":{"message","type","code"}}` (OpenAI, llama.cpp, LM Studio),
/// `{"error":"…"}` (Ollama), `{"message","type"}` (vLLM) or `{"detail":"…"}`.
fn parse_error(body: &serde_json::Value) -> Option<ErrorDetail> {
    let text =
        |value: Option<&serde_json::Value>| value.and_then(|v| v.as_str()).map(str::to_owned);
    let kind_of = |value: &serde_json::Value| {
        text(value.get("type")).or_else(|| {
            value.get("code").and_then(|code| match code {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        })
    };
    match body.get("error") {
        Some(serde_json::Value::String(message)) => Some(ErrorDetail {
            kind: None,
            message: message.clone(),
        }),
        Some(error @ serde_json::Value::Object(_)) => Some(ErrorDetail {
            kind: kind_of(error),
            message: text(error.get("message"))?,
        }),
        _ => {
            let message = text(body.get("message")).or_else(|| text(body.get("detail")))?;
            Some(ErrorDetail {
                kind: kind_of(body),
                message,
            })
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct CachedTokens {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<CachedTokens>,
}

impl WireUsage {
    /// OpenAI counts cached tokens inside `prompt_tokens`; [`Usage`] counts them apart.
    fn to_usage(&self) -> Usage {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        let prompt = self.prompt_tokens.unwrap_or(0);
        Usage::new(
            prompt.saturating_sub(cached),
            self.completion_tokens.unwrap_or(0),
        )
        .with_cache_tokens(0, cached.min(prompt))
    }
}

/// Message content: a string, `null`, or a list of parts.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<serde_json::Value>),
    #[default]
    Missing,
}

impl Content {
    fn push_to(&self, out: &mut String) {
        match self {
            Self::Text(text) => out.push_str(text),
            Self::Parts(parts) => {
                for part in parts {
                    if let Some(text) = part.get("text").and_then(|t| t.as_str()) {
                        out.push_str(text);
                    }
                }
            }
            Self::Missing => {}
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Content>,
}

/// One choice of a reply. A streamed chunk carries its piece in `delta`; a
/// whole reply, in `message` (some servers send both in every chunk).
#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    delta: Option<WireMessage>,
    message: Option<WireMessage>,
    finish_reason: Option<String>,
}

impl Choice {
    /// The content of this choice: the streamed piece if there is one.
    fn content(&self) -> Option<&Content> {
        self.delta
            .as_ref()
            .or(self.message.as_ref())
            .and_then(|message| message.content.as_ref())
    }
}

impl Completion {
    /// The choice a reply is made of: the first (index 0). With `n` above 1
    /// the others are ignored, streamed or not.
    fn first_choice(&self) -> Option<&Choice> {
        self.choices.iter().find(|choice| choice.index == 0)
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<serde_json::Value>,
}

/// A whole (non-streamed) reply.
pub(super) fn parse_completion(provider: &str, body: &[u8]) -> Result<ModelReply> {
    let completion: Completion =
        serde_json::from_slice(body).map_err(|_| malformed(provider, "reply", body))?;
    if let Some(error) = &completion.error {
        return Err(body_error(provider, error));
    }
    let choice = completion
        .first_choice()
        .ok_or_else(|| malformed(provider, "reply (no choices)", body))?;
    let mut reply = ModelReply {
        message_id: completion.id.clone(),
        model: completion.model.clone(),
        stop_reason: choice.finish_reason.clone(),
        usage: completion.usage.as_ref().map(WireUsage::to_usage),
        ..ModelReply::default()
    };
    if let Some(content) = choice.content() {
        content.push_to(&mut reply.text);
    }
    Ok(reply)
}

/// Builds a reply from the chunks of a streamed one.
#[derive(Debug, Default)]
pub(super) struct StreamAssembler {
    reply: ModelReply,
    done: bool,
}

/// Chat completions: streamed chunks assembled, or a completion whole.
impl ReplyFormat for StreamAssembler {
    /// Takes one event; breaks at `[DONE]`.
    fn on_event(
        &mut self,
        provider: &str,
        event: &SseEvent,
        sink: &mut DeltaSink<'_>,
    ) -> Result<ControlFlow<()>> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(ControlFlow::Break(()));
        }
        let mut chunk: Completion = serde_json::from_str(data)
            .map_err(|_| malformed(provider, "stream chunk", data.as_bytes()))?;
        if let Some(error) = &chunk.error {
            return Err(body_error(provider, error));
        }
        if self.reply.message_id.is_none() {
            self.reply.message_id = chunk.id.take();
        }
        if self.reply.model.is_none() {
            self.reply.model = chunk.model.take();
        }
        if let Some(choice) = chunk.first_choice() {
            if let Some(content) = choice.content() {
                let mut text = String::new();
                content.push_to(&mut text);
                sink.send(&text);
                self.reply.text.push_str(&text);
            }
            if let Some(reason) = &choice.finish_reason {
                self.reply.stop_reason = Some(reason.clone());
            }
        }
        if let Some(usage) = &chunk.usage {
            self.reply.usage = Some(usage.to_usage());
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The reply, if the stream reached `[DONE]` or at least a finish reason
    /// (some servers end without `[DONE]`).
    fn finish(self, provider: &str) -> Result<ModelReply> {
        if self.done || self.reply.stop_reason.is_some() {
            Ok(self.reply)
        } else {
            Err(OrchestrationError::transient(format!(
                "{provider}: the reply stream ended before it was done"
            )))
        }
    }

    fn parse(provider: &str, body: &[u8]) -> Result<ModelReply> {
        parse_completion(provider, body)
    }
}

/// An error object inside a 200 reply or a stream: server-side kinds retry,
/// whether the server names them in `type` or in `code` (OpenAI's rate
/// limits say `"code": "rate_limit_exceeded"`), and so does a numeric code
/// an HTTP status would retry (OpenRouter's `"code": 503`).
fn body_error(provider: &str, error: &serde_json::Value) -> OrchestrationError {
    let wrapped = serde_json::json!({ "error": error });
    let detail = parse_error(&wrapped).unwrap_or_else(|| ErrorDetail {
        kind: None,
        message: error.to_string(),
    });
    let kind = detail.kind.unwrap_or_default();
    let message = format!("{provider} reported an error ({kind}): {}", detail.message);
    let named: Vec<String> = ["type", "code"]
        .iter()
        .filter_map(|field| match error.get(field)? {
            serde_json::Value::String(text) => Some(text.to_ascii_lowercase()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
        .collect();
    let server_side = named.iter().any(|name| {
        let status = name
            .parse::<u16>()
            .ok()
            .and_then(|code| reqwest::StatusCode::from_u16(code).ok());
        match status {
            Some(status) => is_retryable_status(status),
            None => [
                "server",
                "overload",
                "rate_limit",
                "timeout",
                "unavailable",
                "internal",
            ]
            .iter()
            .any(|k| name.contains(k)),
        }
    });
    if server_side {
        OrchestrationError::transient(message)
    } else {
        OrchestrationError::AgentError(AgentError::new(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(value: &str) -> SseEvent {
        SseEvent {
            event: String::new(),
            data: value.to_owned(),
        }
    }

    #[test]
    fn reads_the_error_shapes_of_common_servers() {
        let cases = [
            (
                serde_json::json!({"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}}),
                Some("invalid_request_error"),
                "bad key",
            ),
            (
                serde_json::json!({"error": "model \"x\" not found"}),
                None,
                "model \"x\" not found",
            ),
            (
                serde_json::json!({"object": "error", "message": "too long", "type": "BadRequestError", "code": 400}),
                Some("BadRequestError"),
                "too long",
            ),
            (
                serde_json::json!({"detail": "Not Found"}),
                None,
                "Not Found",
            ),
            (
                serde_json::json!({"error": {"message": "m", "code": 500}}),
                Some("500"),
                "m",
            ),
        ];
        for (body, kind, message) in cases {
            let detail = parse_error(&body).unwrap();
            assert_eq!(detail.kind.as_deref(), kind);
            assert_eq!(detail.message, message);
        }
        assert_eq!(parse_error(&serde_json::json!({"ok": true})), None);
    }

    #[test]
    fn parses_a_whole_completion() {
        let body = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "llama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "prompt_tokens_details": {"cached_tokens": 4}}
        });
        let reply = parse_completion("p", body.to_string().as_bytes()).unwrap();
        assert_eq!(reply.text, "Hi");
        assert_eq!(reply.usage, Some(Usage::new(6, 2).with_cache_tokens(0, 4)));
        assert_eq!(reply.stop_reason.as_deref(), Some("stop"));
        let null_content = serde_json::json!({"choices": [{"message": {"content": null}, "finish_reason": "length"}]});
        assert_eq!(
            parse_completion("p", null_content.to_string().as_bytes())
                .unwrap()
                .text,
            ""
        );
        assert!(parse_completion("p", b"{\"choices\": []}").is_err());
        assert!(parse_completion("p", b"not json").is_err());
    }

    #[test]
    fn assembles_a_stream() {
        let mut assembler = StreamAssembler::default();
        let mut sink = DeltaSink::new(None, "a");
        let chunks = [
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
            r#"{"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
        ];
        for chunk in chunks {
            assert!(assembler
                .on_event("p", &data(chunk), &mut sink)
                .unwrap()
                .is_continue());
        }
        assert!(assembler
            .on_event("p", &data("[DONE]"), &mut sink)
            .unwrap()
            .is_break());
        let reply = assembler.finish("p").unwrap();
        assert_eq!(reply.text, "Hello");
        assert_eq!(reply.usage, Some(Usage::new(5, 2)));
        assert!(StreamAssembler::default()
            .finish("p")
            .unwrap_err()
            .is_retryable());
        let error = StreamAssembler::default()
            .on_event(
                "p",
                &data(r#"{"error":{"message":"boom","type":"server_error"}}"#),
                &mut sink,
            )
            .unwrap_err();
        assert!(error.is_retryable());
    }
}
