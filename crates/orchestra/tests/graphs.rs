//! Graph flows, end to end: every example of `examples/workflows/graph-*.toml`
//! runs offline, `validate` reports graph mistakes with positions and
//! did-you-mean, and `graph` draws routes, loops, maps, joins and budgets.

mod common;

use common::{example, orchestra, outcome, scratch, texts, write};

fn run(file: &std::path::Path, input: Option<&str>) -> (Option<i32>, String, String) {
    let mut command = orchestra();
    command.arg("run").arg(file);
    if let Some(input) = input {
        command.args(["--input", input]);
    }
    let output = command.output().unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    (output.status.code(), stdout, stderr)
}

#[test]
fn a_route_takes_the_first_branch_that_holds_or_the_default() {
    let file = example("graph-route.toml");
    for (input, expected) in [
        ("the login page has a bug", "bug report filed"),
        ("a Feature request", "feature request planned"),
        (r#"{"kind": "question"}"#, "question answered"),
        ("hello", "thanks for writing"),
    ] {
        let (code, stdout, stderr) = run(&file, Some(input));
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.starts_with(expected), "{input}: {stdout}");
    }
}

#[test]
fn a_router_agent_names_the_next_node() {
    let file = example("graph-router.toml");
    let (code, stdout, stderr) = run(&file, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("engineering takes ticket: the app crashes"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&file, Some("please add dark mode"));
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("product takes"), "{stdout}");
}

#[test]
fn a_loop_goes_round_until_its_condition_holds() {
    let (code, stdout, stderr) = run(&example("graph-loop.toml"), None);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "draft!!!");
}

#[test]
fn a_map_runs_once_per_line_and_gathers_in_order() {
    let (code, stdout, stderr) = run(&example("graph-map.toml"), None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("WHAT IS RUST\n\nWHO USES RUST\n\nWHY RUST"),
        "{stdout}"
    );
}

#[test]
fn a_join_at_least_two_tolerates_one_failure() {
    let (code, stdout, stderr) = run(&example("graph-join.toml"), None);
    // The run reaches its end; a failed step makes it exit 1, as a parallel group's would.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stdout.contains("style ok") && stdout.contains("safety ok"),
        "{stdout}"
    );
    assert!(stderr.contains("flaky"), "{stderr}");
}

#[test]
fn budgets_bound_the_run_and_name_the_budget_crossed() {
    let file = example("graph-budget.toml");
    let (code, stdout, stderr) = run(&file, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "[xxxx]");

    let dir = scratch();
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    let tight = write(
        dir.path(),
        "tight.toml",
        &text.replace("max_steps = 20", "max_steps = 3"),
    );
    let (code, _, stderr) = run(&tight, None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("step"), "{stderr}");
}

#[test]
fn every_graph_example_is_valid() {
    for name in ["route", "router", "loop", "map", "join", "budget"] {
        let output = orchestra()
            .arg("validate")
            .arg(example(&format!("graph-{name}.toml")))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}",
            texts(&output).1
        );
    }
}

const BROKEN: &str = r#"
[flow]
nodes = ["triage", "fix"]
edges = ["start -> triage", "fix -> ned", "triage -> fxi"]
budget = { max_steps = 0 }

[[flow.routes]]
from = "triage"
when = [{ matches = "(unclosed", to = "fix" }, { contains = "a", equals = 1, to = "fix" }]
default = "end"

[[flow.loops]]
body = ["fix"]
max_iterations = 0

[[flow.maps]]
node = "trigae"
over = "lines"

[[agents]]
id = "triage"
kind = "template"
template = "{{input}}"

[[agents]]
id = "fix"
kind = "template"
template = "{{input}}"
"#;

