//! Natural user code around the specification's API (`orchestration.md`):
//! what users write around its samples, and what its text promises under
//! natural variations: JSON without optional fields, outputs and traces read
//! back equal, orchestrators and contexts shared between tasks, traces moved
//! out by value, orchestrators boxed, shared or borrowed, closure agents
//! cloned, `Debug` over lists of agents and orchestrators.

use std::error::Error;
use std::sync::Arc;

use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext, ExecutionTrace};
use claude_agent_sdk::orchestration::{
    Agent, AgentOutput, Orchestrator, OrchestratorAgent, OrchestratorInput, OrchestratorOutput,
    ParallelOrchestrator, SequentialOrchestrator, SimpleAgent,
};

type TestResult = std::result::Result<(), Box<dyn Error + Send + Sync>>;

fn echo(name: &str) -> Box<dyn Agent> {
    let tag = name.to_owned();
    Box::new(SimpleAgent::new(name, "echoes", move |input| {
        Ok(AgentOutput::new(format!("{tag}: {}", input.content))
            .with_data(serde_json::json!({"seen": input.content}))
            .with_metadata("by", tag.as_str())
            .with_confidence(0.75))
    }))
}

// An `AgentOutput` in JSON without `confidence` has full confidence, as
// `AgentOutput::new` gives (and `CommandAgent`'s JSON mode); `data` and
// `metadata` default too.
#[test]
fn an_agent_output_read_from_json_without_a_confidence_is_accepted() {
    let output: AgentOutput = serde_json::from_str(r#"{"content": "done", "data": {"n": 1}}"#)
        .expect("an AgentOutput without `confidence` reads from JSON");
    assert_eq!(output.content, "done");
    assert_eq!(output.data["n"], 1);
    // The same default as `AgentOutput::new` (and CommandAgent's JSON mode).
    assert_eq!(output.confidence, AgentOutput::new("done").confidence);
}

// A whole output and a context's trace read back *equal* from JSON.
#[tokio::test]
async fn a_run_output_and_a_context_trace_read_back_equal_from_json() -> TestResult {
    let output = SequentialOrchestrator::new()
        .orchestrate(
            vec![echo("A"), echo("B")],
            OrchestratorInput::new("日本語 🚀").with_metadata("request_id", "1"),
        )
        .await?;
    let back: OrchestratorOutput = serde_json::from_str(&serde_json::to_string(&output)?)?;
    assert_eq!(back, output);

    let ctx = ExecutionContext::new(ExecutionConfig::new());
    ParallelOrchestrator::new()
        .orchestrate_with_context(vec![echo("A"), echo("A")], OrchestratorInput::new(""), &ctx)
        .await?;
    let trace = ctx.get_trace().await;
    let back: ExecutionTrace = serde_json::from_str(&serde_json::to_string(&trace)?)?;
    assert_eq!(back, trace);
    Ok(())
}

// One orchestrator behind `Arc<dyn Orchestrator>` and one context, used by
// several tasks at once; every run keeps its own trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_orchestrator_and_context_serve_concurrent_runs_separately() -> TestResult {
    let orchestrator: Arc<dyn Orchestrator> =
        Arc::new(ParallelOrchestrator::new().with_parallel_limit(2));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let mut handles = Vec::new();
    for i in 0..8 {
        let orchestrator = Arc::clone(&orchestrator);
        let ctx = ctx.clone();
        handles.push(tokio::spawn(async move {
            ctx.set_state(format!("k{i}"), serde_json::json!(i)).await;
            orchestrator
                .orchestrate_with_context(
                    vec![echo("a"), echo("b")],
                    OrchestratorInput::new(format!("r{i}")),
                    &ctx,
                )
                .await
        }));
    }
    for (i, handle) in handles.into_iter().enumerate() {
        let output = handle.await??;
        assert_eq!(output.execution_trace.agent_executions.len(), 2);
        assert!(output
            .execution_trace
            .agent_executions
            .iter()
            .all(|e| e.input.content == format!("r{i}")));
    }
    assert_eq!(ctx.get_trace().await.agent_executions.len(), 16);
    assert_eq!(ctx.get_state("k7").await, Some(serde_json::json!(7)));
    Ok(())
}

