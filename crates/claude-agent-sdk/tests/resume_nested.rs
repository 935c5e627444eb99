//! Resuming a run whose step was cut short while a graph nested in it ran:
//! what finished inside that graph is not run again (a map's items that
//! finished, a subgraph's nodes), and what did not runs again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    fork, resume, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, Journal, OrchestrationError, Orchestrator,
    OrchestratorAgent, OrchestratorInput, Result, RunId, SequentialOrchestrator, SimpleAgent,
    Split, END, START,
};

/// Calls by input text.
type Calls = Arc<Mutex<HashMap<String, usize>>>;

/// A map item's agent: answers `done <item>`; an item starting with `slow`
/// waits an hour while `slow` is set (the run is cut short around it).
struct Item {
    calls: Calls,
    slow: Arc<AtomicBool>,
}

#[async_trait]
impl Agent for Item {
    fn name(&self) -> &str {
        "item"
    }

    fn description(&self) -> &str {
        "does one item"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(input.content.clone())
            .or_default() += 1;
        if self.slow.load(Ordering::SeqCst) && input.content.starts_with("slow") {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(AgentOutput::new(format!("done {}", input.content)))
    }
}

/// Four items, two of them slow.
fn plan(calls: &Calls) -> SimpleAgent<impl Fn(AgentInput) -> Result<AgentOutput> + Send + Sync> {
    let calls = Arc::clone(calls);
    SimpleAgent::new("plan", "lists the items", move |_| {
        *calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry("plan".into())
            .or_default() += 1;
        Ok(AgentOutput::new("fast 1\nfast 2\nslow 3\nslow 4"))
    })
}

/// A graph mapping [`Item`] over its input's lines, two at a time.
fn items(calls: &Calls, slow: &Arc<AtomicBool>) -> GraphOrchestrator {
    let item = Item {
        calls: Arc::clone(calls),
        slow: Arc::clone(slow),
    };
    GraphOrchestrator::new("items")
        .with_parallel_limit(2)
        .add_map("each", item, Split::Lines)
        .add_edge(START, "each")
        .add_edge("each", END)
}

/// `plan`, then the items as a subgraph, under a one-minute run timeout.
fn plan_then_items(calls: &Calls, slow: &Arc<AtomicBool>) -> GraphOrchestrator {
    GraphOrchestrator::new("outer")
        .with_timeout(Duration::from_secs(60))
        .add_node("plan", plan(calls))
        .add_subgraph("work", items(calls, slow))
        .add_edge(START, "plan")
        .add_edge("plan", "work")
        .add_edge("work", END)
}

fn calls_of(calls: &Calls) -> HashMap<String, usize> {
    calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Runs `orchestrator` under a context on `journal` until its timeout cuts
/// it short; returns the run's id.
async fn cut_short(
    orchestrator: &dyn Orchestrator,
    agents: Vec<Box<dyn Agent>>,
    journal: &Arc<InMemoryJournal>,
) -> RunId {
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(Arc::clone(journal) as Arc<dyn Journal>);
    let cut = orchestrator
        .orchestrate_with_context(agents, OrchestratorInput::new("go"), &ctx)
        .await;
    assert!(
        matches!(cut, Err(OrchestrationError::Timeout(_))),
        "{cut:?}"
    );
    *ctx.run_ids().last().unwrap_or_else(|| panic!("a run"))
}

fn fresh(journal: &Arc<InMemoryJournal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new())
        .with_journal(Arc::clone(journal) as Arc<dyn Journal>)
}

const ALL_DONE: &str = "done fast 1\n\ndone fast 2\n\ndone slow 3\n\ndone slow 4";

#[tokio::test(start_paused = true)]
async fn a_resumed_graph_does_not_run_again_the_items_its_cut_short_subgraph_finished() {
    let (calls, slow) = (Calls::default(), Arc::new(AtomicBool::new(true)));
    let outer = plan_then_items(&calls, &slow);
    let journal = Arc::new(InMemoryJournal::new());
    let run = cut_short(&outer, vec![], &journal).await;
    slow.store(false, Ordering::SeqCst);
    let output = resume(&outer, vec![], run, &fresh(&journal))
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"));
    assert_eq!(output.result, ALL_DONE);
    let calls = calls_of(&calls);
    // `plan` and the fast items finished before the cut: not run again. The
    // slow items were cut short: they ran again.
    for (input, count) in [
        ("plan", 1),
        ("fast 1", 1),
        ("fast 2", 1),
        ("slow 3", 2),
        ("slow 4", 2),
    ] {
        assert_eq!(calls.get(input), Some(&count), "{input}: {calls:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_resumed_pipeline_hands_its_cut_short_step_what_the_graph_in_it_finished() {
    let (calls, slow) = (Calls::default(), Arc::new(AtomicBool::new(true)));
    let pipeline = || -> Vec<Box<dyn Agent>> {
        vec![
            Box::new(plan(&calls)),
            Box::new(OrchestratorAgent::new(
                "work",
                "the items",
                items(&calls, &slow),
                vec![],
            )),
        ]
    };
    let outer = SequentialOrchestrator::new().with_timeout(Duration::from_secs(60));
    let journal = Arc::new(InMemoryJournal::new());
    let run = cut_short(&outer, pipeline(), &journal).await;
    slow.store(false, Ordering::SeqCst);
    let output = resume(&outer, pipeline(), run, &fresh(&journal))
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"));
    assert_eq!(output.result, ALL_DONE);
    let calls = calls_of(&calls);
    for (input, count) in [
        ("plan", 1),
        ("fast 1", 1),
        ("fast 2", 1),
        ("slow 3", 2),
        ("slow 4", 2),
    ] {
        assert_eq!(calls.get(input), Some(&count), "{input}: {calls:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_fork_runs_again_what_was_in_flight_inside_the_steps_after_its_own() {
    let (calls, slow) = (Calls::default(), Arc::new(AtomicBool::new(true)));
    let outer = plan_then_items(&calls, &slow);
    let journal = Arc::new(InMemoryJournal::new());
    let run = cut_short(&outer, vec![], &journal).await;
    slow.store(false, Ordering::SeqCst);
    let output = fork(&outer, vec![], run, "plan", None, &fresh(&journal))
        .await
        .unwrap_or_else(|e| panic!("the fork finishes: {e}"));
    assert_eq!(output.result, ALL_DONE);
    let calls = calls_of(&calls);
    // The fork starts after `plan`: every item runs anew.
    for (input, count) in [
        ("plan", 1),
        ("fast 1", 2),
        ("fast 2", 2),
        ("slow 3", 2),
        ("slow 4", 2),
    ] {
        assert_eq!(calls.get(input), Some(&count), "{input}: {calls:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_nested_graph_changed_since_runs_anew_what_it_no_longer_has() {
    let (calls, slow) = (Calls::default(), Arc::new(AtomicBool::new(true)));
    let journal = Arc::new(InMemoryJournal::new());
    let run = cut_short(&plan_then_items(&calls, &slow), vec![], &journal).await;
    slow.store(false, Ordering::SeqCst);
    // The map node is renamed: the items the old one finished are not its.
    let renamed = GraphOrchestrator::new("items")
        .with_parallel_limit(2)
        .add_map(
            "every",
            Item {
                calls: Arc::clone(&calls),
                slow: Arc::clone(&slow),
            },
            Split::Lines,
        )
        .add_edge(START, "every")
        .add_edge("every", END);
    let outer = GraphOrchestrator::new("outer")
        .add_node("plan", plan(&calls))
        .add_subgraph("work", renamed)
        .add_edge(START, "plan")
        .add_edge("plan", "work")
        .add_edge("work", END);
    let output = resume(&outer, vec![], run, &fresh(&journal))
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"));
    assert_eq!(output.result, ALL_DONE);
    let calls = calls_of(&calls);
    for (input, count) in [
        ("plan", 1),
        ("fast 1", 2),
        ("fast 2", 2),
        ("slow 3", 2),
        ("slow 4", 2),
    ] {
        assert_eq!(calls.get(input), Some(&count), "{input}: {calls:?}");
    }
}
