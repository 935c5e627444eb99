//! `ClaudeAgent` against loopback servers speaking the Anthropic Messages API:
//! JSON and SSE replies, retryable and permanent failures, timeouts, refused and
//! reset connections, a missing key, and the shared per-provider limiter.

mod agents_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agents_support::{event, refused_url, resetting_server, Reply, TestServer};
use claude_agent_sdk::agents::{
    ClaudeAgent, PriceTable, Pricing, PromptTemplate, Provider, ProviderLimits,
};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, OrchestrationError, Orchestrator, OrchestratorInput, ParallelOrchestrator,
    SequentialOrchestrator, Usage,
};
use serde_json::json;
use tokio::sync::Notify;

fn provider(url: &str) -> Provider {
    Provider::builder("anthropic", url)
        .with_api_key("sk-ant-test")
        .with_request_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn message(text: &str) -> serde_json::Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    })
}

fn anthropic_error(kind: &str, message: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}

/// The events of a streamed reply saying `parts` joined, split into the events
/// before the first text delta (included) and after it.
/// A stream that sends its first events with `text`, then nothing ever again.
fn stalled_stream(text: &str) -> Reply {
    let (before, _) = stream_events(&[text]);
    Reply::Stream {
        before,
        gate: Some(Arc::new(Notify::new())),
        after: vec!["x".into()],
        gap: Duration::ZERO,
    }
}

fn stream_events(parts: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut before = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": "msg_stream", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    let delta = |text: &str| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        )
    };
    before.push(delta(parts[0]));
    let mut after: Vec<String> = parts[1..].iter().map(|p| delta(p)).collect();
    after.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    after.push(event("message_delta", &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}})));
    after.push(event("message_stop", &json!({"type": "message_stop"})));
    (before, after)
}

fn quick_retries(orchestrator: SequentialOrchestrator, retries: usize) -> SequentialOrchestrator {
    let config = orchestrator
        .config()
        .clone()
        .with_max_retries(retries)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
    orchestrator.with_config(config)
}

#[tokio::test]
async fn a_json_reply_fills_content_usage_and_metadata() {
    let server = TestServer::start(vec![
        Reply::json(message("Tides follow the moon.")).header("request-id", "req_123")
    ])
    .await;
    let prices =
        PriceTable::new().with_price("claude-sonnet-4-5", Pricing::per_million_tokens(3.0, 15.0));
    let provider = Provider::builder("anthropic", &server.url)
        .with_api_key("sk-ant-test")
        .with_prices(prices)
        .build()
        .unwrap();
    let agent = ClaudeAgent::new("researcher", &provider)
        .with_model("claude-sonnet-4-5")
        .with_system_prompt("You are terse.")
        .with_prompt_template(PromptTemplate::new(
            "Research: {{input}} for {{metadata.audience}}",
        ))
        .with_context_in_prompt(true)
        .with_max_tokens(256)
        .with_temperature(0.3)
        .with_stop_sequence("END")
        .with_streaming(false);
    let input = AgentInput::new("tides")
        .with_metadata("audience", "kids")
        .with_context(json!({"depth": 1}));
    let output = agent.execute(input).await.unwrap();

    assert_eq!(output.content, "Tides follow the moon.");
    assert_eq!(output.data["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(output.data["stop_reason"], "end_turn");
    assert_eq!(output.data["request_id"], "req_123");
    assert_eq!(output.data["message_id"], "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(output.metadata["input_tokens"], "25");
    assert_eq!(output.metadata["output_tokens"], "9");
    assert_eq!(output.metadata["request_id"], "req_123");
    let usage = Usage::from_output(&output).unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (25, 9));
    let cost = usage.cost_usd.unwrap();
    assert!(
        (cost - (25.0 * 3.0 + 9.0 * 15.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );

    let request = &server.received()[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.headers["x-api-key"], "sk-ant-test");
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        request.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "Research: tides for kids\n\nContext (JSON):\n{\n  \"depth\": 1\n}"}],
            "temperature": 0.3,
            "stop_sequences": ["END"]
        })
    );
}

