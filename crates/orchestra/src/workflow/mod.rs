//! Workflow files: reading TOML or YAML, checking everything before anything
//! runs, and reporting every problem at once with its place in the file.
//!
//! [`load`] reads a file into a checked [`Workflow`], or returns an [`Invalid`]
//! that renders each problem with its file, line and column.

mod check_agents;
mod check_asks;
mod check_budget;
mod check_condition;
mod check_flow;
mod check_graph;
mod check_local;
mod check_program;
mod check_refs;
mod check_template;
mod checker;
pub mod condition;
pub mod diagnostics;
pub mod env;
pub mod graph_model;
pub mod located;
pub mod model;
pub mod parse;
pub mod raw;
pub mod raw_graph;
mod recover;
mod suggest;
pub mod values;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::check_agents::check_agents;
use self::check_flow::FlowChecker;
use self::checker::Checker;
use self::diagnostics::{Diagnostic, Source};
use self::env::{Lookup, ProcessEnv, Redactor};
use self::located::Format;
pub use self::model::{AgentDef, Group, Mode, Node, Settings, Workflow};
use self::raw::RawWorkflow;
pub use self::suggest::nearest as suggest_name;

/// How strictly to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Everything a run needs: environment variables set, programs and
    /// directories present (for `run`, and `validate --require-env`).
    Run,
    /// As `Run`, but an unset environment variable is a warning: checking a
    /// file (in CI, say) must not need its credentials (for `validate`).
    Check,
    /// The file's structure only (for `agents` and `graph`, which run nothing).
    Structure,
}

/// The most problems, and the most warnings, shown in full; the rest are
/// counted. Showing one costs the length of its line, and a generated file
/// can repeat one mistake tens of thousands of times on one line (which took
/// minutes to show).
const SHOWN_PROBLEMS: usize = 100;

/// Why a workflow cannot be used.
#[derive(Debug)]
pub enum Invalid {
    /// The file could not be read.
    Unreadable {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file has problems.
    Problems {
        /// The file.
        source: Box<Source>,
        /// Every problem, in file order.
        problems: Vec<Diagnostic>,
    },
}

impl Invalid {
    /// Every problem, rendered, followed by a one-line summary.
    #[must_use]
    pub fn render(&self) -> String {
        match self {
            Self::Unreadable { path, reason } => format!("error: cannot read `{path}`: {reason}\n"),
            Self::Problems { source, problems } => {
                let mut out = String::new();
                for problem in problems.iter().take(SHOWN_PROBLEMS) {
                    out.push_str(&problem.render(source));
                    out.push('\n');
                }
                if let Some(more) = not_shown(problems.len(), "problem") {
                    out.push_str(&format!("note: {more}\n"));
                }
                out.push_str(&format!("error: {}\n", self.summary()));
                out
            }
        }
    }

    /// Why the workflow cannot be used, in one line (the last line of
    /// [`render`](Self::render), without its `error: `).
    #[must_use]
    pub fn summary(&self) -> String {
        match self {
            Self::Unreadable { path, reason } => format!("cannot read `{path}`: {reason}"),
            Self::Problems { source, problems } => {
                let count = problems.len();
                format!(
                    "`{}` is not a valid workflow: {count} problem{} found; nothing was run",
                    source.path,
                    if count == 1 { "" } else { "s" }
                )
            }
        }
    }

    /// Each problem [`render`](Self::render) shows, in one line after its
    /// place (`flow.toml:12:27: …`).
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::Unreadable { .. } => Vec::new(),
            Self::Problems { source, problems } => problems
                .iter()
                .take(SHOWN_PROBLEMS)
                .map(|problem| problem.headline(source))
                .collect(),
        }
    }
}

/// Reads and checks the workflow at `path`.
///
/// # Errors
/// [`Invalid`] when the file cannot be read or has any problem.
pub fn load(path: &Path, strictness: Strictness) -> Result<Workflow, Invalid> {
    load_with_env(path, strictness, &ProcessEnv)
}

