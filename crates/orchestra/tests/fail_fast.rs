//! `fail_fast = true`: a parallel group's first step that fails for good
//! stops its siblings at once (their programs killed); by default every step
//! runs to its end and `join` decides.

mod common;

use std::time::{Duration, Instant};

use common::{is_running, json, outcome, scratch, write};

/// A parallel group of a step failing after 0.2 s and a sibling sleeping
/// `sleep` seconds, with `extra` group settings.
fn race(sleep: &str, extra: &str) -> String {
    format!(
        r#"
[flow]
parallel = ["bad", "slow"]
retries = 0
{extra}

[[agents]]
id = "bad"
kind = "command"
shell = "sleep 0.2; echo broken >&2; exit 1"

[[agents]]
id = "slow"
kind = "command"
command = ["sleep", "{sleep}"]
"#
    )
}

#[test]
fn a_fail_fast_group_stops_its_siblings_at_the_first_failure() {
    let dir = scratch();
    let file = write(dir.path(), "ff.toml", &race("97531", "fail_fast = true"));
    let started = Instant::now();
    let run = outcome(&["run", "--json"], &file, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let value = json(&run.stdout);
    let slow = value["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == "slow")
        .cloned()
        .unwrap_or_default();
    assert_eq!(slow["status"], "failed", "{value}");
    assert!(
        slow["error"]
            .as_str()
            .is_some_and(|e| e
                .contains("stopped: `bad` failed, and group `flow` fails fast (fail_fast = true)")),
        "{value}"
    );
    assert!(
        !is_running("97531"),
        "the sibling's program outlived the run"
    );
}

#[test]
fn by_default_a_join_all_group_lets_every_sibling_finish() {
    let dir = scratch();
    let file = write(dir.path(), "wait.toml", &race("1", ""));
    let run = outcome(&["run", "--json"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let value = json(&run.stdout);
    let statuses: Vec<(&str, &str)> = value["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["id"].as_str()?, a["status"].as_str()?)))
        .collect();
    assert_eq!(statuses, [("bad", "failed"), ("slow", "done")], "{value}");
}

#[test]
fn fail_fast_is_refused_where_it_cannot_apply() {
    let dir = scratch();
    for (extra, expected) in [
        (
            "join = \"any\"\nfail_fast = true",
            "`fail_fast` needs `join = \"all\"`; group `flow` tolerates failures",
        ),
        (
            "fail_fast = true",
            "`fail_fast` applies to parallel groups; `flow` is sequential",
        ),
    ] {
        let text = race("1", extra);
        let text = if expected.contains("sequential") {
            text.replace("parallel = [", "sequential = [")
        } else {
            text
        };
        let file = write(dir.path(), "bad.toml", &text);
        let run = outcome(&["validate"], &file, &[]);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
}
