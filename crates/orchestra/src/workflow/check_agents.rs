//! Checking the declared agents: unique ids, settings that fit their kind,
//! required settings present, environment variables set, programs found.

use std::collections::HashMap;
use std::path::Path;

use claude_agent_sdk::orchestration::AgentMetadata;

use super::check_local::local_settings;
use super::check_program::check_program;
use super::check_template::template_refs;
use super::checker::Checker;
use super::diagnostics::Diagnostic;
use super::env;
use super::located::{Located, Span};
use super::model::{AgentDef, ClaudeCodeSettings, CommandSettings, ModelSettings, Settings};
use super::raw::{AgentKind, RawAgent};

/// An agent that passed its own checks, with what later checks need.
pub struct CheckedAgent {
    /// The agent.
    pub def: AgentDef,
    /// Where its id was written.
    pub id_span: Option<Span>,
    /// `{{output.ID}}` references of a template, with their places.
    pub output_refs: Vec<(String, Option<Span>)>,
}

/// Checks every agent; ids that are duplicated or invalid are reported and the
/// agent is left out.
pub fn check_agents(
    checker: &mut Checker<'_>,
    agents: &[RawAgent],
    working_dir: Option<&Path>,
) -> Vec<CheckedAgent> {
    let mut seen: HashMap<String, Option<Span>> = HashMap::new();
    let mut checked = Vec::new();
    for raw in agents {
        let id = raw.id.value.trim();
        if !is_valid_id(id) {
            checker.error(
                Diagnostic::new(format!("invalid agent id `{id}`"), raw.id.span)
                    .with_label("use letters, digits, `-`, `_` and `.`"),
            );
            continue;
        }
        if let Some(first) = seen.get(id) {
            let first = checker.line_of(*first);
            checker.error(
                Diagnostic::new(format!("agent id `{id}` is declared twice"), raw.id.span)
                    .with_label(format!("first declared on {first}")),
            );
            continue;
        }
        seen.insert(id.to_owned(), raw.id.span);
        check_fields_fit_kind(checker, raw);
        let (settings, output_refs) = settings(checker, raw, working_dir);
        let metadata = metadata(checker, raw, id);
        checked.push(CheckedAgent {
            def: AgentDef {
                id: id.to_owned(),
                kind: raw.kind.value,
                metadata,
                retries: raw.retries.as_ref().map(|r| r.value),
                timeout: raw.timeout.as_ref().map(|t| t.value.0),
                // Known once the flow places the agent (see `check`).
                attempt_timeout: None,
                settings,
            },
            id_span: raw.id.span,
            output_refs,
        });
    }
    checked
}

/// Whether `id` can name an agent or group.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn metadata(checker: &mut Checker<'_>, raw: &RawAgent, id: &str) -> AgentMetadata {
    let description = checker
        .opt_text(raw.description.as_ref())
        .unwrap_or_else(|| format!("{} agent", raw.kind.value.as_str()));
    let category = checker
        .opt_text(raw.category.as_ref())
        .unwrap_or_else(|| "general".to_owned());
    let mut metadata = AgentMetadata::new(id, id, description, category)
        .with_enabled(raw.enabled.as_ref().is_none_or(|e| e.value));
    if let Some(version) = checker.opt_text(raw.version.as_ref()) {
        metadata = metadata.with_version(version);
    }
    for tool in checker.texts(&raw.tools) {
        metadata = metadata.with_tool(tool);
    }
    for skill in checker.texts(&raw.skills) {
        metadata = metadata.with_skill(skill);
    }
    for tag in checker.texts(&raw.tags) {
        metadata = metadata.with_tag(tag);
    }
    if let Some(timeout) = &raw.timeout {
        if timeout.value.0.is_zero() {
            checker.error_at(
                timeout.span,
                "an agent's `timeout` must be greater than zero",
            );
        }
    }
    metadata
}

