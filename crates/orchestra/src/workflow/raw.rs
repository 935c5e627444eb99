//! The workflow file as written: one schema for TOML and YAML.
//!
//! These types only describe the file's shape (and give the JSON Schema printed
//! by `orchestra schema`); what the values mean is checked by
//! [`load`](super::load), which turns them into a [`Workflow`](super::Workflow).
//! The doc comments below are the schema's descriptions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::located::Located;
use super::raw_graph::{RawAsk, RawBudget, RawJoin, RawLoop, RawMap, RawRoute};
use super::values::{ByteSize, DurationSpec, JoinSpec, Step};

/// A workflow: agents, optional named groups, and the flow that runs them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "orchestra workflow")]
pub struct RawWorkflow {
    /// Version of this schema; 1 when given.
    pub version: Option<Located<u32>>,
    /// The workflow's name, shown in progress and traces (default: the file name).
    pub name: Option<Located<String>>,
    /// What the workflow does.
    pub description: Option<Located<String>>,
    /// The input used when the command line and standard input give none.
    /// May reference environment variables.
    pub input: Option<Located<String>>,
    /// The directory `command` and `claude-code` agents run in, relative to this
    /// file (default: the directory `orchestra` was started in).
    pub working_dir: Option<Located<String>>,
    /// Environment variables whose values are secret, beyond those whose names
    /// say so (`*_KEY`, `*_TOKEN`, `*PASSWORD*`...): their values are masked in
    /// everything orchestra prints or writes.
    #[serde(default)]
    pub secrets: Vec<Located<String>>,
    /// The most bytes of each input and output text the run's trace keeps
    /// (default: whole texts); longer texts are cut, saying how much was left
    /// out. Bounds the memory of runs with big outputs and the size of `--trace`.
    pub trace_text_limit: Option<Located<ByteSize>>,
    /// The agents, each with a unique id.
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    /// Named groups that steps of the flow (or of other groups) refer to by id.
    #[serde(default)]
    pub groups: Vec<Located<RawFlow>>,
    /// What the whole run may spend (the same as a `budget` on `flow`).
    pub budget: Option<Located<RawBudget>>,
    /// The flow: a sequential, parallel or graph group of steps.
    #[schemars(required)]
    pub flow: Option<Located<RawFlow>>,
}

/// What kind of agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Claude through the Anthropic Messages API (needs `ANTHROPIC_API_KEY`).
    Claude,
    /// The Claude Code command-line program (`claude -p`).
    ClaudeCode,
    /// A model behind an OpenAI-compatible `/v1/chat/completions` server.
    Openai,
    /// A program: input on stdin, output from stdout.
    Command,
    /// A deterministic text template over the input and earlier outputs (offline).
    Template,
    /// A GGUF language model run in-process on the CPU (offline, no key).
    Local,
}

impl AgentKind {
    /// The kind as written in files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::ClaudeCode => "claude-code",
            Self::Openai => "openai",
            Self::Command => "command",
            Self::Template => "template",
            Self::Local => "local",
        }
    }
}

/// What a `command` agent's program gets on stdin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StdinSpec {
    /// The input's text (the default).
    #[default]
    Content,
    /// The whole input as JSON: `{"content", "context", "metadata"}`.
    Json,
    /// Nothing.
    None,
}

/// How a `command` agent's stdout becomes its output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputSpec {
    /// The text, trailing whitespace trimmed (the default).
    #[default]
    Text,
    /// The text exactly as printed.
    Raw,
    /// An agent output as JSON: `{"content", "data", "confidence", "metadata"}`;
    /// `data.usage` reports tokens.
    Json,
}

/// One agent: its id and kind, its registry metadata, and its kind's settings.
///
/// Text settings may reference environment variables as `${NAME}` (or
/// `${NAME:-default}`); their values are never printed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Agent")]
pub struct RawAgent {
    /// Unique id, used by the flow, in progress lines and traces.
    pub id: Located<String>,
    /// The kind of agent.
    pub kind: Located<AgentKind>,
    /// What the agent does.
    pub description: Option<Located<String>>,

