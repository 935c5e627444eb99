//! Regression tests for what a review of the library's API, used as a new
//! user would, found: each test is named after the behaviour it pins.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use claude_agent_sdk::orchestration::registry::AgentMetadata;
use claude_agent_sdk::orchestration::*;

/// An agent answering `name<n>(input)`, where `n` counts its calls.
fn counting(name: &'static str, calls: Arc<AtomicUsize>) -> Box<dyn Agent> {
    Box::new(SimpleAgent::new(
        name,
        "counts",
        move |input: AgentInput| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AgentOutput::new(format!("{name}{n}({})", input.content)))
        },
    ))
}

/// A run's output whose trace has a nested run in it.
async fn output_with_a_nested_run() -> OrchestratorOutput {
    let inner = counting("inner", Arc::default());
    let nested: Box<dyn Agent> = Box::new(OrchestratorAgent::new(
        "nested",
        "a pipeline of one",
        SequentialOrchestrator::new(),
        vec![inner],
    ));
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![nested], OrchestratorInput::new("x"))
        .await
        .expect("the run succeeds");
    assert!(output.execution_trace.agent_executions[0].nested.is_some());
    output
}

#[tokio::test]
async fn an_edge_added_twice_feeds_its_target_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let graph = GraphOrchestrator::new("twice")
        .add_node("a", counting("a", Arc::default()))
        .add_node("b", counting("b", Arc::clone(&calls)))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("a", "b")
        .add_edge("b", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect("the run succeeds");
    assert_eq!(
        output.result, "b1(a1(x))",
        "b gets a's output, not a join of it twice"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_join_cannot_count_one_predecessor_twice() {
    // `b` is fed by `a` alone, however often the edge is written: a join of
    // two cannot be satisfied, and the check says so before anything runs.
    let graph = GraphOrchestrator::new("twice")
        .add_node("a", counting("a", Arc::default()))
        .add_node("b", counting("b", Arc::default()))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("a", "b")
        .add_edge("b", END)
        .with_join("b", JoinPolicy::AtLeast(2));
    let error = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect_err("a join of two over one predecessor");
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error}"
    );
}

#[tokio::test]
async fn a_trace_with_nested_runs_reads_back_inside_a_flattened_struct() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Report {
        name: String,
        #[serde(flatten)]
        output: OrchestratorOutput,
    }
    let report = Report {
        name: "nightly".into(),
        output: output_with_a_nested_run().await,
    };
    let json = serde_json::to_string(&report).expect("serializes");
    let back: Report = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, report);
}

#[tokio::test]
async fn a_trace_with_nested_runs_reads_back_inside_a_tagged_enum() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(tag = "kind")]
    enum Message {
        Done { trace: ExecutionTrace },
    }
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Trace(ExecutionTrace),
        Text(String),
    }
    let trace = output_with_a_nested_run().await.execution_trace;
    let message = Message::Done {
        trace: trace.clone(),
    };
    let json = serde_json::to_string(&message).expect("serializes");
    let back: Message = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, message);
    let either = Either::Trace(trace);
    let json = serde_json::to_string(&either).expect("serializes");
    let back: Either = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, either);
}

#[test]
fn agent_metadata_read_from_json_takes_the_documented_defaults() {
    let json = r#"{"id": "a", "name": "a", "description": "d", "category": "c"}"#;
    let metadata: AgentMetadata = serde_json::from_str(json).expect("the defaults fill in");
    assert_eq!(metadata, AgentMetadata::new("a", "a", "d", "c"));
    assert_eq!(metadata.version, "1.0.0");
    assert_eq!((metadata.max_retries, metadata.timeout_secs), (3, 300));
    assert!(metadata.enabled);
    // Identity is not defaulted.
    assert!(serde_json::from_str::<AgentMetadata>(r#"{"id": "a"}"#).is_err());
}

#[test]
fn a_run_budget_read_from_json_takes_the_documented_defaults() {
    let budget: RunBudget = serde_json::from_str(r#"{"max_tokens": 100}"#).expect("defaults");
    assert_eq!(budget, RunBudget::new().with_max_tokens(100));
    assert_eq!(
        budget.max_steps,
        claude_agent_sdk::orchestration::budget::DEFAULT_MAX_STEPS
    );
    let empty: RunBudget = serde_json::from_str("{}").expect("all defaults");
    assert_eq!(empty, RunBudget::default());
}

#[test]
fn a_backoff_read_from_json_takes_the_documented_jitter() {
    let json =
        r#"{"backoff": {"initial": {"secs": 1, "nanos": 0}, "max": {"secs": 5, "nanos": 0}}}"#;
    let config: ExecutionConfig = serde_json::from_str(json).expect("defaults");
    assert_eq!(
        config.backoff,
        Backoff::new(Duration::from_secs(1), Duration::from_secs(5))
    );
    assert!((config.backoff.jitter - 0.2).abs() < f64::EPSILON);
}