#[test]
fn validate_reports_graph_mistakes_with_positions_and_suggestions() {
    let dir = scratch();
    let file = write(dir.path(), "broken.toml", BROKEN);
    let output = orchestra()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in [
        "unknown node `ned` in graph `flow`",
        "did you mean `end`?",
        "unknown node `fxi`",
        "did you mean `fix`?",
        "did you mean `triage`?",
        "invalid regular expression `(unclosed`",
        "a condition has more than one test",
        "`max_iterations` must be at least 1",
        "`max_steps` must be at least 1",
        "broken.toml:4:",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected} missing from:\n{stderr}"
        );
    }
}

#[test]
fn validate_reports_a_graph_that_cannot_run() {
    let dir = scratch();
    let text = "[flow]\nnodes = [\"a\", \"b\"]\nedges = [\"start -> a\", \"a -> end\"]\n\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n\n[[agents]]\nid = \"b\"\nkind = \"template\"\ntemplate = \"y\"\n";
    let file = write(dir.path(), "shape.toml", text);
    let output = orchestra()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("graph `flow` cannot run"), "{stderr}");
    assert!(stderr.contains("`b` can never run"), "{stderr}");
}

#[test]
fn validate_points_each_shape_problem_at_the_node_it_is_about() {
    let dir = scratch();
    let agents: String = ["a", "b", "c", "d"]
        .iter()
        .map(|id| format!("\n[[agents]]\nid = \"{id}\"\nkind = \"template\"\ntemplate = \"x\"\n"))
        .collect();
    // Line 3 is `a`, 4 `b`, 5 `c`, 6 `d`.
    let text = format!(
        "[flow]\nnodes = [\n  \"a\",\n  \"b\",\n  \"c\",\n  \"d\",\n]\nedges = [\"start -> a\", \"a -> end\", \"b -> c\", \"c -> b\", \"d -> end\"]\n{agents}"
    );
    let file = write(dir.path(), "shape.toml", &text);
    let output = orchestra()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("3 problems found"), "{stderr}");
    // Each diagnostic: its position line, then the source line, then the
    // caret line with the problem.
    let at = |problem: &str| -> String {
        let lines: Vec<&str> = stderr.lines().collect();
        let caret = lines
            .iter()
            .position(|line| line.contains(problem))
            .unwrap_or_else(|| panic!("no `{problem}` in {stderr}"));
        let arrow = lines[..caret]
            .iter()
            .rev()
            .find(|line| line.contains("-->"))
            .unwrap_or_else(|| panic!("no position for `{problem}` in {stderr}"));
        let place = arrow.rsplit("shape.toml:").next().unwrap_or_default();
        place.split(':').next().unwrap_or_default().to_owned()
    };
    assert_eq!(at("`d` can never run"), "6", "{stderr}");
    assert_eq!(
        at("the cycle `b` → `c` → `b` has no bound"),
        "4",
        "{stderr}"
    );
    assert_eq!(at("no path to end from `b`, `c`"), "4", "{stderr}");
}

#[test]
fn graph_draws_conditions_loops_maps_joins_and_budgets() {
    let draw = |name: &str, format: &str| {
        let output = orchestra()
            .args(["graph", "--format", format])
            .arg(example(&format!("graph-{name}.toml")))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.status.code(), Some(0), "{}", texts(&output).1);
        texts(&output).0
    };
    let route = draw("route", "mermaid");
    assert!(
        route.contains("-- \"contains #quot;bug#quot;\" -->"),
        "{route}"
    );
    assert!(route.contains("-- \"default\" -->"), "{route}");
    let router = draw("router", "dot");
    assert!(
        router.contains("label=\"dispatcher says engineering\""),
        "{router}"
    );
    let lp = draw("loop", "mermaid");
    assert!(
        lp.contains("-. \"until matches /!!!$/ · ≤5 passes\" .->"),
        "{lp}"
    );
    let map = draw("map", "dot");
    assert!(map.contains("map over lines · ≤2 at once"), "{map}");
    let join = draw("join", "mermaid");
    assert!(join.contains("join ≥2"), "{join}");
    let budget = draw("budget", "dot");
    assert!(
        budget.contains("budget $1, 100000 tokens, 20 steps, 60s"),
        "{budget}"
    );
    assert!(budget.contains("style=dashed"), "{budget}");
}

