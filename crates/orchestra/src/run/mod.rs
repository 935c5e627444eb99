//! `orchestra run`: loads a workflow and its input, checks before anything
//! starts what the run needs (the files it will write, its store, its
//! models, its plan), and launches it: [`execute`] runs it under an
//! [`ExecutionContext`](claude_agent_sdk::orchestration::ExecutionContext)
//! with a live progress observer, cancelling it on Ctrl-C, SIGTERM or SIGHUP
//! (and exiting at once on a second one: [`signals`]), and [`report`] writes
//! the result, the summary and the traces. `resume` and `fork` launch their
//! runs here too.
//!
//! Standard output gets the result only (or the JSON output with `--json`), so
//! it can be piped; progress, the summary and errors go to standard error.

pub mod answers;
mod chain;
mod execute;
pub mod fingerprint;
mod layout;
mod no_run;
mod preview;
mod progress;
mod report;
mod signals;
mod summary;

use std::io::{IsTerminal, Read};
use std::path::Path;

use claude_agent_sdk::orchestration::OrchestratorInput;

pub use self::chain::earlier_traces;
use self::execute::Run;
pub use self::execute::Start;
pub use self::no_run::{nothing_to_resume, Refusal, Unanswered};
use self::preview::Previews;
use self::progress::Display;
pub use self::signals::Stop;
use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::factory::Factory;
use crate::graph_plan::MapCounts;
use crate::plan::Plan;
use crate::store::Location;
use crate::workflow::{self, Strictness, Workflow};

/// Runs `orchestra run`.
pub fn run(args: &RunArgs) -> Exit {
    let json = args.output.json;
    let workflow = match workflow::load(&args.file, Strictness::Run) {
        Ok(workflow) => workflow,
        Err(invalid) => return Refusal::invalid(&invalid).tell(json),
    };
    let input = match read_input(args, &workflow) {
        Ok(input) => input,
        Err(problem) => return Refusal::usage(problem).tell(json),
    };
    let given = match answers::given(&args.answer, args.answers.as_deref(), &workflow) {
        Ok(given) => given,
        Err(problem) => return Refusal::usage(problem).tell(json),
    };
    let input = fingerprint::stamp(input, &workflow);
    launch(&workflow, Start::Fresh(input), args, given)
}

/// Runs `workflow` as `start` says, with the answers `given`, printing and
/// writing what `args` ask.
pub fn launch(
    workflow: &Workflow,
    start: Start,
    args: &RunArgs,
    given: Vec<(String, String)>,
) -> Exit {
    // What a refusal before the run says names the stored run a resume or
    // fork continues.
    let refuse = |refusal: Refusal| {
        match &start {
            Start::Resume(run) | Start::Fork { run, .. } => refusal.of_run(*run),
            Start::Fresh(_) => refusal,
        }
        .tell(args.output.json)
    };
    if let Err(problem) = check_outputs(args) {
        return refuse(Refusal::usage(problem));
    }
    let explicit = Location::is_explicit(&args.store);
    let location = match Location::chosen(&args.store) {
        _ if args.no_store => None,
        Ok(location) => Some(location),
        // No folder for the default store: the run goes on, unrecorded.
        Err(problem) if !explicit => {
            errln!(
                "warning: {problem}; this run is not kept (run with `--no-store` to keep none \
                 without this warning)"
            );
            None
        }
        Err(problem) => return refuse(Refusal::usage(problem)),
    };
    if !args.output.quiet {
        for warning in &workflow.warnings {
            errln!("warning: {warning}");
        }
    }
    let display = if args.output.quiet {
        Display::Quiet
    } else if std::io::stderr().is_terminal() {
        Display::Live
    } else {
        Display::Plain
    };
    if let Err(problem) = crate::models::ensure_models(workflow, args.output.quiet) {
        return refuse(Refusal::failed(problem));
    }
    // Only the live display shows what agents produce as they run.
    let previews = Previews::new(workflow.redactor.clone());
    let listener = (display == Display::Live).then(|| previews.listener());
    let counts = MapCounts::default();
    let factory = Factory::new()
        .with_output_listener(listener)
        .with_map_counts(counts.clone());
    let plan = match Plan::build(workflow, factory) {
        Ok(plan) => plan,
        Err(problem) => return refuse(Refusal::usage(workflow.redactor.redact(&problem))),
    };
    // Many programs at once need many descriptors: the soft limit goes up to
    // the hard one (a start that still finds none is retried).
    #[cfg(unix)]
    let _ = claude_agent_sdk::agents::raise_open_files_limit();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(problem) => return refuse(Refusal::failed(problem)),
    };
    let run = Run {
        workflow,
        args,
        display,
        previews,
        counts,
        location,
        explicit,
    };
    let exit = runtime.block_on(run.execute(plan, start, given));
    // Agents still winding down (none should be) must not hold the exit;
    // a program one of them ran is stopped as it is dropped here.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    // Programs being stopped — those above too — get their grace period
    // (SIGTERM, then SIGKILL) before the process exits and takes the
    // stopping threads with it.
    #[cfg(unix)]
    claude_agent_sdk::agents::wait_for_stopping_programs(
        claude_agent_sdk::agents::STOP_GRACE + std::time::Duration::from_secs(1),
    );
    exit
}

/// The async runtime a command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Checks that the files the run will write can be written, before it starts.
fn check_outputs(args: &RunArgs) -> Result<(), String> {
    #[cfg(not(feature = "otel"))]
    if args.output.otlp.is_some() {
        return Err("`--otlp` needs orchestra built with the `otel` feature \
                    (cargo install orchestra --features otel)"
            .to_owned());
    }
    for path in [&args.output.trace, &args.output.chrome_trace]
        .into_iter()
        .flatten()
    {
        if path.is_dir() {
            return Err(format!(
                "cannot write `{}`: it is a directory; give a file name, for example `{}`",
                path.display(),
                path.join("trace.json").display()
            ));
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(format!(
                "cannot write `{}`: directory `{}` does not exist",
                path.display(),
                parent.display()
            ));
        }
        // A FIFO (or a device) is opened once, when the run ends: opening it
        // for a check would block until a reader comes, and closing it would
        // end what that reader reads.
        if path.metadata().is_ok_and(|meta| !meta.is_file()) {
            continue;
        }
        // Writable now, before the run does anything: a file made for the
        // check is removed again (the run writes it when it ends).
        let existed = path.exists();
        if let Err(error) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            return Err(format!("cannot write `{}`: {error}", path.display()));
        }
        if !existed {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// The run's input: `--input`, `--input-file`, standard input when it is not a
/// terminal and not empty, or the workflow's `input`.
fn read_input(args: &RunArgs, workflow: &Workflow) -> Result<OrchestratorInput, String> {
    let content = if let Some(text) = &args.input {
        text.clone()
    } else if let Some(path) = &args.input_file {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the input file `{}`: {e}", path.display()))?
    } else {
        let mut piped = String::new();
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            stdin
                .lock()
                .read_to_string(&mut piped)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
        }
        if piped.trim().is_empty() {
            workflow.default_input.clone().unwrap_or_default()
        } else {
            piped
        }
    };
    Ok(OrchestratorInput::new(content).with_metadata("workflow", workflow.name.clone()))
}
