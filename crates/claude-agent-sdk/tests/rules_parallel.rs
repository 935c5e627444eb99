//! Rule 4 (parallel semantics and join policies) and rule 5 for fan-outs.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, JoinPolicy, OrchestrationError, Orchestrator,
    OrchestratorInput, ParallelOrchestrator, Result,
};
use common::{echo, failing, ok, permanent, Probe, Scripted, Step};

#[tokio::test]
async fn every_agent_gets_the_same_input() {
    let (a, a_probe) = ok("a", "A");
    let (b, b_probe) = ok("b", "B");
    let input = OrchestratorInput::new("topic")
        .with_context(serde_json::json!({"region": "US"}))
        .with_metadata("request_id", "12345");
    ParallelOrchestrator::new()
        .orchestrate(vec![a, b], input)
        .await
        .unwrap();
    for probe in [a_probe, b_probe] {
        let seen = probe.inputs().remove(0);
        assert_eq!(seen.content, "topic");
        assert_eq!(seen.context["region"], "US");
        assert_eq!(seen.metadata["request_id"], "12345");
    }
}

#[tokio::test(start_paused = true)]
async fn outputs_follow_the_given_order_not_the_finish_order() {
    // The first agent finishes last.
    let agents: Vec<Box<dyn Agent>> = (0..5_u64)
        .map(|i| {
            Scripted::new(
                format!("agent{i}"),
                [Step::Sleep(Duration::from_secs(10 - i))],
            )
            .boxed()
            .0
        })
        .collect();
    let output = ParallelOrchestrator::new()
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.agent_outputs.len(), 5);
    let expected = "Parallel execution results:\n1. agent0: x\n2. agent1: x\n3. agent2: x\n4. agent3: x\n5. agent4: x";
    assert_eq!(output.result, expected);
    // Finish order is visible in the trace: agent4 ended first.
    assert_eq!(
        output.execution_trace.agent_executions[0].agent_name,
        "agent4"
    );
}

#[tokio::test]
async fn the_result_lists_each_agent_by_name() {
    let output = ParallelOrchestrator::new()
        .orchestrate(
            vec![echo("Technical"), echo("Business")],
            OrchestratorInput::new("P"),
        )
        .await
        .unwrap();
    assert_eq!(
        output.result,
        "Parallel execution results:\n1. Technical: Technical(P)\n2. Business: Business(P)"
    );
}

#[tokio::test(start_paused = true)]
async fn never_more_than_the_limit_and_the_limit_is_reached() {
    let probe = Probe::new();
    let agents: Vec<Box<dyn Agent>> = (0..40)
        .map(|i| {
            Box::new(
                Scripted::new(format!("a{i}"), [Step::Ok("done")])
                    .with_delay(Duration::from_millis(10 + (i % 7) * 3))
                    .with_probe(Arc::clone(&probe)),
            ) as Box<dyn Agent>
        })
        .collect();
    let started = tokio::time::Instant::now();
    let output = ParallelOrchestrator::new()
        .with_parallel_limit(6)
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.agent_outputs.len(), 40);
    assert_eq!(probe.calls(), 40);
    assert_eq!(probe.max_running(), 6);
    // 40 agents of 10..28 ms at 6 at a time: well under running them 1 by 1.
    assert!(started.elapsed() < Duration::from_millis(40 * 10));
}

/// Spins until `peers` agents are inside `execute` at once: only possible when
/// they run on different threads at the same time.
struct Rendezvous {
    name: String,
    arrived: Arc<AtomicUsize>,
    peers: usize,
}