#[test]
fn a_join_on_a_group_node_is_drawn_on_its_frame() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "group-join.toml",
        r#"
[flow]
nodes = ["a", "b", "g"]
edges = ["start -> a -> g", "start -> b -> g", "g -> end"]
joins = [{ node = "g", policy = "any" }]

[[groups]]
id = "g"
sequential = ["c"]

[[agents]]
id = "a"
kind = "template"
template = "a"

[[agents]]
id = "b"
kind = "template"
template = "b"

[[agents]]
id = "c"
kind = "template"
template = "c{{input}}"
"#,
    );
    for format in ["mermaid", "dot"] {
        let drawn = outcome(&["graph", "--format", format], &file, &[]);
        assert_eq!(drawn.code, Some(0), "{}", drawn.stderr);
        assert!(
            drawn.stdout.contains("g · sequential · join any"),
            "{format}: {}",
            drawn.stdout
        );
    }
}

/// A map over three lines whose second item fails (with `exit`), with the
/// flow's `settings`.
fn map_with_a_failing_item(settings: &str, exit: u8) -> String {
    format!(
        r#"
[flow]
nodes = ["plan", "item", "out"]
edges = ["start -> plan -> item -> out -> end"]
{settings}

[[flow.maps]]
node = "item"
over = "lines"

[[agents]]
id = "plan"
kind = "command"
shell = 'printf "a\nbad\nc\n"'

[[agents]]
id = "item"
kind = "command"
shell = 'read x; if [ "$x" = bad ]; then echo "item broke on $x" >&2; exit {exit}; fi; echo "ok $x"'

[[agents]]
id = "out"
kind = "template"
template = "got: {{{{input}}}}"
"#
    )
}

