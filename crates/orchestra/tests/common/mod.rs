//! Helpers shared by the end-to-end tests: the real `orchestra` binary, the
//! fixtures, and scratch workflow files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod gated;
mod outcome;
mod terminal;
#[allow(unused_imports)] // not every test binary uses these
pub use gated::{gated, marks, resume_id};
#[allow(unused_imports)] // not every test binary runs commands this way
pub use outcome::{is_running, on_store, outcome, parallel_of};
#[allow(unused_imports)] // not every test binary runs orchestra on a terminal
pub use terminal::{on_terminal, Terminal};

/// The `orchestra` binary, with a clean environment for API keys.
pub fn orchestra() -> Command {
    let mut command = Command::cargo_bin("orchestra").unwrap_or_else(|e| panic!("{e}"));
    command
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_COLOR", "1")
        // Runs go to a store of the tests' own, not the user's.
        .env("ORCHESTRA_STORE", test_store());
    // The fake servers listen on 127.0.0.1: no proxy in between.
    for proxy in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        command.env_remove(proxy);
    }
    command
}

/// The run store the tests' runs go to unless a test names its own: one
/// file per test process, in the temporary folder.
pub fn test_store() -> PathBuf {
    std::env::temp_dir()
        .join(format!("orchestra-tests-{}", std::process::id()))
        .join("runs.db")
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A file under the repository's `examples/workflows`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/workflows")
        .join(name)
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// A fresh scratch directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

/// Standard output and error of a finished command, as text.
pub fn texts(output: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Parses `text` as JSON.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The spans of an OTLP/JSON export request's `body`.
pub fn otlp_spans(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The value (`{"stringValue": …}`, `{"intValue": …}`, …) of attribute
/// `key` of an OTLP span or resource.
pub fn otlp_attribute<'a>(
    holder: &'a serde_json::Value,
    key: &str,
) -> Option<&'a serde_json::Value> {
    holder["attributes"]
        .as_array()?
        .iter()
        .find(|attribute| attribute["key"] == key)
        .map(|attribute| &attribute["value"])
}

/// A one-agent workflow that answers `x`.
pub const ONE_AGENT: &str =
    "[flow]\nsequential = [\"a\"]\n\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n";

/// Runs `file` quietly, keeping the run in `store`; panics unless it succeeds.
pub fn run_kept(store: &Path, file: &Path) {
    let ran = orchestra()
        .args(["run", "-q", "--store"])
        .arg(store)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&ran);
    assert!(ran.status.success(), "{stderr}");
}

/// The runs `store` holds, as `orchestra runs --json` lists them (newest first).
pub fn stored_runs(store: &Path) -> serde_json::Value {
    let listed = orchestra()
        .args(["runs", "--json", "--store"])
        .arg(store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    json(&texts(&listed).0)
}

/// The id of the newest run `store` holds, which must be listed as crashed
/// (its end never recorded).
pub fn crashed_run(store: &Path) -> String {
    let runs = stored_runs(store);
    assert_eq!(runs[0]["status"], "crashed", "{runs:#}");
    runs[0]["id"].as_str().unwrap_or_default().to_owned()
}

/// A request a [`FakeServer`] received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST /v1/chat/completions`.
    pub line: String,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

/// An HTTP server on 127.0.0.1 that answers every request with `reply(request)`
/// (a JSON body), one connection per request, and records the requests.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl FakeServer {
    /// Starts serving in a background thread (at most 64 requests).
    pub fn start(reply: fn(&Request) -> String) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64).flatten() {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let mut length = 0usize;
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let request = Request {
                    line: line.trim().to_owned(),
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let answer = reply(&request);
                if let Ok(mut all) = seen.lock() {
                    all.push(request);
                }
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.flush();
            }
        });
        Self { url, requests }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
