//! Adversarial review of graph semantics in combination (session: graph
//! semantics): joins satisfied while siblings still run, loops whose bodies
//! hold maps and joins, routers naming a node twice or one they may not,
//! maps over zero, one and failing items, subgraphs and retries inside loop
//! passes, the step limit's culprit under nested loops, and the gathered
//! form byte for byte.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, Budget, EventKind, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, JoinPolicy, NodeOptions, OrchestrationError, Orchestrator,
    OrchestratorInput, Result, Route, Split, END, START,
};
use common::{assert_books_balanced, permanent, transient};

// ---------------------------------------------------------------------
// Helpers.

type Behaviour = dyn Fn(&AgentInput, usize) -> Result<AgentOutput> + Send + Sync;

/// Sleeps `delay`, then answers with `behaviour(input, call)` (calls count
/// from 0); keeps every input it was given.
struct Act {
    name: String,
    delay: Duration,
    calls: Arc<AtomicUsize>,
    inputs: Arc<Mutex<Vec<AgentInput>>>,
    behaviour: Box<Behaviour>,
}

/// What a test reads of an [`Act`] once it has been moved into a graph.
#[derive(Clone)]
struct Seen {
    calls: Arc<AtomicUsize>,
    inputs: Arc<Mutex<Vec<AgentInput>>>,
}

impl Seen {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn contents(&self) -> Vec<String> {
        self.inputs
            .lock()
            .unwrap()
            .iter()
            .map(|input| input.content.clone())
            .collect()
    }
    fn results(&self) -> Vec<Option<String>> {
        self.inputs
            .lock()
            .unwrap()
            .iter()
            .map(|input| input.metadata.get("results").cloned())
            .collect()
    }
}

fn act(
    name: &str,
    delay: Duration,
    behaviour: impl Fn(&AgentInput, usize) -> Result<AgentOutput> + Send + Sync + 'static,
) -> (Act, Seen) {
    let seen = Seen {
        calls: Arc::default(),
        inputs: Arc::default(),
    };
    (
        Act {
            name: name.to_owned(),
            delay,
            calls: Arc::clone(&seen.calls),
            inputs: Arc::clone(&seen.inputs),
            behaviour: Box::new(behaviour),
        },
        seen,
    )
}

/// `"<name>(<input>)"` after `delay`.
fn wraps(name: &'static str, delay: Duration) -> (Act, Seen) {
    act(name, delay, move |input, _| {
        Ok(AgentOutput::new(format!("{name}({})", input.content)))
    })
}

#[async_trait]
impl Agent for Act {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "acts as its test says"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        self.inputs.lock().unwrap().push(input.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        (self.behaviour)(&input, call)
    }
}

fn input(text: &str) -> OrchestratorInput {
    OrchestratorInput::new(text)
}

fn traced() -> (ExecutionContext, Arc<InMemoryJournal>) {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    (ctx, journal)
}

/// The step limit's culprit, from a run that ran into it.
fn culprit(result: Result<claude_agent_sdk::orchestration::OrchestratorOutput>) -> String {
    let error = result.expect_err("the step limit stops the run");
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected BudgetExceeded, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Steps);
    exceeded.culprit.clone().unwrap_or_default()
}

// ---------------------------------------------------------------------
// The step limit's culprit.

/// a → b → c → d → END, an inner loop c → b and an outer loop d → a, the
/// outer loop declared first. The inner loop runs away (it never stops);
/// the outer one allows three passes.
#[tokio::test(start_paused = true)]
async fn the_step_limit_names_the_inner_loop_that_ran_away_inside_an_outer_loop() {
    let graph = GraphOrchestrator::new("nested")
        .add_node("a", wraps("a", Duration::ZERO).0)
        .add_node("b", wraps("b", Duration::ZERO).0)
        .add_node("c", wraps("c", Duration::ZERO).0)
        .add_node("d", wraps("d", Duration::ZERO).0)
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", "c")
        .add_edge("c", "d")
        .add_edge("d", END)
        .add_loop("d", "a", 3, |_| true)
        .add_loop("c", "b", u32::MAX, |_| true)
        .with_max_steps(40);
    let culprit = culprit(graph.orchestrate(vec![], input("x")).await);
    assert!(
        culprit.contains("the loop from `c` back to `b` ran away"),
        "{culprit}"
    );
}

