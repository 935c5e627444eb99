//! `run --json` for scripts: besides the library's whole output, `agents`
//! gives every agent's and group's outcome by id, nested ones and failures
//! included.

mod common;

use common::{json, outcome, scratch, write};

#[test]
fn json_gives_every_agents_outcome_by_id_nested_ones_and_failures_included() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "outcomes.toml",
        r#"
[flow]
sequential = ["first", "checks", "last"]
retries = 0

[[groups]]
id = "checks"
parallel = ["ok", "bad"]
join = "any"

[[agents]]
id = "first"
kind = "command"
command = ["echo", "one"]

[[agents]]
id = "ok"
kind = "command"
command = ["echo", "fine"]

[[agents]]
id = "bad"
kind = "command"
shell = "echo 'no space left' >&2; exit 1"

[[agents]]
id = "last"
kind = "template"
template = "{{output.ok}}"
"#,
    );
    let run = outcome(&["run", "--json"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let value = json(&run.stdout);
    let agents = value["agents"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = agents.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids, ["first", "checks", "ok", "bad", "last"], "{value}");
    let by_id = |id: &str| {
        agents
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_id("first")["status"], "done");
    assert_eq!(by_id("first")["output"], "one");
    assert_eq!(by_id("first")["attempts"], 1);
    assert_eq!(by_id("checks")["group"], true);
    assert_eq!(by_id("checks")["kind"], "parallel");
    assert_eq!(by_id("ok")["depth"], 2);
    assert_eq!(by_id("ok")["output"], "fine");
    assert_eq!(by_id("bad")["status"], "failed");
    assert_eq!(by_id("bad")["output"], serde_json::Value::Null);
    assert!(
        by_id("bad")["error"]
            .as_str()
            .is_some_and(|e| e.contains("exit code 1") && e.contains("no space left")),
        "{value}"
    );
    assert_eq!(by_id("last")["output"], "fine");
    assert!(by_id("last")["usage"].is_object());
    assert!(value["execution_trace"].is_object());
}
