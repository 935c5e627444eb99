//! Reading a workflow file's syntax: TOML or YAML into [`RawWorkflow`], with a
//! syntax or shape error turned into a [`Diagnostic`] at its place.

use super::diagnostics::{Diagnostic, Source};
use super::located::{with_format, Format, Span};
use super::raw::RawWorkflow;
use super::suggest;

/// The format a file's extension names, if any.
#[must_use]
pub fn format_of(path: &std::path::Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "toml" => Some(Format::Toml),
        "yaml" | "yml" => Some(Format::Yaml),
        _ => None,
    }
}

/// Deserializes `source` as `format`.
///
/// # Errors
/// The syntax or shape error, at its place, with the nearest valid name when a
/// field or value was misspelled.
pub fn parse(source: &Source, format: Format) -> Result<RawWorkflow, Diagnostic> {
    match format {
        Format::Toml => with_format(Format::Toml, || toml::from_str::<RawWorkflow>(&source.text))
            .map_err(|error| {
                let span = error.span().map(|range| Span::new(range.start, range.end));
                shape_error(error.message(), span)
            }),
        Format::Yaml => with_format(Format::Yaml, || {
            serde_saphyr::from_str::<RawWorkflow>(&source.text)
        })
        .map_err(|error| {
            let span = error.location().map(|location| {
                let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
                let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
                let start = source.offset_of(line, column);
                Span::new(start, start + token_len(&source.text[start..]))
            });
            shape_error(&yaml_message(&error), span)
        }),
    }
}

/// The message of a YAML error without its position prefix and snippet.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.strip_prefix("line ") {
        Some(rest) => rest
            .split_once(": ")
            .map_or(first, |(_, message)| message)
            .to_owned(),
        None => first.to_owned(),
    }
}

/// The length of the word that starts `text` (for the caret under a YAML error).
fn token_len(text: &str) -> usize {
    text.find(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ']' | '}' | '#'))
        .unwrap_or(text.len())
        .max(1)
        .min(text.len())
}

/// A diagnostic for a deserialization error, with a suggestion for an unknown
/// field or value.
fn shape_error(message: &str, span: Option<Span>) -> Diagnostic {
    let message = strip_position(message.trim()).trim_end_matches('.');
    if !(message.starts_with("unknown field") || message.starts_with("unknown variant")) {
        return Diagnostic::new(message, span);
    }
    // "unknown field `knd`, expected one of ...": the list goes to the help,
    // led by the nearest name.
    let (head, _) = message.split_once(", expected").unwrap_or((message, ""));
    let expected = suggest::expected_names(message);
    let help = suggest::quoted_name(message)
        .and_then(|typo| suggest::did_you_mean(typo, expected.iter().copied()))
        .or_else(|| {
            (!expected.is_empty()).then(|| {
                let names: Vec<String> = expected.iter().map(|n| format!("`{n}`")).collect();
                format!("expected one of {}", names.join(", "))
            })
        });
    Diagnostic::new(head, span).with_help(help)
}

/// `message` without a trailing " at line N, column M".
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(", column ") => &message[..at],
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_typos_get_a_place_and_a_suggestion() {
        let source = Source::new("w.toml", "[[agents]]\nid = \"a\"\nknd = \"template\"\n");
        let error = parse(&source, Format::Toml)
            .err()
            .unwrap_or_else(|| panic!("parsed"));
        assert_eq!(error.message, "unknown field `knd`");
        assert_eq!(error.help.as_deref(), Some("did you mean `kind`?"));
        assert_eq!(error.position(&source), Some((3, 1)));
    }

    #[test]
    fn yaml_typos_get_a_place_and_a_suggestion() {
        let source = Source::new("w.yaml", "agents:\n  - id: a\n    kind: comand\n");
        let error = parse(&source, Format::Yaml)
            .err()
            .unwrap_or_else(|| panic!("parsed"));
        assert_eq!(error.message, "unknown variant `comand`");
        assert_eq!(error.help.as_deref(), Some("did you mean `command`?"));
        assert_eq!(error.position(&source), Some((3, 11)));
    }
}
