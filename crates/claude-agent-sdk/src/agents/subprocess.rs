//! Running one program for an agent attempt: input on stdin, stdout collected (or
//! read line by line), the tail of stderr kept for error messages, and no
//! orphans.
//!
//! The program runs in a process group of its own. If the attempt ends before
//! the program does — a timeout, a cancellation, an output that grew too large —
//! the future is dropped and the program is stopped with everything it started,
//! its own sessions included: `SIGTERM`, a grace period, then `SIGKILL` (see
//! [`stop`](super::stop)). A program that exits is done: its pipes get
//! [`PIPE_DRAIN`] more to reach their end (a process it left in the
//! background may hold them open for ever), and what it left running in its
//! process group is stopped the same way.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// How much of stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 8 * 1024;
/// How many lines of that tail an error message shows.
const STDERR_TAIL_LINES: usize = 20;

/// What to run and how.
#[derive(Clone)]
pub(crate) struct Invocation {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) env_remove: Vec<OsString>,
    pub(crate) env_clear: bool,
    pub(crate) cwd: Option<PathBuf>,
    /// Written to stdin, which is then closed; `None` gives the program no stdin.
    pub(crate) stdin: Option<Vec<u8>>,
    /// The most stdout kept: the whole of it, or with
    /// [`keep_stdout`](Self::keep_stdout) off, the line being read.
    pub(crate) max_stdout: usize,
    /// Whether stdout is kept whole for the result. Off, the lines handed to
    /// the line handler are dropped as they go (only the start of stdout is
    /// kept, for messages), so that a long run streaming its progress is not
    /// stopped for printing more than `max_stdout` in all.
    pub(crate) keep_stdout: bool,
    pub(crate) own_process_group: bool,
    /// Flags whose value (the next argument) may hold secrets — a JSON
    /// config with tokens in it — and is shown as `<redacted>`.
    pub(crate) secret_flags: &'static [&'static str],
}

/// Shows the environment's names, not its values: API keys are handed to
/// programs there, and agents' `Debug` output ends up in logs; nor the
/// values of secret flags.
impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<(&OsString, &str)> = self
            .env
            .iter()
            .map(|(name, _)| (name, "<redacted>"))
            .collect();
        let args: Vec<std::borrow::Cow<'_, str>> = self.shown_args().collect();
        f.debug_struct("Invocation")
            .field("program", &self.program)
            .field("args", &args)
            .field("env", &env)
            .field("env_remove", &self.env_remove)
            .field("env_clear", &self.env_clear)
            .field("cwd", &self.cwd)
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
            .field("max_stdout", &self.max_stdout)
            .field("keep_stdout", &self.keep_stdout)
            .field("own_process_group", &self.own_process_group)
            .finish()
    }
}

impl Invocation {
    pub(crate) fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            env_clear: false,
            cwd: None,
            stdin: None,
            max_stdout: 16 * 1024 * 1024,
            keep_stdout: true,
            own_process_group: true,
            secret_flags: &[],
        }
    }

    /// Leaves `key` out of the program's environment: inherited or set
    /// before with `env`.
    pub(crate) fn remove_env(&mut self, key: OsString) {
        self.env.retain(|(name, _)| *name != key);
        self.env_remove.push(key);
    }

    /// The arguments as messages show them: lossily decoded, the values of
    /// [`secret_flags`](Self::secret_flags) redacted.
    fn shown_args(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        let mut follows_secret_flag = false;
        self.args.iter().map(move |arg| {
            let shown = if follows_secret_flag {
                "<redacted>".into()
            } else {
                arg.to_string_lossy()
            };
            follows_secret_flag = self.secret_flags.iter().any(|flag| arg == flag);
            shown
        })
    }

    /// The command line, for messages: program and arguments, lossily
    /// decoded, on one line (a multi-line script's line breaks shown as
    /// `\n`: a message's first line is its headline).
    pub(crate) fn display(&self) -> String {
        let mut out = self.program.to_string_lossy().into_owned();
        for arg in self.shown_args() {
            let arg = arg.trim_end_matches('\n').replace('\n', "\\n");
            if arg.len() > 60 {
                let cut = arg.char_indices().nth(57).map_or(arg.len(), |(i, _)| i);
                let _ = write!(out, " {}…", &arg[..cut]);
            } else {
                let _ = write!(out, " {arg}");
            }
        }
        out
    }
}

