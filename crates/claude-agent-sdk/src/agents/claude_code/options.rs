//! Typed options of [`ClaudeCodeAgent`] for what the official SDKs expose
//! beyond the basics: MCP servers, settings, resuming a session, a spending
//! cap, and environment variables the program must not inherit. Each becomes
//! the Claude Code flag of the same meaning; anything else still goes through
//! [`with_extra_args`](ClaudeCodeAgent::with_extra_args).

use std::ffi::OsString;

use super::ClaudeCodeAgent;

/// The options below, as the agent keeps them.
#[derive(Clone, Default)]
pub(super) struct Options {
    mcp_configs: Vec<String>,
    strict_mcp_config: bool,
    settings: Option<String>,
    resume: Option<String>,
    max_budget_usd: Option<f64>,
}

/// The flags whose values may carry secrets (an MCP server's environment,
/// settings with keys): never shown in `Debug` output or messages.
pub(super) const SECRET_FLAGS: &[&str] = &["--mcp-config", "--settings"];

/// Shows how many MCP configs there are and whether settings are set, not
/// their contents: they may carry tokens, and `Debug` output ends up in logs.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mcp_configs", &self.mcp_configs.len())
            .field("strict_mcp_config", &self.strict_mcp_config)
            .field("settings", &self.settings.as_ref().map(|_| "<redacted>"))
            .field("resume", &self.resume)
            .field("max_budget_usd", &self.max_budget_usd)
            .finish()
    }
}

impl Options {
    /// The flags for these options.
    pub(super) fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        for config in &self.mcp_configs {
            args.push("--mcp-config".into());
            args.push(config.into());
        }
        if self.strict_mcp_config {
            args.push("--strict-mcp-config".into());
        }
        if let Some(settings) = &self.settings {
            args.push("--settings".into());
            args.push(settings.into());
        }
        if let Some(session) = &self.resume {
            args.push("--resume".into());
            args.push(session.into());
        }
        if let Some(budget) = self.max_budget_usd {
            args.push("--max-budget-usd".into());
            args.push(budget.to_string().into());
        }
        args
    }
}

impl ClaudeCodeAgent {
    /// Adds MCP servers: a JSON file or a JSON string with `mcpServers`
    /// (`--mcp-config`; repeatable).
    #[must_use]
    pub fn with_mcp_config(mut self, config: impl Into<String>) -> Self {
        self.options.mcp_configs.push(config.into());
        self
    }

    /// Uses only the MCP servers given with
    /// [`with_mcp_config`](Self::with_mcp_config), none from the user's or the
    /// project's configuration (`--strict-mcp-config`).
    #[must_use]
    pub fn with_strict_mcp_config(mut self, strict: bool) -> Self {
        self.options.strict_mcp_config = strict;
        self
    }

    /// Loads settings from a JSON file or a JSON string (`--settings`).
    #[must_use]
    pub fn with_settings(mut self, settings: impl Into<String>) -> Self {
        self.options.settings = Some(settings.into());
        self
    }

    /// Continues session `session_id` (from an earlier output's
    /// `data.session_id`) instead of starting afresh (`--resume`).
    #[must_use]
    pub fn with_resume(mut self, session_id: impl Into<String>) -> Self {
        self.options.resume = Some(session_id.into());
        self
    }

    /// Stops a run once it has spent `usd` dollars (`--max-budget-usd`, in
    /// Claude Code versions that have it).
    #[must_use]
    pub fn with_max_budget_usd(mut self, usd: f64) -> Self {
        self.options.max_budget_usd = Some(usd);
        self
    }

    /// Keeps environment variable `key` from the program (an API key the
    /// parent holds for other agents, say), even where it is inherited.
    #[must_use]
    pub fn without_env(mut self, key: impl Into<OsString>) -> Self {
        self.base.remove_env(key.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_options_become_their_flags() {
        let agent = ClaudeCodeAgent::new("coder")
            .with_env("ANTHROPIC_API_KEY", "sk-parent")
            .without_env("ANTHROPIC_API_KEY")
            .with_mcp_config("mcp.json")
            .with_strict_mcp_config(true)
            .with_settings(r#"{"model":"sonnet"}"#)
            .with_resume("sess-123")
            .with_max_budget_usd(0.5);
        let invocation = agent.invocation("hi".into());
        let args: Vec<String> = invocation
            .args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            args.iter()
                .position(|arg| arg == flag)
                .and_then(|at| args.get(at + 1))
                .cloned()
        };
        assert_eq!(after("--mcp-config").as_deref(), Some("mcp.json"));
        assert!(args.iter().any(|arg| arg == "--strict-mcp-config"));
        assert_eq!(
            after("--settings").as_deref(),
            Some(r#"{"model":"sonnet"}"#)
        );
        assert_eq!(after("--resume").as_deref(), Some("sess-123"));
        assert_eq!(after("--max-budget-usd").as_deref(), Some("0.5"));
        assert!(invocation.env.is_empty());
        assert_eq!(invocation.env_remove, [OsString::from("ANTHROPIC_API_KEY")]);
    }
}
