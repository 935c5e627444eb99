//! The code samples of the specification's section 6.4, "Orchestration
//! Patterns" (the sequential pipeline and the parallel fan-out), as tests.
//!
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...; they live in `spec_support`), the
//! variables it uses without defining them, and an import or type annotation
//! where a sample's import would otherwise be unused. After the sample come
//! assertions of what the specification's prose and tables say happens.

mod spec_support;

use spec_support::{create_analyzer, create_editor, create_researcher, create_writer, TestResult};

// ------------------------------------------------------------------ 6.4 Orchestration Patterns

#[tokio::test]
async fn s6_4_sequential_pipeline_passes_each_output_on() -> TestResult {
    use claude_agent_sdk::orchestration::{
        Agent, Orchestrator, OrchestratorInput, SequentialOrchestrator,
    };

    // Create sequential orchestrator
    let orchestrator = SequentialOrchestrator::new().with_max_retries(3);

    // Define pipeline agents
    let agents: Vec<Box<dyn Agent>> = vec![create_researcher(), create_writer(), create_editor()];

    // Execute pipeline
    let input = OrchestratorInput::new("Climate Change");
    let output = orchestrator.orchestrate(agents, input).await?;

    println!("Final result: {}", output.result);
    // Each agent's output is passed to the next:
    // Researcher: "Found 5 articles about Climate Change"
    //   → Writer: "Article draft based on Found 5 articles..."
    //     → Editor: "Final version: Article draft..."

    assert_eq!(orchestrator.config().max_retries, 3);
    let steps: Vec<&str> = output
        .agent_outputs
        .iter()
        .map(|o| o.content.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "Found 5 articles about Climate Change",
            "Article draft based on Found 5 articles about Climate Change",
            "Final version: Article draft based on Found 5 articles about Climate Change",
        ]
    );
    assert!(steps[1].starts_with("Article draft based on Found 5 articles"));
    assert!(steps[2].starts_with("Final version: Article draft"));
    assert_eq!(output.result, steps[2]);
    // Input → Agent A → Agent B → Agent C → Output: each input is the previous output.
    let inputs: Vec<&str> = output
        .execution_trace
        .agent_executions
        .iter()
        .map(|e| &*e.input.content)
        .collect();
    assert_eq!(inputs, ["Climate Change", steps[0], steps[1]]);
    assert!(output.is_successful());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn s6_4_parallel_results_are_aggregated_in_order() -> TestResult {
    use claude_agent_sdk::orchestration::{
        Agent, Orchestrator, OrchestratorInput, ParallelOrchestrator,
    };

    // Create parallel orchestrator with concurrency control
    let orchestrator = ParallelOrchestrator::new()
        .with_max_retries(2)
        .with_parallel_limit(5); // Max 5 concurrent agents

    // Define parallel agents
    let agents: Vec<Box<dyn Agent>> = vec![
        create_analyzer("technical"),
        create_analyzer("business"),
        create_analyzer("security"),
    ];

    // Execute in parallel
    let input = OrchestratorInput::new("New Architecture Proposal");
    let output = orchestrator.orchestrate(agents, input).await?;

    // Results are aggregated
    println!("Aggregated results:\n{}", output.result);
    // Output:
    // Parallel execution results:
    // 1. Technical Analysis: ...
    // 2. Business Analysis: ...
    // 3. Security Analysis: ...

    assert_eq!(orchestrator.config().max_retries, 2);
    assert_eq!(orchestrator.config().parallel_limit, 5);
    assert!(output.result.starts_with("Parallel execution results:"));
    let lines: Vec<&str> = output.result.lines().collect();
    assert_eq!(
        lines,
        [
            "Parallel execution results:",
            "1. Technical Analysis: technical review of New Architecture Proposal",
            "2. Business Analysis: business review of New Architecture Proposal",
            "3. Security Analysis: security review of New Architecture Proposal",
        ]
    );
    assert!(output.is_successful());
    assert_eq!(output.agent_outputs.len(), 3);
    // The analyzers finished last-to-first, yet the aggregate follows their order.
    let trace = &output.execution_trace.agent_executions;
    let finished: Vec<&str> = trace.iter().map(|e| e.agent_name.as_str()).collect();
    assert_eq!(
        finished,
        [
            "Security Analysis",
            "Business Analysis",
            "Technical Analysis"
        ]
    );
    // Every agent gets the same input.
    assert!(trace
        .iter()
        .all(|e| e.input.content == "New Architecture Proposal"));
    Ok(())
}
