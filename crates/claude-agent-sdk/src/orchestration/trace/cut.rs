//! Cutting a record's texts to `record_text_limit`: the content of its input
//! and output, and the texts the run copies into them from other outputs —
//! the strings of an output's `data` (a nested run's outputs, which an
//! [`OrchestratorAgent`](crate::orchestration::OrchestratorAgent) reports
//! there) and the gathered results a join or a map hands on in its input's
//! metadata. JSON stays JSON: its strings are cut, not its text.

use serde_json::Value;

use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::engine::gathered::RESULTS_KEY;

/// `text`, cut to at most `limit` bytes (on a character boundary) with a note
/// of how much was elided.
pub(crate) fn cap(text: &str, limit: Option<usize>) -> String {
    match limit {
        Some(limit) if text.len() > limit => {
            let mut cut = limit;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}… [{} more bytes elided]", &text[..cut], text.len() - cut)
        }
        _ => text.to_owned(),
    }
}

/// Cuts `text` in place when it is longer than `limit`.
fn cap_in_place(text: &mut String, limit: usize) {
    if text.len() > limit {
        *text = cap(text, Some(limit));
    }
}

/// Cuts an input's content, and the contents of the gathered results in its
/// metadata.
pub(crate) fn cap_input(input: &mut AgentInput, limit: usize) {
    cap_in_place(&mut input.content, limit);
    if let Some(results) = input.metadata.get_mut(RESULTS_KEY) {
        cap_results(results, limit);
    }
}

/// A copy of `input` with its texts cut (see [`cap_input`]), made without
/// copying a long content whole first.
pub(crate) fn capped_input(input: &AgentInput, limit: usize) -> AgentInput {
    let mut metadata = input.metadata.clone();
    if let Some(results) = metadata.get_mut(RESULTS_KEY) {
        cap_results(results, limit);
    }
    AgentInput {
        content: cap(&input.content, Some(limit)),
        context: input.context.clone(),
        metadata,
    }
}

/// Cuts the contents of gathered results (a JSON array; any other text is
/// cut as text).
fn cap_results(results: &mut String, limit: usize) {
    if results.len() <= limit {
        return;
    }
    match serde_json::from_str::<Value>(results) {
        Ok(mut value) => {
            cap_strings(&mut value, limit);
            *results = value.to_string();
        }
        Err(_) => cap_in_place(results, limit),
    }
}

/// Cuts an output's content and the strings of its data.
pub(crate) fn cap_output(output: &mut AgentOutput, limit: usize) {
    cap_in_place(&mut output.content, limit);
    cap_strings(&mut output.data, limit);
}

/// A copy of `output` with its texts cut (see [`cap_output`]), made without
/// copying a long content whole first.
pub(crate) fn capped_output(output: &AgentOutput, limit: usize) -> AgentOutput {
    let mut data = output.data.clone();
    cap_strings(&mut data, limit);
    AgentOutput {
        content: cap(&output.content, Some(limit)),
        data,
        confidence: output.confidence,
        metadata: output.metadata.clone(),
    }
}

/// Cuts every string in `value` (without recursing: data may nest deep).
fn cap_strings(value: &mut Value, limit: usize) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => cap_in_place(text, limit),
            Value::Array(items) => pending.extend(items.iter_mut()),
            Value::Object(fields) => pending.extend(fields.values_mut()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_capped_on_a_character_boundary() {
        assert_eq!(cap("hello", Some(10)), "hello");
        assert_eq!(cap("hello", None), "hello");
        assert_eq!(cap("hello world", Some(5)), "hello… [6 more bytes elided]");
        assert_eq!(cap("héllo", Some(2)), "h… [5 more bytes elided]");
    }

    #[test]
    fn json_keeps_its_shape_with_its_strings_cut() {
        let mut output = AgentOutput::new("short")
            .with_data(serde_json::json!({"a": ["hello world", 12], "usage": {"n": 3}}));
        cap_output(&mut output, 5);
        assert_eq!(
            output.data,
            serde_json::json!({"a": ["hello… [6 more bytes elided]", 12], "usage": {"n": 3}})
        );
        let mut input = AgentInput::new("x");
        input.metadata.insert(
            RESULTS_KEY.to_owned(),
            r#"[{"agent":"a","content":"hello world"}]"#.to_owned(),
        );
        cap_input(&mut input, 5);
        let results: Value = serde_json::from_str(&input.metadata[RESULTS_KEY]).unwrap();
        assert_eq!(results[0]["content"], "hello… [6 more bytes elided]");
    }
}
