//! `CommandAgent` with real programs (`cat`, `echo`, `tr`, `sh`, `sleep`,
//! `yes`): stdin and stdout modes, environment and working directory, exit codes,
//! and no orphans after a timeout, a cancellation or an output overflow.

mod agents_support;

use std::time::Duration;

use agents_support::{assert_all_gone, read_pids, TempDir};
use claude_agent_sdk::agents::{CommandAgent, OutputMode, StdinMode};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, ExecutionConfig, ExecutionContext, OrchestrationError, Orchestrator,
    OrchestratorInput, SequentialOrchestrator,
};

/// A script that records its own pid and a background child's, then waits.
fn sleeper(pids: &std::path::Path) -> CommandAgent {
    CommandAgent::shell(
        "sleeper",
        "echo $$ > \"$PIDS\"; sleep 30 & echo $! >> \"$PIDS\"; wait",
    )
    .with_env("PIDS", pids)
}

#[tokio::test]
async fn content_goes_to_stdin_and_stdout_becomes_the_content() {
    let output = CommandAgent::new("cat", "cat")
        .execute(AgentInput::new("line one\nline two\n"))
        .await
        .unwrap();
    assert_eq!(output.content, "line one\nline two");
    assert_eq!(output.data["exit_code"], 0);
    assert!(output.data["duration_ms"].is_u64());

    let raw = CommandAgent::new("cat", "cat").with_output(OutputMode::RawText);
    assert_eq!(
        raw.execute(AgentInput::new("x\n")).await.unwrap().content,
        "x\n"
    );
}

#[tokio::test]
async fn stdout_is_reported_line_by_line_while_the_program_runs() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    // The second line is only printed once the first has been reported: the
    // program waits for a file the handler creates.
    let dir = TempDir::new("lines");
    let flag = dir.0.join("first-seen");
    let flag_for_handler = flag.clone();
    let agent = CommandAgent::shell(
        "talker",
        format!(
            "echo one; while [ ! -e '{}' ]; do sleep 0.01; done; printf 'two\\nlast'",
            flag.display()
        ),
    )
    .on_text_delta(move |delta| {
        log.lock().unwrap().push((
            delta.agent.to_owned(),
            delta.text.to_owned(),
            delta.is_first,
        ));
        std::fs::write(&flag_for_handler, b"").unwrap();
    });
    let output = tokio::time::timeout(Duration::from_secs(20), agent.execute(AgentInput::new("")))
        .await
        .expect("the program saw the first line reported")
        .unwrap();
    assert_eq!(output.content, "one\ntwo\nlast");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("talker".to_owned(), "one\n".to_owned(), true),
            ("talker".to_owned(), "two\n".to_owned(), false),
            ("talker".to_owned(), "last\n".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn argv_is_never_interpreted_by_a_shell() {
    let agent = CommandAgent::new("echo", "echo").arg("$HOME && echo injected; `id`");
    let output = agent.execute(AgentInput::new("")).await.unwrap();
    assert_eq!(output.content, "$HOME && echo injected; `id`");
}

#[tokio::test]
async fn the_whole_input_can_go_to_stdin_as_json() {
    let input = AgentInput::new("q")
        .with_context(serde_json::json!({"k": [1, 2]}))
        .with_metadata("m", "v");
    let agent = CommandAgent::new("cat", "cat").with_stdin(StdinMode::InputJson);
    let output = agent.execute(input.clone()).await.unwrap();
    assert_eq!(
        serde_json::from_str::<AgentInput>(&output.content).unwrap(),
        input
    );

    let silent = CommandAgent::new("cat", "cat").with_stdin(StdinMode::Null);
    assert_eq!(silent.execute(input).await.unwrap().content, "");
}

#[tokio::test]
async fn stdout_can_be_an_agent_output() {
    let agent = CommandAgent::shell(
        "json",
        r#"printf '{"content":"verdict: ok","confidence":0.7,"data":{"score":3},"metadata":{"who":"linter"}}'"#,
    )
    .with_output(OutputMode::Json);
    let output = agent.execute(AgentInput::new("")).await.unwrap();
    assert_eq!(output.content, "verdict: ok");
    assert_eq!(output.confidence, 0.7);
    assert_eq!(output.data["score"], 3);
    assert_eq!(output.data["exit_code"], 0);
    assert_eq!(output.metadata["who"], "linter");

    let bad = CommandAgent::new("echo", "echo")
        .arg("not json")
        .with_output(OutputMode::Json);
    let error = bad.execute(AgentInput::new("")).await.unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentError(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("not an AgentOutput JSON")
            && error.to_string().contains("not json"),
        "{error}"
    );
}

#[tokio::test]
async fn env_and_working_directory_are_configurable() {
    let dir = TempDir::new("cwd");
    let agent = CommandAgent::shell(
        "env",
        "printf '%s|%s|%s' \"$GREETING\" \"$(pwd)\" \"${HOME:-unset}\"",
    )
    .with_env("GREETING", "hello")
    .without_env("HOME")
    .with_working_dir(dir.path());
    let output = agent.execute(AgentInput::new("")).await.unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(output.content, format!("hello|{}|unset", cwd.display()));

    // `without_env` also takes back an earlier `with_env` of the same name.
    let unset = CommandAgent::shell("env", "printf '%s' \"${GREETING:-unset}\"")
        .with_env("GREETING", "hello")
        .without_env("GREETING");
    assert_eq!(
        unset.execute(AgentInput::new("")).await.unwrap().content,
        "unset"
    );

    let cleared = CommandAgent::new("env", "/usr/bin/env")
        .with_clear_env()
        .with_env("ONLY", "1");
    assert_eq!(
        cleared.execute(AgentInput::new("")).await.unwrap().content,
        "ONLY=1"
    );
}

#[tokio::test]
async fn a_non_zero_exit_is_permanent_and_shows_the_stderr_tail() {
    let agent = CommandAgent::shell("failing", "echo early >&2; echo 'disk on fire' >&2; exit 3");
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, OrchestrationError::AgentError(_)), "{text}");
    assert!(
        text.contains("exit code 3") && text.contains("disk on fire") && text.contains("early"),
        "{text}"
    );

    let output = SequentialOrchestrator::new()
        .with_max_retries(3)
        .orchestrate(vec![Box::new(agent)], OrchestratorInput::new(""))
        .await;
    assert!(output.is_err());
}

