//! What a trace record keeps of an attempt's input and output.
//!
//!
//! A trace keeps what every attempt was given and returned, and a run keeps a
//! trace per attempt: the texts are most of its memory and most of its cost.
//! So records hold [`RecordedInput`] and [`RecordedOutput`], whose texts are
//! [`ByteString`]s — reference-counted slices of shared buffers — instead of
//! owned copies of [`AgentInput`] and [`AgentOutput`], and agent names are
//! [`SmolStr`](smol_str::SmolStr)s, stored inline when short. Records that hold the same text
//! share it: in a pipeline, step k's recorded output *is* step k+1's recorded
//! input; in a fan-out every record shares the one input; the retries of a
//! step share their input. The texts a run copies are packed into a few
//! buffers rather than allocated one by one, and cloning a trace copies no
//! text.
//! [`RecordedInput::to_input`] and [`RecordedOutput::to_output`] give back the
//! owned types when a record must be fed to an agent again.
//!
//! The input's context and metadata are the same for every agent of a run, so
//! its records share them too ([`Shared`]): one reference count for a run that
//! has them, nothing at all for the common run that has none.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

pub use bytestring::ByteString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::usage::Usage;

/// What an attempt was given, as its record keeps it: an [`AgentInput`] whose
/// parts are shared with the other records of the same input.
///
/// ```
/// use claude_agent_sdk::orchestration::{AgentInput, RecordedInput};
///
/// let input = AgentInput::new("tides").with_metadata("lang", "en");
/// let recorded = RecordedInput::from(&input);
/// assert_eq!(recorded.content, "tides");
/// assert_eq!(recorded.metadata.get("lang").map(String::as_str), Some("en"));
/// assert_eq!(recorded.to_input(), input);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedInput {
    /// The input's [`content`](AgentInput::content).
    pub content: ByteString,
    /// The input's [`context`](AgentInput::context), shared by the run's records.
    #[serde(default)]
    pub context: Shared<serde_json::Value>,
    /// The input's [`metadata`](AgentInput::metadata), shared by the run's records.
    #[serde(default)]
    pub metadata: Shared<HashMap<String, String>>,
}

impl RecordedInput {
    /// The input as an [`AgentInput`] again (a copy).
    #[must_use]
    pub fn to_input(&self) -> AgentInput {
        AgentInput {
            content: self.content.to_string(),
            context: serde_json::Value::clone(&self.context),
            metadata: HashMap::clone(&self.metadata),
        }
    }
}

impl From<&AgentInput> for RecordedInput {
    fn from(input: &AgentInput) -> Self {
        Self {
            content: ByteString::from(input.content.as_str()),
            context: Shared::new(input.context.clone()),
            metadata: Shared::new(input.metadata.clone()),
        }
    }
}

impl From<AgentInput> for RecordedInput {
    fn from(input: AgentInput) -> Self {
        Self {
            content: ByteString::from(input.content),
            context: Shared::new(input.context),
            metadata: Shared::new(input.metadata),
        }
    }
}

/// What a successful attempt returned, as its record keeps it: an
/// [`AgentOutput`] whose content is shared with the records that hold the same
/// text (in a pipeline, the next step's recorded input).
///
/// ```
/// use claude_agent_sdk::orchestration::{AgentOutput, RecordedOutput};
///
/// let output = AgentOutput::new("done").with_confidence(0.4);
/// let recorded = RecordedOutput::from(&output);
/// assert_eq!(recorded.content, "done");
/// assert!(!recorded.is_successful());
/// assert_eq!(recorded.to_output(), output);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedOutput {
    /// The output's [`content`](AgentOutput::content).
    pub content: ByteString,
    /// The output's [`data`](AgentOutput::data).
    #[serde(default)]
    pub data: serde_json::Value,
    /// The output's [`confidence`](AgentOutput::confidence).
    pub confidence: f64,
    /// The output's [`metadata`](AgentOutput::metadata).
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl RecordedOutput {
    /// `output` with `content`, a copy of its content made elsewhere.
    pub(crate) fn with_content(content: ByteString, output: &AgentOutput) -> Self {
        debug_assert_eq!(content, output.content);
        Self {
            content,
            data: output.data.clone(),
            confidence: output.confidence,
            metadata: output.metadata.clone(),
        }
    }

    /// Whether the output counted as a success: the same rule as
    /// [`AgentOutput::is_successful`].
    #[must_use]
    pub fn is_successful(&self) -> bool {
        self.confidence >= AgentOutput::SUCCESS_THRESHOLD
    }

    /// The usage the agent reported in `data["usage"]`, if any (see
    /// [`Usage::from_output`]).
    #[must_use]
    pub fn usage(&self) -> Option<Usage> {
        Usage::from_data(&self.data)
    }

    /// The output as an [`AgentOutput`] again (a copy).
    #[must_use]
    pub fn to_output(&self) -> AgentOutput {
        AgentOutput {
            content: self.content.to_string(),
            data: self.data.clone(),
            confidence: self.confidence,
            metadata: self.metadata.clone(),
        }
    }
}

