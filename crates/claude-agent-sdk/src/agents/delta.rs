//! [`TextDelta`]: a piece of a reply, reported while the reply streams in.

use std::fmt;
use std::sync::Arc;

/// A piece of text an agent received while its reply was streaming.
///
/// Handlers are set with `on_text_delta` on the streaming agents. A retry streams
/// the reply again from its start: [`is_first`](Self::is_first) marks the first
/// piece of each attempt, so a display can drop what a failed attempt showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TextDelta<'a> {
    /// The name of the agent whose reply this is.
    pub agent: &'a str,
    /// The new text.
    pub text: &'a str,
    /// Whether this is the first piece of text of this attempt.
    pub is_first: bool,
}

/// A shared callback for text deltas.
#[derive(Clone)]
pub(crate) struct DeltaHandler(Arc<dyn Fn(TextDelta<'_>) + Send + Sync>);

impl DeltaHandler {
    pub(crate) fn new(handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(handler))
    }
}

impl fmt::Debug for DeltaHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeltaHandler")
    }
}

/// Reports the deltas of one attempt to an optional handler.
pub(crate) struct DeltaSink<'a> {
    handler: Option<&'a DeltaHandler>,
    agent: &'a str,
    sent_any: bool,
}

impl<'a> DeltaSink<'a> {
    pub(crate) fn new(handler: Option<&'a DeltaHandler>, agent: &'a str) -> Self {
        Self {
            handler,
            agent,
            sent_any: false,
        }
    }

    /// Reports `text`, unless it is empty.
    pub(crate) fn send(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(handler) = self.handler {
            (handler.0)(TextDelta {
                agent: self.agent,
                text,
                is_first: !self.sent_any,
            });
        }
        self.sent_any = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn marks_the_first_delta_and_skips_empty_ones() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let handler = DeltaHandler::new(move |d| {
            log.lock()
                .unwrap()
                .push((d.agent.to_owned(), d.text.to_owned(), d.is_first));
        });
        let mut sink = DeltaSink::new(Some(&handler), "a");
        sink.send("");
        sink.send("he");
        sink.send("llo");
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                ("a".to_owned(), "he".to_owned(), true),
                ("a".to_owned(), "llo".to_owned(), false)
            ]
        );
        DeltaSink::new(None, "b").send("ignored");
    }
}