/// As [`load`], with environment variables from `env`.
///
/// # Errors
/// As [`load`].
pub fn load_with_env(
    path: &Path,
    strictness: Strictness,
    env: &dyn Lookup,
) -> Result<Workflow, Invalid> {
    let shown = path.display().to_string();
    let unreadable = |reason: String| Invalid::Unreadable {
        path: shown.clone(),
        reason,
    };
    let format = parse::format_of(path).ok_or_else(|| {
        unreadable("unknown file type: workflow files end in .toml, .yaml or .yml".to_owned())
    })?;
    let text = read_bounded(path).map_err(unreadable)?;
    let source = Source::new(shown.clone(), text);
    let recovered = recover::parse_all(&source, format);
    let shape_problems = recovered.problems;
    let raw = match recovered.raw {
        // A file read past its problems is checked further only when what was
        // read is what its author meant (see `recover`).
        Some(raw) if shape_problems.is_empty() || recovered.faithful => raw,
        _ => {
            return Err(Invalid::Problems {
                source: Box::new(source),
                problems: in_file_order(shape_problems),
            })
        }
    };
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let lenient = strictness == Strictness::Structure;
    let mut checker = Checker::new(&source, env, lenient, base_dir);
    checker.unset_is_warning = strictness == Strictness::Check;
    let checked = check(&mut checker, &raw, path, format);
    let mut problems = shape_problems;
    problems.append(&mut checker.problems);
    if let Some(mut workflow) = checked.filter(|_| problems.is_empty()) {
        workflow.redactor = Redactor::new(checker.used_env, &checker.secret_env);
        let placed = in_file_order(std::mem::take(&mut checker.warnings));
        let rendered = placed.iter().take(SHOWN_PROBLEMS).map(|warning| {
            let text = warning.render(&source);
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            text.trim_end().to_owned()
        });
        let more = not_shown(placed.len(), "warning");
        workflow.warnings.splice(0..0, rendered.chain(more));
        return Ok(workflow);
    }
    Err(Invalid::Problems {
        source: Box::new(source),
        problems: in_file_order(problems),
    })
}

/// "N more problems not shown" when `count` is more than [`SHOWN_PROBLEMS`].
fn not_shown(count: usize, what: &str) -> Option<String> {
    let more = count.checked_sub(SHOWN_PROBLEMS).filter(|&more| more > 0)?;
    Some(format!(
        "{more} more {what}{} not shown",
        if more == 1 { "" } else { "s" }
    ))
}

/// `problems` sorted by their place in the file (those without one last).
fn in_file_order(mut problems: Vec<Diagnostic>) -> Vec<Diagnostic> {
    problems.sort_by_key(|problem| problem.span.map_or(usize::MAX, |span| span.start));
    problems
}

/// Checks the names in `secrets` and marks them secret; a secret the workflow
/// does not reference is still masked when a program prints it (programs
/// inherit the environment).
fn check_secrets(checker: &mut Checker<'_>, secrets: &[located::Located<String>]) {
    for secret in secrets {
        let name = secret.value.trim();
        if !env::is_valid_name(name) {
            checker.error(
                Diagnostic::new(
                    format!("`{name}` is not an environment variable's name"),
                    secret.span,
                )
                .with_label("`secrets` lists variable names")
                .with_help(Some(
                    "write the name alone, without `${…}`: secrets = [\"DB_URL\"]".to_owned(),
                )),
            );
            continue;
        }
        checker.mark_secret(name);
    }
}

