//! Stopping a program an attempt no longer waits for — and everything it
//! started — the way the official SDKs stop Claude Code: its stdin closed
//! (the attempt's pipe is gone), `SIGTERM` (with `SIGCONT`, for a program
//! suspended by job control) to let it clean up, then after a grace period
//! `SIGKILL`.
//!
//! Killing the program's process group is not enough: Claude Code runs its
//! Bash tool commands and hooks in sessions of their own (and any program may
//! call `setsid`), so a `cargo test` it started would survive, re-parented to
//! init. The processes are therefore found by parentage, not by group: the
//! program is made a *child subreaper* before it starts (Linux), so what its
//! children leave behind — a daemon that forked twice — is re-parented to it
//! rather than to init and stays in its tree; the tree is read from `/proc`
//! when the stop begins and again while the program lives (a clean-up hook it
//! starts as it shuts down is found too), each process named by its id *and*
//! start time (so a reused id is never signalled); after the grace period
//! the survivors — and whatever they started in the meantime — are killed.
//! During the grace period the program's stdout and stderr are still read
//! (and dropped), so a program that says what it is doing as it shuts down
//! does not die of a broken pipe.
//!
//! A program that exits with processes left in its group (`cmd &` in a
//! script) has them stopped the same way ([`stop_leftovers`]): when a run
//! returns, nothing it started is still running. A daemon started in a
//! session of its own that outlives the program is out of reach by then.
//!
//! The grace period runs on a thread of its own, since the attempt's future
//! is being dropped; [`wait_for_stopping_programs`] lets a process that is
//! about to exit give those threads their time, and
//! [`kill_running_programs`] lets one that must exit now (a second Ctrl-C)
//! kill at once every program still running or stopping, with what it
//! started: each program is known from its start until it is reaped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
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

/// The programs started and not reaped yet, by process id: their process
/// group (when they have one of their own), and the processes a stop found
/// they started (which may have left their tree since).
static LIVE: Mutex<Option<HashMap<i32, Program>>> = Mutex::new(None);

/// What [`LIVE`] knows of a program.
#[derive(Debug, Default)]
struct Program {
    group: Option<i32>,
    started: Vec<Process>,
}

fn live() -> MutexGuard<'static, Option<HashMap<i32, Program>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts program `pid`, just started (process group `group` when it has
/// one of its own), among the live ones until [`untrack`].
pub(crate) fn track(pid: i32, group: Option<i32>) {
    live().get_or_insert_with(HashMap::new).insert(
        pid,
        Program {
            group,
            started: Vec::new(),
        },
    );
}

/// Forgets program `pid`: called just before it is reaped, so that
/// [`kill_running_programs`], which signals under the same lock, never
/// signals an id the system may have given to another process.
pub(crate) fn untrack(pid: i32) {
    if let Some(programs) = live().as_mut() {
        programs.remove(&pid);
    }
}

/// Records the processes a stop found program `pid` started.
fn remember_started(pid: i32, started: &[Process]) {
    if let Some(program) = live().as_mut().and_then(|programs| programs.get_mut(&pid)) {
        program.started.clear();
        program.started.extend_from_slice(started);
    }
}

/// Kills (`SIGKILL`) at once every program the agents started that has not
/// been reaped yet — running, or being stopped in its grace period — with
/// every process it started (found by parentage, as a stop finds them, and
/// those a stop found before) and what is left in its process group.
/// Returns how many programs there were.
///
/// For a process that must exit now, without the grace periods
/// [`wait_for_stopping_programs`] would wait for (a second Ctrl-C): it
/// waits for nothing, so the process can exit right after and leave no
/// program running. The attempts running those programs see them die (a
/// signal 9); programs started after the call are not concerned.
pub fn kill_running_programs() -> usize {
    let guard = live();
    let Some(programs) = guard.as_ref().filter(|programs| !programs.is_empty()) else {
        return 0;
    };
    let table = process_table();
    for (&pid, program) in programs {
        let mut processes = descendants_in(&table, pid);
        for process in &program.started {
            if !processes.contains(process) {
                processes.push(*process);
            }
        }
        send(program.group, Some(pid), &processes, libc::SIGKILL);
    }
    programs.len()
}

/// A process, by id and start time (in clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process {
    pid: i32,
    start: u64,
}

/// Stops `child` (not reaped yet), whose process group is `group` when it has
/// one of its own, and every process it started.
pub(crate) fn stop(mut child: Child, group: Option<i32>) {
    let root = child.id().and_then(|id| i32::try_from(id).ok());
    let mut tree = root.map(descendants).unwrap_or_default();
    send(group, root, &tree, libc::SIGTERM);
    // A suspended process acts on SIGTERM only once it is continued.
    send(group, root, &tree, libc::SIGCONT);
    let mut pipes = Drained::take_from(&mut child);
    {
        let (count, _) = &STOPPING;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }
    if let Some(root) = root {
        remember_started(root, &tree);
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
            pipes.drain();
            let root_exited = root.is_none_or(has_exited);
            if let (Some(root), false) = (root, root_exited) {
                // What the program starts as it shuts down (a hook) is
                // killed with the rest if it outlives the grace period.
                let known = tree.len();
                for process in descendants(root) {
                    if !tree.contains(&process) {
                        tree.push(process);
                    }
                }
                if tree.len() > known {
                    remember_started(root, &tree);
                }
            }
            let done = root_exited
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
        if let Some(root) = root {
            untrack(root);
        }
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
        if let Some(root) = root {
            untrack(root);
        }
        stopped();
    }
}

