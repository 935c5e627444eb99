//! What `README.md`, `docs/workflow.md` and `orchestra --help` promise, tried
//! with the real binary the way a newcomer following them would.

mod common;

use std::process::{Command, Output};

use common::{json, scratch, test_store, texts, write};

/// The `orchestra` binary cargo built for these tests, with no API keys and
/// a run store of the tests' own.
fn orchestra() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orchestra"));
    command
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env("NO_COLOR", "1")
        .env("ORCHESTRA_STORE", test_store());
    command
}

/// Runs `command` to its end.
fn output(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("{e}"))
}

/// "Misspelled keys and values do not stop the check: each is reported":
/// a misspelled `join` value in YAML is one problem, at the value, with the
/// value it likely meant — as in TOML, and as `kind: comand` is.
#[test]
fn a_misspelled_join_policy_in_yaml_is_one_problem_at_the_value() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "join.yaml",
        "flow:\n  parallel: [a]\n  join: al\nagents:\n  - id: a\n    kind: template\n    template: x\n",
    );
    let validated = output(orchestra().arg("validate").arg(&file));
    let (_, stderr) = texts(&validated);
    assert_eq!(validated.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: unknown variant `al`"), "{stderr}");
    assert!(stderr.contains("did you mean `all`?"), "{stderr}");
    assert!(stderr.contains("join.yaml:3:9"), "{stderr}");
    assert!(!stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("1 problem found"), "{stderr}");

    // The same in a graph's `joins`.
    let file = write(
        dir.path(),
        "joins.yaml",
        "flow:\n  nodes: [a, b]\n  edges: [\"start -> a -> b -> end\"]\n  joins:\n    - node: b\n      policy: anny\nagents:\n  - {id: a, kind: template, template: x}\n  - {id: b, kind: template, template: y}\n",
    );
    let validated = output(orchestra().arg("validate").arg(&file));
    let (_, stderr) = texts(&validated);
    assert_eq!(validated.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("joins.yaml:6:15"), "{stderr}");
    assert!(stderr.contains("did you mean `any`?"), "{stderr}");
    assert!(stderr.contains("1 problem found"), "{stderr}");
}

/// docs/workflow.md: a group's `timeout` defaults to none, and a run
/// without one has no time limit; the JSON Schema editors show says the same.
#[test]
fn the_schema_gives_the_documented_group_defaults() {
    let printed = output(orchestra().arg("schema"));
    let schema = json(&texts(&printed).0);
    let group = &schema["$defs"]["Group"]["properties"];
    let described = |key: &str| group[key]["description"].as_str().unwrap_or("").to_owned();
    let timeout = described("timeout");
    assert!(
        timeout.contains("default: none") && !timeout.contains("300"),
        "{timeout}"
    );
    assert!(described("retries").contains("default 3"));
    assert!(described("parallel_limit").contains("default 10"));
    assert!(described("join").contains("default \"all\""));
}

/// "It checks ... missing programs": the program a `claude-code` agent runs
/// (`binary`, default `claude`) is reported before anything runs, as a
/// `command` agent's is.
#[test]
fn a_missing_claude_code_program_is_reported_before_the_run() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "code.toml",
        "[flow]\nsequential = [\"coder\"]\n\n[[agents]]\nid = \"coder\"\nkind = \"claude-code\"\nbinary = \"no-such-claude-program\"\n",
    );
    let validated = output(orchestra().arg("validate").arg(&file));
    let (_, stderr) = texts(&validated);
    assert_eq!(validated.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("program `no-such-claude-program` was not found"),
        "{stderr}"
    );
    assert!(stderr.contains("code.toml:7:11"), "{stderr}");

    // The default program, `claude`, on a PATH without it.
    let file = write(
        dir.path(),
        "default.toml",
        "[flow]\nsequential = [\"coder\"]\n\n[[agents]]\nid = \"coder\"\nkind = \"claude-code\"\n",
    );
    let empty = scratch();
    let ran = output(
        orchestra()
            .args(["run", "--no-store", "--input", "hi"])
            .arg(&file)
            .env("PATH", empty.path()),
    );
    let (_, stderr) = texts(&ran);
    assert_eq!(ran.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("program `claude` was not found"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was run"), "{stderr}");
}
