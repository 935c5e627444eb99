//! [`ClaudeCodeAgent`]: an agent that drives the Claude Code command-line
//! program, one non-interactive run (`claude -p`) per attempt.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use crate::agents::delta::{DeltaHandler, DeltaSink, TextDelta};
use crate::agents::prompt::PromptTemplate;
use crate::agents::subprocess::{
    self, describe_status, stderr_suffix, Finished, Invocation, RunFailure,
};
use crate::orchestration::{
    Agent, AgentError, AgentInput, AgentOutput, OrchestrationError, Result,
};

mod events;
mod failure;
mod messages;
mod options;

use messages::{ResultMessage, StreamFollower};

pub use events::ClaudeCodeEvent;

/// How Claude Code reports its run (`--output-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaudeCodeOutputFormat {
    /// One JSON result at the end (`--output-format json`), the default.
    #[default]
    Json,
    /// One JSON message per line as the run goes (`--output-format stream-json
    /// --verbose`): assistant text is reported to the delta handler as it comes.
    StreamJson,
}

/// An agent that runs Claude Code non-interactively, the way the official SDKs
/// do: `claude -p --output-format json` with the prompt on stdin, one run per
/// attempt.
///
/// The result's text becomes the `content`; `data` carries the session id, the
/// number of turns, durations, the model, and the [`Usage`](crate::orchestration::Usage) with the cost the
/// program reported (`total_cost_usd`); `metadata` repeats the session id, the
/// cost and the token counts.
///
/// Failures name their cause and show the tail of stderr: a missing binary
/// (or working directory) is
/// [`InvalidConfig`](OrchestrationError::InvalidConfig); a failed API call is
/// classified by its HTTP status (`api_error_status`) like the HTTP agents' —
/// 408, 409, 429 and 5xx are [`Transient`](OrchestrationError::Transient),
/// other 4xx (a bad key) permanent; another reported error, or a non-zero
/// exit, is a retryable [`AgentFailed`](OrchestrationError::AgentFailed) —
/// except running out of turns, which is permanent. Claude Code also retries
/// API errors itself (`CLAUDE_CODE_MAX_RETRIES`, 10 by default): set it to `0`
/// with [`with_env`](Self::with_env) to let the orchestrator's retry policy be
/// the only one;
/// output that cannot be parsed is a permanent
/// [`AgentError`](OrchestrationError::AgentError). A timeout or cancellation
/// stops the program and everything it started (tools, hooks, MCP servers),
/// its tools' own sessions included: `SIGTERM`, a grace period, `SIGKILL`.
///
/// ```no_run
/// use claude_agent_sdk::agents::ClaudeCodeAgent;
/// use claude_agent_sdk::orchestration::{Agent, AgentInput};
///
/// # async fn run() -> claude_agent_sdk::orchestration::Result<()> {
/// let fixer = ClaudeCodeAgent::new("fixer")
///     .with_model("sonnet")
///     .with_allowed_tools(["Read", "Grep", "Edit"])
///     .with_working_dir("/path/to/repo")
///     .with_max_turns(8);
/// let output = fixer.execute(AgentInput::new("Fix the failing test in src/lib.rs")).await?;
/// println!("{} (session {})", output.content, output.metadata["session_id"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClaudeCodeAgent {
    name: String,
    description: String,
    binary: OsString,
    model: Option<String>,
    allowed_tools: Vec<String>,
    disallowed_tools: Vec<String>,
    max_turns: Option<u32>,
    system_prompt: Option<String>,
    permission_mode: Option<String>,
    extra_args: Vec<OsString>,
    template: PromptTemplate,
    format: ClaudeCodeOutputFormat,
    partial_messages: bool,
    timeout: Option<Duration>,
    on_delta: Option<DeltaHandler>,
    options: options::Options,
    on_event: Option<events::EventHandler>,
    base: Invocation,
}