/// As above, but the outer loop runs away (the inner one allows two passes),
/// and the inner loop is declared first.
#[tokio::test(start_paused = true)]
async fn the_step_limit_names_the_outer_loop_when_it_is_the_one_that_ran_away() {
    let graph = GraphOrchestrator::new("nested")
        .add_node("a", wraps("a", Duration::ZERO).0)
        .add_node("b", wraps("b", Duration::ZERO).0)
        .add_node("c", wraps("c", Duration::ZERO).0)
        .add_node("d", wraps("d", Duration::ZERO).0)
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", "c")
        .add_edge("c", "d")
        .add_edge("d", END)
        .add_loop("c", "b", 2, |_| true)
        .add_loop("d", "a", u32::MAX, |_| true)
        .with_max_steps(40);
    let culprit = culprit(graph.orchestrate(vec![], input("x")).await);
    assert!(
        culprit.contains("the loop from `d` back to `a` ran away"),
        "{culprit}"
    );
}

/// The loop is declared by node ids; its agents are called otherwise (and
/// one agent runs both nodes): the culprit names the nodes.
#[tokio::test(start_paused = true)]
async fn the_step_limit_culprit_names_the_loops_nodes_not_their_agents() {
    let shared: Arc<dyn Agent> = Arc::new(wraps("worker", Duration::ZERO).0);
    let graph = GraphOrchestrator::new("spin")
        .add_shared_node("draft", Arc::clone(&shared))
        .add_shared_node("review", shared)
        .add_edge(START, "draft")
        .add_edge("draft", "review")
        .add_edge("review", END)
        .add_loop("review", "draft", u32::MAX, |_| true)
        .with_max_steps(10);
    let culprit = culprit(graph.orchestrate(vec![], input("x")).await);
    assert!(
        culprit.contains("the loop from `review` back to `draft` ran away"),
        "{culprit}"
    );
}

/// A loop whose first pass maps over more items than the step limit allows:
/// no loop went round, so none ran away — the map is named.
#[tokio::test(start_paused = true)]
async fn the_step_limit_hit_by_a_map_on_a_loops_first_pass_names_the_map() {
    let graph = GraphOrchestrator::new("flood")
        .add_node("plan", wraps("plan", Duration::ZERO).0)
        .add_map("items", wraps("item", Duration::ZERO).0, Split::Lines)
        .add_node("check", wraps("check", Duration::ZERO).0)
        .add_edge(START, "plan")
        .add_edge("plan", "items")
        .add_edge("items", "check")
        .add_loop("check", "plan", 3, |_| true)
        .add_edge("check", END)
        .with_max_steps(10);
    let lines: Vec<String> = (0..20).map(|n| format!("q{n}")).collect();
    let culprit = culprit(graph.orchestrate(vec![], input(&lines.join("\n"))).await);
    assert_eq!(culprit, "`items` had 9 steps");
}

// ---------------------------------------------------------------------
// Joins satisfied early, inside loops.

/// s → fast → join, s → slow → join (`Any`), join → e, e loops back to s
/// three times. Each pass the join runs on the fast branch; the slow
/// branches of earlier passes are still running when the loop goes round.
/// They run to their end, their records end once, and the result is the
/// last pass's.
#[tokio::test(start_paused = true)]
async fn an_any_join_in_a_loop_goes_round_while_slow_siblings_of_earlier_passes_still_run() {
    let (s, _) = act("s", Duration::ZERO, |input, call| {
        Ok(AgentOutput::new(format!(
            "s{}({})",
            call + 1,
            input.content
        )))
    });
    let (fast, _) = wraps("fast", Duration::from_secs(1));
    let (slow, slow_seen) = wraps("slow", Duration::from_secs(10));
    let (join, join_seen) = wraps("join", Duration::ZERO);
    let (e, _) = act("e", Duration::ZERO, |_, call| {
        Ok(AgentOutput::new(format!("e{}", call + 1)))
    });
    let graph = GraphOrchestrator::new("race-loop")
        .add_node("s", s)
        .add_node("fast", fast)
        .add_node("slow", slow)
        .add_node("join", join)
        .add_node("e", e)
        .add_edge(START, "s")
        .add_edge("s", "fast")
        .add_edge("s", "slow")
        .add_edge("fast", "join")
        .add_edge("slow", "join")
        .with_join("join", JoinPolicy::Any)
        .add_edge("join", "e")
        .add_loop("e", "s", 3, |_| true)
        .add_edge("e", END);
    let (ctx, journal) = traced();
    let started = tokio::time::Instant::now();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .expect("every pass reaches the join");
    assert_eq!(output.result, "e3");
    assert_eq!(slow_seen.calls(), 3, "one slow branch per pass");
    assert_eq!(
        join_seen.contents(),
        ["fast(s1(x))", "fast(s2(e1))", "fast(s3(e2))"],
        "each pass's join ran on that pass's fast branch"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(12),
        "the run waited for the slow branches: {:?}",
        started.elapsed()
    );
    assert_books_balanced(&journal);
    let trace = ctx.get_trace().await;
    assert_eq!(trace.attempts_of("slow").count(), 3);
    assert!(trace.attempts_of("slow").all(|record| record.success));
}

