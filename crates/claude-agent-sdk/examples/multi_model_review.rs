//! A parallel review of one piece of code by several models: Claude Sonnet and
//! Haiku on the Anthropic API, and any model behind an OpenAI-compatible API
//! (OpenAI itself, or a local Ollama, vLLM, llama.cpp or LM Studio server).
//!
//! ```text
//! ANTHROPIC_API_KEY=sk-ant-... \
//!   cargo run -p claude-agent-sdk --features claude,openai --example multi_model_review -- path/to/file.rs
//!
//! # or with a local model only:
//! OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2 \
//!   cargo run -p claude-agent-sdk --features claude,openai --example multi_model_review
//! ```
//!
//! Reviewers whose back end is not configured are left out; with none at all
//! the example says what to set and exits with status 2, before any request.

use std::time::Duration;

use claude_agent_sdk::agents::{ClaudeAgent, OpenAiCompatibleAgent, Provider};
use claude_agent_sdk::orchestration::{
    Agent, JoinPolicy, Orchestrator, OrchestratorInput, ParallelOrchestrator,
};

const SAMPLE: &str = r#"fn average(values: &[i32]) -> i32 {
    let mut sum = 0;
    for i in 0..=values.len() {
        sum += values[i];
    }
    sum / values.len() as i32
}"#;

const SYSTEM: &str =
    "You are a senior reviewer. List the bugs and risks you find, most severe first, \
                      each in one line, then give a one-line verdict.";

fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() {
    let mut reviewers: Vec<Box<dyn Agent>> = Vec::new();
    let mut problems = Vec::new();

    match Provider::anthropic() {
        Ok(anthropic) => {
            for (name, model) in [
                ("sonnet", "claude-sonnet-4-5"),
                ("haiku", "claude-haiku-4-5"),
            ] {
                reviewers.push(Box::new(
                    ClaudeAgent::new(name, &anthropic)
                        .with_model(model)
                        .with_system_prompt(SYSTEM)
                        .with_max_tokens(700),
                ));
            }
        }
        Err(error) => problems.push(format!("Claude reviewers skipped: {error}")),
    }

    if set("OPENAI_API_KEY") || set("OPENAI_BASE_URL") {
        let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
        // A local server needs no key; OpenAI itself does.
        match Provider::openai_builder().build() {
            Ok(openai) => reviewers.push(Box::new(
                OpenAiCompatibleAgent::new(model.clone(), &openai, model)
                    .with_system_prompt(SYSTEM)
                    .with_max_tokens(700),
            )),
            Err(error) => problems.push(format!("OpenAI-compatible reviewer skipped: {error}")),
        }
    } else {
        problems.push(
            "OpenAI-compatible reviewer skipped: neither OPENAI_API_KEY nor OPENAI_BASE_URL is set"
                .into(),
        );
    }

    if reviewers.is_empty() {
        for problem in &problems {
            eprintln!("multi_model_review: {problem}");
        }
        eprintln!();
        eprintln!("This example needs at least one model back end. Set one or more of:");
        eprintln!();
        eprintln!(
            "  export ANTHROPIC_API_KEY=sk-ant-...                 # Claude Sonnet and Haiku"
        );
        eprintln!("  export OPENAI_API_KEY=sk-...                        # OpenAI (OPENAI_MODEL, default gpt-4o-mini)");
        eprintln!("  export OPENAI_BASE_URL=http://localhost:11434/v1    # or a local OpenAI-compatible server");
        eprintln!(
            "  export OPENAI_MODEL=llama3.2                        #   and the model it serves"
        );
        eprintln!();
        eprintln!("  cargo run -p claude-agent-sdk --features claude,openai --example multi_model_review -- [file]");
        std::process::exit(2);
    }
    for problem in &problems {
        eprintln!("note: {problem}");
    }

    let code = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("multi_model_review: cannot read {path}: {error}");
                std::process::exit(2);
            }
        },
        None => SAMPLE.to_owned(),
    };

    let review = ParallelOrchestrator::new()
        .with_join_policy(JoinPolicy::Any) // useful as soon as one reviewer answers
        .with_max_retries(3)
        .with_agent_timeout(Duration::from_secs(120));
    eprintln!("asking {} reviewer(s)…", reviewers.len());
    match review
        .orchestrate(
            reviewers,
            OrchestratorInput::new(format!("Review this code:\n\n{code}")),
        )
        .await
    {
        Ok(output) => {
            println!("{}", output.result);
            for failure in &output.failures {
                eprintln!("reviewer {} failed: {}", failure.agent_name, failure.error);
            }
            let usage = output.total_usage();
            eprintln!(
                "total: {} input + {} output tokens",
                usage.input_tokens, usage.output_tokens
            );
        }
        Err(error) => {
            eprintln!("multi_model_review failed: {error}");
            std::process::exit(1);
        }
    }
}