/// The trace a run hands out is a plain value: its records move out of it
/// (`for exec in trace.agent_executions`), and so do their fields; a record's
/// nested trace too (`NestedTrace::into_inner`).
#[tokio::test]
async fn a_trace_and_its_records_move_out_by_value() -> TestResult {
    let inner = SequentialOrchestrator::new();
    let nested = OrchestratorAgent::new("group", "a nested pipeline", inner, vec![echo("B")]);
    let output = SequentialOrchestrator::new()
        .orchestrate(
            vec![echo("A"), Box::new(nested)],
            OrchestratorInput::new("x"),
        )
        .await?;
    let ExecutionTrace {
        agent_executions, ..
    } = output.execution_trace;
    let mut names = Vec::new();
    let mut nested_names = Vec::new();
    for exec in agent_executions {
        names.push(exec.agent_name);
        if let Some(nested) = exec.nested {
            let trace: ExecutionTrace = nested.into_inner();
            nested_names.extend(trace.agent_executions.into_iter().map(|e| e.agent_name));
        }
    }
    assert_eq!(names, ["A", "group"]);
    assert_eq!(nested_names, ["B"]);
    Ok(())
}

/// What `match`es a run's result, written once for any orchestrator.
async fn outcome(orchestrator: impl Orchestrator, agents: Vec<Box<dyn Agent>>) -> String {
    match orchestrator
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
    {
        Ok(output) => output.result,
        Err(error) => error.to_string(),
    }
}

/// An orchestrator picked at run time (`Box<dyn Orchestrator>`), shared
/// (`Arc<dyn Orchestrator>`) or borrowed goes wherever an orchestrator does:
/// into generic code and into an `OrchestratorAgent`.
#[tokio::test]
async fn boxed_shared_and_borrowed_orchestrators_are_orchestrators() -> TestResult {
    let chosen: Box<dyn Orchestrator> = if std::env::args().count() > 1_000 {
        Box::new(ParallelOrchestrator::new())
    } else {
        Box::new(SequentialOrchestrator::new())
    };
    assert_eq!(outcome(&*chosen, vec![echo("A")]).await, "A: x");
    let shared: Arc<dyn Orchestrator> = Arc::new(SequentialOrchestrator::new());
    assert_eq!(outcome(Arc::clone(&shared), vec![echo("A")]).await, "A: x");
    let pipeline = SequentialOrchestrator::new();
    assert_eq!(outcome(&pipeline, vec![echo("A")]).await, "A: x");
    let step = OrchestratorAgent::new("step", "a chosen pattern", chosen, vec![echo("B")]);
    assert_eq!(outcome(pipeline, vec![Box::new(step)]).await, "B: x");
    Ok(())
}

/// A closure agent clones, for a second run (`orchestrate` consumes its
/// agents); the spec's `Vec<Box<dyn Agent>>` and lists of orchestrators
/// print with `{:?}` (a struct holding them derives `Debug`).
#[tokio::test]
async fn closure_agents_clone_and_agents_and_orchestrators_print() -> TestResult {
    let agent = SimpleAgent::new("QuickAgent", "A simple agent for quick tasks", |input| {
        Ok(AgentOutput::new(format!("Processed: {}", input.content)))
    });
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(agent.clone()), Box::new(agent)];
    #[derive(Debug)]
    struct Team {
        agents: Vec<Box<dyn Agent>>,
    }
    let team = Team { agents };
    assert!(format!("{team:?}").contains("QuickAgent"));
    let output = SequentialOrchestrator::new()
        .orchestrate(team.agents, OrchestratorInput::new("x"))
        .await?;
    assert_eq!(output.result, "Processed: Processed: x");
    let patterns: Vec<Box<dyn Orchestrator>> = vec![Box::new(ParallelOrchestrator::new())];
    assert!(format!("{patterns:?}").contains("Orchestrator"));
    assert_eq!(AgentOutput::default(), AgentOutput::new(""));
    Ok(())
}
