//! What `orchestra` masks: secret values only (variables whose names look
//! secret, and those the workflow lists in `secrets`), never ordinary output.

mod common;

use common::{outcome, scratch, write};

#[test]
fn ordinary_variables_are_not_redacted_from_results() {
    let dir = scratch();
    let trace = dir.path().join("trace.json");
    let file = write(
        dir.path(),
        "limit.toml",
        r#"
[flow]
sequential = ["count"]

[[agents]]
id = "count"
kind = "command"
command = ["echo", "processed ${LIMIT} rows; total amount 1000500"]
"#,
    );
    let run = outcome(
        &["run", "--trace", &trace.to_string_lossy()],
        &file,
        &[("LIMIT", "1000")],
    );
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    assert_eq!(stdout, "processed 1000 rows; total amount 1000500\n");
    let written = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        written.contains("processed 1000 rows; total amount 1000500"),
        "{written}"
    );
}

#[test]
fn secrets_by_name_by_list_and_by_use_are_masked_everywhere() {
    let dir = scratch();
    let trace = dir.path().join("trace.json");
    let file = write(
        dir.path(),
        "secrets.toml",
        r#"
secrets = ["DB_URL", "UNREFERENCED"]

[flow]
sequential = ["show"]

[[agents]]
id = "show"
kind = "command"
shell = "echo key=${SERVICE_API_KEY} db=${DB_URL} gh=$GITHUB_TOKEN raw=$UNREFERENCED plain=${REGION}"
env = { GITHUB_TOKEN = "${GH}" }
"#,
    );
    let run = outcome(
        &["run", "--json", "--trace", &trace.to_string_lossy()],
        &file,
        &[
            ("SERVICE_API_KEY", "sk-live-0123456789"),
            ("DB_URL", "postgres://u:pw@db/x"),
            ("GH", "ghp_abcdef123456"),
            ("UNREFERENCED", "hidden-by-list"),
            ("REGION", "eu-west-1"),
        ],
    );
    let stdout = run.stdout;
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    let written = std::fs::read_to_string(&trace).unwrap_or_default();
    for text in [&stdout, &stderr, &written] {
        for secret in [
            "sk-live-0123456789",
            "postgres://u:pw@db/x",
            "ghp_abcdef123456",
            "hidden-by-list",
        ] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
    }
    assert!(
        stdout.contains(
            "key=${SERVICE_API_KEY} db=${DB_URL} gh=${GH} raw=${UNREFERENCED} plain=eu-west-1"
        ),
        "{stdout}"
    );
}

#[test]
fn a_secrets_entry_that_is_not_a_name_is_reported() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "bad.toml",
        "secrets = [\"${DB_URL}\"]\n[flow]\nsequential = [\"a\"]\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n",
    );
    let run = outcome(&["validate"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`${DB_URL}` is not an environment variable's name"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.toml:1:13"), "{stderr}");
}
