//! What one agent of a run is given: the source of each attempt's own
//! [`AgentInput`] and of the [`RecordedInput`] its trace records share.
//!
//! An agent consumes its input, so every attempt gets a fresh copy; the
//! records, though, only need to *show* the input, so they share one text. A
//! [`StepInput`] borrows the parts every agent of the run shares (context and
//! metadata, behind the run's `Arc`s) and makes the record text at most once —
//! or not at all, when the text is already known: a pipeline step's input is
//! the previous step's recorded output, and a fan-out's input is the same for
//! every agent.

use std::collections::HashMap;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::orchestration::agent::AgentInput;
use crate::orchestration::trace::RecordedInput;

/// One agent's input, borrowed from what the run keeps anyway.
pub(crate) struct StepInput<'a> {
    content: &'a str,
    context: &'a Arc<serde_json::Value>,
    metadata: &'a Arc<HashMap<String, String>>,
    /// The text the step's records share, when the run keeps records.
    text: Option<SmolStr>,
}

impl<'a> StepInput<'a> {
    /// An input of `content` with the run's context and metadata. With
    /// `record`, the step's records share `text` — `content` as a record text
    /// already, when known — or one made now.
    pub(crate) fn new(
        content: &'a str,
        context: &'a Arc<serde_json::Value>,
        metadata: &'a Arc<HashMap<String, String>>,
        text: Option<SmolStr>,
        record: bool,
    ) -> Self {
        debug_assert!(text.as_ref().is_none_or(|text| text == content));
        Self {
            content,
            context,
            metadata,
            text: record.then(|| text.unwrap_or_else(|| SmolStr::new(content))),
        }
    }

    /// The input every agent of a fan-out gets, taken from its record form;
    /// with `record`, the records share its text.
    pub(crate) fn shared(input: &'a RecordedInput, record: bool) -> Self {
        let text = record.then(|| input.content.clone());
        Self::new(
            &input.content,
            &input.context,
            &input.metadata,
            text,
            record,
        )
    }

    /// The agent's own copy, which it consumes.
    pub(crate) fn for_agent(&self) -> AgentInput {
        AgentInput {
            content: self.content.to_owned(),
            context: serde_json::Value::clone(self.context),
            metadata: HashMap::clone(self.metadata),
        }
    }

    /// The input as a record holds it, sharing the text and the run's parts.
    pub(crate) fn for_record(&self) -> RecordedInput {
        RecordedInput {
            content: self
                .text
                .clone()
                .unwrap_or_else(|| SmolStr::new(self.content)),
            context: Arc::clone(self.context),
            metadata: Arc::clone(self.metadata),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_share_one_text_and_agents_get_copies() {
        let context = Arc::new(serde_json::json!({"k": 1}));
        let metadata = Arc::new(HashMap::from([("m".to_owned(), "v".to_owned())]));
        let content = "a text longer than twenty-three bytes, kept behind a count";
        let step = StepInput::new(content, &context, &metadata, None, true);
        let (first, second) = (step.for_record(), step.for_record());
        assert_eq!(first, second);
        assert_eq!(first.content.as_ptr(), second.content.as_ptr());
        assert!(Arc::ptr_eq(&first.context, &context));
        let agent = step.for_agent();
        assert_eq!(agent, first.to_input());
        assert_ne!(agent.content.as_ptr(), content.as_ptr());
    }

    #[test]
    fn a_known_text_is_used_as_is() {
        let input = RecordedInput::from(AgentInput::new("x".repeat(64)));
        let step = StepInput::shared(&input, true);
        assert_eq!(
            step.for_record().content.as_ptr(),
            input.content.as_ptr(),
            "the fan-out's records share the run's text"
        );
    }
}