/// Stops what `child` — which has exited, not reaped yet — left running in
/// its process group `group`, as [`stop`] does, and returns its exit status;
/// `Ok(None)` when nothing was left (the caller reaps the child then).
pub(crate) fn stop_leftovers(
    child: &mut Option<Child>,
    group: Option<i32>,
) -> io::Result<Option<ExitStatus>> {
    let (Some(group), Some(pid)) = (
        group,
        child
            .as_ref()
            .and_then(Child::id)
            .and_then(|id| i32::try_from(id).ok()),
    ) else {
        return Ok(None);
    };
    if !group_has_members(group) {
        return Ok(None);
    }
    let status = exit_status(pid)?;
    if let Some(child) = child.take() {
        stop(child, Some(group));
    }
    Ok(Some(status))
}

/// Waits until `pid`, our child, has exited, without reaping it; polled
/// (from every millisecond up to every 50), since the runtime's own wait
/// would reap it.
pub(crate) async fn exited(pid: i32) {
    let mut pause = Duration::from_millis(1);
    while !has_exited(pid) {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Makes the program about to be started a child subreaper (Linux), so the
/// processes its children leave behind stay in its tree (see the module
/// docs). Called between `fork` and `exec`.
#[cfg(target_os = "linux")]
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: `prctl` with PR_SET_CHILD_SUBREAPER takes plain integers and
    // is async-signal-safe, as code between fork and exec must be.
    let result = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The stdout and stderr of a program being stopped, read and dropped so
/// that its writes during the grace period do not fail.
struct Drained {
    pipes: Vec<File>,
}

impl Drained {
    /// Takes `child`'s output pipes, made non-blocking.
    fn take_from(child: &mut Child) -> Self {
        let mut fds = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            fds.extend(pipe.into_owned_fd().ok());
        }
        if let Some(pipe) = child.stderr.take() {
            fds.extend(pipe.into_owned_fd().ok());
        }
        let pipes = fds
            .into_iter()
            .filter(|fd| set_non_blocking(fd).is_ok())
            .map(File::from)
            .collect();
        Self { pipes }
    }

    /// Reads what is waiting in each pipe; a pipe at its end is closed.
    fn drain(&mut self) {
        let mut buffer = [0_u8; 8 * 1024];
        self.pipes.retain_mut(|pipe| loop {
            match pipe.read(&mut buffer) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return error.kind() == io::ErrorKind::WouldBlock,
            }
        });
    }
}

fn set_non_blocking(fd: &OwnedFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: `fcntl` on a descriptor we own, with plain integer arguments.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
    match peek_exit(pid) {
        Ok(status) => status.is_some(),
        // ECHILD: reaped already. EINTR: ask again on the next round.
        Err(error) => error.raw_os_error() != Some(libc::EINTR),
    }
}

/// How `pid`, our child that has exited, ended — without reaping it.
fn exit_status(pid: i32) -> io::Result<ExitStatus> {
    peek_exit(pid)?.ok_or_else(|| io::Error::other("the program has not exited"))
}

/// `pid`'s exit status if it has exited (`None` while it runs), left
/// waitable (`WNOWAIT`), so its reaping stays with its `Child`.
fn peek_exit(pid: i32) -> io::Result<Option<ExitStatus>> {
    let id = libc::id_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: `siginfo_t` is plain data, for which all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable `siginfo_t`; WNOWAIT leaves the
    // child waitable.
    let result = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // With WNOHANG and no exit yet, nothing is filled in.
    if info.si_signo != libc::SIGCHLD {
        return Ok(None);
    }
    // SAFETY: for SIGCHLD the kernel filled in the child fields.
    let value = unsafe { info.si_status() };
    // The encoding `wait` uses: an exit code in the second byte, or the
    // signal (with 0x80 for a core dump) in the first.
    let raw = match info.si_code {
        libc::CLD_EXITED => (value & 0xff) << 8,
        libc::CLD_DUMPED => value | 0x80,
        _ => value,
    };
    Ok(Some(ExitStatus::from_raw(raw)))
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

/// Sends `signal` to `group` (negated) — or, without one, to `root` — and to
/// each of `processes` still alive under the same start time and outside
/// the group (each process gets the signal once).
fn send(group: Option<i32>, root: Option<i32>, processes: &[Process], signal: i32) {
    let group = group.filter(|g| *g > 1);
    if let Some(group) = group {
        // SAFETY: `kill` has no memory-safety preconditions; the group is that
        // of our own unreaped child, so its id cannot have been reused.
        unsafe {
            libc::kill(-group, signal);
        }
    } else if let Some(root) = root.filter(|pid| *pid > 1) {
        // SAFETY: as above; `root` is our own unreaped child.
        unsafe {
            libc::kill(root, signal);
        }
    }
    for process in processes {
        let outside_group = read_stat(process.pid)
            .is_some_and(|stat| stat.start == process.start && Some(stat.group) != group);
        if process.pid > 1 && outside_group {
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
    descendants_in(&process_table(), root)
}

/// Every live process and its parent's id, from `/proc`.
fn process_table() -> Vec<(Process, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
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
        .collect()
}

/// Every descendant of `root` (not `root` itself) in `table`.
fn descendants_in(table: &[(Process, i32)], root: i32) -> Vec<Process> {
    let mut found: Vec<Process> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (process, ppid) in table {
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
