//! The store commands: `runs` lists the stored runs, `show` shows one,
//! `resume` continues one that stopped, `fork` starts a new run from one,
//! and `prune` deletes old ones.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use claude_agent_sdk::orchestration::store::{Prune, RunStatus, RunSummary};
use claude_agent_sdk::orchestration::{
    AgentInput, EventKind, ExecutionConfig, ExecutionContext, ExecutionTrace, OrchestratorInput,
    RunId,
};

use crate::cli::{ForkArgs, OutputArgs, PruneArgs, ResumeArgs, RunArgs, RunsArgs, StoreArgs};
use crate::commands::render_trace;
use crate::exit::Exit;
use crate::run::{self, fingerprint, Refusal, Start};
use crate::store::{Location, RunStore};
use crate::table::{Align, Table};
use crate::workflow::{self, Strictness};

/// `orchestra runs`.
pub fn list(args: &RunsArgs) -> Exit {
    // A limit of 0 would list nothing and say the store is empty when it is
    // not; whoever types it more likely means "no limit", which it is not.
    if args.limit == 0 {
        errln!("error: `--limit` is how many runs to show, at least 1 (the default is 20)");
        return Exit::Usage;
    }
    with_store(&args.store, Access::Read, |store| async move {
        let runs = store.runs(args.limit).await.map_err(failed)?;
        if args.json {
            let json = serde_json::to_string_pretty(&runs)
                .map_err(|e| failed(format!("cannot encode the runs: {e}")))?;
            outln!("{json}");
            return Ok(Exit::Success);
        }
        if runs.is_empty() {
            errln!("no runs in the store yet");
            return Ok(Exit::Success);
        }
        let mut table = Table::new(&[
            ("run", Align::Left),
            ("workflow", Align::Left),
            ("status", Align::Left),
            ("started", Align::Left),
            ("duration", Align::Right),
            ("tokens", Align::Right),
            ("cost", Align::Right),
        ]);
        for run in &runs {
            table.row(vec![
                run.id.to_string(),
                workflow_name(run),
                status(run),
                run.started.format("%Y-%m-%d %H:%M:%S").to_string(),
                duration(run.started, run.finished),
                run.tokens.to_string(),
                dollars(run.cost_usd),
            ]);
        }
        out!("{}", table.render());
        Ok(Exit::Success)
    })
}

/// `orchestra show`.
pub fn show(run: &str, store_args: &StoreArgs) -> Exit {
    with_store(store_args, Access::Read, |store| async move {
        let summary = store.find(run).await.map_err(usage)?;
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(store.journal());
        let Some(trace) = ctx.run_trace(summary.id).await else {
            return Err(failed(format!(
                "run {} has no events in the store",
                summary.id
            )));
        };
        outln!("run       {}", summary.id);
        outln!(
            "workflow  {}",
            summary.label.as_deref().unwrap_or(&summary.orchestrator)
        );
        outln!("status    {}", status(&summary));
        outln!(
            "started   {} ({})",
            summary.started.format("%Y-%m-%d %H:%M:%S UTC"),
            duration(summary.started, summary.finished)
        );
        if let Some(forked) = summary.forks {
            match started(&store, summary.id).await.fork_step {
                Some(after) => outln!("forks     {forked}, after `{after}`"),
                None => outln!("forks     {forked}"),
            }
        }
        if let Some(previous) = summary.resumes {
            outln!("resumes   {previous}");
        }
        if let Some(next) = summary.resumed_by {
            outln!("resumed   by {next}");
        }
        outln!(
            "tokens    {} ({})",
            summary.tokens,
            dollars(summary.cost_usd)
        );
        outln!();
        out!("{}", render_trace(&trace));
        Ok(Exit::Success)
    })
}

