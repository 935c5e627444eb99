//! HTTP fan-out: 1,000 `ClaudeAgent` requests at a limit of 100 against a
//! loopback server that answers each in 20 ms.
//!
//! The ideal is 1,000 / 100 × 20 ms = 200 ms; efficiency is ideal / measured.
//! The server counts the connections it accepts, to show that the provider's
//! pooled client reuses them (at most one per concurrent request).
//!
//! Run with `cargo bench -p claude-agent-sdk --features claude --bench fanout_http`.
//! Everything stays on 127.0.0.1 and each scenario makes a bounded number of runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use claude_agent_sdk::agents::{ClaudeAgent, Provider, ProviderLimits};
use claude_agent_sdk::orchestration::{
    Agent, Orchestrator, OrchestratorInput, ParallelOrchestrator,
};

const REQUESTS: usize = 1_000;
const LIMIT: usize = 100;
const SERVICE_TIME: Duration = Duration::from_millis(20);
const RUNS: usize = 7;

const MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}"#;

const STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

/// How the fan-out is bounded in one scenario.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    /// The orchestrator's `parallel_limit`.
    parallel_limit: usize,
    /// The provider's `max_concurrent`.
    provider_limit: Option<usize>,
    stream: bool,
}

struct Run {
    elapsed: Duration,
    connections: usize,
}

async fn start_server(connections: Arc<AtomicUsize>) -> String {
    let router = Router::new().route(
        "/v1/messages",
        post(|body: axum::body::Bytes| async move {
            tokio::time::sleep(SERVICE_TIME).await;
            let streamed = body.windows(13).any(|w| w == b"\"stream\":true");
            let (content_type, text) = if streamed {
                ("text/event-stream", STREAM)
            } else {
                ("application/json", MESSAGE)
            };
            ([("content-type", content_type)], text)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let listener = listener.tap_io(move |_| {
        connections.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn run_once(url: &str, scenario: Scenario, connections: &AtomicUsize) -> Run {
    // A fresh provider per run: a cold connection pool, so the connections
    // counted are the ones this run opened.
    let limits = match scenario.provider_limit {
        Some(limit) => ProviderLimits::new().with_max_concurrent(limit),
        None => ProviderLimits::unlimited(),
    };
    let provider = Provider::builder("anthropic", url)
        .with_api_key("bench")
        .with_limits(limits)
        .build()
        .expect("provider");
    let agents: Vec<Box<dyn Agent>> = (0..REQUESTS)
        .map(|i| {
            Box::new(
                ClaudeAgent::new(format!("agent-{i}"), &provider).with_streaming(scenario.stream),
            ) as Box<dyn Agent>
        })
        .collect();
    let orchestrator = ParallelOrchestrator::new().with_parallel_limit(scenario.parallel_limit);
    let before = connections.load(Ordering::SeqCst);
    let started = Instant::now();
    let output = orchestrator
        .orchestrate(agents, OrchestratorInput::new("ping"))
        .await
        .expect("every request succeeds");
    let elapsed = started.elapsed();
    assert_eq!(output.agent_outputs.len(), REQUESTS);
    assert_eq!(output.total_usage().input_tokens, 12 * REQUESTS as u64);
    Run {
        elapsed,
        connections: connections.load(Ordering::SeqCst) - before,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let scenarios = [
        Scenario {
            name: "orchestrator limit 100, JSON",
            parallel_limit: LIMIT,
            provider_limit: None,
            stream: false,
        },
        Scenario {
            name: "provider limit 100, JSON",
            parallel_limit: REQUESTS,
            provider_limit: Some(LIMIT),
            stream: false,
        },
        Scenario {
            name: "provider limit 100, SSE",
            parallel_limit: REQUESTS,
            provider_limit: Some(LIMIT),
            stream: true,
        },
    ];
    let ideal = SERVICE_TIME * (REQUESTS / LIMIT) as u32;
    println!(
        "HTTP fan-out: {REQUESTS} ClaudeAgent requests, limit {LIMIT}, server answers in {SERVICE_TIME:?}; ideal {ideal:?}; {RUNS} runs per scenario (first is warm-up)"
    );
    println!(
        "{:<32} {:>10} {:>10} {:>12} {:>12}",
        "scenario", "best", "median", "efficiency", "connections"
    );
    let mut worst_efficiency = f64::INFINITY;
    runtime.block_on(async {
        let connections = Arc::new(AtomicUsize::new(0));
        let url = start_server(Arc::clone(&connections)).await;
        for scenario in scenarios {
            let mut runs = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                runs.push(run_once(&url, scenario, &connections).await);
            }
            let warm = &mut runs[1..];
            warm.sort_by_key(|r| r.elapsed);
            let best = &warm[0];
            let median = &warm[warm.len() / 2];
            let efficiency = ideal.as_secs_f64() / median.elapsed.as_secs_f64();
            worst_efficiency = worst_efficiency.min(efficiency);
            let most_connections = warm.iter().map(|r| r.connections).max().unwrap_or(0);
            println!(
                "{:<32} {:>8.1}ms {:>8.1}ms {:>11.1}% {:>5} / {REQUESTS} requests",
                scenario.name,
                best.elapsed.as_secs_f64() * 1e3,
                median.elapsed.as_secs_f64() * 1e3,
                efficiency * 100.0,
                most_connections,
            );
        }
    });
    println!(
        "lowest median efficiency: {:.1}% (target ≥ 90%)",
        worst_efficiency * 100.0
    );
}
