//! [`CommandAgent`]: an agent that runs a program.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use crate::agents::delta::{DeltaHandler, DeltaSink, TextDelta};
use crate::agents::subprocess::{self, describe_status, stderr_suffix, Invocation, RunFailure};
use crate::orchestration::{
    Agent, AgentError, AgentInput, AgentOutput, OrchestrationError, Result,
};

/// What the program gets on its standard input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StdinMode {
    /// The input's content (the default).
    #[default]
    Content,
    /// The whole [`AgentInput`] as JSON: `{"content", "context", "metadata"}`.
    InputJson,
    /// Nothing: stdin is `/dev/null`.
    Null,
}

/// How the program's standard output becomes the agent's output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputMode {
    /// Stdout is the content, with trailing whitespace trimmed (the default).
    #[default]
    Text,
    /// Stdout is the content exactly as printed.
    RawText,
    /// Stdout is an [`AgentOutput`] as JSON: `content` is required; `data`,
    /// `confidence` (default 1.0) and `metadata` are optional.
    Json,
}

/// An agent that runs a program once per attempt.
///
/// The program is started directly from its argv — no shell, so nothing in the
/// input is ever interpreted by one — unless [`CommandAgent::shell`] asks for
/// one explicitly. The input goes to stdin ([`StdinMode`]); stdout becomes the
/// output ([`OutputMode`]); `data` records the exit code and the run's duration.
///
/// A non-zero exit is a permanent
/// [`AgentError`](OrchestrationError::AgentError) that shows the tail of stderr,
/// except for the exit codes declared retryable (by default 75, `EX_TEMPFAIL`),
/// which are [`Transient`](OrchestrationError::Transient). A program that cannot
/// be found is [`InvalidConfig`](OrchestrationError::InvalidConfig). A timeout
/// ([`with_timeout`](Self::with_timeout), or the orchestrator's attempt timeout)
/// or a cancellation stops the program and every process it started, its own
/// sessions included (`SIGTERM`, a grace period, `SIGKILL`): no orphans. [`on_text_delta`](Self::on_text_delta) reports
/// what the program prints, line by line, while it runs.
///
/// ```
/// use claude_agent_sdk::agents::CommandAgent;
/// use claude_agent_sdk::orchestration::{Agent, AgentInput};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let upper = CommandAgent::new("upper", "tr").arg("a-z").arg("A-Z");
/// let output = upper.execute(AgentInput::new("hello")).await?;
/// assert_eq!(output.content, "HELLO");
/// assert_eq!(output.data["exit_code"], 0);
/// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct CommandAgent {
    name: String,
    description: String,
    invocation: Invocation,
    stdin: StdinMode,
    output: OutputMode,
    timeout: Option<Duration>,
    retryable_exit_codes: Vec<i32>,
    on_delta: Option<DeltaHandler>,
}

impl CommandAgent {
    /// An agent called `name` that runs `program` (found on `PATH` unless it is
    /// a path), with no arguments yet.
    #[must_use]
    pub fn new(name: impl Into<String>, program: impl Into<OsString>) -> Self {
        let program = program.into();
        Self {
            description: format!("Runs `{}`", program.to_string_lossy()),
            name: name.into(),
            invocation: Invocation::new(program),
            stdin: StdinMode::default(),
            output: OutputMode::default(),
            timeout: None,
            retryable_exit_codes: vec![75],
            on_delta: None,
        }
    }

    /// An agent that runs `script` with `sh -c`. Only for scripts you wrote: the
    /// input still goes to stdin, never into the script text.
    #[must_use]
    pub fn shell(name: impl Into<String>, script: impl Into<OsString>) -> Self {
        Self::new(name, "sh").arg("-c").arg(script)
    }

