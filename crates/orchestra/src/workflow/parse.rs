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
            serde_saphyr::from_str_with_options::<RawWorkflow>(&source.text, yaml_options())
        })
        .map_err(|error| {
            let span = error.location().map(|location| {
                let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
                let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
                let start = source.offset_of(line, column);
                Span::new(start, start + token_len(&source.text[start..]))
            });
            let diagnostic = shape_error(&yaml_message(&error), span);
            match span {
                Some(span) if diagnostic.help.is_none() => {
                    let hint = unclosed_bracket_hint(source, span.start);
                    diagnostic.with_help(hint)
                }
                _ => diagnostic,
            }
        }),
    }
}

/// How deep the TOML reader nests arrays and inline tables (its limit,
/// not one of ours: the `toml` crate refuses a file nested deeper).
pub const TOML_NESTING: usize = 80;

/// How deep the YAML reader nests sequences and mappings: the TOML reader's
/// limit, plus the two levels YAML writes as mappings where TOML writes a
/// table header (the document's and `flow:`'s), so that groups written in
/// place nest as deep in both formats. TOML counts two levels per group
/// written in place (its `{ … }` and its list of steps), and YAML the same
/// two; the rounding makes the bound the same, in `flow` and in a group of
/// `groups` (where YAML has one more level of its own: the list `groups:`).
pub const YAML_NESTING: usize = TOML_NESTING + 2;

/// How many groups written in place can nest inside one another, in the
/// group (root flow or named group) that holds them: two levels of the
/// reader's nesting per group, the holding group's list of steps one more.
pub const INLINE_GROUPS: usize = TOML_NESTING / 2 - 1;

/// The YAML reader's options: its nesting bounded as the TOML reader's is.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = YAML_NESTING;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// What a file nested deeper than its reader allows is told, in TOML and
/// YAML alike.
fn too_deep() -> (String, Option<String>) {
    (
        format!(
            "groups written in place nest more than {INLINE_GROUPS} levels deep (each \
             takes two of the {TOML_NESTING} levels of lists and tables a file may nest)"
        ),
        Some(format!(
            "name inner groups in `groups` and refer to them by id (named groups nest \
             up to {} levels)",
            super::check_flow::MAX_DEPTH
        )),
    )
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

/// Whether `text` is well-formed YAML, whatever its shape: a value of the
/// wrong type or an unknown key is fine here, an unclosed bracket is not.
pub(super) fn yaml_is_well_formed(text: &str) -> bool {
    with_format(Format::Yaml, || {
        serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(text, yaml_options()).is_ok()
    })
}

/// The hint for a YAML error at byte `error` when a `[` or `{` opened before
/// it is never closed: a parser notices an unclosed bracket only lines later,
/// at a `:` that cannot be inside it. A file whose syntax is sound has no such
/// bracket, so a value of the wrong type in a list (`[a, 5]`) gets no hint.
fn unclosed_bracket_hint(source: &Source, error: usize) -> Option<String> {
    if yaml_is_well_formed(&source.text) {
        return None;
    }
    let open = unclosed_bracket(&source.text, error)?;
    let (line, column) = source.line_col(open);
    let (opener, closer) = if source.text[open..].starts_with('[') {
        ('[', ']')
    } else {
        ('{', '}')
    };
    Some(format!(
        "the `{opener}` on line {line}, column {column} is never closed: add `{closer}` where its items end"
    ))
}

/// Where the last `[` or `{` opened before byte `error` of YAML `text` was
/// opened, if nothing in the whole text closes it.
fn unclosed_bracket(text: &str, error: usize) -> Option<usize> {
    brackets(text)
        .into_iter()
        .rev()
        .find(|&(at, closed)| at < error && !closed)
        .map(|(at, _)| at)
}

/// Where the reading of YAML text stands: in plain text, in a quoted scalar
/// (just after a `\` in a double-quoted one), or in a comment.
#[derive(Clone, Copy)]
enum Lexeme {
    Plain,
    Quoted(char),
    Escaped,
    Comment,
}

/// Every `[` and `{` of YAML `text` outside quoted scalars and comments, in
/// file order: where it opens, and whether a later `]` or `}` closes it.
fn brackets(text: &str) -> Vec<(usize, bool)> {
    let mut found: Vec<(usize, bool)> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut state = Lexeme::Plain;
    let mut previous = '\n';
    for (at, c) in text.char_indices() {
        // A quote opens a scalar only where a value starts (the one in
        // `it's` is text), and `#` starts a comment only after a space.
        let value_starts = previous.is_whitespace() || matches!(previous, '[' | '{' | ',');
        previous = c;
        state = match (state, c) {
            (Lexeme::Comment, '\n') => Lexeme::Plain,
            (Lexeme::Comment, _) => Lexeme::Comment,
            (Lexeme::Escaped, _) => Lexeme::Quoted('"'),
            (Lexeme::Quoted('"'), '\\') => Lexeme::Escaped,
            (Lexeme::Quoted(quote), c) if c == quote => Lexeme::Plain,
            (Lexeme::Quoted(quote), _) => Lexeme::Quoted(quote),
            (Lexeme::Plain, '#') if value_starts => Lexeme::Comment,
            (Lexeme::Plain, '"' | '\'') if value_starts => Lexeme::Quoted(c),
            (Lexeme::Plain, '[' | '{') => {
                open.push(found.len());
                found.push((at, false));
                Lexeme::Plain
            }
            (Lexeme::Plain, ']' | '}') => {
                if let Some(index) = open.pop() {
                    found[index].1 = true;
                }
                Lexeme::Plain
            }
            (Lexeme::Plain, _) => Lexeme::Plain,
        };
    }
    found
}

/// The length of the word that starts `text` (for the caret under a YAML error).
fn token_len(text: &str) -> usize {
    text.find(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ']' | '}' | '#'))
        .unwrap_or(text.len())
        .max(1)
        .min(text.len())
}

