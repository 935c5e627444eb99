//! `ClaudeCodeAgent` against a stand-in `claude` program put first on the PATH
//! (or named by path) that prints the real program's documented output shapes,
//! and that also fails, prints garbage, or hangs.

mod agents_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents_support::{
    assert_all_gone, install_fake_claude, read_pids, write_script, TempDir, FAKE_CLAUDE,
};
use claude_agent_sdk::agents::{ClaudeCodeAgent, ClaudeCodeOutputFormat};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, OrchestrationError, Orchestrator, OrchestratorInput, SequentialOrchestrator,
    Usage,
};

/// An agent whose `claude` is the stand-in, in `mode`.
fn agent(dir: &TempDir, mode: &str) -> ClaudeCodeAgent {
    ClaudeCodeAgent::new("coder")
        .with_env("PATH", install_fake_claude(dir))
        .with_env("FAKE_CLAUDE_MODE", mode)
}

#[tokio::test]
async fn a_json_result_is_parsed_with_cost_usage_and_session() {
    let dir = TempDir::new("cc-json");
    let work = TempDir::new("cc-work");
    let output = agent(&dir, "json")
        .with_env("FAKE_CLAUDE_ARGS", dir.join("args"))
        .with_env("FAKE_CLAUDE_PROMPT", dir.join("prompt"))
        .with_env("FAKE_CLAUDE_PWD", dir.join("pwd"))
        .with_model("sonnet")
        .with_allowed_tools(["Read", "Grep"])
        .with_max_turns(2)
        .with_permission_mode("acceptEdits")
        .with_working_dir(work.path())
        .execute(AgentInput::new("fix the bug"))
        .await
        .unwrap();

    assert_eq!(output.content, "claude code: fix the bug");
    assert_eq!(output.data["session_id"], "sess-123");
    assert_eq!(output.data["num_turns"], 2);
    assert_eq!(output.data["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(output.metadata["session_id"], "sess-123");
    assert_eq!(output.metadata["cost_usd"], "0.012300");
    let usage = Usage::from_output(&output).unwrap();
    assert_eq!(
        usage,
        Usage::new(11, 13)
            .with_cache_tokens(5, 7)
            .with_cost_usd(0.0123)
    );

    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "-p",
            "--output-format",
            "json",
            "--model",
            "sonnet",
            "--allowedTools",
            "Read,Grep",
            "--max-turns",
            "2",
            "--permission-mode",
            "acceptEdits"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("prompt")).unwrap(),
        "fix the bug"
    );
    let pwd = std::fs::read_to_string(dir.join("pwd")).unwrap();
    assert_eq!(
        pwd.trim(),
        std::fs::canonicalize(work.path())
            .unwrap()
            .to_str()
            .unwrap()
    );
}

#[tokio::test]
async fn the_binary_path_option_runs_the_given_program() {
    let dir = TempDir::new("cc-bin");
    let program = dir.join("my-claude");
    write_script(&program, FAKE_CLAUDE);
    let output = ClaudeCodeAgent::new("coder")
        .with_binary(&program)
        .execute(AgentInput::new("hello"))
        .await
        .unwrap();
    assert_eq!(output.content, "claude code: hello");
}

#[tokio::test]
async fn stream_json_reports_assistant_text_as_it_arrives() {
    // The stand-in waits for the gate file before finishing; the delta handler
    // creates it, so the result says "gated" only if text arrived mid-run.
    let dir = TempDir::new("cc-stream");
    let gate = dir.join("gate");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let gate_file = gate.clone();
    let output = agent(&dir, "stream")
        .with_env("FAKE_CLAUDE_GATE", &gate)
        .with_output_format(ClaudeCodeOutputFormat::StreamJson)
        .on_text_delta(move |d| {
            log.lock().unwrap().push((d.text.to_owned(), d.is_first));
            let _ = std::fs::write(&gate_file, b"open");
        })
        .execute(AgentInput::new("look"))
        .await
        .unwrap();
    assert_eq!(output.content, "Looking done (gated)");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("Looking".to_owned(), true), (" done".to_owned(), false)]
    );
    assert_eq!(output.data["session_id"], "sess-9");
    assert_eq!(Usage::from_output(&output).unwrap().cost_usd, Some(0.002));
}

#[tokio::test]
async fn typed_events_arrive_as_a_stream() {
    use claude_agent_sdk::agents::{event_stream, ClaudeCodeEvent};
    use futures::StreamExt;

    let dir = TempDir::new("cc-events");
    let gate = dir.join("gate");
    std::fs::write(&gate, b"open").unwrap();
    let (handler, events) = event_stream::<ClaudeCodeEvent>();
    let agent = agent(&dir, "stream")
        .with_env("FAKE_CLAUDE_GATE", &gate)
        .on_event(handler);
    let output = agent.execute(AgentInput::new("look")).await.unwrap();
    drop(agent);
    let events: Vec<ClaudeCodeEvent> = events.collect().await;
    assert!(output.content.starts_with("Looking done"));
    assert!(
        matches!(events.first(), Some(ClaudeCodeEvent::System { subtype, .. }) if subtype == "init"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClaudeCodeEvent::ToolUse { name, .. } if name == "Read")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, ClaudeCodeEvent::ToolResult { tool_use_id, .. } if tool_use_id == "toolu_1")),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(ClaudeCodeEvent::Result { session_id: Some(s), is_error: false, .. }) if s == "sess-9"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_missing_binary_is_invalid_config_naming_the_cause() {
    let empty = TempDir::new("cc-empty");
    let error = ClaudeCodeAgent::new("coder")
        .with_env("PATH", empty.path())
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("`claude` was not found") && text.contains("with_binary"),
        "{text}"
    );

    let error = ClaudeCodeAgent::new("coder")
        .with_binary("/nonexistent/claude")
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
}