    /// Adds an argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.invocation.args.push(arg.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.invocation
            .args
            .extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the description shown to people and registries.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets an environment variable for the program.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.invocation.env.push((key.into(), value.into()));
        self
    }

    /// Removes an environment variable: inherited, or set before with
    /// [`with_env`](Self::with_env).
    #[must_use]
    pub fn without_env(mut self, key: impl Into<OsString>) -> Self {
        self.invocation.remove_env(key.into());
        self
    }

    /// Starts the program with an empty environment (plus what
    /// [`with_env`](Self::with_env) sets).
    #[must_use]
    pub fn with_clear_env(mut self) -> Self {
        self.invocation.env_clear = true;
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn with_working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.invocation.cwd = Some(dir.into());
        self
    }

    /// Sets what the program gets on stdin.
    #[must_use]
    pub fn with_stdin(mut self, mode: StdinMode) -> Self {
        self.stdin = mode;
        self
    }

    /// Sets how stdout becomes the output.
    #[must_use]
    pub fn with_output(mut self, mode: OutputMode) -> Self {
        self.output = mode;
        self
    }

    /// Bounds each run; the program is killed when it passes, and the attempt
    /// fails with a (retryable) [`Timeout`](OrchestrationError::Timeout).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the exit codes that mean "try again" (default: 75, `EX_TEMPFAIL`).
    #[must_use]
    pub fn with_retryable_exit_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.retryable_exit_codes = codes.into_iter().collect();
        self
    }

    /// Reports the program's stdout as it prints it, one line at a time, each
    /// ending in `\n` (a last line printed without one gets one). The output
    /// is still made from the whole of stdout once the program ends.
    #[must_use]
    pub fn on_text_delta(
        mut self,
        handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delta = Some(DeltaHandler::new(handler));
        self
    }

    /// Bounds stdout (default 16 MiB); a program that prints more is killed and
    /// the attempt fails.
    #[must_use]
    pub fn with_max_output_bytes(mut self, bytes: usize) -> Self {
        self.invocation.max_stdout = bytes;
        self
    }

    /// Whether the program gets a process group of its own (the default), which
    /// is killed as a whole on timeout or cancellation. Turn it off only for a
    /// program that must stay in the caller's group (to receive its terminal's
    /// signals, say).
    #[must_use]
    pub fn with_process_group(mut self, own_group: bool) -> Self {
        self.invocation.own_process_group = own_group;
        self
    }

    fn stdin_bytes(&self, input: &AgentInput) -> Result<Option<Vec<u8>>> {
        Ok(match self.stdin {
            StdinMode::Content => Some(input.content.clone().into_bytes()),
            StdinMode::InputJson => Some(serde_json::to_vec(input).map_err(|e| {
                OrchestrationError::AgentError(AgentError::new(format!(
                    "agent `{}`: cannot encode the input as JSON: {e}",
                    self.name
                )))
            })?),
            StdinMode::Null => None,
        })
    }

    fn parse_output(&self, stdout: &[u8]) -> Result<AgentOutput> {
        match self.output {
            OutputMode::Text => Ok(AgentOutput::new(String::from_utf8_lossy(stdout).trim_end())),
            OutputMode::RawText => Ok(AgentOutput::new(String::from_utf8_lossy(stdout))),
            OutputMode::Json => {
                let parsed: JsonOutput = serde_json::from_slice(stdout).map_err(|e| {
                    let shown =
                        String::from_utf8_lossy(&stdout[..stdout.len().min(300)]).into_owned();
                    OrchestrationError::AgentError(AgentError::new(format!(
                        "agent `{}`: stdout is not an AgentOutput JSON ({e}): {shown}",
                        self.name
                    )))
                })?;
                let mut output = AgentOutput::new(parsed.content)
                    .with_confidence(parsed.confidence.unwrap_or(1.0))
                    .with_data(parsed.data);
                output.metadata = parsed.metadata;
                Ok(output)
            }
        }
    }

    fn failure(&self, failure: RunFailure) -> OrchestrationError {
        let program = self.invocation.program.to_string_lossy();
        match failure {
            RunFailure::Spawn(e) if e.kind() == io::ErrorKind::NotFound => {
                OrchestrationError::InvalidConfig(format!(
                    "agent `{}`: the program `{program}` was not found (is it installed and on PATH, and does the working directory exist?)",
                    self.name
                ))
            }
            RunFailure::Spawn(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                OrchestrationError::InvalidConfig(format!(
                    "agent `{}`: the program `{program}` cannot be executed: {e}",
                    self.name
                ))
            }
            RunFailure::Spawn(e) => OrchestrationError::AgentError(AgentError::new(format!(
                "agent `{}`: cannot start `{program}`: {e}",
                self.name
            ))),
            RunFailure::Io(e) => OrchestrationError::AgentFailed(
                self.name.clone(),
                format!("I/O error while running `{program}`: {e}").into(),
            ),
            RunFailure::StdoutTooLarge(limit) => OrchestrationError::AgentError(AgentError::new(
                format!(
                    "agent `{}`: `{program}` printed more than {limit} bytes and was stopped \
                     (the limit is set with with_max_output_bytes; `max_output` in a workflow)",
                    self.name
                ),
            )),
            RunFailure::NoDescriptors(e) => RunFailure::no_descriptors(&program, &e),
        }
    }
}

/// An [`AgentOutput`] as a program may print it.
#[derive(Debug, Deserialize)]
struct JsonOutput {
    content: String,
    #[serde(default)]
    data: serde_json::Value,
    confidence: Option<f64>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[async_trait]
impl Agent for CommandAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let mut invocation = self.invocation.clone();
        invocation.stdin = self.stdin_bytes(&input)?;
        let started = Instant::now();
        let mut sink = DeltaSink::new(self.on_delta.as_ref(), &self.name);
        let mut on_line = |line: &[u8]| {
            let mut text = String::from_utf8_lossy(line).into_owned();
            text.push('\n');
            sink.send(&text);
        };
        let on_line: Option<subprocess::LineHandler<'_>> = if self.on_delta.is_some() {
            Some(&mut on_line)
        } else {
            None
        };
        let run = subprocess::run(&invocation, on_line);
        let finished = match self.timeout {
            None => run.await,
            Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
                OrchestrationError::Timeout(format!(
                    "agent `{}`: `{}` ran past its {limit:?} timeout and was killed",
                    self.name,
                    invocation.display()
                ))
            })?,
        }
        .map_err(|failure| self.failure(failure))?;
        let elapsed = started.elapsed();

        if !finished.status.success() {
            let message = format!(
                "agent `{}`: `{}` failed with {}{}",
                self.name,
                invocation.display(),
                describe_status(finished.status),
                stderr_suffix(&finished.stderr_tail)
            );
            let retryable = finished
                .status
                .code()
                .is_some_and(|code| self.retryable_exit_codes.contains(&code));
            return Err(if retryable {
                OrchestrationError::transient(message)
            } else {
                OrchestrationError::AgentError(AgentError::new(message))
            });
        }

        let mut output = self.parse_output(&finished.stdout)?;
        let run_info = serde_json::json!({
            "exit_code": finished.status.code(),
            "duration_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
        match &mut output.data {
            serde_json::Value::Object(map) => {
                map.entry("exit_code")
                    .or_insert(run_info["exit_code"].clone());
                map.entry("duration_ms")
                    .or_insert(run_info["duration_ms"].clone());
            }
            serde_json::Value::Null => output.data = run_info,
            // Data the program chose to shape otherwise is left as it is.
            _ => {}
        }
        output
            .metadata
            .entry("exit_code".to_owned())
            .or_insert_with(|| "0".to_owned());
        Ok(output)
    }
}
