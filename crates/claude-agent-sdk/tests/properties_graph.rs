//! Properties of graph runs over random small DAGs: 2–8 nodes, edges only
//! from a lower to a higher node, START to the nodes nothing feeds, the nodes
//! that feed nothing to END; each node's agent succeeds, fails for good, or
//! fails once with a retryable error and then succeeds (decided by the
//! generated case); optionally a router on one node and a map on one node.
//! Every case runs on its own current-thread runtime with a paused clock (so
//! retry back-offs take no real time).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, EventKind, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, OrchestrationError, Orchestrator, OrchestratorInput,
    Result, Route, Split, END, START,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeds,
    /// Fails with a permanent error (never retried).
    Fails,
    /// Fails its first call with a retryable error, then succeeds.
    Flaky,
}

#[derive(Debug, Clone)]
struct Case {
    nodes: usize,
    /// `(from, to)` with `from < to`.
    edges: Vec<(usize, usize)>,
    outcomes: Vec<Outcome>,
    /// A router on node `.0`, picking target `.1 % targets` of its targets
    /// (its successors, plus END when `.2` or when it has none).
    router: Option<(usize, usize, bool)>,
    /// A map on this node (`Split::Lines`).
    map: Option<usize>,
}

impl Case {
    fn successors(&self, node: usize) -> Vec<usize> {
        self.edges
            .iter()
            .filter(|(from, _)| *from == node)
            .map(|(_, to)| *to)
            .collect()
    }

    fn has_predecessor(&self, node: usize) -> bool {
        self.edges.iter().any(|(_, to)| *to == node)
    }

    /// The router's targets (`None`: END) and the one it picks.
    fn routing(&self) -> Option<(usize, Vec<Option<usize>>, Option<usize>)> {
        let (node, pick, to_end) = self.router?;
        let mut targets: Vec<Option<usize>> = self.successors(node).into_iter().map(Some).collect();
        if to_end || targets.is_empty() {
            targets.push(None);
        }
        let picked = targets[pick % targets.len()];
        Some((node, targets, picked))
    }
}

fn name(node: usize) -> String {
    format!("n{node}")
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![6 => Just(Outcome::Succeeds), 2 => Just(Outcome::Fails), 1 => Just(Outcome::Flaky)]
}

fn case() -> impl Strategy<Value = Case> {
    (2..=8usize).prop_flat_map(|nodes| {
        (
            Just(nodes),
            proptest::collection::vec(any::<bool>(), nodes * (nodes - 1) / 2),
            proptest::collection::vec(outcome(), nodes),
            proptest::option::of((0..nodes, 0..16usize, any::<bool>())),
            proptest::option::of(0..nodes),
        )
            .prop_map(|(nodes, bits, outcomes, router, map)| {
                let pairs = (0..nodes).flat_map(|from| (from + 1..nodes).map(move |to| (from, to)));
                let edges = pairs
                    .zip(bits)
                    .filter(|(_, on)| *on)
                    .map(|(edge, _)| edge)
                    .collect();
                Case {
                    nodes,
                    edges,
                    outcomes,
                    router,
                    map,
                }
            })
    })
}

/// Counts its calls (per node and in all) and answers two lines, so a map
/// after it has items.
struct Counted {
    name: String,
    outcome: Outcome,
    calls: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Counted {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "counts its calls"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        match self.outcome {
            Outcome::Succeeds => Ok(AgentOutput::new("x\ny")),
            Outcome::Fails => Err(OrchestrationError::AgentError("planned failure".into())),
            Outcome::Flaky if call == 0 => Err(OrchestrationError::transient("flaky")),
            Outcome::Flaky => Ok(AgentOutput::new("x\ny")),
        }
    }
}

struct Built {
    graph: GraphOrchestrator,
    calls: Vec<Arc<AtomicUsize>>,
    total: Arc<AtomicUsize>,
}

fn build(case: &Case) -> Built {
    let total = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..case.nodes)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let routing = case.routing();
    let router_node = routing.as_ref().map(|(node, _, _)| *node);
    let mut graph = GraphOrchestrator::new("property");
    for (node, count) in calls.iter().enumerate() {
        let agent = Counted {
            name: name(node),
            outcome: case.outcomes[node],
            calls: Arc::clone(count),
            total: Arc::clone(&total),
        };
        graph = if case.map == Some(node) {
            graph.add_map(name(node), agent, Split::Lines)
        } else {
            graph.add_node(name(node), agent)
        };
    }
    for node in 0..case.nodes {
        if !case.has_predecessor(node) {
            graph = graph.add_edge(START, name(node));
        }
        if Some(node) == router_node {
            continue;
        }
        let successors = case.successors(node);
        if successors.is_empty() {
            graph = graph.add_edge(name(node), END);
        }
        for next in successors {
            graph = graph.add_edge(name(node), name(next));
        }
    }
    if let Some((node, targets, picked)) = routing {
        let names: Vec<String> = targets
            .iter()
            .map(|target| target.map_or_else(|| END.to_owned(), name))
            .collect();
        let picked = picked.map_or_else(|| END.to_owned(), name);
        graph = graph.add_router(name(node), names, move |_| Route::to(picked.clone()));
    }
    Built {
        graph,
        calls,
        total,
    }
}

