//! The workflow file's small value types that read more than one shape: a
//! duration (`30` or `"30s"`), a join policy (`"all"`, `"any"`, `{ at_least = 2 }`)
//! and a flow step (an agent or group id, or an inline group).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::raw::RawFlow;

/// A duration: a number of seconds, or a string with a unit (`"500ms"`, `"30s"`,
/// `"2m"`, `"1h"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

/// `"1.5 MiB"` as `(1.5, "MiB")`: the leading number and the unit after it.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}

/// Parses `"500ms"`, `"30s"`, `"1.5m"`, `"1h"` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = number_and_unit(text)?;
    let seconds = match unit {
        "" | "s" | "sec" | "secs" => number,
        "ms" => number / 1000.0,
        "m" | "min" | "mins" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// `duration` as a workflow file writes it (`300ms`, `1.5s`, `45s`, `10m`,
/// `2h`), exactly: [`parse_duration`] reads it back to the same value.
#[must_use]
pub fn written_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let whole_secs = duration.subsec_nanos() == 0;
    match secs {
        0 if whole_secs => "0s".to_owned(),
        0 if duration.subsec_nanos().is_multiple_of(1_000_000) => {
            format!("{}ms", duration.as_millis())
        }
        _ if !whole_secs => format!("{}s", duration.as_secs_f64()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"500ms\", \"2m\" or a number of seconds")
            }

            fn visit_u64<E: de::Error>(self, secs: u64) -> Result<DurationSpec, E> {
                Ok(DurationSpec(Duration::from_secs(secs)))
            }

            fn visit_i64<E: de::Error>(self, secs: i64) -> Result<DurationSpec, E> {
                u64::try_from(secs)
                    .map(|secs| DurationSpec(Duration::from_secs(secs)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }

            fn visit_f64<E: de::Error>(self, secs: f64) -> Result<DurationSpec, E> {
                Duration::try_from_secs_f64(secs)
                    .map(DurationSpec)
                    .map_err(|_| E::custom(format!("`{secs}` is not a valid number of seconds")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<DurationSpec, E> {
                parse_duration(text).map(DurationSpec).ok_or_else(|| {
                    E::custom(format!(
                        "invalid duration `{text}`: expected a number with a unit (ms, s, m, h), such as \"30s\""
                    ))
                })
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of seconds, or a string with a unit: \"500ms\", \"30s\", \"2m\", \"1h\".",
            "oneOf": [
                { "type": "number", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\s*(ms|s|sec|secs|m|min|mins|h)?$" }
            ]
        })
    }
}

/// A number of bytes, written as an integer or with a unit: `"64KiB"`,
/// `"16MiB"`, `"1GB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// Parses `"512"`, `"64KB"`, `"16MiB"`, `"1.5GB"` (units `B`, `KB`, `MB`, `GB`
/// of 1000 and `KiB`, `MiB`, `GiB` of 1024, case ignored).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let (number, unit) = number_and_unit(text)?;
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * factor).round();
    (bytes.is_finite() && bytes >= 0.0 && bytes <= u64::MAX as f64).then_some(bytes as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl Visitor<'_> for BytesVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64KiB\", \"16MiB\", \"1GB\" or a number of bytes")
            }

            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(bytes))
            }

            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<ByteSize, E> {
                u64::try_from(bytes)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
                parse_bytes(text).map(ByteSize).ok_or_else(|| {
                    E::custom(format!(
                        "invalid size `{text}`: expected a number of bytes with a unit (KB, MB, GB, KiB, MiB, GiB), such as \"16MiB\""
                    ))
                })
            }
        }

        deserializer.deserialize_any(BytesVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of bytes, or a string with a unit: \"64KiB\", \"16MiB\", \"1GB\".",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgG]i?[bB]?|[bB])?$" }
            ]
        })
    }
}

/// How many steps of a parallel group must succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinSpec {
    /// Every step (the default).
    All,
    /// At least one step.
    Any,
    /// At least this many steps.
    AtLeast(u64),
}

