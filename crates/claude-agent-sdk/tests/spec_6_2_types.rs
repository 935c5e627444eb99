//! The code samples of the specification's section 6.2, "Core Types"
//! (`AgentInput`, `AgentOutput`, `OrchestratorInput`, `OrchestratorOutput`), as
//! tests.
//!
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...; they live in `spec_support`), the
//! variables it uses without defining them, and an import or type annotation
//! where a sample's import would otherwise be unused. After the sample come
//! assertions of what the specification's prose and tables say happens.

mod spec_support;

use std::collections::HashMap;

use claude_agent_sdk::orchestration as orch;

use spec_support::{create_researcher, create_writer, has_type, TestResult};

// ------------------------------------------------------------------ 6.2 Core Types

#[test]
fn s6_2_agent_input() {
    use claude_agent_sdk::orchestration::AgentInput;

    let input = AgentInput::new("Research quantum computing")
        .with_context(serde_json::json!({"depth": "advanced"}))
        .with_metadata("priority", "high");

    // The fields table.
    has_type::<String>(&input.content);
    has_type::<serde_json::Value>(&input.context);
    has_type::<HashMap<String, String>>(&input.metadata);
    assert_eq!(input.content, "Research quantum computing");
    assert_eq!(input.context, serde_json::json!({"depth": "advanced"}));
    assert_eq!(
        input.metadata,
        HashMap::from([("priority".to_owned(), "high".to_owned())])
    );
}

#[test]
fn s6_2_agent_output() {
    use claude_agent_sdk::orchestration::AgentOutput;

    let output = AgentOutput::new("Research complete: 5 articles found")
        .with_confidence(0.95)
        .with_data(serde_json::json!({"articles": 5}))
        .with_metadata("duration_ms", "1500");

    // Check if output indicates success
    if output.is_successful() {
        println!("Agent succeeded with confidence: {}", output.confidence);
    }

    // The fields table.
    has_type::<String>(&output.content);
    has_type::<serde_json::Value>(&output.data);
    has_type::<f64>(&output.confidence);
    has_type::<HashMap<String, String>>(&output.metadata);
    assert!(output.is_successful());
    assert_eq!(output.content, "Research complete: 5 articles found");
    assert_eq!(output.confidence, 0.95);
    assert_eq!(output.data, serde_json::json!({"articles": 5}));
    assert_eq!(output.metadata["duration_ms"], "1500");
    // "Confidence score (0.0 - 1.0)".
    for wild in [-3.0, 7.5, f64::NAN] {
        let confidence = AgentOutput::new("x").with_confidence(wild).confidence;
        assert!((0.0..=1.0).contains(&confidence), "{wild} -> {confidence}");
    }
}

#[tokio::test]
async fn s6_2_orchestrator_input_and_output() -> TestResult {
    use claude_agent_sdk::orchestration::{OrchestratorInput, OrchestratorOutput};

    // Create orchestrator input
    let input = OrchestratorInput::new("Analyze market trends")
        .with_context(serde_json::json!({"region": "US"}))
        .with_metadata("request_id", "12345");

    // Glue: the sample checks an `output` it does not make; run two agents on `input`.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let output: OrchestratorOutput = orch::SequentialOrchestrator::new()
        .orchestrate(vec![create_researcher(), create_writer()], input.clone())
        .await?;

    // Check output
    if output.is_successful() {
        println!("Final result: {}", output.result);
        println!("Agents executed: {}", output.agent_outputs.len());
    }

    assert_eq!(input.content, "Analyze market trends");
    assert_eq!(input.context, serde_json::json!({"region": "US"}));
    assert_eq!(input.metadata["request_id"], "12345");
    assert!(output.is_successful());
    assert_eq!(output.agent_outputs.len(), 2);
    assert_eq!(
        output.result,
        "Article draft based on Found 5 articles about Analyze market trends"
    );
    // Every agent of the run is handed the run's context and metadata.
    for exec in &output.execution_trace.agent_executions {
        assert_eq!(exec.input.context, input.context);
        assert_eq!(exec.input.metadata, input.metadata);
    }
    Ok(())
}
