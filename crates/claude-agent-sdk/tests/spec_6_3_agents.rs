//! The code samples of the specification's section 6.3, "Agent Trait"
//! (implementing `Agent`, and `SimpleAgent`), as tests.
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...; they live in `spec_support`), the
//! variables it uses without defining them, and an import or type annotation
//! where a sample's import would otherwise be unused. After the sample come
//! assertions of what the specification's prose and tables say happens.

mod spec_support;

use claude_agent_sdk::orchestration as orch;

use spec_support::{create_writer, TestResult};

// ------------------------------------------------------------------ 6.3 Agent Trait

#[tokio::test]
async fn s6_3_agent_trait() -> TestResult {
    use async_trait::async_trait;
    use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput, Result};

    #[derive(Debug)]
    struct ResearchAgent;

    #[async_trait]
    impl Agent for ResearchAgent {
        fn name(&self) -> &str {
            "ResearchAgent"
        }

        fn description(&self) -> &str {
            "Researches topics and gathers information"
        }

        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            // Perform research logic
            let research_result = format!("Found 10 articles about: {}", input.content);

            Ok(AgentOutput::new(research_result)
                .with_confidence(0.9)
                .with_data(serde_json::json!({"sources": 10})))
        }
    }

    let agent = ResearchAgent;
    assert_eq!(format!("{agent:?}"), "ResearchAgent");
    assert_eq!(agent.name(), "ResearchAgent");
    assert_eq!(
        agent.description(),
        "Researches topics and gathers information"
    );
    let output = agent.execute(AgentInput::new("Rust")).await?;
    assert_eq!(output.content, "Found 10 articles about: Rust");
    assert_eq!(output.confidence, 0.9);
    assert_eq!(output.data, serde_json::json!({"sources": 10}));

    // "participating in orchestration": it runs in a pipeline like any agent.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let run = orch::SequentialOrchestrator::new()
        .orchestrate(
            vec![Box::new(ResearchAgent), create_writer()],
            orch::OrchestratorInput::new("Rust"),
        )
        .await?;
    assert_eq!(
        run.result,
        "Article draft based on Found 10 articles about: Rust"
    );
    Ok(())
}

#[tokio::test]
async fn s6_3_simple_agent() -> TestResult {
    use claude_agent_sdk::orchestration::agent::SimpleAgent;
    // Glue: what the sample uses without importing.
    use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput};

    let agent = SimpleAgent::new("QuickAgent", "A simple agent for quick tasks", |input| {
        Ok(AgentOutput::new(format!("Processed: {}", input.content)))
    });

    assert_eq!(agent.name(), "QuickAgent");
    assert_eq!(agent.description(), "A simple agent for quick tasks");
    let output = agent.execute(AgentInput::new("the inbox")).await?;
    assert_eq!(output.content, "Processed: the inbox");
    Ok(())
}
