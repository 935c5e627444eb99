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

use bytestring::ByteString;

use crate::orchestration::agent::AgentInput;
use crate::orchestration::recorded::{RecordedInput, Shared};

/// One agent's input, borrowed from what the run keeps anyway.
pub(crate) struct StepInput<'a> {
    content: &'a str,
    context: &'a Shared<serde_json::Value>,
    metadata: &'a Shared<HashMap<String, String>>,
}

impl<'a> StepInput<'a> {
    /// An input of `content` with the run's context and metadata.
    pub(crate) fn new(
        content: &'a str,
        context: &'a Shared<serde_json::Value>,
        metadata: &'a Shared<HashMap<String, String>>,
    ) -> Self {
        Self {
            content,
            context,
            metadata,
        }
    }

    /// The input every agent of a fan-out gets, taken from its record form.
    pub(crate) fn shared(input: &'a RecordedInput) -> Self {
        Self::new(&input.content, &input.context, &input.metadata)
    }

    /// The input's content.
    pub(crate) fn content(&self) -> &'a str {
        self.content
    }

    /// The agent's own copy, which it consumes.
    pub(crate) fn for_agent(&self) -> AgentInput {
        AgentInput {
            content: self.content.to_owned(),
            context: serde_json::Value::clone(self.context),
            metadata: HashMap::clone(self.metadata),
        }
    }

    /// The input as a record holds it: `text` (the content as a record text)
    /// with the run's shared context and metadata.
    pub(crate) fn for_record(&self, text: ByteString) -> RecordedInput {
        debug_assert_eq!(text, self.content);
        RecordedInput {
            content: text,
            context: self.context.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_share_the_run_parts_and_agents_get_copies() {
        let context = Shared::new(serde_json::json!({"k": 1}));
        let metadata = Shared::new(HashMap::from([("m".to_owned(), "v".to_owned())]));
        let content = "a text longer than twenty-three bytes, kept behind a count";
        let step = StepInput::new(content, &context, &metadata);
        let recorded = step.for_record(ByteString::from(content));
        assert!(std::ptr::eq(
            Shared::value(&recorded.context),
            Shared::value(&context)
        ));
        assert!(std::ptr::eq(
            Shared::value(&recorded.metadata),
            Shared::value(&metadata)
        ));
        let agent = step.for_agent();
        assert_eq!(agent, recorded.to_input());
        assert_ne!(agent.content.as_ptr(), content.as_ptr());
    }
}
