//! A workflow whose middle step fails until a file exists, for the tests of
//! stored runs (resume, fork, prune), and what they read of its output.

use std::path::{Path, PathBuf};

use super::write;

/// Three steps: `first` leaves a mark, `gate` fails until the file `open`
/// exists, `last` composes the outputs (from the shared state).
pub fn gated(dir: &Path) -> PathBuf {
    let workflow = format!(
        r#"name = "gated"

[flow]
sequential = ["first", "gate", "last"]

[[agents]]
id = "first"
kind = "command"
shell = "echo ran >> {marks}; echo one"
stdin = "none"

[[agents]]
id = "gate"
kind = "command"
shell = "test -f {open} || {{ echo 'the gate is shut' >&2; exit 3; }}; echo two"
stdin = "none"

[[agents]]
id = "last"
kind = "template"
template = "{{{{output.first}}}}+{{{{output.gate}}}}"
"#,
        marks = dir.join("marks").display(),
        open = dir.join("open").display(),
    );
    write(dir, "gated.toml", &workflow)
}

/// The run id the message after a failed run names.
pub fn resume_id(stderr: &str) -> String {
    let at = stderr
        .find("orchestra resume ")
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"));
    stderr[at + "orchestra resume ".len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// How many times `first` ran.
pub fn marks(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("marks")).map_or(0, |text| text.lines().count())
}
