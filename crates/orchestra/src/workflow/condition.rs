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
                    (Some(pointer), Some(json)) => json.pointer(pointer) == Some(value),
                    (Some(_), None) => false,
                    (None, Some(json)) if json == *value => true,
                    (None, _) => value.as_str() == Some(output.content.trim()),
                }
            }
        }
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
