//! Checking a `local` agent: which model (a known name or a GGUF file) and
//! generation settings within their ranges.

use claude_agent_sdk::agents::local::fetch::{self, DEFAULT_MODEL, KNOWN_MODELS};

use super::checker::Checker;
use super::diagnostics::Diagnostic;
use super::located::Located;
use super::model::{LocalModelSpec, LocalSettings};
use super::raw::RawAgent;

/// The settings of the `local` agent `raw`, reporting what is wrong with them.
pub fn local_settings(checker: &mut Checker<'_>, raw: &RawAgent) -> LocalSettings {
    let id = raw.id.value.as_str();
    let model = match &raw.model {
        None => LocalModelSpec::Known(DEFAULT_MODEL),
        Some(written) => model_spec(checker, id, written),
    };
    let range = |checker: &mut Checker<'_>,
                 value: Option<&Located<f64>>,
                 name: &str,
                 ok: fn(f64) -> bool,
                 expected: &str| {
        let value = value?;
        if !ok(value.value) {
            let magnitude = value.value.abs();
            // 1e-50 as written, not fifty zeros.
            let shown = if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
                format!("{:e}", value.value)
            } else {
                value.value.to_string()
            };
            checker.error_at(
                value.span,
                format!("agent `{id}`: `{name}` {shown} is outside {expected}"),
            );
        }
        Some(value.value)
    };
    let temperature = range(
        checker,
        raw.temperature.as_ref(),
        "temperature",
        |t| (0.0..=2.0).contains(&t),
        "0.0..=2.0",
    );
    // The model takes these as `f32`: a value that is positive as written
    // but rounds to 0 or to infinity there is outside the range too.
    let top_p = range(
        checker,
        raw.top_p.as_ref(),
        "top_p",
        |p| (p as f32) > 0.0 && p <= 1.0,
        "(0, 1]",
    );
    let repetition_penalty = range(
        checker,
        raw.repetition_penalty.as_ref(),
        "repetition_penalty",
        |p| (p as f32) > 0.0 && (p as f32).is_finite(),
        "(0, ∞)",
    );
    if let Some(max) = &raw.max_tokens {
        if max.value == 0 {
            checker.error_at(
                max.span,
                format!("agent `{id}`: `max_tokens` must be at least 1"),
            );
        }
    }
    LocalSettings {
        model,
        system: checker.opt_text(raw.system.as_ref()),
        prompt: checker.opt_text(raw.prompt.as_ref()),
        max_tokens: raw.max_tokens.as_ref().map(|t| t.value),
        temperature,
        top_p,
        seed: raw.seed.as_ref().map(|s| s.value),
        repetition_penalty,
        stop: raw
            .stop
            .as_ref()
            .map_or_else(Vec::new, |s| checker.texts(&s.value)),
    }
}

/// A known model's name, or a path (it has a `/` or ends in `.gguf`).
fn model_spec(checker: &mut Checker<'_>, id: &str, written: &Located<String>) -> LocalModelSpec {
    let text = checker.text(written);
    if let Some(known) = fetch::known_model(&text) {
        return LocalModelSpec::Known(known);
    }
    if !(text.contains('/') || text.ends_with(".gguf")) {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        checker.error(
            Diagnostic::new(
                format!("agent `{id}`: unknown local model `{text}`"),
                written.span,
            )
            .with_help(Some(format!(
                "known models: {}; or give the path of a GGUF file (relative to the workflow file)",
                names.join(", ")
            ))),
        );
        return LocalModelSpec::Known(DEFAULT_MODEL);
    }
    let path = checker.base_dir.join(&text);
    if !checker.lenient && !path.is_file() {
        checker.error(
            Diagnostic::new(
                format!("model file `{}` does not exist", path.display()),
                written.span,
            )
            .with_label("relative paths start from the workflow file's directory"),
        );
    }
    LocalModelSpec::Path(path)
}