#[test]
fn a_map_item_failure_its_join_tolerates_is_reported_as_a_parallel_groups_is() {
    let dir = scratch();
    let text = map_with_a_failing_item(
        "retries = 0\njoins = [{ node = \"item\", policy = \"any\" }]",
        1,
    );
    let file = write(dir.path(), "map.toml", &text);

    // The run reaches its end, and exits 1 as with a parallel group's
    // tolerated failure; the summary names the failed item.
    let run = outcome(&["run"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.contains("got: ok a"), "{}", run.stdout);
    let row = run
        .stderr
        .lines()
        .find(|line| line.starts_with("item   command"))
        .unwrap_or_default();
    assert!(row.ends_with("failed"), "{}", run.stderr);
    assert!(
        row.split_whitespace().nth(2) == Some("3"),
        "one attempt per item: {row}"
    );
    assert!(
        run.stderr.contains("item: failed: 1 of 3 items failed"),
        "{}",
        run.stderr
    );
    let after_table = run
        .stderr
        .split_once("\ntotal")
        .map_or("", |(_, rest)| rest);
    assert!(
        after_table.contains("✗ item, item 2 of 3 (`bad`): "),
        "{}",
        run.stderr
    );
    assert!(
        after_table.contains("    item broke on bad"),
        "{}",
        run.stderr
    );

    // --json: the step failed, its error names the item, and the run's
    // failures list it, as they list a parallel group's failed step.
    let run = outcome(&["run", "--json"], &file, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let value = common::json(&run.stdout);
    assert_eq!(value["success"], false, "{value}");
    let item = value["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == "item")
        .cloned()
        .unwrap_or_default();
    assert_eq!(item["status"], "failed", "{value}");
    assert!(
        item["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("item 2 of 3 (`bad`): ") && e.contains("exit code 1")),
        "{value}"
    );
    let failures = value["failures"].as_array().cloned().unwrap_or_default();
    assert_eq!(failures.len(), 1, "{value}");
    assert_eq!(failures[0]["agent_name"], "item", "{value}");
    assert_eq!(failures[0]["item"], "item 2 of 3 (`bad`)", "{value}");
}

#[test]
fn a_failed_map_item_says_its_attempts_once_and_the_map_is_not_run_again() {
    let dir = scratch();
    // Exit 75 is retryable: the item gets its 3 attempts, and the map is
    // not run again whole.
    let file = write(
        dir.path(),
        "map.toml",
        &map_with_a_failing_item(
            "retries = 2\nbackoff = { initial = \"1ms\", max = \"1ms\" }",
            75,
        ),
    );
    let run = outcome(&["run"], &file, &[]);
    let stderr = run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: the run failed"))
        .unwrap_or_default();
    assert!(
        error.contains("exit code 75 (after 3 attempts)"),
        "{stderr}"
    );
    assert_eq!(error.matches("(after ").count(), 1, "{stderr}");
    assert!(!stderr.contains("(after 1 attempt)"), "{stderr}");
    let row = stderr
        .lines()
        .find(|line| line.starts_with("item   command"))
        .unwrap_or_default();
    // Items a and c once, item 2 three times.
    assert_eq!(row.split_whitespace().nth(2), Some("5"), "{stderr}");
}

/// A graph whose map `work` runs over three lines.
const MAP_OF_THREE: &str = r#"
input = "a\nb\nc"

[flow]
nodes = ["work", "done"]
edges = ["start -> work -> done -> end"]

[[flow.maps]]
node = "work"
over = "lines"

[[agents]]
id = "work"
kind = "command"
command = ["tr", "a-z", "A-Z"]

[[agents]]
id = "done"
kind = "template"
template = "got:\n{{input}}"
"#;

#[test]
fn a_maps_items_are_labelled_apart_from_the_map_in_the_log_and_the_traces() {
    let dir = scratch();
    let file = write(dir.path(), "map.toml", MAP_OF_THREE);
    let trace = dir.path().join("trace.json");
    let chrome = dir.path().join("chrome.json");
    let trace_arg = trace.display().to_string();
    let chrome_arg = chrome.display().to_string();
    let run = outcome(
        &["run", "--trace", &trace_arg, "--chrome-trace", &chrome_arg],
        &file,
        &[],
    );
    let stderr = run.stderr;
    assert_eq!(run.code, Some(0), "{stderr}");
    // The map says how many items it runs; each item's lines say which.
    assert!(stderr.contains("work: running 3 items"), "{stderr}");
    for item in 1..=3 {
        assert!(
            stderr.contains(&format!("work[{item}/3]: running (attempt 1/")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("work[{item}/3]: done in ")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("work: done in ") && stderr.contains("(3 items)"),
        "{stderr}"
    );
    // No line of the map's own step reads like an item's.
    assert!(!stderr.contains("work: running (attempt"), "{stderr}");

    let shown = outcome(&["trace"], &trace, &[]);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    for item in 1..=3 {
        assert!(
            shown.stdout.contains(&format!("  work[{item}/3]")),
            "{}",
            shown.stdout
        );
    }
    let chrome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&chrome).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = chrome["traceEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["ph"] == "X")
        .filter_map(|event| event["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["work", "work[1/3]", "work[2/3]", "work[3/3]", "done"],
        "{chrome}"
    );
}

#[test]
fn a_budgeted_group_is_logged_once_not_again_for_the_graph_that_carries_its_budget() {
    let (code, _, stderr) = run(&example("graph-budget.toml"), None);
    assert_eq!(code, Some(0), "{stderr}");
    let started = stderr
        .lines()
        .filter(|line| line.contains("] tidy: running"))
        .count();
    let done = stderr
        .lines()
        .filter(|line| line.contains("] tidy: done"))
        .count();
    assert_eq!((started, done), (1, 1), "{stderr}");
}

#[test]
fn a_steps_budget_says_the_step_it_refused_not_that_the_limit_was_used() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "steps.toml",
        r#"
input = "x"

[budget]
max_steps = 5

[flow]
nodes = ["a", "b"]
edges = ["start -> a", "b -> end"]

[[flow.loops]]
body = ["a", "b"]
max_iterations = 10

[[agents]]
id = "a"
kind = "template"
template = "{{input}}a"

[[agents]]
id = "b"
kind = "template"
template = "{{input}}b"
"#,
    );
    let (code, _, stderr) = run(&file, None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "budget exceeded: the run used all 5 steps its steps budget allows, and its 6th \
             step was refused"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("used 5)"), "{stderr}");
}

/// A route on a secret, a JSON number and markup, under a budget.
const REVIEWED: &str = r#"
name = "deploy-${DEPLOY_TOKEN}"
secrets = ["DEPLOY_TOKEN"]

[budget]
max_steps = 5

[flow]
nodes = ["triage", "yes", "no", "tagged"]
edges = ["start -> triage", "yes -> end", "no -> end", "tagged -> end"]

[[flow.routes]]
from = "triage"
when = [
    { contains = '${DEPLOY_TOKEN}', to = "tagged" },
    { matches = '<verdict>\s*#1;', to = "tagged" },
    { field = "n", equals = 5, to = "yes" },
]
default = "no"

[[agents]]
id = "triage"
kind = "template"
template = "{{input}}"

[[agents]]
id = "yes"
kind = "template"
template = "YES"

[[agents]]
id = "no"
kind = "template"
template = "NO"

[[agents]]
id = "tagged"
kind = "template"
template = "TAGGED"
"#;

#[test]
fn graphs_mask_secrets_and_escape_markup_and_routes_compare_json_numbers() {
    let dir = scratch();
    let file = write(dir.path(), "reviewed.toml", REVIEWED);
    let secret = [("DEPLOY_TOKEN", "supersecretvalue123")];
    for format in ["mermaid", "dot"] {
        let drawn = outcome(&["graph", "--format", format], &file, &secret);
        assert_eq!(drawn.code, Some(0), "{}", drawn.stderr);
        assert!(
            !drawn.stdout.contains("supersecret"),
            "{format}: {}",
            drawn.stdout
        );
        assert!(
            drawn.stdout.contains("budget"),
            "{format}: {}",
            drawn.stdout
        );
    }
    let mermaid = outcome(&["graph", "--format", "mermaid"], &file, &secret).stdout;
    assert!(mermaid.contains("#lt;verdict#gt;"), "{mermaid}");
    assert!(mermaid.contains("#35;1;"), "{mermaid}");
    // `5.0` is the number 5.
    let routed = outcome(
        &["run", "--no-store", "-q", "--input", r#"{"n": 5.0}"#],
        &file,
        &secret,
    );
    assert_eq!(routed.code, Some(0), "{}", routed.stderr);
    assert_eq!(routed.stdout.trim(), "YES");
    let run = outcome(&["run", "--no-store", "--input", "x"], &file, &secret);
    assert!(!run.stderr.contains("supersecret"), "{}", run.stderr);
}

#[test]
fn validate_reports_a_misspelled_router_and_its_misspelled_choices_at_once() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "router.toml",
        r#"
[flow]
nodes = ["triage", "engineering", "product"]
edges = ["start -> triage", "engineering -> end", "product -> end"]

[[flow.routes]]
from = "triage"
router = "dispatchr"
choices = ["enginering", "prodct"]
default = "engineering"

[[agents]]
id = "triage"
kind = "template"
template = "{{input}}"

[[agents]]
id = "dispatcher"
kind = "template"
template = "engineering"

[[agents]]
id = "engineering"
kind = "template"
template = "E"

[[agents]]
id = "product"
kind = "template"
template = "P"
"#,
    );
    let checked = outcome(&["validate"], &file, &[]);
    assert_eq!(checked.code, Some(2), "{}", checked.stderr);
    for expected in [
        "unknown router agent `dispatchr`",
        "did you mean `dispatcher`?",
        "did you mean `engineering`?",
        "did you mean `product`?",
        "3 problems found",
    ] {
        assert!(
            checked.stderr.contains(expected),
            "{expected}: {}",
            checked.stderr
        );
    }
}
