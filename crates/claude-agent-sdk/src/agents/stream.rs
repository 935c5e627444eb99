//! What agents report as they run, as a [`Stream`]: the callbacks
//! (`on_text_delta`, and for Claude Code `on_event`) are synchronous and
//! borrow their text; [`text_delta_stream`] and [`event_stream`] give a
//! handler to set and a stream of owned items to `.await` instead, the way
//! the official SDKs hand out an async iterator.
//!
//! ```
//! use claude_agent_sdk::agents::{text_delta_stream, CommandAgent};
//! use claude_agent_sdk::orchestration::{Agent, AgentInput};
//! use futures::StreamExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (handler, mut deltas) = text_delta_stream();
//! let agent = CommandAgent::shell("talker", "echo one; echo two").on_text_delta(handler);
//! let output = agent.execute(AgentInput::new("")).await?;
//! drop(agent); // the stream ends once the agent (and its handler) is gone
//! let mut text = String::new();
//! while let Some(delta) = deltas.next().await {
//!     text.push_str(&delta.text);
//! }
//! assert_eq!(text, "one\ntwo\n");
//! assert_eq!(output.content, "one\ntwo");
//! # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
//! # }).unwrap();
//! ```

use futures::stream::BoxStream;
use futures::StreamExt as _;
use tokio::sync::mpsc;

use super::delta::TextDelta;

/// A [`TextDelta`] that owns its text, as a stream yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedTextDelta {
    /// The name of the agent whose reply this is.
    pub agent: String,
    /// The new text.
    pub text: String,
    /// Whether this is the first piece of text of its attempt (a retry
    /// starts again).
    pub is_first: bool,
}

/// A handler for an agent's `on_text_delta`, and the stream of the deltas it
/// receives; the stream ends when the handler is dropped (with the agent).
pub fn text_delta_stream() -> (
    impl Fn(TextDelta<'_>) + Send + Sync + 'static,
    BoxStream<'static, OwnedTextDelta>,
) {
    let (handler, stream) = event_stream::<OwnedTextDelta>();
    let handler = move |delta: TextDelta<'_>| {
        handler(&OwnedTextDelta {
            agent: delta.agent.to_owned(),
            text: delta.text.to_owned(),
            is_first: delta.is_first,
        });
    };
    (handler, stream)
}

/// A handler that takes events by reference (such as
/// `ClaudeCodeAgent::on_event`'s), and the stream of the events it receives;
/// the stream ends when the handler is dropped.
pub fn event_stream<E: Clone + Send + 'static>(
) -> (impl Fn(&E) + Send + Sync + 'static, BoxStream<'static, E>) {
    let (sender, receiver) = mpsc::unbounded_channel::<E>();
    let handler = move |event: &E| {
        // A stream nobody reads any more is not the agent's failure.
        let _ = sender.send(event.clone());
    };
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (event, receiver))
    })
    .boxed();
    (handler, stream)
}
