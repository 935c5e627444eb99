//! JSON documents with their secret values masked and their structure left
//! alone: what `--json`, trace files, Chrome traces and OTLP spans write.
//!
//! Masking the document's text as a whole replaced whatever matched a secret
//! value, numbers and dates included: a secret `2026` turned every date of a
//! trace into `${PIN}-12-07T…` (which `orchestra trace` could no longer
//! read), and a secret `true` or `4242` made `"success": ${FLAG}` or
//! `"ts": ${PIN}5` — no longer JSON. Only the texts of a document are masked
//! here, and not the dates and ids it records.

use std::borrow::Cow;

use crate::workflow::env::Redactor;

/// Whether `text`, the value of `key`, is what `key` records rather than
/// text: the dates, ids and times a reader parses, when they have the shape
/// their key promises (a text that only borrows such a key is still masked).
fn is_structure(key: &str, text: &str) -> bool {
    let hex = |len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = !text.is_empty()
        && text
            .strip_prefix('-')
            .unwrap_or(text)
            .bytes()
            .all(|b| b.is_ascii_digit());
    match key {
        "start_time" | "end_time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "run_id" | "traceId" => hex(32),
        "spanId" | "parentSpanId" => hex(16),
        "startTimeUnixNano" | "endTimeUnixNano" | "intValue" => digits,
        _ => false,
    }
}

/// `json` (a JSON document's text) with every secret value masked in its
/// strings — keys and values — but for the dates and ids it records; its
/// numbers, `true`, `false` and `null` are left as they are.
///
/// Reads the text once, without recursion: a trace may nest runs to any depth.
#[must_use]
pub fn redact_text<'a>(redactor: &Redactor, json: &'a str) -> Cow<'a, str> {
    if redactor.secrets().next().is_none() {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    // The key the next string is the value of, if it directly follows one.
    let mut key: Option<&str> = None;
    let mut rest = json;
    while let Some(open) = rest.find('"') {
        let between = &rest[..open];
        out.push_str(between);
        if between.trim() != ":" {
            key = None;
        }
        let body = &rest[open + 1..];
        let Some(close) = string_end(body) else {
            // Not JSON after all: mask the rest as text.
            out.push('"');
            out.push_str(&redactor.redact(body));
            return Cow::Owned(out);
        };
        let text = &body[..close];
        let after = &body[close + 1..];
        if key.is_some_and(|key| is_structure(key, text)) {
            out.push('"');
            out.push_str(text);
            out.push('"');
        } else {
            push_redacted(redactor, text, &mut out);
        }
        let is_key = after.trim_start().starts_with(':');
        key = is_key.then_some(text);
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Pushes the string whose escaped text is `text`, quoted, with its secrets
/// masked: an escaped string is unescaped first, so that a secret is matched
/// in the text it says (`\token` is a tab and `oken`, not `token`).
fn push_redacted(redactor: &Redactor, text: &str, out: &mut String) {
    let unescaped = text
        .contains('\\')
        .then(|| serde_json::from_str::<String>(&format!("\"{text}\"")).ok())
        .flatten();
    match unescaped {
        Some(plain) => {
            let masked = redactor.redact(&plain);
            match serde_json::to_string(masked.as_ref()) {
                Ok(quoted) => out.push_str(&quoted),
                Err(_) => out.push_str(&format!("\"{}\"", redactor.redact(text))),
            }
        }
        None => {
            out.push('"');
            out.push_str(&redactor.redact(text));
            out.push('"');
        }
    }
}

/// Where the string that `body` starts inside ends: the index of its closing
/// quote (the text before it is still escaped).
fn string_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return Some(at),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn redactor(value: &str) -> Redactor {
        Redactor::new(
            [("PIN".to_owned(), value.to_owned())],
            &HashSet::from(["PIN".to_owned()]),
        )
    }

    #[test]
    fn masks_texts_and_keys_but_not_numbers_keywords_dates_or_ids() {
        let json = r#"{"start_time": "2026-12-07T21:19:55Z", "duration_ms": 2026,
            "output": "pin=2026", "2026": true, "spanId": "00000000000a2026",
            "note": {"start_time": "from 2026"}}"#;
        assert_eq!(
            redact_text(&redactor("2026"), json),
            r#"{"start_time": "2026-12-07T21:19:55Z", "duration_ms": 2026,
            "output": "pin=${PIN}", "${PIN}": true, "spanId": "00000000000a2026",
            "note": {"start_time": "from ${PIN}"}}"#
        );
        let keyword = r#"{"success": true, "text": "it is true", "x": [true, "true"]}"#;
        assert_eq!(
            redact_text(&redactor("true"), keyword),
            r#"{"success": true, "text": "it is ${PIN}", "x": [true, "${PIN}"]}"#
        );
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let json = r#"{"a": "say \"sk-secret\" \\", "b": "sk-secret"}"#;
        assert_eq!(
            redact_text(&redactor("sk-secret"), json),
            r#"{"a": "say \"${PIN}\" \\", "b": "${PIN}"}"#
        );
    }

    #[test]
    fn a_secret_is_matched_in_what_an_escaped_string_says() {
        // `\t` is a tab: the text says "<tab>oken1", not "token1".
        let json = r#"{"a": "\token1 and token1"}"#;
        assert_eq!(
            redact_text(&redactor("token1"), json),
            r#"{"a": "\token1 and ${PIN}"}"#
        );
    }

    #[test]
    fn a_value_that_only_borrows_a_structure_key_is_masked() {
        let json = r#"{"run_id": "the run of sk-secret", "intValue": "sk-secret"}"#;
        assert_eq!(
            redact_text(&redactor("sk-secret"), json),
            r#"{"run_id": "the run of ${PIN}", "intValue": "${PIN}"}"#
        );
    }
}
