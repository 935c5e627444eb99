//! `orchestra run`: runs a workflow under an [`ExecutionContext`] with a live
//! progress observer, cancels it on Ctrl-C, and writes the result, the summary
//! and the traces.
//!
//! Standard output gets the result only (or the JSON output with `--json`), so
//! it can be piped; progress, the summary and errors go to standard error.

mod preview;
mod progress;
mod summary;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use claude_agent_sdk::orchestration::{
    ExecutionContext, ExecutionTrace, OrchestrationError, OrchestratorInput, OrchestratorOutput,
};

use self::preview::Previews;
use self::progress::{Display, Progress};
use crate::chrome;
use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::factory::Factory;
use crate::plan::Plan;
use crate::workflow::{self, Strictness, Workflow};

/// Runs `orchestra run`.
pub fn run(args: &RunArgs) -> Exit {
    let workflow = match workflow::load(&args.file, Strictness::Run) {
        Ok(workflow) => workflow,
        Err(invalid) => {
            eprint!("{}", invalid.render());
            return Exit::Usage;
        }
    };
    if let Err(problem) = check_outputs(args) {
        eprintln!("error: {problem}");
        return Exit::Usage;
    }
    let input = match read_input(args, &workflow) {
        Ok(input) => input,
        Err(problem) => {
            eprintln!("error: {problem}");
            return Exit::Usage;
        }
    };
    if !args.quiet {
        for warning in &workflow.warnings {
            eprintln!("warning: {warning}");
        }
    }
    let display = if args.quiet {
        Display::Quiet
    } else if std::io::stderr().is_terminal() {
        Display::Live
    } else {
        Display::Plain
    };
    if let Err(problem) = crate::models::ensure_models(&workflow, args.quiet) {
        eprintln!("error: {problem}");
        return Exit::Failed;
    }
    // Only the live display shows what agents produce as they run.
    let previews = Previews::new(workflow.redactor.clone());
    let listener = (display == Display::Live).then(|| previews.listener());
    let plan = match Plan::build(&workflow, Factory::new().with_output_listener(listener)) {
        Ok(plan) => plan,
        Err(problem) => {
            eprintln!("error: {}", workflow.redactor.redact(&problem));
            return Exit::Usage;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed;
        }
    };
    let exit = runtime.block_on(execute(&workflow, plan, input, args, display, previews));
    // Agents still winding down (none should be) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    exit
}

/// Checks that the files the run will write can be written, before it starts.
fn check_outputs(args: &RunArgs) -> Result<(), String> {
    #[cfg(not(feature = "otel"))]
    if args.otlp.is_some() {
        return Err("`--otlp` needs orchestra built with the `otel` feature \
                    (cargo install orchestra --features otel)"
            .to_owned());
    }
    for path in [&args.trace, &args.chrome_trace].into_iter().flatten() {
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

async fn execute(
    workflow: &Workflow,
    plan: Plan,
    input: OrchestratorInput,
    args: &RunArgs,
    display: Display,
    previews: Previews,
) -> Exit {
    let progress = Progress::new(workflow, display, previews);
    let ctx =
        ExecutionContext::new(plan.config().clone()).with_observer(Arc::new(progress.clone()));
    let about = workflow
        .description
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    progress.note(&format!(
        "Running `{}`{about}: {} agent(s), {} flow",
        workflow.name,
        workflow.agents.len(),
        workflow.flow.mode.as_str()
    ));
    progress.spawn_ticker();

    let run = plan.run(input, &ctx);
    tokio::pin!(run);
    let mut cancelled = false;
    let mut listening = true;
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            signal = tokio::signal::ctrl_c(), if listening => {
                listening = false;
                if signal.is_ok() {
                    cancelled = true;
                    progress.note("Ctrl-C: cancelling the run...");
                    ctx.cancel();
                }
            }
        }
    };
    progress.finish();
    let cancelled = cancelled || matches!(result, Err(OrchestrationError::Cancelled));
    let trace = match &result {
        Ok(output) => output.execution_trace.clone(),
        Err(_) => ctx.get_trace().await,
    };

    let mut exit = report(workflow, &result, &trace, args);
    if let Err(problem) = write_traces(workflow, &trace, args) {
        eprintln!("error: {problem}");
        exit = Exit::Failed;
    }
    #[cfg(feature = "otel")]
    if let Some(endpoint) = &args.otlp {
        if let Err(problem) = crate::otel::export(endpoint, workflow, &trace).await {
            eprintln!("warning: OTLP export to {endpoint} failed: {problem}");
        }
    }
    if cancelled {
        Exit::Cancelled
    } else {
        exit
    }
}

/// Prints the result (stdout) and the summary (stderr); the exit code follows
/// from them.
fn report(
    workflow: &Workflow,
    result: &Result<OrchestratorOutput, OrchestrationError>,
    trace: &ExecutionTrace,
    args: &RunArgs,
) -> Exit {
    let redact = |text: &str| workflow.redactor.redact(text).into_owned();
    let summary = summary::summarize(workflow, trace);
    let exit = match result {
        Ok(output) => {
            if args.json {
                match serde_json::to_string_pretty(output) {
                    Ok(json) => println!("{}", redact(&json)),
                    Err(e) => eprintln!("error: cannot encode the output as JSON: {e}"),
                }
            } else {
                println!("{}", redact(output.result.trim_end_matches('\n')));
            }
            if summary.any_failed || !output.is_successful() {
                Exit::Failed
            } else {
                Exit::Success
            }
        }
        Err(error) => {
            if args.json {
                let value = serde_json::json!({
                    "error": error.to_string(),
                    "success": false,
                    "execution_trace": trace,
                });
                println!("{}", redact(&value.to_string()));
            }
            Exit::Failed
        }
    };
    if !args.quiet {
        eprintln!();
        eprint!("{}", summary.text);
    }
    match result {
        Err(OrchestrationError::Cancelled) => {
            let kept = args
                .trace
                .as_ref()
                .map(|path| format!("; the partial trace is in `{}`", path.display()))
                .unwrap_or_default();
            eprintln!("cancelled: the run was stopped and its programs killed{kept}");
        }
        Err(error) => eprintln!("error: the run failed: {}", redact(&error.to_string())),
        Ok(_) => {}
    }
    exit
}

/// Writes `--trace` and `--chrome-trace`.
fn write_traces(workflow: &Workflow, trace: &ExecutionTrace, args: &RunArgs) -> Result<(), String> {
    let write = |path: &Path, json: Result<String, serde_json::Error>| -> Result<(), String> {
        let json = json.map_err(|e| format!("cannot encode `{}`: {e}", path.display()))?;
        std::fs::write(path, workflow.redactor.redact(&json).as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    };
    if let Some(path) = &args.trace {
        write(path, serde_json::to_string_pretty(trace))?;
    }
    if let Some(path) = &args.chrome_trace {
        write(
            path,
            serde_json::to_string(&chrome::chrome_trace(&workflow.name, trace)),
        )?;
    }
    Ok(())
}
