//! `orchestra validate` (and every command that reads a workflow): bad files
//! are rejected with exit code 2, every problem at once, each at its exact
//! line and column, before any agent runs.

mod common;

use common::{example, fixture, orchestra, scratch, texts, write};
use predicates::prelude::*;

/// The `file:line:column` of every problem reported for `file`, in order.
fn positions(file: &str) -> (Vec<String>, String) {
    let output = orchestra()
        .args(["validate", "--require-env"])
        .arg(fixture(file))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = texts(&output).1;
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let name = file.rsplit('/').next().unwrap_or(file);
    let found = stderr
        .lines()
        .filter_map(|line| {
            line.split_once(&format!("{name}:"))
                .map(|(_, at)| at.to_owned())
        })
        .collect();
    (found, stderr)
}

#[test]
fn every_problem_of_a_toml_file_is_reported_at_once_at_its_place() {
    let (found, stderr) = positions("invalid/problems.toml");
    assert_eq!(
        found,
        ["5:28", "11:8", "15:16", "20:21", "25:15", "31:10"],
        "{stderr}"
    );
    for expected in [
        "error: unknown agent `writter`",
        "help: did you mean `writer`?",
        "`at_least` must be between 1 and the group's 2 step(s), not 3",
        "error: group `reviews` contains itself",
        "cycle: reviews → loop → reviews",
        "error: environment variable `ORCHESTRA_TEST_UNSET_VAR` is not set",
        "error: unknown agent `reserch` in template of `writer`",
        "help: did you mean `research`?",
        "error: `model` does not apply to agent `tech` of kind `template`",
        "is not a valid workflow: 6 problems found; nothing was run",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // The offending line is shown with a caret under the culprit.
    assert!(stderr.contains("5 | sequential = [\"research\", \"writter\", \"reviews\"]\n  |                            ^^^^^^^ not declared"), "{stderr}");
}

#[test]
fn the_same_problems_in_yaml_are_reported_at_their_yaml_places() {
    let (found, stderr) = positions("invalid/problems.yaml");
    assert_eq!(
        found,
        ["5:26", "11:11", "13:18", "18:22", "21:18", "25:12"],
        "{stderr}"
    );
    assert!(stderr.contains("help: did you mean `writer`?"), "{stderr}");
    assert!(stderr.contains("6 problems found"), "{stderr}");
}

#[test]
fn misspelled_fields_get_the_nearest_valid_name() {
    let (found, stderr) = positions("invalid/unknown-field.toml");
    assert_eq!(found, ["5:1"], "{stderr}");
    assert!(stderr.contains("error: unknown field `knd`"), "{stderr}");
    assert!(stderr.contains("help: did you mean `kind`?"), "{stderr}");

    let (found, stderr) = positions("invalid/unknown-field.yaml");
    assert_eq!(found, ["5:5"], "{stderr}");
    assert!(
        stderr.contains("help: did you mean `template`?"),
        "{stderr}"
    );
}

#[test]
fn syntax_errors_point_at_the_place_the_parser_stopped() {
    let (found, stderr) = positions("invalid/syntax.toml");
    assert_eq!(found, ["4:23"], "{stderr}");
    assert!(stderr.contains("unclosed array"), "{stderr}");
    let (found, _) = positions("invalid/syntax.yaml");
    assert_eq!(found, ["4:7"]);
    let (found, stderr) = positions("invalid/no-flow.yaml");
    assert_eq!(found, ["1:1"], "{stderr}");
    assert!(stderr.contains("the workflow has no `flow`"), "{stderr}");
}

#[test]
fn unknown_kinds_and_missing_programs_are_caught_before_running() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "kinds.toml",
        "[flow]\nsequential = [\"a\"]\n[[agents]]\nid = \"a\"\nkind = \"comand\"\n",
    );
    orchestra()
        .arg("validate")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("kinds.toml:5:9"))
        .stderr(predicate::str::contains("did you mean `command`?"));

    let marker = dir.path().join("ran");
    let file = write(
        dir.path(),
        "programs.yaml",
        &format!(
            "flow:\n  sequential: [first, second]\nagents:\n  - id: first\n    kind: command\n    command: [touch, {}]\n  - id: second\n    kind: command\n    command: [no-such-program-xyz]\n",
            marker.display()
        ),
    );
    orchestra()
        .arg("run")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("programs.yaml:9:15"))
        .stderr(predicate::str::contains(
            "program `no-such-program-xyz` was not found",
        ));
    assert!(
        !marker.exists(),
        "an agent ran although the workflow was invalid"
    );
}