/// A parser's message in the workflow's words: no Rust type names, no
/// options of the parser, no 309-digit numbers.
fn plain_words(message: &str) -> (String, Option<String>) {
    if let Some(key) = message
        .strip_prefix("duplicate mapping key: ")
        .map(|rest| rest.split(',').next().unwrap_or(rest).trim())
    {
        return (
            format!("`{key}` is given twice"),
            Some("keep one of them".to_owned()),
        );
    }
    if message.contains("from_str_multiple") {
        return (
            "the file holds more than one YAML document".to_owned(),
            Some("keep one: remove the `---` lines that start the others".to_owned()),
        );
    }
    if message.contains("max recursion depth met") || message.starts_with("budget breached: Depth")
    {
        return too_deep();
    }
    let mut text = message.replace(" as i128", "").replace(" as u128", "");
    for (rust, words) in [
        ("invalid u8", "not a whole number from 0 to 255"),
        ("invalid u16", "not a whole number from 0 to 65535"),
        ("invalid u32", "not a whole number from 0 to 4294967295"),
        ("invalid u64", "not a whole number, 0 or more"),
        ("invalid usize", "not a whole number, 0 or more"),
        ("invalid i64", "not a whole number"),
        ("invalid f64", "not a number"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
    ] {
        if let Some(at) = text.find(rust) {
            let end = at + rust.len();
            let whole_word = !text[end..].starts_with(|c: char| c.is_ascii_alphanumeric());
            if whole_word {
                text.replace_range(at..end, words);
            }
        }
    }
    (shorten_numbers(&text), None)
}

/// `text` with every run of more than 15 digits written in scientific
/// notation (`1e308`, not 309 digits).
fn shorten_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let digits = &rest[start..];
        let end = digits
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(digits.len());
        let number = &digits[..end];
        match number.parse::<f64>() {
            Ok(value) if number.len() > 15 => out.push_str(&format!("{value:e}")),
            _ => out.push_str(number),
        }
        rest = &digits[end..];
    }
    out.push_str(rest);
    out
}

