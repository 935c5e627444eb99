//! Problems found in a workflow file, reported the way compilers do: the file,
//! line and column, the line itself with a caret under the culprit, what was
//! expected, and the nearest valid name for a typo.

use std::fmt::Write as _;

use super::located::Span;

/// A workflow file's text, with what turns byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as the user gave it.
    pub path: String,
    /// The file's text.
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    /// A source named `path` with the given text.
    #[must_use]
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |before| before.chars().count());
        (line.max(1), column + 1)
    }

    /// The byte offset of 1-based `line` and `column` (in characters).
    #[must_use]
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let text = self.line_text(line);
        let within = text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(text.len(), |(at, _)| at);
        start + within
    }

    /// The text of 1-based `line`, without its line break.
    #[must_use]
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next.saturating_sub(1));
        self.text
            .get(start..end.max(start))
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// `span` narrowed to the inside of the quotes, when it covers a quoted string.
    #[must_use]
    pub fn unquote(&self, span: Span) -> Span {
        let bytes = self.text.as_bytes();
        match bytes.get(span.start) {
            Some(b'"' | b'\'') if span.end > span.start + 1 => {
                let end = if matches!(bytes.get(span.end - 1), Some(b'"' | b'\'')) {
                    span.end - 1
                } else {
                    span.end
                };
                Span::new(span.start + 1, end)
            }
            _ => span,
        }
    }
}

