//! One generation: prompt in, tokens out, until the end of the turn, the token
//! limit, a stop sequence, or a stop from outside.
//!
//! It runs on a generation thread (see [`super::pool`]), never on the async
//! runtime's workers. Between every two tokens — and between the layers of
//! each forward pass — it checks its [`StopSignal`]: set when the attempt's future is
//! dropped (a timeout or a cancelled run drops it) or when the run's context
//! is cancelled, or when the attempt's deadline passes. So a stopped attempt
//! costs at most one more layer of compute.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chat::Segment;
use super::error::LocalModelError;
use super::forward::{forward, KvCache};
use super::model::ModelWeights;
use super::sampler::{Sampler, Sampling};
use super::tokenizer::Utf8Stream;
use crate::orchestration::ExecutionContext;

/// Prompt tokens processed per forward pass: the more, the more each weight
/// loaded serves, at the cost of buffers that grow with the chunk. (A stop is
/// checked between layers, so the chunk does not delay it.)
const PROMPT_CHUNK: usize = 128;

/// What tells a generation to stop.
#[derive(Debug, Clone, Default)]
pub(crate) struct StopSignal {
    pub(crate) flag: Arc<AtomicBool>,
    pub(crate) context: Option<ExecutionContext>,
    pub(crate) deadline: Option<Instant>,
}

impl StopSignal {
    fn check(&self) -> Result<(), LocalModelError> {
        if self.flag.load(Ordering::Relaxed)
            || self
                .context
                .as_ref()
                .is_some_and(ExecutionContext::is_cancelled)
        {
            return Err(LocalModelError::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(LocalModelError::DeadlineExceeded);
        }
        Ok(())
    }
}

/// What a generation is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) prompt: Vec<Segment>,
    pub(crate) max_tokens: usize,
    pub(crate) sampling: Sampling,
    pub(crate) stop: Vec<String>,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The model ended its turn.
    EndOfTurn,
    /// The token limit (or the context window) was reached.
    Length,
    /// A stop sequence appeared.
    StopSequence,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::EndOfTurn => "end_turn",
            Self::Length => "max_tokens",
            Self::StopSequence => "stop_sequence",
        }
    }
}

/// What a generation produced.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    pub(crate) text: String,
    pub(crate) prompt_tokens: usize,
    pub(crate) generated_tokens: usize,
    pub(crate) finish: Finish,
    pub(crate) stop_sequence: Option<String>,
    pub(crate) prompt_time: Duration,
    pub(crate) decode_time: Duration,
}

/// Tokenizes a rendered prompt.
pub(crate) fn tokenize(model: &ModelWeights, prompt: &[Segment]) -> Vec<u32> {
    let mut ids = Vec::new();
    for segment in prompt {
        match segment {
            Segment::Markup(t) => model.tokenizer.encode(t, true, &mut ids),
            Segment::Text(t) => model.tokenizer.encode(t, false, &mut ids),
        }
    }
    ids
}

/// Runs one generation, reporting text as it is produced through `on_text`.
pub(crate) fn generate(
    model: &ModelWeights,
    request: &Request,
    stop: &StopSignal,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, LocalModelError> {
    let started = Instant::now();
    // A job waits in the pool's queue behind the others: one whose attempt
    // was dropped meanwhile does no work at all, not even the tokenizing.
    stop.check()?;
    let limit = model.config.context_length;
    let text_len: usize = request
        .prompt
        .iter()
        .map(|segment| match segment {
            Segment::Markup(t) | Segment::Text(t) => t.len(),
        })
        .sum();
    let fewest = model.tokenizer.fewest_tokens(text_len);
    if fewest >= limit {
        return Err(LocalModelError::PromptTooLong {
            tokens: fewest,
            limit,
        });
    }
    let prompt = tokenize(model, &request.prompt);
    if prompt.len() >= limit {
        return Err(LocalModelError::PromptTooLong {
            tokens: prompt.len(),
            limit,
        });
    }
    let mut cache = KvCache::new(model);
    let mut logits = Vec::new();
    let check = || stop.check();
    for chunk in prompt.chunks(PROMPT_CHUNK) {
        logits = forward(model, chunk, &mut cache, &check)?;
    }
    let prompt_time = started.elapsed();
    let decode_started = Instant::now();

    let mut sampler = Sampler::new(request.sampling.clone());
    let mut history = prompt.clone();
    let mut utf8 = Utf8Stream::default();
    let mut text = String::new();
    // Text not yet reported: it may be the start of a stop sequence.
    let mut sent = 0;
    let hold = request.stop.iter().map(String::len).max().unwrap_or(0);
    let mut generated = 0;
    let mut finish = Finish::Length;
    let mut stop_sequence = None;
    while generated < request.max_tokens && cache.len() < limit {
        stop.check()?;
        let token = sampler.next(&mut logits, &history);
        generated += 1;
        if model.end_of_turn.contains(&token) {
            finish = Finish::EndOfTurn;
            break;
        }
        history.push(token);
        text.push_str(&utf8.push(model.tokenizer.token_bytes(token)));
        if let Some((at, seq)) = find_stop(&text, &request.stop, sent) {
            text.truncate(at);
            finish = Finish::StopSequence;
            stop_sequence = Some(seq.to_owned());
            break;
        }
        let safe = floor_boundary(&text, text.len().saturating_sub(hold));
        if safe > sent {
            on_text(&text[sent..safe]);
            sent = safe;
        }
        if generated < request.max_tokens && cache.len() < limit {
            logits = forward(model, &[token], &mut cache, &check)?;
        }
    }
    if finish != Finish::StopSequence {
        text.push_str(&utf8.finish());
    }
    if text.len() > sent {
        on_text(&text[sent..]);
    }
    Ok(Generation {
        text,
        prompt_tokens: prompt.len(),
        generated_tokens: generated,
        finish,
        stop_sequence,
        prompt_time,
        decode_time: decode_started.elapsed(),
    })
}

/// The first stop sequence in `text` that ends after `from` (earlier text was
/// checked already), as its byte offset.
fn find_stop<'s>(text: &str, stops: &'s [String], from: usize) -> Option<(usize, &'s str)> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let begin = floor_boundary(text, from.saturating_sub(s.len()));
            text[begin..]
                .find(s.as_str())
                .map(|at| (begin + at, s.as_str()))
        })
        .min_by_key(|&(at, _)| at)
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_earliest_stop_sequence() {
        let stops = vec!["END".to_owned(), "\n\n".to_owned()];
        assert_eq!(find_stop("a\n\nbEND", &stops, 0), Some((1, "\n\n")));
        assert_eq!(find_stop("abc", &stops, 0), None);
        assert_eq!(floor_boundary("é", 1), 0);
    }

    #[test]
    fn a_raised_flag_or_a_past_deadline_stops() {
        let signal = StopSignal::default();
        assert!(signal.check().is_ok());
        signal.flag.store(true, Ordering::Relaxed);
        assert!(matches!(signal.check(), Err(LocalModelError::Cancelled)));
        let late = StopSignal {
            deadline: Some(Instant::now()),
            ..StopSignal::default()
        };
        assert!(matches!(
            late.check(),
            Err(LocalModelError::DeadlineExceeded)
        ));
    }
}
