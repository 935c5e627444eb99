//! Rule 8 (cancellation and caller-owned contexts) and rule 9 (panics).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, OrchestrationError,
    Orchestrator, OrchestratorInput, ParallelOrchestrator, Result, SequentialOrchestrator,
};
use common::{failing, ok, permanent, sleeper, transient, Probe, Scripted, Step};

#[tokio::test(start_paused = true)]
async fn cancel_ends_a_parallel_run_promptly_and_starts_nothing_new() {
    let probe = Probe::new();
    let agents: Vec<Box<dyn Agent>> = (0..10)
        .map(|i| {
            Box::new(
                Scripted::new(format!("a{i}"), [Step::Sleep(Duration::from_secs(100))])
                    .with_probe(Arc::clone(&probe)),
            ) as Box<dyn Agent>
        })
        .collect();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        canceller.cancel();
    });
    let started = tokio::time::Instant::now();
    let result = ParallelOrchestrator::new()
        .with_parallel_limit(3)
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(probe.calls(), 3, "no agent starts after the cancel");
    assert_eq!(
        probe.dropped_unfinished(),
        3,
        "in-flight agents are dropped"
    );
    // The trace is honest about the interrupted attempts.
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 3);
    assert!(trace
        .agent_executions
        .iter()
        .all(|e| !e.success && e.error.as_deref().unwrap().contains("cancelled")));
}

#[tokio::test(start_paused = true)]
async fn cancel_ends_a_sequential_run_and_skips_later_agents() {
    let (slow, slow_probe) = sleeper("slow", Duration::from_secs(100));
    let (later, later_probe) = ok("later", "never");
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        canceller.cancel();
    });
    let result = SequentialOrchestrator::new()
        .orchestrate_with_context(vec![slow, later], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert_eq!(slow_probe.dropped_unfinished(), 1);
    assert_eq!(later_probe.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_works_from_a_plain_thread() {
    let (slow, _) = sleeper("slow", Duration::from_secs(3600));
    let ctx = Arc::new(ExecutionContext::new(ExecutionConfig::new()));
    let handle = Arc::clone(&ctx);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        handle.cancel();
    });
    let result = ParallelOrchestrator::new()
        .orchestrate_with_context(vec![slow], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
}

#[tokio::test]
async fn an_already_cancelled_context_runs_nothing() {
    let (agent, probe) = ok("a", "A");
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    ctx.cancel();
    let result = ParallelOrchestrator::new()
        .orchestrate_with_context(vec![agent], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert_eq!(probe.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_callers_trace_keeps_successful_siblings_when_the_run_fails() {
    let (a, _) = ok("a", "kept A");
    let (b, _) = failing("b", permanent("broken"));
    let (c, _) = ok("c", "kept C");
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let result = ParallelOrchestrator::new()
        .orchestrate_with_context(vec![a, b, c], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::PartialSuccess(1));
    let trace = ctx.get_trace().await;
    let mut kept: Vec<_> = trace
        .successes()
        .map(|e| e.output.as_ref().unwrap().content.clone())
        .collect();
    kept.sort();
    assert_eq!(kept, ["kept A", "kept C"]);
    assert_eq!(trace.failures().count(), 1);
    assert!(trace.end_time.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_orchestrators_config_governs_under_a_callers_context() {
    let (agent, probe) = Scripted::new("flaky", [Step::Fail(transient("busy"))]).boxed();
    // The context's own config says no retries and no records; the orchestrator's wins.
    let ctx = ExecutionContext::new(
        ExecutionConfig::new()
            .with_max_retries(0)
            .with_tracing(false),
    );
    let result = SequentialOrchestrator::new()
        .with_max_retries(2)
        .orchestrate_with_context(vec![agent], OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(result.is_err());
    assert_eq!(probe.calls(), 3);
    assert_eq!(ctx.get_trace().await.agent_executions.len(), 3);
}

/// Counts its visits in the run's shared state.
struct Visitor(&'static str);

#[async_trait]
impl Agent for Visitor {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "counts visits in shared state"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current()
            .ok_or_else(|| OrchestrationError::OrchestratorFailed("no context".into()))?;
        let visits = ctx
            .update_state("visits", |slot| {
                let n = slot.as_ref().and_then(|v| v.as_u64()).unwrap_or(0) + 1;
                *slot = Some(serde_json::json!(n));
                n
            })
            .await;
        ctx.set_state(self.0, serde_json::json!(input.content))
            .await;
        Ok(AgentOutput::new(format!("{} saw {visits} visits", self.0)))
    }
}

#[tokio::test]
async fn agents_share_state_through_the_current_context() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    ctx.set_state("visits", serde_json::json!(10)).await;
    let output = SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![Box::new(Visitor("first")), Box::new(Visitor("second"))],
            OrchestratorInput::new("hello"),
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(output.result, "second saw 12 visits");
    assert_eq!(ctx.get_state("visits").await, Some(serde_json::json!(12)));
    assert_eq!(
        ctx.get_state("second").await,
        Some(serde_json::json!("first saw 11 visits"))
    );

    let parallel_ctx = ExecutionContext::new(ExecutionConfig::new());
    let agents: Vec<Box<dyn Agent>> = (0..50)
        .map(|_| Box::new(Visitor("v")) as Box<dyn Agent>)
        .collect();
    ParallelOrchestrator::new()
        .with_parallel_limit(8)
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &parallel_ctx)
        .await
        .unwrap();
    assert_eq!(
        parallel_ctx.get_state("visits").await,
        Some(serde_json::json!(50))
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_agent_is_contained_and_not_retried() {
    let (bomb, bomb_probe) = Scripted::new("bomb", [Step::Panic("kaboom")]).boxed();
    let (a, _) = ok("a", "A");
    let (b, _) = sleeper("b", Duration::from_secs(1));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let result = ParallelOrchestrator::new()
        .with_max_retries(3)
        .orchestrate_with_context(vec![a, bomb, b], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::PartialSuccess(1));
    assert_eq!(bomb_probe.calls(), 1, "a panic is not retried");
    let trace = ctx.get_trace().await;
    let record = trace.attempts_of("bomb").next().unwrap();
    assert!(!record.success);
    assert!(record.error.as_deref().unwrap().contains("kaboom"));
    assert_eq!(trace.successes().count(), 2);
}

#[tokio::test]
async fn a_panic_in_a_pipeline_fails_the_run_with_the_message() {
    let (bomb, _) = Scripted::new("bomb", [Step::Panic("pipeline kaboom")]).boxed();
    let result = SequentialOrchestrator::new()
        .orchestrate(vec![bomb], OrchestratorInput::new("x"))
        .await;
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "bomb");
            assert!(reason.contains("pipeline kaboom"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Panics with a formatted (String) payload.
struct FormattedPanic;

#[async_trait]
impl Agent for FormattedPanic {
    fn name(&self) -> &str {
        "formatted"
    }
    fn description(&self) -> &str {
        "panics with a String payload"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        panic!("bad input: {}", input.content);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_panic_payloads_are_reported_too() {
    let result = ParallelOrchestrator::new()
        .orchestrate(vec![Box::new(FormattedPanic)], OrchestratorInput::new("42"))
        .await;
    match result {
        Err(OrchestrationError::AgentFailed(_, reason)) => {
            assert!(reason.contains("bad input: 42"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
}
