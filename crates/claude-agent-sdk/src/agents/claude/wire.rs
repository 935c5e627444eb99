//! The Anthropic Messages API wire format: the request body, the reply (JSON or
//! server-sent events), and the error body.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::agents::delta::DeltaSink;
use crate::agents::http::{malformed, ErrorDetail, ReplyFormat, SseEvent, WireErrors};
use crate::agents::reply::ModelReply;
use crate::orchestration::{AgentError, OrchestrationError, Result, Usage};

/// The API version sent in `anthropic-version`.
pub(super) const API_VERSION: &str = "2023-06-01";

/// How Anthropic reports errors: `{"type":"error","error":{"type":…,"message":…}}`
/// and a `request-id` header.
pub(super) const WIRE: WireErrors = WireErrors {
    parse: parse_error,
    request_id_headers: &["request-id", "x-request-id"],
};

/// The body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub(super) struct MessagesRequest<'a> {
    pub(super) model: &'a str,
    pub(super) max_tokens: u32,
    pub(super) messages: [UserMessage<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) system: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(super) stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
}

/// One message of the conversation.
#[derive(Debug, Serialize)]
pub(super) struct UserMessage<'a> {
    pub(super) role: &'static str,
    pub(super) content: &'a str,
}

fn parse_error(body: &serde_json::Value) -> Option<ErrorDetail> {
    let error = body.get("error")?;
    Some(ErrorDetail {
        kind: error
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_owned),
        message: error.get("message")?.as_str()?.to_owned(),
    })
}

/// Token counts as the API reports them; every field may be missing.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites the counts of `usage` that this report carries (a reply
    /// with a usage report has a usage, even if it counts nothing).
    fn apply(&self, usage: &mut Option<Usage>) {
        let usage = usage.get_or_insert_with(Usage::default);
        let set = |slot: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(&mut usage.input_tokens, self.input_tokens);
        set(&mut usage.output_tokens, self.output_tokens);
        set(
            &mut usage.cache_creation_input_tokens,
            self.cache_creation_input_tokens,
        );
        set(
            &mut usage.cache_read_input_tokens,
            self.cache_read_input_tokens,
        );
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Message {
    /// `message`, or `error` when a proxy or the API put an error in a 200.
    #[serde(rename = "type")]
    kind: Option<String>,
    error: Option<serde_json::Value>,
    id: Option<String>,
    model: Option<String>,
    content: Option<Vec<Block>>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
    usage: Option<WireUsage>,
}

impl Message {
    fn into_reply(self) -> ModelReply {
        let mut reply = ModelReply {
            message_id: self.id,
            model: self.model,
            stop_reason: self.stop_reason,
            stop_sequence: self.stop_sequence,
            ..ModelReply::default()
        };
        for block in self.content.into_iter().flatten() {
            if let Block::Text { text } = block {
                reply.text.push_str(&text);
            }
        }
        if let Some(usage) = &self.usage {
            usage.apply(&mut reply.usage);
        }
        reply
    }
}

/// A whole (non-streamed) reply. An error object in a 200 is the error it
/// reports; any other body that is not a message (of type `message`, or
/// untyped with a `content` list) is malformed: every field of a message is
/// optional, so it would otherwise read as an empty reply.
pub(super) fn parse_message(provider: &str, body: &[u8]) -> Result<ModelReply> {
    let message =
        serde_json::from_slice::<Message>(body).map_err(|_| malformed(provider, "reply", body))?;
    if message.kind.as_deref() == Some("error") || message.error.is_some() {
        return Err(reported_error(provider, message.error.as_ref()));
    }
    let is_message = match message.kind.as_deref() {
        Some(kind) => kind == "message",
        None => message.content.is_some(),
    };
    if !is_message {
        return Err(malformed(provider, "reply (not a message)", body));
    }
    Ok(message.into_reply())
}

/// Builds a reply from the events of a streamed one.
#[derive(Debug, Default)]
pub(super) struct StreamAssembler {
    reply: ModelReply,
    finished: bool,
}

#[derive(Debug, Deserialize)]
struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    message: Option<Message>,
    content_block: Option<StreamPart>,
    delta: Option<StreamPart>,
    usage: Option<WireUsage>,
    error: Option<serde_json::Value>,
}

