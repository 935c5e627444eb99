//! [`LocalModelError`]: everything that can go wrong between a GGUF file and a
//! generated reply, as typed values rather than panics.
//!
//! A model file is user input: it may be truncated, corrupt, of an
//! architecture this runtime does not implement, or lack the metadata the
//! tokenizer and chat template are built from. Each of these is a variant
//! that names the file and says what to do, and each becomes a permanent
//! [`OrchestrationError`] (retrying cannot fix a file) — except a cancelled
//! or timed-out generation, which maps to the orchestration's own variants.

use std::path::PathBuf;

use crate::orchestration::{AgentError, OrchestrationError};

/// Why a local model could not be loaded, fetched or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalModelError {
    /// The file could not be opened or read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a readable GGUF file (wrong magic, truncated, corrupt).
    #[error("{path} is not a valid GGUF model file ({reason}); download it again, or pass the path of another GGUF file")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// The model's architecture is not one this runtime implements.
    #[error("{path}: architecture `{architecture}` is not supported (supported: llama — SmolLM2, Llama 3.x — and qwen2 — Qwen2.5)")]
    UnsupportedArchitecture {
        /// The file.
        path: PathBuf,
        /// The file's `general.architecture`.
        architecture: String,
    },

    /// A metadata entry the runtime needs is absent or of the wrong type.
    #[error("{path}: metadata `{key}` is missing or malformed")]
    MissingMetadata {
        /// The file.
        path: PathBuf,
        /// The GGUF metadata key.
        key: String,
    },

    /// A weight tensor is absent, of the wrong shape, or cannot be read.
    #[error("{path}: tensor `{name}`: {reason}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// What was wrong with it.
        reason: String,
    },

    /// The tokenizer in the file's metadata is not a byte-level BPE this
    /// runtime implements.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// The file's `tokenizer.chat_template` is absent or not a format this
    /// runtime recognises (ChatML or Llama 3).
    #[error("{path}: chat template not recognised ({reason}); supported: ChatML (`<|im_start|>`) and Llama 3 (`<|start_header_id|>`)")]
    ChatTemplate {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },

    /// The prompt does not fit the context window.
    #[error("the prompt is {tokens} tokens long or more, past the {limit}-token context window")]
    PromptTooLong {
        /// The prompt's length in tokens (at least this many: a prompt far
        /// too long is refused before it is encoded whole).
        tokens: usize,
        /// The context window.
        limit: usize,
    },

    /// The model computation failed (a bug, or a file whose shapes lie).
    #[error("model computation failed: {0}")]
    Compute(String),

    /// The generation was stopped: the attempt was cancelled or dropped.
    #[error("generation cancelled")]
    Cancelled,

    /// The generation ran past the attempt's deadline.
    #[error("generation ran past the attempt's deadline")]
    DeadlineExceeded,

    /// The default model could not be fetched (see the message for what to do).
    #[error(transparent)]
    Fetch(#[from] super::fetch::FetchError),
}

/// candle's message for `e`, without the backtrace candle attaches when
/// `RUST_BACKTRACE` is set: the error is about the file or the computation,
/// and a message dozens of lines long (candle's own frames) buries that.
pub(crate) fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        candle_core::Error::WithPath { inner, path } => {
            format!("{}: {}", path.display(), candle_message(inner))
        }
        other => other.to_string(),
    }
}

impl From<LocalModelError> for OrchestrationError {
    fn from(error: LocalModelError) -> Self {
        match error {
            LocalModelError::Cancelled => OrchestrationError::Cancelled,
            LocalModelError::DeadlineExceeded => {
                OrchestrationError::Timeout("local model generation".into())
            }
            LocalModelError::Io { .. }
            | LocalModelError::InvalidFile { .. }
            | LocalModelError::UnsupportedArchitecture { .. }
            | LocalModelError::MissingMetadata { .. }
            | LocalModelError::Tokenizer { .. }
            | LocalModelError::ChatTemplate { .. }
            | LocalModelError::Fetch(_) => OrchestrationError::InvalidConfig(error.to_string()),
            LocalModelError::BadTensor { .. }
            | LocalModelError::PromptTooLong { .. }
            | LocalModelError::Compute(_) => {
                OrchestrationError::AgentError(AgentError::new(error.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `RUST_BACKTRACE` set, candle appends a backtrace to its errors:
    /// a truncated file's error was forty lines of candle's stack frames.
    #[test]
    fn candle_messages_leave_the_backtrace_out() {
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg("tensor needs 64 bytes".into())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert_eq!(candle_message(&traced), "tensor needs 64 bytes");
        let in_context = traced.context("reading `blk.0`");
        assert_eq!(
            candle_message(&in_context),
            "reading `blk.0`: tensor needs 64 bytes"
        );
    }
}
