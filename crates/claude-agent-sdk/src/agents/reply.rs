//! [`ModelReply`]: what an HTTP model agent got back, and how it becomes an
//! [`AgentOutput`].

use std::collections::HashMap;

use crate::agents::http::{Pricing, Provider};
use crate::orchestration::{AgentOutput, Usage};

/// A model's reply, in wire-format-neutral terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ModelReply {
    pub(crate) text: String,
    pub(crate) model: Option<String>,
    pub(crate) stop_reason: Option<String>,
    pub(crate) stop_sequence: Option<String>,
    /// What the back end reported using; `None` when the reply said nothing
    /// of it (then its cost is unknown too, not zero).
    pub(crate) usage: Option<Usage>,
    pub(crate) message_id: Option<String>,
    pub(crate) request_id: Option<String>,
}

impl ModelReply {
    /// The agent output: the text as `content`; model, stop reason, usage and ids
    /// in `data` and `metadata`. The cost comes from `pricing`, or else the
    /// provider's price table, unless the back end reported one.
    pub(crate) fn into_output(
        mut self,
        provider: &Provider,
        requested_model: &str,
        pricing: Option<Pricing>,
    ) -> AgentOutput {
        let model = self
            .model
            .take()
            .unwrap_or_else(|| requested_model.to_owned());
        if let Some(usage) = self.usage.as_mut().filter(|u| u.cost_usd.is_none()) {
            let price = pricing
                .or_else(|| provider.prices().get(&model))
                .or_else(|| provider.prices().get(requested_model));
            if let Some(price) = price {
                usage.cost_usd = Some(price.cost(usage));
            }
        }
        let mut metadata = HashMap::new();
        metadata.insert("provider".to_owned(), provider.name().to_owned());
        metadata.insert("model".to_owned(), model.clone());
        if let Some(usage) = &self.usage {
            metadata.insert("input_tokens".to_owned(), usage.input_tokens.to_string());
            metadata.insert("output_tokens".to_owned(), usage.output_tokens.to_string());
            if let Some(cost) = usage.cost_usd {
                metadata.insert("cost_usd".to_owned(), format!("{cost:.6}"));
            }
        }
        if let Some(reason) = &self.stop_reason {
            metadata.insert("stop_reason".to_owned(), reason.clone());
        }
        if let Some(id) = &self.request_id {
            metadata.insert("request_id".to_owned(), id.clone());
        }
        let data = serde_json::json!({
            "provider": provider.name(),
            "model": model,
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": self.usage,
            "message_id": self.message_id,
            "request_id": self.request_id,
        });
        let mut output = AgentOutput::new(self.text).with_data(data);
        output.metadata = metadata;
        output
    }
}