/// The kind-specific settings that are set, with their places.
fn kind_fields(raw: &RawAgent) -> Vec<(&'static str, Option<Span>)> {
    fn at<T>(value: Option<&Located<T>>) -> Option<Option<Span>> {
        value.map(|v| v.span)
    }
    [
        ("template", at(raw.template.as_ref())),
        ("command", at(raw.command.as_ref())),
        ("shell", at(raw.shell.as_ref())),
        ("stdin", at(raw.stdin.as_ref())),
        ("output", at(raw.output.as_ref())),
        ("env", at(raw.env.as_ref())),
        ("working_dir", at(raw.working_dir.as_ref())),
        (
            "retryable_exit_codes",
            at(raw.retryable_exit_codes.as_ref()),
        ),
        ("max_output", at(raw.max_output.as_ref())),
        ("model", at(raw.model.as_ref())),
        ("system", at(raw.system.as_ref())),
        ("prompt", at(raw.prompt.as_ref())),
        ("max_tokens", at(raw.max_tokens.as_ref())),
        ("temperature", at(raw.temperature.as_ref())),
        ("api_key", at(raw.api_key.as_ref())),
        ("base_url", at(raw.base_url.as_ref())),
        ("stream", at(raw.stream.as_ref())),
        ("requests_per_minute", at(raw.requests_per_minute.as_ref())),
        ("max_concurrent", at(raw.max_concurrent.as_ref())),
        ("top_p", at(raw.top_p.as_ref())),
        ("seed", at(raw.seed.as_ref())),
        ("repetition_penalty", at(raw.repetition_penalty.as_ref())),
        ("stop", at(raw.stop.as_ref())),
        ("allowed_tools", at(raw.allowed_tools.as_ref())),
        ("disallowed_tools", at(raw.disallowed_tools.as_ref())),
        ("max_turns", at(raw.max_turns.as_ref())),
        ("permission_mode", at(raw.permission_mode.as_ref())),
        ("binary", at(raw.binary.as_ref())),
        ("extra_args", at(raw.extra_args.as_ref())),
    ]
    .into_iter()
    .filter_map(|(name, span)| span.map(|span| (name, span)))
    .collect()
}

/// The kind-specific settings each kind accepts.
fn accepted(kind: AgentKind) -> &'static [&'static str] {
    const MODEL: &[&str] = &[
        "model",
        "system",
        "prompt",
        "max_tokens",
        "temperature",
        "api_key",
        "base_url",
        "stream",
        "requests_per_minute",
        "max_concurrent",
    ];
    match kind {
        AgentKind::Template => &["template"],
        AgentKind::Command => &[
            "command",
            "shell",
            "stdin",
            "output",
            "env",
            "working_dir",
            "retryable_exit_codes",
            "max_output",
        ],
        AgentKind::Claude | AgentKind::Openai => MODEL,
        AgentKind::Local => &[
            "model",
            "system",
            "prompt",
            "max_tokens",
            "temperature",
            "top_p",
            "seed",
            "repetition_penalty",
            "stop",
        ],
        AgentKind::ClaudeCode => &[
            "model",
            "system",
            "prompt",
            "allowed_tools",
            "disallowed_tools",
            "max_turns",
            "permission_mode",
            "binary",
            "extra_args",
            "env",
            "working_dir",
        ],
    }
}

fn check_fields_fit_kind(checker: &mut Checker<'_>, raw: &RawAgent) {
    let kind = raw.kind.value;
    for (field, span) in kind_fields(raw) {
        if accepted(kind).contains(&field) {
            continue;
        }
        let kinds: Vec<&str> = [
            AgentKind::Claude,
            AgentKind::ClaudeCode,
            AgentKind::Openai,
            AgentKind::Command,
            AgentKind::Template,
            AgentKind::Local,
        ]
        .into_iter()
        .filter(|k| accepted(*k).contains(&field))
        .map(AgentKind::as_str)
        .collect();
        checker.error(
            Diagnostic::new(
                format!(
                    "`{field}` does not apply to agent `{}` of kind `{}`",
                    raw.id.value,
                    kind.as_str()
                ),
                span,
            )
            .with_help(Some(format!(
                "`{field}` is for kinds: {}",
                kinds.join(", ")
            ))),
        );
    }
}

