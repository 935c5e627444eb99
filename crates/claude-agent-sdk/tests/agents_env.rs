//! Providers configured from the environment (`ANTHROPIC_API_KEY`,
//! `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`).
//!
//! One test function on purpose: it changes the process environment, which no
//! other thread of this test binary may read at the same time.

mod agents_support;

use agents_support::{Reply, TestServer};
use claude_agent_sdk::agents::{ClaudeAgent, OpenAiCompatibleAgent, Provider};
use claude_agent_sdk::orchestration::{Agent, AgentInput, OrchestrationError};
use serde_json::json;

#[test]
fn providers_read_their_key_and_base_url_from_the_environment() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ] {
        std::env::remove_var(var);
    }

    // No key: a configuration error that says what to set, before any request.
    let error = Provider::anthropic().unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
    assert!(error.to_string().contains("ANTHROPIC_API_KEY"), "{error}");
    assert!(ClaudeAgent::from_env("a").is_err());
    let error = Provider::openai().unwrap_err();
    assert!(error.to_string().contains("OPENAI_API_KEY"), "{error}");
    let keyless = Provider::anthropic_builder().build().unwrap();
    assert_eq!(keyless.base_url(), "https://api.anthropic.com");
    let error = runtime
        .block_on(ClaudeAgent::new("a", &keyless).execute(AgentInput::new("q")))
        .unwrap_err();
    assert!(
        error.to_string().contains("set ANTHROPIC_API_KEY"),
        "{error}"
    );

    runtime.block_on(async {
        let anthropic = TestServer::start(vec![Reply::json(json!({
            "id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "from env"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 2}
        }))])
        .await;
        let openai = TestServer::start(vec![Reply::json(json!({
            "choices": [{"message": {"content": "from env too"}, "finish_reason": "stop"}]
        }))])
        .await;
        std::env::set_var("ANTHROPIC_API_KEY", "sk-ant-env");
        std::env::set_var("ANTHROPIC_BASE_URL", &anthropic.url);
        std::env::set_var("OPENAI_API_KEY", "sk-env");
        std::env::set_var("OPENAI_BASE_URL", format!("{}/v1/", openai.url));

        let claude = ClaudeAgent::from_env("a").unwrap().with_streaming(false);
        assert_eq!(
            claude.execute(AgentInput::new("q")).await.unwrap().content,
            "from env"
        );
        assert_eq!(anthropic.received()[0].headers["x-api-key"], "sk-ant-env");

        let provider = Provider::openai().unwrap();
        let agent = OpenAiCompatibleAgent::new("o", &provider, "gpt-4o-mini").with_streaming(false);
        assert_eq!(
            agent.execute(AgentInput::new("q")).await.unwrap().content,
            "from env too"
        );
        let request = &openai.received()[0];
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.headers["authorization"], "Bearer sk-env");
    });
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ] {
        std::env::remove_var(var);
    }
}
