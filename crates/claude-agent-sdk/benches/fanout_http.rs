//! HTTP fan-out: 1,000 `ClaudeAgent` requests at a limit of 100 against a
//! loopback server that answers each in 20 ms.
//!
//! The ideal is 1,000 / 100 × 20 ms = 200 ms; efficiency is ideal / measured.
//! The server counts the connections it accepts, to show that the provider's
//! pooled client reuses them (at most one per concurrent request).
//!
//! Run with `cargo bench -p claude-agent-sdk --features claude --bench fanout_http`.
//! Everything stays on 127.0.0.1 and each scenario makes a bounded number of runs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use claude_agent_sdk::agents::{ClaudeAgent, Provider, ProviderLimits};
use claude_agent_sdk::orchestration::{
    Agent, Orchestrator, OrchestratorInput, ParallelOrchestrator,
};
use tokio::sync::oneshot;

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

/// Wakes each request's handler at its deadline, to within tens of
/// microseconds: tokio's timer works in whole milliseconds and fires a 20 ms
/// sleep after about 21.2 ms here, which would bill the test server's timer
/// slop to the client (see `--tokio-timer`).
#[derive(Clone)]
struct PreciseTimer {
    queue: Arc<(Mutex<BinaryHeap<Reverse<Deadline>>>, Condvar)>,
}

struct Deadline(Instant, u64, oneshot::Sender<()>);

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

impl PreciseTimer {
    fn start() -> Self {
        let timer = Self {
            queue: Arc::new((Mutex::new(BinaryHeap::new()), Condvar::new())),
        };
        let queue = Arc::clone(&timer.queue);
        std::thread::spawn(move || {
            let (heap, wake) = &*queue;
            let mut heap = heap.lock().expect("timer lock");
            loop {
                let now = Instant::now();
                match heap.peek() {
                    None => heap = wake.wait(heap).expect("timer lock"),
                    Some(Reverse(Deadline(at, ..))) if *at <= now => {
                        if let Some(Reverse(Deadline(_, _, done))) = heap.pop() {
                            let _ = done.send(());
                        }
                    }
                    Some(Reverse(Deadline(at, ..))) => {
                        let wait = *at - now;
                        heap = wake.wait_timeout(heap, wait).expect("timer lock").0;
                    }
                }
            }
        });
        timer
    }

    async fn sleep(&self, duration: Duration) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (done, wait) = oneshot::channel();
        let deadline = Deadline(
            Instant::now() + duration,
            NEXT.fetch_add(1, Ordering::Relaxed),
            done,
        );
        let (heap, wake) = &*self.queue;
        heap.lock().expect("timer lock").push(Reverse(deadline));
        wake.notify_one();
        let _ = wait.await;
    }
}

async fn start_server(connections: Arc<AtomicUsize>, timer: Option<PreciseTimer>) -> String {
    let router = Router::new().route(
        "/v1/messages",
        post(move |body: axum::body::Bytes| async move {
            match &timer {
                Some(timer) => timer.sleep(SERVICE_TIME).await,
                None => tokio::time::sleep(SERVICE_TIME).await,
            }
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

/// The floor: bare reqwest, 100 tasks each making 10 requests in a row — the
/// same HTTP work without agents, orchestrator or limiter.
async fn run_bare(url: &str, connections: &AtomicUsize) -> Run {
    let client = reqwest::Client::new();
    let url = format!("{url}/v1/messages");
    let before = connections.load(Ordering::SeqCst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..LIMIT {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for _ in 0..REQUESTS / LIMIT {
                let response = client
                    .post(&url)
                    .body(r#"{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":"ping"}]}"#)
                    .send()
                    .await
                    .expect("bare request");
                let _ = response.bytes().await.expect("bare body");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Run {
        elapsed: started.elapsed(),
        connections: connections.load(Ordering::SeqCst) - before,
    }
}

fn main() {
    // Only the bare baseline builds a reqwest client of its own; it needs a
    // process-wide rustls provider (the agents' providers configure theirs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tokio_timer = std::env::args().any(|a| a == "--tokio-timer");
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
        "HTTP fan-out: {REQUESTS} ClaudeAgent requests, limit {LIMIT}, server answers in {SERVICE_TIME:?} ({} timer); ideal {ideal:?}; {RUNS} runs per scenario (first is warm-up)",
        if tokio_timer { "tokio" } else { "precise" }
    );
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>12}",
        "scenario", "best", "median", "efficiency", "connections"
    );
    let mut worst_efficiency = f64::INFINITY;
    runtime.block_on(async {
        let connections = Arc::new(AtomicUsize::new(0));
        let timer = (!tokio_timer).then(PreciseTimer::start);
        let url = start_server(Arc::clone(&connections), timer).await;
        let mut report = |name: &str, mut runs: Vec<Run>, counts: bool| {
            let warm = &mut runs[1..];
            warm.sort_by_key(|r| r.elapsed);
            let best = &warm[0];
            let median = &warm[warm.len() / 2];
            let efficiency = ideal.as_secs_f64() / median.elapsed.as_secs_f64();
            if counts {
                worst_efficiency = worst_efficiency.min(efficiency);
            }
            let most_connections = warm.iter().map(|r| r.connections).max().unwrap_or(0);
            println!(
                "{:<34} {:>8.1}ms {:>8.1}ms {:>11.1}% {:>5} / {REQUESTS} requests",
                name,
                best.elapsed.as_secs_f64() * 1e3,
                median.elapsed.as_secs_f64() * 1e3,
                efficiency * 100.0,
                most_connections,
            );
        };
        let mut bare = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            bare.push(run_bare(&url, &connections).await);
        }
        report("baseline: bare reqwest, no agents", bare, false);
        for scenario in scenarios {
            let mut runs = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                runs.push(run_once(&url, scenario, &connections).await);
            }
            report(scenario.name, runs, true);
        }
    });
    println!(
        "lowest median efficiency of the agent scenarios: {:.1}% (target ≥ 90%)",
        worst_efficiency * 100.0
    );
}
