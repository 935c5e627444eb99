//! Checking a template's placeholders: every unknown one reported at its own
//! place (the n-th occurrence of its text, not the first match) with the
//! form it likely meant, `{{output.ID}}` references collected for the flow
//! checks, and a warning for `{{metadata.KEY}}` that nothing sets.

use super::checker::Checker;
use super::diagnostics::Diagnostic;
use super::located::{Located, Span};
use crate::template::{self, Piece};

/// The `{{output.ID}}` references of a template (with their places), and a
/// problem for every placeholder that is not one of the known forms; a
/// warning for a `{{metadata.KEY}}` that nothing sets.
pub(super) fn template_refs(
    checker: &mut Checker<'_>,
    written: &Located<String>,
    template: &str,
) -> Vec<(String, Option<Span>)> {
    match template::parse(template) {
        Ok(pieces) => {
            let mut refs: Vec<(String, Option<Span>)> = Vec::new();
            let mut keys: Vec<String> = Vec::new();
            for piece in pieces {
                match piece {
                    Piece::Output(id) => {
                        let before = refs.iter().filter(|(other, _)| *other == id).count();
                        let span = placeholder_span(
                            checker,
                            written.span,
                            &format!("output.{id}"),
                            before,
                        );
                        refs.push((id, span));
                    }
                    Piece::Metadata(key) if !KNOWN_METADATA.contains(&key.as_str()) => {
                        let before = keys.iter().filter(|other| **other == key).count();
                        let span = placeholder_span(
                            checker,
                            written.span,
                            &format!("metadata.{key}"),
                            before,
                        );
                        let known: Vec<String> = KNOWN_METADATA
                            .iter()
                            .map(|k| format!("`{{{{metadata.{k}}}}}`"))
                            .collect();
                        checker.warnings.push(
                            Diagnostic::new(
                                format!("`{{{{metadata.{key}}}}}` is empty: nothing sets `{key}`"),
                                span,
                            )
                            .with_help(Some(format!("orchestra sets {}", known.join(", ")))),
                        );
                        keys.push(key);
                    }
                    _ => {}
                }
            }
            refs
        }
        Err(unknown) => {
            for (index, placeholder) in unknown.iter().enumerate() {
                let before = unknown[..index]
                    .iter()
                    .filter(|other| other.text == placeholder.text)
                    .count();
                let span = placeholder_span(checker, written.span, &placeholder.text, before);
                let help = placeholder.suggestion.as_ref().map_or_else(
                    || "placeholders are {{input}}, {{output.ID}} and {{metadata.KEY}}; write \\{{ for literal braces".to_owned(),
                    |suggestion| format!("did you mean `{suggestion}`?"),
                );
                checker.error(
                    Diagnostic::new(
                        format!("unknown template placeholder `{}`", placeholder.text),
                        span,
                    )
                    .with_help(Some(help)),
                );
            }
            Vec::new()
        }
    }
}

/// The metadata keys orchestra puts on a run's input.
const KNOWN_METADATA: &[&str] = &["workflow"];

/// The place of the `nth` (from 0) occurrence of `needle` inside the value
/// written at `span` — one not followed by more of an id — or the value's
/// place when it is not written there as it is.
fn placeholder_span(
    checker: &Checker<'_>,
    span: Option<Span>,
    needle: &str,
    nth: usize,
) -> Option<Span> {
    let span = span?;
    let written = checker.source.text.get(span.start..span.end)?;
    let continues_id = |at: usize| {
        written[at..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let found = written
        .match_indices(needle)
        .filter(|(at, _)| !continues_id(at + needle.len()))
        .nth(nth);
    match found {
        Some((at, _)) => Some(Span::new(span.start + at, span.start + at + needle.len())),
        None => Some(span),
    }
}
