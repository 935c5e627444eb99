//! The last line of text each running agent produced — a model's reply as it
//! streams, a program's output as it prints — for the live display to show
//! beside the agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use claude_agent_sdk::agents::TextDelta;

use crate::factory::OutputListener;
use crate::workflow::env::Redactor;

/// The most characters of a line kept (and shown).
const MAX_CHARS: usize = 200;

/// The latest line of text of each agent, by agent name.
#[derive(Clone, Default)]
pub struct Previews {
    lines: Arc<Mutex<HashMap<String, Preview>>>,
    redactor: Redactor,
}

#[derive(Default)]
struct Preview {
    /// The last complete line that was not blank.
    line: String,
    /// What came after the last newline.
    partial: String,
}

impl Previews {
    /// Previews whose lines are shown with the values of the workflow's
    /// environment references redacted (a whole line at a time, so that a value
    /// that arrives in pieces is still caught).
    #[must_use]
    pub fn new(redactor: Redactor) -> Self {
        Self {
            lines: Arc::default(),
            redactor,
        }
    }

    /// A listener (for [`Factory::with_output_listener`](crate::factory::Factory::with_output_listener))
    /// that keeps each agent's latest line.
    #[must_use]
    pub fn listener(&self) -> OutputListener {
        let previews = self.clone();
        Arc::new(move |delta: TextDelta<'_>| {
            previews.take(delta.agent, delta.is_first, delta.text);
        })
    }

    /// The line to show for `agent`, if it produced any text.
    #[must_use]
    pub fn shown(&self, agent: &str) -> Option<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let preview = lines.get(agent)?;
        let partial = preview.partial.trim();
        let shown = if partial.is_empty() {
            preview.line.as_str()
        } else {
            partial
        };
        (!shown.is_empty()).then(|| self.redactor.redact(shown).into_owned())
    }

    /// Forgets `agent`'s text (a new attempt starts afresh).
    pub fn clear(&self, agent: &str) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(agent);
    }

    fn take(&self, agent: &str, is_first: bool, text: &str) {
        let mut previews = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let preview = previews.entry(agent.to_owned()).or_default();
        if is_first {
            *preview = Preview::default();
        }
        let mut pieces = text.split('\n');
        if let Some(rest_of_line) = pieces.next() {
            push_bounded(&mut preview.partial, rest_of_line);
        }
        for piece in pieces {
            // A newline ended the partial line: it becomes the last line, unless blank.
            let ended = std::mem::take(&mut preview.partial);
            if !ended.trim().is_empty() {
                preview.line = ended.trim().to_owned();
            }
            push_bounded(&mut preview.partial, piece);
        }
    }
}

/// Appends `text` to `line`, keeping at most [`MAX_CHARS`] characters (the latest).
fn push_bounded(line: &mut String, text: &str) {
    line.push_str(text);
    let excess = line.chars().count().saturating_sub(MAX_CHARS);
    if excess > 0 {
        let cut = line
            .char_indices()
            .nth(excess)
            .map_or(line.len(), |(i, _)| i);
        line.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_latest_line_streamed_or_printed() {
        let previews = Previews::default();
        assert_eq!(previews.shown("a"), None);
        previews.take("a", true, "Hel");
        assert_eq!(previews.shown("a").as_deref(), Some("Hel"));
        previews.take("a", false, "lo\nwor");
        assert_eq!(previews.shown("a").as_deref(), Some("wor"));
        previews.take("a", false, "ld\n\n");
        assert_eq!(previews.shown("a").as_deref(), Some("world"));
        previews.take("b", true, "other\n");
        assert_eq!(previews.shown("a").as_deref(), Some("world"));
        previews.take("a", true, "again");
        assert_eq!(
            previews.shown("a").as_deref(),
            Some("again"),
            "a new attempt starts afresh"
        );
        previews.clear("a");
        assert_eq!(previews.shown("a"), None);
    }

    #[test]
    fn secrets_are_redacted_even_when_they_arrive_in_pieces() {
        let redactor = Redactor::new(
            [("TOKEN".to_owned(), "s3cr3t-value".to_owned())],
            &std::collections::HashSet::new(),
        );
        let previews = Previews::new(redactor);
        previews.take("a", true, "key=s3cr3");
        previews.take("a", false, "t-value ok");
        assert_eq!(previews.shown("a").as_deref(), Some("key=${TOKEN} ok"));
    }

    #[test]
    fn long_lines_keep_their_end() {
        let previews = Previews::default();
        let long = format!("{}end", "é".repeat(3 * MAX_CHARS));
        previews.take("a", true, &long);
        let shown = previews.shown("a").unwrap();
        assert_eq!(shown.chars().count(), MAX_CHARS);
        assert!(shown.ends_with("end"));
    }
}
