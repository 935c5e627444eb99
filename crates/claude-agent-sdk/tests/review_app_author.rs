//! Behaviours an application author relies on, found while writing the
//! graph and durable examples (`examples/graph_review_loop.rs`,
//! `examples/durable_approval.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use claude_agent_sdk::orchestration::{
    AgentOutput, ExecutionConfig, GraphOrchestrator, OrchestrationError, Orchestrator,
    OrchestratorInput, RunBudget, SimpleAgent, Usage, END, START,
};

/// A graph of one node that reports spending `cost_usd` dollars, and counts its runs.
fn spender(cost_usd: f64, runs: &Arc<AtomicUsize>) -> GraphOrchestrator {
    let runs = Arc::clone(runs);
    let agent = SimpleAgent::new("spender", "", move |input| {
        runs.fetch_add(1, Ordering::SeqCst);
        let usage = Usage::new(10, 10).with_cost_usd(cost_usd);
        Ok(AgentOutput::new(input.content).with_data(serde_json::json!({ "usage": usage })))
    });
    GraphOrchestrator::new("spend")
        .add_node("spender", agent)
        .add_edge(START, "spender")
        .add_edge("spender", END)
}

/// A cost budget computed as NaN (a price divided by zero items) bounded
/// nothing: every comparison with NaN is false, so the run spent freely.
/// A budget that is not a bound is refused before anything runs.
#[tokio::test]
async fn a_nan_or_negative_cost_budget_is_refused_before_anything_runs() {
    for limit in [f64::NAN, -1.0] {
        let runs = Arc::new(AtomicUsize::new(0));
        let graph = spender(5.0, &runs).with_budget(RunBudget::new().with_max_cost_usd(limit));
        let result = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
        let Err(OrchestrationError::InvalidConfig(message)) = result else {
            panic!("a cost budget of {limit} should be refused, got {result:?}");
        };
        assert!(message.contains("cost"), "{message}");
        assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing runs under {limit}");
        assert!(graph.validate().is_err(), "validate() refuses {limit} too");
    }
    // Zero is a bound (spend nothing), and infinity no bound at all: both run.
    for limit in [0.0, f64::INFINITY] {
        let runs = Arc::new(AtomicUsize::new(0));
        let graph = spender(0.0, &runs).with_budget(RunBudget::new().with_max_cost_usd(limit));
        graph.validate().expect("a real bound");
        graph
            .orchestrate(vec![], OrchestratorInput::new("x"))
            .await
            .expect("spending nothing stays within it");
    }
}

/// `GraphOrchestrator::validate` "checks the graph as a run would before
/// starting", yet said `Ok` for a configuration every run refuses (a zero
/// timeout) — an app that validates at start-up learnt of it only later.
#[tokio::test]
async fn validate_refuses_what_every_run_refuses() {
    let runs = Arc::new(AtomicUsize::new(0));
    let graph =
        spender(0.0, &runs).with_config(ExecutionConfig::new().with_timeout(Duration::ZERO));
    let run = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
    assert!(
        matches!(run, Err(OrchestrationError::InvalidConfig(_))),
        "{run:?}"
    );
    let Err(OrchestrationError::InvalidConfig(message)) = graph.validate() else {
        panic!("validate() should refuse a zero timeout");
    };
    assert!(message.contains("timeout"), "{message}");
}

/// Documented, and a trap when gating a payment on an approval: a node fed
/// by a router and by another node runs — on the other node's output — when
/// the router skips it (see the graph module's "Routers"). Kept as a test of
/// the documented rule.
#[tokio::test]
async fn a_node_fed_by_a_router_and_another_node_runs_when_the_router_skips_it() {
    use claude_agent_sdk::orchestration::Route;
    let echo = |name: &'static str| {
        SimpleAgent::new(name, "", move |input| {
            Ok(AgentOutput::new(format!("{name}({})", input.content)))
        })
    };
    let graph = GraphOrchestrator::new("gate")
        .add_node("quote", echo("quote"))
        .add_node("approve", echo("approve"))
        .add_node("spend", echo("spend"))
        .add_edge(START, "quote")
        .add_edge("quote", "approve")
        .add_edge("quote", "spend")
        .add_router("approve", ["spend", END], |_| Route::end())
        .add_edge("spend", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("pen"))
        .await
        .expect("the run ends");
    assert!(
        output.result.contains("spend(quote(pen))"),
        "{}",
        output.result
    );
}

/// A planner model that answers in prose instead of a JSON array failed the
/// map with serde's "expected ident at line 1 column 2" alone: the app
/// author could not see what the model said. The error shows the start of it.
#[tokio::test]
async fn a_map_over_a_json_array_says_what_it_was_given() {
    use claude_agent_sdk::orchestration::Split;
    let prose =
        "Sure! Here are the topics: prices, rivals and a very long tail that goes on and on";
    for (given, shown) in [
        (prose, "Sure! Here are the topics: prices, rivals and"),
        (r#"{"topics": ["prices"]}"#, r#"{"topics": ["prices"]}"#),
    ] {
        let graph = GraphOrchestrator::new("plan")
            .add_node(
                "planner",
                SimpleAgent::new("planner", "", move |_| Ok(AgentOutput::new(given))),
            )
            .add_map(
                "research",
                SimpleAgent::new("research", "", |i| Ok(AgentOutput::new(i.content))),
                Split::JsonArray,
            )
            .add_edge(START, "planner")
            .add_edge("planner", "research")
            .add_edge("research", END);
        let error = graph
            .orchestrate(vec![], OrchestratorInput::new("x"))
            .await
            .expect_err("the map fails");
        // The model's output is at fault, not the graph: not a config error.
        assert!(
            matches!(error, OrchestrationError::OrchestratorFailed(_)),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("the map `research`"), "{message}");
        assert!(message.contains(shown), "{message}");
        assert!(
            !message.contains("goes on and on"),
            "a long text is cut: {message}"
        );
    }
}
