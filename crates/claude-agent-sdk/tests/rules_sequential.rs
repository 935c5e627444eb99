//! Rule 3 (sequential semantics) and rule 5 (bad configuration) for pipelines.

mod common;

use std::time::Duration;

use claude_agent_sdk::orchestration::{
    Agent, ExecutionConfig, OrchestrationError, Orchestrator, OrchestratorInput,
    SequentialOrchestrator,
};
use common::{echo, failing, ok, permanent, sleeper, transient, Scripted, Step};

#[tokio::test]
async fn each_agent_gets_the_previous_output_and_the_run_context() {
    let (first, first_probe) = ok("first", "one");
    let (second, second_probe) = ok("second", "two");
    let (third, third_probe) = ok("third", "three");
    let input = OrchestratorInput::new("start")
        .with_context(serde_json::json!({"depth": 2}))
        .with_metadata("request", "r-1");

    let output = SequentialOrchestrator::new()
        .orchestrate(vec![first, second, third], input)
        .await
        .unwrap();

    let seen: Vec<_> = [&first_probe, &second_probe, &third_probe]
        .iter()
        .map(|p| p.inputs().remove(0))
        .collect();
    assert_eq!(seen[0].content, "start");
    assert_eq!(seen[1].content, "one");
    assert_eq!(seen[2].content, "two");
    for input in &seen {
        assert_eq!(input.context, serde_json::json!({"depth": 2}));
        assert_eq!(input.metadata["request"], "r-1");
    }
    assert_eq!(output.result, "three");
    let contents: Vec<_> = output
        .agent_outputs
        .iter()
        .map(|o| o.content.as_str())
        .collect();
    assert_eq!(contents, ["one", "two", "three"]);
    assert!(output.is_successful());
}

#[tokio::test]
async fn outputs_chain_through_every_agent() {
    let agents = vec![echo("a"), echo("b"), echo("c")];
    let output = SequentialOrchestrator::new()
        .orchestrate(agents, OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "c(b(a(x)))");
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_stops_the_pipeline() {
    let (first, _) = ok("first", "one");
    let (broken, broken_probe) = failing("broken", permanent("bad data"));
    let (never, never_probe) = ok("never", "unreachable");

    let error = SequentialOrchestrator::new()
        .orchestrate(vec![first, broken, never], OrchestratorInput::new("x"))
        .await
        .unwrap_err();

    match error {
        OrchestrationError::AgentFailed(name, reason) => {
            assert_eq!(name, "broken");
            assert!(reason.contains("bad data"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(broken_probe.calls(), 1, "a permanent error is not retried");
    assert_eq!(never_probe.calls(), 0, "later agents never run");
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_retries_reports_the_last_error() {
    let (flaky, probe) = Scripted::new(
        "flaky",
        [
            Step::Fail(transient("first")),
            Step::Fail(transient("second")),
            Step::Fail(transient("last")),
        ],
    )
    .boxed();
    let error = SequentialOrchestrator::new()
        .with_max_retries(2)
        .orchestrate(vec![flaky], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(probe.calls(), 3);
    assert!(
        matches!(&error, OrchestrationError::AgentFailed(name, reason) if name == "flaky" && reason.contains("last")),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_agent_timeout_is_a_failure_whose_reason_says_so() {
    let (slow, probe) = sleeper("slow", Duration::from_secs(60));
    let (after, after_probe) = ok("after", "x");
    let error = SequentialOrchestrator::new()
        .with_max_retries(1)
        .with_agent_timeout(Duration::from_secs(1))
        .orchestrate(vec![slow, after], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    match error {
        OrchestrationError::AgentFailed(name, reason) => {
            assert_eq!(name, "slow");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(probe.calls(), 2, "a timeout is retryable");
    assert_eq!(
        probe.dropped_unfinished(),
        2,
        "timed-out attempts are dropped"
    );
    assert_eq!(after_probe.calls(), 0);
}

#[tokio::test]
async fn bad_configuration_is_rejected_before_any_agent_runs() {
    let no_agents = SequentialOrchestrator::new()
        .orchestrate(Vec::<Box<dyn Agent>>::new(), OrchestratorInput::new("x"))
        .await;
    assert!(matches!(
        no_agents,
        Err(OrchestrationError::InvalidConfig(_))
    ));

    let (agent, probe) = ok("a", "x");
    let zero_timeout = SequentialOrchestrator::new()
        .with_config(ExecutionConfig::new().with_timeout(Duration::ZERO))
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(
        zero_timeout,
        Err(OrchestrationError::InvalidConfig(_))
    ));
    assert_eq!(probe.calls(), 0);

    let (agent, probe) = ok("a", "x");
    let zero_attempt_timeout = SequentialOrchestrator::new()
        .with_agent_timeout(Duration::ZERO)
        .orchestrate(vec![agent], OrchestratorInput::new("x"))
        .await;
    assert!(matches!(
        zero_attempt_timeout,
        Err(OrchestrationError::InvalidConfig(_))
    ));
    assert_eq!(probe.calls(), 0);
}

#[tokio::test]
async fn shorthands_write_into_the_config() {
    let orchestrator = SequentialOrchestrator::new()
        .with_max_retries(7)
        .with_timeout(Duration::from_secs(9))
        .with_agent_timeout(Duration::from_secs(2));
    assert_eq!(orchestrator.config().max_retries, 7);
    assert_eq!(orchestrator.config().timeout, Duration::from_secs(9));
    assert_eq!(
        orchestrator.config().agent_timeout,
        Some(Duration::from_secs(2))
    );
    let replaced = orchestrator.with_config(ExecutionConfig::new());
    assert_eq!(replaced.config(), &ExecutionConfig::new());
    assert_eq!(Orchestrator::name(&replaced), "SequentialOrchestrator");
}

#[test]
fn running_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let result = futures::executor::block_on(
        SequentialOrchestrator::new().orchestrate(vec![echo("a")], OrchestratorInput::new("x")),
    );
    assert!(
        matches!(result, Err(OrchestrationError::InvalidConfig(_))),
        "{result:?}"
    );
}
