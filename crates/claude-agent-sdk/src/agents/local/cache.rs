//! The process-wide model cache: one copy of each model in memory, however
//! many agents use it.
//!
//! Keyed by the file's canonical path; values are `Weak`, so a model no agent
//! holds any more is freed. Each path has its own slot lock: eight agents that
//! start at once load the file once, the other seven wait for that load and
//! share its result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::error::LocalModelError;
use super::model::{load, ModelWeights};

type Slot = Arc<Mutex<Weak<ModelWeights>>>;

/// Every file loaded (not shared) so far, for the tests that count loads.
#[cfg(test)]
pub(crate) static LOADED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn slots() -> &'static Mutex<HashMap<PathBuf, Slot>> {
    static SLOTS: OnceLock<Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    SLOTS.get_or_init(Mutex::default)
}

/// The model at `path`, loaded now or shared with whoever loaded it before.
/// Blocking: call it off the async runtime.
pub(crate) fn shared(path: &Path) -> Result<Arc<ModelWeights>, LocalModelError> {
    let canonical = path.canonicalize().map_err(|source| LocalModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    let slot = {
        let mut slots = slots()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(slots.entry(canonical.clone()).or_default())
    };
    let mut held = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(model) = held.upgrade() {
        return Ok(model);
    }
    // candle's reader checks bounds, but a file is untrusted input: a panic
    // while loading becomes an error too.
    let loaded = std::panic::catch_unwind(|| load(&canonical)).unwrap_or_else(|_| {
        Err(LocalModelError::InvalidFile {
            path: canonical.clone(),
            reason: "the loader panicked on this file".into(),
        })
    })?;
    #[cfg(test)]
    LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(canonical.clone());
    let model = Arc::new(loaded);
    *held = Arc::downgrade(&model);
    Ok(model)
}
