//! The HTTP agents (`ClaudeAgent`, `OpenAiCompatibleAgent`) and their shared
//! `Provider` at the edges of what servers send: error objects in 200s and
//! streams, replies that are not messages or report no usage, several
//! choices, every `retry-after` date form, stalled error bodies, the limiter
//! after a pause, and permanent and retryable failures through nested runs.
#![cfg(all(feature = "claude", feature = "openai"))]

mod agents_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agents_support::{event, Reply, TestServer};
use claude_agent_sdk::agents::{
    ClaudeAgent, OpenAiCompatibleAgent, Provider, ProviderLimits, RateLimiter,
};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, ExecutionConfig, ExecutionContext, OrchestrationError, Orchestrator,
    OrchestratorAgent, OrchestratorInput, SequentialOrchestrator,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn anthropic(url: &str) -> Provider {
    Provider::builder("anthropic", url)
        .with_api_key("sk-ant-test")
        .with_request_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn local(url: &str) -> Provider {
    Provider::builder("vllm", format!("{url}/v1"))
        .with_request_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn message(text: &str) -> serde_json::Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 9}
    })
}

fn quick(retries: usize) -> SequentialOrchestrator {
    let o = SequentialOrchestrator::new();
    let config = o
        .config()
        .clone()
        .with_max_retries(retries)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(20));
    o.with_config(config)
}

/// A raw HTTP/1.1 server for one connection: reads the request, writes
/// `head_and_body` and then holds the connection open without a word, and
/// reports (through the returned receiver) when the client closed it.
async fn stalling_server(
    head_and_body: &'static str,
) -> (String, tokio::sync::oneshot::Receiver<Instant>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // Read the request head and body (enough for these small requests).
        let mut seen = Vec::new();
        let mut buffer = [0_u8; 4096];
        loop {
            let n = socket.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let _ = socket.write_all(head_and_body.as_bytes()).await;
        let _ = socket.flush().await;
        // Wait for the client to hang up.
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send(Instant::now());
    });
    (format!("http://{addr}"), rx)
}

// ---------------------------------------------------------------------------
// Limiter
// ---------------------------------------------------------------------------

/// After a `retry-after` pause, requests queued on a paced provider must still
/// start one pace interval apart — the pause must not release them all at once
/// (a burst far over the configured rate, right when the server asked to be
/// spared).
#[tokio::test(start_paused = true)]
async fn requests_queued_during_a_pause_keep_the_pace_after_it() {
    let limiter = Arc::new(
        RateLimiter::new(
            ProviderLimits::unlimited()
                .with_requests_per_minute(600) // one every 100 ms
                .with_burst(1),
        )
        .unwrap(),
    );
    let start = tokio::time::Instant::now();
    limiter.pause_for(Duration::from_secs(1));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let _permit = limiter.acquire().await;
                (tokio::time::Instant::now() - start).as_millis()
            })
        })
        .collect();
    let mut starts = Vec::new();
    for task in tasks {
        starts.push(task.await.unwrap());
    }
    starts.sort_unstable();
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 100,
            "requests started closer than the 100 ms pace after the pause: {starts:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Error mapping
// ---------------------------------------------------------------------------

/// An error object inside a stream with a numeric HTTP-like code (OpenRouter
/// documents `{"error":{"code":<number>,"message":…}}` as an SSE event of a
/// 200 for errors during generation) is classified like that
/// status: 503 is retryable.
#[tokio::test]
async fn a_stream_error_with_a_5xx_code_is_retryable() {
    let server = TestServer::start(vec![Reply::sse(vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"},\"finish_reason\":null}]}\n\n"
            .into(),
        "data: {\"error\":{\"message\":\"upstream overloaded\",\"code\":503}}\n\n".into(),
    ])])
    .await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("upstream overloaded"), "{error}");
    assert!(
        error.is_retryable(),
        "a 503 inside a stream must be retryable: {error}"
    );
}

/// OpenAI's own rate-limit error object (`type: "tokens"`,
/// `code: "rate_limit_exceeded"`) is a rate limit wherever it arrives.
#[tokio::test]
async fn an_openai_rate_limit_error_object_in_a_200_is_retryable() {
    let server = TestServer::start(vec![Reply::json(json!({"error": {
        "message": "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM)",
        "type": "tokens", "param": null, "code": "rate_limit_exceeded"
    }}))])
    .await;
    let error = OpenAiCompatibleAgent::new("a", &local(&server.url), "gpt-4o")
        .with_streaming(false)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Rate limit reached"), "{error}");
    assert!(
        error.is_retryable(),
        "a rate limit must be retryable: {error}"
    );
}

