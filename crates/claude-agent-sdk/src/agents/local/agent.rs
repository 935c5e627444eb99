//! [`LocalModelAgent`]: the builder and the [`Agent`] implementation.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::generate::{generate, Request, StopSignal};
use super::sampler::Sampling;
use super::{LocalModel, LocalModelError};
use crate::agents::delta::{DeltaHandler, DeltaSink, TextDelta};
use crate::agents::prompt::PromptTemplate;
use crate::orchestration::{
    Agent, AgentError, AgentInput, AgentOutput, ExecutionContext, OrchestrationError, Result, Usage,
};

/// The reply length when none is set.
const DEFAULT_MAX_TOKENS: u32 = 256;

/// Where the agent's model comes from.
#[derive(Clone)]
enum Source {
    Loaded(LocalModel),
    /// Loaded (or shared) on first use.
    Path(PathBuf, Arc<tokio::sync::OnceCell<LocalModel>>),
}

/// An agent that answers with a GGUF model run in-process on the CPU.
///
/// Greedy decoding by default, so a run is reproducible on one machine; set a
/// temperature for sampling (seeded), and a repetition penalty for small
/// models, which repeat themselves. The output is shaped as the HTTP agents':
/// the reply as `content`, and model, stop reason and [`Usage`] (tokens; cost
/// 0) in `data` and `metadata`, plus `data["timings"]`.
///
/// ```no_run
/// use claude_agent_sdk::agents::{LocalModel, LocalModelAgent};
/// use claude_agent_sdk::orchestration::{Agent, AgentInput};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let model = LocalModel::load_async("SmolLM2-135M-Instruct.Q4_1.gguf").await?;
/// let poet = LocalModelAgent::new("poet", &model)
///     .with_system_prompt("You write short poems.")
///     .with_max_tokens(64)
///     .with_repetition_penalty(1.3);
/// let output = poet.execute(AgentInput::new("A poem about the sea.")).await?;
/// println!("{}", output.content);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LocalModelAgent {
    name: String,
    description: String,
    source: Source,
    system: Option<String>,
    template: PromptTemplate,
    max_tokens: u32,
    sampling: Sampling,
    stop: Vec<String>,
    on_delta: Option<DeltaHandler>,
}

impl fmt::Debug for LocalModelAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model = match &self.source {
            Source::Loaded(m) => m.path().display().to_string(),
            Source::Path(p, _) => p.display().to_string(),
        };
        f.debug_struct("LocalModelAgent")
            .field("name", &self.name)
            .field("model", &model)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl LocalModelAgent {
    /// An agent called `name` answering with `model`.
    #[must_use]
    pub fn new(name: impl Into<String>, model: &LocalModel) -> Self {
        Self::with_source(name.into(), Source::Loaded(model.clone()))
    }

    /// An agent called `name` answering with the GGUF file at `path`, loaded
    /// (or shared with the agents already using it) on its first request.
    #[must_use]
    pub fn from_path(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::with_source(
            name.into(),
            Source::Path(path.into(), Arc::new(tokio::sync::OnceCell::new())),
        )
    }

    fn with_source(name: String, source: Source) -> Self {
        Self {
            name,
            description: "Answers with a language model run locally".into(),
            source,
            system: None,
            template: PromptTemplate::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            sampling: Sampling::default(),
            stop: Vec::new(),
            on_delta: None,
        }
    }

    /// Sets the description shown to people and registries.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the system message (otherwise the chat template's default, if any).
    #[must_use]
    pub fn with_system_prompt(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Sets how the input becomes the user message (see [`PromptTemplate`]).
    #[must_use]
    pub fn with_prompt_template(mut self, template: PromptTemplate) -> Self {
        self.template = template;
        self
    }

    /// Appends the input's context (as JSON) to the user message when the
    /// template does not place it.
    #[must_use]
    pub fn with_context_in_prompt(mut self, include: bool) -> Self {
        self.template = self.template.with_context(include);
        self
    }

    /// Sets the most tokens to generate (default 256).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the sampling temperature, from 0.0 (greedy, the default) to 2.0.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.sampling.temperature = temperature;
        self
    }

    /// Sets nucleus sampling's probability mass, in `(0, 1]` (default 1).
    #[must_use]
    pub fn with_top_p(mut self, top_p: f32) -> Self {
        self.sampling.top_p = top_p;
        self
    }

    /// Sets the sampling seed (default 42).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.sampling.seed = seed;
        self
    }

    /// Sets the repetition penalty over the last 64 tokens (1.0, the default,
    /// is none; 1.1–1.3 suits small models).
    #[must_use]
    pub fn with_repetition_penalty(mut self, penalty: f32) -> Self {
        self.sampling.repetition_penalty = penalty;
        self
    }

    /// Adds a stop sequence: the reply ends before it.
    #[must_use]
    pub fn with_stop_sequence(mut self, sequence: impl Into<String>) -> Self {
        self.stop.push(sequence.into());
        self
    }

    /// Reports the reply's text as it is generated.
    #[must_use]
    pub fn on_text_delta(
        mut self,
        handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delta = Some(DeltaHandler::new(handler));
        self
    }

    fn validate(&self) -> Result<()> {
        let invalid = |why: String| {
            Err(OrchestrationError::InvalidConfig(format!(
                "agent `{}`: {why}",
                self.name
            )))
        };
        let s = &self.sampling;
        if self.max_tokens == 0 {
            return invalid("max_tokens must be greater than zero".into());
        }
        if !(0.0..=2.0).contains(&s.temperature) {
            return invalid(format!(
                "temperature {} is outside 0.0..=2.0",
                s.temperature
            ));
        }
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            return invalid(format!("top_p {} is outside (0, 1]", s.top_p));
        }
        if !(s.repetition_penalty > 0.0 && s.repetition_penalty.is_finite()) {
            return invalid(format!(
                "repetition_penalty {} must be positive",
                s.repetition_penalty
            ));
        }
        Ok(())
    }

    /// The model, loading it on first use. The load runs on a task of its
    /// own that keeps the model in the agent even when the caller stops
    /// waiting for it (an attempt timed out or cancelled while the model
    /// loaded): the next attempt gets the loaded model, not a new load.
    ///
    /// # Errors
    /// A load error, as an [`OrchestrationError`].
    pub async fn model(&self) -> Result<LocalModel> {
        let (path, cell) = match &self.source {
            Source::Loaded(model) => return Ok(model.clone()),
            Source::Path(path, cell) => (path.clone(), Arc::clone(cell)),
        };
        if let Some(model) = cell.get() {
            return Ok(model.clone());
        }
        let load = tokio::spawn(async move {
            cell.get_or_try_init(|| LocalModel::load_async(path))
                .await
                .cloned()
        });
        let loaded = load
            .await
            .unwrap_or_else(|_| Err(LocalModelError::Compute("the loading task panicked".into())));
        loaded.map_err(|e| OrchestrationError::InvalidConfig(format!("agent `{}`: {e}", self.name)))
    }
}

