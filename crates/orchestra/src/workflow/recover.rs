//! Reading past shape errors, so that a file with five typos reports five
//! problems, in file order, and not only the first one serde meets.
//!
//! serde stops at the first field or value that does not fit the schema (and
//! TOML does not even meet them in file order). Once the file's syntax is
//! known to be sound, each shape error is recorded and *patched* in a copy of
//! the text, and the copy is read again:
//!
//! - a misspelled key or value with a close valid one (`nmae`, `comand`) is
//!   replaced by it, so the checks that depend on it (an agent's kind) go on
//!   as the author meant;
//! - another unknown key is blanked out (its line, and the lines of its
//!   value), as if it were not there — which is what the other checks should
//!   see;
//! - any other error (a wrong type) is blanked too, and the rest of the file
//!   is still read, but the checks after parsing are skipped: what they would
//!   say of a file missing that setting could mislead.
//!
//! Blanking keeps every byte offset (the text is replaced by spaces); a
//! replacement of another length is recorded, and the places of later errors
//! are translated back to the file as written.

use super::diagnostics::{Diagnostic, Source};
use super::located::{with_format, Format, Span};
use super::parse::parse;
use super::raw::RawWorkflow;
use super::suggest;

/// At most this many shape errors are collected from one file.
const MAX_PROBLEMS: usize = 50;

/// A file read past its shape errors.
pub struct Recovered {
    /// The file as read with every problem patched, when it could be read.
    pub raw: Option<RawWorkflow>,
    /// The problems, at their places in the file as written.
    pub problems: Vec<Diagnostic>,
    /// Whether the patches only removed unknown fields and corrected misspelled
    /// values, so the checks after parsing see what the author meant.
    pub faithful: bool,
}

/// Reads `source` as `format`, collecting every shape error.
pub fn parse_all(source: &Source, format: Format) -> Recovered {
    let mut problems = Vec::new();
    let mut patched = Patched::new(&source.text);
    let mut faithful = true;
    let mut blanked_keys: Vec<String> = Vec::new();
    // Each round reports or patches one problem; a patch that does not take
    // would otherwise go round for ever.
    for _ in 0..MAX_PROBLEMS * 4 {
        let current = Source::new(source.path.clone(), patched.text.clone());
        let error = match parse(&current, format) {
            Ok(raw) => {
                return Recovered {
                    raw: Some(raw),
                    problems,
                    faithful,
                }
            }
            Err(error) => error,
        };
        // A syntax error (of the file as written) ends the reading.
        if problems.is_empty() && !syntax_is_sound(&current.text, format) {
            problems.push(error);
            return Recovered {
                raw: None,
                problems,
                faithful: false,
            };
        }
        let span = error.span;
        let follows_from_a_patch = suggest::quoted_name(&error.message).is_some_and(|name| {
            error.message.starts_with("missing field") && blanked_keys.iter().any(|k| k == name)
        });
        if !follows_from_a_patch {
            problems.push(Diagnostic {
                span: span.map(|span| patched.original(span)),
                ..error.clone()
            });
        }
        let missing = suggest::quoted_name(&error.message)
            .filter(|_| error.message.starts_with("missing field"));
        let fixed = if let Some(field) = missing {
            // A required field that is absent: a stand-in value lets the
            // reading go on to the next problem (the checks after reading
            // wait, as for a value of the wrong type).
            let inserted = span.is_some_and(|span| patched.insert_field(span, field, format));
            faithful &= !inserted;
            inserted
        } else {
            span.is_some_and(|span| {
                let corrected = correction(&error).is_some_and(|better| {
                    let before = (patched.text.clone(), patched.shifts.clone());
                    patched.replace(span, &better);
                    // A corrected key may now be given twice: blank it instead.
                    let sound = syntax_is_sound(&patched.text, format);
                    if !sound {
                        (patched.text, patched.shifts) = before;
                    }
                    sound
                });
                if corrected {
                    true
                } else {
                    let key = patched.key_at(span);
                    let blanked = patched.blank_entry(span, format);
                    if blanked {
                        faithful &= error.message.starts_with("unknown field");
                        blanked_keys.extend(key);
                    }
                    blanked
                }
            })
        };
        if !fixed || problems.len() >= MAX_PROBLEMS {
            return Recovered {
                raw: None,
                problems,
                faithful: false,
            };
        }
    }
    Recovered {
        raw: None,
        problems,
        faithful: false,
    }
}

/// A value of the right type for required field `field`, written the same
/// in TOML and YAML: what a reading past its absence puts in its place.
fn stand_in(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" | "from" | "node" | "question" | "to" | "default" => "\"missing\"",
        "kind" => "\"template\"",
        "over" => "\"lines\"",
        "policy" => "\"all\"",
        "max_iterations" | "at_least" => "1",
        "body" => "[\"missing\"]",
        _ => return None,
    })
}

