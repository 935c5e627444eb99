//! Templates and shell scripts say what they mean: every bad placeholder is
//! reported at its own place with a did-you-mean, a template cannot read an
//! output that does not exist yet, `\{{` writes literal braces, and a `shell`
//! script's `${f}` belongs to the shell.

mod common;

use common::{outcome, scratch, write};

#[test]
fn every_bad_placeholder_is_reported_at_its_own_place_with_a_did_you_mean() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "bad.toml",
        "[flow]\nsequential = [\"t\"]\n[[agents]]\nid = \"t\"\nkind = \"template\"\ntemplate = \"{{outputs.a}} {{inptu}} {{nope}} {{outputs.a}}\"\n",
    );
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let places: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once("bad.toml:").map(|(_, at)| at))
        .collect();
    assert_eq!(places, ["6:13", "6:27", "6:37", "6:46"], "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `{{output.a}}`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `{{input}}`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("write \\{{ for literal braces"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("4 problems found"), "{}", run.stderr);
}

#[test]
fn a_template_cannot_read_a_parallel_sibling_a_later_step_or_its_own_group() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "race.toml",
        r#"
[flow]
sequential = ["early", "both", "late"]

[[groups]]
id = "both"
parallel = ["fetch", "report"]

[[agents]]
id = "early"
kind = "template"
template = "{{output.late}}"

[[agents]]
id = "fetch"
kind = "command"
command = ["echo", "data"]

[[agents]]
id = "report"
kind = "template"
template = "{{output.fetch}} {{output.both}}"

[[agents]]
id = "late"
kind = "template"
template = "{{output.fetch}} {{output.both}}"
"#,
    );
    let run = outcome(&["validate"], &file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for expected in [
        "`{{output.late}}` in `early` reads a step that runs later",
        "`{{output.fetch}}` in `report` reads a step that runs at the same time",
        "`report` and `fetch` run in parallel in group `both`",
        "`{{output.both}}` in `report` reads the group `report` runs in",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    // `late` reads what finished before it: fine.
    assert!(run.stderr.contains("3 problems found"), "{}", run.stderr);
}

#[test]
fn braces_metadata_and_shell_variables_mean_what_they_say() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "say.toml",
        r#"
name = "say"

[flow]
sequential = ["loop", "t"]

[[agents]]
id = "loop"
kind = "command"
shell = "for f in a b; do printf '%s.' ${f}; done"

[[agents]]
id = "t"
kind = "template"
template = '\{{input}} {{input}} in {{metadata.workflow}}{{metadata.who}}'
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "{{input}} a.b. in say\n");
    assert!(
        run.stderr
            .contains("warning: `{{metadata.who}}` is empty: nothing sets `who`"),
        "{}",
        run.stderr
    );
}
