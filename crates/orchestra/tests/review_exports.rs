//! The exports a user wires into other tools — `--trace`, `--json`,
//! `--chrome-trace` and (feature `otel`) `--otlp` — stay what those tools
//! read, whatever the secret values masked in them, and a collector that
//! fails or hangs neither fails nor hangs the run.

mod common;

use common::{json, orchestra, outcome, scratch, write};

/// The current year (UTC): how every date of a trace file starts.
fn this_year() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&date.stdout).trim().to_owned()
}

/// One agent that prints the secrets `PIN` and `FLAG`, one that succeeds
/// quietly and one that fails saying them.
const SHOWS_SECRETS: &str = r#"
secrets = ["PIN", "FLAG"]

[flow]
sequential = ["show", "quiet", "bad"]

[[agents]]
id = "show"
kind = "command"
shell = "echo pin=$PIN flag=$FLAG"

[[agents]]
id = "quiet"
kind = "template"
template = "fine"

[[agents]]
id = "bad"
kind = "command"
shell = "echo pin=$PIN flag=$FLAG >&2; exit 3"
"#;

#[test]
fn a_secret_that_looks_like_a_date_or_a_keyword_leaves_trace_and_json_readable() {
    let dir = scratch();
    let file = write(dir.path(), "secrets.toml", SHOWS_SECRETS);
    let trace = dir.path().join("trace.json");
    let year = this_year();
    let ran = outcome(
        &[
            "run",
            "--no-store",
            "--json",
            "--trace",
            &trace.display().to_string(),
        ],
        &file,
        &[("PIN", &year), ("FLAG", "true")],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let written = std::fs::read_to_string(&trace).unwrap_or_else(|e| panic!("{e}"));
    for text in [&written, &ran.stdout] {
        // Still JSON, with its dates and flags intact…
        let doc = json(text);
        assert!(text.contains(&format!("\"{year}-")), "{text}");
        assert!(text.contains("true"), "{text}");
        let _ = doc;
        // …and the secrets masked in every text.
        assert!(text.contains("pin=${PIN} flag=${FLAG}"), "{text}");
        assert!(!text.contains(&format!("pin={year}")), "{text}");
    }
    // `orchestra trace` reads both back.
    let printed = write(dir.path(), "printed.json", &ran.stdout);
    for path in [&trace, &printed] {
        let read = orchestra()
            .arg("trace")
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
    }
}

#[test]
fn a_secret_that_looks_like_a_keyword_leaves_the_chrome_trace_valid() {
    let dir = scratch();
    let file = write(dir.path(), "secrets.toml", SHOWS_SECRETS);
    let chrome = dir.path().join("chrome.json");
    let ran = outcome(
        &[
            "run",
            "--no-store",
            "-q",
            "--chrome-trace",
            &chrome.display().to_string(),
        ],
        &file,
        &[("PIN", "4242"), ("FLAG", "true")],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let text = std::fs::read_to_string(&chrome).unwrap_or_else(|e| panic!("{e}"));
    let doc = json(&text);
    let slices: Vec<&serde_json::Value> = doc["traceEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(slices.len(), 3, "{text}");
    assert!(
        slices.iter().any(|s| s["args"]["success"] == true),
        "{text}"
    );
    let bad = slices.iter().find(|s| s["name"] == "bad");
    let error = bad
        .map(|s| s["args"]["error"].to_string())
        .unwrap_or_default();
    assert!(error.contains("pin=${PIN} flag=${FLAG}"), "{text}");
}

#[cfg(feature = "otel")]
mod otlp {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use super::{json, outcome, scratch, write, SHOWS_SECRETS};
    use crate::common::FakeServer;

    fn is_hex(text: &str, len: usize) -> bool {
        text.len() == len
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            && text.chars().any(|c| c != '0')
    }

    #[test]
    fn a_secret_that_looks_like_a_timestamp_leaves_the_otlp_spans_valid() {
        let collector = FakeServer::start(|_| "{}".to_owned());
        let dir = scratch();
        let file = write(dir.path(), "secrets.toml", SHOWS_SECRETS);
        // The first digits every span's start and end share today.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_string();
        let pin = &now[..5];
        let ran = outcome(
            &["run", "--no-store", "-q", "--otlp", &collector.url],
            &file,
            &[("PIN", pin), ("FLAG", "true")],
        );
        assert_eq!(ran.code, Some(1), "{}", ran.stderr);
        assert!(!ran.stderr.contains("OTLP export"), "{}", ran.stderr);
        let requests = collector.requests();
        assert_eq!(requests.len(), 1);
        let body = json(&requests[0].body);
        let spans = crate::common::otlp_spans(&body);
        assert_eq!(spans.len(), 4, "{body}");
        let ids: Vec<&str> = spans.iter().filter_map(|s| s["spanId"].as_str()).collect();
        let trace_id = spans[0]["traceId"].as_str().unwrap_or_default();
        assert!(is_hex(trace_id, 32), "{body}");
        for span in &spans {
            assert_eq!(span["traceId"], trace_id, "{span}");
            assert!(
                is_hex(span["spanId"].as_str().unwrap_or_default(), 16),
                "{span}"
            );
            if let Some(parent) = span["parentSpanId"].as_str() {
                assert!(ids.contains(&parent), "{span}");
            }
            let nanos = |key: &str| span[key].as_str().and_then(|t| t.parse::<u64>().ok());
            let (start, end) = (nanos("startTimeUnixNano"), nanos("endTimeUnixNano"));
            assert!(start.is_some() && start <= end, "{span}");
        }
        // The secrets are masked in the texts.
        let bad = spans.iter().find(|s| s["name"] == "invoke_agent bad");
        let message = bad.map(|s| s["status"]["message"].to_string());
        assert!(
            message.is_some_and(|m| m.contains("pin=${PIN} flag=${FLAG}")),
            "{body}"
        );
    }

    /// A collector that answers every request with `status`, or, with
    /// `None`, reads it and never answers.
    fn collector(status: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().take(8).flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let mut stream = reader.into_inner();
                match status {
                    Some(status) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                    }
                    None => held.push(stream),
                }
            }
        });
        url
    }

    #[test]
    fn a_collector_that_refuses_the_spans_fails_neither_the_run_nor_its_exit_code() {
        let dir = scratch();
        let file = write(dir.path(), "one.toml", crate::common::ONE_AGENT);
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            format!(
                "http://{}",
                listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
            )
        };
        for endpoint in [
            collector(Some("400 Bad Request")),
            collector(Some("503 Service Unavailable")),
            closed,
        ] {
            let ran = outcome(&["run", "--no-store", "--otlp", &endpoint], &file, &[]);
            assert_eq!(ran.code, Some(0), "{endpoint}: {}", ran.stderr);
            assert_eq!(ran.stdout, "x\n", "{endpoint}");
            assert!(
                ran.stderr.contains("warning: OTLP export"),
                "{endpoint}: {}",
                ran.stderr
            );
        }
    }

    #[test]
    fn a_collector_that_never_answers_does_not_hang_the_run() {
        let dir = scratch();
        let file = write(dir.path(), "one.toml", crate::common::ONE_AGENT);
        let endpoint = collector(None);
        let started = Instant::now();
        let ran = outcome(&["run", "--no-store", "--otlp", &endpoint], &file, &[]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert_eq!(ran.stdout, "x\n");
        assert!(
            ran.stderr.contains("warning: OTLP export"),
            "{}",
            ran.stderr
        );
        // The export gives up after its own bound (10 s), not the test's.
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
