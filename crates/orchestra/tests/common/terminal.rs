//! `orchestra` on a pseudo-terminal (`script` from util-linux, which
//! `.ci/run` installs): run to its end, or read as it writes, for the tests
//! that answer its prompts or signal it at one.

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::test_store;

/// `script` running `command`, a command line that runs orchestra, on a
/// pseudo-terminal, its runs going to the tests' store unless the command
/// names another.
fn script(command: &str) -> std::process::Command {
    let mut script = std::process::Command::new("script");
    // Runs go to the tests' store, not the user's.
    // `script` runs the command with `$SHELL`; pin it so the command means the
    // same on every machine (POSIX sh: no bash-isms).
    script
        .env("ORCHESTRA_STORE", test_store())
        .env("SHELL", "/bin/sh")
        .args(["-qec", command, "/dev/null"]);
    script
}

/// Runs `shell`, a command line that runs orchestra, on a pseudo-terminal of
/// `rows` × `cols`, in colour or with `NO_COLOR` set: its exit code and
/// everything the terminal received.
pub fn on_terminal(rows: usize, cols: usize, shell: &str, colour: bool) -> (Option<i32>, String) {
    let mut script = script(&format!("stty rows {rows} cols {cols}; {shell}"));
    script.env("TERM", "xterm-256color");
    if colour {
        script.env_remove("NO_COLOR");
    } else {
        script.env("NO_COLOR", "1");
    }
    let output = script
        .output()
        .unwrap_or_else(|e| panic!("`script` (util-linux) is needed: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A command line running on a pseudo-terminal (with `NO_COLOR` set), what
/// the terminal receives read as it comes; what is typed goes to its input.
pub struct Terminal {
    /// The `script` process.
    pub child: Child,
    chunks: mpsc::Receiver<String>,
    /// All the terminal received so far.
    pub seen: String,
}

impl Terminal {
    /// Starts `command`, a command line that runs orchestra, with the
    /// variables `env` besides.
    pub fn start(command: &str, env: &[(&str, &OsStr)]) -> Self {
        let mut script = script(command);
        for (name, value) in env {
            script.env(name, value);
        }
        let mut child = script
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("script (util-linux) is needed: {e}"));
        let mut stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (chunks_tx, chunks) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0
                    || chunks_tx
                        .send(String::from_utf8_lossy(&buffer[..read]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        Self {
            child,
            chunks,
            seen: String::new(),
        }
    }

    /// Whether `text` came within `timeout`.
    pub fn read_until(&mut self, text: &str, timeout: Duration) -> bool {
        let started = Instant::now();
        while !self.seen.contains(text) {
            if started.elapsed() > timeout {
                return false;
            }
            if let Ok(chunk) = self.chunks.recv_timeout(Duration::from_millis(20)) {
                self.seen.push_str(&chunk);
            }
        }
        true
    }

    /// Keeps what came so far.
    pub fn drain(&mut self) {
        self.seen.extend(self.chunks.try_iter());
    }

    /// Types `text` (the input stays open).
    pub fn type_in(&mut self, text: &str) {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("no stdin"));
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Its exit status, if it exits within `timeout`; what comes meanwhile
    /// is kept.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        let status = loop {
            self.drain();
            if let Some(status) = self.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
                break Some(status);
            }
            if started.elapsed() > timeout {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.drain();
        status
    }
}
