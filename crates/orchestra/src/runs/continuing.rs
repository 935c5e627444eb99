//! `resume` and `fork`: a new run from a stored one — the continuation of a
//! run that stopped, or a run that reuses what one finished up to a step.
//! They find the run and the workflow file it ran, refuse what cannot be
//! continued (a group's run, a run resumed already, a changed workflow, a
//! step a fork cannot start after, a paused run given no answer) before
//! anything starts, and launch the run as `orchestra run` does. Apart from
//! the commands that only read the store (the parent module): these start
//! runs.

use std::path::PathBuf;

use claude_agent_sdk::orchestration::store::RunStatus;
use claude_agent_sdk::orchestration::{
    AgentInput, ExecutionConfig, ExecutionContext, ExecutionTrace, OrchestratorInput, Question,
    RunId,
};

use super::access::{failed, on_store, started, usage, Access, Started};
use crate::cli::{ForkArgs, OutputArgs, ResumeArgs, RunArgs, StoreArgs};
use crate::exit::Exit;
use crate::run::{self, fingerprint, Refusal, Start};
use crate::store::Location;
use crate::workflow::{self, Strictness};

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
    let given = run::answers::given(&args.answers, args.answers_file.as_deref(), &workflow);
    let answers = match given {
        Ok(answers) => answers,
        Err(problem) => return refuse(Refusal::usage(problem)),
    };
    let run_args = run_args(&found.file, &args.output, &args.store);
    // A run paused on questions, none of them answered and nobody to ask:
    // a new run would only pause on them again.
    let answered = |question: &Question| answers.iter().any(|(id, _)| *id == question.id);
    if !found.waiting.is_empty()
        && !found.waiting.iter().any(answered)
        && !run::answers::can_prompt(&run_args)
    {
        let location = match Location::chosen(&args.store) {
            Ok(location) => location,
            Err(problem) => return refuse(Refusal::usage(problem)),
        };
        let unanswered = run::Unanswered {
            run: found.run,
            location: &location,
            questions: &found.waiting,
            given: &answers,
            trace: found.trace,
        };
        return unanswered.tell(&workflow, json);
    }
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
    /// The questions a paused run waits for (empty for any other run).
    waiting: Vec<Question>,
    /// What a run that succeeded or paused did, and the runs it resumed,
    /// when asked for.
    trace: Option<ExecutionTrace>,
}

/// Finds run `text` in the store, and the workflow file it ran (`file`
/// when given); with `with_trace`, the trace of a run that succeeded or
/// paused.
fn look_up(
    text: &str,
    file: Option<&PathBuf>,
    store_args: &StoreArgs,
    with_trace: bool,
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
        // What a paused run waits for: a resume that answers none of it
        // would only pause again.
        let waiting = if summary.status == RunStatus::Paused {
            Question::waiting_in(store.journal().as_ref(), summary.id)
                .await
                .map_err(|error| {
                    failed(format!(
                        "cannot read the questions run {} waits for: {error}",
                        summary.id
                    ))
                })?
        } else {
            Vec::new()
        };
        let done = matches!(summary.status, RunStatus::Succeeded | RunStatus::Paused);
        let trace = if with_trace && done {
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
            waiting,
            trace,
        })
    });
    found.map_err(|(message, exit)| Refusal::new(exit, message))
}

/// The most levels of nested runs followed up to the top-level run.
const NESTING_LIMIT: usize = 1_000;

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
