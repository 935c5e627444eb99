//! Environment variables in workflow values: `${NAME}`, `${NAME:-default}`, and
//! `$$` for a literal `$` — and the [`Redactor`] that keeps their values out of
//! everything `orchestra` prints or writes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvProblem {
    /// `${NAME}` names a variable that is not set (and has no default).
    Missing(String),
    /// `${` without a closing `}`, or an invalid name.
    Malformed(String),
}

/// Looks up environment variables; the real environment, or a map in tests.
pub trait Lookup {
    /// The variable's value, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A value with its variables expanded, and the variables it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The text after expansion.
    pub text: String,
    /// `(name, value)` of every variable that was substituted.
    pub used: Vec<(String, String)>,
}

/// Expands `${NAME}` and `${NAME:-default}` in `text`; `$$` is a literal `$`.
///
/// Every problem is reported, not just the first. Unset variables expand to ""
/// when `lenient` (for commands that never run an agent).
pub fn expand(text: &str, env: &dyn Lookup, lenient: bool) -> Result<Expanded, Vec<EnvProblem>> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(inner) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = inner.find('}') else {
            problems.push(EnvProblem::Malformed(format!(
                "`${{` without a closing `}}` in `{text}`"
            )));
            rest = "";
            break;
        };
        let reference = &inner[..close];
        rest = &inner[close + 1..];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if !is_valid_name(name) {
            problems.push(EnvProblem::Malformed(format!(
                "`${{{reference}}}` is not a valid environment variable reference (expected ${{NAME}} or ${{NAME:-default}})"
            )));
            continue;
        }
        match (env.get(name), default) {
            (Some(value), _) => {
                out.push_str(&value);
                used.push((name.to_owned(), value));
            }
            (None, Some(default)) => out.push_str(default),
            (None, None) if lenient => {}
            (None, None) => problems.push(EnvProblem::Missing(name.to_owned())),
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(Expanded { text: out, used })
    } else {
        Err(problems)
    }
}

/// The names of the variables a shell script refers to (`$NAME`, `${NAME}`,
/// `${NAME:-default}`...), without expanding anything: the shell does that.
pub fn shell_references(script: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = script;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        let inner = after.strip_prefix('{').unwrap_or(after);
        let end = inner
            .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
            .unwrap_or(inner.len());
        let name = &inner[..end];
        if is_valid_name(name) && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
        rest = after;
    }
    names
}

/// Whether `name` can be an environment variable's name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Whether a variable's name says its value is secret: a `_`-separated word
/// of it is `KEY`, `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASS`,
/// `CREDENTIAL(S)`, `APIKEY`, `AUTH`, `COOKIE` or `PAT`, or it contains
/// `SECRET`, `TOKEN` or `PASSWORD` (`GITHUBTOKEN`); case is ignored.
#[must_use]
pub fn looks_secret(name: &str) -> bool {
    const WORDS: [&str; 12] = [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "CREDENTIAL",
        "CREDENTIALS",
        "APIKEY",
        "AUTH",
        "COOKIE",
        "PAT",
    ];
    let upper = name.to_ascii_uppercase();
    upper.split('_').any(|word| WORDS.contains(&word))
        || ["SECRET", "TOKEN", "PASSWORD"]
            .iter()
            .any(|part| upper.contains(part))
}

/// Keeps secret values out of everything `orchestra` prints or writes —
/// progress, errors, the result, `--json`, trace files, OTLP spans — by
/// replacing each with its reference (`${ANTHROPIC_API_KEY}`).
///
/// Only secrets are masked, the way CI systems mask registered secrets: the
/// values of variables whose names look secret ([`looks_secret`]) and of those
/// the checker marked secret (the workflow's `secrets`, whatever makes up an
/// `api_key` or a secret-looking `env` entry). Masking every variable's value
/// once rewrote ordinary output (`LIMIT=1000` turned `1000500` into
/// `${LIMIT}500`), so nothing else is touched. Values shorter than
/// [`Redactor::MIN_LEN`] characters are left alone too: hiding every `1`
/// would garble output, and they cannot be secrets worth the name.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<(String, String)>>,
}

impl Redactor {
    /// The shortest value that is redacted.
    pub const MIN_LEN: usize = 4;