impl ClaudeCodeAgent {
    /// An agent called `name` that runs `claude` from `PATH` with its defaults.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: "Runs Claude Code non-interactively".into(),
            binary: "claude".into(),
            model: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            max_turns: None,
            system_prompt: None,
            permission_mode: None,
            extra_args: Vec::new(),
            template: PromptTemplate::default(),
            format: ClaudeCodeOutputFormat::default(),
            partial_messages: false,
            timeout: None,
            on_delta: None,
            options: options::Options::default(),
            on_event: None,
            base: Invocation::new("claude"),
        }
    }

    /// Sets the description shown to people and registries.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Runs this program instead of `claude` from `PATH`.
    #[must_use]
    pub fn with_binary(mut self, path: impl Into<OsString>) -> Self {
        self.binary = path.into();
        self
    }

    /// Sets the model (`--model`): an alias such as `sonnet` or a full name.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the tools the run may use without asking (`--allowedTools`).
    #[must_use]
    pub fn with_allowed_tools<I, S>(mut self, tools: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the tools the run may not use (`--disallowedTools`).
    #[must_use]
    pub fn with_disallowed_tools<I, S>(mut self, tools: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.disallowed_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Bounds the agentic turns of a run (`--max-turns`).
    #[must_use]
    pub fn with_max_turns(mut self, turns: u32) -> Self {
        self.max_turns = Some(turns);
        self
    }

    /// Adds to the system prompt (`--append-system-prompt`).
    #[must_use]
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Sets the permission mode (`--permission-mode`), such as `acceptEdits`.
    #[must_use]
    pub fn with_permission_mode(mut self, mode: impl Into<String>) -> Self {
        self.permission_mode = Some(mode.into());
        self
    }

    /// Adds arguments passed as they are, after the ones the agent sets.
    #[must_use]
    pub fn with_extra_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the working directory the run works in.
    #[must_use]
    pub fn with_working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable for the program (`PATH` included: it is
    /// also where `claude` is looked for).
    #[must_use]
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.base.env.push((key.into(), value.into()));
        self
    }

    /// Sets how the input becomes the prompt (see [`PromptTemplate`]).
    #[must_use]
    pub fn with_prompt_template(mut self, template: PromptTemplate) -> Self {
        self.template = template;
        self
    }

    /// Appends the input's context (as JSON) to the prompt when the template
    /// does not place it.
    #[must_use]
    pub fn with_context_in_prompt(mut self, include: bool) -> Self {
        self.template = self.template.with_context(include);
        self
    }

    /// Sets the output format.
    #[must_use]
    pub fn with_output_format(mut self, format: ClaudeCodeOutputFormat) -> Self {
        self.format = format;
        self
    }

    /// With [`StreamJson`](ClaudeCodeOutputFormat::StreamJson), asks for partial
    /// messages (`--include-partial-messages`) so text is reported token by token
    /// rather than message by message.
    #[must_use]
    pub fn with_partial_messages(mut self, partial: bool) -> Self {
        self.partial_messages = partial;
        self
    }

    /// Bounds each run; the program is killed when it passes, and the attempt
    /// fails with a (retryable) [`Timeout`](OrchestrationError::Timeout).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Reports the assistant's text as the run goes (with
    /// [`StreamJson`](ClaudeCodeOutputFormat::StreamJson); with `Json`, the result
    /// is reported as one piece at the end).
    #[must_use]
    pub fn on_text_delta(
        mut self,
        handler: impl Fn(TextDelta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delta = Some(DeltaHandler::new(handler));
        self
    }

    /// The command line of one run, without the prompt (which goes to stdin).
    fn invocation(&self, prompt: String) -> Invocation {
        let mut inv = self.base.clone();
        inv.program = self.binary.clone();
        let mut args: Vec<OsString> = vec!["-p".into(), "--output-format".into()];
        match self.format {
            ClaudeCodeOutputFormat::Json => args.push("json".into()),
            ClaudeCodeOutputFormat::StreamJson => {
                args.extend(["stream-json".into(), "--verbose".into()]);
                if self.partial_messages {
                    args.push("--include-partial-messages".into());
                }
            }
        }
        let mut option = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(flag.into());
                args.push(value.into());
            }
        };
        option("--model", self.model.clone());
        option(
            "--allowedTools",
            (!self.allowed_tools.is_empty()).then(|| self.allowed_tools.join(",")),
        );
        option(
            "--disallowedTools",
            (!self.disallowed_tools.is_empty()).then(|| self.disallowed_tools.join(",")),
        );
        option("--max-turns", self.max_turns.map(|t| t.to_string()));
        option("--append-system-prompt", self.system_prompt.clone());
        option("--permission-mode", self.permission_mode.clone());
        args.extend(self.options.args());
        args.extend(self.extra_args.iter().cloned());
        inv.args = args;
        inv.secret_flags = options::SECRET_FLAGS;
        inv.stdin = Some(prompt.into_bytes());
        // A stream-json run is followed line by line and its result kept from
        // its line: the whole output is not needed, and a long session (tool
        // results included) prints far more than the output limit.
        inv.keep_stdout = self.format == ClaudeCodeOutputFormat::Json;
        inv
    }

    fn run_failure(&self, failure: RunFailure) -> OrchestrationError {
        let binary = self.binary.to_string_lossy();
        match failure {
            RunFailure::Spawn(e)
                if e.kind() == io::ErrorKind::NotFound
                    && self.base.cwd.as_ref().is_some_and(|dir| !dir.is_dir()) =>
            {
                OrchestrationError::InvalidConfig(format!(
                    "agent `{}`: its working directory `{}` does not exist",
                    self.name,
                    self.base.cwd.as_ref().map_or_else(String::new, |dir| dir.display().to_string())
                ))
            }
            RunFailure::Spawn(e) if e.kind() == io::ErrorKind::NotFound => OrchestrationError::InvalidConfig(format!(
                "agent `{}`: the Claude Code program `{binary}` was not found: install it \
                 (`npm install -g @anthropic-ai/claude-code`) or point ClaudeCodeAgent::with_binary at it",
                self.name
            )),
            RunFailure::Spawn(e) => OrchestrationError::InvalidConfig(format!(
                "agent `{}`: cannot start the Claude Code program `{binary}`: {e}",
                self.name
            )),
            RunFailure::Io(e) => OrchestrationError::AgentFailed(
                self.name.clone(),
                format!("I/O error while running `{binary}`: {e}").into(),
            ),
            RunFailure::StdoutTooLarge(limit) => OrchestrationError::AgentError(AgentError::new(format!(
                "agent `{}`: `{binary}` printed more than {limit} bytes{}",
                self.name,
                if self.format == ClaudeCodeOutputFormat::Json { "" } else { " in one line" }
            ))),
            RunFailure::NoDescriptors(e) => RunFailure::no_descriptors(&binary, &e),
        }
    }

    /// Turns a finished run and its result message (if one was found) into the
    /// output or the error.
    fn conclude(&self, finished: &Finished, result: Option<ResultMessage>) -> Result<AgentOutput> {
        let binary = self.binary.to_string_lossy();
        let stderr = stderr_suffix(&finished.stderr_tail);
        let Some(result) = result else {
            if finished.status.success() {
                let shown =
                    String::from_utf8_lossy(&finished.stdout[..finished.stdout.len().min(300)])
                        .into_owned();
                return Err(OrchestrationError::AgentError(AgentError::new(format!(
                    "agent `{}`: `{binary}` printed output that is not a Claude Code result: {shown:?}{stderr}",
                    self.name
                ))));
            }
            // 126 and 127 without a result: the program could not start (its
            // interpreter — `node` for an npm install — missing or not
            // executable). Nothing a retry can change, like a missing binary.
            if matches!(finished.status.code(), Some(126 | 127)) {
                return Err(OrchestrationError::InvalidConfig(format!(
                    "agent `{}`: `{binary}` could not start ({}){stderr}",
                    self.name,
                    describe_status(finished.status)
                )));
            }
            return Err(OrchestrationError::AgentFailed(
                self.name.clone(),
                format!(
                    "`{binary}` failed with {}{stderr}",
                    describe_status(finished.status)
                )
                .into(),
            ));
        };
        if result.is_error || !finished.status.success() {
            return Err(failure::reported_failure(&failure::Reported {
                agent: &self.name,
                binary: &binary,
                exit: describe_status(finished.status),
                subtype: result.subtype.as_deref(),
                text: result.result.as_deref().unwrap_or_default(),
                api_status: result.api_error_status,
                stderr: &stderr,
            }));
        }
        Ok(result.into_output(self.model.as_deref()))
    }
}

