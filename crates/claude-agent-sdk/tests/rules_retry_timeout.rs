//! Rule 6 (retries and backoff) and rule 7 (run and attempt timeouts), on tokio's
//! paused clock: delays are exact virtual time, not sleeps with tolerances.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, OrchestrationError, Orchestrator,
    OrchestratorInput, ParallelOrchestrator, Result, SequentialOrchestrator,
};
use common::{permanent, sleeper, transient, DropFlag, Scripted, Step};

fn within(actual: Duration, nominal_ms: u64, spread: f64) -> bool {
    let nominal = nominal_ms as f64;
    let ms = actual.as_secs_f64() * 1000.0;
    ms >= nominal * (1.0 - spread) - 1.0 && ms <= nominal * (1.0 + spread) + 1.0
}

#[tokio::test(start_paused = true)]
async fn max_retries_n_means_at_most_n_plus_one_attempts() {
    for n in [0_usize, 1, 3, 5] {
        let (agent, probe) = Scripted::new("flaky", [Step::Fail(transient("busy"))]).boxed();
        let result = SequentialOrchestrator::new()
            .with_max_retries(n)
            .orchestrate(vec![agent], OrchestratorInput::new("x"))
            .await;
        assert!(matches!(result, Err(OrchestrationError::AgentFailed(..))));
        assert_eq!(probe.calls(), n + 1, "max_retries = {n}");
    }
}