    /// A redactor for the secret ones of the `(name, value)` pairs: those whose
    /// name [looks secret](looks_secret) or is in `marked`.
    #[must_use]
    pub fn new(
        pairs: impl IntoIterator<Item = (String, String)>,
        marked: &HashSet<String>,
    ) -> Self {
        let mut secrets: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(name, _)| marked.contains(name) || looks_secret(name))
            .filter(|(_, value)| value.chars().count() >= Self::MIN_LEN)
            .map(|(name, value)| (value, format!("${{{name}}}")))
            .collect();
        // Longest first, so a value that contains another is replaced whole.
        secrets.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        secrets.dedup_by(|a, b| a.0 == b.0);
        Self {
            secrets: Arc::new(secrets),
        }
    }

    /// The values it hides, each with the reference that replaces it.
    pub fn secrets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets
            .iter()
            .map(|(value, reference)| (value.as_str(), reference.as_str()))
    }

    /// `text` with every secret value replaced by its reference.
    #[must_use]
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (value, reference) in self.secrets.iter() {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), reference));
            }
            // In JSON text, a value with quotes or backslashes appears escaped.
            if let Ok(quoted) = serde_json::to_string(value) {
                let escaped = &quoted[1..quoted.len() - 1];
                if escaped != value && out.contains(escaped) {
                    out = Cow::Owned(out.replace(escaped, reference));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, &'static str>);

    impl Lookup for Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    fn env() -> Map {
        Map(HashMap::from([
            ("KEY", "sk-secret-123"),
            ("HOST", "example.org"),
        ]))
    }

    #[test]
    fn expands_references_defaults_and_escapes() {
        let out = expand(
            "https://${HOST}/v1?k=${KEY}&x=${NOPE:-none}&cost=$$5",
            &env(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            out.text,
            "https://example.org/v1?k=sk-secret-123&x=none&cost=$5"
        );
        assert_eq!(out.used.len(), 2);
        assert_eq!(
            expand("$HOME", &env(), false).map(|e| e.text),
            Ok("$HOME".into())
        );
    }

    #[test]
    fn reports_every_problem() {
        let problems = expand("${A} ${B} ${9x}", &env(), false).unwrap_err();
        assert_eq!(problems.len(), 3);
        assert_eq!(problems[0], EnvProblem::Missing("A".into()));
        assert!(matches!(problems[2], EnvProblem::Malformed(_)));
        assert!(expand("${A}", &env(), true).is_ok());
        assert!(matches!(
            expand("x ${KEY", &env(), false).unwrap_err()[0],
            EnvProblem::Malformed(_)
        ));
    }

    #[test]
    fn redacts_secret_values_but_not_short_ones() {
        let redactor = Redactor::new(
            [
                ("KEY".to_owned(), "sk-secret-123".to_owned()),
                ("N_TOKEN".to_owned(), "1".to_owned()),
            ],
            &HashSet::new(),
        );
        assert_eq!(redactor.redact("key=sk-secret-123 n=1"), "key=${KEY} n=1");
    }

    #[test]
    fn leaves_ordinary_variables_alone_unless_marked_secret() {
        let pairs = [
            ("LIMIT".to_owned(), "1000".to_owned()),
            ("HOST".to_owned(), "example.org".to_owned()),
        ];
        let plain = Redactor::new(pairs.clone(), &HashSet::new());
        let text = "processed 1000 rows; total 1000500 from example.org";
        assert_eq!(plain.redact(text), text);
        let marked = Redactor::new(pairs, &HashSet::from(["HOST".to_owned()]));
        assert_eq!(
            marked.redact(text),
            "processed 1000 rows; total 1000500 from ${HOST}"
        );
    }

    #[test]
    fn shell_references_are_read_not_expanded() {
        assert_eq!(
            shell_references("for f in *; do echo ${f} $HOME ${KEY:-x} $$ $1; done"),
            ["f", "HOME", "KEY"]
        );
    }

    #[test]
    fn secret_names() {
        for name in [
            "ANTHROPIC_API_KEY",
            "GITHUB_TOKEN",
            "githubtoken",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "NPM_AUTH",
            "GH_PAT",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "LIMIT", "HOST", "PATH", "PWD", "KEYBOARD", "MONKEY", "AUTHOR",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