fn settings(
    checker: &mut Checker<'_>,
    raw: &RawAgent,
    working_dir: Option<&Path>,
) -> (Settings, Vec<(String, Option<Span>)>) {
    let id = raw.id.value.as_str();
    let dir = |checker: &mut Checker<'_>| {
        raw.working_dir
            .as_ref()
            .map(|dir| checker.directory(dir))
            .or_else(|| working_dir.map(Path::to_path_buf))
    };
    let env = |checker: &mut Checker<'_>| -> Vec<(String, String)> {
        raw.env.as_ref().map_or_else(Vec::new, |env| {
            env.value
                .iter()
                .map(|(key, value)| {
                    // `GITHUB_TOKEN = "${GH}"`: what feeds a secret is secret.
                    let secret = env::looks_secret(key);
                    (key.clone(), checker.secret_text(value, secret))
                })
                .collect()
        })
    };
    match raw.kind.value {
        AgentKind::Template => {
            let Some(text) = &raw.template else {
                missing(
                    checker,
                    raw,
                    "template",
                    "template = \"# Report\\n{{input}}\"",
                );
                return (
                    Settings::Template {
                        template: String::new(),
                    },
                    Vec::new(),
                );
            };
            let template = checker.text(text);
            let refs = template_refs(checker, text, &template);
            (Settings::Template { template }, refs)
        }
        AgentKind::Command => {
            let argv = match (&raw.command, &raw.shell) {
                (Some(command), None) => {
                    if command.value.is_empty() {
                        checker.error_at(command.span, format!("agent `{id}`: `command` is empty"));
                    }
                    checker.texts(&command.value)
                }
                (None, Some(script)) => {
                    vec!["sh".into(), "-c".into(), checker.shell_script(script)]
                }
                (Some(_), Some(script)) => {
                    checker.error_at(
                        script.span,
                        format!("agent `{id}` has both `command` and `shell`; keep one"),
                    );
                    Vec::new()
                }
                (None, None) => {
                    missing(
                        checker,
                        raw,
                        "command",
                        "command = [\"git\", \"log\", \"-n\", \"5\"]",
                    );
                    Vec::new()
                }
            };
            let working_dir = dir(checker);
            if let (Some(program), Some(command)) = (argv.first(), &raw.command) {
                check_program(
                    checker,
                    program,
                    command.value.first().and_then(|p| p.span),
                    working_dir.as_deref(),
                );
            }
            let settings = CommandSettings {
                argv,
                stdin: raw.stdin.as_ref().map(|s| s.value).unwrap_or_default(),
                output: raw.output.as_ref().map(|s| s.value).unwrap_or_default(),
                env: env(checker),
                working_dir,
                retryable_exit_codes: raw.retryable_exit_codes.as_ref().map(|c| c.value.clone()),
                max_output: raw.max_output.as_ref().map(|size| {
                    if size.value.0 == 0 {
                        checker.error_at(size.span, "`max_output` must be greater than zero");
                    }
                    usize::try_from(size.value.0).unwrap_or(usize::MAX)
                }),
            };
            (Settings::Command(settings), Vec::new())
        }
        kind @ (AgentKind::Claude | AgentKind::Openai) => (
            Settings::Model(model_settings(checker, raw, kind)),
            Vec::new(),
        ),
        AgentKind::Local => (Settings::Local(local_settings(checker, raw)), Vec::new()),
        AgentKind::ClaudeCode => {
            let working_dir = dir(checker);
            let binary = checker.opt_text(raw.binary.as_ref());
            // Its program is checked as a `command` agent's is: one that is
            // not there is reported before anything runs.
            check_program(
                checker,
                binary.as_deref().unwrap_or("claude"),
                raw.binary
                    .as_ref()
                    .map_or(raw.kind.span, |binary| binary.span),
                working_dir.as_deref(),
            );
            let settings = ClaudeCodeSettings {
                model: checker.opt_text(raw.model.as_ref()),
                system: checker.opt_text(raw.system.as_ref()),
                prompt: checker.opt_text(raw.prompt.as_ref()),
                allowed_tools: raw
                    .allowed_tools
                    .as_ref()
                    .map_or_else(Vec::new, |t| checker.texts(&t.value)),
                disallowed_tools: raw
                    .disallowed_tools
                    .as_ref()
                    .map_or_else(Vec::new, |t| checker.texts(&t.value)),
                max_turns: raw.max_turns.as_ref().map(|t| t.value),
                permission_mode: checker.opt_text(raw.permission_mode.as_ref()),
                binary,
                extra_args: raw
                    .extra_args
                    .as_ref()
                    .map_or_else(Vec::new, |a| checker.texts(&a.value)),
                env: env(checker),
                working_dir,
            };
            (Settings::ClaudeCode(settings), Vec::new())
        }
    }
}

