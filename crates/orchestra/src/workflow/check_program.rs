//! Checking that a `command` agent's program can be found: on `PATH` for a
//! bare name, or as a file for a path — a relative path from where the
//! program runs (its working directory), with a hint when it is next to the
//! workflow file instead.

use std::path::{Path, PathBuf};

use super::checker::Checker;
use super::diagnostics::Diagnostic;
use super::located::Span;

/// Reports a program that cannot be found on `PATH` (or at its path).
pub(super) fn check_program(
    checker: &mut Checker<'_>,
    program: &str,
    span: Option<Span>,
    dir: Option<&Path>,
) {
    if checker.lenient || program.is_empty() {
        return;
    }
    if !program.contains('/') {
        let on_path = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        });
        if !on_path {
            checker.error(
                Diagnostic::new(format!("program `{program}` was not found"), span)
                    .with_label("not on PATH")
                    .with_help(Some("install it, or give its full path".to_owned())),
            );
        }
        return;
    }
    let path = Path::new(program);
    if path.is_absolute() {
        if !path.is_file() {
            checker.error(
                Diagnostic::new(format!("program `{program}` was not found"), span)
                    .with_label("no such file"),
            );
        }
        return;
    }
    // A relative path runs from the agent's working directory: where
    // orchestra was started, unless `working_dir` says otherwise.
    let runs_in = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if runs_in.join(path).is_file() {
        return;
    }
    let next_to_file = checker.base_dir.join(path);
    let shown_dir = std::fs::canonicalize(&runs_in).unwrap_or(runs_in);
    let help = if next_to_file.is_file() {
        format!(
            "it is next to the workflow file, but the program runs in `{}`: set `working_dir = \".\"` \
             (on the agent or the workflow) to run it from the file's directory",
            shown_dir.display()
        )
    } else {
        "give a path relative to where the program runs, or a full path".to_owned()
    };
    checker.error(
        Diagnostic::new(format!("program `{program}` was not found"), span)
            .with_label(format!("no such file in `{}`", shown_dir.display()))
            .with_help(Some(help)),
    );
}
