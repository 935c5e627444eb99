//! All four agents — Claude, OpenAI-compatible, Claude Code and a program —
//! through a sequential pipeline, a parallel fan-out, a nested run and the
//! registry, with the run's usage totals.

mod agents_support;

use std::time::Duration;

use agents_support::{install_fake_claude, Reply, TempDir, TestServer};
use claude_agent_sdk::agents::{
    ClaudeAgent, ClaudeCodeAgent, CommandAgent, OpenAiCompatibleAgent, Provider,
};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentMetadata, AgentRegistry, Orchestrator, OrchestratorAgent,
    OrchestratorInput, ParallelOrchestrator, SequentialOrchestrator,
};
use serde_json::json;

struct Backends {
    anthropic: TestServer,
    openai: TestServer,
    claude_bin: TempDir,
    anthropic_provider: Provider,
    openai_provider: Provider,
}

impl Backends {
    async fn start() -> Self {
        let anthropic = TestServer::start(vec![Reply::json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "notes on tides"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 9}
        }))])
        .await;
        let openai = TestServer::start(vec![Reply::json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "llama3.2",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "draft about tides"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
        }))])
        .await;
        let anthropic_provider = Provider::builder("anthropic", &anthropic.url)
            .with_api_key("k")
            .build()
            .unwrap();
        let openai_provider = Provider::builder("ollama", format!("{}/v1", openai.url))
            .build()
            .unwrap();
        Self {
            anthropic,
            openai,
            claude_bin: TempDir::new("orch-claude"),
            anthropic_provider,
            openai_provider,
        }
    }

    fn claude(&self) -> ClaudeAgent {
        ClaudeAgent::new("researcher", &self.anthropic_provider).with_streaming(false)
    }

    fn openai(&self) -> OpenAiCompatibleAgent {
        OpenAiCompatibleAgent::new("writer", &self.openai_provider, "llama3.2")
            .with_streaming(false)
    }

    fn claude_code(&self) -> ClaudeCodeAgent {
        ClaudeCodeAgent::new("editor")
            .with_env("PATH", install_fake_claude(&self.claude_bin))
            .with_env("FAKE_CLAUDE_PROMPT", self.claude_bin.join("prompt"))
    }

    fn command(&self) -> CommandAgent {
        CommandAgent::new("shouter", "tr").args(["a-z", "A-Z"])
    }

    fn all(&self) -> Vec<Box<dyn Agent>> {
        vec![
            Box::new(self.claude()),
            Box::new(self.openai()),
            Box::new(self.claude_code()),
            Box::new(self.command()),
        ]
    }
}

#[tokio::test]
async fn a_pipeline_of_all_four_agents_passes_each_output_on() {
    let backends = Backends::start().await;
    let output = SequentialOrchestrator::new()
        .with_max_retries(1)
        .with_agent_timeout(Duration::from_secs(20))
        .orchestrate(backends.all(), OrchestratorInput::new("tides"))
        .await
        .unwrap();

    assert_eq!(output.result, "CLAUDE CODE: DRAFT ABOUT TIDES");
    assert_eq!(
        backends.anthropic.received()[0].body["messages"][0]["content"],
        "tides"
    );
    assert_eq!(
        backends.openai.received()[0].body["messages"][0]["content"],
        "notes on tides"
    );
    assert_eq!(
        std::fs::read_to_string(backends.claude_bin.join("prompt")).unwrap(),
        "draft about tides"
    );
    let usage = output.total_usage();
    assert_eq!(usage.input_tokens, 25 + 19 + 11);
    assert_eq!(usage.output_tokens, 9 + 10 + 13);
    assert_eq!(usage.cost_usd, Some(0.0123));
    assert_eq!(output.execution_trace.total_usage(), usage);
}

#[tokio::test]
async fn a_fan_out_of_all_four_agents_keeps_their_order_and_sums_usage() {
    let backends = Backends::start().await;
    let output = ParallelOrchestrator::new()
        .orchestrate(backends.all(), OrchestratorInput::new("tides"))
        .await
        .unwrap();
    let contents: Vec<&str> = output
        .agent_outputs
        .iter()
        .map(|o| o.content.as_str())
        .collect();
    assert_eq!(
        contents,
        [
            "notes on tides",
            "draft about tides",
            "claude code: tides",
            "TIDES"
        ]
    );
    assert!(output
        .result
        .starts_with("Parallel execution results:\n1. researcher: notes on tides"));
    let usage = output.total_usage();
    assert_eq!((usage.input_tokens, usage.output_tokens), (55, 32));
    assert_eq!(usage.cache_read_input_tokens, 7);
}

#[tokio::test]
async fn nested_runs_count_their_usage_once() {
    let backends = Backends::start().await;
    let reviews = OrchestratorAgent::new(
        "reviews",
        "Two models at once",
        ParallelOrchestrator::new(),
        vec![Box::new(backends.claude()), Box::new(backends.openai())],
    );
    let pipeline: Vec<Box<dyn Agent>> = vec![
        Box::new(backends.claude_code()),
        Box::new(reviews),
        Box::new(backends.command()),
    ];
    let output = SequentialOrchestrator::new()
        .orchestrate(pipeline, OrchestratorInput::new("tides"))
        .await
        .unwrap();
    assert!(
        output.result.contains("1. RESEARCHER: NOTES ON TIDES"),
        "{}",
        output.result
    );
    let usage = output.total_usage();
    assert_eq!(usage.input_tokens, 11 + 25 + 19);
    assert_eq!(usage.output_tokens, 13 + 9 + 10);
}

#[tokio::test]
async fn the_registry_executes_real_agents_by_id() {
    let backends = Backends::start().await;
    let registry = AgentRegistry::new();
    registry
        .register(
            Box::new(backends.claude()),
            AgentMetadata::new(
                "claude-researcher",
                "researcher",
                "Researches with Claude",
                "research",
            )
            .with_tag("llm"),
        )
        .await
        .unwrap();
    registry
        .register(
            Box::new(backends.command()),
            AgentMetadata::new("shouter", "shouter", "Upper-cases", "text").with_max_retries(0),
        )
        .await
        .unwrap();
    let researched = registry
        .execute_agent("claude-researcher", AgentInput::new("tides"))
        .await
        .unwrap();
    assert_eq!(researched.content, "notes on tides");
    let shouted = registry
        .execute_agent("shouter", AgentInput::new(researched.content))
        .await
        .unwrap();
    assert_eq!(shouted.content, "NOTES ON TIDES");
}
