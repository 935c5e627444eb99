//! The code samples of the specification's section 6.5, "Execution Context"
//! (`ExecutionConfig`, `ExecutionContext`, `ExecutionTrace`, `AgentExecution`),
//! as tests.
//!
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...; they live in `spec_support`), the
//! variables it uses without defining them, and an import or type annotation
//! where a sample's import would otherwise be unused. After the sample come
//! assertions of what the specification's prose and tables say happens.

mod spec_support;

use claude_agent_sdk::orchestration as orch;

use spec_support::{create_editor, create_researcher, create_writer, flaky, has_type, TestResult};

// ------------------------------------------------------------------ 6.5 Execution Context

#[test]
fn s6_5_execution_config() {
    use claude_agent_sdk::orchestration::context::ExecutionConfig;
    use std::time::Duration;

    let config = ExecutionConfig::new()
        .with_timeout(Duration::from_secs(120)) // Max 2 minutes
        .with_max_retries(5) // 5 retries per agent
        .with_parallel_limit(20) // Max 20 parallel agents
        .with_logging(true) // Enable logging
        .with_tracing(true); // Enable tracing

    assert_eq!(config.timeout, Duration::from_secs(120));
    assert_eq!(config.max_retries, 5);
    assert_eq!(config.parallel_limit, 20);
    assert!(config.enable_logging);
    assert!(config.enable_tracing);
}

#[test]
fn s6_5_execution_config_defaults() {
    use claude_agent_sdk::orchestration::context::ExecutionConfig;
    use std::time::Duration;

    // The "Default values" table.
    for config in [ExecutionConfig::new(), ExecutionConfig::default()] {
        assert_eq!(config.timeout, Duration::from_secs(300));
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.parallel_limit, 10);
        assert!(config.enable_logging);
        assert!(config.enable_tracing);
    }
    // Orchestrators start from those defaults.
    assert_eq!(
        *orch::SequentialOrchestrator::new().config(),
        ExecutionConfig::default()
    );
    assert_eq!(
        *orch::ParallelOrchestrator::new().config(),
        ExecutionConfig::default()
    );
}

#[tokio::test]
async fn s6_5_execution_context() -> TestResult {
    use claude_agent_sdk::orchestration::context::ExecutionContext;
    // Glue: the `config` the sample passes.
    use claude_agent_sdk::orchestration::context::ExecutionConfig;
    let config = ExecutionConfig::new();

    let ctx = ExecutionContext::new(config);

    // Store state
    ctx.set_state("key", serde_json::json!("value")).await;

    // Retrieve state
    if let Some(value) = ctx.get_state("key").await {
        println!("State: {}", value);
    }

    // Get execution trace
    let trace = ctx.get_trace().await;
    println!("Executions: {}", trace.agent_executions.len());

    assert_eq!(ctx.get_state("key").await, Some(serde_json::json!("value")));
    assert_eq!(ctx.get_state("missing").await, None);
    assert_eq!(trace.agent_executions.len(), 0);

    // A run under the context fills its trace.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    orch::SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![create_researcher(), create_writer()],
            orch::OrchestratorInput::new("tides"),
            &ctx,
        )
        .await?;
    assert_eq!(ctx.get_trace().await.agent_executions.len(), 2);
    Ok(())
}

#[tokio::test]
async fn s6_5_execution_trace() -> TestResult {
    use claude_agent_sdk::orchestration::context::ExecutionTrace;

    // Glue: the run whose `output` the sample reads.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let output = orch::SequentialOrchestrator::new()
        .orchestrate(
            vec![create_researcher(), create_writer(), create_editor()],
            orch::OrchestratorInput::new("Climate Change"),
        )
        .await?;

    let trace = output.execution_trace;

    println!("Started: {}", trace.start_time);
    println!("Duration: {:?}", trace.duration());

    // Access individual agent executions
    for exec in &trace.agent_executions {
        println!(
            "Agent: {} - Success: {} - Duration: {:?}ms",
            exec.agent_name, exec.success, exec.duration_ms
        );
    }

    has_type::<ExecutionTrace>(&trace);
    let end = trace.end_time.expect("a finished run has an end time");
    assert!(trace.start_time <= end);
    assert!(trace.duration().is_some());
    let names: Vec<&str> = trace
        .agent_executions
        .iter()
        .map(|e| e.agent_name.as_str())
        .collect();
    assert_eq!(names, ["Researcher", "Writer", "Editor"]);
    for exec in &trace.agent_executions {
        assert!(exec.success);
        assert!(exec.duration_ms.is_some());
        assert!(trace.start_time <= exec.start_time);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn s6_5_agent_execution() -> TestResult {
    use claude_agent_sdk::orchestration::context::AgentExecution;

    // Glue: a run whose first agent fails once (retryably) before it succeeds.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let output = orch::SequentialOrchestrator::new()
        .orchestrate(
            vec![
                flaky("Fetcher", 1, orch::OrchestrationError::transient("503")),
                create_writer(),
            ],
            orch::OrchestratorInput::new("notes"),
        )
        .await?;

    // Execution records are created automatically
    // and accessible via ExecutionTrace.agent_executions

    for exec in &output.execution_trace.agent_executions {
        println!("Agent: {}", exec.agent_name);
        println!("  Input: {}", exec.input.content);
        if let Some(ref output) = exec.output {
            println!("  Output: {}", output.content);
        }
        if let Some(ref error) = exec.error {
            println!("  Error: {}", error);
        }
    }

    let records: &Vec<AgentExecution> = &output.execution_trace.agent_executions;
    assert_eq!(records.len(), 3, "one record per attempt");
    let (failed, retried, written) = (&records[0], &records[1], &records[2]);
    assert_eq!(failed.agent_name, "Fetcher");
    assert!(!failed.success);
    assert_eq!(failed.input.content, "notes");
    assert!(failed.output.is_none());
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("503")));
    assert_eq!(retried.agent_name, "Fetcher");
    assert!(retried.success);
    assert_eq!(retried.output.as_ref().map(|o| &*o.content), Some("notes"));
    assert!(retried.error.is_none());
    assert_eq!(written.agent_name, "Writer");
    assert_eq!(written.input.content, "notes");
    assert_eq!(
        written.output.as_ref().map(|o| &*o.content),
        Some("Article draft based on notes")
    );
    Ok(())
}
