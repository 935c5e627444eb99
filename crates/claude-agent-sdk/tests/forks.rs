//! Forks and what a resumed fork carries: a fork asks its questions anew (the
//! forked run's answers are not the fork's, resumed or not); a record's
//! nested trace serializes on its own.

use std::sync::Arc;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    fork, resume, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    ExecutionTrace, GraphOrchestrator, InMemoryJournal, Journal, NestedTrace, OrchestrationError,
    Orchestrator, OrchestratorInput, Result, RunId, SimpleAgent, END, START,
};

fn context(journal: Arc<dyn Journal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new().with_max_retries(0)).with_journal(journal)
}

fn last_run(ctx: &ExecutionContext) -> RunId {
    *ctx.run_ids().last().expect("a run")
}

// ---------------------------------------------------------------- answers

struct Approver;

#[async_trait]
impl Agent for Approver {
    fn name(&self) -> &str {
        "approver"
    }
    fn description(&self) -> &str {
        "asks for approval"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("runs in a context");
        let answer = ctx.ask("budget", "Spend $50?")?;
        Ok(AgentOutput::new(format!(
            "{}>approved:{answer}",
            input.content
        )))
    }
}

/// A fork does not take the forked run's answers (its `approve` asks
/// again); resuming that paused fork with no answer must not answer the
/// question with the old run's answer, given to a step after the fork point.
#[tokio::test]
async fn a_resumed_fork_does_not_reuse_answers_the_forked_run_gave_after_the_fork_point() {
    let graph = || {
        GraphOrchestrator::new("approval")
            .add_node(
                "draft",
                SimpleAgent::new("draft", "drafts", |input| {
                    Ok(AgentOutput::new(format!("{}>draft", input.content)))
                }),
            )
            .add_node("approve", Approver)
            .add_edge(START, "draft")
            .add_edge("draft", "approve")
            .add_edge("approve", END)
    };
    let journal: Arc<dyn Journal> = Arc::new(InMemoryJournal::new());
    let ctx = context(Arc::clone(&journal));
    ctx.answer("budget", "yes");
    let first = graph()
        .orchestrate_with_context(vec![], OrchestratorInput::new("plan"), &ctx)
        .await
        .expect("the first run");
    assert_eq!(first.result, "plan>draft>approved:yes");
    let old = last_run(&ctx);

    // The fork, after the draft: the approval is asked again.
    let ctx = context(Arc::clone(&journal));
    let paused = fork(&graph(), vec![], old, "draft", None, &ctx).await;
    assert!(
        matches!(paused, Err(OrchestrationError::InputRequired(_))),
        "the fork asks again: {paused:?}"
    );
    let forked = last_run(&ctx);

    // Resumed with no answer: the question is still open.
    let ctx = context(Arc::clone(&journal));
    let resumed = resume(&graph(), vec![], forked, &ctx).await;
    assert!(
        matches!(resumed, Err(OrchestrationError::InputRequired(_))),
        "the resumed fork was answered with the old run's answer: {:?}",
        resumed.map(|output| output.result)
    );
}

// ---------------------------------------------------------------- nested traces

/// A record's nested trace serializes on its own and reads back equal, as
/// it did when it was a `Box<ExecutionTrace>`.
#[tokio::test]
async fn a_records_nested_trace_serializes_on_its_own() {
    let inner = claude_agent_sdk::orchestration::SequentialOrchestrator::new();
    let step = claude_agent_sdk::orchestration::OrchestratorAgent::new(
        "group",
        "a nested pipeline",
        inner,
        vec![Box::new(SimpleAgent::new("b", "echoes", |input| {
            Ok(AgentOutput::new(input.content))
        }))],
    );
    let output = claude_agent_sdk::orchestration::SequentialOrchestrator::new()
        .orchestrate(vec![Box::new(step)], OrchestratorInput::new("x"))
        .await
        .expect("the run");
    let nested: &Option<NestedTrace> = &output.execution_trace.agent_executions[0].nested;
    assert!(nested.is_some());
    let json = serde_json::to_value(nested).expect("serializes");
    let back: Option<NestedTrace> = serde_json::from_value(json).expect("reads back");
    assert_eq!(&back, nested);
    let trace: ExecutionTrace = back.map(NestedTrace::into_inner).unwrap_or_default();
    assert_eq!(trace.agent_executions[0].agent_name, "b");
}
