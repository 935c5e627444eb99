//! [`Patched`]: a copy of a workflow file's text with its shape errors
//! patched out, and where its places are in the file as written.
//!
//! Reading past a problem means editing the text serde reads — a misspelled
//! name corrected, an entry blanked, a stand-in for a missing field — without
//! losing track of the file the author wrote: blanking keeps every offset,
//! and each replacement of another length is recorded, so a problem found in
//! the copy is reported at its place in the original. An entry is blanked,
//! or a field inserted, only when the copy stays well-formed TOML or YAML:
//! these edits know the shape of the two syntaxes (keys, inline tables, YAML
//! indentation); which edit a problem calls for is [`recover`](super)'s
//! choice.

use crate::workflow::located::{Format, Span};
use crate::workflow::parse::yaml_is_well_formed;

/// Whether `text` is well-formed TOML or YAML, whatever its shape.
pub(super) fn syntax_is_sound(text: &str, format: Format) -> bool {
    match format {
        Format::Toml => toml::from_str::<toml::Table>(text).is_ok(),
        Format::Yaml => yaml_is_well_formed(text),
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

/// A copy of the file's text with problems patched out.
pub(super) struct Patched {
    pub(super) text: String,
    /// `(start in the patched text, bytes added)` of every replacement that
    /// changed the length, in patched coordinates.
    pub(super) shifts: Vec<(usize, isize)>,
}

impl Patched {
    pub(super) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            shifts: Vec::new(),
        }
    }

    /// `span` of the patched text as a span of the file as written.
    pub(super) fn original(&self, span: Span) -> Span {
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
    pub(super) fn replace(&mut self, span: Span, value: &str) {
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
    pub(super) fn insert_field(&mut self, span: Span, field: &str, format: Format) -> bool {
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
    pub(super) fn key_at(&self, span: Span) -> Option<String> {
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

    /// Blanks the entry whose key is at `span`: its line and its value's. In
    /// YAML that is the lines its indentation holds — blanking fewer would
    /// hand the rest to the entry before, blanking more would take the next
    /// entries too (when removing it leaves an alias to its anchor
    /// undefined, say) and report them missing. Only an entry on a line of
    /// its own is blanked (not one inside an inline table), and only when
    /// the syntax stays sound; returns whether it was.
    pub(super) fn blank_entry(&mut self, span: Span, format: Format) -> bool {
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
        let candidate = match format {
            Format::Yaml => {
                let column = key_column(before);
                let end = yaml_entry_end(&self.text, line_start, column);
                // The `- ` of a sequence item before the key stays when the
                // item has more keys, which must stay in it; an item of this
                // key alone goes whole, not left as an empty item.
                let more_keys = content_indent(&self.text[end..]) == Some(column);
                let start = if more_keys {
                    line_start + column
                } else {
                    line_start
                };
                self.without(start, end, format)
            }
            Format::Toml => self.without_toml_entry(line_start),
        };
        let Some(candidate) = candidate else {
            return false;
        };
        self.text = candidate;
        true
    }

    /// The text with `start..end` blanked, if its syntax is then sound.
    fn without(&self, start: usize, end: usize, format: Format) -> Option<String> {
        let mut candidate = self.text.clone();
        blank(&mut candidate, start, end);
        syntax_is_sound(&candidate, format).then_some(candidate)
    }

    /// The text without the TOML entry on the line at `line_start`: that
    /// line, and as many after it as its value (a multi-line array or
    /// string) takes to leave the syntax sound. The whole text is read again
    /// only for lines that read as TOML on their own: trying 200 lines, each
    /// by reading the whole file, took seconds a problem.
    fn without_toml_entry(&self, line_start: usize) -> Option<String> {
        let mut end = line_start;
        for _ in 0..200 {
            end = self.text[end..]
                .find('\n')
                .map_or(self.text.len(), |at| end + at + 1);
            let entry = &self.text[line_start..end];
            if syntax_is_sound(entry, Format::Toml) {
                if let Some(candidate) = self.without(line_start, end, Format::Toml) {
                    return Some(candidate);
                }
            }
            if end >= self.text.len() {
                break;
            }
        }
        None
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

/// The column (in bytes) of the key on a YAML line that starts with `line`:
/// after its indentation and the `- ` of any sequence items.
fn key_column(line: &str) -> usize {
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        match trimmed
            .strip_prefix('-')
            .filter(|after| after.starts_with(' '))
        {
            Some(after) => rest = after,
            None => return line.len() - trimmed.len(),
        }
    }
}

/// The indentation of the first line of `text` with content (not blank, not
/// a comment).
fn content_indent(text: &str) -> Option<usize> {
    text.lines().find_map(|line| {
        let content = line.trim_start();
        let blank = content.is_empty() || content.starts_with('#');
        (!blank).then(|| line.len() - content.len())
    })
}

/// Where the YAML entry whose key is at `column` of the line starting at
/// `line_start` ends: after its last line, that is after the lines indented
/// deeper than its key (and the `- ` items of a sequence written at the key's
/// column). Blank and comment lines neither end it nor extend it.
fn yaml_entry_end(text: &str, line_start: usize, column: usize) -> usize {
    let first_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |at| line_start + at + 1);
    let mut end = first_end;
    let mut at = first_end;
    for line in text[first_end..].split_inclusive('\n') {
        at += line.len();
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        let item = content.starts_with("- ") || content.trim_end() == "-";
        if indent > column || (indent == column && item) {
            end = at;
        } else {
            break;
        }
    }
    end
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

    #[test]
    fn a_key_prefix_is_a_key_and_its_separator() {
        assert!(is_key_prefix("  retries = "));
        assert!(is_key_prefix("- kind: "));
        assert!(!is_key_prefix("sequential = [\"a\", "));
    }

    #[test]
    fn a_yaml_entry_ends_where_its_indentation_does() {
        assert_eq!(key_column("  - - id: "), 6);
        assert_eq!(yaml_entry_end("a:\n- x\n\n  # c\n  y\nb: 1\n", 0, 0), 18);
    }
}