/// A content block or a delta; the fields that do not apply stay `None`.
#[derive(Debug, Deserialize)]
struct StreamPart {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

impl StreamPart {
    /// The text, when the part is of type `kind`.
    fn text_of(part: Option<StreamPart>, kind: &str) -> Option<String> {
        part.filter(|p| p.kind.as_deref() == Some(kind))
            .and_then(|p| p.text)
    }
}

/// The Messages API's replies: streamed events assembled, or a message whole.
impl ReplyFormat for StreamAssembler {
    /// Takes one event; breaks at `message_stop`.
    fn on_event(
        &mut self,
        provider: &str,
        event: &SseEvent,
        sink: &mut DeltaSink<'_>,
    ) -> Result<ControlFlow<()>> {
        let parsed: StreamEvent<'_> = serde_json::from_str(&event.data)
            .map_err(|_| malformed(provider, "stream event", event.data.as_bytes()))?;
        match parsed.kind.as_ref() {
            "message_start" => {
                if let Some(message) = parsed.message {
                    let text = std::mem::take(&mut self.reply.text);
                    self.reply = message.into_reply();
                    self.reply.text.insert_str(0, &text);
                }
            }
            "content_block_start" => {
                if let Some(text) = StreamPart::text_of(parsed.content_block, "text") {
                    sink.send(&text);
                    self.reply.text.push_str(&text);
                }
            }
            "content_block_delta" => {
                if let Some(text) = StreamPart::text_of(parsed.delta, "text_delta") {
                    sink.send(&text);
                    self.reply.text.push_str(&text);
                }
            }
            "message_delta" => {
                if let Some(delta) = parsed.delta {
                    if delta.stop_reason.is_some() {
                        self.reply.stop_reason = delta.stop_reason;
                    }
                    if delta.stop_sequence.is_some() {
                        self.reply.stop_sequence = delta.stop_sequence;
                    }
                }
                if let Some(usage) = &parsed.usage {
                    usage.apply(&mut self.reply.usage);
                }
            }
            "message_stop" => {
                self.finished = true;
                return Ok(ControlFlow::Break(()));
            }
            "error" => return Err(reported_error(provider, parsed.error.as_ref())),
            // `ping`, `content_block_stop` and event types added later.
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The reply, if the stream reached `message_stop`.
    fn finish(self, provider: &str) -> Result<ModelReply> {
        if self.finished {
            Ok(self.reply)
        } else {
            Err(OrchestrationError::transient(format!(
                "{provider}: the reply stream ended before `message_stop`"
            )))
        }
    }

    fn parse(provider: &str, body: &[u8]) -> Result<ModelReply> {
        parse_message(provider, body)
    }
}

/// An error object inside a stream (an `error` event) or a 200 reply:
/// overload and server errors are retryable.
fn reported_error(provider: &str, error: Option<&serde_json::Value>) -> OrchestrationError {
    let text = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let kind = text("type");
    let message = format!("{provider} reported an error ({kind}): {}", text("message"));
    match kind.as_str() {
        "overloaded_error" | "api_error" | "rate_limit_error" | "timeout_error" => {
            OrchestrationError::transient(message)
        }
        _ => OrchestrationError::AgentError(AgentError::new(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: serde_json::Value) -> SseEvent {
        SseEvent {
            event: data["type"].as_str().unwrap_or("").to_owned(),
            data: data.to_string(),
        }
    }

    #[test]
    fn parses_a_whole_message() {
        let body = serde_json::json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 5}
        });
        let reply = parse_message("anthropic", body.to_string().as_bytes()).unwrap();
        assert_eq!(reply.text, "Hi!");
        assert_eq!(reply.message_id.as_deref(), Some("msg_1"));
        assert_eq!(reply.usage, Some(Usage::new(12, 3).with_cache_tokens(0, 5)));
        assert!(parse_message("anthropic", b"{\"content\": 7}").is_err());
    }

    #[test]
    fn assembles_a_stream_and_requires_its_end() {
        let events = [
            serde_json::json!({"type": "message_start", "message": {"id": "msg_2", "model": "m", "content": [], "usage": {"input_tokens": 9, "output_tokens": 1}}}),
            serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            serde_json::json!({"type": "ping"}),
            serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
            serde_json::json!({"type": "content_block_stop", "index": 0}),
            serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 7}}),
        ];
        let mut assembler = StreamAssembler::default();
        let mut sink = DeltaSink::new(None, "a");
        for e in &events {
            assert!(assembler
                .on_event("p", &event(e.clone()), &mut sink)
                .unwrap()
                .is_continue());
        }
        let stop = event(serde_json::json!({"type": "message_stop"}));
        assert!(assembler
            .on_event("p", &stop, &mut sink)
            .unwrap()
            .is_break());
        let reply = assembler.finish("p").unwrap();
        assert_eq!(reply.text, "Hello");
        assert_eq!(reply.usage, Some(Usage::new(9, 7)));
        assert_eq!(reply.stop_reason.as_deref(), Some("end_turn"));
        assert!(StreamAssembler::default()
            .finish("p")
            .unwrap_err()
            .is_retryable());
    }

    #[test]
    fn stream_errors_are_retryable_only_when_transient() {
        let overloaded = serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let invalid = serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}});
        let mut sink = DeltaSink::new(None, "a");
        let error = StreamAssembler::default()
            .on_event("p", &event(overloaded), &mut sink)
            .unwrap_err();
        assert!(error.is_retryable());
        assert!(error.to_string().contains("Overloaded"));
        let error = StreamAssembler::default()
            .on_event("p", &event(invalid), &mut sink)
            .unwrap_err();
        assert!(!error.is_retryable());
    }
}