fn check(case: &Case) -> std::result::Result<(), TestCaseError> {
    let built = build(case);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(Arc::new(InMemoryJournal::new()));
    let (result, events) = runtime.block_on(async {
        let result = built
            .graph
            .orchestrate_with_context(vec![], OrchestratorInput::new("p\nq"), &ctx)
            .await;
        let events = ctx.journal().read(&ctx.run_ids()).await;
        (result, events)
    });
    let calls: Vec<usize> = built
        .calls
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    let total = built.total.load(Ordering::SeqCst);

    // Every started attempt has exactly one end, and no end lacks a start.
    let mut open: HashMap<(u32, u32), usize> = HashMap::new();
    let mut started = 0;
    let mut steps_of: HashMap<String, usize> = HashMap::new();
    for event in &events {
        match &event.kind {
            EventKind::AttemptStarted { node, attempt, .. } => {
                started += 1;
                *open.entry((node.0, *attempt)).or_default() += 1;
            }
            EventKind::AttemptFinished { node, attempt, .. } => {
                let count = open.entry((node.0, *attempt)).or_default();
                prop_assert_eq!(*count, 1, "an end without one open start: {:?}", event.kind);
                *count -= 1;
            }
            EventKind::StepAdded {
                node, item: None, ..
            } => *steps_of.entry(node.clone()).or_default() += 1,
            _ => {}
        }
    }
    prop_assert!(
        open.values().all(|&count| count == 0),
        "attempts started and never ended: {:?}",
        open
    );
    prop_assert_eq!(started, total, "one attempt started per agent call");

    // One trace record per agent call.
    if let Ok(output) = &result {
        prop_assert_eq!(output.execution_trace.agent_executions.len(), total);
    }

    // A node runs at most once (a flaky one: one retry).
    for (node, steps) in &steps_of {
        prop_assert!(*steps <= 1, "node {} ran as {} steps", node, steps);
    }
    for (node, &outcome) in case.outcomes.iter().enumerate() {
        if case.map == Some(node) {
            continue;
        }
        let most = if outcome == Outcome::Flaky { 2 } else { 1 };
        prop_assert!(
            calls[node] <= most,
            "n{} called {} times",
            node,
            calls[node]
        );
    }

    // Nothing downstream of a failed node runs (default join: all): the
    // failure is passed on however far down the graph goes.
    for node in 0..case.nodes {
        if calls[node] > 0 && case.outcomes[node] == Outcome::Fails {
            let mut pending = case.successors(node);
            let mut seen = vec![false; case.nodes];
            while let Some(after) = pending.pop() {
                if std::mem::replace(&mut seen[after], true) {
                    continue;
                }
                prop_assert_eq!(calls[after], 0, "n{} ran after n{} failed", after, node);
                pending.extend(case.successors(after));
            }
        }
    }

    // Ok exactly when some node reached END.
    let routing = case.routing();
    let reached_end = (0..case.nodes).any(|node| {
        let succeeded = calls[node] > 0 && case.outcomes[node] != Outcome::Fails;
        let feeds_end = match &routing {
            Some((router, _, picked)) if *router == node => picked.is_none(),
            _ => case.successors(node).is_empty(),
        };
        succeeded && feeds_end
    });
    prop_assert_eq!(
        result.is_ok(),
        reached_end,
        "result {:?}",
        result.as_ref().map(|o| &o.result)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_dags_keep_the_run_invariants(case in case()) {
        check(&case)?;
    }
}

/// The brief's property, transitively: under the default join (all
/// predecessors must succeed), no node downstream of a failed node runs.
/// Shrunk by proptest from a random case: `n0 → n3`, `n1 → n2 → n3`, n1
/// fails. n2 cannot run; the scheduler marks it skipped and passes a *skip*
/// token to n3, which then counts n2 like a branch a router did not choose
/// and runs on n0's output alone — the run reaches END and succeeds, having
/// lost n1's whole branch without n3 ever seeing a failure.
#[test]
fn a_join_behind_a_failed_branch_does_not_run() {
    let case = Case {
        nodes: 4,
        edges: vec![(0, 3), (1, 2), (2, 3)],
        outcomes: vec![
            Outcome::Succeeds,
            Outcome::Fails,
            Outcome::Succeeds,
            Outcome::Succeeds,
        ],
        router: None,
        map: None,
    };
    let built = build(&case);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(
        built
            .graph
            .orchestrate(vec![], OrchestratorInput::new("p\nq")),
    );
    let calls: Vec<usize> = built
        .calls
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    assert_eq!(calls[2], 0, "n2 is fed by the failed n1");
    assert_eq!(calls[3], 0, "n3 joins n2's branch, which failed: {calls:?}");
    assert!(
        result.is_err(),
        "no node reached END without a failure upstream"
    );
}