/// `orchestra prune`.
pub fn prune(args: &PruneArgs) -> Exit {
    let which = match (&args.older_than, args.keep) {
        (Some(age), _) => match parse_age(age) {
            // An age beyond the calendar: older than any run.
            Ok(age) => Prune::StartedBefore(
                Utc::now()
                    .checked_sub_signed(age)
                    .unwrap_or(chrono::DateTime::<Utc>::UNIX_EPOCH),
            ),
            Err(problem) => {
                errln!("error: {problem}");
                return Exit::Usage;
            }
        },
        (None, Some(keep)) => Prune::KeepNewest(keep),
        (None, None) => {
            errln!("error: say which runs to delete: --older-than AGE or --keep N");
            return Exit::Usage;
        }
    };
    with_store(&args.store, Access::Write, |store| async move {
        let deleted = store.prune(which).await.map_err(failed)?;
        errln!("deleted {deleted} run(s)");
        Ok(Exit::Success)
    })
}

/// `orchestra resume`.
pub fn resume(args: &ResumeArgs) -> Exit {
    let json = args.output.json;
    let found = match look_up(&args.run, args.file.as_ref(), &args.store, json) {
        Ok(found) => found,
        Err(refusal) => return refusal.tell(json),
    };
    let refuse = |refusal: Refusal| refusal.of_run(found.run).tell(json);
    if let Some(next) = found.resumed_by {
        return refuse(Refusal::usage(format!(
            "run {} was resumed already, by run {next}: resume that one",
            found.run
        )));
    }
    if found.status == RunStatus::Succeeded {
        errln!(
            "run {} succeeded: there is nothing to resume (`orchestra fork {} --after STEP` \
             runs it again from a step)",
            found.run,
            found.run
        );
        if json {
            outln!(
                "{}",
                run::nothing_to_resume(found.run, found.trace.as_ref())
            );
        }
        return Exit::Success;
    }
    let workflow = match load(&found) {
        Ok(workflow) => workflow,
        Err(refusal) => return refuse(refusal),
    };
    let changes = fingerprint::changes(&found.input.metadata, &workflow);
    if !changes.is_empty() && !args.force {
        return refuse(Refusal::usage(format!(
            "`{}` changed since run {} started: {}; resume anyway with --force, or \
             start a new run from it with `orchestra fork`",
            found.file.display(),
            found.run,
            changes.join(", ")
        )));
    }
    let mut answers = Vec::new();
    for answer in &args.answers {
        match answer.split_once('=') {
            Some((id, text)) if !id.trim().is_empty() => {
                answers.push((id.trim().to_owned(), text.to_owned()));
            }
            _ => {
                return refuse(Refusal::usage(format!(
                    "`--answer {answer}`: write it as ID=TEXT"
                )))
            }
        }
    }
    if let Err(problem) = run::answers::check(&answers, &workflow) {
        return refuse(Refusal::usage(problem));
    }
    let run_args = run_args(&found.file, &args.output, &args.store);
    run::launch(&workflow, Start::Resume(found.run), &run_args, answers)
}

/// `orchestra fork`.
pub fn fork(args: &ForkArgs) -> Exit {
    let json = args.output.json;
    let found = match look_up(&args.run, args.file.as_ref(), &args.store, false) {
        Ok(found) => found,
        Err(refusal) => return refusal.tell(json),
    };
    let refuse = |refusal: Refusal| refusal.of_run(found.run).tell(json);
    let workflow = match load(&found) {
        Ok(workflow) => workflow,
        Err(refusal) => return refuse(refusal),
    };
    if let Err(problem) = check_fork_step(&workflow, &args.after) {
        return refuse(Refusal::usage(problem));
    }
    // The fork's input: the one given, or the forked run's; stamped with
    // the workflow as it is now, which the fork's resumes compare with.
    let input = match &args.input {
        Some(text) => {
            OrchestratorInput::new(text.clone()).with_metadata("workflow", workflow.name.clone())
        }
        None => OrchestratorInput {
            content: found.input.content.clone(),
            context: found.input.context.clone(),
            metadata: found.input.metadata.clone(),
        },
    };
    let start = Start::Fork {
        run: found.run,
        after: args.after.clone(),
        input: Some(fingerprint::stamp(input, &workflow)),
    };
    let run_args = run_args(&found.file, &args.output, &args.store);
    run::launch(&workflow, start, &run_args, Vec::new())
}