/// A 200 whose JSON is not a Messages API message (here an OpenAI completion,
/// as a mis-pointed gateway sends) is a malformed reply, not an empty success.
#[tokio::test]
async fn a_200_that_is_not_a_message_is_a_malformed_reply() {
    let server = TestServer::start(vec![Reply::json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
    }))])
    .await;
    let result = ClaudeAgent::new("a", &anthropic(&server.url))
        .with_streaming(false)
        .execute(AgentInput::new("q"))
        .await;
    match result {
        Err(OrchestrationError::AgentError(e)) => {
            assert!(e.to_string().contains("malformed"), "{e}")
        }
        other => panic!("expected a malformed-reply error, got {other:?}"),
    }
}

/// `retry-after` may be any HTTP-date form (RFC 9110 §5.6.7: recipients must
/// accept the obsolete RFC 850 and asctime forms too).
#[tokio::test]
async fn a_retry_after_in_the_obsolete_http_date_forms_is_honoured() {
    let when = chrono::Utc::now() + chrono::TimeDelta::seconds(30);
    for value in [
        when.format("%A, %d-%b-%y %H:%M:%S GMT").to_string(), // RFC 850
        when.format("%a %b %e %H:%M:%S %Y").to_string(),      // asctime
    ] {
        let server = TestServer::start(vec![Reply::status_json(
            503,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
        )
        .header("retry-after", &value)])
        .await;
        let error = ClaudeAgent::new("a", &anthropic(&server.url))
            .with_streaming(false)
            .execute(AgentInput::new("q"))
            .await
            .unwrap_err();
        let hint = error.retry_after();
        assert!(
            hint.is_some_and(|d| d >= Duration::from_secs(20)),
            "retry-after `{value}` was not read: {hint:?}"
        );
    }
}

/// The status line of a 429 says all that matters; an error body that stalls
/// must not hold the error back until the request timeout (600 s by default).
#[tokio::test]
async fn a_stalled_error_body_does_not_delay_the_429() {
    let (url, _closed) = stalling_server(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: 500\r\n\r\n{\"type\":\"error\",",
    )
    .await;
    let provider = Provider::builder("anthropic", &url)
        .with_api_key("k")
        .with_request_timeout(Duration::from_secs(6))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        ClaudeAgent::new("a", &provider)
            .with_streaming(false)
            .execute(AgentInput::new("q")),
    )
    .await
    .expect("the agent returned at all")
    .unwrap_err();
    assert!(error.to_string().contains("429"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the 429 took {:?} to surface",
        started.elapsed()
    );
}

/// Some OpenAI-compatible servers (text-generation-webui's API among them)
/// put the piece of a streamed reply in both `delta` and `message`: the
/// chunk is still a chunk, not a malformed reply.
#[tokio::test]
async fn a_stream_chunk_with_both_delta_and_message_is_read() {
    let server = TestServer::start(vec![Reply::sse(vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n".into(),
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"message\":{},\"finish_reason\":\"stop\"}]}\n\n".into(),
        "data: [DONE]\n\n".into(),
    ])])
    .await;
    let output = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .execute(AgentInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.content, "Hi");
}

/// A reply that reports no usage at all is not priced at $0: its cost is
/// unknown, not free (both agents; a price is configured).
#[tokio::test]
async fn a_reply_without_usage_is_not_priced_at_zero() {
    let price = claude_agent_sdk::agents::Pricing::per_million_tokens(2.5, 10.0);
    let openai = TestServer::start(vec![Reply::json(json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "a long answer"}, "finish_reason": "stop"}]
    }))])
    .await;
    let claude = TestServer::start(vec![Reply::json(json!({
        "id": "msg", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "a long answer"}], "stop_reason": "end_turn"
    }))])
    .await;
    let outputs = [
        OpenAiCompatibleAgent::new("a", &local(&openai.url), "m")
            .with_pricing(price)
            .with_streaming(false)
            .execute(AgentInput::new("q"))
            .await
            .unwrap(),
        ClaudeAgent::new("c", &anthropic(&claude.url))
            .with_pricing(price)
            .with_streaming(false)
            .execute(AgentInput::new("q"))
            .await
            .unwrap(),
    ];
    for output in outputs {
        let usage = claude_agent_sdk::orchestration::Usage::from_output(&output);
        assert_eq!(
            usage.and_then(|u| u.cost_usd),
            None,
            "{}: unknown usage reported as a known cost: {:?} / metadata {:?}",
            output.metadata["provider"],
            output.data["usage"],
            output.metadata.get("cost_usd")
        );
    }
}

