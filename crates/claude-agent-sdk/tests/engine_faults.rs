//! Regression tests for the faults the engine rebuild fixed, one (or a few)
//! per fault, named after the behaviour that now holds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentError, AgentInput, AgentMetadata, AgentOutput, AgentRegistry, ErrorDetails,
    EventKind, ExecutionConfig, ExecutionContext, ExecutionTrace, InMemoryJournal,
    OrchestrationError, Orchestrator, OrchestratorAgent, OrchestratorInput, ParallelOrchestrator,
    Result, RunEvent, RunObserver, SequentialOrchestrator, SimpleAgent,
};
use common::{echo, sleeper, transient, Scripted, Step};
use tokio::time::Instant;

fn boxed(agent: impl Agent + 'static) -> Box<dyn Agent> {
    Box::new(agent)
}

/// Cancels `ctx` from another task after `delay`.
fn cancel_after(ctx: &ExecutionContext, delay: Duration) {
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        canceller.cancel();
    });
}

/// Every record of `trace`, nested ones included.
fn all_records(trace: &ExecutionTrace) -> Vec<&claude_agent_sdk::orchestration::AgentExecution> {
    let mut out = Vec::new();
    let mut pending = vec![trace];
    while let Some(trace) = pending.pop() {
        for record in &trace.agent_executions {
            out.push(record);
            if let Some(nested) = &record.nested {
                pending.push(nested);
            }
        }
    }
    out
}

// 1. A nested fan-out stops with its run.