#[tokio::test]
async fn exit_code_75_is_retryable() {
    let dir = TempDir::new("tempfail");
    let marker = dir.join("tried");
    // Fails with EX_TEMPFAIL the first time, succeeds the second.
    let agent = CommandAgent::shell(
        "flaky",
        "if [ -e \"$MARK\" ]; then echo second; else touch \"$MARK\"; exit 75; fi",
    )
    .with_env("MARK", &marker);
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(
        matches!(error, OrchestrationError::Transient { .. }),
        "{error}"
    );
    std::fs::remove_file(&marker).unwrap();

    let orchestrator = SequentialOrchestrator::new();
    let config = orchestrator
        .config()
        .clone()
        .with_max_retries(2)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(10));
    let output = orchestrator
        .with_config(config)
        .orchestrate(vec![Box::new(agent)], OrchestratorInput::new(""))
        .await
        .unwrap();
    assert_eq!(output.result, "second");
    assert_eq!(output.execution_trace.agent_executions.len(), 2);

    let custom = CommandAgent::shell("x", "exit 9").with_retryable_exit_codes([9]);
    assert!(custom
        .execute(AgentInput::new(""))
        .await
        .unwrap_err()
        .is_retryable());
}

#[tokio::test]
async fn a_missing_program_is_invalid_config() {
    let error = CommandAgent::new("ghost", "definitely-not-a-program-3f9a")
        .execute(AgentInput::new(""))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("definitely-not-a-program-3f9a"),
        "{error}"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_program_and_its_children() {
    let dir = TempDir::new("timeout");
    let pids = dir.join("pids");
    let error = sleeper(&pids)
        .with_timeout(Duration::from_millis(500))
        .execute(AgentInput::new(""))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn a_stopped_program_takes_its_own_sessions_and_stubborn_children_with_it() {
    let dir = TempDir::new("sessions");
    let pids = dir.join("pids");
    // One child in a session of its own (as Claude Code runs its Bash tool),
    // one that ignores SIGTERM: neither is in the program's process group's
    // reach or stops at the first signal.
    let agent = CommandAgent::shell(
        "escaper",
        "setsid sh -c 'echo $$ >> \"$PIDS\"; exec sleep 30' & \
         sh -c 'trap \"\" TERM; echo $$ >> \"$PIDS\"; exec sleep 30' & \
         echo $$ >> \"$PIDS\"; wait",
    )
    .with_env("PIDS", &pids)
    .with_timeout(Duration::from_millis(500));
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert_all_gone(&read_pids(&pids, 3)).await;
    assert!(claude_agent_sdk::agents::wait_for_stopping_programs(
        Duration::from_secs(10)
    ));
}

#[tokio::test]
async fn an_attempt_timeout_of_the_orchestrator_leaves_no_orphans() {
    let dir = TempDir::new("attempt");
    let pids = dir.join("pids");
    let error = SequentialOrchestrator::new()
        .with_max_retries(0)
        .with_agent_timeout(Duration::from_millis(500))
        .orchestrate(vec![Box::new(sleeper(&pids))], OrchestratorInput::new(""))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("timeout"), "{error}");
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn a_cancelled_run_leaves_no_orphans() {
    let dir = TempDir::new("cancel");
    let pids = dir.join("pids");
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    let pid_file = pids.clone();
    tokio::spawn(async move {
        // Cancel once the program is surely running.
        let _ = tokio::task::spawn_blocking(move || read_pids(&pid_file, 2)).await;
        canceller.cancel();
    });
    let agents: Vec<Box<dyn Agent>> = vec![Box::new(sleeper(&pids))];
    let error = SequentialOrchestrator::new()
        .orchestrate_with_context(agents, OrchestratorInput::new(""), &ctx)
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::Cancelled);
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn too_much_output_fails_and_stops_the_program() {
    let dir = TempDir::new("yes");
    let pids = dir.join("pids");
    let agent = CommandAgent::shell("flood", "echo $$ > \"$PIDS\"; exec yes")
        .with_env("PIDS", &pids)
        .with_max_output_bytes(10_000);
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(
        error.to_string().contains("more than 10000 bytes"),
        "{error}"
    );
    assert_all_gone(&read_pids(&pids, 1)).await;
}

#[tokio::test]
async fn too_much_output_fails_at_once_even_when_a_child_keeps_stderr_open() {
    // The background `sleep` holds stderr open: the run must not wait for it.
    let dir = TempDir::new("flood-held");
    let pids = dir.join("pids");
    let agent = CommandAgent::shell(
        "flood",
        "sleep 30 & echo $! > \"$PIDS\"; echo $$ >> \"$PIDS\"; exec yes",
    )
    .with_env("PIDS", &pids)
    .with_max_output_bytes(10_000);
    let error = tokio::time::timeout(Duration::from_secs(10), agent.execute(AgentInput::new("")))
        .await
        .expect("the overflow ends the run at once")
        .unwrap_err();
    assert!(
        error.to_string().contains("more than 10000 bytes"),
        "{error}"
    );
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn a_stopped_program_takes_the_orphans_left_in_its_group() {
    let dir = TempDir::new("orphans");
    let pids = dir.join("pids");
    // `( … & )`: the subshell exits at once, so the stubborn `sleep` is
    // re-parented and out of the program's tree — but still in its group.
    let agent = CommandAgent::shell(
        "orphaner",
        "( sh -c 'trap \"\" TERM; echo $$ >> \"$PIDS\"; exec sleep 30' & ); \
         echo $$ >> \"$PIDS\"; sleep 30",
    )
    .with_env("PIDS", &pids)
    .with_timeout(Duration::from_millis(500));
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[test]
fn debug_output_never_shows_environment_values() {
    let agent = CommandAgent::new("c", "true").with_env("OPENAI_API_KEY", "sk-SECRET");
    let shown = format!("{agent:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("OPENAI_API_KEY"), "{shown}");
}
