//! The agent factory: a checked [`AgentDef`] becomes a library agent.
//!
//! This is the one file that knows `claude_agent_sdk::agents`; when that API
//! moves, only this file follows it. HTTP agents on the same server (base URL
//! and key) share one [`Provider`], so they share its connection pool and rate
//! limiter.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use claude_agent_sdk::agents::local::fetch;
use claude_agent_sdk::agents::{
    ClaudeAgent, ClaudeCodeAgent, CommandAgent, LocalModelAgent, OpenAiCompatibleAgent, OutputMode,
    PromptTemplate, Provider, ProviderLimits, StdinMode, TextDelta,
};
use claude_agent_sdk::orchestration::Agent;

use crate::template::{self, TemplateAgent};
use crate::workflow::model::{
    ClaudeCodeSettings, CommandSettings, LocalModelSpec, LocalSettings, ModelSettings,
};
use crate::workflow::raw::{AgentKind, OutputSpec, StdinSpec};
use crate::workflow::{AgentDef, Settings};

/// Hears the text agents produce while they run (see [`Factory::with_output_listener`]).
pub type OutputListener = Arc<dyn Fn(TextDelta<'_>) + Send + Sync>;

/// Builds agents, sharing one provider per server.
#[derive(Default)]
pub struct Factory {
    providers: HashMap<(AgentKind, String, Option<String>), Provider>,
    listener: Option<OutputListener>,
    /// Told how many items each map node runs.
    map_counts: Option<crate::graph_plan::MapCounts>,
}

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factory")
            .field("providers", &self.providers.len())
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl Factory {
    /// A factory with no providers yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands `listener` the text every agent that produces some (models as they
    /// stream, programs as they print) produces while it runs.
    #[must_use]
    pub fn with_output_listener(mut self, listener: Option<OutputListener>) -> Self {
        self.listener = listener;
        self
    }

    /// Has the map nodes of the plan tell `counts` how many items they run.
    #[must_use]
    pub fn with_map_counts(mut self, counts: crate::graph_plan::MapCounts) -> Self {
        self.map_counts = Some(counts);
        self
    }

    /// What the map nodes tell how many items they run, if anything.
    #[must_use]
    pub fn map_counts(&self) -> Option<&crate::graph_plan::MapCounts> {
        self.map_counts.as_ref()
    }

    /// `agent`, telling the listener (if any) the text it produces.
    fn listened(&self, agent: impl Producing) -> Box<dyn Agent> {
        match &self.listener {
            Some(listener) => {
                let listener = Arc::clone(listener);
                agent.on_text(move |delta| listener(delta))
            }
            None => Box::new(agent),
        }
    }

    /// The agent `def` describes.
    ///
    /// # Errors
    /// A message naming the agent when the library refuses its settings (an
    /// invalid base URL, for instance).
    pub fn build(&mut self, def: &AgentDef) -> Result<Box<dyn Agent>, String> {
        let description = def.metadata.description.clone();
        let agent: Box<dyn Agent> = match &def.settings {
            Settings::Template { template } => {
                let pieces = template::parse(template).map_err(|unknown| {
                    let texts: Vec<&str> = unknown.iter().map(|u| u.text.as_str()).collect();
                    format!(
                        "agent `{}`: unknown placeholder {}",
                        def.id,
                        texts.join(", ")
                    )
                })?;
                Box::new(TemplateAgent::new(&def.id, description, pieces))
            }
            Settings::Command(settings) => self.listened(command(&def.id, description, settings)),
            Settings::Model(settings) => {
                let provider = self.provider(def, settings)?;
                match def.kind {
                    AgentKind::Claude => {
                        self.listened(claude(&def.id, description, settings, &provider))
                    }
                    _ => self.listened(openai(&def.id, description, settings, &provider)),
                }
            }
            Settings::ClaudeCode(settings) => {
                self.listened(claude_code(&def.id, description, settings))
            }
            Settings::Local(settings) => self.listened(
                local(&def.id, description, settings)
                    .map_err(|e| format!("agent `{}`: {e}", def.id))?,
            ),
        };
        Ok(agent)
    }

    fn provider(&mut self, def: &AgentDef, settings: &ModelSettings) -> Result<Provider, String> {
        let key = (
            def.kind,
            settings.base_url.clone(),
            settings.api_key.clone(),
        );
        if let Some(provider) = self.providers.get(&key) {
            return Ok(provider.clone());
        }
        // Start from the library's presets for the back end, then apply the
        // workflow's own URL and key (already expanded from the environment).
        let builder = match def.kind {
            AgentKind::Claude => Provider::anthropic_builder(),
            _ => Provider::openai_builder(),
        }
        .with_base_url(settings.base_url.clone());
        let builder = match &settings.api_key {
            Some(api_key) => builder.with_api_key(api_key.clone()),
            None => builder.without_api_key(),
        };
        let mut limits = ProviderLimits::new();
        if let Some(rpm) = settings.requests_per_minute {
            limits = limits.with_requests_per_minute(rpm);
        }
        if let Some(max) = settings.max_concurrent {
            limits = limits.with_max_concurrent(usize::try_from(max).unwrap_or(usize::MAX));
        }
        let provider = builder
            .with_limits(limits)
            .build()
            .map_err(|e| format!("agent `{}`: {e}", def.id))?;
        self.providers.insert(key, provider.clone());
        Ok(provider)
    }
}

/// An agent that reports the text it produces as it goes (its `on_text_delta`).
trait Producing: Agent + Sized + 'static {
    fn on_text(self, handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static) -> Box<dyn Agent>;
}

