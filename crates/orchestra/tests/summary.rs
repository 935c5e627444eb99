//! The summary after a run explains every failure, also one a tolerant join
//! accepted: on a terminal it is the only place the error is shown whole.

mod common;

use common::{outcome, scratch, write};

#[test]
fn a_tolerated_failure_keeps_its_programs_stderr_in_the_summary() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "tolerant.toml",
        r#"
[flow]
parallel = ["ok", "bad"]
join = "any"
retries = 0

[[agents]]
id = "ok"
kind = "command"
command = ["echo", "fine"]

[[agents]]
id = "bad"
kind = "command"
shell = "echo 'line one of the reason' >&2; echo 'disk quota exceeded on /data' >&2; exit 1"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    let after_table = stderr.split_once("\ntotal").map_or("", |(_, rest)| rest);
    assert!(after_table.contains("✗ bad: "), "{stderr}");
    assert!(
        after_table.contains("\n    line one of the reason\n    disk quota exceeded on /data"),
        "{stderr}"
    );
}
