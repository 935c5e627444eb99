//! Faults an adversarial review of the core API found (session 20): retry
//! bounds, huge durations, runtimes without timers, usage of nested runs
//! without records, the context's list of runs — one regression test each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::*;

type BoxFut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<AgentOutput>> + Send>>;

/// An agent whose body is an async closure given its call number (from 1).
struct FnAgent {
    name: String,
    calls: Arc<AtomicUsize>,
    body: Box<dyn Fn(usize, AgentInput) -> BoxFut + Send + Sync>,
}

impl FnAgent {
    fn new<F, Fut>(name: &str, body: F) -> (Self, Arc<AtomicUsize>)
    where
        F: Fn(usize, AgentInput) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<AgentOutput>> + Send + 'static,
    {
        let calls = Arc::new(AtomicUsize::new(0));
        let agent = Self {
            name: name.to_owned(),
            calls: calls.clone(),
            body: Box::new(move |n, i| Box::pin(body(n, i))),
        };
        (agent, calls)
    }
}

#[async_trait]
impl Agent for FnAgent {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "probe"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (self.body)(n, input).await
    }
}

fn echo(name: &'static str) -> Box<dyn Agent> {
    Box::new(SimpleAgent::new(name, "", move |i| {
        Ok(AgentOutput::new(format!("{name}({})", i.content)))
    }))
}

/// A user retry policy that always asks for another attempt.
#[derive(Debug)]
struct AlwaysRetry;

impl RetryPolicy for AlwaysRetry {
    fn retry_delay(&self, _: &OrchestrationError, _: u32, _: usize) -> Option<Duration> {
        Some(Duration::from_millis(1))
    }
}

/// `ExecutionConfig::max_retries`: "at most `max_retries + 1` attempts".
#[tokio::test(start_paused = true)]
async fn a_custom_retry_policy_never_exceeds_max_retries_plus_one_attempts() {
    let (agent, calls) = FnAgent::new("flaky", |_, _| async {
        Err(OrchestrationError::transient("503"))
    });
    let config = ExecutionConfig::new()
        .with_max_retries(1)
        .with_timeout(Duration::from_secs(1))
        .with_retry_policy(Arc::new(AlwaysRetry));
    let ctx = ExecutionContext::new(config);
    let result = ctx.run_agent(&agent, AgentInput::new("x")).await;
    assert!(result.is_err());
    assert!(
        calls.load(Ordering::SeqCst) <= 2,
        "max_retries(1) allows at most 2 attempts, the agent ran {} times ({result:?})",
        calls.load(Ordering::SeqCst)
    );
}

/// A huge (but valid: initial <= max) backoff yields a delay, not a panic.
#[test]
fn a_duration_max_backoff_gives_a_delay_instead_of_panicking() {
    let policy = ExponentialRetry::new(Backoff::new(Duration::MAX, Duration::MAX).with_jitter(0.0));
    let busy = OrchestrationError::transient("busy");
    let delay = std::panic::catch_unwind(|| policy.retry_delay(&busy, 1, 3));
    assert!(matches!(delay, Ok(Some(_))), "{delay:?}");
}

/// Same, inside a run: the retry is scheduled (and the run then times out
/// while waiting), instead of the agent failing after one attempt.
#[tokio::test(start_paused = true)]
async fn a_duration_max_backoff_still_schedules_the_retry_in_a_run() {
    let (agent, calls) = FnAgent::new("flaky", |_, _| async {
        Err(OrchestrationError::transient("503"))
    });
    let config = ExecutionConfig::new()
        .with_max_retries(1)
        .with_timeout(Duration::from_secs(5))
        .with_backoff_schedule(Backoff::new(Duration::MAX, Duration::MAX).with_jitter(0.0));
    let ctx = ExecutionContext::new(config);
    let result = ctx.run_agent(&agent, AgentInput::new("x")).await;
    assert!(
        matches!(result, Err(OrchestrationError::Timeout(_))),
        "expected the run to time out during the backoff, got {result:?} after {} call(s)",
        calls.load(Ordering::SeqCst)
    );
}

