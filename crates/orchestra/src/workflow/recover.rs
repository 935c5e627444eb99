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
//!   see; one that cannot go without breaking the file (its anchor is used
//!   elsewhere) ends the reading, rather than taking other entries with it;
//! - any other error (a wrong type) is blanked too, and the rest of the file
//!   is still read, but the checks after parsing are skipped: what they would
//!   say of a file missing that setting could mislead.
//!
//! Blanking keeps every byte offset (the text is replaced by spaces); a
//! replacement of another length is recorded, and the places of later errors
//! are translated back to the file as written (`patched`).

use super::diagnostics::{Diagnostic, Source};
use super::located::{Format, Span};
use super::parse::parse;
use super::raw::RawWorkflow;
use super::suggest;

mod patched;

use patched::{syntax_is_sound, Patched};

/// At most this many shape errors are collected from one file.
const MAX_PROBLEMS: usize = 50;

/// How much text the rounds of reading past problems may read, all together:
/// each round reads the whole file a few times, so a file of a few KB goes
/// all the rounds it needs, and one of megabytes stops after a few problems
/// (reading one of 1 MB past 200 problems took a minute).
const REREAD_BYTES: usize = 4 << 20;

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
    let rounds = (REREAD_BYTES / source.text.len().max(1)).clamp(1, MAX_PROBLEMS * 4);
    for _ in 0..rounds {
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
        if !fixed && !follows_from_a_patch && error.message.starts_with("unknown field") {
            // Most often the docker-compose habit of `x-defaults: &b`: say
            // where the anchor can go instead.
            let help = span.and_then(|span| anchor_help(&patched.text, span));
            if let (Some(help), Some(problem)) = (help, problems.last_mut()) {
                problem.help = Some(help);
            }
        }
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

/// For an unknown key at `span` of YAML `text` that sets an anchor
/// (`x-defaults: &b`) — which cannot be blanked while aliases use it — where
/// the anchor can go instead.
fn anchor_help(text: &str, span: Span) -> Option<String> {
    let line = text.get(span.end..)?.lines().next()?;
    let anchor = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix('&'))
        .filter(|name| !name.is_empty())?;
    Some(format!(
        "a workflow has no key for shared settings: put the anchor on the first agent (or \
         group) that uses them, as `- &{anchor}` before its `id:`, and merge them into the \
         others with `<<: *{anchor}` (their own keys win)"
    ))
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

    /// The messages of the problems of YAML `text`, with their help.
    fn yaml_problems(text: &str) -> Vec<(String, Option<String>)> {
        let source = Source::new("w.yaml", text);
        parse_all(&source, Format::Yaml)
            .problems
            .into_iter()
            .map(|p| (p.message, p.help))
            .collect()
    }

    #[test]
    fn an_unknown_key_holding_a_merged_anchor_does_not_take_the_flow_with_it() {
        let text = "x-defaults: &b\n  kind: template\n  template: hi\nflow:\n  sequential: [a]\nagents:\n  - id: a\n    <<: *b\n";
        let problems = yaml_problems(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "unknown field `x-defaults`");
        let help = problems[0].1.as_deref().unwrap_or_default();
        assert!(
            help.contains("`- &b`") && help.contains("`<<: *b`"),
            "{help}"
        );
    }

    #[test]
    fn a_blanked_yaml_entry_is_its_indented_lines_only() {
        // Blanking fewer lines would leave `kind` to `flow`.
        let text = "flow:\n  sequential: [a]\nx-defaults:\n  kind: template\n";
        let problems = yaml_problems(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        // The item's `- ` stays: its other keys stay in it.
        let text = "flow:\n  sequential: [a]\nagents:\n  - colour: red\n    id: a\n    kind: template\n    template: x\n";
        let source = Source::new("w.yaml", text);
        let recovered = parse_all(&source, Format::Yaml);
        assert_eq!(recovered.problems.len(), 1, "{:?}", recovered.problems);
        assert!(recovered.faithful);
        assert_eq!(recovered.raw.map(|raw| raw.agents.len()), Some(1));
        // An item of the unknown key alone goes whole.
        let text = "flow:\n  sequential: [a]\nagents:\n  - id: a\n    kind: template\n    template: x\n  - colour: red\n";
        let source = Source::new("w.yaml", text);
        let recovered = parse_all(&source, Format::Yaml);
        assert_eq!(recovered.problems.len(), 1, "{:?}", recovered.problems);
        assert_eq!(recovered.raw.map(|raw| raw.agents.len()), Some(1));
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
