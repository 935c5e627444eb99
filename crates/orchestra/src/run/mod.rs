//! `orchestra run`: runs a workflow under an [`ExecutionContext`] with a live
//! progress observer, cancels it on Ctrl-C, SIGTERM or SIGHUP (and exits at
//! once on a second one: [`signals`]), and writes the result, the summary
//! and the traces.
//!
//! Standard output gets the result only (or the JSON output with `--json`), so
//! it can be piped; progress, the summary and errors go to standard error.

pub mod answers;
pub mod fingerprint;
mod layout;
mod no_run;
mod preview;
mod progress;
mod signals;
mod summary;

use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use claude_agent_sdk::orchestration::store::StoreOptions;
use claude_agent_sdk::orchestration::{
    EventKind, ExecutionContext, ExecutionTrace, OrchestrationError, OrchestratorInput,
    OrchestratorOutput, Pause, Question, RunId,
};

pub use self::no_run::{nothing_to_resume, Refusal};
use self::preview::Previews;
use self::progress::{Display, Progress};
use self::signals::Signals;
pub use self::signals::Stop;
use crate::chrome;
use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::factory::Factory;
use crate::graph_plan::MapCounts;
use crate::plan::Plan;
use crate::redacted_json;
use crate::store::{shell_quote, Location};
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
    let given = match answers::given(args, &workflow) {
        Ok(given) => given,
        Err(problem) => return Refusal::usage(problem).tell(json),
    };
    let input = fingerprint::stamp(input, &workflow);
    launch(&workflow, Start::Fresh(input), args, given)
}

/// How a run starts.
pub enum Start {
    /// A new run on this input.
    Fresh(OrchestratorInput),
    /// The continuation of a stored run.
    Resume(RunId),
    /// A new run from a stored one, after step `after`.
    Fork {
        run: RunId,
        after: String,
        input: Option<OrchestratorInput>,
    },
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

/// What a run is made of, besides its plan and input.
struct Run<'a> {
    workflow: &'a Workflow,
    args: &'a RunArgs,
    display: Display,
    previews: Previews,
    /// How many items each map node runs (for the progress display).
    counts: MapCounts,
    /// Where the run is kept, if anywhere.
    location: Option<Location>,
    /// Whether the user named the store (then a store that cannot be opened
    /// fails the run; the default store only warns).
    explicit: bool,
}

