//! `OpenAiCompatibleAgent` against loopback servers speaking OpenAI's
//! chat-completions format (JSON and SSE ending in `[DONE]`), with the error
//! bodies of OpenAI, vLLM and Ollama, timeouts and broken connections.

mod agents_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agents_support::{refused_url, resetting_server, Reply, TestServer};
use claude_agent_sdk::agents::{OpenAiCompatibleAgent, Pricing, Provider};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, OrchestrationError, Orchestrator, OrchestratorInput, SequentialOrchestrator,
    Usage,
};
use serde_json::json;
use tokio::sync::Notify;

fn local(url: &str) -> Provider {
    Provider::builder("vllm", format!("{url}/v1"))
        .with_request_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn completion(text: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1_741_569_952,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29, "prompt_tokens_details": {"cached_tokens": 0}},
        "system_fingerprint": null
    })
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    let data = json!({
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_694_268_190,
        "model": "llama3.2", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {data}\n\n")
}

fn quick_retries(retries: usize) -> SequentialOrchestrator {
    let orchestrator = SequentialOrchestrator::new();
    let config = orchestrator
        .config()
        .clone()
        .with_max_retries(retries)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
    orchestrator.with_config(config)
}

#[tokio::test]
async fn a_json_reply_fills_content_and_usage() {
    let server = TestServer::start(vec![
        Reply::json(completion("Looks correct.")).header("x-request-id", "req-abc")
    ])
    .await;
    let agent = OpenAiCompatibleAgent::new(
        "reviewer",
        &local(&server.url),
        "meta-llama/Llama-3.1-8B-Instruct",
    )
    .with_system_prompt("Review code.")
    .with_max_tokens(100)
    .with_temperature(0.0)
    .with_stop_sequence("###")
    .with_extra_body("seed", json!(7))
    .with_pricing(Pricing::per_million_tokens(1.0, 2.0))
    .with_streaming(false);
    let output = agent
        .execute(AgentInput::new("fn main() {}"))
        .await
        .unwrap();
    assert_eq!(output.content, "Looks correct.");
    assert_eq!(output.data["stop_reason"], "stop");
    assert_eq!(output.data["request_id"], "req-abc");
    assert_eq!(output.metadata["provider"], "vllm");
    let usage = Usage::from_output(&output).unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (19, 10));
    assert!((usage.cost_usd.unwrap() - (19.0 + 20.0) / 1e6).abs() < 1e-12);

    let request = &server.received()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert!(
        request.headers.get("authorization").is_none(),
        "no key, no Authorization header"
    );
    assert_eq!(
        request.body,
        json!({
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "messages": [{"role": "system", "content": "Review code."}, {"role": "user", "content": "fn main() {}"}],
            "max_tokens": 100,
            "temperature": 0.0,
            "stop": ["###"],
            "seed": 7
        })
    );
}

#[tokio::test]
async fn a_streamed_reply_reports_deltas_and_the_final_usage() {
    let gate = Arc::new(Notify::new());
    let usage_chunk = format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "model": "llama3.2", "choices": [],
               "usage": {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}})
    );
    let server = TestServer::start(vec![Reply::Stream {
        before: vec![
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hel"}), None),
        ],
        gate: Some(Arc::clone(&gate)),
        after: vec![
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            usage_chunk,
            "data: [DONE]\n\n".into(),
        ],
        gap: Duration::from_millis(5),
    }])
    .await;
    let provider = Provider::builder("openai", format!("{}/v1", server.url))
        .with_api_key("sk-test")
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let agent = OpenAiCompatibleAgent::new("a", &provider, "llama3.2").on_text_delta(move |d| {
        log.lock().unwrap().push(d.text.to_owned());
        gate.notify_one();
    });
    let output = agent.execute(AgentInput::new("hi")).await.unwrap();
    assert_eq!(output.content, "Hello");
    assert_eq!(*seen.lock().unwrap(), vec!["Hel", "lo"]);
    assert_eq!(Usage::from_output(&output), Some(Usage::new(8, 3)));
    let request = &server.received()[0];
    assert_eq!(request.headers["authorization"], "Bearer sk-test");
    assert_eq!(request.body["stream"], true);
    assert_eq!(
        request.body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn a_429_with_retry_after_ms_is_honoured_then_succeeds() {
    let server = TestServer::start(vec![
        Reply::status_json(429, json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}))
            .header("retry-after-ms", "400"),
        Reply::json(completion("done")),
    ])
    .await;
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(
        OpenAiCompatibleAgent::new("a", &local(&server.url), "m").with_streaming(false),
    )];
    let started = Instant::now();
    let output = quick_retries(2)
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.result, "done");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    let error = output.execution_trace.agent_executions[0]
        .error
        .clone()
        .unwrap();
    assert!(error.contains("Rate limit reached for requests"), "{error}");
}

