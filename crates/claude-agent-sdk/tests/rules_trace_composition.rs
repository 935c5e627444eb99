//! Rule 10 (per-attempt trace records) and rule 11 (composition of orchestrators).

mod common;

use std::time::Duration;

use claude_agent_sdk::orchestration::{
    Agent, ExecutionConfig, JoinPolicy, OrchestrationError, Orchestrator, OrchestratorAgent,
    OrchestratorInput, ParallelOrchestrator, SequentialOrchestrator,
};
use common::{echo, failing, permanent, transient, Scripted, Step};

/// Records hold the specification's own types (owned texts), and the journal
/// they are built from keeps each text once: a pipeline step's input is named
/// as the previous step's output, a fan-out's as the run's input.
#[tokio::test]
async fn records_share_their_texts() {
    use claude_agent_sdk::orchestration::{
        EventKind, ExecutionConfig, ExecutionContext, InMemoryJournal, InputSource, NodeId,
    };
    use std::sync::Arc;

    let long = "a long input, well over the twenty-three bytes kept inline";
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let output = SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![echo("a"), echo("b"), echo("c")],
            OrchestratorInput::new(long),
            &ctx,
        )
        .await
        .unwrap();
    let records = &output.execution_trace.agent_executions;
    for pair in records.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        let handed_on: &String = &previous.output.as_ref().unwrap().content;
        assert_eq!(&next.input.content, handed_on);
    }
    let sources: Vec<InputSource> = journal
        .events()
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::AttemptStarted { input, .. } => Some(input),
            _ => None,
        })
        .collect();
    assert_eq!(
        sources,
        [
            InputSource::RunInput,
            InputSource::OutputOf(NodeId(0)),
            InputSource::OutputOf(NodeId(1))
        ]
    );

    let output = ParallelOrchestrator::new()
        .orchestrate(vec![echo("x"), echo("y")], OrchestratorInput::new(long))
        .await
        .unwrap();
    let records = &output.execution_trace.agent_executions;
    assert_eq!(records[0].input.content, long);
    assert_eq!(records[1].input.content, long);
}

#[tokio::test(start_paused = true)]
async fn one_complete_record_per_attempt() {
    let (flaky, _) = Scripted::new("flaky", [Step::Fail(transient("busy")), Step::Ok("fine")])
        .with_delay(Duration::from_millis(250))
        .boxed();
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![echo("first"), flaky], OrchestratorInput::new("in"))
        .await
        .unwrap();
    let trace = &output.execution_trace;
    assert!(trace.end_time.is_some(), "the output's trace is complete");
    assert!(trace.duration().is_some());
    let records = &trace.agent_executions;
    assert_eq!(records.len(), 3);

    let first = &records[0];
    assert_eq!(
        (first.agent_name.as_str(), first.attempt, first.success),
        ("first", 1, true)
    );
    assert_eq!(first.input.content, "in");
    assert_eq!(first.output.as_ref().unwrap().content, "first(in)");
    assert!(first.error.is_none());

    let failed = &records[1];
    assert_eq!(
        (failed.agent_name.as_str(), failed.attempt, failed.success),
        ("flaky", 1, false)
    );
    assert_eq!(failed.input.content, "first(in)");
    assert!(failed.output.is_none());
    assert!(failed.error.as_deref().unwrap().contains("busy"));
    assert_eq!(failed.duration_ms, Some(250));

    let retried = &records[2];
    assert_eq!((retried.attempt, retried.success), (2, true));
    assert_eq!(retried.output.as_ref().unwrap().content, "fine");
    for record in records {
        let end = record.end_time.expect("every record is closed");
        assert!(end >= record.start_time);
        assert_eq!(
            (end - record.start_time).num_milliseconds() as u64,
            record.duration_ms.unwrap()
        );
    }
    // The retry started after the failed attempt ended, with a backoff in between.
    assert!(retried.start_time >= failed.end_time.unwrap() + chrono::TimeDelta::milliseconds(80));
    assert!(trace.start_time <= first.start_time);
    assert!(trace.end_time.unwrap() >= retried.end_time.unwrap());
}