impl Run<'_> {
    /// Runs `plan` as `start` says, with the answers `given`; on a
    /// terminal, asks for the answers a paused run still needs and resumes it.
    async fn execute(self, mut plan: Plan, start: Start, given: Vec<(String, String)>) -> Exit {
        let Self {
            workflow,
            args,
            display,
            previews,
            counts,
            mut location,
            explicit,
        } = self;
        let progress = Progress::new(workflow, display, previews, counts);
        let mut ctx =
            ExecutionContext::new(plan.config().clone()).with_observer(Arc::new(progress.clone()));
        let mut store = None;
        if let Some(place) = &location {
            match place.open(store_options(workflow)).await {
                Ok(opened) => {
                    ctx = ctx.with_journal(opened.journal());
                    store = Some(opened);
                }
                Err(problem) if explicit => {
                    let problem = format!("{problem} (run with `--no-store` to keep no record)");
                    return Refusal::failed(problem).tell(args.output.json);
                }
                Err(problem) => {
                    errln!("warning: {problem}; this run is not kept");
                    location = None;
                }
            }
        }
        for (id, answer) in given {
            ctx.answer(id, answer);
        }
        let about = workflow
            .description
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let how = match &start {
            Start::Fresh(_) => "Running".to_owned(),
            Start::Resume(run) => format!("Resuming run {run} of"),
            Start::Fork { run, after, .. } => format!("Forking run {run} after `{after}` of"),
        };
        let note = format!(
            "{how} `{}`{about}: {} agent(s), {} flow",
            workflow.name,
            workflow.agents.len(),
            workflow.flow.mode.as_str()
        );
        progress.note(&workflow.redactor.redact(&note));
        progress.spawn_ticker();

        let exiting = Exiting {
            progress: progress.clone(),
            location: location.clone(),
        };
        let mut stop = Stopping {
            signals: Signals::listen(move |headline| exiting.tell(headline)),
            by: None,
            ctx: &ctx,
            progress: &progress,
        };
        // A resumed run reuses what the runs it continues finished, a fork
        // what its run finished up to the step it forks after: the summary
        // shows their records too.
        let continues = match &start {
            Start::Resume(run) => Some((*run, None)),
            Start::Fork { run, after, .. } => Some((*run, Some(after.clone()))),
            Start::Fresh(_) => None,
        };
        let first = async {
            match start {
                Start::Fresh(input) => plan.run(input, &ctx).await,
                Start::Resume(run) => {
                    // The workflow as it is now: a resume with `--force`
                    // records it, and the next resume compares with it.
                    let metadata = [fingerprint::entry(workflow)].into();
                    plan.continue_stored(run, metadata, &ctx).await
                }
                Start::Fork { run, after, input } => {
                    plan.fork_stored(run, &after, input, &ctx).await
                }
            }
        };
        let mut result = stop.until_stopped(first).await;
        // A resume or fork the journal refused before any run started (the
        // run is live in another process, or has no finished step to fork
        // after) ran nothing: a usage error, not a failed run.
        if let Some((run, _)) = continues.as_ref().filter(|_| ctx.run_ids().is_empty()) {
            if let Err(OrchestrationError::InvalidConfig(problem)) = &result {
                progress.finish();
                return Refusal::usage(problem.as_str())
                    .of_run(*run)
                    .tell(args.output.json);
            }
        }
        let interactive = answers::can_prompt(args);
        let mut resumed = false;
        let result = loop {
            match result {
                Err(OrchestrationError::InputRequired(pause))
                    if interactive && stop.by.is_none() =>
                {
                    let questions = pause.questions.clone();
                    let asking = progress.clone();
                    let typed = tokio::task::spawn_blocking(move || {
                        asking.suspend(|| answers::prompt(&questions))
                    });
                    let typed = stop.unless_stopped(typed).await;
                    let (Some(typed), Some(&paused)) =
                        (typed.and_then(Result::ok).flatten(), ctx.run_ids().last())
                    else {
                        break Err(OrchestrationError::InputRequired(pause));
                    };
                    // Resumed from the journal, as `orchestra resume` would:
                    // the store links the two runs (the paused one cannot be
                    // resumed again) and the attempts keep their keys.
                    for (id, answer) in typed {
                        ctx.answer(id, answer);
                    }
                    resumed = true;
                    let unchanged = std::collections::HashMap::new();
                    result = stop
                        .until_stopped(plan.continue_stored(paused, unchanged, &ctx))
                        .await;
                }
                other => break other,
            }
        };
        progress.finish();
        let stopped_by = stop.run_over();
        let cancelled = stopped_by.or_else(|| {
            matches!(result, Err(OrchestrationError::Cancelled)).then_some(Stop::Interrupt)
        });
        // A resumed run's own trace lacks what ran before the pause; the
        // context's history holds both runs.
        let trace = match &result {
            Ok(output) if !resumed => output.execution_trace.clone(),
            _ => ctx.get_trace().await,
        };
        let trace = match continues {
            Some((run, after)) => {
                let mut earlier = earlier_traces(&ctx, run).await;
                // A fork reuses what the whole chain of runs it forks
                // finished up to its step, and nothing after it.
                if let Some(after) = after {
                    if let Some(last) = earlier.pop() {
                        let mut chain = crate::traces::joined(earlier, last);
                        crate::traces::keep_until(&mut chain, &after);
                        earlier = vec![chain];
                    }
                }
                crate::traces::joined(earlier, trace)
            }
            None => trace,
        };

        let kept = location.as_ref().zip(ctx.run_ids().last().copied());
        let mut exit = report(workflow, &result, &trace, args, kept);
        #[cfg(feature = "otel")]
        let failure = match (&result, exit) {
            (Err(OrchestrationError::InputRequired(_)), _) => None,
            (Err(error), _) => Some(error.to_string()),
            (Ok(_), Exit::Failed) => Some("an agent failed".to_owned()),
            (Ok(_), _) => None,
        };
        if let Err(problem) = write_traces(workflow, &trace, args) {
            errln!("error: {problem}");
            exit = Exit::Failed;
        }
        #[cfg(feature = "otel")]
        if let Some(endpoint) = &args.output.otlp {
            let failure = failure.as_deref();
            if let Err(problem) = crate::otel::export(endpoint, workflow, &trace, failure).await {
                errln!("warning: OTLP export to {endpoint} failed: {problem}");
            }
        }
        if let Some((place, run)) = kept {
            tell_where_the_run_is(place, run, &result, args.output.quiet);
        }
        // The store's file alone holds the run once it is closed.
        if let Some(store) = store {
            if let Err(problem) = store.close().await {
                errln!("warning: closing the run store: {problem}");
            }
        }
        cancelled.map_or(exit, Exit::Cancelled)
    }
}

/// The most runs of a chain of resumes read back for a summary.
const CHAIN_LIMIT: usize = 1_000;

