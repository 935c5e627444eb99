//! [`Checker`]: what every validation step shares — the source for positions,
//! the environment for `${NAME}`, and the list of problems found so far.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::diagnostics::{Diagnostic, Source};
use super::env::{self, EnvProblem, Lookup};
use super::located::{Located, Span};
use super::suggest;

/// How many unknown names get a "did you mean": each is compared with every
/// name there is, and a file with thousands of unknown names among thousands
/// of declared ones took minutes. More problems than this are not all shown
/// anyway (see `SHOWN_PROBLEMS`).
const MAX_SUGGESTIONS: usize = 100;

/// Collects problems instead of stopping at the first.
pub struct Checker<'a> {
    /// The file being checked.
    pub source: &'a Source,
    env: &'a dyn Lookup,
    /// Whether unset variables (and missing directories) are tolerated: true for
    /// the commands that never run an agent.
    pub lenient: bool,
    /// The problems found so far.
    pub problems: Vec<Diagnostic>,
    /// Whether an unset environment variable is a warning rather than a
    /// problem: `validate` checks files where the secrets are not (CI).
    pub unset_is_warning: bool,
    /// What is worth saying but does not make the file invalid.
    pub warnings: Vec<Diagnostic>,
    /// `(name, value)` of every variable substituted.
    pub used_env: Vec<(String, String)>,
    /// Variables whose values are secret whatever their names (see
    /// [`Redactor`](super::env::Redactor)): the workflow's `secrets`, and those
    /// that make up an `api_key` or a secret-looking `env` entry.
    pub secret_env: HashSet<String>,
    /// The directory relative paths start from: the file's.
    pub base_dir: PathBuf,
    /// How many "did you mean"s were looked for.
    suggested: usize,
}

impl<'a> Checker<'a> {
    /// A checker for `source`, whose relative paths start at `base_dir`.
    pub fn new(source: &'a Source, env: &'a dyn Lookup, lenient: bool, base_dir: PathBuf) -> Self {
        Self {
            source,
            env,
            lenient,
            problems: Vec::new(),
            unset_is_warning: false,
            warnings: Vec::new(),
            used_env: Vec::new(),
            secret_env: HashSet::new(),
            base_dir,
            suggested: 0,
        }
    }

    /// "did you mean `x`?" for the name among `names` nearest to `typo`, if
    /// one is close — for the first [`MAX_SUGGESTIONS`] names asked about.
    pub fn did_you_mean<'n>(
        &mut self,
        typo: &str,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Option<String> {
        if self.suggested >= MAX_SUGGESTIONS {
            return None;
        }
        self.suggested += 1;
        suggest::did_you_mean(typo, names)
    }

    /// Records a problem.
    pub fn error(&mut self, diagnostic: Diagnostic) {
        self.problems.push(diagnostic);
    }

    /// Records a problem with `message` at `span`.
    pub fn error_at(&mut self, span: Option<Span>, message: impl Into<String>) {
        self.error(Diagnostic::new(message, span));
    }

    /// "line N" for a span, for notes that point at a second place.
    #[must_use]
    pub fn line_of(&self, span: Option<Span>) -> String {
        span.map_or_else(
            || "elsewhere".to_owned(),
            |span| format!("line {}", self.source.line_col(span.start).0),
        )
    }

    /// The value with its environment variables expanded; problems are recorded
    /// at the value's place.
    pub fn text(&mut self, value: &Located<String>) -> String {
        self.expand(&value.value, value.span)
    }

    /// As [`text`](Self::text); when `secret`, the variables it uses are
    /// marked secret.
    pub fn secret_text(&mut self, value: &Located<String>, secret: bool) -> String {
        let from = self.used_env.len();
        let text = self.text(value);
        if secret {
            self.mark_secret_since(from);
        }
        text
    }

    /// Marks variable `name` secret; its value, when set, is masked even where
    /// the workflow does not reference it.
    pub fn mark_secret(&mut self, name: &str) {
        if let Some(value) = self.env.get(name) {
            self.used_env.push((name.to_owned(), value));
        }
        self.secret_env.insert(name.to_owned());
    }

