//! A run from its start to its end: the part of `orchestra run` (and of
//! `resume` and `fork`) that lives as long as the run does — the store it
//! is kept in, the progress display, the signals that stop it, and on a
//! terminal the prompt that answers its questions and resumes it. Kept apart
//! from the checks made before it starts (the parent module), which need
//! no runtime, and from what is printed and written once it is over
//! ([`report`](super::report)), which does not depend on how it ran.

use std::fmt::Write as _;
use std::sync::Arc;

use claude_agent_sdk::orchestration::store::StoreOptions;
use claude_agent_sdk::orchestration::{
    ExecutionContext, OrchestrationError, OrchestratorInput, RunId,
};

use super::chain::earlier_traces;
use super::no_run::Refusal;
use super::preview::Previews;
use super::progress::{Display, Progress};
use super::report::{report, resume_command, tell_where_the_run_is, write_traces};
use super::signals::{Signals, Stop};
use super::{answers, fingerprint};
use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::graph_plan::MapCounts;
use crate::plan::Plan;
use crate::store::Location;
use crate::workflow::Workflow;

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

/// What a run is made of, besides its plan and input.
pub(super) struct Run<'a> {
    pub(super) workflow: &'a Workflow,
    pub(super) args: &'a RunArgs,
    pub(super) display: Display,
    pub(super) previews: Previews,
    /// How many items each map node runs (for the progress display).
    pub(super) counts: MapCounts,
    /// Where the run is kept, if anywhere.
    pub(super) location: Option<Location>,
    /// Whether the user named the store (then a store that cannot be opened
    /// fails the run; the default store only warns).
    pub(super) explicit: bool,
}

impl Run<'_> {
    /// Runs `plan` as `start` says, with the answers `given`; on a
    /// terminal, asks for the answers a paused run still needs and resumes it.
    pub(super) async fn execute(
        self,
        mut plan: Plan,
        start: Start,
        given: Vec<(String, String)>,
    ) -> Exit {
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
/// second one exits at once: see [`signals`](super::signals)).
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
