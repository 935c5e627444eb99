//! An agent's own `retries` and `timeout` replace its group's, for that agent
//! only: the attempts in the `--json` trace show each agent's budget.

mod common;

use std::collections::BTreeMap;

use common::{json, orchestra, scratch, texts, write};

/// Attempts per agent (or group) in a JSON execution trace, nested runs included.
fn attempts(trace: &serde_json::Value) -> BTreeMap<String, usize> {
    fn walk(trace: &serde_json::Value, out: &mut BTreeMap<String, usize>) {
        for record in trace["agent_executions"].as_array().into_iter().flatten() {
            let name = record["agent_name"].as_str().unwrap_or_default().to_owned();
            *out.entry(name).or_default() += 1;
            if record.get("nested").is_some() {
                walk(&record["nested"], out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(trace, &mut out);
    out
}

/// Runs `text` as a workflow with `--json`; the exit code, the JSON and stderr.
fn run_json(text: &str) -> (Option<i32>, serde_json::Value, String) {
    let dir = scratch();
    let file = write(dir.path(), "overrides.toml", text);
    let output = orchestra()
        .args(["run", "--json"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    (output.status.code(), json(&stdout), stderr)
}

const RETRIES: &str = r#"
[flow]
parallel = ["stubborn", "sibling", "steady", "inner"]
join = "any"
retries = 1
backoff = { initial = "1ms", max = "5ms", jitter = 0.0 }

[[groups]]
id = "inner"
parallel = ["deep", "deep-sibling", "deep-steady"]
join = "any"
retries = 0

[[agents]]
id = "stubborn"
kind = "command"
shell = "exit 75"
stdin = "none"
retries = 3

[[agents]]
id = "sibling"
kind = "command"
shell = "exit 75"
stdin = "none"

[[agents]]
id = "steady"
kind = "template"
template = "fine"

[[agents]]
id = "deep"
kind = "command"
shell = "exit 75"
stdin = "none"
retries = 2

[[agents]]
id = "deep-sibling"
kind = "command"
shell = "exit 75"
stdin = "none"

[[agents]]
id = "deep-steady"
kind = "template"
template = "fine too"
"#;

#[test]
fn an_agents_own_retries_give_it_n_plus_1_attempts_while_siblings_follow_the_group() {
    let (code, value, stderr) = run_json(RETRIES);
    assert_eq!(code, Some(1), "{stderr}");
    let counts = attempts(&value["execution_trace"]);
    let expected: BTreeMap<String, usize> = [
        // `retries = 3` of its own, in a group with `retries = 1`.
        ("stubborn", 4),
        // The group's `retries = 1`.
        ("sibling", 2),
        ("steady", 1),
        ("inner", 1),
        // `retries = 2` of its own, in a nested group with `retries = 0`.
        ("deep", 3),
        ("deep-sibling", 1),
        ("deep-steady", 1),
    ]
    .into_iter()
    .map(|(name, n)| (name.to_owned(), n))
    .collect();
    assert_eq!(counts, expected, "{value:#}");

    // The progress shows each agent's own budget.
    assert!(stderr.contains("stubborn: attempt 1/4 failed"), "{stderr}");
    assert!(stderr.contains("stubborn: attempt 4/4 failed"), "{stderr}");
    assert!(stderr.contains("sibling: attempt 2/2 failed"), "{stderr}");
    assert!(stderr.contains("deep: attempt 3/3 failed"), "{stderr}");
    // The flow runs the agents' own `retries`: no warning about them.
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn orchestra_agents_lists_the_retries_that_apply_in_the_flow() {
    let dir = scratch();
    let file = write(dir.path(), "overrides.toml", RETRIES);
    let output = orchestra()
        .args(["agents"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // A row ends with `... retries timeout enabled`.
    let retries = |id: &str| {
        let row: Vec<&str> = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_else(|| panic!("no row for {id}:\n{stdout}"));
        row[row.len() - 3].to_owned()
    };
    assert_eq!(retries("stubborn"), "3", "{stdout}");
    assert_eq!(retries("sibling"), "1", "{stdout}");
    assert_eq!(retries("deep"), "2", "{stdout}");
    assert_eq!(retries("deep-sibling"), "0", "{stdout}");
}

#[test]
fn an_agents_own_timeout_replaces_its_groups_agent_timeout() {
    let (code, value, stderr) = run_json(
        r#"
[flow]
parallel = ["patient", "hasty"]
join = "any"
retries = 1
agent_timeout = "100ms"
backoff = { initial = "1ms", max = "5ms", jitter = 0.0 }

[[agents]]
id = "patient"
kind = "command"
command = ["sh", "-c", "sleep 0.4; echo made it"]
stdin = "none"
timeout = "20s"

[[agents]]
id = "hasty"
kind = "command"
command = ["sh", "-c", "sleep 0.4; echo too late"]
stdin = "none"
"#,
    );
    // `hasty` timed out twice under the group's bound, so the run reports it.
    assert_eq!(code, Some(1), "{stderr}");
    let counts = attempts(&value["execution_trace"]);
    assert_eq!(counts.get("patient"), Some(&1), "{value:#}");
    assert_eq!(counts.get("hasty"), Some(&2), "{value:#}");
    assert!(
        value["result"]
            .as_str()
            .is_some_and(|r| r.contains("patient: made it")),
        "{value:#}"
    );
    assert!(stderr.contains("exceeded its 100ms timeout"), "{stderr}");
}

#[test]
fn a_shorter_own_timeout_bounds_each_attempt_and_is_retried() {
    let (code, value, stderr) = run_json(
        r#"
[flow]
sequential = ["slow"]
agent_timeout = "30s"
backoff = { initial = "1ms", max = "5ms", jitter = 0.0 }

[[agents]]
id = "slow"
kind = "command"
command = ["sleep", "30"]
stdin = "none"
timeout = "150ms"
retries = 2
"#,
    );
    assert_eq!(code, Some(1), "{stderr}");
    let counts = attempts(&value["execution_trace"]);
    assert_eq!(counts.get("slow"), Some(&3), "{value:#}");
    assert!(stderr.contains("exceeded its 150ms timeout"), "{stderr}");
    assert!(stderr.contains("slow: attempt 3/3 failed"), "{stderr}");
}