    /// Marks every variable substituted since `used_env` had `from` entries as
    /// secret.
    pub fn mark_secret_since(&mut self, from: usize) {
        let names = self.used_env.get(from..).unwrap_or_default();
        self.secret_env
            .extend(names.iter().map(|(name, _)| name.clone()));
    }

    /// A `shell` script, as written: `${f}`, `$1` and `$$` belong to the shell,
    /// and environment variables reach it through the environment. The
    /// variables it names are noted, for redaction.
    pub fn shell_script(&mut self, value: &Located<String>) -> String {
        for name in env::shell_references(&value.value) {
            if let Some(found) = self.env.get(&name) {
                self.used_env.push((name, found));
            }
        }
        value.value.clone()
    }

    /// As [`text`](Self::text), for an optional value.
    pub fn opt_text(&mut self, value: Option<&Located<String>>) -> Option<String> {
        value.map(|value| self.text(value))
    }

    /// As [`text`](Self::text), for a list.
    pub fn texts(&mut self, values: &[Located<String>]) -> Vec<String> {
        values.iter().map(|value| self.text(value)).collect()
    }

    /// Expands `text`, written at `span`.
    pub fn expand(&mut self, text: &str, span: Option<Span>) -> String {
        match env::expand(text, self.env, self.lenient) {
            Ok(expanded) => {
                self.used_env.extend(expanded.used);
                expanded.text
            }
            Err(problems) => {
                // The references are looked for in order, each after the one before.
                let mut from = Some(0);
                for problem in problems {
                    match problem {
                        EnvProblem::Missing(name) => {
                            let diagnostic = Diagnostic::new(
                                format!("environment variable `{name}` is not set"),
                                self.reference_span(span, &name, &mut from),
                            )
                            .with_label("referenced here")
                            .with_help(Some(format!(
                                "set it (export {name}=...) or give a default: ${{{name}:-default}}"
                            )));
                            if self.unset_is_warning {
                                self.warnings.push(diagnostic);
                            } else {
                                self.error(diagnostic);
                            }
                        }
                        EnvProblem::Malformed(message) => {
                            self.error(Diagnostic::new(message, span));
                        }
                    }
                }
                // Keep checking what the value says, with the unset variables empty.
                env::expand(text, self.env, true).map_or_else(|_| String::new(), |e| e.text)
            }
        }
    }

    /// The place of `${name}` inside the value at `span`, when it is written there
    /// as it is (no escapes in between). It is looked for from byte `from` of
    /// the value, after the reference before, so that a value with thousands
    /// is read once; one not found leaves `from` `None`, and the references
    /// after it are not looked for.
    fn reference_span(
        &self,
        span: Option<Span>,
        name: &str,
        from: &mut Option<usize>,
    ) -> Option<Span> {
        let span = span?;
        let written = self.source.text.get(span.start..span.end)?;
        let needle = format!("${{{name}");
        let found = from.and_then(|from| Some(from + written.get(from..)?.find(&needle)?));
        let Some(at) = found else {
            *from = None;
            return None;
        };
        let end = written[at..]
            .find('}')
            .map_or(at + needle.len(), |close| at + close + 1);
        *from = Some(end);
        Some(Span::new(span.start + at, span.start + end))
    }

    /// A directory setting: expanded, made absolute from the file's directory,
    /// and checked to exist (unless lenient).
    pub fn directory(&mut self, value: &Located<String>) -> PathBuf {
        let text = self.text(value);
        let path = self.base_dir.join(Path::new(&text));
        if !self.lenient && !text.is_empty() && !path.is_dir() {
            self.error(
                Diagnostic::new(
                    format!("directory `{}` does not exist", path.display()),
                    value.span,
                )
                .with_label("relative paths start from the workflow file's directory"),
            );
        }
        path
    }
}
