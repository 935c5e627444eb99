// The complete example of the specification (section 6.8), verbatim up to
// rustfmt: a sequential pipeline of three agents, then a parallel analysis. It
// runs offline; no API key or network is needed.
//
//     cargo run -p claude-agent-sdk --example complete
//
// Glue: the `allow` below, because the specification's sample imports the
// registry types without using them. (Plain `//` comments only: the test
// `tests/spec_6_8_complete.rs` includes this file with `include!`.)

use async_trait::async_trait;
#[allow(unused_imports)]
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentMetadata, AgentOutput, AgentRegistry, Orchestrator, OrchestratorInput,
    ParallelOrchestrator, SequentialOrchestrator,
};

// Define custom agents
struct Researcher;
struct Writer;
struct Editor;

#[async_trait]
impl Agent for Researcher {
    fn name(&self) -> &str {
        "Researcher"
    }
    fn description(&self) -> &str {
        "Gathers information"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        Ok(
            AgentOutput::new(format!("Research: {} - Found 10 sources", input.content))
                .with_confidence(0.95),
        )
    }
}

#[async_trait]
impl Agent for Writer {
    fn name(&self) -> &str {
        "Writer"
    }
    fn description(&self) -> &str {
        "Creates content"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        Ok(AgentOutput::new(format!("Draft: {}", input.content)).with_confidence(0.90))
    }
}

#[async_trait]
impl Agent for Editor {
    fn name(&self) -> &str {
        "Editor"
    }
    fn description(&self) -> &str {
        "Refines content"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        Ok(AgentOutput::new(format!("Final: {}", input.content)).with_confidence(0.92))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Example 1: Sequential Pipeline
    println!("=== Sequential Pipeline ===");

    let sequential = SequentialOrchestrator::new();
    let agents: Vec<Box<dyn Agent>> =
        vec![Box::new(Researcher), Box::new(Writer), Box::new(Editor)];

    let input = OrchestratorInput::new("AI Trends 2024");
    let output = sequential.orchestrate(agents, input).await?;

    println!("Success: {}", output.is_successful());
    println!("Steps: {}", output.agent_outputs.len());
    println!("Final: {}", output.result);
    println!("Duration: {:?}", output.execution_trace.duration());

    // Example 2: Parallel Analysis
    println!("\n=== Parallel Analysis ===");

    let parallel = ParallelOrchestrator::new().with_parallel_limit(5);

    let analyzers: Vec<Box<dyn Agent>> = vec![
        Box::new(Researcher), // Reuse as analyzers
    ];

    let input = OrchestratorInput::new("Market Analysis");
    let output = parallel.orchestrate(analyzers, input).await?;

    println!("Success: {}", output.is_successful());
    println!("Aggregated: {}", output.result);

    Ok(())
}
