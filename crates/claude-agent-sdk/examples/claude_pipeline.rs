//! A researcher → writer → editor pipeline on Claude.
//!
//! ```text
//! ANTHROPIC_API_KEY=sk-ant-... \
//!   cargo run -p claude-agent-sdk --features claude --example claude_pipeline -- "your topic"
//! ```
//!
//! Optional: `ANTHROPIC_BASE_URL` (a gateway or proxy), `CLAUDE_MODEL` (default
//! `claude-sonnet-4-5`). Without a key the example says what to set and exits
//! with status 2, before any request.

use std::io::Write as _;
use std::time::Duration;

use claude_agent_sdk::agents::{
    ClaudeAgent, PriceTable, Pricing, PromptTemplate, Provider, ProviderLimits,
};
use claude_agent_sdk::orchestration::{
    Agent, Orchestrator, OrchestratorInput, SequentialOrchestrator,
};

#[tokio::main]
async fn main() {
    // Example prices in USD per million tokens; check the current price list.
    let prices = PriceTable::new()
        .with_price("claude-sonnet-4-5", Pricing::per_million_tokens(3.0, 15.0))
        .with_price("claude-haiku-4-5", Pricing::per_million_tokens(1.0, 5.0));
    let provider = Provider::anthropic_builder()
        .with_prices(prices)
        .with_limits(
            ProviderLimits::new()
                .with_requests_per_minute(50)
                .with_max_concurrent(4),
        )
        .build();
    let provider = match provider {
        Ok(provider) if provider.has_api_key() => provider,
        other => {
            let error = other.map_or_else(
                |e| e.to_string(),
                |_| "ANTHROPIC_API_KEY is not set".to_owned(),
            );
            eprintln!("claude_pipeline: {error}");
            eprintln!();
            eprintln!(
                "This example calls the Anthropic Messages API. Set your key and run it again:"
            );
            eprintln!();
            eprintln!(
                "  export ANTHROPIC_API_KEY=sk-ant-...        # https://console.anthropic.com/"
            );
            eprintln!(
                "  export ANTHROPIC_BASE_URL=https://...      # optional: a gateway or proxy"
            );
            eprintln!("  export CLAUDE_MODEL=claude-haiku-4-5       # optional: default claude-sonnet-4-5");
            eprintln!("  cargo run -p claude-agent-sdk --features claude --example claude_pipeline -- \"your topic\"");
            std::process::exit(2);
        }
    };
    let model = std::env::var("CLAUDE_MODEL").unwrap_or_else(|_| "claude-sonnet-4-5".into());
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "how sailors predicted tides before computers".into());

    let researcher = ClaudeAgent::new("researcher", &provider)
        .with_model(&model)
        .with_system_prompt(
            "You are a careful researcher. Answer with 5-8 factual bullet points, no introduction.",
        )
        .with_prompt_template(PromptTemplate::new("Research this topic: {{input}}"))
        .with_max_tokens(800);
    let writer = ClaudeAgent::new("writer", &provider)
        .with_model(&model)
        .with_system_prompt(
            "You turn research notes into a short, vivid article of about 250 words.",
        )
        .with_prompt_template(PromptTemplate::new(
            "Write the article from these notes:\n\n{{input}}",
        ))
        .with_max_tokens(1200)
        .with_temperature(0.8);
    let editor = ClaudeAgent::new("editor", &provider)
        .with_model(&model)
        .with_system_prompt("You are an exacting editor. Return only the improved article.")
        .with_prompt_template(PromptTemplate::new(
            "Tighten and polish this article:\n\n{{input}}",
        ))
        .with_max_tokens(1200)
        .on_text_delta(|delta| {
            if delta.is_first {
                println!("\n--- {} (streaming) ---", delta.agent);
            }
            print!("{}", delta.text);
            let _ = std::io::stdout().flush();
        });

    let agents: Vec<Box<dyn Agent>> =
        vec![Box::new(researcher), Box::new(writer), Box::new(editor)];
    let pipeline = SequentialOrchestrator::new()
        .with_max_retries(3)
        .with_agent_timeout(Duration::from_secs(180))
        .with_timeout(Duration::from_secs(600));
    eprintln!("researching \"{topic}\" with {model}…");
    match pipeline
        .orchestrate(agents, OrchestratorInput::new(topic))
        .await
    {
        Ok(output) => {
            println!("\n");
            for (execution, step) in output
                .execution_trace
                .successes()
                .zip(["research", "draft", "edit"])
            {
                eprintln!(
                    "{step:>8}: {} in {} ms",
                    execution.agent_name,
                    execution.duration_ms.unwrap_or_default()
                );
            }
            let usage = output.total_usage();
            eprintln!(
                "   total: {} input + {} output tokens, cost {}",
                usage.input_tokens,
                usage.output_tokens,
                usage
                    .cost_usd
                    .map_or("unknown".into(), |c| format!("${c:.4}"))
            );
        }
        Err(error) => {
            eprintln!("\nclaude_pipeline failed: {error}");
            std::process::exit(1);
        }
    }
}