/// A loop whose body holds a map: each pass splits that pass's input, and
/// the node after the map gets that pass's items, gathered, numbered from 0.
#[tokio::test(start_paused = true)]
async fn a_map_in_a_loop_body_gathers_each_passs_own_items() {
    let (plan, _) = act("plan", Duration::ZERO, |_, call| {
        Ok(AgentOutput::new(match call {
            0 => "a\nb",
            _ => "c\nd\ne",
        }))
    });
    let (item, _) = wraps("item", Duration::from_millis(10));
    let (sum, sum_seen) = act("sum", Duration::ZERO, |input, _| {
        Ok(AgentOutput::new(input.content.replace("\n\n", "+")))
    });
    let graph = GraphOrchestrator::new("map-loop")
        .add_node("plan", plan)
        .add_map("items", item, Split::Lines)
        .add_node("sum", sum)
        .add_edge(START, "plan")
        .add_edge("plan", "items")
        .add_edge("items", "sum")
        .add_loop("sum", "plan", 2, |_| true)
        .add_edge("sum", END)
        .with_parallel_limit(2);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "item(c)+item(d)+item(e)");
    assert_eq!(
        sum_seen.results(),
        [
            Some(
                r#"[{"agent":"item","content":"item(a)","input":"a","item":0},{"agent":"item","content":"item(b)","input":"b","item":1}]"#
                    .to_owned()
            ),
            Some(
                r#"[{"agent":"item","content":"item(c)","input":"c","item":0},{"agent":"item","content":"item(d)","input":"d","item":1},{"agent":"item","content":"item(e)","input":"e","item":2}]"#
                    .to_owned()
            ),
        ]
    );
    // The journal announces each item under its pass.
    let items: Vec<(u32, Option<u32>)> = journal
        .events()
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::StepAdded {
                node,
                iteration,
                item,
                ..
            } if node == "items" && item.is_some() => Some((*iteration, *item)),
            _ => None,
        })
        .collect();
    assert_eq!(
        items,
        [
            (1, Some(0)),
            (1, Some(1)),
            (2, Some(0)),
            (2, Some(1)),
            (2, Some(2))
        ]
    );
    assert_books_balanced(&journal);
}

/// A join in a loop fed by a node outside the loop (which ran once) and by
/// one inside: every pass's join gets both, the outside one's output kept.
#[tokio::test(start_paused = true)]
async fn a_join_in_a_loop_keeps_what_its_outside_predecessor_gave_on_every_pass() {
    let (pre, pre_seen) = wraps("pre", Duration::from_secs(3));
    let (head, _) = act("head", Duration::ZERO, |_, call| {
        Ok(AgentOutput::new(format!("h{}", call + 1)))
    });
    let (join, join_seen) = wraps("join", Duration::ZERO);
    let graph = GraphOrchestrator::new("outside")
        .add_node("root", wraps("root", Duration::ZERO).0)
        .add_node("pre", pre)
        .add_node("head", head)
        .add_node("join", join)
        .add_edge(START, "root")
        .add_edge("root", "pre")
        .add_edge("root", "head")
        .add_edge("head", "join")
        .add_edge("pre", "join")
        .add_loop("join", "head", 3, |_| true)
        .add_edge("join", END);
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(pre_seen.calls(), 1, "the outside node runs once");
    assert_eq!(
        join_seen.contents(),
        [
            "h1\n\npre(root(x))",
            "h2\n\npre(root(x))",
            "h3\n\npre(root(x))"
        ]
    );
    assert_eq!(output.result, "join(h3\n\npre(root(x)))");
}

// ---------------------------------------------------------------------
// Routers.

#[tokio::test(start_paused = true)]
async fn a_router_naming_a_node_twice_runs_it_once_and_naming_end_twice_ends_once() {
    let (b, b_seen) = wraps("b", Duration::ZERO);
    let graph = GraphOrchestrator::new("twice")
        .add_node("a", wraps("a", Duration::ZERO).0)
        .add_node("b", b)
        .add_edge(START, "a")
        .add_router("a", ["b", END], |_| Route::to_all(["b", "b", END, END]))
        .add_edge("b", END);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(b_seen.calls(), 1);
    let mut results: Vec<&str> = output.result.split("\n\n").collect();
    results.sort_unstable();
    assert_eq!(results, ["a(x)", "b(a(x))"], "each result once");
    assert_books_balanced(&journal);
}