/// With `n: 2` (through `with_extra_body`) a stream interleaves the chunks of
/// two choices; the reply is choice 0's text, as for a whole reply.
#[tokio::test]
async fn a_streamed_reply_with_two_choices_keeps_choice_zero() {
    let piece = |index: u32, text: &str, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish}]})
        )
    };
    let server = TestServer::start(vec![Reply::sse(vec![
        piece(0, "Hello", None),
        piece(1, "Bonjour", None),
        piece(0, " world", Some("stop")),
        piece(1, " monde", Some("length")),
        "data: [DONE]\n\n".into(),
    ])])
    .await;
    let output = OpenAiCompatibleAgent::new("a", &local(&server.url), "m")
        .with_extra_body("n", json!(2))
        .execute(AgentInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.content, "Hello world");
    assert_eq!(output.data["stop_reason"], "stop");
}

/// A whole reply cut short (fewer bytes than its content-length, then the
/// connection closes) is a retryable transport failure.
#[tokio::test]
async fn a_reply_cut_short_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0_u8; 8192];
        let _ = socket.read(&mut buffer).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"id\":\"msg\",\"content\":[{\"type\":\"text\",")
            .await;
        drop(socket);
    });
    let error = ClaudeAgent::new("a", &anthropic(&format!("http://{addr}")))
        .with_streaming(false)
        .execute(AgentInput::new("q"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

// ---------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------

/// A 401 inside a nested run stays permanent: the outer run does not retry it.
#[tokio::test]
async fn a_401_in_a_nested_run_is_not_retried_by_the_outer_run() {
    let server = TestServer::start(vec![Reply::status_json(
        401,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
    )])
    .await;
    let inner = OrchestratorAgent::new(
        "inner",
        "nested",
        quick(2),
        vec![Box::new(
            ClaudeAgent::new("a", &anthropic(&server.url)).with_streaming(false),
        )],
    );
    let error = quick(3)
        .orchestrate(vec![Box::new(inner)], OrchestratorInput::new("q"))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert_eq!(server.request_count(), 1, "{error}");
    assert_eq!(error.details().and_then(|d| d.status), Some(401));
}

/// A 500 with `retry-after` failing a nested run: the outer run's retry still
/// waits at least that long (no limiter pause is involved for a 500).
#[tokio::test]
async fn a_retry_after_from_a_nested_run_floors_the_outer_retry() {
    let server = TestServer::start(vec![
        Reply::status_json(
            500,
            json!({"type": "error", "error": {"type": "api_error", "message": "oops"}}),
        )
        .header("retry-after", "1"),
        Reply::json(message("ok")),
    ])
    .await;
    let inner = OrchestratorAgent::new(
        "inner",
        "nested",
        quick(0),
        vec![Box::new(
            ClaudeAgent::new("a", &anthropic(&server.url)).with_streaming(false),
        )],
    );
    let started = Instant::now();
    let output = quick(1)
        .orchestrate(vec![Box::new(inner)], OrchestratorInput::new("q"))
        .await
        .unwrap();
    assert_eq!(output.result, "ok");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Cancelling the run while a stream is stalled drops the connection at once:
/// the server sees it closed.
#[tokio::test]
async fn cancelling_a_run_closes_a_stalled_stream_connection() {
    let start = event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "claude", "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    );
    let chunk = format!("{:x}\r\n{start}\r\n", start.len());
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{chunk}"
    );
    let (url, closed) = stalling_server(Box::leak(head.into_boxed_str())).await;
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(ClaudeAgent::new("a", &anthropic(&url)))];
    let run = tokio::spawn(async move {
        SequentialOrchestrator::new()
            .orchestrate_with_context(agents, OrchestratorInput::new("q"), &ctx)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    canceller.cancel();
    let result = run.await.unwrap();
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    let closed_at = tokio::time::timeout(Duration::from_secs(3), closed)
        .await
        .expect("the server never saw the connection close")
        .unwrap();
    assert!(closed_at.duration_since(cancelled_at) < Duration::from_secs(1));
}

/// An outer attempt timeout stops a nested run whose agent is stalled on a
/// stream: the connection is closed promptly.
#[tokio::test]
async fn an_outer_timeout_closes_a_nested_agents_connection() {
    let start = event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "claude", "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    );
    let chunk = format!("{:x}\r\n{start}\r\n", start.len());
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{chunk}"
    );
    let (url, closed) = stalling_server(Box::leak(head.into_boxed_str())).await;
    let inner = OrchestratorAgent::new(
        "inner",
        "nested",
        SequentialOrchestrator::new().with_max_retries(0),
        vec![Box::new(ClaudeAgent::new("a", &anthropic(&url)))],
    );
    let started = Instant::now();
    let error = SequentialOrchestrator::new()
        .with_max_retries(0)
        .with_agent_timeout(Duration::from_millis(300))
        .orchestrate(vec![Box::new(inner)], OrchestratorInput::new("q"))
        .await
        .unwrap_err();
    let closed_at = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the server never saw the connection close")
        .unwrap();
    assert!(
        closed_at.duration_since(started) < Duration::from_secs(2),
        "{error}"
    );
}
