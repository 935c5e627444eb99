//! [`Condition`]: a checked condition on a node's output — for route branches
//! and loops' `until` — and how it reads.

use std::fmt;

use claude_agent_sdk::orchestration::AgentOutput;
use regex::Regex;
use serde_json::Value;

/// A condition on an output.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The text contains this string.
    Contains(String),
    /// The text matches this regular expression.
    Matches(Regex),
    /// A field of the output's JSON (a JSON pointer), or the whole output,
    /// equals this value.
    Equals {
        /// The JSON pointer, if any.
        pointer: Option<String>,
        /// The value compared.
        value: Value,
    },
}

impl Condition {
    /// Whether `output` meets the condition.
    #[must_use]
    pub fn holds(&self, output: &AgentOutput) -> bool {
        match self {
            Self::Contains(needle) => output.content.contains(needle.as_str()),
            Self::Matches(regex) => regex.is_match(&output.content),
            Self::Equals { pointer, value } => {
                let json = serde_json::from_str::<Value>(output.content.trim())
                    .ok()
                    .or_else(|| (!output.data.is_null()).then(|| output.data.clone()));
                match (pointer, json) {
                    (Some(pointer), Some(json)) => json
                        .pointer(pointer)
                        .is_some_and(|found| same_json(found, value)),
                    (Some(_), None) => false,
                    (None, Some(json)) if same_json(&json, value) => true,
                    (None, _) => value.as_str() == Some(output.content.trim()),
                }
            }
        }
    }
}

/// Whether two JSON values are equal, as JSON has them: one number type, so
/// `5` and `5.0` are the same number (serde keeps integers and floats apart).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// A dotted path (`verdict.ok`, `items.0`) as a JSON pointer; a pointer
/// (starting with `/`) as it is.
#[must_use]
pub fn pointer_of(field: &str) -> String {
    let field = field.trim();
    if field.starts_with('/') || field.is_empty() {
        return field.to_owned();
    }
    field
        .split('.')
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect()
}

impl fmt::Display for Condition {
    /// How diagrams label the condition: `contains "x"`, `matches /x/`, `/a == 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Contains(needle) => write!(f, "contains {needle:?}"),
            Self::Matches(regex) => write!(f, "matches /{}/", regex.as_str()),
            Self::Equals {
                pointer: Some(pointer),
                value,
            } => write!(f, "{pointer} == {value}"),
            Self::Equals {
                pointer: None,
                value,
            } => write!(f, "== {value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> AgentOutput {
        AgentOutput::new(text)
    }

    #[test]
    fn conditions_read_text_patterns_and_json_fields() {
        assert!(Condition::Contains("bug".into()).holds(&out("a bug here")));
        assert!(!Condition::Contains("bug".into()).holds(&out("fine")));
        let regex = Regex::new("^(?i)approved").unwrap_or_else(|e| panic!("{e}"));
        assert!(Condition::Matches(regex).holds(&out("APPROVED: yes")));
        let equals = |field: &str, value: Value| Condition::Equals {
            pointer: Some(pointer_of(field)),
            value,
        };
        let json = out(r#"{"verdict": {"ok": true}, "kind": "bug"}"#);
        assert!(equals("verdict.ok", Value::Bool(true)).holds(&json));
        assert!(equals("/kind", Value::from("bug")).holds(&json));
        assert!(!equals("kind", Value::from("feature")).holds(&json));
        assert!(!equals("kind", Value::from("bug")).holds(&out("not json")));
        let whole = Condition::Equals {
            pointer: None,
            value: Value::from("yes"),
        };
        assert!(whole.holds(&out(" yes\n")));
        assert!(whole.holds(&out("\"yes\"")));
    }

    #[test]
    fn numbers_equal_as_json_has_them_one_type() {
        let five = Condition::Equals {
            pointer: Some("/n".to_owned()),
            value: serde_json::json!(5),
        };
        assert!(five.holds(&out(r#"{"n": 5.0}"#)));
        assert!(five.holds(&out(r#"{"n": 5}"#)));
        assert!(!five.holds(&out(r#"{"n": 5.5}"#)));
        let thousand = Condition::Equals {
            pointer: None,
            value: serde_json::json!(1e3),
        };
        assert!(thousand.holds(&out("1000")));
        let listed = Condition::Equals {
            pointer: Some("/xs".to_owned()),
            value: serde_json::json!([1, {"a": 2}]),
        };
        assert!(listed.holds(&out(r#"{"xs": [1.0, {"a": 2.0}]}"#)));
    }

    #[test]
    fn dotted_paths_become_pointers() {
        assert_eq!(pointer_of("a.b.0"), "/a/b/0");
        assert_eq!(pointer_of("/a/b"), "/a/b");
    }

    #[test]
    fn conditions_label_themselves() {
        assert_eq!(
            Condition::Contains("x".into()).to_string(),
            "contains \"x\""
        );
        let equals = Condition::Equals {
            pointer: Some("/ok".into()),
            value: Value::Bool(true),
        };
        assert_eq!(equals.to_string(), "/ok == true");
    }
}
