//! The agent registry: agents and their metadata under stable ids, searchable
//! and executable by id.
//!
//! Agents are held as `Arc`s and every lock is released before an agent runs,
//! so registering, finding or disabling agents never waits for a running one.
//! Executing an agent by id applies its metadata's `max_retries` and
//! `timeout_secs` (per attempt) with the same retry machinery the orchestrators
//! use. The metadata is what the registry's user configured, so it wins: over
//! the agent's own [`Agent::max_retries`] / [`Agent::attempt_timeout`], and
//! over the registry's [`ExecutionConfig`].
//!
//! ```
//! use claude_agent_sdk::orchestration::{AgentInput, AgentOutput, SimpleAgent};
//! use claude_agent_sdk::orchestration::registry::{AgentFilter, AgentMetadata, AgentRegistry};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let registry = AgentRegistry::new();
//! let agent = SimpleAgent::new("researcher", "Academic researcher", |input| {
//!     Ok(AgentOutput::new(format!("Researched: {}", input.content)))
//! });
//! let metadata = AgentMetadata::new("researcher", "researcher", "Academic researcher", "research")
//!     .with_tool("web-search");
//! registry.register(Box::new(agent), metadata).await?;
//!
//! let found = registry.find(&AgentFilter::new().with_tool("web-search")).await;
//! assert_eq!(found.len(), 1);
//! let output = registry.execute_agent("researcher", AgentInput::new("Quantum computing")).await?;
//! assert_eq!(output.content, "Researched: Quantum computing");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::run_one;
use crate::orchestration::engine::walk::Overrides;
use crate::orchestration::errors::Result;

/// Why a registry call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RegistryError {
    /// The metadata's id is empty or blank.
    #[error("agent id must not be empty")]
    EmptyId,
    /// Another agent is registered under this id.
    #[error("an agent with id `{0}` is already registered")]
    DuplicateId(String),
    /// `metadata.name` differs from `agent.name()`.
    #[error("metadata name `{metadata_name}` of agent `{id}` does not match the agent's name `{agent_name}`")]
    NameMismatch {
        /// The id being registered.
        id: String,
        /// The name in the metadata.
        metadata_name: String,
        /// The name the agent reports.
        agent_name: String,
    },
    /// No agent is registered under this id.
    #[error("no agent with id `{0}` is registered")]
    AgentNotFound(String),
    /// The agent is registered but disabled.
    #[error("agent `{0}` is disabled")]
    AgentDisabled(String),
    /// The metadata cannot work (for example a zero timeout).
    #[error("invalid metadata for agent `{id}`: {reason}")]
    InvalidMetadata {
        /// The id being registered.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// Everything the registry knows about an agent besides the agent itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMetadata {
    /// Unique identifier.
    pub id: String,
    /// Human-readable name; must equal the agent's [`name`](Agent::name).
    pub name: String,
    /// What the agent does.
    pub description: String,
    /// Domain, such as "research" or "analysis".
    pub category: String,
    /// Semantic version (default "1.0.0").
    #[serde(default = "metadata_defaults::version")]
    pub version: String,
    /// Tools the agent can use.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Skills the agent has.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Tags for filtering.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Retries after the first attempt when executed by id (default 3); wins
    /// over the agent's own [`Agent::max_retries`] and the registry's config.
    #[serde(default = "metadata_defaults::max_retries")]
    pub max_retries: usize,
    /// Bound on each attempt when executed by id, in seconds (default 300);
    /// wins over the agent's own [`Agent::attempt_timeout`] and the registry's config.
    #[serde(default = "metadata_defaults::timeout_secs")]
    pub timeout_secs: u64,
    /// Whether the agent may be executed (default true).
    #[serde(default = "metadata_defaults::enabled")]
    pub enabled: bool,
}

/// The defaults of [`AgentMetadata`]'s fields: what [`AgentMetadata::new`]
/// sets, and what metadata read from JSON (or a config file) without them
/// gets.
mod metadata_defaults {
    pub(super) fn version() -> String {
        "1.0.0".to_owned()
    }

    pub(super) fn max_retries() -> usize {
        3
    }

