//! Checking a condition: exactly one test, a regular expression that compiles,
//! `field` only with `equals`.

use regex::{Regex, RegexBuilder};

use super::checker::Checker;
use super::condition::{pointer_of, Condition};
use super::diagnostics::Diagnostic;
use super::located::{Located, Span};
use super::raw_graph::RawCondition;

/// The most memory one condition's regular expression may compile to. A
/// route's test needs far less; the regex crate's own limit (10 MiB) let a
/// file of a hundred hostile patterns take most of a minute to validate.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// `pattern` compiled, within [`MAX_REGEX_BYTES`].
fn compiled(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_BYTES)
        .build()
}

/// The condition `raw` (written at `span`) describes, if it is valid.
pub fn check_condition(
    checker: &mut Checker<'_>,
    raw: &RawCondition,
    span: Option<Span>,
) -> Option<Condition> {
    let given = usize::from(raw.contains.is_some())
        + usize::from(raw.matches.is_some())
        + usize::from(raw.equals.is_some());
    if given != 1 {
        checker.error(
            Diagnostic::new(
                if given == 0 {
                    "a condition needs a test"
                } else {
                    "a condition has more than one test"
                },
                span,
            )
            .with_help(Some(
                "give exactly one of `contains = \"...\"`, `matches = \"regex\"`, or `equals = value` (with an optional `field`)".to_owned(),
            )),
        );
        return None;
    }
    if let (Some(field), None) = (&raw.field, &raw.equals) {
        checker.error(
            Diagnostic::new("`field` goes with `equals`", field.span)
                .with_help(Some("add `equals = value`, or remove `field`".to_owned())),
        );
        return None;
    }
    if let Some(needle) = &raw.contains {
        return Some(Condition::Contains(checker.text(needle)));
    }
    if let Some(pattern) = &raw.matches {
        let text = checker.text(pattern);
        return match compiled(&text) {
            Ok(regex) => Some(Condition::Matches(regex)),
            Err(error) => {
                let reason = error.to_string();
                let last = reason.lines().last().unwrap_or("invalid").trim().to_owned();
                // As written, not as expanded: a `${SECRET}` in it stays masked.
                checker.error(
                    Diagnostic::new(
                        format!("invalid regular expression `{}`", pattern.value),
                        pattern.span,
                    )
                    .with_label(last),
                );
                None
            }
        };
    }
    let equals: &Located<serde_json::Value> = raw.equals.as_ref()?;
    norway(checker, equals);
    let pointer = raw.field.as_ref().map(|field| pointer_of(&field.value));
    Some(Condition::Equals {
        pointer,
        value: equals.value.clone(),
    })
}

/// YAML reads an unquoted `no`, `yes`, `on`, `off` (the "Norway problem") as
/// a boolean, so `equals: no` never matches the text "no": said as an error,
/// with how to quote it.
fn norway(checker: &mut Checker<'_>, equals: &Located<serde_json::Value>) {
    let serde_json::Value::Bool(value) = equals.value else {
        return;
    };
    let written = equals
        .span
        .and_then(|span| checker.source.text.get(span.start..span.end))
        .map(str::trim)
        .unwrap_or_default();
    let word = written.to_ascii_lowercase();
    if matches!(word.as_str(), "yes" | "no" | "on" | "off" | "y" | "n") {
        checker.error(
            Diagnostic::new(
                format!("`equals: {written}` compares with the boolean {value}, not the text \"{written}\""),
                equals.span,
            )
            .with_label("YAML reads an unquoted yes/no/on/off as a boolean")
            .with_help(Some(format!("quote it to compare text: equals: \"{written}\""))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_that_compiles_too_big_is_refused_saying_so() {
        // Within the regex crate's own limit, far over ours.
        let pattern = r"\w{100}";
        assert!(Regex::new(pattern).is_ok());
        let error = compiled(pattern).expect_err("over the limit");
        assert!(error.to_string().contains("size limit"), "{error}");
        assert!(compiled(r"^(?i)approved\b|lgtm").is_ok());
    }
}