    // Registry metadata.
    /// Registry category (default "general").
    pub category: Option<Located<String>>,
    /// Tools the agent uses (registry metadata).
    #[serde(default)]
    pub tools: Vec<Located<String>>,
    /// Skills the agent has (registry metadata).
    #[serde(default)]
    pub skills: Vec<Located<String>>,
    /// Tags for filtering (registry metadata).
    #[serde(default)]
    pub tags: Vec<Located<String>>,
    /// The agent's version (default "1.0.0").
    pub version: Option<Located<String>>,
    /// Whether the agent may run (default true); the flow may not use a disabled agent.
    pub enabled: Option<Located<bool>>,
    /// Retries after a first failed attempt, for retryable failures; overrides
    /// its group's `retries` for this agent (default: the group's).
    pub retries: Option<Located<u32>>,
    /// Bound on each attempt of this agent; overrides its group's `agent_timeout`
    /// for this agent (default: the group's). A timed-out attempt may be retried.
    pub timeout: Option<Located<DurationSpec>>,

    // kind = "template"
    /// `template`: the text to produce. Placeholders: `{{input}}`, `{{output.ID}}`
    /// (the output of the agent or group ID), `{{metadata.KEY}}`.
    pub template: Option<Located<String>>,

    // kind = "command"
    /// `command`: the program and its arguments (no shell).
    pub command: Option<Located<Vec<Located<String>>>>,
    /// `command`: a script run with `sh -c`, instead of `command`.
    pub shell: Option<Located<String>>,
    /// `command`: what the program gets on stdin.
    pub stdin: Option<Located<StdinSpec>>,
    /// `command`: how stdout becomes the output.
    pub output: Option<Located<OutputSpec>>,
    /// `command`, `claude-code`: environment variables for the program.
    pub env: Option<Located<BTreeMap<String, Located<String>>>>,
    /// `command`, `claude-code`: the directory the program runs in, relative to
    /// this file (default: the workflow's `working_dir`).
    pub working_dir: Option<Located<String>>,
    /// `command`: exit codes that mean "try again" (default `[75]`).
    pub retryable_exit_codes: Option<Located<Vec<i32>>>,
    /// `command`: the most bytes the program may print on stdout (default
    /// "16MiB"); a program that prints more is stopped and fails.
    pub max_output: Option<Located<ByteSize>>,

    // kind = "claude", "openai", "claude-code", "local"
    /// `claude`, `openai`, `claude-code`, `local`: the model (required for
    /// `openai`; for `local`, a known model name — default `smollm2-135m` — or
    /// the path of a GGUF file, relative to this file).
    pub model: Option<Located<String>>,
    /// `claude`, `openai`, `claude-code`, `local`: the system prompt.
    pub system: Option<Located<String>>,
    /// `claude`, `openai`, `claude-code`, `local`: the user message template:
    /// `{{input}}`, `{{context}}`, `{{metadata.KEY}}` (default `{{input}}`).
    pub prompt: Option<Located<String>>,
    /// `claude`, `openai`, `local`: most tokens to generate.
    pub max_tokens: Option<Located<u32>>,
    /// `claude`, `openai`, `local`: sampling temperature (`local`: 0, greedy, by default).
    pub temperature: Option<Located<f64>>,
    /// `local`: nucleus sampling's probability mass, in (0, 1] (default 1).
    pub top_p: Option<Located<f64>>,
    /// `local`: the sampling seed (default 42).
    pub seed: Option<Located<u64>>,
    /// `local`: the repetition penalty over the last 64 tokens (default 1.0: none).
    pub repetition_penalty: Option<Located<f64>>,
    /// `local`: stop sequences; the reply ends before the first one.
    pub stop: Option<Located<Vec<Located<String>>>>,
    /// `claude`, `openai`: the API key (default `${ANTHROPIC_API_KEY}` for
    /// `claude`, `${OPENAI_API_KEY}` when set for `openai`).
    pub api_key: Option<Located<String>>,
    /// `claude`, `openai`: the server's base URL.
    pub base_url: Option<Located<String>>,
    /// `claude`, `openai`: stream the reply (default true).
    pub stream: Option<Located<bool>>,
    /// `claude`, `openai`: requests per minute shared by the agents of one server.
    pub requests_per_minute: Option<Located<u32>>,
    /// `claude`, `openai`: requests in flight at once for the agents of one server.
    pub max_concurrent: Option<Located<u32>>,