/// Takes each complete stdout line as it arrives.
pub(crate) type LineHandler<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// How a program ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr_tail: String,
}

/// Why a program could not be run to its end.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// The program could not be started.
    Spawn(io::Error),
    /// Reading its output or waiting for it failed.
    Io(io::Error),
    /// Its stdout grew past the limit.
    StdoutTooLarge(usize),
    /// The process (or the system) had no file descriptor left to start it
    /// with: a transient condition when many programs run at once.
    NoDescriptors(io::Error),
}

impl RunFailure {
    /// The error for a failed start: out of file descriptors, or another.
    fn spawn(error: io::Error) -> Self {
        #[cfg(unix)]
        if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
            return Self::NoDescriptors(error);
        }
        Self::Spawn(error)
    }

    /// The transient error for [`NoDescriptors`](Self::NoDescriptors).
    pub(crate) fn no_descriptors(
        program: &str,
        error: &io::Error,
    ) -> crate::orchestration::OrchestrationError {
        crate::orchestration::OrchestrationError::Transient {
            message: format!(
                "cannot start `{program}`: {error} (too many programs at once for the \
                 open-file limit, `ulimit -n`; retried)"
            ),
            retry_after: None,
            details: None,
        }
    }
}

/// The environment variable that gives a program the idempotency key of the
/// attempt it runs in (see `ExecutionContext::idempotency_key`).
pub const IDEMPOTENCY_KEY_VARIABLE: &str = "AGENT_IDEMPOTENCY_KEY";

