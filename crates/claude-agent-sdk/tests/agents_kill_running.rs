//! `agents::kill_running_programs`, for a process that must exit now: every
//! program an agent started and that is not reaped yet — running, or being
//! stopped in its grace period — is killed at once, with what it started.
//!
//! One test in a binary of its own: the function kills the programs of the
//! whole process, those of tests running alongside included.
#![cfg(all(feature = "process", unix))]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use claude_agent_sdk::agents::{
    kill_running_programs, wait_for_stopping_programs, CommandAgent, STOP_GRACE,
};
use claude_agent_sdk::orchestration::{Agent, AgentInput};

/// A program that ignores SIGTERM, and so does the `sleep` it starts; once
/// both run, `ready` holds their pids.
fn stubborn(name: &str, ready: &Path) -> CommandAgent {
    CommandAgent::shell(
        name,
        "trap '' TERM; sleep 1000 & echo \"$$ $!\" > \"$READY.tmp\"; mv \"$READY.tmp\" \"$READY\"; wait",
    )
    .with_env("READY", ready)
}

/// The pids in `ready`, once it exists.
async fn ready_pids(ready: &Path) -> Vec<i32> {
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the program did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = std::fs::read_to_string(ready).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Whether `pid` runs (a zombie awaiting its reaper does not count).
fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    })
}

/// Waits until none of `pids` runs, for less than `within`; kills those left
/// (a failing test leaves nothing behind) and fails otherwise.
async fn assert_gone_within(pids: &[i32], within: Duration) {
    let started = Instant::now();
    while pids.iter().any(|&pid| is_alive(pid)) {
        if started.elapsed() > within {
            for &pid in pids {
                // SAFETY: a plain syscall, on the test's own programs.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            panic!("still running after {within:?}: {pids:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cas-kill-running-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_and_stopping_programs_are_killed_at_once_with_what_they_started() {
    let dir = scratch("all");
    assert_eq!(kill_running_programs(), 0, "no program started yet");

    // A running program: its attempt sees it killed.
    let running_ready = dir.join("running");
    let running = stubborn("running", &running_ready);
    let attempt = tokio::spawn(async move { running.execute(AgentInput::new("")).await });
    let running_pids = ready_pids(&running_ready).await;

    // A program being stopped (its attempt dropped, as a cancel does): it
    // ignores SIGTERM and has STOP_GRACE before SIGKILL.
    let stopping_ready = dir.join("stopping");
    let stopping = stubborn("stopping", &stopping_ready);
    let stopping_pids = tokio::select! {
        ended = stopping.execute(AgentInput::new("")) => panic!("ended by itself: {ended:?}"),
        pids = ready_pids(&stopping_ready) => pids,
    };
    assert_eq!(running_pids.len() + stopping_pids.len(), 4);

    let killed_at = Instant::now();
    assert_eq!(kill_running_programs(), 2);
    let all: Vec<i32> = running_pids.iter().chain(&stopping_pids).copied().collect();
    // Well within the grace period the stopping program would otherwise get.
    assert_gone_within(&all, STOP_GRACE / 2).await;
    assert!(killed_at.elapsed() < STOP_GRACE);

    let ended = tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .unwrap_or_else(|_| panic!("the attempt did not end"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ended.is_err(),
        "a killed program fails its attempt: {ended:?}"
    );
    assert!(wait_for_stopping_programs(Duration::from_secs(10)));
    // Reaped: known no more.
    assert_eq!(kill_running_programs(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
