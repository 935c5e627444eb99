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

/// The `total` row of the summary's table.
fn total_attempts(stderr: &str) -> Option<usize> {
    let line = stderr.lines().find(|line| line.starts_with("total"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The sum of the attempts of the table's rows (between its rule and `total`).
fn row_attempts(stderr: &str) -> usize {
    stderr
        .lines()
        .skip_while(|line| !line.starts_with("-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("total"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            // agent, kind, attempts, ...
            cells.get(2)?.parse::<usize>().ok()
        })
        .sum()
}

#[test]
fn the_total_counts_what_the_rows_count_with_maps_and_budgeted_groups() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "mixed.toml",
        r#"
input = "a\nb\nc"

[flow]
nodes = ["work", "tidy"]
edges = ["start -> work -> tidy -> end"]

[[flow.maps]]
node = "work"
over = "lines"

[[groups]]
id = "tidy"
sequential = ["trim", "wrap"]
budget = { max_steps = 5 }

[[agents]]
id = "work"
kind = "command"
command = ["tr", "a-z", "A-Z"]

[[agents]]
id = "trim"
kind = "command"
command = ["tr", "-d", " "]

[[agents]]
id = "wrap"
kind = "template"
template = "[{{input}}]"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    // work: 3 items; tidy: 1; trim and wrap: 1 each.
    assert_eq!(row_attempts(&stderr), 6, "{stderr}");
    assert_eq!(total_attempts(&stderr), Some(6), "{stderr}");
}

#[test]
fn the_summary_table_lines_up_wide_characters_by_the_columns_they_take() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "wide.toml",
        r#"
[flow]
sequential = ["日本", "writer"]

[[agents]]
id = "日本"
kind = "template"
template = "x"

[[agents]]
id = "writer"
kind = "template"
template = "y"
"#,
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    // Where the `kind` column starts on screen, in the header and each row.
    let starts: Vec<usize> = stderr
        .lines()
        .filter(|line| line.starts_with("agent ") || line.contains(" template "))
        .map(|line| {
            let at = line
                .find("kind")
                .or_else(|| line.find("template"))
                .unwrap_or(0);
            console::measure_text_width(&line[..at])
        })
        .collect();
    assert_eq!(starts.len(), 3, "{stderr}");
    assert!(
        starts.iter().all(|&at| at == starts[0]),
        "{starts:?}\n{stderr}"
    );
}