/// Raises the flag when dropped: the attempt's future is gone, so is the
/// reason to generate.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl Agent for LocalModelAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.validate()?;
        let model = self.model().await?;
        let request = Request {
            prompt: model
                .0
                .chat
                .render(self.system.as_deref(), &self.template.render(&input)),
            max_tokens: self.max_tokens as usize,
            sampling: self.sampling.clone(),
            stop: self.stop.clone(),
        };
        let signal = StopSignal {
            flag: Arc::new(AtomicBool::new(false)),
            context: ExecutionContext::current(),
            deadline: crate::orchestration::current_deadline().map(tokio::time::Instant::into_std),
        };
        let _stop = StopOnDrop(Arc::clone(&signal.flag));
        let handler = self.on_delta.clone();
        let name = self.name.clone();
        let weights = Arc::clone(&model.0);
        let job = super::pool::run(move || {
            let mut sink = DeltaSink::new(handler.as_ref(), &name);
            generate(&weights, &request, &signal, &mut |text| sink.send(text))
        });
        let generation = job
            .await
            .map_err(|_| {
                OrchestrationError::AgentError(AgentError::new(format!(
                    "agent `{}`: the generation thread panicked",
                    self.name
                )))
            })?
            .map_err(|e: LocalModelError| match e {
                LocalModelError::Cancelled | LocalModelError::DeadlineExceeded => e.into(),
                other => OrchestrationError::AgentError(AgentError::new(format!(
                    "agent `{}`: {other}",
                    self.name
                ))),
            })?;

        let usage = Usage::new(
            generation.prompt_tokens as u64,
            generation.generated_tokens as u64,
        )
        .with_cost_usd(0.0);
        let finish = generation.finish.as_str();
        let decode_secs = generation.decode_time.as_secs_f64();
        let data = serde_json::json!({
            "provider": "local",
            "model": model.name(),
            "model_path": model.path(),
            "stop_reason": finish,
            "stop_sequence": generation.stop_sequence,
            "usage": usage,
            "timings": {
                "prompt_ms": generation.prompt_time.as_secs_f64() * 1e3,
                "decode_ms": decode_secs * 1e3,
                "decode_tokens_per_second": if decode_secs > 0.0 {
                    generation.generated_tokens as f64 / decode_secs
                } else { 0.0 },
            },
        });
        let mut metadata = HashMap::new();
        metadata.insert("provider".to_owned(), "local".to_owned());
        metadata.insert("model".to_owned(), model.name().to_owned());
        metadata.insert("input_tokens".to_owned(), usage.input_tokens.to_string());
        metadata.insert("output_tokens".to_owned(), usage.output_tokens.to_string());
        metadata.insert("cost_usd".to_owned(), "0.000000".to_owned());
        metadata.insert("stop_reason".to_owned(), finish.to_owned());
        let mut output = AgentOutput::new(generation.text).with_data(data);
        output.metadata = metadata;
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::local::{cache, fetch};

    /// An attempt cut short while its model loads (an attempt timeout, a
    /// cancel) leaves the load going, and the next attempt gets what it
    /// loads: the file is loaded once. (It was loaded again, so under a
    /// timeout shorter than a load every retry timed out too.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_cut_short_is_kept_for_the_next_attempt() {
        let model = fetch::fetch(&fetch::DEFAULT_MODEL, &mut |_| {})
            .unwrap_or_else(|error| panic!("this test needs the default model: {error}"));
        let dir = std::env::temp_dir().join(format!("load-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("{error}"));
        let copy = dir.join("copy.gguf");
        std::fs::copy(&model, &copy).unwrap_or_else(|error| panic!("{error}"));
        let agent = LocalModelAgent::from_path("slow-start", &copy);
        // A load reads megabytes: a millisecond cuts it short.
        let cut = tokio::time::timeout(std::time::Duration::from_millis(1), agent.model()).await;
        assert!(cut.is_err(), "the first attempt should be cut short");
        agent
            .model()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let canonical = copy
            .canonicalize()
            .unwrap_or_else(|error| panic!("{error}"));
        let loads = cache::LOADED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|path| **path == canonical)
            .count();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(loads, 1, "the model was loaded again");
    }
}
