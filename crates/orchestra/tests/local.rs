//! The `local` kind end to end, on the real default model (fetched once into
//! the model cache: `cargo run -p orchestra -- model fetch`; these tests fail,
//! never skip, without it), and its checks before a run.

mod common;

use common::{orchestra, scratch, texts, write};

#[test]
fn a_local_agent_runs_the_default_model_and_reports_tokens() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "local.toml",
        "[flow]\nsequential = [\"ask\", \"wrap\"]\nretries = 0\n\n[[agents]]\nid = \"ask\"\nkind = \"local\"\nsystem = \"Answer in one word.\"\nmax_tokens = 6\nrepetition_penalty = 1.2\n\n[[agents]]\nid = \"wrap\"\nkind = \"template\"\ntemplate = \"[{{output.ask}}]\"\n",
    );
    let output = orchestra()
        .args(["run", "--input", "What colour is the sky?"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with('[') && stdout.len() > 3, "{stdout}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("ask") && l.contains(" in / ") && l.contains("local")),
        "{stderr}"
    );
}

#[test]
fn local_settings_are_checked_before_the_run() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "bad.toml",
        "[flow]\nparallel = [\"a\", \"b\", \"c\"]\n\n[[agents]]\nid = \"a\"\nkind = \"local\"\nmodel = \"gpt-17\"\n\n[[agents]]\nid = \"b\"\nkind = \"local\"\nmodel = \"missing/model.gguf\"\ntemperature = 3.0\ntop_p = 1e-50\nrepetition_penalty = 1e300\n\n[[agents]]\nid = \"c\"\nkind = \"local\"\napi_key = \"x\"\n",
    );
    let output = orchestra()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown local model `gpt-17`"), "{stderr}");
    assert!(stderr.contains("smollm2-135m"), "{stderr}");
    assert!(stderr.contains("model.gguf` does not exist"), "{stderr}");
    assert!(stderr.contains("`temperature` 3 is outside"), "{stderr}");
    // Positive as written, but 0 and infinity as the model's `f32`.
    assert!(stderr.contains("`top_p` 1e-50 is outside"), "{stderr}");
    assert!(
        stderr.contains("`repetition_penalty` 1e300 is outside"),
        "{stderr}"
    );
    assert!(stderr.contains("`api_key` does not apply"), "{stderr}");
}

#[test]
fn the_model_command_lists_and_rejects_unknown_names() {
    let list = orchestra()
        .args(["model", "list"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&list);
    assert_eq!(list.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("smollm2-135m"), "{stdout}");

    let unknown = orchestra()
        .args(["model", "remove", "gpt-17"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn a_fetch_without_python_says_what_to_do() {
    let dir = scratch();
    let output = orchestra()
        .args(["model", "fetch"])
        .env("CLAUDE_AGENT_SDK_MODELS", dir.path())
        .env("PATH", dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("python3"), "{stderr}");
    assert!(stderr.contains("pass its path"), "{stderr}");
    // Nothing half-fetched is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
