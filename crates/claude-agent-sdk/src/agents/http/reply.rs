//! Reading a model's reply, streamed or whole, in one place for every HTTP
//! agent: what differs between back ends is only their wire format, a
//! [`ReplyFormat`].

use std::ops::ControlFlow;

use super::{is_event_stream, Provider, RatePermit, SseEvent};
use crate::agents::delta::DeltaSink;
use crate::agents::reply::ModelReply;
use crate::orchestration::Result;

/// A back end's wire format for replies: a streamed reply is assembled
/// event by event (the format's value is the reply so far), a whole one is
/// parsed at once.
pub(crate) trait ReplyFormat: Default {
    /// Takes one event of a streamed reply, handing its text to `sink`;
    /// breaks at the stream's last event.
    ///
    /// # Errors
    /// An event the format cannot read, or an error the back end reports.
    fn on_event(
        &mut self,
        provider: &str,
        event: &SseEvent,
        sink: &mut DeltaSink<'_>,
    ) -> Result<ControlFlow<()>>;

    /// The reply, once the stream ended.
    ///
    /// # Errors
    /// A stream that ended before the reply was whole.
    fn finish(self, provider: &str) -> Result<ModelReply>;

    /// A reply read whole.
    ///
    /// # Errors
    /// A body the format cannot read, or an error object in it.
    fn parse(provider: &str, body: &[u8]) -> Result<ModelReply>;
}

impl Provider {
    /// Reads `response` in format `F` — streamed or whole — under the limiter
    /// slot `permit`, which is released as soon as the body is in; the text
    /// goes to `sink` as it comes.
    pub(crate) async fn read_model_reply<F: ReplyFormat>(
        &self,
        response: reqwest::Response,
        permit: RatePermit,
        mut sink: DeltaSink<'_>,
    ) -> Result<ModelReply> {
        let provider = self.name();
        if is_event_stream(&response) {
            let mut format = F::default();
            self.read_events(response, |event| {
                format.on_event(provider, &event, &mut sink)
            })
            .await?;
            drop(permit);
            format.finish(provider)
        } else {
            let body = self.read_reply(response).await?;
            // The reply is read: the next request may go while this one is parsed.
            drop(permit);
            let reply = F::parse(provider, &body)?;
            sink.send(&reply.text);
            Ok(reply)
        }
    }
}
