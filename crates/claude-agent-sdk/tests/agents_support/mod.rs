//! What the agent tests share: scripted loopback HTTP servers that speak a
//! provider's wire format, raw TCP misbehavers, temporary directories, a
//! stand-in `claude` program, and process liveness checks.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::sync::Notify;

/// One scripted answer of a test server.
#[derive(Clone)]
pub enum Reply {
    /// A whole body with a status and extra headers.
    Body {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A `text/event-stream`: `before` at once, then — once `gate` is notified,
    /// when there is one — `after`, with `gap` between the chunks.
    Stream {
        before: Vec<String>,
        gate: Option<Arc<Notify>>,
        after: Vec<String>,
        gap: Duration,
    },
    /// Never answers.
    Hang,
    /// Answers with `reply` after `delay`.
    Delayed(Duration, Box<Reply>),
    /// `reply` with extra response headers (a stream's request id, say).
    WithHeaders(Vec<(&'static str, String)>, Box<Reply>),
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(body: serde_json::Value) -> Self {
        Self::status_json(200, body)
    }

    /// `status` with a JSON body.
    pub fn status_json(status: u16, body: serde_json::Value) -> Self {
        Self::Body {
            status,
            content_type: "application/json",
            headers: vec![],
            body: body.to_string(),
        }
    }

    /// Adds a response header (to a [`Reply::Body`] itself; any other reply
    /// is wrapped in [`Reply::WithHeaders`]).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        match &mut self {
            Self::Body { headers, .. } | Self::WithHeaders(headers, _) => {
                headers.push((name, value.to_owned()));
                self
            }
            _ => Self::WithHeaders(vec![(name, value.to_owned())], Box::new(self)),
        }
    }

    /// `200` with a body that is not what it claims to be.
    pub fn raw(status: u16, content_type: &'static str, body: &str) -> Self {
        Self::Body {
            status,
            content_type,
            headers: vec![],
            body: body.to_owned(),
        }
    }

    /// A complete event stream sent at once.
    pub fn sse(events: Vec<String>) -> Self {
        Self::Stream {
            before: events,
            gate: None,
            after: vec![],
            gap: Duration::ZERO,
        }
    }
}

/// What a test server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

struct Script {
    replies: Mutex<VecDeque<Reply>>,
    last: Mutex<Option<Reply>>,
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// A loopback HTTP server answering every POST with the next scripted reply
/// (the last one repeats), counting connections and requests in flight.
pub struct TestServer {
    pub url: String,
    script: Arc<Script>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with `replies`.
    pub async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            last: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/{*path}", post(answer))
            .with_state(Arc::clone(&script));
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: format!("http://{addr}"),
            script,
            connections,
            task,
        }
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.script.received.lock().unwrap().len()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.script.peak_in_flight.load(Ordering::SeqCst)
    }
}

struct InFlight<'a>(&'a Script);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = script.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    script.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&script);
    script.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let reply = {
        let next = script.replies.lock().unwrap().pop_front();
        let mut last = script.last.lock().unwrap();
        match next {
            Some(reply) => {
                *last = Some(reply.clone());
                reply
            }
            None => last.clone().expect("the test server was given no replies"),
        }
    };
    render(reply).await
}

async fn render(mut reply: Reply) -> Response {
    loop {
        match reply {
            Reply::WithHeaders(headers, inner) => {
                let mut response = Box::pin(render(*inner)).await;
                for (name, value) in headers {
                    response
                        .headers_mut()
                        .insert(name, value.parse().expect("a header value"));
                }
                return response;
            }
            Reply::Delayed(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                unreachable!("a hanging reply outlived its test");
            }
            Reply::Body {
                status,
                content_type,
                headers,
                body,
            } => {
                let mut response = Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", content_type);
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                return response.body(Body::from(body)).unwrap();
            }
            Reply::Stream {
                before,
                gate,
                after,
                gap,
            } => {
                let chunks = futures::stream::unfold(
                    (before.into_iter(), gate, after.into_iter(), true),
                    move |(mut before, gate, mut after, first)| async move {
                        if let Some(chunk) = before.next() {
                            if !first {
                                tokio::time::sleep(gap).await;
                            }
                            return Some((
                                Ok::<_, std::io::Error>(Bytes::from(chunk)),
                                (before, gate, after, false),
                            ));
                        }
                        if let Some(g) = &gate {
                            g.notified().await;
                        }
                        let chunk = after.next()?;
                        tokio::time::sleep(gap).await;
                        Some((Ok(Bytes::from(chunk)), (before, None, after, false)))
                    },
                );
                return Response::builder()
                    .status(200)
                    .header("content-type", "text/event-stream")
                    .header("cache-control", "no-cache")
                    .body(Body::from_stream(chunks))
                    .unwrap();
            }
        }
    }
}

/// One SSE event block: `event: NAME` (if any) and the JSON as `data:`.
pub fn event(name: &str, data: &serde_json::Value) -> String {
    if name.is_empty() {
        format!("data: {data}\n\n")
    } else {
        format!("event: {name}\ndata: {data}\n\n")
    }
}