/// One problem, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// A short note shown under the caret.
    pub label: Option<String>,
    /// What to do about it ("did you mean `writer`?").
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem with `message` at `span`.
    #[must_use]
    pub fn new(message: impl Into<String>, span: Option<Span>) -> Self {
        Self {
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    /// Adds the note shown under the caret.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds advice.
    #[must_use]
    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// The 1-based line and column, when the place is known.
    #[cfg(test)]
    #[must_use]
    pub fn position(&self, source: &Source) -> Option<(usize, usize)> {
        self.span
            .map(|span| source.line_col(source.unquote(span).start))
    }

    /// The problem as a person reads it:
    ///
    /// ```text
    /// error: unknown agent `writter`
    ///   --> flow.toml:12:27
    ///    |
    /// 12 | sequential = ["research", "writter"]
    ///    |                            ^^^^^^^ not declared in `agents`
    ///    = help: did you mean `writer`?
    /// ```
    #[must_use]
    pub fn render(&self, source: &Source) -> String {
        let mut out = format!("error: {}\n", self.message);
        match self.span {
            Some(span) => {
                let span = source.unquote(span);
                let (line, column) = source.line_col(span.start);
                let text = source.line_text(line);
                let gutter = line.to_string().len();
                let pad = " ".repeat(gutter);
                let _ = writeln!(out, "{pad}--> {}:{line}:{column}", source.path);
                let _ = writeln!(out, "{pad} |");
                let (end_line, end_column) = source.line_col(span.end);
                let culprit = if end_line == line && end_column > column {
                    end_column - column
                } else {
                    1
                };
                let (shown, column) = window(text, column, culprit);
                let _ = writeln!(out, "{line} | {shown}");
                // Pad and underline by display width: CJK and emoji take two
                // columns, a tab stays a tab.
                let chars: Vec<char> = shown.chars().collect();
                let before: String = chars
                    .iter()
                    .take(column - 1)
                    .map(|&c| {
                        if c == '\t' {
                            "\t".to_owned()
                        } else {
                            " ".repeat(console::measure_text_width(&c.to_string()))
                        }
                    })
                    .collect();
                let underlined: String = chars.iter().skip(column - 1).take(culprit).collect();
                let carets = "^".repeat(console::measure_text_width(&underlined).max(1));
                let label = self
                    .label
                    .as_deref()
                    .map(|label| format!(" {label}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "{pad} | {before}{carets}{label}");
                if let Some(help) = self.help_for(source) {
                    let _ = writeln!(out, "{pad} = help: {help}");
                }
            }
            None => {
                let _ = writeln!(out, "  --> {}", source.path);
                if let Some(help) = self.help_for(source) {
                    let _ = writeln!(out, "   = help: {help}");
                }
            }
        }
        out
    }
}

impl Diagnostic {
    /// The problem in one line, after its place (`flow.toml:12:27: …`, or
    /// `flow.toml: …` when it has none).
    #[must_use]
    pub fn headline(&self, source: &Source) -> String {
        match self.span {
            Some(span) => {
                let (line, column) = source.line_col(source.unquote(span).start);
                format!("{}:{line}:{column}: {}", source.path, self.message)
            }
            None => format!("{}: {}", source.path, self.message),
        }
    }

    /// The help in the file's own syntax: the examples are written in TOML
    /// (`id = "reviews"`, `{ contains = "bug", to = "fix" }`), which a YAML
    /// file writes with `: ` (`id: "reviews"`, valid YAML flow syntax too).
    fn help_for(&self, source: &Source) -> Option<String> {
        let help = self.help.as_deref()?;
        let path = source.path.to_ascii_lowercase();
        Some(if path.ends_with(".yaml") || path.ends_with(".yml") {
            help.replace(" = ", ": ")
        } else {
            help.to_owned()
        })
    }
}

/// The most characters of a source line a diagnostic shows.
const SHOWN_CHARS: usize = 120;

/// `text` cut to [`SHOWN_CHARS`] around `column` (1-based, in characters),
/// with `…` where it was cut, and the column in what is shown: a 5 MB line
/// must not be echoed whole.
fn window(text: &str, column: usize, culprit: usize) -> (String, usize) {
    let count = text.chars().count();
    if count <= SHOWN_CHARS {
        return (text.to_owned(), column);
    }
    let lead = SHOWN_CHARS / 3;
    let start = (column - 1)
        .saturating_sub(lead)
        .min(count.saturating_sub(SHOWN_CHARS));
    let width = SHOWN_CHARS.max(culprit.min(SHOWN_CHARS));
    let end = (start + width).min(count);
    let mut shown = String::new();
    let mut column = column - start;
    if start > 0 {
        shown.push('…');
        column += 1;
    }
    shown.extend(text.chars().skip(start).take(end - start));
    if end < count {
        shown.push('…');
    }
    (shown, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_examples_are_written_in_the_files_syntax() {
        let diagnostic = Diagnostic::new("x", None).with_help(Some(
            "add for example: when = [{ contains = \"bug\", to = \"fix\" }]".into(),
        ));
        let yaml = diagnostic.render(&Source::new("w.yaml", ""));
        assert!(
            yaml.contains("when: [{ contains: \"bug\", to: \"fix\" }]"),
            "{yaml}"
        );
        let toml = diagnostic.render(&Source::new("w.toml", ""));
        assert!(toml.contains("when = [{ contains = \"bug\""), "{toml}");
    }

    #[test]
    fn carets_line_up_under_wide_characters_and_long_lines_are_cut() {
        let source = Source::new("f.toml", "name = \"日本🎉\"; x = \"bad\"\n");
        let at = source.text.find("bad").unwrap_or(0);
        let text = Diagnostic::new("bad", Some(Span::new(at, at + 3))).render(&source);
        let lines: Vec<&str> = text.lines().collect();
        let shown = lines
            .iter()
            .find(|l| l.starts_with("1 |"))
            .copied()
            .unwrap_or("");
        let carets = lines
            .iter()
            .find(|l| l.contains('^'))
            .copied()
            .unwrap_or("");
        let caret_at = carets.find('^').unwrap_or(0);
        let bad_at = console::measure_text_width(&shown[..shown.find("bad").unwrap_or(0)]);
        assert_eq!(caret_at, bad_at, "{text}");

        let long = format!("k = \"{}\" # {}\n", "x".repeat(5_000_000), "y");
        let source = Source::new("f.toml", long);
        let text = Diagnostic::new("long", Some(Span::new(4, 5))).render(&source);
        assert!(text.len() < 1_000, "{} bytes", text.len());
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let source = Source::new("f.toml", "a = 1\nbé = \"x\"\n");
        assert_eq!(source.line_col(0), (1, 1));
        assert_eq!(source.line_col(6), (2, 1));
        assert_eq!(source.line_col(12), (2, 6));
        assert_eq!(source.offset_of(2, 6), 12);
        assert_eq!(source.line_text(2), "bé = \"x\"");
    }

    #[test]
    fn rendering_points_at_the_name_inside_quotes() {
        let source = Source::new("f.toml", "sequential = [\"writter\"]\n");
        let diagnostic = Diagnostic::new("unknown agent `writter`", Some(Span::new(14, 23)))
            .with_label("not declared")
            .with_help(Some("did you mean `writer`?".into()));
        let text = diagnostic.render(&source);
        assert!(text.contains("--> f.toml:1:16"), "{text}");
        assert!(
            text.contains("|                ^^^^^^^ not declared"),
            "{text}"
        );
        assert!(text.contains("= help: did you mean `writer`?"), "{text}");
    }
}