#[async_trait]
impl Agent for ClaudeCodeAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let invocation = self.invocation(self.template.render(&input));
        let streaming = self.format == ClaudeCodeOutputFormat::StreamJson;
        let mut follower = StreamFollower {
            sink: DeltaSink::new(self.on_delta.as_ref(), &self.name),
            partial: self.partial_messages,
            result: None,
            on_event: self.on_event.as_ref(),
        };
        let finished = {
            let mut on_line = |line: &[u8]| follower.line(line);
            let on_line: Option<subprocess::LineHandler<'_>> =
                if streaming { Some(&mut on_line) } else { None };
            let run = subprocess::run(&invocation, on_line);
            match self.timeout {
                None => run.await,
                Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
                    OrchestrationError::Timeout(format!(
                        "agent `{}`: `{}` ran past its {limit:?} timeout and was killed",
                        self.name,
                        invocation.display()
                    ))
                })?,
            }
            .map_err(|failure| self.run_failure(failure))?
        };
        let result = if streaming {
            follower.result.take()
        } else {
            ResultMessage::from_json_output(&finished.stdout)
        };
        let output = self.conclude(&finished, result)?;
        if !streaming {
            follower.sink.send(&output.content);
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::Usage;

    #[test]
    fn builds_the_documented_command_line() {
        let agent = ClaudeCodeAgent::new("a")
            .with_model("sonnet")
            .with_allowed_tools(["Read", "Grep"])
            .with_max_turns(3)
            .with_system_prompt("be brief")
            .with_extra_args(["--debug"]);
        let inv = agent.invocation("hi".into());
        let args: Vec<String> = inv
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-p",
                "--output-format",
                "json",
                "--model",
                "sonnet",
                "--allowedTools",
                "Read,Grep",
                "--max-turns",
                "3",
                "--append-system-prompt",
                "be brief",
                "--debug"
            ]
        );
        assert_eq!(inv.stdin.as_deref(), Some(&b"hi"[..]));
        let streaming = ClaudeCodeAgent::new("a")
            .with_output_format(ClaudeCodeOutputFormat::StreamJson)
            .with_partial_messages(true)
            .invocation(String::new());
        assert_eq!(
            streaming.args[2..5],
            ["stream-json", "--verbose", "--include-partial-messages"]
        );
    }

    #[test]
    fn finds_the_result_in_both_json_shapes() {
        let one = br#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s","total_cost_usd":0.5,"usage":{"input_tokens":3,"output_tokens":4}}"#;
        let result = ResultMessage::from_json_output(one).unwrap();
        let output = result.into_output(Some("sonnet"));
        assert_eq!(output.content, "ok");
        assert_eq!(
            Usage::from_output(&output),
            Some(Usage::new(3, 4).with_cost_usd(0.5))
        );
        assert_eq!(output.metadata["model"], "sonnet");
        let many = br#"[{"type":"system","subtype":"init"},{"type":"result","result":"last","is_error":false}]"#;
        assert_eq!(
            ResultMessage::from_json_output(many)
                .unwrap()
                .result
                .as_deref(),
            Some("last")
        );
        assert!(ResultMessage::from_json_output(b"garbage").is_none());
        assert!(ResultMessage::from_json_output(br#"{"type":"assistant"}"#).is_none());
    }
}