impl From<&AgentOutput> for RecordedOutput {
    fn from(output: &AgentOutput) -> Self {
        Self::with_content(ByteString::from(output.content.as_str()), output)
    }
}

impl From<AgentOutput> for RecordedOutput {
    fn from(output: AgentOutput) -> Self {
        Self {
            content: ByteString::from(output.content),
            data: output.data,
            confidence: output.confidence,
            metadata: output.metadata,
        }
    }
}

/// A part of a recorded input that the records of a run share: the run's
/// context or metadata behind one reference count, or — when it is empty (a
/// `null` context, no metadata) — nothing at all, so that the records of a run
/// without context cost no count updates. It reads as the value it holds.
///
/// ```
/// use std::collections::HashMap;
/// use claude_agent_sdk::orchestration::Shared;
///
/// let context = Shared::new(serde_json::json!({"depth": "advanced"}));
/// assert_eq!(context["depth"], "advanced");
/// let copy = context.clone(); // shares the value
/// assert_eq!(copy, context);
/// let none: Shared<HashMap<String, String>> = Shared::default();
/// assert!(none.is_empty());
/// ```
pub struct Shared<T: SharedPart>(Option<Arc<T>>);

impl<T: SharedPart> Shared<T> {
    /// `value`, shared from now on (nothing is allocated when it is empty).
    #[must_use]
    pub fn new(value: T) -> Self {
        if value.is_empty_part() {
            Self(None)
        } else {
            Self(Some(Arc::new(value)))
        }
    }

    /// The value (an associated function, so that it never hides a method of
    /// the value itself: `Shared::value(&shared)`).
    #[must_use]
    pub fn value(this: &Self) -> &T {
        match &this.0 {
            Some(value) => value,
            None => T::empty(),
        }
    }
}

impl<T: SharedPart> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: SharedPart> Default for Shared<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: SharedPart> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        Shared::value(self)
    }
}

impl<T: SharedPart> AsRef<T> for Shared<T> {
    fn as_ref(&self) -> &T {
        Shared::value(self)
    }
}

impl<T: SharedPart> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: SharedPart + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shared::value(self).fmt(f)
    }
}

impl<T: SharedPart + PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Shared::value(self) == Shared::value(other)
    }
}

impl<T: SharedPart + PartialEq> PartialEq<T> for Shared<T> {
    fn eq(&self, other: &T) -> bool {
        Shared::value(self) == other
    }
}

impl<T: SharedPart + Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Shared::value(self).serialize(serializer)
    }
}

impl<'de, T: SharedPart + Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

/// What a [`Shared`] can hold: the parts of an input a run's records share.
/// Implemented for the context (`serde_json::Value`) and the metadata
/// (`HashMap<String, String>`); sealed.
pub trait SharedPart: sealed::Sealed + Send + Sync + 'static {
    /// The empty value, which a [`Shared`] stores as nothing.
    #[doc(hidden)]
    fn empty() -> &'static Self;

    /// Whether the value is the empty one.
    #[doc(hidden)]
    fn is_empty_part(&self) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for serde_json::Value {}
    impl Sealed for std::collections::HashMap<String, String> {}
}

impl SharedPart for serde_json::Value {
    fn empty() -> &'static Self {
        static NULL: serde_json::Value = serde_json::Value::Null;
        &NULL
    }

    fn is_empty_part(&self) -> bool {
        self.is_null()
    }
}

impl SharedPart for HashMap<String, String> {
    fn empty() -> &'static Self {
        static EMPTY: LazyLock<HashMap<String, String>> = LazyLock::new(HashMap::new);
        &EMPTY
    }

    fn is_empty_part(&self) -> bool {
        self.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_are_stored_as_nothing_and_read_as_empty() {
        let context = Shared::new(serde_json::Value::Null);
        assert!(context.0.is_none());
        assert!(context.is_null());
        let metadata: Shared<HashMap<String, String>> = Shared::new(HashMap::new());
        assert!(metadata.0.is_none());
        assert!(metadata.get("k").is_none(), "reads as the map it holds");
    }

    #[test]
    fn non_empty_parts_are_shared() {
        let value = Shared::new(serde_json::json!({"k": 1}));
        let shared = value.clone();
        assert!(Arc::ptr_eq(
            shared.0.as_ref().unwrap(),
            value.0.as_ref().unwrap()
        ));
        assert_eq!(shared["k"], 1);
        assert_eq!(shared, serde_json::json!({"k": 1}));
    }

    #[test]
    fn recorded_input_round_trips_through_json_in_the_agent_input_shape() {
        let input = AgentInput::new("tides")
            .with_context(serde_json::json!({"depth": 2}))
            .with_metadata("lang", "en");
        let recorded = RecordedInput::from(&input);
        let json = serde_json::to_value(&recorded).unwrap();
        assert_eq!(json, serde_json::to_value(&input).unwrap());
        let back: RecordedInput = serde_json::from_value(json).unwrap();
        assert_eq!(back, recorded);
        let bare: RecordedInput = serde_json::from_str(r#"{"content": "x"}"#).unwrap();
        assert_eq!(bare.to_input(), AgentInput::new("x"));
    }
}