#[tokio::test]
async fn disabling_tracing_keeps_no_records() {
    let config = ExecutionConfig::new().with_tracing(false);
    let sequential = SequentialOrchestrator::new()
        .with_config(config.clone())
        .orchestrate(vec![echo("a"), echo("b")], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert!(sequential.execution_trace.agent_executions.is_empty());
    assert!(sequential.execution_trace.end_time.is_some());
    let parallel = ParallelOrchestrator::new()
        .with_config(config)
        .orchestrate(vec![echo("a"), echo("b")], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert!(parallel.execution_trace.agent_executions.is_empty());
    assert_eq!(parallel.agent_outputs.len(), 2);
}

#[tokio::test]
async fn trace_serializes_to_json_and_back() {
    let output = ParallelOrchestrator::new()
        .orchestrate(vec![echo("a"), echo("b")], OrchestratorInput::new("x"))
        .await
        .unwrap();
    let json = serde_json::to_string(&output).unwrap();
    let back: claude_agent_sdk::orchestration::OrchestratorOutput =
        serde_json::from_str(&json).unwrap();
    assert_eq!(back, output);
}

fn fan_out(names: [&'static str; 3]) -> Box<dyn Agent> {
    Box::new(OrchestratorAgent::new(
        "reviews",
        "three reviews at once",
        ParallelOrchestrator::new(),
        names.into_iter().map(echo).collect(),
    ))
}

#[tokio::test]
async fn sequential_first_then_parallel() {
    // research → (tech | biz | sec) → edit
    let pipeline = vec![
        echo("research"),
        fan_out(["tech", "biz", "sec"]),
        echo("edit"),
    ];
    let output = SequentialOrchestrator::new()
        .orchestrate(pipeline, OrchestratorInput::new("X"))
        .await
        .unwrap();
    assert_eq!(
        output.result,
        "edit(Parallel execution results:\n1. tech: tech(research(X))\n2. biz: biz(research(X))\n3. sec: sec(research(X)))"
    );
    let records = &output.execution_trace.agent_executions;
    assert_eq!(
        records.len(),
        3,
        "the outer trace has one record per outer attempt"
    );
    let nested = records[1]
        .nested
        .as_ref()
        .expect("the fan-out keeps its own trace");
    let names: Vec<_> = nested
        .agent_executions
        .iter()
        .map(|e| e.agent_name.as_str())
        .collect();
    assert_eq!(names.len(), 3);
    for name in ["tech", "biz", "sec"] {
        assert!(names.contains(&name));
    }
    assert!(nested.end_time.is_some());
    let data = &output.agent_outputs[1].data;
    assert_eq!(data["agent_outputs"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn parallel_branches_can_be_pipelines() {
    let branch = |a: &'static str, b: &'static str| -> Box<dyn Agent> {
        Box::new(OrchestratorAgent::new(
            format!("{a}-{b}"),
            "a two-step branch",
            SequentialOrchestrator::new(),
            vec![echo(a), echo(b)],
        ))
    };
    let output = ParallelOrchestrator::new()
        .orchestrate(
            vec![branch("a", "b"), branch("c", "d")],
            OrchestratorInput::new("X"),
        )
        .await
        .unwrap();
    assert_eq!(
        output.result,
        "Parallel execution results:\n1. a-b: b(a(X))\n2. c-d: d(c(X))"
    );
    for record in &output.execution_trace.agent_executions {
        assert_eq!(record.nested.as_ref().unwrap().agent_executions.len(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_nested_run_keeps_its_trace_and_fails_the_step() {
    let (broken, _) = failing("broken", permanent("no luck"));
    let nested = OrchestratorAgent::new(
        "nested",
        "fails inside",
        SequentialOrchestrator::new(),
        vec![echo("ok"), broken],
    );
    let result = SequentialOrchestrator::new()
        .with_max_retries(1)
        .orchestrate(vec![Box::new(nested)], OrchestratorInput::new("X"))
        .await;
    // The nested failure keeps its permanent cause, so the outer run does not retry the step.
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "nested");
            assert!(reason.contains("broken"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn nested_traces_survive_failures() {
    let (broken, _) = failing("broken", permanent("no luck"));
    let nested = OrchestratorAgent::new(
        "nested",
        "fails inside",
        SequentialOrchestrator::new(),
        vec![echo("ok"), broken],
    );
    let ctx = claude_agent_sdk::orchestration::ExecutionContext::new(ExecutionConfig::new());
    let _ = SequentialOrchestrator::new()
        .with_max_retries(0)
        .orchestrate_with_context(vec![Box::new(nested)], OrchestratorInput::new("X"), &ctx)
        .await;
    let trace = ctx.get_trace().await;
    let record = &trace.agent_executions[0];
    assert!(!record.success);
    let inner = record.nested.as_ref().unwrap();
    assert_eq!(inner.agent_executions.len(), 2);
    assert!(inner.agent_executions[0].success);
    assert!(!inner.agent_executions[1].success);
}

#[tokio::test(start_paused = true)]
async fn nested_confidence_reflects_tolerated_failures() {
    let (broken, _) = failing("broken", permanent("no luck"));
    let nested = OrchestratorAgent::new(
        "tolerant",
        "one of two may fail",
        ParallelOrchestrator::new().with_join_policy(JoinPolicy::Any),
        vec![echo("ok"), broken],
    );
    let output = SequentialOrchestrator::new()
        .orchestrate(vec![Box::new(nested)], OrchestratorInput::new("X"))
        .await
        .unwrap();
    let step = &output.agent_outputs[0];
    assert_eq!(step.confidence, 0.5);
    assert_eq!(step.data["failures"].as_array().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_nested_run_keeps_its_attempts_in_the_trace() {
    let (slow, _) = common::sleeper("slow", Duration::from_secs(100));
    let nested = OrchestratorAgent::new(
        "fan",
        "one fast, one slow",
        ParallelOrchestrator::new(),
        vec![echo("fast"), slow],
    );
    let ctx = claude_agent_sdk::orchestration::ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        canceller.cancel();
    });
    let result = SequentialOrchestrator::new()
        .orchestrate_with_context(vec![Box::new(nested)], OrchestratorInput::new("X"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 1);
    let outer = &trace.agent_executions[0];
    assert!(!outer.success);
    assert!(outer.error.as_deref().unwrap().contains("cancelled"));
    let inner = outer
        .nested
        .as_ref()
        .expect("the nested trace survives the cancel");
    assert!(inner.end_time.is_some());
    let mut seen: Vec<_> = inner
        .agent_executions
        .iter()
        .map(|e| (e.agent_name.as_str(), e.success))
        .collect();
    seen.sort();
    assert_eq!(seen, [("fast", true), ("slow", false)]);
}