/// The valid name for a misspelled key or value: "unknown field `nmae`" or
/// "unknown variant `comand`" with "did you mean `command`?".
fn correction(error: &Diagnostic) -> Option<String> {
    if !(error.message.starts_with("unknown variant") || error.message.starts_with("unknown field"))
    {
        return None;
    }
    let help = error.help.as_deref()?;
    let better = help.strip_prefix("did you mean `")?.strip_suffix("`?")?;
    Some(better.to_owned())
}

/// Whether `text` is well-formed TOML or YAML, whatever its shape.
fn syntax_is_sound(text: &str, format: Format) -> bool {
    match format {
        Format::Toml => toml::from_str::<toml::Table>(text).is_ok(),
        Format::Yaml => with_format(Format::Yaml, || {
            serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(
                text,
                super::parse::yaml_options(),
            )
            .is_ok()
        }),
    }
}

/// A copy of the file's text with problems patched out.
struct Patched {
    text: String,
    /// `(start in the patched text, bytes added)` of every replacement that
    /// changed the length, in patched coordinates.
    shifts: Vec<(usize, isize)>,
}

impl Patched {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            shifts: Vec::new(),
        }
    }

    /// `span` of the patched text as a span of the file as written.
    fn original(&self, span: Span) -> Span {
        let back = |at: usize| {
            let shift: isize = self
                .shifts
                .iter()
                .filter(|(start, _)| *start < at)
                .map(|(_, added)| *added)
                .sum();
            at.saturating_add_signed(-shift)
        };
        Span::new(back(span.start), back(span.end))
    }

    /// Replaces the value at `span` by `value`, keeping its quotes.
    fn replace(&mut self, span: Span, value: &str) {
        let Some(written) = self.text.get(span.start..span.end) else {
            return;
        };
        let quote = written
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\''))
            .map(String::from)
            .unwrap_or_default();
        let replacement = format!("{quote}{value}{quote}");
        let added = replacement.len().cast_signed() - written.len().cast_signed();
        for (start, _) in &mut self.shifts {
            if *start > span.start {
                *start = start.saturating_add_signed(added);
            }
        }
        if added != 0 {
            self.shifts.push((span.start, added));
        }
        self.text.replace_range(span.start..span.end, &replacement);
    }

    /// Adds required field `field`, with a stand-in value, to the table or
    /// mapping a "missing field" error points at with `span`: in TOML, a
    /// `[[header]]` or an inline table `{ … }`; in YAML (whose parser points
    /// at the mapping's last key), before that key. Returns whether the text
    /// is still sound with it.
    fn insert_field(&mut self, span: Span, field: &str, format: Format) -> bool {
        let Some(value) = stand_in(field) else {
            return false;
        };
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |at| at + 1);
        let before = &self.text[line_start..start];
        let rest = &self.text[start..];
        let tries: Vec<(usize, String)> = match format {
            Format::Toml if rest.starts_with('[') => {
                let end = rest.find('\n').map_or(self.text.len(), |at| start + at + 1);
                let newline = if end == self.text.len() && !self.text.ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                vec![(end, format!("{newline}{field} = {value}\n"))]
            }
            Format::Toml if rest.starts_with('{') => vec![
                (start + 1, format!(" {field} = {value},")),
                (start + 1, format!(" {field} = {value} ")),
            ],
            Format::Toml => Vec::new(),
            Format::Yaml => {
                let flow = matches!(before.trim_end().chars().last(), Some('{' | ','));
                if flow {
                    vec![(start, format!("{field}: {value}, "))]
                } else {
                    // The next key goes on a line of its own, at the same column.
                    let indent = " ".repeat(before.chars().count());
                    vec![(start, format!("{field}: {value}\n{indent}"))]
                }
            }
        };
        for (at, text) in tries {
            let before = (self.text.clone(), self.shifts.clone());
            self.replace(Span::new(at, at), &text);
            if syntax_is_sound(&self.text, format) {
                return true;
            }
            (self.text, self.shifts) = before;
        }
        false
    }

    /// The key of the entry at `span`: the text there (an unknown field's
    /// key), or the key before it on its line (a value's).
    fn key_at(&self, span: Span) -> Option<String> {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |at| at + 1);
        let before = &self.text[line_start..start];
        if is_key_prefix(before) {
            let key = before
                .trim()
                .trim_start_matches("- ")
                .trim_end_matches(['=', ':']);
            return Some(key.trim().trim_matches(['"', '\'']).to_owned());
        }
        self.text.get(span.start..span.end).map(str::to_owned)
    }

    /// Blanks the entry whose key is at `span` — its line, and as many lines
    /// after it as its value takes to leave the syntax sound. Only an entry on
    /// a line of its own is blanked (not one inside an inline table); returns
    /// whether it was.
    fn blank_entry(&mut self, span: Span, format: Format) -> bool {
        let line_start = self.text[..span.start.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |at| at + 1);
        let before = &self.text[line_start..span.start.min(self.text.len())];
        let header = self.text[span.start.min(self.text.len())..].starts_with('[');
        // At a key (an unknown field), or at the value after `key =` /
        // `key:` (a value of the wrong type).
        let at_key = before.chars().all(|c| c.is_whitespace() || c == '-');
        if header || !(at_key || is_key_prefix(before)) {
            return false;
        }
        let mut end = line_start;
        for _ in 0..200 {
            end = self.text[end..]
                .find('\n')
                .map_or(self.text.len(), |at| end + at + 1);
            let mut candidate = self.text.clone();
            blank(&mut candidate, line_start, end);
            if syntax_is_sound(&candidate, format) {
                self.text = candidate;
                return true;
            }
            if end >= self.text.len() {
                break;
            }
        }
        false
    }
}