/// The traces of run `run` and of the runs it continued in turn (a chain of
/// resumes), oldest first, as the store keeps them.
pub async fn earlier_traces(ctx: &ExecutionContext, run: RunId) -> Vec<ExecutionTrace> {
    let mut traces = Vec::new();
    let mut next = Some(run);
    while let Some(id) = next.take() {
        if traces.len() >= CHAIN_LIMIT {
            break;
        }
        let Some(trace) = ctx.run_trace(id).await else {
            break;
        };
        traces.push(trace);
        next = ctx
            .journal()
            .read(&[id])
            .await
            .into_iter()
            .find_map(|event| match event.kind {
                EventKind::RunStarted { resumes, .. } if event.run == id => resumes,
                _ => None,
            });
    }
    traces.reverse();
    traces
}

/// What the store keeps out: the workflow's secrets; and what it calls the
/// runs: the workflow file.
fn store_options(workflow: &Workflow) -> StoreOptions {
    let path = std::fs::canonicalize(&workflow.path).unwrap_or_else(|_| workflow.path.clone());
    workflow
        .redactor
        .secrets()
        .fold(StoreOptions::new(), |options, (secret, reference)| {
            options.with_secret_as(secret, reference)
        })
        .with_label(path.display().to_string())
}

/// Says where the run is kept and, when it did not finish, how to resume it
/// (with the answers it waits for, when it asked).
fn tell_where_the_run_is(
    location: &Location,
    run: RunId,
    result: &Result<OrchestratorOutput, OrchestrationError>,
    quiet: bool,
) {
    match result {
        Ok(_) if quiet => {}
        Ok(_) => errln!("run {run} is kept in {}", location.describe()),
        Err(OrchestrationError::InputRequired(pause)) => errln!(
            "run {run} is kept in {}; answer and continue it (finished steps are not run \
             again) with:\n  {}",
            location.describe(),
            resume_command(location, run, &pause.questions)
        ),
        Err(_) => errln!(
            "run {run} is kept in {}; resume it with: {}",
            location.describe(),
            resume_command(location, run, &[])
        ),
    }
}

/// What the paused run read from standard input (see
/// [`answers::piped_input`]).
fn piped_input<'p>(pause: &'p Pause, args: &RunArgs, workflow: &Workflow) -> Option<&'p str> {
    let input = pause.input.as_ref()?;
    answers::piped_input(args, workflow, &input.content)
}

/// The command that resumes run `run`, kept in `location`, answering
/// `questions`.
fn resume_command(location: &Location, run: RunId, questions: &[Question]) -> String {
    let answers: String = questions
        .iter()
        .map(|question| format!(" --answer {}=ANSWER", shell_quote(&question.id)))
        .collect();
    format!("orchestra resume {run}{}{answers}", location.flag())
}

/// What a second signal, which exits at once, says of the run.
struct Exiting {
    progress: Progress,
    /// Where the run is kept, if anywhere.
    location: Option<Location>,
}

impl Exiting {
    /// The note, on standard error, below what the display drew.
    fn tell(&self, headline: &str) {
        let mut note =
            format!("{headline}; the run's programs are killed and nothing more is written");
        if let (Some(place), Some(run)) = (&self.location, self.progress.run()) {
            // Its end may not be in the store: a run whose process is gone
            // without it is listed as crashed, and can be resumed.
            let _ = write!(
                note,
                "; run {run} is kept in {}, perhaps without its end (`orchestra runs` \
                 then lists it as crashed); resume it with: {}",
                place.describe(),
                resume_command(place, run, &[])
            );
        }
        self.progress.abandon(&note);
    }
}

/// Races a run (or a prompt) against the signals that stop it: the first
/// signal cancels the run's context, and the run is awaited to its end (a
/// second one exits at once: see [`signals`]).
struct Stopping<'a> {
    signals: Signals,
    by: Option<Stop>,
    ctx: &'a ExecutionContext,
    progress: &'a Progress,
}

impl Stopping<'_> {
    /// The run is over: a signal now exits at once ([`Signals::run_over`]).
    /// The signal that stopped it, if one did.
    fn run_over(self) -> Option<Stop> {
        self.signals.run_over();
        self.by
    }

    /// What `run` ends with, a stop having cancelled it or not.
    async fn until_stopped<T>(&mut self, run: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(run);
        loop {
            if let Some(done) = self.unless_stopped(&mut run).await {
                return done;
            }
        }
    }

    /// What `work` ends with, or `None` when a signal comes first (a prompt,
    /// which nothing can interrupt, is given up).
    async fn unless_stopped<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = work => Some(done),
            stop = self.signals.next(), if self.by.is_none() => {
                self.by = Some(stop);
                self.progress.note(&format!(
                    "{0}: cancelling the run... ({0} again to exit now)",
                    stop.name()
                ));
                self.ctx.cancel();
                None
            }
        }
    }
}