/// The steps `orchestra fork --after` can name: the root flow's own steps
/// (and asks), or the root itself when a budget makes it the one node of a
/// graph of its own.
fn top_level_steps(workflow: &workflow::Workflow) -> Vec<&str> {
    let flow = &workflow.flow;
    if flow.graph.is_none() && flow.budget.is_some() {
        return vec![flow.name.as_str()];
    }
    let mut steps: Vec<&str> = flow.steps.iter().map(workflow::Node::name).collect();
    if let Some(graph) = &flow.graph {
        steps.extend(graph.asks.iter().map(|ask| ask.id.as_str()));
    }
    steps
}

/// Refuses `--after STEP` for a step that runs inside a group: the run store
/// keeps the outputs of the root flow's steps only (a group's inner steps
/// are in the runs nested in it, which a fork runs again), so a fork can
/// start after a top-level step alone. A name the workflow does not have is
/// refused too, with the steps it has.
fn check_fork_step(workflow: &workflow::Workflow, after: &str) -> Result<(), String> {
    let top = top_level_steps(workflow);
    if top.contains(&after) {
        return Ok(());
    }
    // Where `after` runs: the group holding it, and the top-level step
    // that holds that group.
    let mut chain: Vec<&str> = vec![workflow.flow.name.as_str()];
    let mut found: Option<(String, Option<String>)> = None;
    workflow.flow.walk(&mut |node, depth| {
        chain.truncate(depth);
        if found.is_none() && node.name() == after {
            let parent = chain.last().copied().unwrap_or_default().to_owned();
            let outer = chain
                .get(1)
                .copied()
                .filter(|outer| top.contains(outer))
                .map(str::to_owned);
            found = Some((parent, outer));
        }
        chain.push(node.name());
    });
    let listed: Vec<String> = top.iter().map(|step| format!("`{step}`")).collect();
    let Some((parent, outer)) = found else {
        // Not a step at all: a usage error, before anything runs (a run
        // would only fail, and be kept, for it).
        let help = workflow::suggest_name(after, top.iter().copied())
            .map(|near| format!("; did you mean `{near}`?"))
            .unwrap_or_default();
        return Err(format!(
            "`{after}` is not a step of `{}`: `orchestra fork --after` names a top-level step \
             of the flow ({}){help}",
            workflow.path.display(),
            listed.join(", ")
        ));
    };
    let hint = match outer {
        Some(outer) => match top.iter().position(|step| *step == outer) {
            Some(at) if at > 0 => format!(
                "; fork after `{}` to run `{outer}`, which holds it, again",
                top[at - 1]
            ),
            _ => format!("; `{outer}`, which holds it, is the first step: run the workflow again"),
        },
        None => String::new(),
    };
    Err(format!(
        "`{after}` runs inside group `{parent}`: `orchestra fork --after` can name only a \
         top-level step of the flow ({}), whose outputs the run store keeps{hint}",
        listed.join(", ")
    ))
}

/// The workflow `found` ran.
fn load(found: &Found) -> Result<workflow::Workflow, Refusal> {
    let file = &found.file;
    if !found.named && !file.exists() {
        return Err(Refusal::usage(format!(
            "run {} ran `{}`, which is not there any more: give the workflow file \
             with --file PATH",
            found.run,
            file.display()
        )));
    }
    workflow::load(file, Strictness::Run).map_err(|invalid| Refusal::invalid(&invalid))
}

/// A stored run to continue: its id, its workflow file, its input.
struct Found {
    run: RunId,
    file: PathBuf,
    /// Whether the user named the file (`--file`) rather than the run.
    named: bool,
    input: AgentInput,
    status: RunStatus,
    resumed_by: Option<RunId>,
    /// What a run that succeeded did, and the runs it resumed, when asked
    /// for.
    trace: Option<ExecutionTrace>,
}