    pub(super) fn timeout_secs() -> u64 {
        300
    }

    pub(super) fn enabled() -> bool {
        true
    }
}

impl AgentMetadata {
    /// Metadata with the given identity and the defaults for everything else.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        description: impl Into<String>,
        category: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            category: category.into(),
            version: metadata_defaults::version(),
            tools: Vec::new(),
            skills: Vec::new(),
            tags: Vec::new(),
            max_retries: metadata_defaults::max_retries(),
            timeout_secs: metadata_defaults::timeout_secs(),
            enabled: metadata_defaults::enabled(),
        }
    }

    /// Adds a tool.
    #[must_use]
    pub fn with_tool(mut self, tool: impl Into<String>) -> Self {
        self.tools.push(tool.into());
        self
    }

    /// Adds a skill.
    #[must_use]
    pub fn with_skill(mut self, skill: impl Into<String>) -> Self {
        self.skills.push(skill.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets the version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the retries after the first attempt.
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the per-attempt timeout, in seconds.
    #[must_use]
    pub fn with_timeout(mut self, timeout_secs: u64) -> Self {
        self.timeout_secs = timeout_secs;
        self
    }

    /// Enables or disables the agent.
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

/// Criteria for [`AgentRegistry::find`]; an agent matches when it meets all of them.
///
/// ```
/// use claude_agent_sdk::orchestration::registry::AgentFilter;
///
/// let filter = AgentFilter::new()
///     .with_category("research")
///     .with_tool("web-search")
///     .with_tag("academic")
///     .enabled_only();
/// assert!(filter.enabled_only);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentFilter {
    /// The category must equal this.
    pub category: Option<String>,
    /// Every one of these tools must be present.
    pub tools: Vec<String>,
    /// Every one of these skills must be present.
    pub skills: Vec<String>,
    /// Every one of these tags must be present.
    pub tags: Vec<String>,
    /// Only enabled agents match.
    pub enabled_only: bool,
}

impl AgentFilter {
    /// A filter that matches every agent.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires this category.
    #[must_use]
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Requires this tool (in addition to those already required).
    #[must_use]
    pub fn with_tool(mut self, tool: impl Into<String>) -> Self {
        self.tools.push(tool.into());
        self
    }

    /// Requires this skill (in addition to those already required).
    #[must_use]
    pub fn with_skill(mut self, skill: impl Into<String>) -> Self {
        self.skills.push(skill.into());
        self
    }

    /// Requires this tag (in addition to those already required).
    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Requires the agent to be enabled.
    #[must_use]
    pub fn enabled_only(mut self) -> Self {
        self.enabled_only = true;
        self
    }

    /// Whether `metadata` meets every criterion.
    #[must_use]
    pub fn matches(&self, metadata: &AgentMetadata) -> bool {
        let has_all =
            |wanted: &[String], present: &[String]| wanted.iter().all(|w| present.contains(w));
        self.category
            .as_ref()
            .is_none_or(|c| *c == metadata.category)
            && has_all(&self.tools, &metadata.tools)
            && has_all(&self.skills, &metadata.skills)
            && has_all(&self.tags, &metadata.tags)
            && (!self.enabled_only || metadata.enabled)
    }
}

struct Entry {
    agent: Arc<dyn Agent>,
    metadata: AgentMetadata,
}

/// Agents and their metadata under stable ids.
pub struct AgentRegistry {
    entries: RwLock<HashMap<String, Entry>>,
    config: ExecutionConfig,
}

impl Default for AgentRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AgentRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<String> = self.read().keys().cloned().collect();
        ids.sort();
        f.debug_struct("AgentRegistry")
            .field("agents", &ids)
            .finish_non_exhaustive()
    }
}

impl AgentRegistry {
    /// An empty registry. Agents it executes are bounded by their metadata only
    /// (no run timeout beyond their attempts).
    #[must_use]
    pub fn new() -> Self {
        Self {
            entries: RwLock::default(),
            config: ExecutionConfig::default().with_timeout(Duration::MAX),
        }
    }

