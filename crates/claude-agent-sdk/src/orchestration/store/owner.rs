//! Whether a run still runs: the owner its row names, and how that owner
//! is judged alive.
//!
//! A run that was killed (`kill -9`, out of memory, its machine stopped)
//! never records its end: its row says `running` for good. So before a run
//! is resumed or pruned, and when it is listed, the store asks whether the
//! run's owner is still alive. On this machine the owner is a process: the
//! process that started the run, not a later one the system gave the same
//! id. On another machine it is a heartbeat, written every
//! [`HEARTBEAT_EVERY`] and judged on the store's clock alone
//! ([`STALE_AFTER`]), because the machines' clocks may disagree. Taking a
//! live run for dead would have it resumed while it still runs, so a
//! doubtful heartbeat (one from the store's future) counts as fresh.

use super::{writer, RunStatus};
use crate::orchestration::journal::RunId;

/// This machine's name, for telling whether a running run's process is ours.
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether process `pid` of this machine is alive.
fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// How often a running run's process writes its heartbeat.
pub(super) const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How old a running run's heartbeat must be before another machine may
/// take the run for dead and resume it. The age is measured on one clock,
/// the store's — a PostgreSQL server's, whatever the clocks of the machines
/// that write and read the run say (a SQLite store's is its machine's):
/// the heartbeat is the store's time when it was written, and its age the
/// store's time when it is read minus it.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

/// A run row's owner, checked before the run is resumed or pruned, and when
/// it is listed.
pub(super) struct Owner<'a> {
    pub(super) status: &'a str,
    pub(super) host: &'a str,
    pub(super) pid: i64,
    /// How long ago its heartbeat was written, by the store's clock: the
    /// database computes it, in the query that reads the row, from its own
    /// time and the heartbeat (written with its own time too; see
    /// `sql::Dialect::now_us`). No machine's clock takes part.
    pub(super) heartbeat_age_us: Option<i64>,
    /// When the run started (its machine's clock: compared only with the
    /// start of a process of that machine).
    pub(super) started_us: i64,
}

impl Owner<'_> {
    /// How run `run` stands now: as its row says, but a `running` row whose
    /// owner is gone (see [`still_running`](Self::still_running)) is
    /// [crashed](RunStatus::Crashed).
    pub(super) fn status(&self, run: RunId) -> RunStatus {
        // Only a row that says `running`: one with a status of a newer
        // version reads as before.
        if self.status == RunStatus::Running.as_str() && !self.still_running(run) {
            return RunStatus::Crashed;
        }
        RunStatus::parse(self.status)
    }

    /// Whether run `run` is still running, and so must not be resumed: in
    /// this process, when it started and has not finished (one whose end
    /// never reached the store is not); on this machine, when its process is
    /// alive — and is the process that started it, not a later one given
    /// the same process id; elsewhere, when its heartbeat is younger than
    /// [`STALE_AFTER`] by the store's clock. (A heartbeat from the store's
    /// future — the server's clock set back, or a row written by a version
    /// that wrote its machine's time — is fresh: a live run is never taken
    /// for dead.)
    pub(super) fn still_running(&self, run: RunId) -> bool {
        if self.status != RunStatus::Running.as_str() {
            return false;
        }
        if self.host == host_name() {
            if self.pid == i64::from(std::process::id()) {
                return writer::runs_here(run);
            }
            return process_alive(self.pid) && !self.pid_reused();
        }
        let stale = i64::try_from(STALE_AFTER.as_micros()).unwrap_or(i64::MAX);
        self.heartbeat_age_us.is_some_and(|age| age < stale)
    }
}

impl Owner<'_> {
    /// Whether the process holding the run's process id now started after
    /// the run did: the run's own process is gone, and its id was given to
    /// another (a process starts its runs, never the other way round). The
    /// system tells start times to about a second: a start within
    /// [`PID_REUSE_SLACK_US`] of the run's is taken for its own.
    fn pid_reused(&self) -> bool {
        process_started_us(self.pid)
            .is_some_and(|started| started > self.started_us.saturating_add(PID_REUSE_SLACK_US))
    }
}

/// See [`Owner::pid_reused`].
const PID_REUSE_SLACK_US: i64 = 5_000_000;

/// When process `pid` of this machine started, in microseconds since the
/// epoch: from Linux's `/proc` (`None` elsewhere, or when it cannot tell).
fn process_started_us(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, `starttime`, in clock ticks since boot; counted after the
    // command's name, which may hold spaces and parentheses (field 3 is the
    // first after it).
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: i64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let booted_s: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: `sysconf` only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // `c_long` is narrower than `i64` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let ticks_per_second = i64::from(ticks_per_second);
    if ticks_per_second <= 0 {
        return None;
    }
    let since_boot_us = ticks.checked_mul(1_000_000)? / ticks_per_second;
    booted_s.checked_mul(1_000_000)?.checked_add(since_boot_us)
}
