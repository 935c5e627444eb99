//! The command line: commands, flags and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run agent workflows described in TOML or YAML files.
#[derive(Debug, Parser)]
#[command(
    name = "orchestra",
    version,
    after_help = "Exit codes: 0 success, 1 an agent or the run failed, 2 bad usage or an invalid workflow, 3 waiting for answers (asks), 130/143/129 cancelled by Ctrl-C, SIGTERM or SIGHUP.\nWorkflow files: docs/workflow.md, or `orchestra schema`. Runs are kept in a store (docs/durability.md): `orchestra runs`, `show`, `resume`, `fork`, `prune`."
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
        /// Make unset environment variables errors, as `run` does (by default
        /// they are warnings, so that files can be checked without secrets).
        #[arg(long)]
        require_env: bool,
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
    /// List the stored runs, newest first.
    Runs(RunsArgs),
    /// Show a stored run: its summary, its attempts and their timeline.
    Show {
        /// The run's id (or the start of it, as `runs` shows it).
        run: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Resume a stored run that stopped: what finished is not run again.
    Resume(ResumeArgs),
    /// Start a new run from a stored one, after one of its steps.
    Fork(ForkArgs),
    /// Delete old finished runs from the store.
    Prune(PruneArgs),
}

/// Where runs are kept (`run`, `resume`, `fork` and the store commands).
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// The run store: a SQLite file, or a postgres:// URL; without the flag,
    /// the environment variable ORCHESTRA_STORE names it
    /// [default: $XDG_STATE_HOME/orchestra/runs.db, else ~/.local/state/orchestra/runs.db].
    // The variable's value is not shown in the help: a PostgreSQL URL holds
    // its password.
    #[arg(
        long,
        env = "ORCHESTRA_STORE",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    pub store: Option<String>,
}

/// What a run prints and writes (shared by `run`, `resume` and `fork`).
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
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

/// `orchestra runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Show at most this many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the runs as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `orchestra resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run's id (or the start of it, as `runs` shows it).
    pub run: String,
    /// The workflow file (default: the file the run was started from).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Resume even if the workflow's agents changed since the run started.
    #[arg(long)]
    pub force: bool,
    /// Answer a question the run asked (repeatable).
    #[arg(long = "answer", value_name = "ID=TEXT")]
    pub answers: Vec<String>,
    /// Read answers from a file: a JSON object {"ID": "TEXT", ...}, or ID=TEXT
    /// lines.
    #[arg(long = "answers", value_name = "FILE")]
    pub answers_file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `orchestra fork`.
#[derive(Debug, Args)]
pub struct ForkArgs {
    /// The run's id (or the start of it, as `runs` shows it).
    pub run: String,
    /// The step to fork after: what finished up to its last run is reused,
    /// the rest runs again (an agent id, or a graph node id).
    #[arg(long, value_name = "STEP")]
    pub after: String,
    /// The workflow file (default: the file the run was started from); its
    /// agents may have changed.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// A new input for the fork (default: the run's).
    #[arg(long)]
    pub input: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `orchestra prune`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["older_than", "keep"]))]
pub struct PruneArgs {
    /// Delete the finished runs that started longer ago than this (30d, 12h, 90m).
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Keep only the newest N finished runs.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    #[command(flatten)]
    pub store: StoreArgs,
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
    #[command(flatten)]
    pub output: OutputArgs,
    /// Answer the question of ask node ID (repeatable): --answer approve=yes.
    #[arg(long, value_name = "ID=TEXT")]
    pub answer: Vec<String>,
    /// Read answers from a file: a JSON object {"ID": "TEXT", ...}, or ID=TEXT
    /// lines.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep no record of the run (it cannot be resumed or listed).
    #[arg(long)]
    pub no_store: bool,
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
