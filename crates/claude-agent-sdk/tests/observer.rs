//! Live run events reach an observer in the order they happen.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_agent_sdk::orchestration::{
    ExecutionConfig, ExecutionContext, Orchestrator, OrchestratorAgent, OrchestratorInput,
    ParallelOrchestrator, RunEvent, RunObserver, SequentialOrchestrator,
};
use common::{echo, transient, Scripted, Step};

#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl RunObserver for Log {
    fn on_event(&self, event: &RunEvent<'_>) {
        let line = match event {
            RunEvent::RunStarted {
                orchestrator,
                agents,
                ..
            } => format!("run {orchestrator} {agents}"),
            RunEvent::RunFinished {
                orchestrator,
                error,
                ..
            } => {
                format!("end {orchestrator} ok={}", error.is_none())
            }
            RunEvent::AttemptStarted {
                agent,
                attempt,
                max_attempts,
                ..
            } => {
                format!("start {agent} {attempt}/{max_attempts}")
            }
            RunEvent::AttemptFinished {
                agent,
                attempt,
                outcome,
                ..
            } => {
                format!("done {agent} {attempt} ok={}", outcome.is_ok())
            }
            RunEvent::RetryScheduled {
                agent,
                next_attempt,
                delay,
                ..
            } => {
                assert!(*delay >= Duration::from_millis(80));
                format!("retry {agent} {next_attempt}")
            }
            _ => "other".into(),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test(start_paused = true)]
async fn events_follow_the_run() {
    let log = Arc::new(Log::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(log.clone());
    let (flaky, _) =
        Scripted::new("flaky", [Step::Fail(transient("busy")), Step::Ok("ok")]).boxed();
    SequentialOrchestrator::new()
        .with_max_retries(2)
        .orchestrate_with_context(
            vec![echo("first"), flaky],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .unwrap();
    let events = log.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "run SequentialOrchestrator 2",
            "start first 1/3",
            "done first 1 ok=true",
            "start flaky 1/3",
            "done flaky 1 ok=false",
            "retry flaky 2",
            "start flaky 2/3",
            "done flaky 2 ok=true",
            "end SequentialOrchestrator ok=true",
        ]
    );
}

#[tokio::test]
async fn nested_runs_report_to_the_same_observer() {
    let log = Arc::new(Log::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_tracing(false))
        .with_observer(log.clone());
    let nested = OrchestratorAgent::new(
        "fan",
        "",
        ParallelOrchestrator::new(),
        vec![echo("a"), echo("b")],
    );
    SequentialOrchestrator::new()
        .orchestrate_with_context(vec![Box::new(nested)], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    let events = log.0.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| e.starts_with("run ")).count(), 2);
    assert_eq!(events.iter().filter(|e| e.starts_with("done ")).count(), 3);
    assert_eq!(events.first().unwrap(), "run SequentialOrchestrator 1");
    assert_eq!(events.last().unwrap(), "end SequentialOrchestrator ok=true");
}

#[tokio::test]
async fn an_observer_attached_to_a_shared_context_shares_its_trace() {
    let log = Arc::new(Log::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let keep = ctx.clone();
    let observed = ctx.with_observer(log.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(vec![echo("a")], OrchestratorInput::new("x"), &observed)
        .await
        .unwrap();
    assert_eq!(keep.get_trace().await.agent_executions.len(), 1);
    assert!(!log.0.lock().unwrap().is_empty());
}

/// Which graph node each attempt ran, told by the `StepAdded` events.
#[derive(Default)]
struct Nodes {
    steps: Mutex<std::collections::HashMap<(claude_agent_sdk::orchestration::RunId, u32), String>>,
    attempts: Mutex<Vec<String>>,
}

impl RunObserver for Nodes {
    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::StepAdded {
                run,
                step,
                node,
                agent,
                iteration,
                ..
            } => {
                assert_eq!(*agent, "echo");
                let label = format!("{node}#{iteration}");
                self.steps.lock().unwrap().insert((*run, step.0), label);
            }
            RunEvent::AttemptStarted { run, node, .. } => {
                let label = self.steps.lock().unwrap().get(&(*run, node.0)).cloned();
                let label = label.expect("a graph's step is announced before its attempts");
                self.attempts.lock().unwrap().push(label);
            }
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_observer_tells_the_graph_nodes_apart_that_run_one_agent() {
    use claude_agent_sdk::orchestration::{GraphOrchestrator, END, START};
    let nodes = Arc::new(Nodes::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(nodes.clone());
    let graph = GraphOrchestrator::new("twice")
        .add_shared_node("draft", Arc::from(echo("echo")))
        .add_shared_node("polish", Arc::from(echo("echo")))
        .add_edge(START, "draft")
        .add_edge("draft", "polish")
        .add_loop("polish", "draft", 2, |route| route.iteration < 2)
        .add_edge("polish", END);
    graph.invoke_in("x", &ctx).await.unwrap();
    assert_eq!(
        *nodes.attempts.lock().unwrap(),
        ["draft#1", "polish#1", "draft#2", "polish#2"]
    );
}