#[tokio::test(start_paused = true)]
async fn a_nested_fan_out_stops_and_keeps_its_records_when_the_outer_run_times_out() {
    let (a, probe_a) = sleeper("a", Duration::from_secs(60));
    let (b, probe_b) = sleeper("b", Duration::from_secs(60));
    let fan_out = OrchestratorAgent::new("fan", "", ParallelOrchestrator::new(), vec![a, b]);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let error = SequentialOrchestrator::new()
        .with_timeout(Duration::from_millis(100))
        .orchestrate_with_context(vec![boxed(fan_out)], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    // Nothing the run started is still running.
    assert_eq!(probe_a.running.load(Ordering::SeqCst), 0);
    assert_eq!(probe_b.running.load(Ordering::SeqCst), 0);
    // The nested records are there, and ended.
    let trace = ctx.get_trace().await;
    let outer = &trace.agent_executions[0];
    let nested = outer.nested.as_ref().expect("the nested trace is kept");
    assert_eq!(nested.agent_executions.len(), 2);
    assert!(all_records(&trace).iter().all(|r| r.end_time.is_some()));
}

#[tokio::test(start_paused = true)]
async fn a_nested_fan_out_stops_when_the_outer_run_is_cancelled() {
    let (a, probe) = sleeper("a", Duration::from_secs(60));
    let fan_out = OrchestratorAgent::new("fan", "", ParallelOrchestrator::new(), vec![a]);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    cancel_after(&ctx, Duration::from_millis(50));
    let result = SequentialOrchestrator::new()
        .orchestrate_with_context(vec![boxed(fan_out)], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
    let trace = ctx.get_trace().await;
    let nested = trace.agent_executions[0].nested.as_ref().unwrap();
    assert_eq!(
        nested.agent_executions[0].error.as_deref(),
        Some("interrupted: the run was cancelled")
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_fan_out_stops_its_agents_and_no_record_arrives_later() {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let (a, probe_a) = sleeper("a", Duration::from_secs(60));
    let (b, probe_b) = sleeper("b", Duration::from_secs(60));
    let fan_out = ParallelOrchestrator::new();
    let run = fan_out.orchestrate_with_context(vec![a, b], OrchestratorInput::new("x"), &ctx);
    let dropped = tokio::time::timeout(Duration::from_millis(50), run).await;
    assert!(dropped.is_err(), "the run was still going");
    let events_at_drop = journal.len();
    // Aborted tasks are dropped at their next poll: give them that.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe_a.running.load(Ordering::SeqCst), 0);
    assert_eq!(probe_b.running.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        journal.len(),
        events_at_drop,
        "nothing arrives after the drop"
    );
    // Every started attempt has its end.
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 2);
    assert!(trace.agent_executions.iter().all(|r| r.end_time.is_some()));
}

// 2. A permanent error stays permanent through every layer.

#[tokio::test(start_paused = true)]
async fn a_permanent_error_two_levels_down_runs_once_and_keeps_its_details() {
    let unauthorized = OrchestrationError::AgentError(AgentError::new("401 invalid x-api-key"))
        .with_details(
            ErrorDetails::new()
                .with_status(401)
                .with_request_id("req_42"),
        );
    let (inner, probe) = Scripted::new("inner", [Step::Fail(unauthorized)]).boxed();
    let middle = OrchestratorAgent::new(
        "middle",
        "",
        SequentialOrchestrator::new().with_max_retries(3),
        vec![inner],
    );
    let outer = OrchestratorAgent::new(
        "outer",
        "",
        SequentialOrchestrator::new().with_max_retries(3),
        vec![boxed(middle)],
    );
    let error = SequentialOrchestrator::new()
        .with_max_retries(3)
        .orchestrate(vec![boxed(outer)], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(probe.calls(), 1, "a permanent cause is never retried");
    assert!(!error.is_retryable());
    assert_eq!(error.details().and_then(|d| d.status), Some(401));
    assert_eq!(
        error.details().and_then(|d| d.request_id.as_deref()),
        Some("req_42")
    );
    let OrchestrationError::AgentFailed(name, reason) = &error else {
        panic!("expected AgentFailed, got {error:?}");
    };
    assert_eq!(name, "outer");
    assert!(reason.contains("after 1 attempt"), "{reason}");
    assert!(matches!(
        reason.cause(),
        Some(OrchestrationError::AgentError(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_retryable_error_deep_inside_keeps_its_retry_after() {
    let limited = transient("429").with_retry_after(Duration::from_secs(9));
    let (inner, _) = Scripted::new("inner", [Step::Fail(limited)]).boxed();
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        SequentialOrchestrator::new().with_max_retries(0),
        vec![inner],
    );
    let error = SequentialOrchestrator::new()
        .with_max_retries(0)
        .orchestrate(vec![boxed(nested)], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(9)));
}

// 3. A panic in an agent's Drop is contained.

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("drop went wrong");
    }
}

struct DropBomb;

#[async_trait]
impl Agent for DropBomb {
    fn name(&self) -> &str {
        "bomb"
    }
    fn description(&self) -> &str {
        "panics when its attempt is abandoned"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let _bomb = PanicsOnDrop;
        tokio::time::sleep(Duration::from_secs(60)).await;
        std::mem::forget(_bomb);
        Ok(AgentOutput::new("never"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_an_agents_drop_is_contained_under_every_cut() {
    // The attempt timeout.
    let result = SequentialOrchestrator::new()
        .with_max_retries(0)
        .with_agent_timeout(Duration::from_millis(10))
        .orchestrate(vec![boxed(DropBomb)], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(result, Err(OrchestrationError::AgentFailed(..))));
    // The run deadline.
    let result = SequentialOrchestrator::new()
        .with_timeout(Duration::from_millis(10))
        .orchestrate(vec![boxed(DropBomb)], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(result, Err(OrchestrationError::Timeout(_))));
    // A cancellation, in a fan-out.
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    cancel_after(&ctx, Duration::from_millis(10));
    let result = ParallelOrchestrator::new()
        .orchestrate_with_context(vec![boxed(DropBomb)], OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
}

// 4. A CPU-only pipeline can be cancelled.

#[tokio::test]
async fn a_cpu_only_pipeline_yields_so_a_cancel_stops_it() {
    let steps = Arc::new(AtomicUsize::new(0));
    let agents: Vec<Box<dyn Agent>> = (0..20_000)
        .map(|_| {
            let steps = Arc::clone(&steps);
            boxed(SimpleAgent::new("busy", "", move |input| {
                steps.fetch_add(1, Ordering::SeqCst);
                let until = std::time::Instant::now() + Duration::from_micros(50);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                Ok(AgentOutput::new(input.content))
            }))
        })
        .collect();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    // A current-thread runtime: the canceller only runs if the pipeline yields.
    cancel_after(&ctx, Duration::from_millis(20));
    let result = SequentialOrchestrator::new()
        .with_max_retries(0)
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert!(
        steps.load(Ordering::SeqCst) < 20_000,
        "the cancel stopped the pipeline before its end"
    );
}

// 5. A fan-out's run timeout comes at the deadline, even with a stuck agent.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_times_out_at_its_deadline_and_abandons_a_stuck_agent() {
    let stuck = SimpleAgent::new("stuck", "blocks its thread", |input| {
        std::thread::sleep(Duration::from_secs(2));
        Ok(AgentOutput::new(input.content))
    });
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let started = std::time::Instant::now();
    let result = ParallelOrchestrator::new()
        .with_timeout(Duration::from_millis(200))
        .orchestrate_with_context(
            vec![boxed(stuck), echo("quick")],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    let waited = started.elapsed();
    assert!(matches!(result, Err(OrchestrationError::Timeout(_))));
    assert!(
        waited < Duration::from_millis(1500),
        "the timeout came at the deadline, not after the stuck agent ({waited:?})"
    );
    let trace = ctx.get_trace().await;
    let stuck = trace.attempts_of("stuck").next().unwrap();
    assert!(
        stuck.error.as_deref().unwrap_or("").contains("abandoned"),
        "{:?}",
        stuck.error
    );
}

// 6. A reused context keeps its runs apart.

#[tokio::test]
async fn a_reused_context_gives_each_run_its_own_id_and_trace() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let first = SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![echo("a"), echo("b")],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .unwrap();
    // The second run's agent looks at the context's history while it runs.
    let seen_end = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&seen_end);
    struct Peek(Arc<Mutex<Option<bool>>>);
    #[async_trait]
    impl Agent for Peek {
        fn name(&self) -> &str {
            "peek"
        }
        fn description(&self) -> &str {
            "looks at the trace while running"
        }
        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            let ctx = ExecutionContext::current().unwrap();
            let trace = ctx.get_trace().await;
            *self.0.lock().unwrap() = Some(trace.end_time.is_some());
            Ok(AgentOutput::new(input.content))
        }
    }
    let second = SequentialOrchestrator::new()
        .orchestrate_with_context(vec![boxed(Peek(seen))], OrchestratorInput::new("y"), &ctx)
        .await
        .unwrap();
    assert_eq!(first.execution_trace.agent_executions.len(), 2);
    assert_eq!(second.execution_trace.agent_executions.len(), 1);
    assert_eq!(
        second.execution_trace.agent_executions[0].agent_name,
        "peek"
    );
    assert_ne!(first.execution_trace.run_id, second.execution_trace.run_id);
    assert_eq!(
        *seen_end.lock().unwrap(),
        Some(false),
        "no end time while running"
    );
    let history = ctx.get_trace().await;
    assert_eq!(history.agent_executions.len(), 3);
    assert_eq!(ctx.run_ids().len(), 2);
    assert!(history.end_time.is_some());
}

// 7. Deep nesting: linear, on a default worker stack, and its trace reads back.

fn nest(depth: usize) -> Box<dyn Agent> {
    let mut agent = echo("leaf");
    for level in 0..depth {
        agent = boxed(OrchestratorAgent::new(
            format!("level{level}"),
            "",
            SequentialOrchestrator::new(),
            vec![agent],
        ));
    }
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_levels_of_nesting_run_and_their_trace_reads_back() {
    let depth = 1000;
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![nest(depth)], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "leaf(x)");
    let mut levels = 0;
    let mut trace = &output.execution_trace;
    while let Some(nested) = trace.agent_executions[0].nested.as_deref() {
        levels += 1;
        trace = nested;
    }
    assert_eq!(levels, depth);
    let json = serde_json::to_string(&output.execution_trace).unwrap();
    let back: ExecutionTrace = serde_json::from_str(&json).unwrap();
    assert_eq!(back, output.execution_trace);
}

// 8. Every started attempt ends, for the observer as in the records.

#[derive(Default)]
struct Balance {
    started: AtomicUsize,
    finished: AtomicUsize,
}

impl RunObserver for Balance {
    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::AttemptStarted { .. } => {
                self.started.fetch_add(1, Ordering::SeqCst);
            }
            RunEvent::AttemptFinished { .. } => {
                self.finished.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_started_attempt_has_a_finished_event_also_when_cut_short() {
    let balance = Arc::new(Balance::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(balance.clone());
    let (slow, _) = sleeper("slow", Duration::from_secs(60));
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        ParallelOrchestrator::new(),
        vec![sleeper("inner", Duration::from_secs(60)).0, echo("fast")],
    );
    let result = ParallelOrchestrator::new()
        .with_timeout(Duration::from_millis(100))
        .orchestrate_with_context(
            vec![slow, boxed(nested), echo("quick")],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    assert!(result.is_err());
    let started = balance.started.load(Ordering::SeqCst);
    assert_eq!(started, 5);
    assert_eq!(balance.finished.load(Ordering::SeqCst), started);
}

// 9. A cancellation that races the last completion: one rule for both patterns.

/// Cancels its run, then returns successfully: the cancel races its own completion.
struct CancelsThenFinishes;

#[async_trait]
impl Agent for CancelsThenFinishes {
    fn name(&self) -> &str {
        "last"
    }
    fn description(&self) -> &str {
        "cancels the run as it finishes"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        ExecutionContext::current().unwrap().cancel();
        Ok(AgentOutput::new(input.content))
    }
}

/// Runs `agents` on "x" under `ctx`, in a fan-out or a pipeline.
async fn run_pattern(
    parallel: bool,
    agents: Vec<Box<dyn Agent>>,
    ctx: &ExecutionContext,
) -> Result<claude_agent_sdk::orchestration::OrchestratorOutput> {
    let input = OrchestratorInput::new("x");
    if parallel {
        ParallelOrchestrator::new()
            .orchestrate_with_context(agents, input, ctx)
            .await
    } else {
        SequentialOrchestrator::new()
            .orchestrate_with_context(agents, input, ctx)
            .await
    }
}

#[tokio::test]
async fn a_cancel_racing_the_last_completion_keeps_the_result_in_both_patterns() {
    for parallel in [false, true] {
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        let output = run_pattern(parallel, vec![echo("a"), boxed(CancelsThenFinishes)], &ctx)
            .await
            .expect("every node ran to its end");
        assert_eq!(output.agent_outputs.len(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancel_that_cuts_work_short_is_cancelled_and_keeps_finished_outputs_reachable() {
    for parallel in [false, true] {
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        let agents = vec![
            echo("done"),
            boxed(CancelsThenFinishes),
            sleeper("slow", Duration::from_secs(60)).0,
        ];
        let result = run_pattern(parallel, agents, &ctx).await;
        assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
        let trace = ctx.get_trace().await;
        let done = trace.attempts_of("done").next().unwrap();
        assert!(done.success && done.output.is_some(), "parallel={parallel}");
    }
}

// 10. Non-finite confidence is normalized where it enters the engine.

#[tokio::test]
async fn a_non_finite_confidence_is_normalized_and_the_trace_reads_back() {
    let odd = SimpleAgent::new("odd", "", |input| {
        let mut output = AgentOutput::new(input.content);
        output.confidence = f64::INFINITY;
        Ok(output)
    });
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![boxed(odd)], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.agent_outputs[0].confidence, 0.0);
    assert!(!output.agent_outputs[0].is_successful());
    let json = serde_json::to_string(&output).unwrap();
    let back: claude_agent_sdk::orchestration::OrchestratorOutput =
        serde_json::from_str(&json).unwrap();
    assert_eq!(back, output);
}

// 11. Big payloads: the records can be kept small.

#[tokio::test]
async fn a_record_text_limit_keeps_big_payloads_out_of_the_trace() {
    let big = "x".repeat(1_000_000);
    let agents: Vec<Box<dyn Agent>> = (0..10)
        .map(|_| {
            boxed(SimpleAgent::new("pass", "", |i| {
                Ok(AgentOutput::new(i.content))
            }))
        })
        .collect();
    let output = SequentialOrchestrator::new()
        .with_config(ExecutionConfig::new().with_record_text_limit(1024))
        .orchestrate(agents, OrchestratorInput::new(big.clone()))
        .await
        .unwrap();
    assert_eq!(output.result, big, "outputs themselves are whole");
    for record in &output.execution_trace.agent_executions {
        for text in [
            &record.input.content,
            &record.output.as_ref().unwrap().content,
        ] {
            assert!(text.len() < 1100, "{}", text.len());
            assert!(text.ends_with("[998976 more bytes elided]"), "{text:.40}");
        }
    }
}

// 12. Records expose the specification's own types.

#[tokio::test]
async fn records_hold_plain_agent_inputs_and_outputs() {
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![echo("ok1"), echo("ok2")], OrchestratorInput::new("x"))
        .await
        .unwrap();
    let exec = &output.execution_trace.agent_executions[0];
    let _: &AgentInput = &exec.input;
    let _: &Option<AgentOutput> = &exec.output;
    let kept: Vec<String> = output
        .execution_trace
        .agent_executions
        .iter()
        .filter_map(|e| e.output.as_ref().map(|o| o.content.clone()))
        .collect();
    assert!(kept.contains(&"ok1(x)".to_string()));
}

// 13. The registry's metadata wins over an agent's own overrides.

struct Opinionated {
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Opinionated {
    fn name(&self) -> &str {
        "opinionated"
    }
    fn description(&self) -> &str {
        "has its own retry and timeout ideas"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(AgentOutput::new("late"))
    }
    fn max_retries(&self) -> Option<usize> {
        Some(0)
    }
    fn attempt_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(7200))
    }
}

#[tokio::test(start_paused = true)]
async fn registry_metadata_wins_over_the_agents_own_overrides() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = AgentRegistry::new();
    let metadata = AgentMetadata::new("op", "opinionated", "", "test")
        .with_max_retries(2)
        .with_timeout(1);
    registry
        .register(
            boxed(Opinionated {
                calls: Arc::clone(&calls),
            }),
            metadata,
        )
        .await
        .unwrap();
    let started = Instant::now();
    let error = registry
        .execute_agent("op", AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentFailed(..)),
        "{error}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the metadata's two retries"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the metadata's one-second timeout"
    );
}

// 14. The context carries into tasks an agent spawns.

struct SpawnsANestedRun;

#[async_trait]
impl Agent for SpawnsANestedRun {
    fn name(&self) -> &str {
        "spawner"
    }
    fn description(&self) -> &str {
        "runs a nested pipeline on a task of its own"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let handle = ExecutionContext::spawn(async move {
            let ctx = ExecutionContext::current().expect("the context was carried");
            SequentialOrchestrator::new()
                .orchestrate_with_context(
                    vec![sleeper("nested", Duration::from_secs(60)).0],
                    OrchestratorInput::new(input.content),
                    &ctx,
                )
                .await
        });
        let nested = handle
            .await
            .map_err(|_| OrchestrationError::OrchestratorFailed("task lost".into()))??;
        Ok(AgentOutput::new(nested.result))
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_in_a_task_spawned_with_the_context_stops_with_the_outer_run() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    cancel_after(&ctx, Duration::from_millis(50));
    let started = Instant::now();
    let result = SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![boxed(SpawnsANestedRun)],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(1));
    let trace = ctx.get_trace().await;
    let nested = trace.agent_executions[0]
        .nested
        .as_ref()
        .expect("nested under the attempt");
    assert_eq!(nested.agent_executions[0].agent_name, "nested");
}

// A single agent gets the same policies without an orchestrator.

#[tokio::test(start_paused = true)]
async fn a_single_agent_retries_like_any_orchestrated_one() {
    let (flaky, probe) =
        Scripted::new("flaky", [Step::Fail(transient("503")), Step::Ok("fine")]).boxed();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let output = ctx
        .run_agent(flaky.as_ref(), AgentInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.content, "fine");
    assert_eq!(probe.calls(), 2);
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 2);
    let kinds = ctx
        .journal()
        .read(&ctx.run_ids())
        .await
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::RetryScheduled { .. }))
        .count();
    assert_eq!(kinds, 1);
}