/// A router that picks a node it did not declare, beside a branch that
/// reaches END: the run ends with the other branch's result and lists the
/// routed step among its failures, naming the router.
#[tokio::test(start_paused = true)]
async fn a_router_choosing_an_undeclared_node_fails_its_step_but_not_a_sibling_branch() {
    let (after, after_seen) = wraps("after", Duration::ZERO);
    let graph = GraphOrchestrator::new("bad-route")
        .add_node("router", wraps("router", Duration::ZERO).0)
        .add_node("after", after)
        .add_node("other", wraps("other", Duration::from_millis(5)).0)
        .add_edge(START, "router")
        .add_edge(START, "other")
        .add_router("router", ["after"], |_| Route::to("nowhere"))
        .add_edge("after", END)
        .add_edge("other", END);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .expect("the other branch reaches END");
    assert_eq!(output.result, "other(x)");
    assert_eq!(after_seen.calls(), 0);
    assert_eq!(output.failures.len(), 1);
    assert_eq!(output.failures[0].agent_name, "router");
    assert!(
        output.failures[0]
            .error
            .contains("chose `nowhere`, which is not among its targets"),
        "{}",
        output.failures[0].error
    );
    assert_books_balanced(&journal);
}

// ---------------------------------------------------------------------
// Maps over zero, one and failing items; the gathered form byte for byte.

