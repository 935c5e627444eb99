//! The trace of a run under `orchestrate()`'s own context is built as the run
//! goes (its journal keeps the view, not the events): it must be the same
//! trace a caller-owned context gives for the same run, and an agent must
//! still read the records made so far from inside the run.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentExecution, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    ExecutionTrace, Orchestrator, OrchestratorAgent, OrchestratorInput, ParallelOrchestrator,
    Result, SequentialOrchestrator,
};
use common::{echo, transient, Scripted, Step};

/// What a record says, without its ids and times (which differ run to run).
#[derive(Debug, PartialEq)]
struct Shape {
    agent: String,
    attempt: u32,
    success: bool,
    input: String,
    output: Option<String>,
    error: Option<String>,
    nested: Option<Vec<Shape>>,
}

fn shape(trace: &ExecutionTrace) -> Vec<Shape> {
    trace.agent_executions.iter().map(shape_of).collect()
}

fn shape_of(record: &AgentExecution) -> Shape {
    Shape {
        agent: record.agent_name.clone(),
        attempt: record.attempt,
        success: record.success,
        input: record.input.content.clone(),
        output: record.output.as_ref().map(|output| output.content.clone()),
        error: record.error.clone(),
        nested: record.nested.as_deref().map(shape),
    }
}

/// A pipeline with a retried step and a nested fan-out, built fresh for each run.
fn agents() -> Vec<Box<dyn Agent>> {
    let flaky = Scripted::new("flaky", [Step::Fail(transient("503")), Step::Ok("fixed")]);
    let fan_out: Vec<Box<dyn Agent>> = vec![echo("left"), echo("right")];
    let nested = OrchestratorAgent::new(
        "both",
        "a nested fan-out",
        ParallelOrchestrator::new(),
        fan_out,
    );
    vec![
        echo("first"),
        Box::new(flaky),
        Box::new(nested),
        echo("last"),
    ]
}

fn pipeline() -> SequentialOrchestrator {
    SequentialOrchestrator::new().with_config(
        ExecutionConfig::new()
            .with_max_retries(2)
            .with_backoff(Duration::from_millis(1), Duration::from_millis(1)),
    )
}

#[tokio::test]
async fn a_private_runs_trace_is_the_trace_a_callers_context_gives() {
    let private = pipeline()
        .orchestrate(agents(), OrchestratorInput::new("x"))
        .await
        .unwrap();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let owned = pipeline()
        .orchestrate_with_context(agents(), OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();

    let records = shape(&private.execution_trace);
    assert_eq!(records, shape(&owned.execution_trace));
    assert_eq!(
        records.len(),
        5,
        "first, flaky twice, both, last: {records:#?}"
    );
    assert_eq!(
        records[1].error.as_deref().map(|e| e.contains("503")),
        Some(true)
    );
    let nested = records[3].nested.as_ref().expect("the nested run's trace");
    assert_eq!(nested.len(), 2);
    assert!(private.execution_trace.end_time.is_some());
    assert!(private.execution_trace.run_id.is_some());
}

/// Reads, from inside its attempt, the records of the run so far.
struct Reader {
    seen: Arc<Mutex<Vec<usize>>>,
}

#[async_trait]
impl Agent for Reader {
    fn name(&self) -> &str {
        "reader"
    }

    fn description(&self) -> &str {
        "counts the records made before it"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("runs inside an attempt");
        let history = ctx.get_trace().await;
        let finished = history
            .agent_executions
            .iter()
            .filter(|record| record.end_time.is_some())
            .count();
        let running = history.agent_executions.len() - finished;
        self.seen.lock().unwrap().extend([finished, running]);
        Ok(AgentOutput::new(input.content))
    }
}

#[tokio::test]
async fn an_agent_reads_the_records_so_far_from_inside_a_private_run() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = Reader {
        seen: Arc::clone(&seen),
    };
    let output = SequentialOrchestrator::new()
        .orchestrate(
            vec![echo("a"), echo("b"), Box::new(reader), echo("c")],
            OrchestratorInput::new("x"),
        )
        .await
        .unwrap();
    // Two finished before it; its own attempt running, without an end time.
    assert_eq!(*seen.lock().unwrap(), [2, 1]);
    assert_eq!(output.execution_trace.agent_executions.len(), 4);
}

/// A graph with a map over lines and a bounded loop, and a fan-out that
/// tolerates a failed branch: the same trace either way.
#[tokio::test]
async fn graphs_and_tolerant_fan_outs_trace_the_same_either_way() {
    use claude_agent_sdk::orchestration::{GraphOrchestrator, JoinPolicy, SimpleAgent, Split};
    use claude_agent_sdk::orchestration::{END, START};

    let graph = || {
        let lines = SimpleAgent::new("lines", "", |_| Ok(AgentOutput::new("a\nb\nc")));
        let upper = SimpleAgent::new("upper", "", |i: AgentInput| {
            Ok(AgentOutput::new(i.content.to_uppercase()))
        });
        let polish = SimpleAgent::new("polish", "", |i: AgentInput| {
            Ok(AgentOutput::new(format!("{}!", i.content)))
        });
        GraphOrchestrator::new("g")
            .add_node("lines", lines)
            .add_map("each", upper, Split::Lines)
            .add_node("polish", polish)
            .add_edge(START, "lines")
            .add_edge("lines", "each")
            .add_edge("each", "polish")
            .add_loop("polish", "polish", 3, |route| route.iteration < 2)
            .add_edge("polish", END)
    };
    let private = graph()
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .unwrap();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let owned = graph()
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(private.result, owned.result);
    let records = shape(&private.execution_trace);
    assert_eq!(records, shape(&owned.execution_trace));
    // lines, three items, polish twice (the loop's second pass).
    assert_eq!(records.len(), 6, "{records:#?}");

    let fan_out = || {
        let broken = Scripted::new("broken", [Step::Fail(common::permanent("no"))]);
        let agents: Vec<Box<dyn Agent>> = vec![echo("a"), Box::new(broken), echo("c")];
        agents
    };
    let tolerant = || {
        ParallelOrchestrator::new()
            .with_config(ExecutionConfig::new().with_join_policy(JoinPolicy::AtLeast(2)))
    };
    let private = tolerant()
        .orchestrate(fan_out(), OrchestratorInput::new("x"))
        .await
        .unwrap();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let owned = tolerant()
        .orchestrate_with_context(fan_out(), OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    let mut private_records = shape(&private.execution_trace);
    let mut owned_records = shape(&owned.execution_trace);
    // Siblings end in any order: compare them sorted by agent.
    private_records.sort_by(|a, b| a.agent.cmp(&b.agent));
    owned_records.sort_by(|a, b| a.agent.cmp(&b.agent));
    assert_eq!(private_records, owned_records);
    assert_eq!(private.failures.len(), 1);
}
