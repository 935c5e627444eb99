//! Running the `orchestra` binary to its end, for tests that look at what it
//! printed and how it exited.

use std::path::Path;

use super::{orchestra, texts};

/// What a finished `orchestra` command left.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `orchestra ARGS... FILE` (with the tests' clean environment and the
/// variables `env`) to its end.
pub fn outcome(args: &[&str], file: &Path, env: &[(&str, &str)]) -> Outcome {
    let mut command = orchestra();
    command.args(args).arg(file);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    Outcome {
        code: output.status.code(),
        stdout,
        stderr,
    }
}

/// Runs `orchestra ARGS --store STORE` (with the tests' clean environment,
/// standard input not a terminal) to its end.
pub fn on_store(store: &Path, args: &[&str]) -> Outcome {
    let output = orchestra()
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    Outcome {
        code: output.status.code(),
        stdout,
        stderr,
    }
}

/// Whether a live process's command line (arguments joined by spaces)
/// contains `marker`: what a run must not leave behind.
pub fn is_running(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
                String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(marker)
            })
        })
}

/// A workflow whose flow is one parallel group of `count` agents `a0`, `a1`,
/// …, with the group's `settings` and each agent's `agent` settings (after
/// its id).
pub fn parallel_of(count: usize, settings: &str, agent: &str) -> String {
    use std::fmt::Write as _;
    let ids: Vec<String> = (0..count).map(|i| format!("\"a{i}\"")).collect();
    let mut text = format!("[flow]\nparallel = [{}]\n{settings}\n", ids.join(", "));
    for i in 0..count {
        let _ = write!(text, "\n[[agents]]\nid = \"a{i}\"\n{agent}\n");
    }
    text
}