#[tokio::test]
async fn a_streamed_reply_reports_text_deltas_as_they_arrive() {
    // The server holds the rest of the stream back until the agent has reported
    // the first delta: the test only finishes if deltas arrive as they stream.
    let gate = Arc::new(Notify::new());
    let (before, after) = stream_events(&["Tides ", "follow ", "the moon."]);
    let server = TestServer::start(vec![Reply::Stream {
        before,
        gate: Some(Arc::clone(&gate)),
        after,
        gap: Duration::from_millis(5),
    }])
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let agent = ClaudeAgent::new("writer", &provider(&server.url)).on_text_delta(move |delta| {
        log.lock()
            .unwrap()
            .push((delta.text.to_owned(), delta.is_first));
        gate.notify_one();
    });
    let output = agent.execute(AgentInput::new("tides")).await.unwrap();

    assert_eq!(output.content, "Tides follow the moon.");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("Tides ".to_owned(), true),
            ("follow ".to_owned(), false),
            ("the moon.".to_owned(), false)
        ]
    );
    let usage = Usage::from_output(&output).unwrap();
    assert_eq!(usage, Usage::new(31, 15).with_cache_tokens(0, 4));
    assert_eq!(output.data["stop_reason"], "end_turn");
    assert_eq!(server.received()[0].body["stream"], true);
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_then_succeeds() {
    let server = TestServer::start(vec![
        Reply::status_json(
            429,
            anthropic_error(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        )
        .header("retry-after", "1")
        .header("request-id", "req_limited"),
        Reply::json(message("after the wait")),
    ])
    .await;
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(
        ClaudeAgent::new("a", &provider(&server.url)).with_streaming(false),
    )];
    let started = Instant::now();
    let output = quick_retries(SequentialOrchestrator::new(), 2)
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.result, "after the wait");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry-after was not honoured"
    );
    assert_eq!(server.request_count(), 2);
    let first = &output.execution_trace.agent_executions[0];
    let error = first.error.as_deref().unwrap();
    assert!(
        error.contains("429")
            && error.contains("rate_limit_error")
            && error.contains("per-minute rate limit"),
        "{error}"
    );
    assert!(error.contains("req_limited"), "{error}");
}

#[tokio::test]
async fn a_529_overloaded_is_retried() {
    let server = TestServer::start(vec![
        Reply::status_json(529, anthropic_error("overloaded_error", "Overloaded")),
        Reply::json(message("fine now")),
    ])
    .await;
    let agent = ClaudeAgent::new("a", &provider(&server.url)).with_streaming(false);
    let error = agent.execute(AgentInput::new("q")).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error
            .to_string()
            .contains("529 Overloaded (overloaded_error): Overloaded"),
        "{error}"
    );

    let output = quick_retries(SequentialOrchestrator::new(), 2)
        .orchestrate(vec![Box::new(agent)], OrchestratorInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.result, "fine now");
}

#[tokio::test]
async fn server_errors_are_retryable() {
    for status in [500, 502, 503, 504] {
        let server = TestServer::start(vec![Reply::status_json(
            status,
            anthropic_error("api_error", "Internal server error"),
        )])
        .await;
        let error = ClaudeAgent::new("a", &provider(&server.url))
            .execute(AgentInput::new("q"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, OrchestrationError::Transient { .. }),
            "{status}: {error}"
        );
    }
}

#[tokio::test]
async fn a_401_is_permanent_and_carries_the_providers_message() {
    let server = TestServer::start(vec![Reply::status_json(
        401,
        anthropic_error("authentication_error", "invalid x-api-key"),
    )
    .header("request-id", "req_auth")])
    .await;
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(ClaudeAgent::new("a", &provider(&server.url)))];
    let error = quick_retries(SequentialOrchestrator::new(), 3)
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("401") && text.contains("(authentication_error): invalid x-api-key"),
        "{text}"
    );
    assert!(text.contains("req_auth"), "{text}");
    assert_eq!(
        server.request_count(),
        1,
        "a permanent error must not be retried"
    );
    // The source error stays readable through the orchestration's layers.
    assert!(!error.is_retryable());
    let details = error.details().expect("the provider's details");
    assert_eq!(details.status, Some(401));
    assert_eq!(details.request_id.as_deref(), Some("req_auth"));
    assert_eq!(details.code.as_deref(), Some("authentication_error"));
}