    // kind = "claude-code"
    /// `claude-code`: tools Claude Code may use.
    pub allowed_tools: Option<Located<Vec<Located<String>>>>,
    /// `claude-code`: tools Claude Code may not use.
    pub disallowed_tools: Option<Located<Vec<Located<String>>>>,
    /// `claude-code`: most agentic turns.
    pub max_turns: Option<Located<u32>>,
    /// `claude-code`: the permission mode (`default`, `acceptEdits`, `plan`, ...).
    pub permission_mode: Option<Located<String>>,
    /// `claude-code`: the program to run (default `claude`).
    pub binary: Option<Located<String>>,
    /// `claude-code`: more arguments for the program.
    pub extra_args: Option<Located<Vec<Located<String>>>>,
}

/// A group of steps run one after another (`sequential`), at once
/// (`parallel`), or as a graph (`nodes` and `edges`), with its execution
/// settings. Settings other than `join` are
/// inherited by the groups inside it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Group")]
pub struct RawFlow {
    /// The group's id: required in `groups`, optional for a group written in place.
    pub id: Option<Located<String>>,
    /// What the group does.
    pub description: Option<Located<String>>,
    /// Steps run one after another, each on the previous step's output.
    pub sequential: Option<Located<Vec<Located<Step>>>>,
    /// Steps run at once on the same input; their outputs are joined in order.
    pub parallel: Option<Located<Vec<Located<Step>>>>,
    /// Bound on the whole group's run (default: none).
    pub timeout: Option<Located<DurationSpec>>,
    /// Bound on each attempt of each step (default: none).
    pub agent_timeout: Option<Located<DurationSpec>>,
    /// Retries after a first failed attempt, for retryable failures (default 3).
    pub retries: Option<Located<u32>>,
    /// Most steps of a parallel group running at once (default 10).
    pub parallel_limit: Option<Located<u32>>,
    /// Parallel groups: how many steps must succeed (default "all").
    pub join: Option<Located<JoinSpec>>,
    /// The wait between attempts.
    pub backoff: Option<Located<RawBackoff>>,
    /// What the group's run may spend.
    pub budget: Option<Located<RawBudget>>,

    // Graph groups.
    /// Parallel groups: when a step fails for good, stop its siblings at once
    /// and fail the group (default false: every step runs to its end, then
    /// `join` decides).
    pub fail_fast: Option<Located<bool>>,
    /// Graph groups: the nodes (agent or group ids, or groups written in place).
    pub nodes: Option<Located<Vec<Located<Step>>>>,
    /// Graph groups: edges such as "start -> draft", "draft -> review -> end".
    #[serde(default)]
    pub edges: Vec<Located<String>>,
    /// Graph groups: where a node's output goes, by conditions or a router agent.
    #[serde(default)]
    pub routes: Vec<Located<RawRoute>>,
    /// Graph groups: bounded loops.
    #[serde(default)]
    pub loops: Vec<Located<RawLoop>>,
    /// Graph groups: nodes that run once per item of their input.
    #[serde(default)]
    pub maps: Vec<Located<RawMap>>,
    /// Graph groups: how many predecessors of a node must succeed.
    #[serde(default)]
    pub joins: Vec<Located<RawJoin>>,
    /// The root flow's graph: nodes that ask a person a question (the answer
    /// is the node's output).
    #[serde(default)]
    pub asks: Vec<Located<RawAsk>>,
}

/// Exponential backoff between attempts: `initial`, doubling up to `max`, spread
/// by ±`jitter`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Backoff")]
pub struct RawBackoff {
    /// The first wait (default 100ms).
    pub initial: Option<Located<DurationSpec>>,
    /// The longest wait (default 10s).
    pub max: Option<Located<DurationSpec>>,
    /// Relative spread, from 0.0 to 1.0 (default 0.2).
    pub jitter: Option<Located<f64>>,
}