/// Checks the parsed file; problems are left in `checker`.
fn check(
    checker: &mut Checker<'_>,
    raw: &RawWorkflow,
    path: &Path,
    format: Format,
) -> Option<Workflow> {
    if let Some(version) = &raw.version {
        if version.value != 1 {
            checker.error_at(
                version.span,
                format!(
                    "unsupported schema version {}; this orchestra reads version 1",
                    version.value
                ),
            );
        }
    }
    check_secrets(checker, &raw.secrets);
    let working_dir = raw.working_dir.as_ref().map(|dir| checker.directory(dir));
    let agents = check_agents(checker, &raw.agents, working_dir.as_deref());
    let Some(flow) = &raw.flow else {
        checker.error(
            Diagnostic::new("the workflow has no `flow`", Some(located::Span::new(0, 0)))
                .with_help(Some(match format {
                    Format::Toml => "add a flow, for example:\n[flow]\nsequential = [\"first-agent\", \"second-agent\"]",
                    Format::Yaml => "add a flow, for example:\nflow:\n  sequential: [first-agent, second-agent]",
                }.to_owned())),
        );
        return None;
    };
    let declared: Vec<(String, bool, Option<located::Span>)> = agents
        .iter()
        .map(|a| (a.def.id.clone(), a.def.metadata.enabled, a.id_span))
        .collect();
    let mut flow_checker = FlowChecker::new(checker, &declared, &raw.groups);
    let text_limit = raw
        .trace_text_limit
        .as_ref()
        .map(|limit| usize::try_from(limit.value.0).unwrap_or(usize::MAX));
    let root = flow_checker.root(&flow.value, flow.span, text_limit);
    let placements = std::mem::take(&mut flow_checker.placements);
    let unused = flow_checker.unused();
    let mut names: HashSet<String> = flow_checker.names();
    if let Some(root) = &root {
        names.insert(root.name.clone());
        root.walk(&mut |node, _| {
            names.insert(node.name().to_owned());
        });
    }
    for agent in &agents {
        for (id, span) in &agent.output_refs {
            if !names.contains(id) {
                let help = checker.did_you_mean(id, names.iter().map(String::as_str));
                checker.error(
                    Diagnostic::new(
                        format!("unknown agent `{id}` in template of `{}`", agent.def.id),
                        *span,
                    )
                    .with_label("no agent or group has this id")
                    .with_help(help),
                );
            }
        }
    }
    let mut root = root?;
    let refs: Vec<(String, String, Option<located::Span>)> = agents
        .iter()
        .flat_map(|agent| {
            agent
                .output_refs
                .iter()
                .map(|(id, span)| (agent.def.id.clone(), id.clone(), *span))
        })
        .collect();
    for problem in check_refs::unready_outputs(&root, &refs) {
        checker.error(problem);
    }
    if let Some(budget) = &raw.budget {
        let checked = check_budget::check_budget(checker, budget);
        if root.budget.is_some() {
            checker.error(
                Diagnostic::new("the run's budget is given twice", budget.span)
                    .with_label("`flow` has a `budget` too")
                    .with_help(Some("keep one of them".to_owned())),
            );
        }
        root.budget = Some(Box::new(checked));
    }
    let defaults = claude_agent_sdk::orchestration::ExecutionConfig::new();
    let agents = agents
        .into_iter()
        .map(|checked| {
            let mut def = checked.def;
            let placement = placements.get(&def.id);
            // An agent's own `retries` and `timeout` override its group's in the
            // flow (see `plan::Step`), so the metadata holds what applies.
            let retries = def.retries.map_or_else(
                || placement.map_or(defaults.max_retries, |p| p.retries),
                |r| usize::try_from(r).unwrap_or(usize::MAX),
            );
            let timeout = def
                .timeout
                .or_else(|| placement.and_then(|p| p.agent_timeout));
            // No attempt timeout: the metadata says so with the largest value,
            // not the library's default. The registry keeps whole seconds,
            // rounded up so that a bound there never cuts an attempt short;
            // the run applies the exact durations (see `plan::Step`), and
            // `attempt_timeout` keeps the exact one to show.
            let secs = timeout.map_or(u64::MAX, |t| {
                t.max(Duration::from_secs(1)).as_secs_f64().ceil() as u64
            });
            def.metadata = def.metadata.with_max_retries(retries).with_timeout(secs);
            def.attempt_timeout = timeout;
            def
        })
        .collect();
    let name = match &raw.name {
        Some(name) => checker.text(name),
        None => path.file_stem().map_or_else(
            || "workflow".to_owned(),
            |stem| stem.to_string_lossy().into_owned(),
        ),
    };
    let warnings = unused
        .into_iter()
        .map(|(id, what)| format!("{what} `{id}` is declared but not used by the flow"))
        .collect();
    Some(Workflow {
        name,
        description: checker.opt_text(raw.description.as_ref()),
        path: path.to_path_buf(),
        format,
        default_input: checker.opt_text(raw.input.as_ref()),
        agents,
        flow: root,
        redactor: Redactor::default(),
        warnings,
    })
}
/// The most bytes a workflow file may have: far more than any workflow
/// needs, and a bound on what a mistaken path (a device, a huge log) costs.
const MAX_WORKFLOW_BYTES: u64 = 256 * 1024 * 1024;

/// The text of the workflow file at `path`, read up to [`MAX_WORKFLOW_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_WORKFLOW_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if bytes.len() as u64 > MAX_WORKFLOW_BYTES {
        return Err(format!(
            "the file is larger than {} MiB: not a workflow",
            MAX_WORKFLOW_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|_| "stream did not contain valid UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_second_attempt_timeouts_are_kept_exactly_for_display() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("w.toml");
        let agent = |id: &str, own: &str| {
            format!("[[agents]]\nid = \"{id}\"\nkind = \"template\"\ntemplate = \"x\"\n{own}\n")
        };
        let text = format!(
            "[flow]\nsequential = [\"own\", {{ sequential = [\"inherited\"], agent_timeout = \"1500ms\" }}, \"unbounded\"]\n{}{}{}",
            agent("own", "timeout = \"300ms\""),
            agent("inherited", ""),
            agent("unbounded", ""),
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let workflow =
            load(&path, Strictness::Structure).unwrap_or_else(|e| panic!("{}", e.render()));
        let shown = |id: &str| workflow.agent(id).map(AgentDef::written_timeout);
        assert_eq!(shown("own").as_deref(), Some("300ms"));
        assert_eq!(shown("inherited").as_deref(), Some("1.5s"));
        assert_eq!(shown("unbounded").as_deref(), Some("none"));
        // The registry keeps whole seconds, rounded up.
        let secs = |id: &str| workflow.agent(id).map(|a| a.metadata.timeout_secs);
        assert_eq!(secs("own"), Some(1));
        assert_eq!(secs("inherited"), Some(2));
        assert_eq!(secs("unbounded"), Some(u64::MAX));
    }
}
