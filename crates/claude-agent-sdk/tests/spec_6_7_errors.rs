//! The code samples of the specification's section 6.7, "Error Handling" (the
//! error variants, which of them are retried, and the sample's `match`), as
//! tests.
//!
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...; they live in `spec_support`), the
//! variables it uses without defining them, and an import or type annotation
//! where a sample's import would otherwise be unused. After the sample come
//! assertions of what the specification's prose and tables say happens.

mod spec_support;

use claude_agent_sdk::orchestration as orch;

use spec_support::{
    create_analyzer, create_editor, create_researcher, create_writer, failing, flaky,
    CancelsItsRun, Sleeper, TestResult,
};

// ------------------------------------------------------------------ 6.7 Error Handling

/// 6.7's `match`, verbatim, on one run.
async fn report_outcome(
    orchestrator: impl orch::Orchestrator,
    agents: Vec<Box<dyn orch::Agent>>,
    input: orch::OrchestratorInput,
) {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;

    match orchestrator.orchestrate(agents, input).await {
        Ok(output) => println!("Success: {}", output.result),
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            eprintln!("Agent {} failed: {}", name, reason);
        }
        Err(OrchestrationError::Timeout(msg)) => {
            eprintln!("Operation timed out: {}", msg);
        }
        Err(OrchestrationError::InvalidConfig(msg)) => {
            eprintln!("Configuration error: {}", msg);
        }
        Err(OrchestrationError::PartialSuccess(count)) => {
            eprintln!("{} agents failed", count);
        }
        Err(e) => eprintln!("Other error: {}", e),
    }
}

#[tokio::test(start_paused = true)]
async fn s6_7_each_failure_ends_in_the_variant_the_table_names() {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;
    use claude_agent_sdk::orchestration::{
        Agent, Orchestrator, OrchestratorInput, ParallelOrchestrator, SequentialOrchestrator,
    };
    use std::time::Duration;

    let input = || OrchestratorInput::new("Climate Change");

    // Ok: the match's first arm.
    let pipeline = || vec![create_researcher(), create_writer(), create_editor()];
    let ok = SequentialOrchestrator::new()
        .orchestrate(pipeline(), input())
        .await;
    assert!(ok.is_ok());
    report_outcome(SequentialOrchestrator::new(), pipeline(), input()).await;

    // AgentFailed: "Agent execution failed", naming the agent and the reason.
    let broken = || {
        vec![
            create_researcher(),
            failing("Writer", "writer's block"),
            create_editor(),
        ]
    };
    let error = SequentialOrchestrator::new()
        .orchestrate(broken(), input())
        .await
        .unwrap_err();
    match &error {
        OrchestrationError::AgentFailed(name, reason) => {
            assert_eq!(name, "Writer");
            assert!(reason.contains("writer's block"), "{reason}");
        }
        other => panic!("expected AgentFailed, got {other:?}"),
    }
    report_outcome(SequentialOrchestrator::new(), broken(), input()).await;

    // Timeout: "Operation timed out".
    let slow = || -> Vec<Box<dyn Agent>> { vec![Box::new(Sleeper)] };
    let hasty = || SequentialOrchestrator::new().with_timeout(Duration::from_millis(50));
    let error = hasty().orchestrate(slow(), input()).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error:?}");
    report_outcome(hasty(), slow(), input()).await;

    // InvalidConfig: "Invalid configuration" (here: nothing to orchestrate).
    let error = SequentialOrchestrator::new()
        .orchestrate(vec![], input())
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error:?}"
    );
    let error = ParallelOrchestrator::new()
        .with_parallel_limit(0)
        .orchestrate(pipeline(), input())
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error:?}"
    );
    report_outcome(SequentialOrchestrator::new(), vec![], input()).await;

    // PartialSuccess: "Some agents failed", with how many.
    let mixed = || {
        vec![
            create_analyzer("technical"),
            failing("Business Analysis", "no data"),
            create_analyzer("security"),
        ]
    };
    let error = ParallelOrchestrator::new()
        .orchestrate(mixed(), input())
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::PartialSuccess(1));
    report_outcome(ParallelOrchestrator::new(), mixed(), input()).await;

    // Cancelled: "Execution cancelled" (the match's last arm).
    let cancelling = || -> Vec<Box<dyn Agent>> { vec![Box::new(CancelsItsRun), create_writer()] };
    let error = SequentialOrchestrator::new()
        .orchestrate(cancelling(), input())
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::Cancelled);
    report_outcome(SequentialOrchestrator::new(), cancelling(), input()).await;
}

#[test]
fn s6_7_retryable_errors_follow_the_table() {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;
    use claude_agent_sdk::orchestration::AgentError;

    // The "Error Variants" table: variant, retryable.
    let table = [
        (
            OrchestrationError::AgentFailed("Writer".into(), "boom".into()),
            true,
        ),
        (
            OrchestrationError::AgentError(AgentError::new("bad input")),
            false,
        ),
        (OrchestrationError::OrchestratorFailed("lost".into()), false),
        (OrchestrationError::Timeout("slow".into()), true),
        (OrchestrationError::InvalidConfig("zero".into()), false),
        (OrchestrationError::Cancelled, false),
        (OrchestrationError::PartialSuccess(2), false),
    ];
    let mut retried = 0;
    for (error, retryable) in table {
        // Check if error is retryable
        if error.is_retryable() {
            // Retry the operation
            retried += 1;
        }
        assert_eq!(error.is_retryable(), retryable, "{error:?}");
    }
    assert_eq!(retried, 2);
}

#[tokio::test(start_paused = true)]
async fn s6_7_only_retryable_errors_are_retried() -> TestResult {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;
    use claude_agent_sdk::orchestration::{
        AgentError, ExecutionConfig, ExecutionContext, Orchestrator, OrchestratorInput,
        SequentialOrchestrator,
    };

    // "Built-in retry logic with exponential backoff" (6.1), for retryable errors
    // only: at most `max_retries` retries after the first attempt.
    let orchestrator = SequentialOrchestrator::new().with_max_retries(3);
    let attempts = |error: OrchestrationError, failures: usize| {
        let orchestrator = orchestrator.clone();
        async move {
            let ctx = ExecutionContext::new(ExecutionConfig::new());
            let result = orchestrator
                .orchestrate_with_context(
                    vec![flaky("Fetcher", failures, error)],
                    OrchestratorInput::new("x"),
                    &ctx,
                )
                .await;
            (result, ctx.get_trace().await.agent_executions.len())
        }
    };

    let (result, tries) = attempts(OrchestrationError::Timeout("slow".into()), 2).await;
    assert_eq!(result?.result, "x");
    assert_eq!(tries, 3, "two retryable failures, then success");

    let (result, tries) = attempts(OrchestrationError::transient("503"), 10).await;
    assert!(
        matches!(result, Err(OrchestrationError::AgentFailed(..))),
        "{result:?}"
    );
    assert_eq!(tries, 4, "the first attempt and 3 retries");

    let (result, tries) = attempts(AgentError::new("bad input").into(), 10).await;
    assert!(
        matches!(result, Err(OrchestrationError::AgentFailed(..))),
        "{result:?}"
    );
    assert_eq!(tries, 1, "a permanent error is not retried");
    Ok(())
}
