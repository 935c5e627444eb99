//! Conformance of the specification (`orchestration.md`, section 6) beyond its
//! verbatim samples (those live in `spec_6_*.rs`): the behaviours its prose
//! states, and the natural code users write around its samples — matching the
//! error variants, cloning, printing and serializing the types it shows, using
//! its builders in other orders, going through its module paths, spawning and
//! choosing orchestrators at run time.
//!
//! Timing is measured on tokio's paused clock (`start_paused = true`), so a
//! "10 s" agent takes no real time and the elapsed times are exact.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    self as orch, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    OrchestrationError, Orchestrator, OrchestratorInput, ParallelOrchestrator,
    SequentialOrchestrator, SimpleAgent,
};
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn Error>>;

// ------------------------------------------------------------------ helpers

/// Sleeps `secs` seconds, counting how many of its kind run at once.
struct Sleepy {
    name: String,
    secs: u64,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Sleepy {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "takes its time"
    }
    async fn execute(&self, input: AgentInput) -> orch::Result<AgentOutput> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(self.secs)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(AgentOutput::new(format!(
            "{} saw {}",
            self.name, input.content
        )))
    }
}

/// `n` agents sleeping `secs` each, and the peak number that ran at once.
fn sleepers(n: usize, secs: u64) -> (Vec<Box<dyn Agent>>, Arc<AtomicUsize>) {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let agents = (0..n)
        .map(|i| {
            Box::new(Sleepy {
                name: format!("sleeper-{i}"),
                secs,
                running: running.clone(),
                peak: peak.clone(),
            }) as Box<dyn Agent>
        })
        .collect();
    (agents, peak)
}

/// Fails `failures` times with a transient error, then echoes its input.
fn flaky(name: &str, failures: usize) -> Box<dyn Agent> {
    let calls = AtomicUsize::new(0);
    Box::new(SimpleAgent::new(name, "flaky", move |input| {
        if calls.fetch_add(1, Ordering::SeqCst) < failures {
            Err(OrchestrationError::transient("503 Service Unavailable"))
        } else {
            Ok(AgentOutput::new(input.content))
        }
    }))
}

fn echo(name: &'static str) -> Box<dyn Agent> {
    Box::new(SimpleAgent::new(name, "echoes", move |input| {
        Ok(AgentOutput::new(format!("{name}: {}", input.content)))
    }))
}

// ------------------------------------------------------------------ 6.4 parallel: concurrency