/// Whether `text` is a line's start up to a value: `key = `, `  key: `,
/// `- key: ` (the key bare or quoted).
fn is_key_prefix(text: &str) -> bool {
    let text = text.trim_start();
    let text = text.strip_prefix("- ").unwrap_or(text).trim_end();
    let Some(key) = text.strip_suffix('=').or_else(|| text.strip_suffix(':')) else {
        return false;
    };
    let key = key.trim_end();
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\''))
}

/// Replaces `text[start..end]` with spaces, keeping line breaks (and so every
/// offset and line number).
fn blank(text: &mut String, start: usize, end: usize) {
    let blanked: String = text[start..end]
        .chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_owned()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect();
    text.replace_range(start..end, &blanked);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_TYPOS: &str = r#"nmae = "typos"

[flow]
sequential = ["a"]
retrys = 2
paralel_limit = 3

[[agents]]
id = "a"
kind = "comand"
command = ["cat"]
stdin = "jsn"
"#;

    #[test]
    fn every_shape_error_is_reported_in_file_order() {
        let source = Source::new("w.toml", FIVE_TYPOS);
        let recovered = parse_all(&source, Format::Toml);
        let mut problems = recovered.problems;
        problems.sort_by_key(|p| p.span.map(|s| s.start));
        let lines: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| {
                (
                    p.position(&source).map_or(0, |(line, _)| line),
                    p.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (1, "unknown field `nmae`"),
                (5, "unknown field `retrys`"),
                (6, "unknown field `paralel_limit`"),
                (10, "unknown variant `comand`"),
                (12, "unknown variant `jsn`"),
            ]
        );
        assert!(recovered.faithful);
        let raw = recovered.raw.unwrap_or_else(|| panic!("not read"));
        assert_eq!(raw.agents.len(), 1);
    }

    #[test]
    fn values_of_the_wrong_type_are_all_reported() {
        let text = "[flow]\nsequential = [\"a\"]\nretries = \"three\"\nparallel_limit = 1e308\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n";
        let source = Source::new("w.toml", text);
        let recovered = parse_all(&source, Format::Toml);
        let lines: Vec<usize> = recovered
            .problems
            .iter()
            .filter_map(|p| p.position(&source).map(|(line, _)| line))
            .collect();
        assert_eq!(lines.len(), 2, "{:?}", recovered.problems);
        assert!(lines.contains(&3) && lines.contains(&4), "{lines:?}");
        assert!(!recovered.faithful);
        assert!(is_key_prefix("  retries = "));
        assert!(is_key_prefix("- kind: "));
        assert!(!is_key_prefix("sequential = [\"a\", "));

        // A value with no close valid one: its key is blanked, and the
        // "missing field" that follows is not reported as a second problem.
        let text = "[flow]\nsequential = [\"a\"]\n[[agents]]\nid = \"a\"\nkind = \"zzzzzz\"\n";
        let source = Source::new("w.toml", text);
        let recovered = parse_all(&source, Format::Toml);
        let messages: Vec<&str> = recovered
            .problems
            .iter()
            .map(|p| p.message.as_str())
            .collect();
        assert_eq!(messages, ["unknown variant `zzzzzz`"], "{messages:?}");
    }

    #[test]
    fn a_syntax_error_stops_the_reading() {
        let source = Source::new("w.toml", "name = \n[flow\n");
        let recovered = parse_all(&source, Format::Toml);
        assert_eq!(recovered.problems.len(), 1);
        assert!(recovered.raw.is_none());
    }

    #[test]
    fn yaml_typos_are_all_reported() {
        let text = "nmae: typos\nflow:\n  sequential: [a]\n  retrys: 2\nagents:\n  - id: a\n    kind: comand\n    command: [cat]\n    stdin: jsn\n";
        let source = Source::new("w.yaml", text);
        let recovered = parse_all(&source, Format::Yaml);
        let messages: Vec<&str> = recovered
            .problems
            .iter()
            .map(|p| p.message.as_str())
            .collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(recovered.raw.is_some());
    }
}
