//! Property tests: for any mix of succeeding, recovering and failing agents, the
//! counts in the output, the error and the trace add up.

mod common;

use claude_agent_sdk::orchestration::{
    Agent, ExecutionConfig, ExecutionContext, OrchestrationError, Orchestrator, OrchestratorInput,
    ParallelOrchestrator, SequentialOrchestrator,
};
use common::{permanent, transient, Scripted, Step};
use proptest::prelude::*;

const RETRIES: usize = 2;

/// How one generated agent behaves.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Succeeds,
    FailsPermanently,
    /// Fails transiently this many times (at most `RETRIES`), then succeeds.
    Recovers(usize),
    FailsTransientlyForever,
    Panics,
}

impl Behaviour {
    fn succeeds(self) -> bool {
        matches!(self, Self::Succeeds | Self::Recovers(_))
    }

    fn attempts(self) -> usize {
        match self {
            Self::Succeeds | Self::FailsPermanently | Self::Panics => 1,
            Self::Recovers(k) => k + 1,
            Self::FailsTransientlyForever => RETRIES + 1,
        }
    }

    fn agent(self, index: usize) -> Box<dyn Agent> {
        let name = format!("agent{index}");
        let steps: Vec<Step> = match self {
            Self::Succeeds => vec![Step::Ok("ok")],
            Self::FailsPermanently => vec![Step::Fail(permanent("permanent"))],
            Self::Recovers(k) => (0..k)
                .map(|_| Step::Fail(transient("transient")))
                .chain([Step::Ok("recovered")])
                .collect(),
            Self::FailsTransientlyForever => vec![Step::Fail(transient("transient forever"))],
            Self::Panics => vec![Step::Panic("boom")],
        };
        Scripted::new(name, steps).boxed().0
    }
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Succeeds),
        1 => Just(Behaviour::FailsPermanently),
        1 => (1..=RETRIES).prop_map(Behaviour::Recovers),
        1 => Just(Behaviour::FailsTransientlyForever),
        1 => Just(Behaviour::Panics),
    ]
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn parallel_counts_add_up(
        behaviours in prop::collection::vec(behaviour(), 1..24),
        limit in 1_usize..8,
    ) {
        let agents = behaviours.iter().enumerate().map(|(i, b)| b.agent(i)).collect();
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        let result = paused_runtime().block_on(
            ParallelOrchestrator::new()
                .with_max_retries(RETRIES)
                .with_parallel_limit(limit)
                .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx),
        );
        let n = behaviours.len();
        let succeeded = behaviours.iter().filter(|b| b.succeeds()).count();
        let failed = n - succeeded;
        match result {
            Ok(output) => {
                prop_assert_eq!(failed, 0);
                prop_assert_eq!(output.agent_outputs.len(), n);
                prop_assert_eq!(output.result.lines().count(), n + 1);
            }
            Err(OrchestrationError::PartialSuccess(count)) => {
                prop_assert!(succeeded > 0);
                prop_assert_eq!(count, failed);
            }
            Err(OrchestrationError::AgentFailed(name, _)) => {
                prop_assert_eq!(succeeded, 0);
                prop_assert_eq!(name, "agent0");
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
        let trace = paused_runtime().block_on(ctx.get_trace());
        let attempts: usize = behaviours.iter().map(|b| b.attempts()).sum();
        prop_assert_eq!(trace.agent_executions.len(), attempts);
        prop_assert_eq!(trace.successes().count(), succeeded);
        for (i, b) in behaviours.iter().enumerate() {
            let name = format!("agent{i}");
            let mut numbers: Vec<u32> = trace.attempts_of(&name).map(|e| e.attempt).collect();
            numbers.sort_unstable();
            let expected: Vec<u32> = (1..=b.attempts() as u32).collect();
            prop_assert_eq!(numbers, expected);
        }
    }

    #[test]
    fn sequential_stops_at_the_first_failure(
        behaviours in prop::collection::vec(behaviour(), 1..12),
    ) {
        let agents = behaviours.iter().enumerate().map(|(i, b)| b.agent(i)).collect();
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        let result = paused_runtime().block_on(
            SequentialOrchestrator::new()
                .with_max_retries(RETRIES)
                .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx),
        );
        let first_failure = behaviours.iter().position(|b| !b.succeeds());
        let ran = first_failure.map_or(behaviours.len(), |i| i + 1);
        match (result, first_failure) {
            (Ok(output), None) => prop_assert_eq!(output.agent_outputs.len(), behaviours.len()),
            (Err(OrchestrationError::AgentFailed(name, _)), Some(i)) => {
                prop_assert_eq!(name, format!("agent{i}"))
            }
            (other, _) => prop_assert!(false, "unexpected {:?}", other),
        }
        let trace = paused_runtime().block_on(ctx.get_trace());
        let attempts: usize = behaviours[..ran].iter().map(|b| b.attempts()).sum();
        prop_assert_eq!(trace.agent_executions.len(), attempts);
    }
}
