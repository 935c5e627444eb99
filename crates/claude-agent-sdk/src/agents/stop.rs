//! Stopping a program an attempt no longer waits for — and everything it
//! started — the way the official SDKs stop Claude Code: its stdin closed
//! (the attempt's pipe is gone), `SIGTERM` to let it clean up, then after a
//! grace period `SIGKILL`.
//!
//! Killing the program's process group is not enough: Claude Code runs its
//! Bash tool commands and hooks in sessions of their own (and any program may
//! call `setsid`), so a `cargo test` it started would survive, re-parented to
//! init. The processes are therefore found by parentage, not by group: the
//! program's descendants are read from `/proc` when the stop begins, each
//! named by its id *and* start time (so a reused id is never signalled), and
//! after the grace period the survivors — and whatever they started in the
//! meantime — are killed.
//!
//! The grace period runs on a thread of its own, since the attempt's future
//! is being dropped; [`wait_for_stopping_programs`] lets a process that is
//! about to exit give those threads their time.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::process::Child;

/// How long a stopped program has between `SIGTERM` and `SIGKILL`.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How many stops are under way.
static STOPPING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Waits (at most `timeout`) until every program being stopped is gone, for
/// a process about to exit: its exit would end the grace periods early and
/// leave programs that ignore `SIGTERM` running. Returns whether all are gone.
pub fn wait_for_stopping_programs(timeout: Duration) -> bool {
    let (count, done) = &STOPPING;
    let guard = count.lock().unwrap_or_else(PoisonError::into_inner);
    let (guard, _) = done
        .wait_timeout_while(guard, timeout, |stopping| *stopping > 0)
        .unwrap_or_else(PoisonError::into_inner);
    *guard == 0
}

/// A process, by id and start time (in clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process {
    pid: i32,
    start: u64,
}

/// Stops `child` (not reaped yet), whose process group is `group` when it has
/// one of its own, and every process it started.
pub(crate) fn stop(child: Child, group: Option<i32>) {
    let root = child.id().and_then(|id| i32::try_from(id).ok());
    let tree = root.map(descendants).unwrap_or_default();
    send(group, root, &tree, libc::SIGTERM);
    {
        let (count, _) = &STOPPING;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }
    let left = tree.clone();
    let finish = move || {
        let mut child = child;
        let deadline = Instant::now() + STOP_GRACE;
        // The grace period ends early once the program and all it started
        // are gone.
        let mut exited = false;
        loop {
            exited = exited || !matches!(child.try_wait(), Ok(None));
            let done = exited && !tree.iter().any(|p| alive(*p));
            if done || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The group only while the program is unreaped: its id names it.
        let group = if exited { None } else { group };
        let mut survivors: Vec<Process> = tree.iter().copied().filter(|p| alive(*p)).collect();
        let later: Vec<Process> = survivors.iter().flat_map(|p| descendants(p.pid)).collect();
        survivors.extend(later);
        send(group, None, &survivors, libc::SIGKILL);
        // `kill_on_drop` kills the program itself if it is still running.
        drop(child);
        stopped();
    };
    if std::thread::Builder::new()
        .name("agent-stop".into())
        .spawn(finish)
        .is_err()
    {
        // No thread, no grace period: the program was killed as the closure
        // holding it was dropped (`kill_on_drop`); kill the rest.
        send(None, None, &left, libc::SIGKILL);
        stopped();
    }
}

/// Counts one stop as finished.
fn stopped() {
    let (count, done) = &STOPPING;
    let mut stopping = count.lock().unwrap_or_else(PoisonError::into_inner);
    *stopping = stopping.saturating_sub(1);
    done.notify_all();
}

/// Sends `signal` to `group` (negated), to `root`, and to each of `processes`
/// still alive under the same start time.
fn send(group: Option<i32>, root: Option<i32>, processes: &[Process], signal: i32) {
    if let Some(group) = group.filter(|g| *g > 1) {
        // SAFETY: `kill` has no memory-safety preconditions; the group is that
        // of our own unreaped child, so its id cannot have been reused.
        unsafe {
            libc::kill(-group, signal);
        }
    }
    if let Some(root) = root.filter(|pid| *pid > 1) {
        // SAFETY: as above; `root` is our own unreaped child.
        unsafe {
            libc::kill(root, signal);
        }
    }
    for process in processes {
        if process.pid > 1 && alive(*process) {
            // SAFETY: `kill` has no memory-safety preconditions; the start
            // time was just checked, so the id still names that process.
            unsafe {
                libc::kill(process.pid, signal);
            }
        }
    }
}

/// Whether `process` still runs (the same id with the same start time).
fn alive(process: Process) -> bool {
    read_stat(process.pid).is_some_and(|(_, start)| start == process.start)
}

/// Every descendant of `root` (not `root` itself), from `/proc`.
fn descendants(root: i32) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let table: Vec<(Process, i32)> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (ppid, start) = read_stat(pid)?;
            Some((Process { pid, start }, ppid))
        })
        .collect();
    let mut found: Vec<Process> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (process, ppid) in &table {
            if *ppid == parent && !found.contains(process) {
                found.push(*process);
                frontier.push(process.pid);
            }
        }
    }
    found
}

/// The parent id and start time of `pid`, from `/proc/PID/stat`.
fn read_stat(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (0), ppid (1), ..., starttime (19).
    if fields.first() == Some(&"Z") {
        return None;
    }
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_parent_and_start_time() {
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let (ppid, start) = read_stat(me).unwrap_or((0, 0));
        assert!(ppid > 0);
        assert!(start > 0);
        assert!(alive(Process { pid: me, start }));
        assert!(!alive(Process {
            pid: me,
            start: start + 1
        }));
    }
}