#[tokio::test]
async fn a_200_carrying_an_error_object_is_that_error() {
    // Every field of a message is optional: an error object in a 200 (some
    // proxies answer so) must not read as an empty reply.
    let server = TestServer::start(vec![
        Reply::json(anthropic_error("overloaded_error", "Overloaded"))
            .header("request-id", "req_ok"),
        Reply::json(anthropic_error("invalid_request_error", "bad field")),
    ])
    .await;
    let agent = ClaudeAgent::new("a", &provider(&server.url)).with_streaming(false);
    let error = agent.execute(AgentInput::new("q")).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error
            .to_string()
            .contains("(overloaded_error): Overloaded [request id req_ok]"),
        "{error}"
    );
    let error = agent.execute(AgentInput::new("q")).await.unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_)),
        "{error}"
    );
    assert!(error.to_string().contains("bad field"), "{error}");
}

#[tokio::test]
async fn an_error_mid_stream_keeps_the_request_id() {
    let (mut before, _) = stream_events(&["partial"]);
    before.push(event(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let server =
        TestServer::start(vec![Reply::sse(before).header("request-id", "req_stream")]).await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("[request id req_stream]"),
        "{error}"
    );
    let details = error.details().expect("the reply's details");
    assert_eq!(details.request_id.as_deref(), Some("req_stream"));
    assert_eq!(details.source.as_deref(), Some("anthropic"));
}

#[tokio::test]
async fn a_long_error_body_still_shows_the_providers_words() {
    // Longer than the part of an error body that is read.
    let long = format!("prompt is too long: {}", "x".repeat(100_000));
    let server = TestServer::start(vec![Reply::status_json(
        400,
        anthropic_error("invalid_request_error", &long),
    )])
    .await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("prompt is too long"),
        "{}",
        &text[..text.len().min(300)]
    );
    assert!(!text.contains("(empty body)"));
}

#[test]
fn debug_output_never_shows_the_key_or_header_values() {
    let builder = Provider::builder("anthropic", "http://127.0.0.1:9")
        .with_api_key("sk-ant-SECRET")
        .with_header("x-gateway-key", "gw-SECRET");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("x-gateway-key"), "{shown}");
    let provider = builder.build().unwrap();
    let shown = format!("{provider:?} {:?}", ClaudeAgent::new("a", &provider));
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[tokio::test]
async fn credentials_in_the_base_url_are_never_shown() {
    // Nothing listens on port 9: the request fails below HTTP, and the
    // message names the URL it was sent to.
    let builder = Provider::builder("proxy", "http://me:url-SECRET@127.0.0.1:9/v1")
        .with_api_key("sk-ant-key");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let provider = builder.build().unwrap();
    let shown = format!("{provider:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("127.0.0.1:9"), "{shown}");
    let error = ClaudeAgent::new("a", &provider)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[tokio::test]
async fn other_client_errors_are_permanent() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
    ] {
        let server = TestServer::start(vec![Reply::status_json(
            status,
            anthropic_error(kind, "nope"),
        )])
        .await;
        let error = ClaudeAgent::new("a", &provider(&server.url))
            .execute(AgentInput::new("q"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, OrchestrationError::AgentError(_)),
            "{status}: {error}"
        );
        assert!(error.to_string().contains(kind), "{error}");
    }
    // A proxy's HTML error page still yields a readable message.
    let server = TestServer::start(vec![Reply::raw(
        502,
        "text/html",
        "<html>Bad Gateway</html>",
    )])
    .await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        error.is_retryable() && error.to_string().contains("<html>Bad Gateway</html>"),
        "{error}"
    );
}

#[tokio::test]
async fn a_malformed_body_is_a_permanent_error() {
    let server = TestServer::start(vec![Reply::raw(
        200,
        "application/json",
        "{\"id\": \"msg\", \"content\": ",
    )])
    .await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_)),
        "{error}"
    );
    assert!(error.to_string().contains("malformed reply"), "{error}");

    let server = TestServer::start(vec![Reply::sse(vec![
        "event: message_start\ndata: {not json\n\n".into(),
    ])])
    .await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("malformed stream event"),
        "{error}"
    );
}

