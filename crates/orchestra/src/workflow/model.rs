//! A checked workflow: every reference resolved, every environment variable
//! expanded, every setting in range. Only [`load`](super::load) makes one.

use std::path::PathBuf;
use std::time::Duration;

use claude_agent_sdk::orchestration::{AgentMetadata, ExecutionConfig, RunBudget};

use super::env::Redactor;
use super::graph_model::GraphSpec;
use super::located::Format;
use super::raw::{AgentKind, OutputSpec, StdinSpec};

/// A workflow ready to run.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Its name (the file's `name`, or the file name).
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's syntax.
    pub format: Format,
    /// The input used when none is given.
    pub default_input: Option<String>,
    /// Every declared agent, in file order.
    pub agents: Vec<AgentDef>,
    /// The flow's root group.
    pub flow: Group,
    /// Hides the values of the environment variables the file used.
    pub redactor: Redactor,
    /// Things worth knowing that do not stop a run (an agent nobody uses).
    pub warnings: Vec<String>,
}

impl Workflow {
    /// The agent declared with `id`.
    #[must_use]
    pub fn agent(&self, id: &str) -> Option<&AgentDef> {
        self.agents.iter().find(|agent| agent.id == id)
    }
}

/// One declared agent.
#[derive(Debug, Clone)]
pub struct AgentDef {
    /// Its id, which is also the agent's name in traces.
    pub id: String,
    /// Its kind.
    pub kind: AgentKind,
    /// Registry metadata; `max_retries` and `timeout_secs` hold the values that
    /// apply in the flow.
    pub metadata: AgentMetadata,
    /// Retries the agent asked for itself, if any (they replace its group's
    /// `retries`).
    pub retries: Option<u32>,
    /// The bound on each attempt the agent asked for itself, if any (it
    /// replaces its group's `agent_timeout`).
    pub timeout: Option<Duration>,
    /// The bound on each attempt that applies in the flow (its own `timeout`
    /// or its group's `agent_timeout`), exactly: `metadata.timeout_secs`
    /// holds it rounded up to whole seconds, all the registry keeps.
    pub attempt_timeout: Option<Duration>,
    /// Its kind's settings.
    pub settings: Settings,
}

impl AgentDef {
    /// The bound on each attempt as the workflow file writes it (`300ms`,
    /// `1.5s`, `10m`), or `none`: what `orchestra agents` shows, in place of
    /// the registry's whole seconds.
    #[must_use]
    pub fn written_timeout(&self) -> String {
        self.attempt_timeout
            .map_or_else(|| "none".to_owned(), super::values::written_duration)
    }
}

/// The settings of one kind of agent, with environment variables expanded and
/// paths resolved.
#[derive(Debug, Clone)]
pub enum Settings {
    /// `template`.
    Template {
        /// The template text.
        template: String,
    },
    /// `command`.
    Command(CommandSettings),
    /// `claude` and `openai`.
    Model(ModelSettings),
    /// `claude-code`.
    ClaudeCode(ClaudeCodeSettings),
    /// `local`.
    Local(LocalSettings),
}

/// Which GGUF file a `local` agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalModelSpec {
    /// A model known by name, fetched into the model cache on first use.
    Known(claude_agent_sdk::agents::local::fetch::KnownModel),
    /// A GGUF file.
    Path(PathBuf),
}

/// A `local` agent's settings.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// The model.
    pub model: LocalModelSpec,
    /// The system prompt.
    pub system: Option<String>,
    /// The user message template.
    pub prompt: Option<String>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    pub top_p: Option<f64>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f64>,
    /// Stop sequences.
    pub stop: Vec<String>,
}

/// A `command` agent's settings.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// What the program gets on stdin.
    pub stdin: StdinSpec,
    /// How stdout becomes the output.
    pub output: OutputSpec,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where it runs.
    pub working_dir: Option<PathBuf>,
    /// Exit codes that mean "try again".
    pub retryable_exit_codes: Option<Vec<i32>>,
    /// The most bytes of stdout, when not the library's default.
    pub max_output: Option<usize>,
}

/// A `claude` or `openai` agent's settings.
#[derive(Debug, Clone, Default)]
pub struct ModelSettings {
    /// The model.
    pub model: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// The user message template.
    pub prompt: Option<String>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// The API key.
    pub api_key: Option<String>,
    /// The server's base URL.
    pub base_url: String,
    /// Whether to stream.
    pub stream: Option<bool>,
    /// Requests per minute for the server.
    pub requests_per_minute: Option<u32>,
    /// Requests in flight for the server.
    pub max_concurrent: Option<u32>,
}

/// A `claude-code` agent's settings.
#[derive(Debug, Clone, Default)]
pub struct ClaudeCodeSettings {
    /// The model.
    pub model: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// The prompt template.
    pub prompt: Option<String>,
    /// Tools it may use.
    pub allowed_tools: Vec<String>,
    /// Tools it may not use.
    pub disallowed_tools: Vec<String>,
    /// Most turns.
    pub max_turns: Option<u32>,
    /// Permission mode.
    pub permission_mode: Option<String>,
    /// The program.
    pub binary: Option<String>,
    /// More arguments.
    pub extra_args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where it runs.
    pub working_dir: Option<PathBuf>,
}

/// One step of a group.
#[derive(Debug, Clone)]
pub enum Node {
    /// The agent with this id.
    Agent(String),
    /// A nested group.
    Group(Box<Group>),
}

impl Node {
    /// The step's name: the agent id or the group's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Agent(id) => id,
            Self::Group(group) => &group.name,
        }
    }
}

/// How a group runs its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One after another.
    Sequential,
    /// At once.
    Parallel,
    /// As a graph of nodes and edges.
    Graph,
}

impl Mode {
    /// "sequential" or "parallel".
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Parallel => "parallel",
            Self::Graph => "graph",
        }
    }

    /// The key that gives a group this mode in files.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Parallel => "parallel",
            Self::Graph => "nodes",
        }
    }
}

/// A group of steps and the configuration of its run.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its id, or a generated name (`flow.2`) for a group written in place.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Sequential, parallel or graph.
    pub mode: Mode,
    /// Timeouts, retries, limits, backoff and join policy.
    pub config: ExecutionConfig,
    /// The steps, in order (for a graph: its nodes).
    pub steps: Vec<Node>,
    /// A graph group's wiring.
    pub graph: Option<Box<GraphSpec>>,
    /// What the group's run may spend, when bounded.
    pub budget: Option<Box<RunBudget>>,
    /// Parallel groups: the first step that fails for good stops the others.
    pub fail_fast: bool,
}

impl Group {
    /// Calls `visit` on every step below this group, depth first, in flow
    /// order, with its depth (1 for this group's own steps).
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Node, usize)) {
        fn go<'a>(group: &'a Group, depth: usize, visit: &mut impl FnMut(&'a Node, usize)) {
            for step in &group.steps {
                visit(step, depth);
                if let Node::Group(inner) = step {
                    go(inner, depth + 1, visit);
                }
            }
        }
        go(self, 1, visit);
    }
}