#[tokio::test(start_paused = true)]
async fn only_retryable_errors_are_retried() {
    let permanent_errors = [
        permanent("domain"),
        OrchestrationError::InvalidConfig("bad".into()),
        OrchestrationError::OrchestratorFailed("x".into()),
        OrchestrationError::Cancelled,
        OrchestrationError::PartialSuccess(1),
    ];
    for error in permanent_errors {
        let (agent, probe) = Scripted::new("a", [Step::Fail(error.clone())]).boxed();
        let _ = SequentialOrchestrator::new()
            .with_max_retries(3)
            .orchestrate(vec![agent], OrchestratorInput::new("x"))
            .await;
        assert_eq!(probe.calls(), 1, "{error:?} must not be retried");
    }
    let retryable_errors = [
        transient("busy"),
        OrchestrationError::Timeout("slow".into()),
        OrchestrationError::AgentFailed("inner".into(), "flaky".into()),
    ];
    for error in retryable_errors {
        let (agent, probe) = Scripted::new("a", [Step::Fail(error.clone())]).boxed();
        let _ = SequentialOrchestrator::new()
            .with_max_retries(3)
            .orchestrate(vec![agent], OrchestratorInput::new("x"))
            .await;
        assert_eq!(probe.calls(), 4, "{error:?} must be retried");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_succeeds_makes_the_run_succeed() {
    let (agent, probe) = Scripted::new(
        "flaky",
        [
            Step::Fail(transient("1")),
            Step::Fail(transient("2")),
            Step::Ok("finally"),
        ],
    )
    .boxed();
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "finally");
    assert_eq!(probe.calls(), 3);
    let attempts: Vec<_> = output
        .execution_trace
        .agent_executions
        .iter()
        .map(|e| (e.attempt, e.success))
        .collect();
    assert_eq!(attempts, [(1, false), (2, false), (3, true)]);
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_from_100ms_with_at_most_20_percent_jitter() {
    let (agent, probe) = Scripted::new("flaky", [Step::Fail(transient("busy"))]).boxed();
    let _ = SequentialOrchestrator::new()
        .with_max_retries(5)
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    let gaps = probe.gaps();
    assert_eq!(gaps.len(), 5);
    for (gap, nominal) in gaps.iter().zip([100, 200, 400, 800, 1600]) {
        assert!(
            within(*gap, nominal, 0.2),
            "gap {gap:?} vs nominal {nominal} ms"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_backoff_cap_bounds_the_nominal_delay() {
    let (agent, probe) = Scripted::new("flaky", [Step::Fail(transient("busy"))]).boxed();
    let config = ExecutionConfig::new()
        .with_max_retries(5)
        .with_backoff(Duration::from_millis(50), Duration::from_millis(300));
    let _ = SequentialOrchestrator::new()
        .with_config(config)
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    for (gap, nominal) in probe.gaps().iter().zip([50, 100, 200, 300, 300]) {
        assert!(
            within(*gap, nominal, 0.2),
            "gap {gap:?} vs nominal {nominal} ms"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_is_waited_out() {
    let limited = transient("429 Too Many Requests").with_retry_after(Duration::from_secs(7));
    let (agent, probe) =
        Scripted::new("limited", [Step::Fail(limited), Step::Ok("served")]).boxed();
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "served");
    let gaps = probe.gaps();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= Duration::from_secs(7), "{gaps:?}");
    assert!(gaps[0] < Duration::from_secs(8), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn the_run_timeout_bounds_the_whole_call() {
    for parallel in [false, true] {
        let (slow, probe) = sleeper("slow", Duration::from_secs(3600));
        let config = ExecutionConfig::new().with_timeout(Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let result = if parallel {
            ParallelOrchestrator::new()
                .with_config(config)
                .orchestrate(vec![slow], OrchestratorInput::new("x"))
                .await
        } else {
            SequentialOrchestrator::new()
                .with_config(config)
                .orchestrate(vec![slow], OrchestratorInput::new("x"))
                .await
        };
        assert!(
            matches!(result, Err(OrchestrationError::Timeout(_))),
            "{result:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(
            probe.dropped_unfinished(),
            1,
            "the agent's future was dropped"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_run_timeout_also_interrupts_a_backoff_sleep() {
    let limited = transient("slow down").with_retry_after(Duration::from_secs(600));
    let (agent, probe) = Scripted::new("limited", [Step::Fail(limited)]).boxed();
    let started = tokio::time::Instant::now();
    let result = SequentialOrchestrator::new()
        .with_timeout(Duration::from_secs(5))
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(result, Err(OrchestrationError::Timeout(_))));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(probe.calls(), 1);
}

/// Sets its flag when its `execute` future is dropped before finishing.
struct Hangs(Arc<AtomicBool>);

#[async_trait]
impl Agent for Hangs {
    fn name(&self) -> &str {
        "hangs"
    }
    fn description(&self) -> &str {
        "never answers"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let _flag = DropFlag(Arc::clone(&self.0));
        std::future::pending::<()>().await;
        Ok(AgentOutput::new("never"))
    }
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_cancels_each_attempt_and_is_retryable() {
    let dropped = Arc::new(AtomicBool::new(false));
    let started = tokio::time::Instant::now();
    let result = ParallelOrchestrator::new()
        .with_max_retries(2)
        .with_agent_timeout(Duration::from_secs(1))
        .orchestrate(
            vec![Box::new(Hangs(Arc::clone(&dropped)))],
            OrchestratorInput::new("x"),
        )
        .await;
    assert!(
        dropped.load(Ordering::SeqCst),
        "the hung future was dropped"
    );
    let elapsed = started.elapsed();
    // Three 1 s attempts plus backoffs of ~100 ms and ~200 ms.
    assert!(elapsed >= Duration::from_millis(3000 + 240), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(3000 + 360), "{elapsed:?}");
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "hangs");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_within_its_timeout_succeeds() {
    let (agent, _) = sleeper("steady", Duration::from_millis(900));
    let output = SequentialOrchestrator::new()
        .with_agent_timeout(Duration::from_secs(1))
        .orchestrate(vec![agent], OrchestratorInput::new("in"))
        .await
        .unwrap();
    assert_eq!(output.result, "in");
    assert_eq!(
        output.execution_trace.agent_executions[0].duration_ms,
        Some(900)
    );
}

/// An agent that declares its own retry budget and attempt bound.
struct OwnPolicy {
    inner: Scripted,
}

#[async_trait]
impl Agent for OwnPolicy {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn description(&self) -> &str {
        "declares its own retries and attempt timeout"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.inner.execute(input).await
    }
    fn max_retries(&self) -> Option<usize> {
        Some(1)
    }
    fn attempt_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(2))
    }
}

#[tokio::test(start_paused = true)]
async fn an_agents_own_retries_and_attempt_timeout_override_the_runs() {
    let own = Scripted::new("own", [Step::Sleep(Duration::from_secs(60))]);
    let own_probe = Arc::clone(&own.probe);
    let (sibling, sibling_probe) =
        Scripted::new("sibling", [Step::Fail(transient("busy"))]).boxed();
    let result = ParallelOrchestrator::new()
        .with_max_retries(4)
        .with_agent_timeout(Duration::from_secs(30))
        .orchestrate(
            vec![Box::new(OwnPolicy { inner: own }), sibling],
            OrchestratorInput::new("x"),
        )
        .await;
    assert!(
        matches!(result, Err(OrchestrationError::AgentFailed(..))),
        "{result:?}"
    );
    assert_eq!(own_probe.calls(), 2, "its own budget: 1 retry");
    assert_eq!(
        own_probe.dropped_unfinished(),
        2,
        "its own 2 s bound cut each attempt"
    );
    assert_eq!(sibling_probe.calls(), 5, "the run's budget: 4 retries");
}
