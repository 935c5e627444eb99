//! Claude Code's `stream-json` messages as typed events, for
//! [`ClaudeCodeAgent::on_event`] (and, through
//! [`event_stream`](crate::agents::event_stream), a `Stream`): the
//! assistant's text, the tools it uses and what they answer, the program's
//! system messages (its start, its retries of failed API calls), and the
//! result.

use std::sync::Arc;

use super::ClaudeCodeAgent;

/// One message of a Claude Code run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClaudeCodeEvent {
    /// Text the assistant wrote.
    Text(String),
    /// The assistant asked to use a tool.
    ToolUse {
        /// The request's id (a later [`ToolResult`](Self::ToolResult) names it).
        id: String,
        /// The tool (`Bash`, `Read`, an MCP tool...).
        name: String,
        /// What the tool is asked to do.
        input: serde_json::Value,
    },
    /// A tool answered.
    ToolResult {
        /// The request it answers.
        tool_use_id: String,
        /// What it answered.
        content: serde_json::Value,
        /// Whether the tool failed.
        is_error: bool,
    },
    /// A system message: the run's start (`init`), a retry of a failed API
    /// call, and others, whole.
    System {
        /// Its `subtype` (`init`, ...).
        subtype: String,
        /// The whole message.
        message: serde_json::Value,
    },
    /// The run's result.
    Result {
        /// Its `subtype` (`success`, `error_max_turns`, ...).
        subtype: String,
        /// Whether the run failed.
        is_error: bool,
        /// The final text.
        text: Option<String>,
        /// The session, to resume with
        /// [`with_resume`](ClaudeCodeAgent::with_resume).
        session_id: Option<String>,
    },
}

/// A shared handler of events.
#[derive(Clone)]
pub(super) struct EventHandler(Arc<dyn Fn(&ClaudeCodeEvent) + Send + Sync>);

impl EventHandler {
    /// Hands `event` to the handler.
    pub(super) fn send(&self, event: &ClaudeCodeEvent) {
        (self.0)(event);
    }
}

impl std::fmt::Debug for EventHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHandler")
    }
}

/// The events one `stream-json` message carries.
pub(super) fn events_of(message: &serde_json::Value) -> Vec<ClaudeCodeEvent> {
    let text = |value: &serde_json::Value, key: &str| {
        value.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    match message.get("type").and_then(|t| t.as_str()) {
        Some("assistant" | "user") => message
            .pointer("/message/content")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .filter_map(|block| match block.get("type").and_then(|t| t.as_str()) {
                Some("text") => text(block, "text").map(ClaudeCodeEvent::Text),
                Some("tool_use") => Some(ClaudeCodeEvent::ToolUse {
                    id: text(block, "id").unwrap_or_default(),
                    name: text(block, "name").unwrap_or_default(),
                    input: block.get("input").cloned().unwrap_or_default(),
                }),
                Some("tool_result") => Some(ClaudeCodeEvent::ToolResult {
                    tool_use_id: text(block, "tool_use_id").unwrap_or_default(),
                    content: block.get("content").cloned().unwrap_or_default(),
                    is_error: block.get("is_error").and_then(serde_json::Value::as_bool)
                        == Some(true),
                }),
                _ => None,
            })
            .collect(),
        Some("system") => vec![ClaudeCodeEvent::System {
            subtype: text(message, "subtype").unwrap_or_default(),
            message: message.clone(),
        }],
        Some("result") => vec![ClaudeCodeEvent::Result {
            subtype: text(message, "subtype").unwrap_or_default(),
            is_error: message.get("is_error").and_then(serde_json::Value::as_bool) == Some(true),
            text: text(message, "result"),
            session_id: text(message, "session_id"),
        }],
        _ => Vec::new(),
    }
}

impl ClaudeCodeAgent {
    /// Reports each message of the run as a typed [`ClaudeCodeEvent`] as it
    /// comes (the run then uses `--output-format stream-json`). For a
    /// `Stream`, pass the handler of
    /// [`event_stream`](crate::agents::event_stream).
    #[must_use]
    pub fn on_event(mut self, handler: impl Fn(&ClaudeCodeEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(EventHandler(Arc::new(handler)));
        self.format = super::ClaudeCodeOutputFormat::StreamJson;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_typed_events() {
        let assistant = serde_json::json!({"type": "assistant", "message": {"content": [
            {"type": "text", "text": "Looking"},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a.rs"}}
        ]}});
        assert_eq!(
            events_of(&assistant),
            [
                ClaudeCodeEvent::Text("Looking".into()),
                ClaudeCodeEvent::ToolUse {
                    id: "toolu_1".into(),
                    name: "Read".into(),
                    input: serde_json::json!({"file_path": "a.rs"}),
                },
            ]
        );
        let result = serde_json::json!({"type": "result", "subtype": "success", "is_error": false, "result": "done", "session_id": "s"});
        assert_eq!(
            events_of(&result),
            [ClaudeCodeEvent::Result {
                subtype: "success".into(),
                is_error: false,
                text: Some("done".into()),
                session_id: Some("s".into()),
            }]
        );
    }
}