#[tokio::test(start_paused = true)]
async fn parallel_agents_run_concurrently() -> TestResult {
    // "Multiple agents execute concurrently": three 10 s agents take 10 s, not 30 s.
    let (agents, peak) = sleepers(3, 10);
    let started = Instant::now();
    let output = ParallelOrchestrator::new()
        .with_max_retries(2)
        .with_parallel_limit(5)
        .orchestrate(agents, OrchestratorInput::new("proposal"))
        .await?;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(output.agent_outputs.len(), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn parallel_limit_caps_how_many_agents_run_at_once() -> TestResult {
    // `.with_parallel_limit(2)`: six 10 s agents run two at a time, in 30 s.
    let (agents, peak) = sleepers(6, 10);
    let started = Instant::now();
    ParallelOrchestrator::new()
        .with_parallel_limit(2)
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn default_parallel_limit_of_10_is_enforced() -> TestResult {
    // The "Default values" table: parallel_limit 10.
    let (agents, peak) = sleepers(15, 10);
    let started = Instant::now();
    ParallelOrchestrator::new()
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    assert_eq!(peak.load(Ordering::SeqCst), 10);
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn execution_config_parallel_limit_governs_a_parallel_orchestrator() -> TestResult {
    // 6.5: `.with_parallel_limit(20) // Max 20 parallel agents`, given as a config.
    let (agents, peak) = sleepers(4, 10);
    ParallelOrchestrator::new()
        .with_config(ExecutionConfig::new().with_parallel_limit(3))
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn sequential_agents_run_one_after_another() -> TestResult {
    // "Agents execute one after another": never two at once.
    let (agents, peak) = sleepers(3, 10);
    let started = Instant::now();
    SequentialOrchestrator::new()
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    Ok(())
}

// ------------------------------------------------------------------ retries are per agent

#[tokio::test(start_paused = true)]
async fn max_retries_is_a_budget_per_agent_in_a_pipeline() -> TestResult {
    // 6.5: `.with_max_retries(5) // 5 retries per agent`.
    let agents = vec![flaky("a", 3), flaky("b", 3), flaky("c", 3)];
    let output = SequentialOrchestrator::new()
        .with_max_retries(3)
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    assert_eq!(output.result, "x");
    assert_eq!(output.execution_trace.agent_executions.len(), 12);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn max_retries_is_a_budget_per_agent_in_parallel() -> TestResult {
    let agents = vec![flaky("a", 2), flaky("b", 2), flaky("c", 2)];
    let output = ParallelOrchestrator::new()
        .with_max_retries(2)
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    assert!(output.is_successful());
    assert_eq!(output.agent_outputs.len(), 3);
    assert_eq!(output.execution_trace.agent_executions.len(), 9);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retries_wait_longer_each_time_exponential_backoff() -> TestResult {
    // 6.1: "Built-in retry logic with exponential backoff".
    let output = SequentialOrchestrator::new()
        .with_max_retries(4)
        .orchestrate(vec![flaky("f", 4)], OrchestratorInput::new("x"))
        .await?;
    let starts: Vec<_> = output
        .execution_trace
        .agent_executions
        .iter()
        .map(|e| e.start_time)
        .collect();
    assert_eq!(starts.len(), 5);
    let gaps: Vec<i64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    assert!(gaps[0] > 0, "{gaps:?}");
    for pair in gaps.windows(2) {
        // Doubling with at most ±20 % jitter: each wait is longer than the last.
        assert!(pair[1] > pair[0], "waits must grow: {gaps:?}");
    }
    Ok(())
}

// ------------------------------------------------------------------ timeouts

#[tokio::test(start_paused = true)]
async fn execution_config_timeout_bounds_a_run_given_through_with_config() {
    // 6.5: `.with_timeout(Duration::from_secs(120)) // Max 2 minutes`.
    let (agents, _) = sleepers(1, 600);
    let started = Instant::now();
    let error = SequentialOrchestrator::new()
        .with_config(ExecutionConfig::new().with_timeout(Duration::from_secs(120)))
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(started.elapsed(), Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn default_timeout_is_300_seconds() {
    let (agents, _) = sleepers(1, 3600);
    let started = Instant::now();
    let error = ParallelOrchestrator::new()
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(300));
}

// ------------------------------------------------------------------ trace contents

#[tokio::test(start_paused = true)]
async fn trace_records_each_agent_with_its_duration() -> TestResult {
    let (agents, _) = sleepers(2, 10);
    let output = SequentialOrchestrator::new()
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await?;
    let trace = &output.execution_trace;
    assert_eq!(trace.agent_executions.len(), 2);
    for exec in &trace.agent_executions {
        assert!(exec.success);
        assert!(exec.error.is_none());
        assert_eq!(exec.duration_ms, Some(10_000), "{}", exec.agent_name);
        assert!(exec.output.is_some());
    }
    assert_eq!(trace.duration(), Some(Duration::from_secs(20)));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_in_the_trace_with_their_error() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(SimpleAgent::new("bad", "", |_| {
        Err(orch::AgentError::new("no data").into())
    }))];
    let result = SequentialOrchestrator::new()
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(result.is_err());
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 1);
    let exec = &trace.agent_executions[0];
    assert_eq!(exec.agent_name, "bad");
    assert!(!exec.success);
    assert!(exec.output.is_none());
    assert!(exec.error.as_deref().unwrap().contains("no data"));
}

// ------------------------------------------------------------------ context state

#[tokio::test]
async fn context_state_is_shared_by_clones_and_overwritten_by_set() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let other = ctx.clone();
    ctx.set_state("key", serde_json::json!("value")).await;
    assert_eq!(
        other.get_state("key").await,
        Some(serde_json::json!("value"))
    );
    other
        .set_state(String::from("key"), serde_json::json!({"n": 2}))
        .await;
    assert_eq!(
        ctx.get_state("key").await,
        Some(serde_json::json!({"n": 2}))
    );
    assert_eq!(ctx.get_state("nope").await, None);
}

#[tokio::test]
async fn state_set_before_a_run_is_visible_to_its_agents_and_back() -> TestResult {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    ctx.set_state("greeting", serde_json::json!("hello")).await;
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(ReadsState), Box::new(ReadsState)];
    let output = ParallelOrchestrator::new()
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
        .await?;
    assert!(output.agent_outputs.iter().all(|o| o.content == "hello"));
    assert_eq!(ctx.get_state("seen").await, Some(serde_json::json!(true)));
    Ok(())
}

struct ReadsState;

#[async_trait]
impl Agent for ReadsState {
    fn name(&self) -> &str {
        "ReadsState"
    }
    fn description(&self) -> &str {
        "reads the shared state"
    }
    async fn execute(&self, _input: AgentInput) -> orch::Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("runs under a context");
        let greeting = ctx.get_state("greeting").await.unwrap_or_default();
        ctx.set_state("seen", serde_json::json!(true)).await;
        Ok(AgentOutput::new(greeting.as_str().unwrap_or("").to_owned()))
    }
}

// ------------------------------------------------------------------ natural code: builders

#[test]
fn builder_methods_give_the_same_config_in_any_order() {
    let a = ParallelOrchestrator::new()
        .with_max_retries(2)
        .with_parallel_limit(5);
    let b = ParallelOrchestrator::new()
        .with_parallel_limit(5)
        .with_max_retries(2);
    assert_eq!(a.config(), b.config());

    let c = ExecutionConfig::new()
        .with_tracing(false)
        .with_logging(false)
        .with_parallel_limit(20)
        .with_max_retries(5)
        .with_timeout(Duration::from_secs(120));
    let d = ExecutionConfig::new()
        .with_timeout(Duration::from_secs(120))
        .with_max_retries(5)
        .with_parallel_limit(20)
        .with_logging(false)
        .with_tracing(false);
    assert_eq!(c, d);

    // AgentInput / AgentOutput / AgentMetadata builders commute too.
    let i1 = AgentInput::new("q")
        .with_metadata("a", "1")
        .with_context(serde_json::json!({"x": 1}));
    let i2 = AgentInput::new("q")
        .with_context(serde_json::json!({"x": 1}))
        .with_metadata("a", "1");
    assert_eq!(i1, i2);
    let o1 = AgentOutput::new("r")
        .with_data(serde_json::json!(1))
        .with_confidence(0.7);
    let o2 = AgentOutput::new("r")
        .with_confidence(0.7)
        .with_data(serde_json::json!(1));
    assert_eq!(o1, o2);
}

#[test]
fn a_shorthand_after_with_config_changes_only_its_own_setting() {
    let config = ExecutionConfig::new()
        .with_timeout(Duration::from_secs(120))
        .with_max_retries(5)
        .with_parallel_limit(20);
    let parallel = ParallelOrchestrator::new()
        .with_config(config.clone())
        .with_parallel_limit(4);
    assert_eq!(parallel.config().parallel_limit, 4);
    assert_eq!(parallel.config().max_retries, 5);
    assert_eq!(parallel.config().timeout, Duration::from_secs(120));

    let sequential = SequentialOrchestrator::new()
        .with_config(config)
        .with_max_retries(1);
    assert_eq!(sequential.config().max_retries, 1);
    assert_eq!(sequential.config().timeout, Duration::from_secs(120));
}

// ------------------------------------------------------------------ natural code: types

#[test]
fn spec_types_clone_debug_and_compare() {
    let input = AgentInput::new("Research quantum computing")
        .with_context(serde_json::json!({"depth": "advanced"}))
        .with_metadata("priority", "high");
    assert_eq!(input.clone(), input);
    assert!(format!("{input:?}").contains("Research quantum computing"));

    let output = AgentOutput::new("done").with_confidence(0.95);
    assert_eq!(output.clone(), output);
    assert!(format!("{output:?}").contains("done"));

    let oi = OrchestratorInput::new("Analyze market trends").with_metadata("request_id", "12345");
    assert_eq!(oi.clone(), oi);

    let config = ExecutionConfig::new().with_max_retries(5);
    assert_eq!(config.clone(), config);
    assert!(format!("{config:?}").contains("max_retries"));

    let metadata = orch::registry::AgentMetadata::new("id", "name", "desc", "cat").with_tag("t");
    assert_eq!(metadata.clone(), metadata);
    let filter = orch::registry::AgentFilter::new().with_tag("t");
    assert_eq!(filter.clone(), filter);
    assert!(filter.matches(&metadata));

    let _ = format!("{:?}", SequentialOrchestrator::new().clone());
    let _ = format!("{:?}", ParallelOrchestrator::new().clone());
    let _ = format!("{:?}", ExecutionContext::new(ExecutionConfig::new()));
    let _ = format!("{:?}", orch::AgentRegistry::new());
}

#[tokio::test]
async fn spec_types_serialize_to_json_and_back() -> TestResult {
    let input = AgentInput::new("q")
        .with_context(serde_json::json!({"depth": "advanced"}))
        .with_metadata("priority", "high");
    let back: AgentInput = serde_json::from_str(&serde_json::to_string(&input)?)?;
    assert_eq!(back, input);

    let output = AgentOutput::new("r")
        .with_confidence(0.95)
        .with_data(serde_json::json!({"articles": 5}))
        .with_metadata("duration_ms", "1500");
    let json = serde_json::to_value(&output)?;
    assert_eq!(json["content"], "r");
    assert_eq!(json["confidence"], 0.95);
    assert_eq!(json["data"]["articles"], 5);
    assert_eq!(json["metadata"]["duration_ms"], "1500");
    let back: AgentOutput = serde_json::from_value(json)?;
    assert_eq!(back, output);

    let config = ExecutionConfig::new().with_max_retries(5);
    let back: ExecutionConfig = serde_json::from_str(&serde_json::to_string(&config)?)?;
    assert_eq!(back, config);

    let metadata = orch::registry::AgentMetadata::new("research-agent", "R", "d", "research")
        .with_tool("web-search")
        .with_version("2.0.0");
    let json = serde_json::to_value(&metadata)?;
    assert_eq!(json["id"], "research-agent");
    assert_eq!(json["version"], "2.0.0");
    assert_eq!(json["tools"], serde_json::json!(["web-search"]));
    let back: orch::registry::AgentMetadata = serde_json::from_value(json)?;
    assert_eq!(back, metadata);

    // A whole run's output, trace included.
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![echo("A"), echo("B")], OrchestratorInput::new("x"))
        .await?;
    let json = serde_json::to_value(&output)?;
    assert_eq!(json["result"], "B: A: x");
    let back: orch::OrchestratorOutput = serde_json::from_value(json)?;
    assert_eq!(back.result, output.result);
    assert_eq!(
        back.execution_trace.agent_executions.len(),
        output.execution_trace.agent_executions.len()
    );

    let trace: orch::context::ExecutionTrace = output.execution_trace.clone();
    let back: orch::context::ExecutionTrace =
        serde_json::from_str(&serde_json::to_string(&trace)?)?;
    assert_eq!(back.agent_executions[0].agent_name, "A");
    let exec: &orch::context::AgentExecution = &trace.agent_executions[1];
    let back: orch::context::AgentExecution = serde_json::from_str(&serde_json::to_string(exec)?)?;
    assert_eq!(back.agent_name, "B");

    let error = OrchestrationError::PartialSuccess(2);
    let back: OrchestrationError = serde_json::from_str(&serde_json::to_string(&error)?)?;
    assert_eq!(back, error);
    Ok(())
}

#[test]
fn errors_are_std_errors_that_display_and_cross_threads() {
    fn is_error<E: Error + Send + Sync + 'static>(_: &E) {}
    let errors = [
        OrchestrationError::AgentFailed("Writer".into(), "writer's block".into()),
        OrchestrationError::AgentError(orch::AgentError::new("bad input")),
        OrchestrationError::OrchestratorFailed("lost".into()),
        OrchestrationError::Timeout("slow".into()),
        OrchestrationError::InvalidConfig("zero".into()),
        OrchestrationError::Cancelled,
        OrchestrationError::PartialSuccess(2),
    ];
    for error in &errors {
        is_error(error);
        assert!(!error.to_string().is_empty());
    }
    assert!(errors[0].to_string().contains("Writer"));
    assert!(errors[0].to_string().contains("writer's block"));
    assert!(errors[3].to_string().contains("slow"));
    assert!(errors[6].to_string().contains('2'));
    is_error(&orch::AgentError::new("x"));
    is_error(&orch::RegistryError::AgentNotFound("x".into()));

    // `?` into the usual boxed errors.
    fn boxed() -> Result<(), Box<dyn Error + Send + Sync>> {
        Err(OrchestrationError::Cancelled)?
    }
    assert_eq!(
        boxed().unwrap_err().to_string(),
        OrchestrationError::Cancelled.to_string()
    );
}

#[test]
fn matched_agent_failed_fields_read_like_strings() {
    let error = OrchestrationError::AgentFailed("Writer".into(), "writer's block".into());
    match error {
        OrchestrationError::AgentFailed(name, reason) => {
            let line = format!("Agent {} failed: {}", name, reason);
            assert_eq!(line, "Agent Writer failed: writer's block");
            assert_eq!(reason, "writer's block");
            assert!(reason.contains("block"));
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------ natural code: using them

#[tokio::test]
async fn an_orchestration_can_be_spawned_on_the_runtime() -> TestResult {
    let handle = tokio::spawn(async move {
        let agents: Vec<Box<dyn Agent>> = vec![echo("A"), echo("B")];
        SequentialOrchestrator::new()
            .orchestrate(agents, OrchestratorInput::new("x"))
            .await
    });
    assert_eq!(handle.await??.result, "B: A: x");

    let registry = Arc::new(orch::AgentRegistry::new());
    registry
        .register(
            echo("A"),
            orch::AgentMetadata::new("a", "A", "echoes", "test"),
        )
        .await?;
    let shared = registry.clone();
    let output = tokio::spawn(async move { shared.execute_agent("a", AgentInput::new("y")).await })
        .await??;
    assert_eq!(output.content, "A: y");
    Ok(())
}

#[tokio::test]
async fn the_pattern_can_be_chosen_at_run_time() -> TestResult {
    // 6.10 "Pattern Selection": pick sequential or parallel by use case.
    for parallel in [false, true] {
        let orchestrator: Box<dyn Orchestrator> = if parallel {
            Box::new(ParallelOrchestrator::new().with_parallel_limit(5))
        } else {
            Box::new(SequentialOrchestrator::new())
        };
        let output = orchestrator
            .orchestrate(vec![echo("A"), echo("B")], OrchestratorInput::new("x"))
            .await?;
        if parallel {
            assert_eq!(
                output.result,
                "Parallel execution results:\n1. A: A: x\n2. B: B: x"
            );
        } else {
            assert_eq!(output.result, "B: A: x");
        }
        assert!(!orchestrator.name().is_empty());
    }
    let shared: Arc<dyn Orchestrator> = Arc::new(SequentialOrchestrator::new());
    assert_eq!(shared.config().max_retries, 3);
    Ok(())
}

#[tokio::test]
async fn agents_can_be_called_directly_and_through_box_and_arc() -> TestResult {
    let agent = SimpleAgent::new("QuickAgent", "A simple agent for quick tasks", |input| {
        Ok(AgentOutput::new(format!("Processed: {}", input.content)))
    });
    assert_eq!(agent.name(), "QuickAgent");
    assert_eq!(agent.description(), "A simple agent for quick tasks");
    let boxed: Box<dyn Agent> = Box::new(agent);
    assert_eq!(
        boxed.execute(AgentInput::new("a")).await?.content,
        "Processed: a"
    );
    let shared: Arc<dyn Agent> = Arc::from(boxed);
    assert_eq!(
        shared.execute(AgentInput::new("b")).await?.content,
        "Processed: b"
    );
    Ok(())
}

#[test]
fn module_paths_of_the_spec_resolve() {
    // Every path the spec's samples import.
    use claude_agent_sdk::orchestration::agent::SimpleAgent as S;
    use claude_agent_sdk::orchestration::context::{
        AgentExecution, ExecutionConfig as C, ExecutionContext as X, ExecutionTrace,
    };
    use claude_agent_sdk::orchestration::errors::{OrchestrationError as E, Result as R};
    use claude_agent_sdk::orchestration::orchestrator::{BaseOrchestrator, OrchestratorOutput};
    use claude_agent_sdk::orchestration::patterns::{
        ParallelOrchestrator as P, SequentialOrchestrator as Q,
    };
    use claude_agent_sdk::orchestration::registry::{
        AgentFilter, AgentMetadata, AgentRegistry, AgentRegistryBuilder, RegistryError,
    };
    let _ = S::new("a", "b", |i: AgentInput| -> R<AgentOutput> {
        Ok(AgentOutput::new(i.content))
    });
    let _ = (C::new(), X::new(C::new()), ExecutionTrace::default());
    let _: Option<AgentExecution> = None;
    let _: Option<OrchestratorOutput> = None;
    let _ = (
        E::Cancelled,
        P::new(),
        Q::new(),
        BaseOrchestrator::new("n", "d"),
    );
    let _ = (
        AgentFilter::new(),
        AgentRegistry::new(),
        AgentRegistryBuilder::new().build(),
    );
    let _ = AgentMetadata::new("a", "a", "d", "c");
    let _: Option<RegistryError> = None;
}

// ------------------------------------------------------------------ 6.6 registry semantics

async fn catalogue() -> Result<orch::AgentRegistry, Box<dyn Error>> {
    use claude_agent_sdk::orchestration::registry::{AgentMetadata, AgentRegistryBuilder};
    let registry = AgentRegistryBuilder::new()
        .with_agent(
            echo("researcher"),
            AgentMetadata::new(
                "researcher",
                "researcher",
                "Academic researcher",
                "research",
            )
            .with_tool("web-search")
            .with_tool("read-file")
            .with_skill("citation")
            .with_tag("academic"),
        )
        .await?
        .with_agent(
            echo("scout"),
            AgentMetadata::new("scout", "scout", "Web scout", "research").with_tool("web-search"),
        )
        .await?
        .with_agent(
            echo("analyst"),
            AgentMetadata::new("analyst", "analyst", "Analyst", "analysis").with_tag("academic"),
        )
        .await?
        .build();
    Ok(registry)
}

#[tokio::test]
async fn agent_filter_criteria_all_have_to_match() -> TestResult {
    use claude_agent_sdk::orchestration::registry::AgentFilter;
    let registry = catalogue().await?;
    let ids = |found: Vec<orch::AgentMetadata>| -> Vec<String> {
        let mut ids: Vec<String> = found.into_iter().map(|m| m.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(registry.find(&AgentFilter::new()).await),
        ["analyst", "researcher", "scout"]
    );
    assert_eq!(
        ids(registry
            .find(&AgentFilter::new().with_category("research"))
            .await),
        ["researcher", "scout"]
    );
    assert_eq!(
        ids(registry
            .find(
                &AgentFilter::new()
                    .with_category("research")
                    .with_tool("web-search")
                    .with_tag("academic")
                    .enabled_only()
            )
            .await),
        ["researcher"]
    );
    assert_eq!(
        ids(registry
            .find(
                &AgentFilter::new()
                    .with_tool("web-search")
                    .with_tool("read-file")
            )
            .await),
        ["researcher"]
    );
    assert!(registry
        .find(&AgentFilter::new().with_category("cooking"))
        .await
        .is_empty());
    // enabled_only leaves disabled agents out; without it they are found.
    registry.disable("researcher").await?;
    assert_eq!(
        ids(registry
            .find(&AgentFilter::new().with_tag("academic").enabled_only())
            .await),
        ["analyst"]
    );
    assert_eq!(
        ids(registry
            .find(&AgentFilter::new().with_tag("academic"))
            .await),
        ["analyst", "researcher"]
    );
    Ok(())
}

#[tokio::test]
async fn registering_with_a_name_that_does_not_match_agent_name_fails() -> TestResult {
    use claude_agent_sdk::orchestration::registry::{AgentMetadata, AgentRegistry};
    let registry = AgentRegistry::new();
    let result = registry
        .register(
            echo("researcher"),
            AgentMetadata::new("researcher", "Academic Researcher", "d", "research"),
        )
        .await;
    assert!(result.is_err());
    assert!(!registry.contains("researcher").await);
    Ok(())
}

#[tokio::test]
async fn a_registered_agent_runs_by_id_and_unknown_ids_are_errors() -> TestResult {
    let registry = catalogue().await?;
    assert!(registry.contains("scout").await);
    assert!(!registry.contains("nobody").await);
    let output = registry
        .execute_agent("scout", AgentInput::new("Quantum computing"))
        .await?;
    assert_eq!(output.content, "scout: Quantum computing");
    assert!(registry
        .execute_agent("nobody", AgentInput::new("x"))
        .await
        .is_err());
    // Registering a second agent under a taken id fails and keeps the first.
    let again = registry
        .register(
            echo("scout"),
            orch::AgentMetadata::new("scout", "scout", "dup", "x"),
        )
        .await;
    assert!(again.is_err());
    assert_eq!(
        registry.metadata("scout").await.unwrap().description,
        "Web scout"
    );
    Ok(())
}

#[test]
fn agent_metadata_builder_sets_every_field_of_the_table() {
    use claude_agent_sdk::orchestration::registry::AgentMetadata;
    let m = AgentMetadata::new(
        "research-agent",
        "Academic Researcher",
        "Expert in academic research",
        "research",
    )
    .with_tool("web-search")
    .with_tool("read-file")
    .with_skill("citation")
    .with_tag("academic")
    .with_version("2.0.0")
    .with_max_retries(5)
    .with_timeout(120);
    assert_eq!(m.id, "research-agent");
    assert_eq!(m.name, "Academic Researcher");
    assert_eq!(m.description, "Expert in academic research");
    assert_eq!(m.category, "research");
    assert_eq!(m.version, "2.0.0");
    assert_eq!(m.tools, ["web-search", "read-file"]);
    assert_eq!(m.skills, ["citation"]);
    assert_eq!(m.tags, ["academic"]);
    assert_eq!(m.max_retries, 5);
    assert_eq!(m.timeout_secs, 120);
    assert!(m.enabled, "agents are enabled unless disabled");
}

// ------------------------------------------------------------------ 6.2 success semantics

#[tokio::test]
async fn orchestrator_output_is_successful_when_every_agent_succeeded() -> TestResult {
    let output = ParallelOrchestrator::new()
        .orchestrate(vec![echo("A"), echo("B")], OrchestratorInput::new("x"))
        .await?;
    assert!(output.is_successful());
    assert!(output.failures.is_empty());
    assert_eq!(output.agent_outputs.len(), 2);
    Ok(())
}

#[tokio::test]
async fn parallel_with_one_agent_aggregates_it_like_the_complete_example() -> TestResult {
    // 6.8, example 2: one analyzer still gives the "Parallel execution results" shape.
    let output = ParallelOrchestrator::new()
        .with_parallel_limit(5)
        .orchestrate(
            vec![echo("Researcher")],
            OrchestratorInput::new("Market Analysis"),
        )
        .await?;
    assert!(output.is_successful());
    assert_eq!(
        output.result,
        "Parallel execution results:\n1. Researcher: Researcher: Market Analysis"
    );
    Ok(())
}

#[tokio::test]
async fn registry_builder_with_agent_reports_registration_errors_through_question_mark() {
    use claude_agent_sdk::orchestration::registry::{AgentMetadata, AgentRegistryBuilder};
    async fn build() -> Result<orch::AgentRegistry, Box<dyn Error>> {
        Ok(AgentRegistryBuilder::new()
            .with_agent(
                echo("agent1"),
                AgentMetadata::new("agent1", "agent1", "First agent", "test"),
            )
            .await?
            .with_agent(
                echo("agent2"),
                AgentMetadata::new("agent1", "agent2", "Same id", "test"),
            )
            .await?
            .build())
    }
    let error = build().await.unwrap_err();
    assert!(error.to_string().contains("agent1"), "{error}");
}