#[tokio::test]
async fn overload_and_server_errors_are_retried() {
    let server = TestServer::start(vec![
        Reply::status_json(529, json!({"error": {"message": "overloaded", "type": "server_error"}})),
        Reply::status_json(503, json!({"object": "error", "message": "engine busy", "type": "ServiceUnavailableError", "code": 503})),
        Reply::json(completion("ok")),
    ])
    .await;
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(OpenAiCompatibleAgent::new(
        "a",
        &local(&server.url),
        "m",
    ))];
    let output = quick_retries(3)
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.result, "ok");
    assert_eq!(server.request_count(), 3);
    let errors: Vec<String> = output
        .execution_trace
        .failures()
        .filter_map(|e| e.error.clone())
        .collect();
    assert!(errors[1].contains("engine busy"), "{errors:?}");
}

#[tokio::test]
async fn a_401_is_permanent_and_carries_the_providers_message() {
    let server = TestServer::start(vec![Reply::status_json(
        401,
        json!({"error": {"message": "Incorrect API key provided: sk-bad.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
    )])
    .await;
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(OpenAiCompatibleAgent::new(
        "a",
        &local(&server.url),
        "m",
    ))];
    let error = quick_retries(3)
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Incorrect API key provided"),
        "{error}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn an_ollama_style_404_is_permanent() {
    let server = TestServer::start(vec![Reply::status_json(
        404,
        json!({"error": "model \"llama9\" not found, try pulling it first"}),
    )])
    .await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "llama9")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("try pulling it first"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_replies_are_permanent() {
    let server = TestServer::start(vec![Reply::raw(
        200,
        "application/json",
        "<html>oops</html>",
    )])
    .await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_))
            && error.to_string().contains("malformed"),
        "{error}"
    );

    let server =
        TestServer::start(vec![Reply::sse(vec!["data: {\"choices\": [\n\n".into()])]).await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("malformed stream chunk"),
        "{error}"
    );

    // Cut short before `[DONE]` or a finish reason: retryable.
    let server = TestServer::start(vec![Reply::sse(vec![chunk(
        json!({"content": "par"}),
        None,
    )])])
    .await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn an_error_mid_stream_keeps_the_request_id() {
    let server = TestServer::start(vec![Reply::sse(vec![
        chunk(json!({"content": "par"}), None),
        "data: {\"error\": {\"message\": \"boom\", \"type\": \"server_error\"}}\n\n".into(),
    ])
    .header("x-request-id", "req-mid")])
    .await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("boom [request id req-mid]"),
        "{error}"
    );
    let details = error.details().expect("the reply's details");
    assert_eq!(details.request_id.as_deref(), Some("req-mid"));
}

#[tokio::test]
async fn hangs_refusals_and_resets_are_retryable() {
    let server = TestServer::start(vec![Reply::Hang]).await;
    let impatient = Provider::builder("vllm", format!("{}/v1", server.url))
        .with_request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = OpenAiCompatibleAgent::new("a", &impatient, "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");

    let error = OpenAiCompatibleAgent::new("a", &local(&refused_url()), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::Transient { .. }),
        "{error}"
    );

    let (url, _task) = resetting_server().await;
    let error = OpenAiCompatibleAgent::new("a", &local(&url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn stream_usage_can_be_turned_off_for_servers_that_reject_it() {
    let server = TestServer::start(vec![Reply::sse(vec![
        chunk(json!({"content": "x"}), Some("stop")),
        "data: [DONE]\n\n".into(),
    ])])
    .await;
    let agent = OpenAiCompatibleAgent::new("a", &local(&server.url), "m").with_stream_usage(false);
    let output = agent.execute(AgentInput::new("q")).await.unwrap();
    assert_eq!(output.content, "x");
    assert!(server.received()[0].body.get("stream_options").is_none());
    let invalid = OpenAiCompatibleAgent::new("a", &local(&server.url), " ")
        .execute(AgentInput::new("q"))
        .await;
    assert!(matches!(invalid, Err(OrchestrationError::InvalidConfig(_))));
}

#[test]
fn the_model_can_be_replaced_like_claudes() {
    let agent = OpenAiCompatibleAgent::new("gpt", &local("http://127.0.0.1:9"), "first")
        .with_model("second");
    assert_eq!(agent.model(), "second");
}