#[async_trait]
impl Agent for Rendezvous {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "blocks its thread until its peers arrive"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while self.arrived.load(Ordering::SeqCst) < self.peers {
            if std::time::Instant::now() > give_up {
                return Err(OrchestrationError::AgentError("peers never arrived".into()));
            }
            std::hint::spin_loop();
        }
        Ok(AgentOutput::new("met"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_bound_agents_run_on_several_cores() {
    let arrived = Arc::new(AtomicUsize::new(0));
    let agents: Vec<Box<dyn Agent>> = (0..2)
        .map(|i| {
            Box::new(Rendezvous {
                name: format!("spinner{i}"),
                arrived: Arc::clone(&arrived),
                peers: 2,
            }) as Box<dyn Agent>
        })
        .collect();
    let output = ParallelOrchestrator::new()
        .with_max_retries(0)
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.agent_outputs.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn every_agent_runs_to_the_end_whatever_its_siblings_do() {
    let (fast_fail, _) = failing("fast_fail", permanent("nope"));
    let (slow, slow_probe) = Scripted::new("slow", [Step::Sleep(Duration::from_secs(30))]).boxed();
    let error = ParallelOrchestrator::new()
        .orchestrate(vec![fast_fail, slow], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::PartialSuccess(1));
    assert_eq!(slow_probe.calls(), 1);
    assert_eq!(
        slow_probe.dropped_unfinished(),
        0,
        "the slow sibling finished"
    );
}

#[tokio::test(start_paused = true)]
async fn some_failures_are_a_partial_success_with_their_count() {
    let (a, _) = ok("a", "A");
    let (b, _) = failing("b", permanent("b broke"));
    let (c, _) = failing("c", permanent("c broke"));
    let error = ParallelOrchestrator::new()
        .orchestrate(vec![a, b, c], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::PartialSuccess(2));
}

#[tokio::test(start_paused = true)]
async fn all_failures_name_the_first_failed_agent_in_order() {
    // The first agent in order fails last.
    let (first, _) = Scripted::new("first", [Step::Fail(permanent("first reason"))])
        .with_delay(Duration::from_secs(5))
        .boxed();
    let (second, _) = failing("second", permanent("second reason"));
    let error = ParallelOrchestrator::new()
        .orchestrate(vec![first, second], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    match error {
        OrchestrationError::AgentFailed(name, reason) => {
            assert_eq!(name, "first");
            assert!(reason.contains("first reason"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_tolerant_join_policy_returns_ok_and_lists_the_failures() {
    for policy in [JoinPolicy::AtLeast(2), JoinPolicy::Any] {
        let (a, _) = ok("a", "A");
        let (b, _) = failing("b", permanent("b broke"));
        let (c, _) = ok("c", "C");
        let output = ParallelOrchestrator::new()
            .with_join_policy(policy)
            .orchestrate(vec![a, b, c], OrchestratorInput::new("x"))
            .await
            .unwrap();
        assert!(!output.is_successful());
        assert_eq!(output.agent_outputs.len(), 2);
        assert_eq!(output.failures.len(), 1);
        assert_eq!(output.failures[0].index, 1);
        assert_eq!(output.failures[0].agent_name, "b");
        assert!(output.failures[0].error.contains("b broke"));
        assert!(
            output.result.contains("2. b: [failed]"),
            "{}",
            output.result
        );
        assert!(output.result.contains("3. c: C"), "{}", output.result);
    }
}

#[tokio::test(start_paused = true)]
async fn an_unmet_tolerant_policy_still_fails() {
    let (a, _) = ok("a", "A");
    let (b, _) = failing("b", permanent("b broke"));
    let (c, _) = failing("c", permanent("c broke"));
    let error = ParallelOrchestrator::new()
        .with_join_policy(JoinPolicy::AtLeast(2))
        .orchestrate(vec![a, b, c], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::PartialSuccess(2));
}

#[tokio::test]
async fn bad_configuration_is_rejected_before_any_agent_runs() {
    let none = ParallelOrchestrator::new()
        .orchestrate(Vec::<Box<dyn Agent>>::new(), OrchestratorInput::new("x"))
        .await;
    assert!(matches!(none, Err(OrchestrationError::InvalidConfig(_))));

    let (agent, probe) = ok("a", "A");
    let zero_limit = ParallelOrchestrator::new()
        .with_parallel_limit(0)
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(
        zero_limit,
        Err(OrchestrationError::InvalidConfig(_))
    ));
    assert_eq!(probe.calls(), 0);

    let (agent, probe) = ok("a", "A");
    let zero_timeout = ParallelOrchestrator::new()
        .with_config(ExecutionConfig::new().with_timeout(Duration::ZERO))
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(
        zero_timeout,
        Err(OrchestrationError::InvalidConfig(_))
    ));
    assert_eq!(probe.calls(), 0);

    let (agent, probe) = ok("a", "A");
    let impossible = ParallelOrchestrator::new()
        .with_join_policy(JoinPolicy::AtLeast(2))
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(
        impossible,
        Err(OrchestrationError::InvalidConfig(_))
    ));
    assert_eq!(probe.calls(), 0);
}

#[tokio::test]
async fn shorthands_write_into_the_config() {
    let orchestrator = ParallelOrchestrator::new()
        .with_max_retries(2)
        .with_parallel_limit(5)
        .with_join_policy(JoinPolicy::Any);
    assert_eq!(orchestrator.config().max_retries, 2);
    assert_eq!(orchestrator.config().parallel_limit, 5);
    assert_eq!(orchestrator.config().join_policy, JoinPolicy::Any);
    assert_eq!(Orchestrator::name(&orchestrator), "ParallelOrchestrator");
}
