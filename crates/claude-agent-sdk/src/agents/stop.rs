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

use std::io;
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
        // The program is not reaped until the end: while it is a zombie its id
        // still names its process group, which may hold processes whose parent
        // died before the stop (`(cmd &)`), out of the tree's reach. The grace
        // period ends early once the program and all it started are gone.
        loop {
            let done = root.is_none_or(has_exited)
                && !tree.iter().any(|p| alive(*p))
                && group.is_none_or(|g| !group_has_members(g));
            if done || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut survivors: Vec<Process> = tree.iter().copied().filter(|p| alive(*p)).collect();
        let later: Vec<Process> = survivors.iter().flat_map(|p| descendants(p.pid)).collect();
        survivors.extend(later);
        send(group, root, &survivors, libc::SIGKILL);
        reap(&mut child);
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

/// How long a killed program is waited for, to be reaped here rather than
/// left a zombie until the runtime next reaps orphans.
const REAP_WAIT: Duration = Duration::from_secs(1);

/// Reaps `child`, which has exited or was just sent `SIGKILL`; past
/// [`REAP_WAIT`] (a process stuck in the kernel), `kill_on_drop` and the
/// runtime's orphan reaping take over.
fn reap(child: &mut Child) {
    let deadline = Instant::now() + REAP_WAIT;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid`, our unreaped child, has exited — without reaping it, so
/// that its id keeps naming its process group.
fn has_exited(pid: i32) -> bool {
    let Ok(id) = libc::id_t::try_from(pid) else {
        return true;
    };
    // SAFETY: `siginfo_t` is plain data, for which all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable `siginfo_t`; WNOWAIT leaves the
    // child waitable, so its reaping stays with its `Child`.
    let result = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if result != 0 {
        // ECHILD: reaped already. EINTR: ask again on the next round.
        return io::Error::last_os_error().raw_os_error() != Some(libc::EINTR);
    }
    // With WNOHANG and no exit yet, nothing is filled in.
    info.si_signo == libc::SIGCHLD
}

/// Whether any live process (not a zombie) is still in process group `group`.
fn group_has_members(group: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| read_stat(pid).is_some_and(|stat| stat.group == group))
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
    read_stat(process.pid).is_some_and(|stat| stat.start == process.start)
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
            let stat = read_stat(pid)?;
            Some((
                Process {
                    pid,
                    start: stat.start,
                },
                stat.parent,
            ))
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

/// What `/proc/PID/stat` says of a live process.
struct Stat {
    parent: i32,
    group: i32,
    start: u64,
}

/// The parent, process group and start time of `pid`, from `/proc/PID/stat`;
/// `None` for a zombie.
fn read_stat(pid: i32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (0), ppid (1), pgrp (2), ..., starttime (19).
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some(Stat {
        parent: fields.get(1)?.parse().ok()?,
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_parent_and_start_time() {
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let stat = read_stat(me).expect("our own stat");
        let (ppid, start) = (stat.parent, stat.start);
        assert!(ppid > 0);
        assert!(start > 0);
        assert!(alive(Process { pid: me, start }));
        assert!(!alive(Process {
            pid: me,
            start: start + 1
        }));
    }
}