impl<'de> Deserialize<'de> for JoinSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JoinVisitor;

        impl<'de> Visitor<'de> for JoinVisitor {
            type Value = JoinSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\", \"any\" or a table { at_least = N }")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<JoinSpec, E> {
                match text {
                    "all" => Ok(JoinSpec::All),
                    "any" => Ok(JoinSpec::Any),
                    // A custom error worded as `unknown_variant`'s: the YAML
                    // reader places an `unknown_variant` of a value read with
                    // `deserialize_any` at its key, not at the value.
                    other => Err(E::custom(format!(
                        "unknown variant `{other}`, expected `all` or `any`"
                    ))),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JoinSpec, A::Error> {
                let mut at_least = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "at_least" {
                        return Err(de::Error::unknown_field(&key, &["at_least"]));
                    }
                    at_least = Some(map.next_value::<u64>()?);
                }
                at_least
                    .map(JoinSpec::AtLeast)
                    .ok_or_else(|| de::Error::missing_field("at_least"))
            }
        }

        deserializer.deserialize_any(JoinVisitor)
    }
}

impl JsonSchema for JoinSpec {
    fn schema_name() -> Cow<'static, str> {
        "JoinPolicy".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "How many steps of a parallel group must succeed: \"all\" (the default), \"any\", or { at_least = N }.",
            "oneOf": [
                { "enum": ["all", "any"] },
                {
                    "type": "object",
                    "properties": { "at_least": { "type": "integer", "minimum": 1 } },
                    "required": ["at_least"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// One step of a group: the id of an agent or of a named group, or a group
/// written in place.
#[derive(Debug, Clone)]
pub enum Step {
    /// An agent id or a group id.
    Ref(String),
    /// A group written in place.
    Inline(Box<RawFlow>),
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;

        impl<'de> Visitor<'de> for StepVisitor {
            type Value = Step;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an agent id, a group id, or a group such as { parallel = [...] }")
            }

            fn visit_str<E: de::Error>(self, id: &str) -> Result<Step, E> {
                Ok(Step::Ref(id.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Step, A::Error> {
                RawFlow::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|flow| Step::Inline(Box::new(flow)))
            }
        }

        deserializer.deserialize_any(StepVisitor)
    }
}

impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The id of an agent or of a group from `groups`, or a group written in place.",
            "oneOf": [
                { "type": "string", "minLength": 1 },
                generator.subschema_for::<RawFlow>()
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("64KB"), Some(64_000));
        assert_eq!(parse_bytes("16MiB"), Some(16 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5 gb"), Some(1_500_000_000));
        assert_eq!(parse_bytes("12 parsecs"), None);
    }

    #[test]
    fn durations_read_units_and_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("12"), Some(Duration::from_secs(12)));
        assert_eq!(parse_duration("12 parsecs"), None);
        assert_eq!(parse_duration("abc"), None);
    }

    #[test]
    fn durations_are_written_as_a_file_writes_them_and_read_back() {
        for (written, millis) in [
            ("0s", 0),
            ("300ms", 300),
            ("1.5s", 1500),
            ("90.25s", 90_250),
            ("45s", 45_000),
            ("90s", 90_000),
            ("10m", 600_000),
            ("2h", 7_200_000),
        ] {
            let duration = Duration::from_millis(millis);
            assert_eq!(written_duration(duration), written);
            assert_eq!(parse_duration(written), Some(duration), "{written}");
        }
    }

    #[test]
    fn join_reads_words_and_tables() {
        let read = |text: &str| serde_json::from_str::<JoinSpec>(text).ok();
        assert_eq!(read(r#""all""#), Some(JoinSpec::All));
        assert_eq!(read(r#""any""#), Some(JoinSpec::Any));
        assert_eq!(read(r#"{"at_least": 2}"#), Some(JoinSpec::AtLeast(2)));
        assert_eq!(read(r#""most""#), None);
    }
}
