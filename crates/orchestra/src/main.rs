//! `orchestra`: run agent workflows described in TOML or YAML files.
//!
//! A thin command-line layer over `claude_agent_sdk::orchestration`: it reads
//! and checks a workflow file ([`workflow`]), builds the library's agents and
//! orchestrators from it ([`factory`], [`plan`]), runs them under an execution
//! context with a live progress observer ([`run`]), and turns the execution
//! trace into tables, timelines and Chrome traces ([`commands`], [`chrome`]).
//! See `docs/workflow.md` for the file format.

#[macro_use]
mod output;

mod chrome;
mod cli;
mod commands;
mod exit;
mod factory;
mod fail_fast;
mod graph;
mod graph_draw;
mod graph_plan;
mod models;
#[cfg(feature = "otel")]
mod otel;
mod plan;
mod redacted_json;
mod run;
mod runs;
mod store;
mod table;
mod template;
mod traces;
mod workflow;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout and succeed; mistakes exit 2.
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    let exit = match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate { file, require_env } => commands::validate(file, *require_env),
        Command::Agents(args) => commands::agents(args),
        Command::Graph { file, format } => commands::graph(file, *format),
        Command::Trace { path } => commands::trace(path),
        Command::Schema => commands::schema(),
        Command::Runs(args) => runs::list(args),
        Command::Show { run, store } => runs::show(run, store),
        Command::Resume(args) => runs::resume(args),
        Command::Fork(args) => runs::fork(args),
        Command::Prune(args) => runs::prune(args),
        Command::Model { action } => models::command(action),
    };
    // What the command printed did not all arrive: its result is lost.
    if let Some(failure) = output::stdout_failure() {
        errln!("error: writing to standard output failed: {failure}");
        if exit.code() == 0 {
            return Exit::Failed.into();
        }
    }
    exit.into()
}