/// Runs `invocation` to its end, handing each complete stdout line (without its
/// newline) to `on_line` as it arrives. Dropping the future kills the program's
/// process group.
pub(crate) async fn run(
    invocation: &Invocation,
    mut on_line: Option<LineHandler<'_>>,
) -> Result<Finished, RunFailure> {
    let mut command = Command::new(&invocation.program);
    command
        .args(&invocation.args)
        .stdin(if invocation.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if invocation.env_clear {
        command.env_clear();
    }
    for name in &invocation.env_remove {
        command.env_remove(name);
    }
    // A program can avoid doing a side effect twice when a resumed run runs
    // its attempt again: the attempt's key is in its environment.
    if let Some(key) = crate::orchestration::ExecutionContext::idempotency_key() {
        command.env(IDEMPOTENCY_KEY_VARIABLE, key);
    }
    command.envs(invocation.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &invocation.cwd {
        command.current_dir(cwd);
    }
    #[cfg(unix)]
    if invocation.own_process_group {
        command.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: the hook only calls `prctl`, which is async-signal-safe.
        unsafe {
            command.pre_exec(super::stop::become_subreaper);
        }
    }
    let child = command.spawn().map_err(RunFailure::spawn)?;
    let mut running = Running::new(child, invocation.own_process_group);
    let exit_of = running.pid;

    let child = running.child().map_err(RunFailure::Io)?;
    let stdin = child.stdin.take();
    // The output pipes stay with the child: a program stopped while they are
    // read still has them read during its grace period (see `stop`).
    let (stdout, stderr) = (child.stdout.as_mut(), child.stderr.as_mut());
    // Once the program has exited, its pipes get [`PIPE_DRAIN`] more to
    // reach their end: a process it left behind may hold them open for ever.
    let cut = CancellationToken::new();
    let feed = async {
        if let (Some(mut pipe), Some(bytes)) = (stdin, invocation.stdin.as_deref()) {
            // A program that exits without reading its input is not an error here:
            // its exit status says what happened.
            tokio::select! {
                _ = pipe.write_all(bytes) => {}
                () = cut.cancelled() => {}
            }
        }
        Ok(())
    };
    let keep_all = invocation.keep_stdout || on_line.is_none();
    let collect = read_stdout(stdout, &cut, invocation.max_stdout, keep_all, &mut on_line);
    let tail = async { Ok(read_tail(stderr, &cut).await) };
    let cutoff = async {
        if let Some(pid) = exit_of {
            exited(pid).await;
            tokio::time::sleep(PIPE_DRAIN).await;
            cut.cancel();
        }
        std::future::pending::<std::convert::Infallible>().await
    };
    // A failure to collect stdout ends the run at once (the program is then
    // stopped): waiting for stderr's end too would wait for as long as any
    // process the program started keeps it open.
    let ((), stdout, stderr_tail) = tokio::select! {
        result = async { tokio::try_join!(feed, collect, tail) } => result?,
        never = cutoff => match never {},
    };
    let status = running.wait().await.map_err(RunFailure::Io)?;
    Ok(Finished {
        status,
        stdout,
        stderr_tail: last_lines(&stderr_tail, STDERR_TAIL_LINES),
    })
}

/// How long a program's output pipes are read after it has exited, for
/// what it wrote last, before they are left to whatever still holds them.
const PIPE_DRAIN: Duration = Duration::from_millis(200);

/// Waits for the program `pid` to exit (not reaping it).
#[cfg(unix)]
async fn exited(pid: i32) {
    super::stop::exited(pid).await;
}

/// Without `waitid`, the pipes' end is the only sign of an exit.
#[cfg(not(unix))]
async fn exited(_pid: i32) {
    std::future::pending::<()>().await;
}

/// Reads `pipe` into `buffer`, as at its end once `cut` is cancelled.
async fn read_or_cut(
    pipe: &mut (impl AsyncRead + Unpin),
    buffer: &mut [u8],
    cut: &CancellationToken,
) -> io::Result<usize> {
    tokio::select! {
        biased;
        read = pipe.read(buffer) => read,
        () = cut.cancelled() => Ok(0),
    }
}

/// A started program that is stopped, with everything it started, unless it
/// was reaped (see [`stop`](super::stop)); until then it counts among the
/// programs [`kill_running_programs`](super::stop::kill_running_programs) kills.
struct Running {
    child: Option<Child>,
    pid: Option<i32>,
    group: Option<i32>,
}

impl Running {
    fn new(child: Child, own_group: bool) -> Self {
        let pid = child.id().and_then(|id| i32::try_from(id).ok());
        let group = pid.filter(|_| own_group);
        #[cfg(unix)]
        if let Some(pid) = pid {
            super::stop::track(pid, group);
        }
        Self {
            child: Some(child),
            pid,
            group,
        }
    }

    /// The program, until it is reaped.
    fn child(&mut self) -> io::Result<&mut Child> {
        self.child
            .as_mut()
            .ok_or_else(|| io::Error::other("the program was already reaped"))
    }

    /// Waits for the program's exit; stops what it left running in its
    /// process group, and reaps it.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        #[cfg(unix)]
        if let Some(pid) = self.pid {
            exited(pid).await;
            if let Some(status) = super::stop::stop_leftovers(&mut self.child, self.group)? {
                return Ok(status);
            }
            // It has exited, with nothing left in its group: reaped next.
            super::stop::untrack(pid);
        }
        let status = self.child()?.wait().await?;
        self.child = None;
        Ok(status)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            #[cfg(unix)]
            super::stop::stop(child, self.group);
            // Elsewhere `kill_on_drop` kills the program itself.
            #[cfg(not(unix))]
            drop(child);
        }
    }
}

/// How much of the start of stdout is kept when the lines are not.
const STDOUT_HEAD_BYTES: usize = 4 * 1024;

