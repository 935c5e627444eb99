//! The command line: commands, flags and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run agent workflows described in TOML or YAML files.
#[derive(Debug, Parser)]
#[command(
    name = "orchestra",
    version,
    after_help = "Exit codes: 0 success, 1 an agent or the run failed, 2 bad usage or an invalid workflow, 130 cancelled (Ctrl-C).\nWorkflow files: docs/workflow.md, or `orchestra schema`."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow, with live progress, and print its result and a summary.
    Run(RunArgs),
    /// Check a workflow file and report every problem at once.
    Validate {
        /// The workflow file (.toml, .yaml or .yml).
        file: PathBuf,
    },
    /// List a workflow's agents and their registry metadata, filtered.
    Agents(AgentsArgs),
    /// Print a workflow's flow as a Mermaid or Graphviz diagram.
    Graph {
        /// The workflow file.
        file: PathBuf,
        /// The diagram language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Show a saved trace (from `run --trace`) as a table and a timeline.
    Trace {
        /// The trace file (JSON).
        path: PathBuf,
    },
    /// Print the JSON Schema of workflow files.
    Schema,
    /// Manage the local model cache (for agents of kind `local`).
    Model {
        /// What to do.
        #[command(subcommand)]
        action: ModelCommand,
    },
}

/// `orchestra model`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Fetch a known model into the cache (default: smollm2-135m) and print its path.
    Fetch {
        /// The model's name.
        name: Option<String>,
    },
    /// List the known models and what the cache holds.
    List,
    /// Remove a known model from the cache.
    Remove {
        /// The model's name.
        name: String,
    },
}

/// `orchestra run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file (.toml, .yaml or .yml).
    pub file: PathBuf,
    /// The input text (default: standard input when it is not a terminal, else
    /// the workflow's `input`).
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the input from this file.
    #[arg(long, value_name = "PATH")]
    pub input_file: Option<PathBuf>,
    /// Print the whole result (`OrchestratorOutput`) as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// Write the execution trace (JSON) to this file, also when the run fails or
    /// is cancelled.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    /// Write a Chrome trace-event file (open it in Perfetto or chrome://tracing).
    #[arg(long, value_name = "PATH")]
    pub chrome_trace: Option<PathBuf>,
    /// Print only the result: no progress, no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Export spans to an OpenTelemetry collector over OTLP/HTTP, for example
    /// http://localhost:4318 (needs the `otel` feature).
    #[arg(long, value_name = "ENDPOINT")]
    pub otlp: Option<String>,
}

/// `orchestra agents`.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// The workflow file.
    pub file: PathBuf,
    /// Only agents of this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only agents with this tool (repeatable: all must match).
    #[arg(long)]
    pub tool: Vec<String>,
    /// Only agents with this skill (repeatable).
    #[arg(long)]
    pub skill: Vec<String>,
    /// Only agents with this tag (repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only enabled agents.
    #[arg(long)]
    pub enabled: bool,
}

/// Diagram languages for `orchestra graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid (renders in GitHub and GitLab Markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}
