//! `validate` reports every problem at once, in file order: shape errors
//! (misspelled keys and values) no longer hide each other, nor the checks
//! that come after reading the file.

mod common;

use common::{example, outcome, scratch, write};

/// The `error: ...` lines of `validate FLAGS FILE`, with its exit code.
fn errors_of(flags: &[&str], name: &str, text: &str) -> (Option<i32>, Vec<String>, String) {
    let dir = scratch();
    let file = write(dir.path(), name, text);
    let args: Vec<&str> = std::iter::once("validate")
        .chain(flags.iter().copied())
        .collect();
    let run = outcome(&args, &file, &[]);
    let stderr = run.stderr;
    let errors = stderr
        .lines()
        .filter(|l| l.starts_with("error: ") && !l.contains("is not a valid workflow"))
        .map(str::to_owned)
        .collect();
    (run.code, errors, stderr)
}

#[test]
fn five_typos_in_a_toml_file_are_five_errors_in_file_order_with_the_later_checks() {
    let (code, errors, stderr) = errors_of(
        &[],
        "typos.toml",
        r#"nmae = "typos"

[flow]
sequential = ["a", "writter"]
retrys = 2
paralel_limit = 3

[[agents]]
id = "a"
kind = "comand"
command = ["cat"]
stdin = "jsn"

[[agents]]
id = "writer"
kind = "template"
template = "{{input}}"
"#,
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        errors,
        [
            "error: unknown field `nmae`",
            "error: unknown agent `writter`",
            "error: unknown field `retrys`",
            "error: unknown field `paralel_limit`",
            "error: unknown variant `comand`",
            "error: unknown variant `jsn`",
        ],
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `name`?"), "{stderr}");
    assert!(stderr.contains("did you mean `command`?"), "{stderr}");
    assert!(stderr.contains("did you mean `json`?"), "{stderr}");
    assert!(stderr.contains("6 problems found"), "{stderr}");
}

#[test]
fn typos_in_a_yaml_file_are_all_reported_in_file_order() {
    let (code, errors, stderr) = errors_of(
        &[],
        "typos.yaml",
        "nmae: typos\nflow:\n  sequential: [a]\n  retrys: 2\n  paralel_limit: 3\nagents:\n  - id: a\n    kind: comand\n    command: [cat]\n    stdin: jsn\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        errors,
        [
            "error: unknown field `nmae`",
            "error: unknown field `retrys`",
            "error: unknown field `paralel_limit`",
            "error: unknown variant `comand`",
            "error: unknown variant `jsn`",
        ],
        "{stderr}"
    );
}

#[test]
fn an_unknown_key_holding_an_anchor_that_agents_merge_is_the_only_error() {
    // The docker-compose habit: shared settings under an `x-` key.
    for text in [
        "x-defaults: &b\n  kind: template\n  template: hi\nflow:\n  sequential: [a]\nagents:\n  - id: a\n    <<: *b\n",
        "x-defaults: &b\n  kind: template\nagents:\n  - id: a\n    <<: *b\n    template: hi\nflow:\n  sequential: [a]\n",
    ] {
        let (code, errors, stderr) = errors_of(&[], "anchors.yaml", text);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(errors, ["error: unknown field `x-defaults`"], "{stderr}");
        assert!(stderr.contains("merge them into the others with `<<: *b`"), "{stderr}");
    }
}

#[test]
fn a_wrong_type_is_reported_with_the_other_shape_errors_but_skips_the_later_checks() {
    let (code, errors, stderr) = errors_of(
        &[],
        "types.toml",
        "[flow]\nsequential = [\"a\", \"nobody\"]\nretries = \"three\"\nparalel_limit = 3\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].contains("invalid type"), "{stderr}");
    assert_eq!(
        errors[1], "error: unknown field `paralel_limit`",
        "{stderr}"
    );
}

#[test]
fn validate_without_credentials_warns_about_unset_variables_and_run_still_refuses() {
    for file in ["claude-review.toml", "openai-compatible.yaml"] {
        let run = outcome(&["validate"], &example(file), &[]);
        let stdout = run.stdout;
        let stderr = run.stderr;
        assert_eq!(run.code, Some(0), "{file}: {stderr}");
        assert!(stdout.contains("is a valid workflow"), "{stdout}");
        if file == "claude-review.toml" {
            assert!(
                stderr.contains(
                    "warning: agent `correctness` needs an API key: environment variable `ANTHROPIC_API_KEY` is not set"
                ),
                "{stderr}"
            );
            assert!(stderr.contains("claude-review.toml:38:9"), "{stderr}");
        }
    }
    // `run` needs the key before anything starts.
    let run = outcome(&["run"], &example("claude-review.toml"), &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: agent `correctness` needs an API key"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was run"), "{stderr}");
}

#[test]
fn validate_require_env_makes_unset_variables_errors() {
    let (code, errors, stderr) = errors_of(
        &["--require-env"],
        "env.toml",
        "[flow]\nsequential = [\"a\"]\n[[agents]]\nid = \"a\"\nkind = \"command\"\ncommand = [\"echo\", \"${ORCHESTRA_TEST_UNSET_VAR}\"]\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        errors[0], "error: environment variable `ORCHESTRA_TEST_UNSET_VAR` is not set",
        "{stderr}"
    );
}
