//! What `README.md`, `docs/workflow.md` and `orchestra --help` promise, tried
//! with the real binary the way a newcomer following them would.

mod common;

use std::process::Output;

use assert_cmd::Command;
use common::{json, orchestra, scratch, texts, write};

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

/// "A sequential or parallel group with a budget runs as one step of a
/// graph of its own ... the group fails naming the budget": the group is
/// not a map, so nothing names an item of it (`g[1/1]`, "item 1 of 1").
#[test]
fn a_group_with_a_budget_is_not_shown_as_a_map() {
    let dir = scratch();
    let usage = r#"{\"content\": \"x\", \"data\": {\"usage\": {\"input_tokens\": 3, \"output_tokens\": 3}}}"#;
    let file = write(
        dir.path(),
        "budget.toml",
        &format!(
            "[flow]\nsequential = [\"pre\", \"g\"]\n\n[[groups]]\nid = \"g\"\nsequential = [\"a\", \"b\"]\nbudget = {{ max_tokens = 5 }}\n\n\
             [[agents]]\nid = \"pre\"\nkind = \"template\"\ntemplate = \"p\"\n\n\
             [[agents]]\nid = \"a\"\nkind = \"command\"\noutput = \"json\"\nshell = 'echo \"{usage}\"'\n\n\
             [[agents]]\nid = \"b\"\nkind = \"template\"\ntemplate = \"b\"\n"
        ),
    );
    let trace = dir.path().join("trace.json");
    let ran = output(
        orchestra()
            .args(["run", "--no-store", "--json", "--trace"])
            .arg(&trace)
            .arg(&file),
    );
    let (stdout, stderr) = texts(&ran);
    assert_eq!(ran.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tokens budget (limit 5, used 6)"),
        "{stderr}"
    );
    assert!(!stderr.contains("item 1 of 1"), "{stderr}");
    let printed = json(&stdout);
    let agents = printed["agents"].as_array().cloned().unwrap_or_default();
    let group = agents
        .iter()
        .find(|agent| agent["id"] == "g")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(group["status"], "failed");
    assert_eq!(group["attempts"], 1);
    let error = group["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("budget exceeded"), "{error}");

    let shown = output(orchestra().arg("trace").arg(&trace));
    let (table, stderr) = texts(&shown);
    assert_eq!(shown.status.code(), Some(0), "{stderr}");
    assert!(!table.contains("g[1/1]"), "{table}");
}

/// docs/workflow.md: "`{{metadata.KEY}}` … there is one metadata key,
/// `workflow`". What `orchestra` keeps for itself in the run's input (the
/// agents' fingerprints, for the run store) reaches neither a template nor a
/// program's JSON stdin.
#[test]
fn agents_see_only_the_documented_metadata() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "meta.toml",
        r#"
version = 1
name = "meta"

[flow]
sequential = ["show", "said", "keys"]

[[agents]]
id = "show"
kind = "command"
shell = "cat"
stdin = "json"

[[agents]]
id = "said"
kind = "template"
template = "{{input}}|{{metadata.orchestra.agents}}"

[[agents]]
id = "keys"
kind = "command"
shell = "cat"
stdin = "json"
"#,
    );
    let run = output(orchestra().arg("run").arg(&file).args(["--input", "hi"]));
    let (stdout, stderr) = texts(&run);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let stdin = json(&stdout);
    let metadata = stdin["metadata"].as_object().cloned().unwrap_or_default();
    assert_eq!(
        metadata.keys().collect::<Vec<_>>(),
        ["workflow"],
        "{stdout}"
    );
    // The template's second placeholder read nothing, and the first
    // program saw what the last did.
    let said = stdin["content"].as_str().unwrap_or_default();
    let first = said
        .strip_suffix('|')
        .map(json)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(first["metadata"], stdin["metadata"], "{stdout}");
}

/// `--no-store` ("keep no record of the run") is offered where a run is
/// made, not by the commands that read the store.
#[test]
fn only_run_offers_no_store() {
    let help = |command: &str| {
        let shown = output(orchestra().args([command, "--help"]));
        texts(&shown).0
    };
    assert!(help("run").contains("--no-store"));
    for command in ["runs", "show", "resume", "fork", "prune"] {
        assert!(!help(command).contains("--no-store"), "{command}");
    }
    let refused = output(orchestra().args(["runs", "--no-store"]));
    assert_eq!(refused.status.code(), Some(2), "{}", texts(&refused).1);
}

/// "`run`, `resume` and `fork` keep runs in the store `--store
/// PATH|postgres://URL` (or `ORCHESTRA_STORE`) names": the help says the
/// variable gives the store too (without showing its value: a PostgreSQL
/// URL holds a password), and a command with neither, and no folder for the
/// default store, names both.
#[test]
fn the_store_comes_from_store_or_orchestra_store_and_help_and_errors_say_so() {
    for command in ["run", "runs", "show", "resume", "fork", "prune"] {
        let shown = output(
            orchestra()
                .args([command, "--help"])
                .env("ORCHESTRA_STORE", "postgres://me:hunter2@db.example/runs"),
        );
        let (help, _) = texts(&shown);
        assert!(help.contains("--store <PATH|URL>"), "{command}: {help}");
        assert!(help.contains("ORCHESTRA_STORE"), "{command}: {help}");
        assert!(!help.contains("hunter2"), "{command}: {help}");
        // `--store` is optional: the usage line does not ask for it.
        let usage = help
            .lines()
            .find(|line| line.starts_with("Usage:"))
            .unwrap_or_default();
        assert!(!usage.contains("--store"), "{command}: {usage}");
    }

    let refused = output(
        orchestra()
            .args(["runs"])
            .env_remove("ORCHESTRA_STORE")
            .env_remove("HOME")
            .env_remove("XDG_STATE_HOME"),
    );
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--store PATH|URL") && stderr.contains("ORCHESTRA_STORE"),
        "{stderr}"
    );
    // Only `run` can do without a store.
    assert!(!stderr.contains("--no-store"), "{stderr}");
}