#[test]
fn agents_that_need_a_key_say_which_variable_is_missing() {
    orchestra()
        .args(["validate", "--require-env"])
        .arg(example("claude-review.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "agent `correctness` needs an API key: environment variable `ANTHROPIC_API_KEY` is not set",
        ))
        .stderr(predicate::str::contains("4 problems found"));
    orchestra()
        .arg("validate")
        .arg(example("claude-review.toml"))
        .env("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "is a valid workflow (TOML): 5 agent(s)",
        ))
        .stdout(predicate::str::contains("sk-ant").not());
}

#[test]
fn the_shipped_offline_workflows_are_valid() {
    for file in [
        "repo-report.toml",
        "repo-report.yaml",
        "openai-compatible.yaml",
    ] {
        orchestra()
            .arg("validate")
            .arg(example(file))
            .assert()
            .code(0)
            .stdout(predicate::str::starts_with("ok: "));
    }
}

#[test]
fn unreadable_and_unknown_files_exit_2() {
    orchestra()
        .args(["validate", "/no/such/workflow.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read `/no/such/workflow.toml`",
        ));
    let dir = scratch();
    let file = write(dir.path(), "workflow.json", "{}");
    orchestra()
        .arg("validate")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "workflow files end in .toml, .yaml or .yml",
        ));
}

#[test]
fn unused_agents_are_a_warning_not_an_error() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "unused.toml",
        "[flow]\nsequential = [\"a\"]\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n[[agents]]\nid = \"spare\"\nkind = \"template\"\ntemplate = \"y\"\n",
    );
    orchestra()
        .arg("validate")
        .arg(&file)
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "warning: agent `spare` is declared but not used by the flow",
        ));
}

#[test]
fn an_agent_used_twice_or_disabled_is_rejected() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "twice.toml",
        "[flow]\nsequential = [\"a\", \"a\", \"off\"]\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n[[agents]]\nid = \"off\"\nkind = \"template\"\ntemplate = \"y\"\nenabled = false\n",
    );
    orchestra()
        .arg("validate")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("twice.toml:2:21"))
        .stderr(predicate::str::contains("`a` appears twice in the flow"))
        .stderr(predicate::str::contains("twice.toml:2:26"))
        .stderr(predicate::str::contains("agent `off` is disabled"));
}

#[test]
fn missing_required_fields_are_all_reported_in_toml_and_yaml_alike() {
    let dir = scratch();
    let toml = write(
        dir.path(),
        "missing.toml",
        r#"[flow]
sequential = ["a", "b"]
retrys = 2

[[agents]]
kind = "template"
template = "x"

[[agents]]
id = "b"
template = "y"
nmae = 3
"#,
    );
    let yaml = write(
        dir.path(),
        "missing.yaml",
        "flow:\n  sequential: [a, b]\n  retrys: 2\nagents:\n  - kind: template\n    template: x\n  - id: b\n    template: y\n    nmae: 3\n",
    );
    let mut reported = Vec::new();
    for file in [&toml, &yaml] {
        let output = orchestra()
            .arg("validate")
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = texts(&output).1;
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let problems: Vec<(String, u32)> = stderr
            .lines()
            .zip(stderr.lines().skip(1))
            .filter(|(line, _)| line.starts_with("error: ") && !line.contains("not a valid"))
            .map(|(line, at)| {
                let line_no = at
                    .rsplit(':')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                (line.to_owned(), line_no)
            })
            .collect();
        assert!(
            stderr.contains("4 problems found"),
            "every problem, not only the first missing field:\n{stderr}"
        );
        reported.push(problems);
    }
    let messages = |problems: &[(String, u32)]| -> Vec<String> {
        problems
            .iter()
            .map(|(message, _)| message.clone())
            .collect()
    };
    assert_eq!(
        messages(&reported[0]),
        [
            "error: unknown field `retrys`",
            "error: missing field `id`",
            "error: missing field `kind`",
            "error: unknown field `nmae`",
        ]
    );
    assert_eq!(messages(&reported[0]), messages(&reported[1]));
    // Each at its place: TOML at the table's header, YAML in the mapping
    // (its parser points at the mapping's last key).
    let lines = |problems: &[(String, u32)]| -> Vec<u32> {
        problems.iter().map(|(_, line)| *line).collect()
    };
    assert_eq!(lines(&reported[0]), [3, 5, 9, 12]);
    assert_eq!(lines(&reported[1]), [3, 6, 8, 9]);
}