/// Prints the result (stdout) and the summary (stderr); the exit code follows
/// from them.
fn report(
    workflow: &Workflow,
    result: &Result<OrchestratorOutput, OrchestrationError>,
    trace: &ExecutionTrace,
    args: &RunArgs,
    kept: Option<(&Location, RunId)>,
) -> Exit {
    let run_id = kept.map(|(_, run)| run.to_string());
    let redact = |text: &str| workflow.redactor.redact(text).into_owned();
    let redact_json =
        |json: &str| redacted_json::redact_text(&workflow.redactor, json).into_owned();
    let summary = summary::summarize(workflow, trace);
    let exit = match result {
        Ok(output) => {
            if args.output.json {
                let json = serde_json::to_value(output).and_then(|mut value| {
                    if let Some(object) = value.as_object_mut() {
                        object.insert("agents".to_owned(), summary.agents.clone().into());
                        // A failure a tolerant join accepted fails the run's
                        // outcome, as its exit code says; a map's failed
                        // items are listed with the steps that failed.
                        if summary.any_failed {
                            object.insert("success".to_owned(), false.into());
                        }
                        if let Some(serde_json::Value::Array(failures)) = object.get_mut("failures")
                        {
                            failures.extend(summary.item_failures.iter().cloned());
                        }
                    }
                    serde_json::to_string_pretty(&value)
                });
                match json {
                    Ok(json) => outln!("{}", redact_json(&json)),
                    Err(e) => errln!("error: cannot encode the output as JSON: {e}"),
                }
            } else {
                outln!("{}", redact(output.result.trim_end_matches('\n')));
            }
            if summary.any_failed || !output.is_successful() {
                Exit::Failed
            } else {
                Exit::Success
            }
        }
        Err(OrchestrationError::InputRequired(pause)) => {
            if args.output.json {
                let piped = piped_input(pause, args, workflow);
                let value = serde_json::json!({
                    "success": false,
                    "input_required": true,
                    "questions": pause.questions,
                    "answer_command": answers::answer_command(&pause.questions, piped),
                    "run_id": run_id,
                    "resume_command": kept
                        .map(|(place, run)| resume_command(place, run, &pause.questions)),
                    "agents": summary.agents,
                    "execution_trace": trace,
                });
                outln!("{}", redact_json(&value.to_string()));
            }
            Exit::InputRequired
        }
        Err(error) => {
            if args.output.json {
                let value = serde_json::json!({
                    "error": error.to_string(),
                    "success": false,
                    "run_id": run_id,
                    "agents": summary.agents,
                    "execution_trace": trace,
                });
                outln!("{}", redact_json(&value.to_string()));
            }
            Exit::Failed
        }
    };
    if !args.output.quiet {
        errln!();
        err!("{}", summary.text);
    }
    match result {
        Err(OrchestrationError::Cancelled) => {
            let kept = args
                .output
                .trace
                .as_ref()
                .map(|path| format!("; the partial trace is in `{}`", path.display()))
                .unwrap_or_default();
            errln!("cancelled: the run was stopped and its programs killed{kept}");
        }
        Err(OrchestrationError::InputRequired(pause)) => {
            let piped = piped_input(pause, args, workflow);
            err!(
                "{}",
                redact(&answers::waiting_text(&pause.questions, piped))
            );
        }
        Err(error) => {
            let message = error.to_string();
            errln!("error: the run failed: {}", redact(&message));
            if let Some(help) = timeout_help(&message, workflow) {
                errln!("  = help: {help}");
            }
        }
        Ok(_) => {}
    }
    exit
}

/// How to change the limit a timed-out run hit, in the workflow's words.
fn timeout_help(message: &str, workflow: &Workflow) -> Option<String> {
    let file = workflow.path.display();
    if message.contains("run timeout") {
        Some(format!(
            "a group's `timeout` bounds its whole run (no limit unless set); \
             raise it on that group in `{file}`, e.g. timeout = \"10m\""
        ))
    } else if message.contains("timeout") && message.contains("attempt") {
        Some(format!(
            "an agent's `timeout` (or its group's `agent_timeout`) bounds each \
             attempt; raise it in `{file}`, e.g. timeout = \"10m\""
        ))
    } else {
        None
    }
}

/// Writes `--trace` and `--chrome-trace`.
fn write_traces(workflow: &Workflow, trace: &ExecutionTrace, args: &RunArgs) -> Result<(), String> {
    let write = |path: &Path, json: Result<String, serde_json::Error>| -> Result<(), String> {
        let json = json.map_err(|e| format!("cannot encode `{}`: {e}", path.display()))?;
        std::fs::write(
            path,
            redacted_json::redact_text(&workflow.redactor, &json).as_bytes(),
        )
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    };
    if let Some(path) = &args.output.trace {
        write(path, serde_json::to_string_pretty(trace))?;
    }
    if let Some(path) = &args.output.chrome_trace {
        write(
            path,
            serde_json::to_string(&chrome::chrome_trace(&workflow.name, trace)),
        )?;
    }
    Ok(())
}
