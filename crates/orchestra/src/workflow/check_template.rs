//! Checking a template's placeholders: every unknown one reported at its own
//! place (where its text is written after the placeholder before it, not the
//! first match) with the form it likely meant, `{{output.ID}}` references
//! collected for the flow checks, and a warning for `{{metadata.KEY}}` that
//! nothing sets.

use super::checker::Checker;
use super::diagnostics::{Diagnostic, Source};
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
    let mut places = Places::new(checker.source, written.span);
    match template::parse(template) {
        Ok(pieces) => {
            let mut refs: Vec<(String, Option<Span>)> = Vec::new();
            for piece in pieces {
                match piece {
                    Piece::Output(id) => {
                        let span = places.next(&format!("output.{id}"));
                        refs.push((id, span));
                    }
                    Piece::Metadata(key) if !KNOWN_METADATA.contains(&key.as_str()) => {
                        let span = places.next(&format!("metadata.{key}"));
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
                    }
                    _ => {}
                }
            }
            refs
        }
        Err(unknown) => {
            for placeholder in &unknown {
                let span = places.next(&placeholder.text);
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

/// Where a template's placeholders are written, found in order: each one
/// where its text next appears in the value as written (not followed by more
/// of an id), after the one before — so placing them all reads the value
/// once, however many there are. A placeholder whose text is not there (an
/// escape or a `${…}` wrote it) is placed at the whole value, as are the
/// ones after it.
struct Places<'s> {
    /// The value's place, and its text as written.
    value: Option<(Span, &'s str)>,
    /// Where the next placeholder is looked for; `None` once one was not found.
    from: Option<usize>,
}

impl<'s> Places<'s> {
    fn new(source: &'s Source, span: Option<Span>) -> Self {
        let value = span.and_then(|span| Some((span, source.text.get(span.start..span.end)?)));
        Self {
            value,
            from: Some(0),
        }
    }

    /// The place of the next placeholder, `needle` (its text or a part of it).
    fn next(&mut self, needle: &str) -> Option<Span> {
        let (span, written) = self.value?;
        let continues_id = |at: usize| {
            written[at..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        let found = self.from.and_then(|from| {
            written[from..]
                .match_indices(needle)
                .map(|(at, _)| from + at)
                .find(|&at| !continues_id(at + needle.len()))
        });
        self.from = found.map(|at| at + needle.len());
        Some(found.map_or(span, |at| {
            Span::new(span.start + at, span.start + at + needle.len())
        }))
    }
}
