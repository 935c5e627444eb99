//! What the HTTP agents share: the [`Provider`] (a pooled client and a
//! [`RateLimiter`]), error mapping, server-sent events and prices.

mod failure;
mod limiter;
mod pricing;
mod provider;
mod reply;
mod sse;

pub use limiter::{ProviderLimits, RateLimiter, RatePermit};
pub use pricing::{PriceTable, Pricing};
pub use provider::{Provider, ProviderBuilder};

#[cfg(feature = "openai")]
pub(crate) use failure::is_retryable_status;
pub(crate) use failure::{malformed, with_request_id, ErrorDetail};
pub(crate) use provider::{is_event_stream, WireErrors};
pub(crate) use reply::ReplyFormat;
pub(crate) use sse::SseEvent;