#[tokio::test]
async fn a_non_zero_exit_is_retryable_and_shows_the_stderr_tail() {
    let dir = TempDir::new("cc-fail");
    let error = agent(&dir, "fail")
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, OrchestrationError::AgentFailed(..)),
        "{text}"
    );
    assert!(
        text.contains("exit code 1")
            && text.contains("Invalid API key")
            && text.contains("earlier noise"),
        "{text}"
    );

    let orchestrator = SequentialOrchestrator::new();
    let config = orchestrator
        .config()
        .clone()
        .with_max_retries(1)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(10));
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(agent(&dir, "fail"))];
    let _ = orchestrator
        .with_config(config)
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap_err();
}

#[tokio::test]
async fn garbage_output_is_a_permanent_error_that_shows_it() {
    let dir = TempDir::new("cc-garbage");
    let error = agent(&dir, "garbage")
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_)),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("not a Claude Code result") && text.contains("Welcome to Claude Code"),
        "{text}"
    );
}

#[tokio::test]
async fn error_results_name_their_cause() {
    let dir = TempDir::new("cc-errors");
    let error = agent(&dir, "error_result")
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentFailed(..)),
        "{error}"
    );
    assert!(
        error.to_string().contains("error_during_execution")
            && error.to_string().contains("529 overloaded"),
        "{error}"
    );

    let error = agent(&dir, "max_turns")
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_)),
        "{error}"
    );
    assert!(error.to_string().contains("error_max_turns"), "{error}");
}

#[tokio::test]
async fn a_refused_api_request_fails_at_once_and_an_overload_is_transient() {
    let dir = TempDir::new("cc-status");
    let runs = dir.join("runs");
    let refused = agent(&dir, "bad_key").with_env("FAKE_CLAUDE_RUNS", &runs);
    let error = refused.execute(AgentInput::new("x")).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("`claude`'s API request failed with HTTP 401 (exit code 1): Invalid API key"),
        "{text}"
    );
    assert!(!text.contains("reported success"), "{text}");

    // Orchestrated with retries, a refused request is not tried again.
    let _ = std::fs::remove_file(&runs);
    let output = SequentialOrchestrator::new()
        .with_max_retries(2)
        .orchestrate(vec![Box::new(refused)], OrchestratorInput::new("x"))
        .await;
    assert!(output.is_err());
    let attempts = std::fs::read_to_string(&runs).unwrap_or_default();
    assert_eq!(attempts.lines().count(), 1, "{attempts}");

    let error = agent(&dir, "overloaded")
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::Transient { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_working_directory_is_named_as_such() {
    let dir = TempDir::new("cc-nodir");
    let error = agent(&dir, "json")
        .with_working_dir(dir.join("no-such-dir"))
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("working directory"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(!text.contains("install it"), "{text}");
}

#[tokio::test]
async fn a_hanging_run_times_out_and_leaves_no_orphans() {
    let dir = TempDir::new("cc-hang");
    let pids = dir.join("pids");
    let error = agent(&dir, "hang")
        .with_env("FAKE_CLAUDE_PIDS", &pids)
        .with_timeout(Duration::from_millis(500))
        .execute(AgentInput::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn a_long_stream_json_run_is_not_cut_by_the_output_limit() {
    // 20 MiB of tool results, more than the 16 MiB output limit, in lines of
    // 200 kB: only a single line may not pass the limit.
    let dir = TempDir::new("cc-long");
    let script = dir.join("claude");
    write_script(
        &script,
        r#"#!/bin/sh
cat > /dev/null
echo '{"type":"system","subtype":"init","session_id":"s-long"}'
big=$(head -c 200000 /dev/zero | tr '\0' 'a')
i=0
while [ $i -lt 100 ]; do
  printf '{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"%s"}]}}\n' "$big"
  i=$((i + 1))
done
echo '{"type":"result","subtype":"success","is_error":false,"result":"read it all","session_id":"s-long","usage":{"input_tokens":1,"output_tokens":2}}'
"#,
    );
    let output = ClaudeCodeAgent::new("reader")
        .with_binary(&script)
        .with_output_format(ClaudeCodeOutputFormat::StreamJson)
        .execute(AgentInput::new("read everything"))
        .await
        .unwrap();
    assert_eq!(output.content, "read it all");
    assert_eq!(output.metadata["session_id"], "s-long");
}