/// `RunBudget` serializes; what it serializes must read back.
#[test]
fn a_run_budget_with_duration_max_reads_back() {
    let budget = RunBudget::new().with_max_duration(Duration::MAX);
    let json = serde_json::to_string(&budget).unwrap();
    let back: std::result::Result<RunBudget, _> = serde_json::from_str(&json);
    assert!(back.is_ok(), "{json} -> {back:?}");
    assert_eq!(back.unwrap(), budget);
}

/// `require_runtime` turns "no runtime" into InvalidConfig; a runtime
/// without timers must not panic either.
#[test]
fn a_runtime_without_timers_is_an_error_not_a_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            SequentialOrchestrator::new()
                .orchestrate(vec![echo("a"), echo("b")], OrchestratorInput::new("x"))
                .await
        })
    }));
    match r {
        Ok(Ok(out)) => assert_eq!(out.result, "b(a(x))"),
        Ok(Err(e)) => assert!(matches!(e, OrchestrationError::InvalidConfig(_)), "{e:?}"),
        Err(_) => panic!("the orchestration panicked on a runtime without timers"),
    }
}

/// `total_usage`: "the tokens of a nested run ... count". A nested
/// orchestrator with its own trace records off still spent tokens, which
/// its `OrchestratorAgent` output reports under `data["usage"]`.
#[tokio::test(start_paused = true)]
async fn nested_usage_counts_in_the_trace_when_the_nested_run_keeps_no_records() {
    let spender = |name: &'static str| -> Box<dyn Agent> {
        Box::new(SimpleAgent::new(name, "", |i| {
            Ok(AgentOutput::new(i.content)
                .with_data(serde_json::json!({"usage": {"input_tokens": 10, "output_tokens": 5}})))
        }))
    };
    let inner = OrchestratorAgent::new(
        "inner",
        "",
        ParallelOrchestrator::new().with_config(ExecutionConfig::new().with_tracing(false)),
        vec![spender("s1"), spender("s2")],
    );
    let out = SequentialOrchestrator::new()
        .orchestrate(vec![Box::new(inner)], OrchestratorInput::new("x"))
        .await
        .unwrap();
    let record = &out.execution_trace.agent_executions[0];
    let reported = Usage::from_output(record.output.as_ref().unwrap()).unwrap();
    assert_eq!((reported.input_tokens, reported.output_tokens), (20, 10));
    let total = out.execution_trace.total_usage();
    assert_eq!(
        (total.input_tokens, total.output_tokens),
        (20, 10),
        "the record's own output reports 20/10, but its empty nested trace wins"
    );
    assert_eq!(record.usage(), reported);
}

/// `History`: "the runs made under this context (not those nested in
/// them)". A run an agent starts on its own current context is nested in
/// the attempt (get_trace shows it nested, once), but `run_ids` lists it
/// as a second run of the context.
#[tokio::test(start_paused = true)]
async fn a_run_started_on_the_current_context_inside_an_agent_is_not_a_top_level_run_id() {
    let (outer, _) = FnAgent::new("outer", |_, i| async move {
        let ctx = ExecutionContext::current().unwrap();
        let inner = SimpleAgent::new("inner", "", |i| {
            Ok(AgentOutput::new(format!("inner({})", i.content)))
        });
        ctx.run_agent(&inner, i).await
    });
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let out = SequentialOrchestrator::new()
        .orchestrate_with_context(vec![Box::new(outer)], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(out.result, "inner(x)");
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 1, "get_trace nests it: fine");
    assert_eq!(
        ctx.run_ids().len(),
        1,
        "run_ids lists the nested run as a run of the context: {:?}",
        ctx.run_ids()
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_retry_policy_never_retries_a_permanent_error() {
    let (agent, calls) = FnAgent::new("refused", |_, _| async {
        Err(OrchestrationError::AgentError(AgentError::new("401")))
    });
    let ctx = ExecutionContext::new(
        ExecutionConfig::new()
            .with_max_retries(5)
            .with_retry_policy(Arc::new(AlwaysRetry)),
    );
    let result = ctx.run_agent(&agent, AgentInput::new("x")).await;
    assert!(result.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a permanent error stays permanent"
    );
}