#[tokio::test(start_paused = true)]
async fn a_map_over_no_items_gives_the_next_node_empty_text_and_an_empty_json_array() {
    let (after, after_seen) = wraps("after", Duration::ZERO);
    let (item, item_seen) = wraps("item", Duration::ZERO);
    let graph = GraphOrchestrator::new("empty")
        .add_map("items", item, Split::JsonArray)
        .add_node("after", after)
        .add_edge(START, "items")
        .add_edge("items", "after")
        .add_edge("after", END);
    let output = graph.orchestrate(vec![], input(" [] ")).await.unwrap();
    assert_eq!(item_seen.calls(), 0);
    assert_eq!(output.result, "after()");
    assert_eq!(after_seen.results(), [Some("[]".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn a_map_over_no_items_under_any_fails_saying_why() {
    let graph = GraphOrchestrator::new("empty-any")
        .add_map("items", wraps("item", Duration::ZERO).0, Split::Lines)
        .add_node("after", wraps("after", Duration::ZERO).0)
        .add_edge(START, "items")
        .add_edge("items", "after")
        .add_edge("after", END)
        .with_join("items", JoinPolicy::Any);
    let error = graph
        .orchestrate(vec![], input("\n  \n"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("split into 0 item(s)"),
        "{error}"
    );
}

/// One item is still a map's gathered form: the JSON array has one object.
/// Its `data` comes through as given.
#[tokio::test(start_paused = true)]
async fn a_map_over_one_item_gives_a_one_element_array_with_its_data() {
    let (item, _) = act("item", Duration::ZERO, |input, _| {
        Ok(AgentOutput::new(format!("<{}>", input.content)).with_data(serde_json::json!({"n": 1})))
    });
    let (after, after_seen) = wraps("after", Duration::ZERO);
    let graph = GraphOrchestrator::new("one")
        .add_map("items", item, Split::JsonArray)
        .add_node("after", after)
        .add_edge(START, "items")
        .add_edge("items", "after")
        .add_edge("after", END);
    let output = graph
        .orchestrate(vec![], input(r#"[{"q": "why"}]"#))
        .await
        .unwrap();
    assert_eq!(output.result, r#"after(<{"q":"why"}>)"#);
    assert_eq!(
        after_seen.results(),
        [Some(
            r#"[{"agent":"item","content":"<{\"q\":\"why\"}>","data":{"n":1},"input":"{\"q\":\"why\"}","item":0}]"#
                .to_owned()
        )]
    );
}

/// Under `AtLeast(2)`, one of three items fails for good: the map succeeds,
/// the node after it gets the two others (indexes kept), and the failed item
/// is listed.
#[tokio::test(start_paused = true)]
async fn a_map_at_least_k_with_a_failed_item_gathers_the_rest_with_their_indexes() {
    let (item, _) = act("item", Duration::ZERO, |input, _| {
        if input.content == "bad" {
            Err(permanent("bad item"))
        } else {
            Ok(AgentOutput::new(input.content.to_uppercase()))
        }
    });
    let (after, after_seen) = wraps("after", Duration::ZERO);
    let graph = GraphOrchestrator::new("tolerant")
        .add_map("items", item, Split::Lines)
        .add_node("after", after)
        .add_edge(START, "items")
        .add_edge("items", "after")
        .add_edge("after", END)
        .with_join("items", JoinPolicy::AtLeast(2));
    let output = graph
        .orchestrate(vec![], input("one\nbad\nthree"))
        .await
        .unwrap();
    assert_eq!(output.result, "after(ONE\n\nTHREE)");
    assert_eq!(
        after_seen.results(),
        [Some(
            r#"[{"agent":"item","content":"ONE","input":"one","item":0},{"agent":"item","content":"THREE","input":"three","item":2}]"#
                .to_owned()
        )]
    );
    assert_eq!(output.failures.len(), 1);
    assert!(output.failures[0].error.contains("bad item"));
}

/// A join's gathered form: contents separated by a blank line in
/// predecessor order (not completion order), the JSON array without `item`
/// or `input`, `data` only where there was some; the run's metadata and
/// context come along.
#[tokio::test(start_paused = true)]
async fn a_joins_gathered_input_is_the_documented_form_byte_for_byte() {
    let (first, _) = act("first", Duration::from_secs(2), |_, _| {
        Ok(AgentOutput::new("one").with_data(serde_json::json!({"k": [1, 2]})))
    });
    let (second, _) = act("second", Duration::ZERO, |_, _| Ok(AgentOutput::new("two")));
    let (join, join_seen) = wraps("join", Duration::ZERO);
    let graph = GraphOrchestrator::new("gather")
        .add_node("first", first)
        .add_node("second", second)
        .add_node("join", join)
        .add_edge(START, "first")
        .add_edge(START, "second")
        .add_edge("first", "join")
        .add_edge("second", "join")
        .add_edge("join", END);
    let mut given = input("x");
    given.metadata.insert("user".into(), "ann".into());
    given.context = serde_json::json!({"ticket": 7});
    graph.orchestrate(vec![], given).await.unwrap();
    let inputs = join_seen.inputs.lock().unwrap().clone();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].content, "one\n\ntwo");
    assert_eq!(
        inputs[0].metadata.get("results").map(String::as_str),
        Some(
            r#"[{"agent":"first","content":"one","data":{"k":[1,2]}},{"agent":"second","content":"two"}]"#
        )
    );
    assert_eq!(
        inputs[0].metadata.get("user").map(String::as_str),
        Some("ann")
    );
    assert_eq!(inputs[0].context, serde_json::json!({"ticket": 7}));
}

// ---------------------------------------------------------------------
// Subgraphs and retries inside loop passes.

/// A subgraph node in a loop runs a nested run per pass: each pass's
/// record holds its own nested trace (its own run id), with the inner
/// node's record inside.
#[tokio::test(start_paused = true)]
async fn a_subgraph_in_a_loop_runs_a_nested_run_of_its_own_on_every_pass() {
    let (inner, inner_seen) = wraps("inner", Duration::ZERO);
    let sub = GraphOrchestrator::new("sub")
        .add_node("inner", inner)
        .add_edge(START, "inner")
        .add_edge("inner", END);
    let graph = GraphOrchestrator::new("outer")
        .add_node("head", wraps("head", Duration::ZERO).0)
        .add_subgraph("sub", sub)
        .add_edge(START, "head")
        .add_edge("head", "sub")
        .add_loop("sub", "head", 3, |_| true)
        .add_edge("sub", END);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "inner(head(inner(head(inner(head(x))))))");
    assert_eq!(inner_seen.calls(), 3);
    let trace = ctx.get_trace().await;
    let subs: Vec<_> = trace.attempts_of("sub").collect();
    assert_eq!(subs.len(), 3);
    let mut nested_runs = Vec::new();
    for record in &subs {
        let nested = record.nested.as_ref().expect("a nested trace per pass");
        assert_eq!(nested.attempts_of("inner").count(), 1);
        nested_runs.push(nested.run_id.expect("the nested run's id"));
    }
    nested_runs.sort_unstable_by_key(ToString::to_string);
    nested_runs.dedup();
    assert_eq!(nested_runs.len(), 3, "one nested run per pass");
    assert_books_balanced(&journal);
}

/// A node in a loop fails its first attempt on every pass: its retry gets
/// that pass's input again, never an earlier pass's.
#[tokio::test(start_paused = true)]
async fn a_retry_inside_a_loop_pass_gets_that_passs_input() {
    let (flaky, flaky_seen) = act("flaky", Duration::ZERO, |input, call| {
        if call % 2 == 0 {
            Err(transient("first try fails"))
        } else {
            Ok(AgentOutput::new(format!("f({})", input.content)))
        }
    });
    let (head, _) = act("head", Duration::ZERO, |_, call| {
        Ok(AgentOutput::new(format!("h{}", call + 1)))
    });
    let graph = GraphOrchestrator::new("retry-loop")
        .add_node("head", head)
        .add_node_with("flaky", flaky, NodeOptions::new().with_max_retries(1))
        .add_edge(START, "head")
        .add_edge("head", "flaky")
        .add_loop("flaky", "head", 3, |_| true)
        .add_edge("flaky", END);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "f(h3)");
    assert_eq!(flaky_seen.contents(), ["h1", "h1", "h2", "h2", "h3", "h3"]);
    assert_books_balanced(&journal);
}

// ---------------------------------------------------------------------
// Questions in loop passes with maps; loops back to a map; odd loop shapes.

/// plan → items (map) → review (ask) → decide, looping back to plan twice.
/// Each pass pauses at the question (`review`, then `review#2`); resuming
/// runs no finished step again — no item, no plan — and the asking node
/// gets the answer.
#[tokio::test(start_paused = true)]
async fn questions_in_a_loop_with_a_map_resume_without_rerunning_items() {
    let (plan, plan_seen) = act("plan", Duration::ZERO, |input, _| {
        Ok(AgentOutput::new(format!(
            "{}-a\n{}-b",
            input.content, input.content
        )))
    });
    let (item, item_seen) = wraps("item", Duration::from_millis(5));
    let (decide, decide_seen) = wraps("decide", Duration::ZERO);
    let graph = GraphOrchestrator::new("review-loop")
        .add_node("plan", plan)
        .add_map("items", item, Split::Lines)
        .add_ask("review", "ok?")
        .add_node("decide", decide)
        .add_edge(START, "plan")
        .add_edge("plan", "items")
        .add_edge("items", "review")
        .add_edge("review", "decide")
        .add_loop("decide", "plan", 2, |_| true)
        .add_edge("decide", END);
    let Err(OrchestrationError::InputRequired(pause)) = graph.orchestrate(vec![], input("x")).await
    else {
        panic!("the first pass asks");
    };
    assert_eq!(pause.questions.len(), 1);
    assert_eq!(pause.questions[0].id, "review");
    assert_eq!(item_seen.calls(), 2);
    let Err(OrchestrationError::InputRequired(pause)) =
        graph.resume(*pause, [("review", "yes1")]).await
    else {
        panic!("the second pass asks again");
    };
    assert_eq!(pause.questions[0].id, "review#2");
    assert_eq!(plan_seen.contents(), ["x", "decide(yes1)"]);
    assert_eq!(item_seen.calls(), 4, "pass 1's items were not run again");
    let output = graph.resume(*pause, [("review#2", "yes2")]).await.unwrap();
    assert_eq!(output.result, "decide(yes2)");
    assert_eq!(plan_seen.calls(), 2);
    assert_eq!(item_seen.calls(), 4);
    assert_eq!(decide_seen.contents(), ["yes1", "yes2"]);
}

/// A loop going back to a map: each pass splits the closing node's output.
#[tokio::test(start_paused = true)]
async fn a_loop_back_to_a_map_splits_the_closing_nodes_output_each_pass() {
    let (item, item_seen) = wraps("item", Duration::ZERO);
    let (last, _) = act("last", Duration::ZERO, |input, call| {
        // Pass 1 turns two items into three lines; pass 2 ends.
        Ok(AgentOutput::new(match call {
            0 => "p\nq\nr".to_owned(),
            _ => input.content.replace("\n\n", "|"),
        }))
    });
    let graph = GraphOrchestrator::new("remap")
        .add_map("items", item, Split::Lines)
        .add_node("last", last)
        .add_edge(START, "items")
        .add_edge("items", "last")
        .add_loop("last", "items", 2, |_| true)
        .add_edge("last", END);
    let output = graph.orchestrate(vec![], input("a\nb")).await.unwrap();
    assert_eq!(output.result, "item(p)|item(q)|item(r)");
    assert_eq!(item_seen.contents(), ["a", "b", "p", "q", "r"]);
}

/// A node looping back to itself: bounded by its count.
#[tokio::test(start_paused = true)]
async fn a_node_looping_to_itself_runs_its_bound_and_goes_on() {
    let (polish, polish_seen) = wraps("polish", Duration::ZERO);
    let graph = GraphOrchestrator::new("self")
        .add_node("polish", polish)
        .add_edge(START, "polish")
        .add_loop("polish", "polish", 3, |_| true)
        .add_edge("polish", END);
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(output.result, "polish(polish(polish(x)))");
    assert_eq!(polish_seen.calls(), 3);
}

/// Two loops that overlap without one holding the other: a → b → c → d,
/// c back to a (2 passes), d back to b (2 passes). The run ends, bounded,
/// every attempt recorded once.
#[tokio::test(start_paused = true)]
async fn overlapping_loops_end_within_their_bounds() {
    let graph = GraphOrchestrator::new("overlap")
        .add_node("a", wraps("a", Duration::ZERO).0)
        .add_node("b", wraps("b", Duration::ZERO).0)
        .add_node("c", wraps("c", Duration::ZERO).0)
        .add_node("d", wraps("d", Duration::ZERO).0)
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", "c")
        .add_edge("c", "d")
        .add_loop("c", "a", 2, |_| true)
        .add_loop("d", "b", 2, |_| true)
        .add_edge("d", END);
    let (ctx, journal) = traced();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        graph.orchestrate_with_context(vec![], input("x"), &ctx),
    )
    .await
    .expect("the run ends")
    .expect("it reaches END");
    assert!(output.result.starts_with("d("), "{}", output.result);
    assert_books_balanced(&journal);
}

/// An `Any` join in a loop: a sibling of pass 1 that fails after the loop
/// went round fails a step of a finished pass — the run still ends with the
/// last pass's result, and lists that failure.
#[tokio::test(start_paused = true)]
async fn a_sibling_failing_after_its_pass_is_over_does_not_disturb_the_next_pass() {
    let (slow, _) = act("slow", Duration::from_secs(5), |_, _| {
        Err(permanent("too late anyway"))
    });
    let (e, _) = act("e", Duration::ZERO, |_, call| {
        Ok(AgentOutput::new(format!("e{}", call + 1)))
    });
    let graph = GraphOrchestrator::new("stale-fail")
        .add_node("s", wraps("s", Duration::ZERO).0)
        .add_node("fast", wraps("fast", Duration::from_secs(1)).0)
        .add_node("slow", slow)
        .add_node("join", wraps("join", Duration::ZERO).0)
        .add_node("e", e)
        .add_edge(START, "s")
        .add_edge("s", "fast")
        .add_edge("s", "slow")
        .add_edge("fast", "join")
        .add_edge("slow", "join")
        .with_join("join", JoinPolicy::Any)
        .add_edge("join", "e")
        .add_loop("e", "s", 2, |_| true)
        .add_edge("e", END);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .expect("the fast branch carries each pass");
    assert_eq!(output.result, "e2");
    assert_eq!(output.failures.len(), 2, "both slow steps failed");
    assert!(output
        .failures
        .iter()
        .all(|failure| failure.agent_name == "slow"));
    assert_books_balanced(&journal);
}

// ---------------------------------------------------------------------
// Per-node policies on a subgraph inside a loop.

/// A subgraph node with its own attempt timeout and one retry, in a loop:
/// its first attempt (pass 1) times out inside the nested run, the retry
/// runs a fresh nested run on the same input, and pass 2 runs once. Every
/// attempt — outer and nested — ends exactly once.
#[tokio::test(start_paused = true)]
async fn a_subgraph_node_timing_out_in_a_loop_pass_is_retried_on_that_passs_input() {
    let (inner, inner_seen) = act("inner", Duration::ZERO, |input, _| {
        Ok(AgentOutput::new(format!("inner({})", input.content)))
    });
    // The nested graph: slow (5 s on its first call only) → inner.
    struct SlowFirst(Arc<AtomicUsize>);
    #[async_trait]
    impl Agent for SlowFirst {
        fn name(&self) -> &str {
            "slow-first"
        }
        fn description(&self) -> &str {
            "slow on its first call"
        }
        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Ok(AgentOutput::new(input.content))
        }
    }
    let sub = GraphOrchestrator::new("sub")
        .add_node("slow", SlowFirst(Arc::new(AtomicUsize::new(0))))
        .add_node("inner", inner)
        .add_edge(START, "slow")
        .add_edge("slow", "inner")
        .add_edge("inner", END);
    let sub_agent = claude_agent_sdk::orchestration::OrchestratorAgent::new(
        "sub",
        "a nested graph",
        sub,
        Vec::new(),
    );
    let (head, _) = act("head", Duration::ZERO, |_, call| {
        Ok(AgentOutput::new(format!("h{}", call + 1)))
    });
    let graph = GraphOrchestrator::new("outer")
        .add_node("head", head)
        .add_node_with(
            "sub",
            sub_agent,
            NodeOptions::new()
                .with_max_retries(1)
                .with_attempt_timeout(Duration::from_secs(1)),
        )
        .add_edge(START, "head")
        .add_edge("head", "sub")
        .add_loop("sub", "head", 2, |_| true)
        .add_edge("sub", END);
    let (ctx, journal) = traced();
    let output = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .expect("the retry and pass 2 succeed");
    assert_eq!(output.result, "inner(h2)");
    assert_eq!(inner_seen.contents(), ["h1", "h2"]);
    let trace = ctx.get_trace().await;
    let subs: Vec<_> = trace.attempts_of("sub").collect();
    assert_eq!(subs.len(), 3, "two attempts on pass 1, one on pass 2");
    assert!(!subs[0].success && subs[1].success && subs[2].success);
    assert_eq!(subs[0].input.content, "h1");
    assert_eq!(subs[1].input.content, "h1");
    assert_eq!(subs[2].input.content, "h2");
    assert_books_balanced(&journal);
}

/// A loop that runs away while slow siblings of its earlier passes still
/// run (an `Any` join lets each pass go on without them): the step limit
/// starts nothing more, the siblings run to their end, every attempt ends
/// once, and the culprit is the loop, named by its nodes.
#[tokio::test(start_paused = true)]
async fn a_runaway_loop_with_slow_siblings_still_running_stops_cleanly_and_is_named() {
    let (slow, slow_seen) = wraps("slow", Duration::from_secs(30));
    let graph = GraphOrchestrator::new("runaway")
        .add_node("s", wraps("agent-s", Duration::ZERO).0)
        .add_node("fast", wraps("agent-fast", Duration::from_secs(1)).0)
        .add_node("slow", slow)
        .add_node("join", wraps("agent-join", Duration::ZERO).0)
        .add_edge(START, "s")
        .add_edge("s", "fast")
        .add_edge("s", "slow")
        .add_edge("fast", "join")
        .add_edge("slow", "join")
        .with_join("join", JoinPolicy::Any)
        .add_edge("join", END)
        .add_loop("join", "s", u32::MAX, |_| true)
        .with_max_steps(20);
    let (ctx, journal) = traced();
    let started = tokio::time::Instant::now();
    let culprit = culprit(
        graph
            .orchestrate_with_context(vec![], input("x"), &ctx)
            .await,
    );
    assert!(
        culprit.starts_with("the loop from `join` back to `s` ran away"),
        "{culprit}"
    );
    assert!(slow_seen.calls() >= 4);
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "the running siblings finished: {:?}",
        started.elapsed()
    );
    let trace = ctx.get_trace().await;
    assert_eq!(trace.attempts_of("slow").count(), slow_seen.calls());
    assert!(trace.attempts_of("slow").all(|record| record.success));
    assert_books_balanced(&journal);
}

// ---------------------------------------------------------------------
// Errors that name the node they come from.

#[tokio::test(start_paused = true)]
async fn a_router_that_chose_no_branch_is_named_when_the_run_misses_end() {
    let graph = GraphOrchestrator::new("nothing-chosen")
        .add_node("triage", wraps("triage", Duration::ZERO).0)
        .add_node("billing", wraps("billing", Duration::ZERO).0)
        .add_node("support", wraps("support", Duration::ZERO).0)
        .add_edge(START, "triage")
        .add_router("triage", ["billing", "support"], |_| {
            Route::to_all(Vec::<String>::new())
        })
        .add_edge("billing", END)
        .add_edge("support", END);
    let error = graph
        .orchestrate(vec![], input("x"))
        .await
        .expect_err("no branch reaches END");
    let message = error.to_string();
    assert!(
        message.contains("ended without reaching END") && message.contains("`triage`"),
        "{message}"
    );
    assert!(message.contains("chose no branch"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_map_given_input_it_cannot_split_is_named_in_the_error() {
    let graph = GraphOrchestrator::new("bad-split")
        .add_node(
            "plan",
            act("plan", Duration::ZERO, |_, _| {
                Ok(AgentOutput::new("not json"))
            })
            .0,
        )
        .add_map(
            "research",
            wraps("item", Duration::ZERO).0,
            Split::JsonArray,
        )
        .add_edge(START, "plan")
        .add_edge("plan", "research")
        .add_edge("research", END);
    let error = graph
        .orchestrate(vec![], input("x"))
        .await
        .expect_err("the map cannot split its input");
    let message = error.to_string();
    assert!(
        message.contains("`research`") && message.contains("JSON array"),
        "{message}"
    );
}
