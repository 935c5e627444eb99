//! The program-running agents (`CommandAgent`, `ClaudeCodeAgent`) with real
//! processes and real signals: runs that return when the program exits
//! whatever holds its pipes, processes that do not outlive the run (daemons,
//! shutdown hooks, background jobs), a grace period a stopping program can
//! use, and what Claude Code prints or keeps secret.
#![cfg(all(feature = "process", feature = "claude-code", unix))]

#[path = "agents_support/mod.rs"]
mod agents_support;

use std::time::Duration;

use agents_support::{is_alive, read_pids, write_script, TempDir};
use claude_agent_sdk::agents::{ClaudeCodeAgent, CommandAgent};
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, ExecutionConfig, ExecutionContext, OrchestrationError, Orchestrator,
    OrchestratorAgent, OrchestratorInput, ParallelOrchestrator, SequentialOrchestrator,
};

/// How long a run that should be over at once may take.
const QUICKLY: Duration = Duration::from_secs(5);

/// Waits up to 5 s for every one of `pids` to be gone; kills (by pid) those
/// that are not, so that a failing test leaves nothing behind, and fails.
async fn assert_all_gone(pids: &[i32]) {
    for _ in 0..100 {
        if pids.iter().all(|&pid| !is_alive(pid)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
    for pid in &alive {
        // SAFETY: plain syscall on a pid our own program started.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    panic!("processes still running (orphans): {alive:?}");
}

/// Kills `pids` (a test's own background processes), whatever the outcome.
fn kill_all(pids: &[i32]) {
    for pid in pids {
        // SAFETY: plain syscall on a pid our own program started.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
}

/// Runs `agent` on `input`, expecting it to return within [`QUICKLY`]
/// (`why` otherwise); then kills the background process whose id the
/// program wrote to `pids`, whatever the outcome.
async fn returns_promptly(
    agent: &dyn Agent,
    input: String,
    pids: &std::path::Path,
    why: &str,
) -> claude_agent_sdk::orchestration::AgentOutput {
    let ended = tokio::time::timeout(QUICKLY, agent.execute(AgentInput::new(input))).await;
    kill_all(&read_pids(pids, 1));
    ended.expect(why).unwrap()
}

// ---------------------------------------------------------------- pipes held

#[tokio::test]
async fn a_run_ends_when_the_program_exits_even_if_a_background_child_holds_stderr() {
    // The program prints its answer and exits 0; a helper it started in the
    // background (an MCP server, a dev server) only redirected stdout.
    let dir = TempDir::new("held-stderr");
    let pids = dir.join("pids");
    let agent = CommandAgent::shell(
        "starter",
        "sleep 30 >/dev/null & echo $! > \"$PIDS\"; echo done",
    )
    .with_env("PIDS", &pids);
    let output = returns_promptly(
        &agent,
        String::new(),
        &pids,
        "the program exited at once: the run must not wait for its background child",
    )
    .await;
    assert_eq!(output.content, "done");
}

#[tokio::test]
async fn a_claude_code_run_ends_when_claude_exits_even_if_a_server_it_started_holds_stderr() {
    // An MCP stdio server inherits Claude Code's stderr; one that lingers after
    // `claude` exits must not keep the agent waiting (it has no timeout by default).
    let dir = TempDir::new("cc-held-stderr");
    let pids = dir.join("pids");
    let claude = dir.join("claude");
    write_script(
        &claude,
        "#!/bin/sh\ncat >/dev/null\nsleep 30 >/dev/null & echo $! > \"$PIDS\"\n\
         echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\",\"session_id\":\"s\"}'\n",
    );
    let agent = ClaudeCodeAgent::new("coder")
        .with_binary(&claude)
        .with_env("PIDS", &pids);
    let output = returns_promptly(
        &agent,
        "hi".to_owned(),
        &pids,
        "claude exited at once: the run must not wait for the server",
    )
    .await;
    assert_eq!(output.content, "ok");
}

#[tokio::test]
async fn a_run_ends_when_the_program_exits_even_if_a_background_child_holds_stdin() {
    // A large input the program does not read all of, and a background child
    // that inherited stdin (without reading it): the program's exit ends the run.
    let dir = TempDir::new("held-stdin");
    let pids = dir.join("pids");
    let agent = CommandAgent::shell(
        "starter",
        "exec 3<&0; sleep 30 <&3 >/dev/null 2>&1 & echo $! > \"$PIDS\"; exec 3<&-; head -c 10 >/dev/null; echo done",
    )
    .with_env("PIDS", &pids);
    let input = "x".repeat(2 * 1024 * 1024);
    let output = returns_promptly(
        &agent,
        input,
        &pids,
        "the program exited at once: the run must not wait to write its input",
    )
    .await;
    assert_eq!(output.content, "done");
}

// ------------------------------------------------------------- no orphans

#[tokio::test]
async fn a_program_that_exits_leaves_no_background_process_running() {
    let dir = TempDir::new("bg-left");
    let pids = dir.join("pids");
    let agent = CommandAgent::shell(
        "starter",
        "sleep 30 >/dev/null 2>&1 </dev/null & echo $! > \"$PIDS\"; echo done",
    )
    .with_env("PIDS", &pids);
    let output = tokio::time::timeout(QUICKLY, agent.execute(AgentInput::new("")))
        .await
        .expect("returns")
        .unwrap();
    assert_eq!(output.content, "done");
    assert_all_gone(&read_pids(&pids, 1)).await;
}

#[tokio::test]
async fn a_timeout_stops_a_daemon_the_program_started_in_a_new_session() {
    // The classic daemon: fork, setsid, and the intermediate parent exits — the
    // daemon is re-parented, in a session and group of its own.
    let dir = TempDir::new("daemon");
    let pids = dir.join("pids");
    let agent = CommandAgent::shell(
        "daemonizer",
        "( setsid sh -c 'echo $$ >> \"$PIDS\"; exec sleep 30' </dev/null >/dev/null 2>&1 & ); \
         echo $$ >> \"$PIDS\"; sleep 30",
    )
    .with_env("PIDS", &pids)
    .with_timeout(Duration::from_millis(700));
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn a_timeout_stops_what_the_program_starts_in_its_own_session_as_it_shuts_down() {
    // On SIGTERM the program runs a clean-up hook in a session of its own (as
    // Claude Code runs its hooks) and exits.
    let dir = TempDir::new("term-hook");
    let pids = dir.join("pids");
    let script = dir.join("hooked");
    write_script(
        &script,
        r#"#!/bin/sh
on_term() {
  setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 30' </dev/null >/dev/null 2>&1 &
  sleep 0.2
  exit 1
}
trap on_term TERM
# Nothing written to stdout or stderr: see the SIGPIPE test below.
exec 2>/dev/null
echo $$ >> "$PIDS"
while :; do sleep 0.05; done
"#,
    );
    let agent = CommandAgent::new("hooked", &script)
        .with_env("PIDS", &pids)
        .with_timeout(Duration::from_millis(700));
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    // Every hook the program started (all of them are killed if they survive).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_all_gone(&read_pids(&pids, 2)).await;
}

#[tokio::test]
async fn a_stopped_program_can_still_write_while_it_shuts_down_in_its_grace_period() {
    // SIGTERM is there to let the program clean up; one that says what it
    // does (on stdout or stderr) must not die of SIGPIPE before it has.
    let dir = TempDir::new("grace-write");
    let done = dir.join("done");
    let ready = dir.join("ready");
    let script = dir.join("saver.py");
    write_script(
        &script,
        r#"#!/usr/bin/env python3
import os, signal, sys, time
def on_term(*_):
    print("saving state", flush=True)
    open(os.environ["DONE"], "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(os.environ["READY"], "w").close()
print("working", flush=True)
while True:
    time.sleep(0.05)
"#,
    );
    let agent = CommandAgent::new("saver", &script)
        .with_env("DONE", &done)
        .with_env("READY", &ready);
    // The attempt ends (its future dropped, as a timeout or a cancel does)
    // once the program's SIGTERM handler is in place: on a loaded machine
    // the interpreter alone may take longer to start than a fixed timeout.
    tokio::select! {
        ended = agent.execute(AgentInput::new("")) => {
            panic!("the program ended by itself: {ended:?}")
        }
        () = async {
            while !ready.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => {}
    }
    assert!(claude_agent_sdk::agents::wait_for_stopping_programs(
        Duration::from_secs(10)
    ));
    assert!(
        done.exists(),
        "the program was killed (SIGPIPE) before its SIGTERM handler could finish"
    );
}

// -------------------------------------------------------------- throughput

#[tokio::test]
async fn a_large_input_and_a_large_output_do_not_deadlock() {
    // The program writes 4 MB before it reads any of its 4 MB of input.
    let agent = CommandAgent::shell(
        "echoer",
        "head -c 4000000 /dev/zero | tr '\\0' a; cat | wc -c >&2; exit 0",
    );
    let input = "b".repeat(4_000_000);
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        agent.execute(AgentInput::new(input)),
    )
    .await
    .expect("no pipe deadlock")
    .unwrap();
    assert_eq!(output.content.len(), 4_000_000);
}

#[tokio::test]
async fn many_programs_timing_out_in_a_fan_out_leave_no_process() {
    let dir = TempDir::new("fanout");
    let pids = dir.join("pids");
    let agents: Vec<Box<dyn Agent>> = (0..16)
        .map(|i| {
            Box::new(
                CommandAgent::shell(
                    format!("s{i}"),
                    "trap '' TERM; echo $$ >> \"$PIDS\"; sleep 30 & echo $! >> \"$PIDS\"; wait",
                )
                .with_env("PIDS", &pids),
            ) as Box<dyn Agent>
        })
        .collect();
    let _ = ParallelOrchestrator::new()
        .with_max_retries(0)
        .with_agent_timeout(Duration::from_millis(1500))
        .orchestrate(agents, OrchestratorInput::new(""))
        .await;
    let pids = read_pids(&pids, 32);
    assert!(claude_agent_sdk::agents::wait_for_stopping_programs(
        Duration::from_secs(10)
    ));
    assert_all_gone(&pids).await;
}

#[tokio::test]
async fn an_outer_timeout_and_a_cancel_stop_the_programs_of_a_nested_fan_out() {
    for cancel in [false, true] {
        let dir = TempDir::new("nested");
        let pids = dir.join("pids");
        let stubborn = |i: usize| -> Box<dyn Agent> {
            Box::new(
                CommandAgent::shell(
                    format!("s{i}"),
                    "trap '' TERM; echo $$ >> \"$PIDS\"; setsid sleep 30 & echo $! >> \"$PIDS\"; wait",
                )
                .with_env("PIDS", &pids),
            )
        };
        let nested = OrchestratorAgent::new(
            "fan",
            "three at once",
            ParallelOrchestrator::new().with_max_retries(0),
            (0..3).map(stubborn).collect(),
        );
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        if cancel {
            let canceller = ctx.clone();
            let pid_file = pids.clone();
            tokio::spawn(async move {
                let _ = tokio::task::spawn_blocking(move || read_pids(&pid_file, 6)).await;
                canceller.cancel();
            });
        }
        let outer = SequentialOrchestrator::new()
            .with_max_retries(0)
            .with_agent_timeout(Duration::from_secs(if cancel { 60 } else { 1 }));
        let ended = tokio::time::timeout(
            Duration::from_secs(20),
            outer.orchestrate_with_context(
                vec![Box::new(nested)],
                OrchestratorInput::new(""),
                &ctx,
            ),
        )
        .await
        .expect("the run ends");
        assert!(ended.is_err());
        let pids = read_pids(&pids, 6);
        assert!(claude_agent_sdk::agents::wait_for_stopping_programs(
            Duration::from_secs(10)
        ));
        assert_all_gone(&pids).await;
    }
}

// ------------------------------------------------------------ claude code

#[tokio::test]
async fn a_claude_code_result_with_a_null_usage_is_still_the_result() {
    let dir = TempDir::new("cc-null-usage");
    let claude = dir.join("claude");
    write_script(
        &claude,
        "#!/bin/sh\ncat >/dev/null\n\
         echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"fixed it\",\"session_id\":\"s\",\"total_cost_usd\":0.5,\"usage\":null}'\n",
    );
    let output = ClaudeCodeAgent::new("coder")
        .with_binary(&claude)
        .execute(AgentInput::new("hi"))
        .await
        .unwrap();
    assert_eq!(output.content, "fixed it");
}

#[tokio::test]
async fn a_claude_code_whose_interpreter_is_missing_is_not_retried() {
    // `claude` as npm installs it starts with `#!/usr/bin/env node`; run where
    // `node` is not on PATH (a service, a cron job, nvm), env exits 127:
    // nothing a retry can change, like a missing binary.
    let dir = TempDir::new("cc-no-node");
    let claude = dir.join("claude");
    write_script(
        &claude,
        "#!/usr/bin/env definitely-not-node-3f9a\nconsole.log('hi')\n",
    );
    let error = ClaudeCodeAgent::new("coder")
        .with_binary(&claude)
        .execute(AgentInput::new("hi"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("definitely-not-node-3f9a"),
        "{error}"
    );
    assert!(
        !error.is_retryable(),
        "retried although it cannot start: {error:?}"
    );
}

#[test]
fn claude_code_debug_output_never_shows_secrets_in_an_mcp_config() {
    // An MCP config given as a JSON string carries the servers' environment,
    // tokens included: Debug output ends up in logs, as for `with_env`.
    let agent = ClaudeCodeAgent::new("coder").with_mcp_config(
        r#"{"mcpServers":{"github":{"command":"gh-mcp","env":{"GITHUB_TOKEN":"ghp_SECRET"}}}}"#,
    );
    let shown = format!("{agent:?}");
    assert!(!shown.contains("ghp_SECRET"), "{shown}");
}

#[tokio::test]
async fn a_stopped_program_that_was_suspended_still_gets_to_clean_up() {
    // A program suspended by job control (SIGTTIN from a prompt on /dev/tty,
    // say) does not act on SIGTERM until it is continued: the stop must send
    // SIGCONT too, as `kill` and systemd do, or the grace period is wasted.
    let dir = TempDir::new("suspended");
    let done = dir.join("done");
    let script = dir.join("suspended");
    write_script(
        &script,
        "#!/bin/sh\nexec >/dev/null 2>&1\ntrap 'touch \"$DONE\"; exit 0' TERM\nkill -STOP $$\nwhile :; do sleep 0.05; done\n",
    );
    let agent = CommandAgent::new("suspended", &script)
        .with_env("DONE", &done)
        .with_timeout(Duration::from_millis(700));
    let error = agent.execute(AgentInput::new("")).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert!(claude_agent_sdk::agents::wait_for_stopping_programs(
        Duration::from_secs(10)
    ));
    assert!(
        done.exists(),
        "the suspended program was SIGKILLed without its SIGTERM ever acting"
    );
}
