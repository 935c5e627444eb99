//! What Claude Code prints: its `result` message (the output, the usage, the
//! session) and, with `stream-json`, the messages a run reports as it goes.

use serde::Deserialize;

use super::{events, failure};
use crate::agents::delta::DeltaSink;
use crate::orchestration::{AgentOutput, Usage};

/// The `result` message of a run, as the program prints it. Only `result`
/// must have its type: a field that is `null` or of another type than
/// expected (a newer or older program) reads as absent, rather than losing
/// the result of a run that did its work.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ResultMessage {
    #[serde(default, deserialize_with = "lenient")]
    pub(super) subtype: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) is_error: bool,
    /// The HTTP status of the API call that failed, when one did.
    #[serde(default, deserialize_with = "lenient")]
    pub(super) api_error_status: Option<u16>,
    pub(super) result: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) total_cost_usd: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) cost_usd: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) usage: ResultUsage,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) num_turns: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) duration_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub(super) duration_api_ms: Option<u64>,
    #[serde(default, rename = "modelUsage", deserialize_with = "lenient")]
    pub(super) model_usage: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ResultUsage {
    #[serde(default, deserialize_with = "lenient")]
    input_tokens: u64,
    #[serde(default, deserialize_with = "lenient")]
    output_tokens: u64,
    #[serde(default, deserialize_with = "lenient")]
    cache_creation_input_tokens: u64,
    #[serde(default, deserialize_with = "lenient")]
    cache_read_input_tokens: u64,
}

/// A field's value, or its default when it is `null` or of another type.
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

impl ResultMessage {
    /// Finds the result in a `json` output: one result object, or (with
    /// `--verbose`) an array of messages ending in one.
    pub(super) fn from_json_output(stdout: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(stdout).ok()?;
        match value {
            serde_json::Value::Array(messages) => {
                messages.into_iter().rev().find_map(Self::from_value)
            }
            other => Self::from_value(other),
        }
    }

    pub(super) fn from_value(value: serde_json::Value) -> Option<Self> {
        if value.get("type").and_then(|t| t.as_str()) != Some("result") {
            return None;
        }
        Self::deserialize(value).ok()
    }

    pub(super) fn into_output(self, requested_model: Option<&str>) -> AgentOutput {
        let mut usage = Usage::new(self.usage.input_tokens, self.usage.output_tokens)
            .with_cache_tokens(
                self.usage.cache_creation_input_tokens,
                self.usage.cache_read_input_tokens,
            );
        usage.cost_usd = self.total_cost_usd.or(self.cost_usd);
        let model = self
            .model_usage
            .keys()
            .next()
            .map(|key| failure::model_id(key).to_owned())
            .or_else(|| requested_model.map(str::to_owned));
        let mut output =
            AgentOutput::new(self.result.unwrap_or_default()).with_data(serde_json::json!({
                "session_id": self.session_id,
                "subtype": self.subtype,
                "num_turns": self.num_turns,
                "duration_ms": self.duration_ms,
                "duration_api_ms": self.duration_api_ms,
                "model": model,
                "usage": usage,
            }));
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                output.metadata.insert(key.to_owned(), value);
            }
        };
        put("session_id", self.session_id);
        put("model", model);
        put("num_turns", self.num_turns.map(|n| n.to_string()));
        put("input_tokens", Some(usage.input_tokens.to_string()));
        put("output_tokens", Some(usage.output_tokens.to_string()));
        put("cost_usd", usage.cost_usd.map(|c| format!("{c:.6}")));
        output
    }
}

/// Follows a `stream-json` run line by line: reports text and events, keeps
/// the result.
pub(super) struct StreamFollower<'a> {
    pub(super) sink: DeltaSink<'a>,
    pub(super) partial: bool,
    pub(super) result: Option<ResultMessage>,
    pub(super) on_event: Option<&'a events::EventHandler>,
}

impl StreamFollower<'_> {
    pub(super) fn line(&mut self, line: &[u8]) {
        // Lines that are not JSON (a warning, say) are skipped; a run without a
        // result line is reported as unparsable at the end.
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
            return;
        };
        if let Some(handler) = self.on_event {
            for event in events::events_of(&value) {
                handler.send(&event);
            }
        }
        match value.get("type").and_then(|t| t.as_str()) {
            Some("result") => self.result = ResultMessage::from_value(value),
            Some("assistant") if !self.partial => {
                let blocks = value.pointer("/message/content").and_then(|c| c.as_array());
                for block in blocks.into_iter().flatten() {
                    if block.get("type").and_then(|t| t.as_str()) == Some("text") {
                        if let Some(text) = block.get("text").and_then(|t| t.as_str()) {
                            self.sink.send(text);
                        }
                    }
                }
            }
            Some("stream_event") if self.partial => {
                let delta = value.pointer("/event/delta");
                if delta.and_then(|d| d.get("type")).and_then(|t| t.as_str()) == Some("text_delta")
                {
                    if let Some(text) = delta.and_then(|d| d.get("text")).and_then(|t| t.as_str()) {
                        self.sink.send(text);
                    }
                }
            }
            _ => {}
        }
    }
}