/// A diagnostic for a deserialization error, with a suggestion for an unknown
/// field or value.
fn shape_error(message: &str, span: Option<Span>) -> Diagnostic {
    let message = strip_position(message.trim()).trim_end_matches('.');
    let (plain, help) = plain_words(message);
    if help.is_some() || plain != message {
        return Diagnostic::new(plain, span).with_help(help);
    }
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
    fn an_unclosed_yaml_bracket_is_named_where_it_opened() {
        let source = Source::new(
            "w.yaml",
            "flow:\n  sequential: [a, b\nagents:\n  - {id: a, kind: template, template: x}\n",
        );
        let error = parse(&source, Format::Yaml)
            .err()
            .unwrap_or_else(|| panic!("parsed"));
        assert_eq!(
            error.help.as_deref(),
            Some("the `[` on line 2, column 15 is never closed: add `]` where its items end")
        );
        // Brackets in quotes and comments are text, as are quotes inside a word.
        let text = "a: '[' # [\nb: [x]\nc: it's \"{\\\"\" [y]\n";
        assert_eq!(unclosed_bracket(text, text.len()), None);
        assert_eq!(unclosed_bracket("a: it's [x\n", 10), Some(8));
    }

    #[test]
    fn a_wrong_value_in_a_closed_yaml_list_gets_no_unclosed_bracket_hint() {
        for text in [
            "flow:\n  sequential: [a, 5]\nagents:\n  - {id: a, kind: template, template: x}\n",
            "flow: {sequential: [a, 5]}\nagents:\n  - {id: a, kind: template, template: x}\n",
        ] {
            let source = Source::new("w.yaml", text);
            let error = parse(&source, Format::Yaml)
                .err()
                .unwrap_or_else(|| panic!("parsed"));
            assert!(
                error.message.starts_with("invalid type: integer `5`"),
                "{error:?}"
            );
            assert_eq!(error.help, None, "{text}");
        }
    }

    #[test]
    fn a_syntax_error_inside_a_closed_bracket_gets_no_unclosed_bracket_hint() {
        for text in [
            "flow:\n  sequential: [a, @c]\n",
            "flow:\n  sequential: [a, *nope]\n",
        ] {
            let source = Source::new("w.yaml", text);
            let error = parse(&source, Format::Yaml)
                .err()
                .unwrap_or_else(|| panic!("parsed"));
            assert_eq!(error.help, None, "{error:?}");
        }
    }

    #[test]
    fn messages_speak_the_workflows_words() {
        assert_eq!(
            plain_words("invalid value: integer `-3`, expected u32").0,
            "invalid value: integer `-3`, expected a whole number from 0 to 4294967295"
        );
        let (text, help) = plain_words(
            "duplicate mapping key: sequential, set DuplicateKeyPolicy in Options if acceptable",
        );
        assert_eq!(text, "`sequential` is given twice");
        assert!(help.is_some());
        assert_eq!(
            plain_words("budget breached: Depth { depth: 83 }"),
            plain_words("cannot recurse further; max recursion depth met"),
        );
        assert!(plain_words("budget breached: Depth { depth: 83 }")
            .0
            .contains("more than 39 levels deep"));
        assert_eq!(
            plain_words("invalid u32").0,
            "not a whole number from 0 to 4294967295"
        );
        assert_eq!(
            plain_words("invalid type: integer `1e20` as i128, expected u32").0,
            "invalid type: integer `1e20`, expected a whole number from 0 to 4294967295"
        );
        assert!(
            plain_words("use from_str_multiple or from_str_multiple_with_options")
                .0
                .contains("more than one YAML document")
        );
        let huge = format!(
            "invalid type: floating point `1{}.0`, expected u32",
            "0".repeat(308)
        );
        let (text, _) = plain_words(&huge);
        assert!(text.contains("`1e308`"), "{text}");
        assert!(text.len() < 100, "{text}");
    }

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