/// An address where nothing listens (connections are refused).
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// A server that accepts connections, reads a little, and drops them with no
/// answer: a connection reset mid-request.
pub async fn resetting_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::AsyncReadExt;
            let mut buffer = [0_u8; 1024];
            let _ = socket.read(&mut buffer).await;
            drop(socket);
        }
    });
    (format!("http://{addr}"), task)
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "cas-agents-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).expect("write the script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A stand-in for the Claude Code CLI. It reads the prompt from stdin, records
/// its argv, prompt and working directory when asked (`FAKE_CLAUDE_ARGS`,
/// `FAKE_CLAUDE_PROMPT`, `FAKE_CLAUDE_PWD`), and behaves per `FAKE_CLAUDE_MODE`:
/// `json` (default), `stream`, `fail`, `garbage`, `error_result`, `max_turns`,
/// `hang` (records its pid and a child's in `FAKE_CLAUDE_PIDS`).
pub const FAKE_CLAUDE: &str = r#"#!/bin/sh
prompt=$(cat)
[ -n "$FAKE_CLAUDE_ARGS" ] && printf '%s\n' "$@" > "$FAKE_CLAUDE_ARGS"
[ -n "$FAKE_CLAUDE_PROMPT" ] && printf '%s' "$prompt" > "$FAKE_CLAUDE_PROMPT"
[ -n "$FAKE_CLAUDE_PWD" ] && pwd > "$FAKE_CLAUDE_PWD"
case "${FAKE_CLAUDE_MODE:-json}" in
json)
  printf '{"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"duration_api_ms":1100,"num_turns":2,"result":"claude code: %s","session_id":"sess-123","total_cost_usd":0.0123,"usage":{"input_tokens":11,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"output_tokens":13,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"modelUsage":{"claude-sonnet-4-5-20250929[1m]":{"inputTokens":11,"outputTokens":13}},"permission_denials":[],"uuid":"u-1"}\n' "$prompt"
  ;;
stream)
  echo '{"type":"system","subtype":"init","cwd":"/tmp","session_id":"sess-9","tools":["Read"],"model":"claude-sonnet-4-5","permissionMode":"default"}'
  echo '{"type":"assistant","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Looking"}],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}},"parent_tool_use_id":null,"session_id":"sess-9"}'
  gate=timeout
  i=0
  while [ $i -lt 200 ]; do
    if [ -e "$FAKE_CLAUDE_GATE" ]; then gate=gated; break; fi
    sleep 0.05
    i=$((i + 1))
  done
  echo '{"type":"assistant","message":{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Read","input":{"file_path":"a.rs"}}]},"session_id":"sess-9"}'
  echo '{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"fn main() {}"}]},"session_id":"sess-9"}'
  echo '{"type":"assistant","message":{"id":"msg_2","type":"message","role":"assistant","content":[{"type":"text","text":" done"}]},"session_id":"sess-9"}'
  printf '{"type":"result","subtype":"success","is_error":false,"duration_ms":900,"num_turns":2,"result":"Looking done (%s)","session_id":"sess-9","total_cost_usd":0.002,"usage":{"input_tokens":3,"output_tokens":4}}\n' "$gate"
  ;;
fail)
  echo "some earlier noise" >&2
  echo "Error: Invalid API key - Please run /login" >&2
  exit 1
  ;;
garbage)
  echo "Welcome to Claude Code! this is not JSON"
  ;;
error_result)
  echo '{"type":"result","subtype":"error_during_execution","is_error":true,"result":"API Error: 529 overloaded","session_id":"s-err","num_turns":1}'
  exit 1
  ;;
max_turns)
  echo '{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":2,"session_id":"s-turns"}'
  ;;
bad_key)
  [ -n "$FAKE_CLAUDE_RUNS" ] && echo run >> "$FAKE_CLAUDE_RUNS"
  echo '{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Invalid API key · Please run /login","session_id":"s-key","num_turns":1}'
  exit 1
  ;;
overloaded)
  echo '{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"API Error: 529 overloaded","session_id":"s-busy","num_turns":1}'
  exit 1
  ;;
hang)
  echo $$ > "$FAKE_CLAUDE_PIDS"
  sleep 30 &
  echo $! >> "$FAKE_CLAUDE_PIDS"
  wait
  ;;
esac
"#;

/// Installs [`FAKE_CLAUDE`] as `dir/claude` and returns `PATH` with `dir` first.
pub fn install_fake_claude(dir: &TempDir) -> String {
    write_script(&dir.join("claude"), FAKE_CLAUDE);
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", dir.path().display())
}

/// The process ids written one per line in `file`, waiting up to 5 s for them.
pub fn read_pids(file: &Path, expected: usize) -> Vec<i32> {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(file) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.len() >= expected {
                return pids;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not list {expected} process ids", file.display());
}

/// Whether `pid` runs (a zombie awaiting its reaper does not count).
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
    }
}

/// Waits up to 5 s for every one of `pids` to be gone.
pub async fn assert_all_gone(pids: &[i32]) {
    for _ in 0..100 {
        if pids.iter().all(|&pid| !is_alive(pid)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
    panic!("processes still running (orphans): {alive:?}");
}