fn missing(checker: &mut Checker<'_>, raw: &RawAgent, field: &str, example: &str) {
    checker.error(
        Diagnostic::new(
            format!(
                "agent `{}` of kind `{}` needs `{field}`",
                raw.id.value,
                raw.kind.value.as_str()
            ),
            raw.kind.span,
        )
        .with_help(Some(format!("add for example: {example}"))),
    );
}

fn model_settings(checker: &mut Checker<'_>, raw: &RawAgent, kind: AgentKind) -> ModelSettings {
    let (key_var, url_var, default_url) = match kind {
        AgentKind::Claude => (
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "https://api.anthropic.com",
        ),
        _ => (
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "https://api.openai.com/v1",
        ),
    };
    // Whatever variables make up the key are secret, whatever their names.
    let keys_from = checker.used_env.len();
    let api_key = match &raw.api_key {
        Some(key) => Some(checker.text(key)).filter(|key| !key.is_empty()),
        // Claude always needs a key; an OpenAI-compatible server may not.
        None if kind == AgentKind::Claude => {
            let written = Located {
                value: format!("${{{key_var}}}"),
                span: None,
            };
            let (problems, warnings) = (checker.problems.len(), checker.warnings.len());
            let key = checker.text(&written);
            let unset = checker.problems.len() > problems || checker.warnings.len() > warnings;
            if unset {
                checker.problems.truncate(problems);
                checker.warnings.truncate(warnings);
                let diagnostic = Diagnostic::new(
                    format!(
                        "agent `{}` needs an API key: environment variable `{key_var}` is not set",
                        raw.id.value
                    ),
                    raw.kind.span,
                )
                .with_help(Some(format!(
                    "export {key_var}=..., or set `api_key` on the agent"
                )));
                if checker.unset_is_warning {
                    checker.warnings.push(diagnostic);
                } else {
                    checker.error(diagnostic);
                }
            }
            Some(key).filter(|key| !key.is_empty())
        }
        None => {
            let key = checker.expand(&format!("${{{key_var}:-}}"), None);
            Some(key).filter(|key| !key.is_empty())
        }
    };
    checker.mark_secret_since(keys_from);
    let base_url = match &raw.base_url {
        Some(url) => checker.text(url),
        None => checker.expand(&format!("${{{url_var}:-{default_url}}}"), None),
    };
    if kind == AgentKind::Openai && raw.model.is_none() {
        missing(checker, raw, "model", "model = \"gpt-4o-mini\"");
    }
    ModelSettings {
        model: checker.opt_text(raw.model.as_ref()),
        system: checker.opt_text(raw.system.as_ref()),
        prompt: checker.opt_text(raw.prompt.as_ref()),
        max_tokens: raw.max_tokens.as_ref().map(|t| t.value),
        temperature: raw.temperature.as_ref().map(|t| t.value),
        api_key,
        base_url,
        stream: raw.stream.as_ref().map(|s| s.value),
        requests_per_minute: raw.requests_per_minute.as_ref().map(|r| r.value),
        max_concurrent: raw.max_concurrent.as_ref().map(|m| m.value),
    }
}