macro_rules! producing {
    ($($agent:ty),*) => {$(
        impl Producing for $agent {
            fn on_text(
                self,
                handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static,
            ) -> Box<dyn Agent> {
                Box::new(self.on_text_delta(handler))
            }
        }
    )*};
}

producing!(
    ClaudeAgent,
    OpenAiCompatibleAgent,
    ClaudeCodeAgent,
    CommandAgent,
    LocalModelAgent
);

/// A `local` agent. A known model must be in the cache already (`run` fetches
/// it, with a progress display, before building the plan).
#[allow(clippy::cast_possible_truncation)]
fn local(
    id: &str,
    description: String,
    settings: &LocalSettings,
) -> Result<LocalModelAgent, String> {
    let path = match &settings.model {
        LocalModelSpec::Known(model) => fetch::cached_path(model).map_err(|e| e.to_string())?,
        LocalModelSpec::Path(path) => path.clone(),
    };
    let mut agent = LocalModelAgent::from_path(id, path).with_description(description);
    if let Some(system) = &settings.system {
        agent = agent.with_system_prompt(system.clone());
    }
    if let Some(template) = prompt(settings.prompt.as_ref()) {
        agent = agent.with_prompt_template(template);
    }
    if let Some(max_tokens) = settings.max_tokens {
        agent = agent.with_max_tokens(max_tokens);
    }
    if let Some(t) = settings.temperature {
        agent = agent.with_temperature(t as f32);
    }
    if let Some(p) = settings.top_p {
        agent = agent.with_top_p(p as f32);
    }
    if let Some(seed) = settings.seed {
        agent = agent.with_seed(seed);
    }
    if let Some(penalty) = settings.repetition_penalty {
        agent = agent.with_repetition_penalty(penalty as f32);
    }
    for stop in &settings.stop {
        agent = agent.with_stop_sequence(stop.clone());
    }
    Ok(agent)
}

fn command(id: &str, description: String, settings: &CommandSettings) -> CommandAgent {
    let (program, args) = match settings.argv.split_first() {
        Some((program, args)) => (program.as_str(), args),
        None => ("true", &[][..]),
    };
    let mut agent = CommandAgent::new(id, program)
        .args(args)
        .with_description(description)
        .with_stdin(match settings.stdin {
            StdinSpec::Content => StdinMode::Content,
            StdinSpec::Json => StdinMode::InputJson,
            StdinSpec::None => StdinMode::Null,
        })
        .with_output(match settings.output {
            OutputSpec::Text => OutputMode::Text,
            OutputSpec::Raw => OutputMode::RawText,
            OutputSpec::Json => OutputMode::Json,
        });
    for (key, value) in &settings.env {
        agent = agent.with_env(key, value);
    }
    if let Some(dir) = &settings.working_dir {
        agent = agent.with_working_dir(dir);
    }
    if let Some(codes) = &settings.retryable_exit_codes {
        agent = agent.with_retryable_exit_codes(codes.iter().copied());
    }
    if let Some(bytes) = settings.max_output {
        agent = agent.with_max_output_bytes(bytes);
    }
    agent
}