#[tokio::test]
async fn stream_failures_are_retryable() {
    // An `error` event in the middle of the stream.
    let (mut before, _) = stream_events(&["partial"]);
    before.push(event(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let server = TestServer::start(vec![Reply::sse(before)]).await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        error.is_retryable() && error.to_string().contains("overloaded_error"),
        "{error}"
    );

    // A stream that ends before `message_stop`.
    let (before, _) = stream_events(&["cut"]);
    let server = TestServer::start(vec![Reply::sse(before)]).await;
    let error = ClaudeAgent::new("a", &provider(&server.url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        error.is_retryable() && error.to_string().contains("message_stop"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_hangs_times_out() {
    let server = TestServer::start(vec![Reply::Hang]).await;
    let impatient = Provider::builder("anthropic", &server.url)
        .with_api_key("k")
        .with_request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = ClaudeAgent::new("a", &impatient)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert!(error.is_retryable());

    // The orchestrator's attempt timeout cuts a hanging stream too.
    let server = TestServer::start(vec![stalled_stream("never finished")]).await;
    let agents: Vec<Box<dyn Agent>> =
        vec![Box::new(ClaudeAgent::new("slow", &provider(&server.url)))];
    let error = SequentialOrchestrator::new()
        .with_max_retries(0)
        .with_agent_timeout(Duration::from_millis(300))
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("timeout"), "{error}");
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_at_the_read_timeout() {
    // Two events arrive, then the server goes quiet for good.
    let server = TestServer::start(vec![stalled_stream("half an ans")]).await;
    let watchful = Provider::builder("anthropic", &server.url)
        .with_api_key("k")
        .with_request_timeout(Duration::from_secs(60))
        .with_read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let error = ClaudeAgent::new("a", &watchful)
        .with_streaming(true)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert!(error.is_retryable(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the read timeout, not the request timeout, ended it: {error}"
    );
}

#[tokio::test]
async fn refused_and_reset_connections_are_retryable() {
    let error = ClaudeAgent::new("a", &provider(&refused_url()))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::Transient { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("cannot connect"), "{error}");

    let (url, _task) = resetting_server().await;
    let error = ClaudeAgent::new("a", &provider(&url))
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::Transient { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_key_is_invalid_config_before_any_request() {
    let server = TestServer::start(vec![Reply::json(message("unused"))]).await;
    let keyless = Provider::builder("anthropic", &server.url).build().unwrap();
    let error = ClaudeAgent::new("a", &keyless)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
    assert!(error.to_string().contains("API key"), "{error}");
    assert_eq!(server.request_count(), 0);

    let error = ClaudeAgent::new("a", &provider(&server.url))
        .with_temperature(1.5)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
    assert!(matches!(
        Provider::builder("x", "ftp://example.invalid").build(),
        Err(OrchestrationError::InvalidConfig(_))
    ));
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn agents_of_one_provider_share_its_concurrency_limit() {
    let server = TestServer::start(vec![Reply::Delayed(
        Duration::from_millis(40),
        Box::new(Reply::json(message("ok"))),
    )])
    .await;
    let shared = Provider::builder("anthropic", &server.url)
        .with_api_key("k")
        .with_limits(ProviderLimits::new().with_max_concurrent(3))
        .build()
        .unwrap();
    let agents: Vec<Box<dyn Agent>> = (0..12)
        .map(|i| {
            Box::new(ClaudeAgent::new(format!("a{i}"), &shared).with_streaming(false))
                as Box<dyn Agent>
        })
        .collect();
    let output = ParallelOrchestrator::new()
        .with_parallel_limit(12)
        .orchestrate(agents, OrchestratorInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.agent_outputs.len(), 12);
    assert_eq!(server.request_count(), 12);
    assert!(
        server.peak_in_flight() <= 3,
        "peak {}",
        server.peak_in_flight()
    );
    assert!(
        server.connections() <= 3,
        "connections {}",
        server.connections()
    );
    assert_eq!(output.total_usage().input_tokens, 12 * 25);
}

#[tokio::test]
async fn a_requests_per_minute_limit_paces_the_provider() {
    let server = TestServer::start(vec![Reply::json(message("ok"))]).await;
    let paced = Provider::builder("anthropic", &server.url)
        .with_api_key("k")
        .with_limits(
            ProviderLimits::new()
                .with_requests_per_minute(600)
                .with_burst(1),
        )
        .build()
        .unwrap();
    let agent = ClaudeAgent::new("a", &paced).with_streaming(false);
    let started = Instant::now();
    for _ in 0..4 {
        agent.execute(AgentInput::new("q")).await.unwrap();
    }
    // 600 per minute is one every 100 ms: the 4th request starts 300 ms in.
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}
