//! With the `tracing` feature, runs and attempts have spans, and retries, timeouts
//! and failures are events — emitted only when logging is enabled.
#![cfg(feature = "tracing")]

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_agent_sdk::orchestration::{
    ExecutionConfig, Orchestrator, OrchestratorInput, SequentialOrchestrator,
};
use common::{sleeper, transient, Scripted, Step};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

async fn run_flaky_then_slow(logging: bool) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (flaky, _) =
        Scripted::new("flaky", [Step::Fail(transient("busy")), Step::Ok("ok")]).boxed();
    let (slow, _) = sleeper("slow", Duration::from_secs(10));
    let config = ExecutionConfig::new()
        .with_logging(logging)
        .with_max_retries(1)
        .with_agent_timeout(Duration::from_secs(1));
    let result = SequentialOrchestrator::new()
        .with_config(config)
        .orchestrate(vec![flaky, slow], OrchestratorInput::new("x"))
        .await;
    assert!(result.is_err());
    captured.text()
}

#[tokio::test(start_paused = true)]
async fn retries_timeouts_and_failures_are_events_inside_spans() {
    let log = run_flaky_then_slow(true).await;
    assert!(
        log.contains("orchestration{pattern=\"sequential\" agents=2 run_id="),
        "{log}"
    );
    assert!(
        log.contains("}:agent_attempt{agent=\"flaky\" attempt=1}"),
        "{log}"
    );
    assert!(log.contains("agent attempt failed"), "{log}");
    assert!(log.contains("retrying agent"), "{log}");
    assert!(log.contains("agent attempt timed out"), "{log}");
    assert!(log.contains("orchestration failed"), "{log}");
}

#[tokio::test(start_paused = true)]
async fn logging_off_emits_no_events() {
    let log = run_flaky_then_slow(false).await;
    assert!(log.is_empty(), "{log}");
}