/// Finds run `text` in the store, and the workflow file it ran (`file`
/// when given); with `trace_if_done`, the trace of a run that succeeded.
fn look_up(
    text: &str,
    file: Option<&PathBuf>,
    store_args: &StoreArgs,
    trace_if_done: bool,
) -> Result<Found, Refusal> {
    let found = on_store(store_args, Access::Write, |store| async move {
        let summary = store.find(text).await.map_err(usage)?;
        let Started { input, parent, .. } = started(&store, summary.id).await;
        if let Some(mut top) = parent {
            // A run nested in another (a group's): only the run it is part
            // of resumes and forks, with the file it ran.
            for _ in 0..NESTING_LIMIT {
                match started(&store, top).await.parent {
                    Some(outer) => top = outer,
                    None => break,
                }
            }
            return Err(usage(format!(
                "run {} is a group's run inside run {top}: resume or fork that one",
                summary.id
            )));
        }
        let named = file.is_some();
        let file = match (file, &summary.label) {
            (Some(file), _) => file.clone(),
            (None, Some(label)) => PathBuf::from(label),
            (None, None) => {
                return Err(usage(format!(
                    "run {} does not say which workflow file it ran: give it with --file",
                    summary.id
                )))
            }
        };
        let trace = if trace_if_done && summary.status == RunStatus::Succeeded {
            let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(store.journal());
            let mut chain = run::earlier_traces(&ctx, summary.id).await;
            chain.pop().map(|last| crate::traces::joined(chain, last))
        } else {
            None
        };
        Ok(Found {
            run: summary.id,
            file,
            named,
            input,
            status: summary.status,
            resumed_by: summary.resumed_by,
            trace,
        })
    });
    found.map_err(|(message, exit)| Refusal::new(exit, message))
}

/// The most levels of nested runs followed up to the top-level run.
const NESTING_LIMIT: usize = 1_000;

/// What run `run`'s start event in `store` says: the input it was given,
/// the run it is nested in, and for a fork, the step it forked after.
#[derive(Default)]
struct Started {
    input: AgentInput,
    parent: Option<RunId>,
    fork_step: Option<String>,
}

async fn started(store: &RunStore, run: RunId) -> Started {
    let events = store.journal().read(&[run]).await;
    events
        .into_iter()
        .find_map(|event| match event.kind {
            EventKind::RunStarted {
                input,
                parent,
                forks,
                ..
            } if event.run == run => Some(Started {
                input: *input,
                parent: parent.map(|parent| parent.run),
                fork_step: forks.map(|fork| fork.after),
            }),
            _ => None,
        })
        .unwrap_or_default()
}

/// The `run` arguments a resumed or forked run prints and writes with.
fn run_args(file: &std::path::Path, output: &OutputArgs, store: &StoreArgs) -> RunArgs {
    RunArgs {
        file: file.to_path_buf(),
        input: None,
        input_file: None,
        output: output.clone(),
        answer: Vec::new(),
        answers: None,
        store: store.clone(),
        no_store: false,
    }
}

/// A command's failure: its message and exit code.
type Failure = (String, Exit);

fn failed(message: impl Into<String>) -> Failure {
    (message.into(), Exit::Failed)
}

fn usage(message: impl Into<String>) -> Failure {
    (message.into(), Exit::Usage)
}

/// What a command does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// It only reads: a store this process may not write is read read-only.
    Read,
    /// It writes: it runs, or deletes.
    Write,
}

