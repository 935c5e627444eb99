//! [`PromptTemplate`]: how an [`AgentInput`] becomes the user message.

use crate::orchestration::AgentInput;

/// A template for the user message, with placeholders filled from the input.
///
/// | Placeholder | Replaced by |
/// |-------------|-------------|
/// | `{{input}}` | the input's content |
/// | `{{context}}` | the input's context as pretty-printed JSON (empty when `null`) |
/// | `{{metadata.KEY}}` | the metadata value under `KEY` (empty when absent) |
///
/// Other text, unknown placeholders included, is kept as written. Substituted text
/// is never scanned again, so an input that itself contains `{{context}}` stays as
/// it is.
///
/// With [`with_context`](Self::with_context), a non-`null` context the template
/// does not place itself is appended after the rendered text.
///
/// ```
/// use claude_agent_sdk::agents::PromptTemplate;
/// use claude_agent_sdk::orchestration::AgentInput;
///
/// let input = AgentInput::new("tides")
///     .with_context(serde_json::json!({"audience": "children"}))
///     .with_metadata("tone", "playful");
/// let template = PromptTemplate::new("Write a {{metadata.tone}} note on {{input}}.");
/// assert_eq!(template.render(&input), "Write a playful note on tides.");
///
/// let with_context = PromptTemplate::default().with_context(true);
/// assert_eq!(
///     with_context.render(&input),
///     "tides\n\nContext (JSON):\n{\n  \"audience\": \"children\"\n}"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    template: String,
    append_context: bool,
}

impl Default for PromptTemplate {
    /// `{{input}}`: the content alone.
    fn default() -> Self {
        Self::new("{{input}}")
    }
}

impl PromptTemplate {
    /// A template; see the type's documentation for the placeholders.
    #[must_use]
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
            append_context: false,
        }
    }

    /// Appends a non-`null` context the template does not place itself.
    #[must_use]
    pub fn with_context(mut self, append: bool) -> Self {
        self.append_context = append;
        self
    }

    /// The template text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// The user message for `input`.
    #[must_use]
    pub fn render(&self, input: &AgentInput) -> String {
        let mut out = String::with_capacity(self.template.len() + input.content.len());
        let mut rest = self.template.as_str();
        let mut placed_context = false;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let key = after[..close].trim();
            match key {
                "input" => out.push_str(&input.content),
                "context" => {
                    placed_context = true;
                    out.push_str(&context_json(&input.context));
                }
                _ => match key.strip_prefix("metadata.") {
                    Some(name) => {
                        if let Some(value) = input.metadata.get(name) {
                            out.push_str(value);
                        }
                    }
                    None => out.push_str(&rest[open..open + 2 + close + 2]),
                },
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        if self.append_context && !placed_context && !input.context.is_null() {
            out.push_str("\n\nContext (JSON):\n");
            out.push_str(&context_json(&input.context));
        }
        out
    }
}

fn context_json(context: &serde_json::Value) -> String {
    if context.is_null() {
        return String::new();
    }
    // A `Value` always serializes; fall back to the compact form all the same.
    serde_json::to_string_pretty(context).unwrap_or_else(|_| context.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_once_and_keeps_unknown_ones() {
        let input = AgentInput::new("say {{context}}")
            .with_context(serde_json::json!([1]))
            .with_metadata("who", "Ann");
        let t =
            PromptTemplate::new("{{ input }} to {{metadata.who}}{{metadata.none}} {{other}} {{x");
        assert_eq!(t.render(&input), "say {{context}} to Ann {{other}} {{x");
        let placed = PromptTemplate::new("{{input}} / {{context}}").with_context(true);
        assert_eq!(placed.render(&input), "say {{context}} / [\n  1\n]");
    }

    #[test]
    fn appends_context_only_when_asked_and_present() {
        let plain = AgentInput::new("q");
        assert_eq!(
            PromptTemplate::default().with_context(true).render(&plain),
            "q"
        );
        let with = plain.clone().with_context(serde_json::json!({"k": 1}));
        assert_eq!(PromptTemplate::default().render(&with), "q");
    }
}
