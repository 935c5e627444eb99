//! The `template` kind: a deterministic, offline agent that fills a text
//! template from its input and the outputs of agents that ran before it.
//!
//! | Placeholder | Replaced by |
//! |-------------|-------------|
//! | `{{input}}` | the input's content |
//! | `{{output.ID}}` | the latest output of the agent (or group) `ID` in this run, or "" |
//! | `{{metadata.KEY}}` | the input's metadata under `KEY`, or "" |
//!
//! Outputs come from the run's shared state, where [`crate::plan`] records
//! every step's output under `output.ID` as it succeeds.

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput, ExecutionContext, Result};

/// The state key under which the output of step `id` is kept.
#[must_use]
pub fn output_key(id: &str) -> String {
    format!("output.{id}")
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

/// Parses `template`, or says which placeholder is unknown.
///
/// # Errors
/// The text of the first placeholder that is not one of the known forms.
pub fn parse(template: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let inner = rest[open + 2..open + 2 + close].trim();
        pieces.push(match inner {
            "input" => Piece::Input,
            _ => match inner.split_once('.') {
                Some(("output", id)) if !id.is_empty() => Piece::Output(id.to_owned()),
                Some(("metadata", key)) if !key.is_empty() => Piece::Metadata(key.to_owned()),
                _ => return Err(format!("{{{{{inner}}}}}")),
            },
        });
        rest = &rest[open + 2 + close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
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
        assert_eq!(parse("{{outputs.a}}"), Err("{{outputs.a}}".into()));
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