/// Opens the store `args` choose and runs `command` on it.
fn on_store<T, F, Fut>(args: &StoreArgs, access: Access, command: F) -> Result<T, Failure>
where
    F: FnOnce(RunStore) -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    (|| {
        let location = Location::chosen(args).map_err(usage)?;
        // These commands read a store: a store file named that is not there
        // is a mistyped path, not one to create.
        if let Location::Sqlite(path) = &location {
            if Location::is_explicit(args) && !path.exists() {
                return Err(usage(format!(
                    "there is no run store at `{}`",
                    path.display()
                )));
            }
        }
        let runtime = run::runtime().map_err(failed)?;
        runtime.block_on(async {
            let store = match access {
                Access::Read => location.open_to_read().await,
                Access::Write => {
                    location
                        .open(claude_agent_sdk::orchestration::store::StoreOptions::new())
                        .await
                }
            }
            .map_err(failed)?;
            let result = command(store.clone()).await;
            // What the command wrote is in the store already (a read
            // flushes first, and a run waits for its events): a failure to
            // close loses nothing.
            let _ = store.close().await;
            result
        })
    })()
}

/// As [`on_store`], for a command whose result is its exit code; a failure
/// is printed, and its exit code returned.
fn with_store<F, Fut>(args: &StoreArgs, access: Access, command: F) -> Exit
where
    F: FnOnce(RunStore) -> Fut,
    Fut: std::future::Future<Output = Result<Exit, Failure>>,
{
    on_store(args, access, command).unwrap_or_else(|(message, exit)| {
        errln!("error: {message}");
        exit
    })
}

/// The workflow a run belongs to, as a listing shows it: the file name.
fn workflow_name(run: &RunSummary) -> String {
    match &run.label {
        Some(label) => std::path::Path::new(label)
            .file_name()
            .map_or_else(|| label.clone(), |name| name.to_string_lossy().into_owned()),
        None => run.orchestrator.clone(),
    }
}

/// A cost as listings show it, `$0.0123`; one too large to read digit by
/// digit (the store stops a sum at the largest number rather than let it
/// overflow) in scientific notation, `$1.798e308`, so the table stays a
/// table.
fn dollars(usd: f64) -> String {
    if usd.abs() < 1e12 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.3e}")
    }
}

/// A run's status (`crashed` for a run whose process died without recording
/// its end: the store tells), with the run it forks and what continued it
/// (ids cut to 12 digits, as a prefix finds them).
fn status(run: &RunSummary) -> String {
    let short = |id: RunId| id.to_string()[..12].to_owned();
    let mut status = run.status.to_string();
    if let Some(forked) = run.forks {
        status.push_str(&format!(" (fork of {})", short(forked)));
    }
    if let Some(next) = run.resumed_by {
        status.push_str(&format!(" (resumed by {})", short(next)));
    }
    status
}

fn duration(started: DateTime<Utc>, finished: Option<DateTime<Utc>>) -> String {
    let Some(finished) = finished else {
        return "-".to_owned();
    };
    // As the run's own summary says it: `850ms`, `12.3s`, `2m05s`.
    crate::traces::human_duration((finished - started).to_std().unwrap_or_default())
}

/// `30d`, `12h`, `90m`, `45s` as a duration.
fn parse_age(text: &str) -> Result<chrono::TimeDelta, String> {
    let text = text.trim();
    let bad =
        || format!("`{text}` is not an age: write a number and a unit, as 30d, 12h, 90m or 45s");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => number.checked_mul(86_400),
        "h" => number.checked_mul(3_600),
        "m" => number.checked_mul(60),
        "s" => Some(number),
        _ => None,
    }
    .ok_or_else(bad)?;
    chrono::TimeDelta::try_seconds(seconds).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_durations() {
        assert_eq!(parse_age("30d").unwrap(), chrono::TimeDelta::days(30));
        assert_eq!(parse_age("90m").unwrap(), chrono::TimeDelta::minutes(90));
        assert!(parse_age("soon").is_err());
        assert!(parse_age("10y").is_err());
        assert!(parse_age("99999999999999999d").is_err());
    }

    #[test]
    fn costs_read_as_dollars_however_large() {
        assert_eq!(dollars(0.0), "$0.0000");
        assert_eq!(dollars(0.01234), "$0.0123");
        assert_eq!(dollars(f64::MAX), "$1.798e308");
    }
}
