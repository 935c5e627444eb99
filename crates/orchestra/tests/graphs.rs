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
