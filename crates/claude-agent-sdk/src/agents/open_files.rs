//! The open-file limit of a process that runs many programs at once.
//!
//! Each running program holds a handful of descriptors (its three pipes, the
//! process's own), so the common soft limit of 1,024 runs out near 150
//! programs at once: with `parallel_limit = 1000`, two out of three failed to
//! start. A process may raise its soft limit up to its hard limit without any
//! privilege; [`raise_open_files_limit`] does, and a start that still finds no
//! descriptor is retried as a transient failure.

/// The highest soft limit asked for, even when the hard limit is higher.
const CEILING: libc::rlim_t = 1 << 20;

/// Raises this process's soft limit of open files to its hard limit (at most
/// 1,048,576), and returns the soft limit now in force (`None` when it cannot
/// be read).
pub fn raise_open_files_limit() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let wanted = limit.rlim_max.min(CEILING);
    if wanted > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `setrlimit` reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(wanted);
        }
    }
    Some(limit.rlim_cur)
}