fn prompt(template: Option<&String>) -> Option<PromptTemplate> {
    template.map(|text| PromptTemplate::new(text.clone()))
}

fn claude(
    id: &str,
    description: String,
    settings: &ModelSettings,
    provider: &Provider,
) -> ClaudeAgent {
    let mut agent = ClaudeAgent::new(id, provider).with_description(description);
    if let Some(model) = &settings.model {
        agent = agent.with_model(model.clone());
    }
    if let Some(system) = &settings.system {
        agent = agent.with_system_prompt(system.clone());
    }
    if let Some(template) = prompt(settings.prompt.as_ref()) {
        agent = agent.with_prompt_template(template);
    }
    if let Some(max_tokens) = settings.max_tokens {
        agent = agent.with_max_tokens(max_tokens);
    }
    if let Some(temperature) = settings.temperature {
        agent = agent.with_temperature(temperature);
    }
    if let Some(stream) = settings.stream {
        agent = agent.with_streaming(stream);
    }
    agent
}

fn openai(
    id: &str,
    description: String,
    settings: &ModelSettings,
    provider: &Provider,
) -> OpenAiCompatibleAgent {
    let model = settings.model.clone().unwrap_or_default();
    let mut agent = OpenAiCompatibleAgent::new(id, provider, model).with_description(description);
    if let Some(system) = &settings.system {
        agent = agent.with_system_prompt(system.clone());
    }
    if let Some(template) = prompt(settings.prompt.as_ref()) {
        agent = agent.with_prompt_template(template);
    }
    if let Some(max_tokens) = settings.max_tokens {
        agent = agent.with_max_tokens(max_tokens);
    }
    if let Some(temperature) = settings.temperature {
        agent = agent.with_temperature(temperature);
    }
    if let Some(stream) = settings.stream {
        agent = agent.with_streaming(stream);
    }
    agent
}

fn claude_code(id: &str, description: String, settings: &ClaudeCodeSettings) -> ClaudeCodeAgent {
    let mut agent = ClaudeCodeAgent::new(id).with_description(description);
    if let Some(binary) = &settings.binary {
        agent = agent.with_binary(binary);
    }
    if let Some(model) = &settings.model {
        agent = agent.with_model(model.clone());
    }
    if let Some(system) = &settings.system {
        agent = agent.with_system_prompt(system.clone());
    }
    if let Some(template) = prompt(settings.prompt.as_ref()) {
        agent = agent.with_prompt_template(template);
    }
    if !settings.allowed_tools.is_empty() {
        agent = agent.with_allowed_tools(settings.allowed_tools.iter());
    }
    if !settings.disallowed_tools.is_empty() {
        agent = agent.with_disallowed_tools(settings.disallowed_tools.iter());
    }
    if let Some(turns) = settings.max_turns {
        agent = agent.with_max_turns(turns);
    }
    if let Some(mode) = &settings.permission_mode {
        agent = agent.with_permission_mode(mode.clone());
    }
    if !settings.extra_args.is_empty() {
        agent = agent.with_extra_args(settings.extra_args.iter());
    }
    for (key, value) in &settings.env {
        agent = agent.with_env(key, value);
    }
    if let Some(dir) = &settings.working_dir {
        agent = agent.with_working_dir(dir);
    }
    agent
}

/// The model an agent asks for, for telemetry (`gen_ai.request.model`).
#[must_use]
pub fn model_of(def: &AgentDef) -> Option<String> {
    match &def.settings {
        Settings::Model(settings) => settings.model.clone().or_else(|| {
            (def.kind == AgentKind::Claude)
                .then(|| claude_agent_sdk::agents::DEFAULT_CLAUDE_MODEL.to_owned())
        }),
        Settings::ClaudeCode(settings) => settings.model.clone(),
        Settings::Local(settings) => Some(match &settings.model {
            LocalModelSpec::Known(model) => model.name.to_owned(),
            LocalModelSpec::Path(path) => path.display().to_string(),
        }),
        _ => None,
    }
}

/// The provider an agent talks to, for telemetry (`gen_ai.provider.name`).
#[must_use]
pub fn provider_of(def: &AgentDef) -> Option<&'static str> {
    match def.kind {
        AgentKind::Claude | AgentKind::ClaudeCode => Some("anthropic"),
        AgentKind::Openai => Some("openai"),
        AgentKind::Local => Some("local"),
        AgentKind::Command | AgentKind::Template => None,
    }
}