/// Reads stdout to its end, handing complete lines to `on_line`; keeps all of
/// it, or with `keep_all` off (and a line handler) only its start.
async fn read_stdout(
    pipe: Option<impl AsyncRead + Unpin>,
    cut: &CancellationToken,
    limit: usize,
    keep_all: bool,
    on_line: &mut Option<LineHandler<'_>>,
) -> Result<Vec<u8>, RunFailure> {
    let Some(mut pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut head = Vec::new();
    let mut line_start = 0;
    // Where the search for the next newline resumes: a long line arriving in
    // many reads is searched once, not once per read.
    let mut searched = 0;
    let mut chunk = vec![0_u8; 64 * 1024];
    loop {
        let read = read_or_cut(&mut pipe, &mut chunk, cut)
            .await
            .map_err(RunFailure::Io)?;
        if read == 0 {
            break;
        }
        if out.len() + read > limit {
            return Err(RunFailure::StdoutTooLarge(limit));
        }
        out.extend_from_slice(&chunk[..read]);
        if let Some(on_line) = on_line.as_mut() {
            while let Some(offset) = out[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + offset;
                let line = &out[line_start..end];
                on_line(line.strip_suffix(b"\r").unwrap_or(line));
                line_start = end + 1;
                searched = line_start;
            }
            searched = out.len();
            if !keep_all {
                keep_head(&mut head, &out[..line_start]);
                out.drain(..line_start);
                searched -= line_start;
                line_start = 0;
            }
        }
    }
    if let Some(on_line) = on_line.as_mut() {
        if line_start < out.len() {
            on_line(&out[line_start..]);
        }
    }
    if keep_all {
        Ok(out)
    } else {
        keep_head(&mut head, &out);
        Ok(head)
    }
}

/// Appends to `head` what it has room for of `bytes`, up to [`STDOUT_HEAD_BYTES`].
fn keep_head(head: &mut Vec<u8>, bytes: &[u8]) {
    let room = STDOUT_HEAD_BYTES.saturating_sub(head.len());
    head.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Reads a pipe to its end, keeping only the last [`STDERR_TAIL_BYTES`].
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>, cut: &CancellationToken) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut tail = Vec::new();
    let mut chunk = vec![0_u8; 8 * 1024];
    // A read error ends the tail early; what was read still helps.
    while let Ok(read) = read_or_cut(&mut pipe, &mut chunk, cut).await {
        if read == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..read]);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    if tail.len() > STDERR_TAIL_BYTES {
        tail.drain(..tail.len() - STDERR_TAIL_BYTES);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

/// The last `count` non-empty-trailing lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// `"; stderr: …"` with the tail, or nothing when stderr was empty.
pub(crate) fn stderr_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- stderr (last lines) ---\n{tail}")
    }
}

/// How an exit status reads in a message: "exit code 3" or "signal 9".
pub(crate) fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal}");
        }
    }
    status.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn running_out_of_descriptors_is_transient() {
        let failure = RunFailure::spawn(io::Error::from_raw_os_error(libc::EMFILE));
        let RunFailure::NoDescriptors(error) = failure else {
            panic!("EMFILE should be NoDescriptors");
        };
        let error = RunFailure::no_descriptors("sleep", &error);
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("ulimit -n"), "{error}");
        assert!(matches!(
            RunFailure::spawn(io::Error::from_raw_os_error(libc::ENOENT)),
            RunFailure::Spawn(_)
        ));
    }

    #[test]
    fn keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n\n", 2), "b\nc");
        assert_eq!(last_lines("", 2), "");
        assert_eq!(stderr_suffix("  \n"), "");
        assert!(stderr_suffix("boom").ends_with("boom"));
    }

    #[test]
    fn displays_long_arguments_shortened() {
        let mut inv = Invocation::new("prog");
        inv.args = vec!["-x".into(), "y".repeat(100).into()];
        let shown = inv.display();
        assert!(shown.starts_with("prog -x yyy"));
        assert!(shown.ends_with('…'));
        assert!(shown.len() < 80);
    }

    #[test]
    fn displays_a_multi_line_script_on_one_line() {
        let mut inv = Invocation::new("sh");
        inv.args = vec!["-c".into(), "set -e\nexit 1\n".into()];
        assert_eq!(inv.display(), "sh -c set -e\\nexit 1");
    }
}
