//! The `template` kind: a deterministic, offline agent that fills a text
//! template from its input and the outputs of agents that ran before it.
//!
//! | Placeholder | Replaced by |
//! |-------------|-------------|
//! | `{{input}}` | the input's content |
//! | `{{output.ID}}` | the latest output of the agent (or group) `ID` in this run, or "" |
//! | `{{metadata.KEY}}` | the input's metadata under `KEY`, or "" |
//!
//! `\{{` writes a literal `{{`. Outputs come from the run's shared state,
//! where [`crate::plan`] records every step's output under `output.ID` as it
//! succeeds.

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput, ExecutionContext, Result};

/// The state key under which the output of step `id` is kept.
#[must_use]
pub fn output_key(id: &str) -> String {
    format!("output.{id}")
}

/// Keeps `output` in the run's state as the latest output of step `id`, for
/// `{{output.ID}}` to read (nothing outside a run).
pub async fn keep_output(id: &str, output: &AgentOutput) {
    if let Some(ctx) = ExecutionContext::current() {
        ctx.set_state(
            output_key(id),
            serde_json::Value::String(output.content.clone()),
        )
        .await;
    }
}

/// What `{{output.ID}}` reads now, in the current run (`None` outside one,
/// or before `id` produced anything).
pub async fn kept_output(id: &str) -> Option<serde_json::Value> {
    let ctx = ExecutionContext::current()?;
    ctx.get_state(&output_key(id)).await
}

/// Puts back what `{{output.ID}}` read (see [`kept_output`]).
pub async fn restore_output(id: &str, kept: Option<serde_json::Value>) {
    if let Some(ctx) = ExecutionContext::current() {
        match kept {
            Some(value) => ctx.set_state(output_key(id), value).await,
            None => {
                ctx.remove_state(&output_key(id)).await;
            }
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as it is.
    Text(String),
    /// `{{input}}`.
    Input,
    /// `{{output.ID}}`.
    Output(String),
    /// `{{metadata.KEY}}`.
    Metadata(String),
}

/// A placeholder that is not one of the known forms, and where it starts in
/// the template (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The placeholder as written, braces included.
    pub text: String,
    /// Where it starts.
    pub offset: usize,
    /// The known form it most likely meant.
    pub suggestion: Option<String>,
}

/// Parses `template`; `\{{` is a literal `{{`.
///
/// # Errors
/// Every placeholder that is not one of the known forms, in order.
pub fn parse(template: &str) -> std::result::Result<Vec<Piece>, Vec<Unknown>> {
    let mut pieces = Vec::new();
    let mut unknown = Vec::new();
    let mut text = String::new();
    let mut at = 0;
    while let Some(found) = template[at..].find("{{") {
        let open = at + found;
        if template[..open].ends_with('\\') {
            // `\{{`: the braces as they are, without the backslash.
            text.push_str(&template[at..open - 1]);
            text.push_str("{{");
            at = open + 2;
            continue;
        }
        let Some(close) = template[open + 2..].find("}}") else {
            break;
        };
        text.push_str(&template[at..open]);
        let inner = template[open + 2..open + 2 + close].trim();
        let piece = match inner {
            "input" => Some(Piece::Input),
            _ => match inner.split_once('.') {
                Some(("output", id)) if !id.is_empty() => Some(Piece::Output(id.to_owned())),
                Some(("metadata", key)) if !key.is_empty() => Some(Piece::Metadata(key.to_owned())),
                _ => None,
            },
        };
        match piece {
            Some(piece) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
            }
            None => unknown.push(Unknown {
                text: template[open..open + 2 + close + 2].to_owned(),
                offset: open,
                suggestion: suggestion(inner),
            }),
        }
        at = open + 2 + close + 2;
    }
    text.push_str(&template[at..]);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    if unknown.is_empty() {
        Ok(pieces)
    } else {
        Err(unknown)
    }
}

/// The known form an unknown placeholder most likely meant: `{{inptu}}` →
/// `{{input}}`, `{{outputs.x}}` → `{{output.x}}`.
fn suggestion(inner: &str) -> Option<String> {
    let (head, tail) = match inner.split_once('.') {
        Some((head, tail)) => (head, Some(tail)),
        None => (inner, None),
    };
    match tail {
        None => crate::workflow::suggest_name(head, ["input"]).map(|_| "{{input}}".to_owned()),
        Some(tail) => crate::workflow::suggest_name(head, ["output", "metadata"])
            .map(|known| format!("{{{{{known}.{tail}}}}}")),
    }
}

/// The `template` agent.
#[derive(Debug, Clone)]
pub struct TemplateAgent {
    name: String,
    description: String,
    pieces: Vec<Piece>,
}

impl TemplateAgent {
    /// An agent called `name` that fills `pieces`.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        pieces: Vec<Piece>,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            pieces,
        }
    }
}

#[async_trait]
impl Agent for TemplateAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let context = ExecutionContext::current();
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Input => out.push_str(&input.content),
                Piece::Metadata(key) => {
                    out.push_str(input.metadata.get(key).map_or("", String::as_str));
                }
                Piece::Output(id) => {
                    if let Some(ctx) = &context {
                        if let Some(value) = ctx.get_state(&output_key(id)).await {
                            out.push_str(value.as_str().unwrap_or_default());
                        }
                    }
                }
            }
        }
        Ok(AgentOutput::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_placeholder() {
        let pieces =
            parse("# {{ input }}\n{{output.git-log}} {{metadata.who}} {{x").unwrap_or_default();
        assert_eq!(
            pieces,
            vec![
                Piece::Text("# ".into()),
                Piece::Input,
                Piece::Text("\n".into()),
                Piece::Output("git-log".into()),
                Piece::Text(" ".into()),
                Piece::Metadata("who".into()),
                Piece::Text(" {{x".into()),
            ]
        );
        let unknown = parse("{{outputs.a}} and {{inptu}} and {{nope}}")
            .err()
            .unwrap_or_default();
        let found: Vec<(&str, usize, Option<&str>)> = unknown
            .iter()
            .map(|u| (u.text.as_str(), u.offset, u.suggestion.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("{{outputs.a}}", 0, Some("{{output.a}}")),
                ("{{inptu}}", 18, Some("{{input}}")),
                ("{{nope}}", 32, None),
            ]
        );
    }

    #[test]
    fn a_backslash_writes_literal_braces() {
        let pieces = parse(r"\{{input}} is {{input}}").unwrap_or_default();
        assert_eq!(
            pieces,
            vec![Piece::Text("{{input}} is ".into()), Piece::Input]
        );
    }

    #[tokio::test]
    async fn fills_input_and_metadata_outside_a_run() {
        let agent = TemplateAgent::new(
            "t",
            "",
            parse("{{input}} by {{metadata.who}}{{output.none}}").unwrap_or_default(),
        );
        let output = agent
            .execute(AgentInput::new("report").with_metadata("who", "me"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.content, "report by me");
    }
}