    /// Sets the configuration `execute_agent` starts from (backoff, logging,
    /// trace records, run timeout); each agent's metadata then sets its retries
    /// and attempt timeout.
    #[must_use]
    pub fn with_config(mut self, config: ExecutionConfig) -> Self {
        self.config = config;
        self
    }

    /// Registers `agent` under `metadata.id`.
    ///
    /// # Errors
    /// [`RegistryError::EmptyId`], [`RegistryError::DuplicateId`],
    /// [`RegistryError::NameMismatch`] or [`RegistryError::InvalidMetadata`].
    pub async fn register(
        &self,
        agent: Box<dyn Agent>,
        metadata: AgentMetadata,
    ) -> Result<(), RegistryError> {
        self.register_shared(Arc::from(agent), metadata).await
    }

    /// Registers an agent that is shared elsewhere too.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn register_shared(
        &self,
        agent: Arc<dyn Agent>,
        metadata: AgentMetadata,
    ) -> Result<(), RegistryError> {
        validate(agent.as_ref(), &metadata)?;
        let mut entries = self.write();
        if entries.contains_key(&metadata.id) {
            return Err(RegistryError::DuplicateId(metadata.id));
        }
        entries.insert(metadata.id.clone(), Entry { agent, metadata });
        Ok(())
    }

    /// Removes the agent registered under `id` and returns its metadata.
    ///
    /// # Errors
    /// [`RegistryError::AgentNotFound`].
    pub async fn unregister(&self, id: &str) -> Result<AgentMetadata, RegistryError> {
        self.write()
            .remove(id)
            .map(|entry| entry.metadata)
            .ok_or_else(|| RegistryError::AgentNotFound(id.to_owned()))
    }

    /// Whether an agent is registered under `id`.
    pub async fn contains(&self, id: &str) -> bool {
        self.read().contains_key(id)
    }

    /// The agent registered under `id`.
    pub async fn get(&self, id: &str) -> Option<Arc<dyn Agent>> {
        self.read().get(id).map(|entry| Arc::clone(&entry.agent))
    }

    /// The metadata of the agent registered under `id`.
    pub async fn metadata(&self, id: &str) -> Option<AgentMetadata> {
        self.read().get(id).map(|entry| entry.metadata.clone())
    }

    /// The metadata of every agent matching `filter`, sorted by id.
    pub async fn find(&self, filter: &AgentFilter) -> Vec<AgentMetadata> {
        let mut found: Vec<AgentMetadata> = self
            .read()
            .values()
            .filter(|entry| filter.matches(&entry.metadata))
            .map(|entry| entry.metadata.clone())
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// The metadata of every agent, sorted by id.
    pub async fn list(&self) -> Vec<AgentMetadata> {
        self.find(&AgentFilter::new()).await
    }

    /// How many agents are registered.
    pub async fn count(&self) -> usize {
        self.read().len()
    }

    /// Allows the agent under `id` to be executed.
    ///
    /// # Errors
    /// [`RegistryError::AgentNotFound`].
    pub async fn enable(&self, id: &str) -> Result<(), RegistryError> {
        self.set_enabled(id, true)
    }

    /// Stops the agent under `id` from being executed.
    ///
    /// # Errors
    /// [`RegistryError::AgentNotFound`].
    pub async fn disable(&self, id: &str) -> Result<(), RegistryError> {
        self.set_enabled(id, false)
    }

    fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), RegistryError> {
        let mut entries = self.write();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| RegistryError::AgentNotFound(id.to_owned()))?;
        entry.metadata.enabled = enabled;
        Ok(())
    }

    /// Executes the agent under `id`, with its metadata's retries and per-attempt
    /// timeout — which win over the agent's own overrides. Inside a running
    /// agent, the run's state, cancellation and deadline apply, and the
    /// execution is nested in the calling attempt's trace.
    ///
    /// # Errors
    /// [`OrchestrationError::Registry`](super::OrchestrationError::Registry) for an
    /// unknown or disabled agent; otherwise as
    /// [`BaseOrchestrator::execute_agent`](super::BaseOrchestrator::execute_agent).
    pub async fn execute_agent(&self, id: &str, input: AgentInput) -> Result<AgentOutput> {
        let ctx = match ExecutionContext::current() {
            Some(parent) => parent.child(self.config.clone()),
            None => ExecutionContext::new(self.config.clone()),
        };
        self.execute_agent_with_context(id, input, &ctx).await
    }

    /// As [`execute_agent`](Self::execute_agent), recording the attempts in `ctx`'s
    /// trace and stopping when `ctx` is cancelled.
    ///
    /// # Errors
    /// As [`execute_agent`](Self::execute_agent).
    pub async fn execute_agent_with_context(
        &self,
        id: &str,
        input: AgentInput,
        ctx: &ExecutionContext,
    ) -> Result<AgentOutput> {
        let (agent, overrides) = self.runnable(id)?;
        run_one(
            agent.as_ref(),
            input,
            ctx,
            &self.config,
            "AgentRegistry",
            overrides,
        )
        .await
    }

    /// The agent registered as `id`, if it is enabled, with the retries and
    /// attempt timeout its metadata sets — read together, under one lock, so
    /// that an agent registered again meanwhile never runs under its
    /// predecessor's metadata. The lock is released before the agent runs.
    pub(crate) fn runnable(
        &self,
        id: &str,
    ) -> std::result::Result<(Arc<dyn Agent>, Overrides), RegistryError> {
        let entries = self.read();
        let entry = entries
            .get(id)
            .ok_or_else(|| RegistryError::AgentNotFound(id.to_owned()))?;
        if !entry.metadata.enabled {
            return Err(RegistryError::AgentDisabled(id.to_owned()));
        }
        let overrides = Overrides {
            max_retries: Some(entry.metadata.max_retries),
            attempt_timeout: Some(Duration::from_secs(entry.metadata.timeout_secs)),
        };
        Ok((Arc::clone(&entry.agent), overrides))
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Entry>> {
        // Only map operations run under this lock; a panic there leaves the map valid.
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn validate(agent: &dyn Agent, metadata: &AgentMetadata) -> Result<(), RegistryError> {
    if metadata.id.trim().is_empty() {
        return Err(RegistryError::EmptyId);
    }
    if metadata.name != agent.name() {
        return Err(RegistryError::NameMismatch {
            id: metadata.id.clone(),
            metadata_name: metadata.name.clone(),
            agent_name: agent.name().to_owned(),
        });
    }
    if metadata.timeout_secs == 0 {
        return Err(RegistryError::InvalidMetadata {
            id: metadata.id.clone(),
            reason: "timeout_secs must be greater than zero".into(),
        });
    }
    Ok(())
}

/// Builds an [`AgentRegistry`] with its agents in one expression.
///
/// ```
/// use claude_agent_sdk::orchestration::{AgentOutput, SimpleAgent};
/// use claude_agent_sdk::orchestration::registry::{AgentMetadata, AgentRegistryBuilder};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let registry = AgentRegistryBuilder::new()
///     .with_agent(
///         Box::new(SimpleAgent::new("agent1", "First", |input| {
///             Ok(AgentOutput::new(format!("1: {}", input.content)))
///         })),
///         AgentMetadata::new("agent1", "agent1", "First agent", "test")
///     ).await?
///     .build();
/// assert_eq!(registry.count().await, 1);
/// # Ok::<(), claude_agent_sdk::orchestration::RegistryError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct AgentRegistryBuilder {
    registry: AgentRegistry,
}

impl AgentRegistryBuilder {
    /// A builder for an empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the registry's base configuration (see [`AgentRegistry::with_config`]).
    #[must_use]
    pub fn with_config(mut self, config: ExecutionConfig) -> Self {
        self.registry = self.registry.with_config(config);
        self
    }

    /// Registers an agent.
    ///
    /// # Errors
    /// As [`AgentRegistry::register`].
    pub async fn with_agent(
        self,
        agent: Box<dyn Agent>,
        metadata: AgentMetadata,
    ) -> Result<Self, RegistryError> {
        self.registry.register(agent, metadata).await?;
        Ok(self)
    }

    /// The finished registry.
    #[must_use]
    pub fn build(self) -> AgentRegistry {
        self.registry
    }
}
