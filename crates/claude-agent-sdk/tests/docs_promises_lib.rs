//! What the library's documentation promises, checked against what it does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, GraphOrchestrator,
    JoinPolicy, Orchestrator, OrchestratorInput, Result, RunEvent, RunObserver, SimpleAgent, END,
    START,
};

fn echo(name: &'static str) -> SimpleAgent<impl Fn(AgentInput) -> Result<AgentOutput> + Clone> {
    SimpleAgent::new(name, "", |input| Ok(AgentOutput::new(input.content)))
}

/// Says `text` after `delay`.
struct Slow {
    name: &'static str,
    delay: Duration,
    text: String,
}

#[async_trait]
impl Agent for Slow {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        ""
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        tokio::time::sleep(self.delay).await;
        Ok(AgentOutput::new(self.text.clone()))
    }
}

fn slow(name: &'static str, secs: u64, text: &str) -> Slow {
    Slow {
        name,
        delay: Duration::from_secs(secs),
        text: text.to_owned(),
    }
}

/// Keeps what it hears, as text.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl RunObserver for Heard {
    fn on_event(&self, event: &RunEvent<'_>) {
        let line = match event {
            RunEvent::AttemptFinished { agent, outcome, .. } => match outcome {
                Ok(_) => format!("{agent} ok"),
                Err(error) => format!("{agent} err {error}"),
            },
            RunEvent::RunFinished { error, .. } => format!("run finished {error:?}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

// config.rs, trace/mod.rs: `record_text_limit` bounds each attempt's input
// and output text in the trace a run returns.
#[tokio::test]
async fn a_record_text_limit_also_cuts_what_a_graph_join_was_given() {
    let big = "y".repeat(10_000);
    let graph = GraphOrchestrator::new("g")
        .with_config(ExecutionConfig::new().with_record_text_limit(100))
        .add_node("a", slow("a", 0, &big))
        .add_node("b", slow("b", 0, &big))
        .add_node("join", echo("join"))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge("a", "join")
        .add_edge("b", "join")
        .add_edge("join", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("go"))
        .await
        .unwrap();
    assert_eq!(output.result.len(), 2 * 10_000 + 2, "the result is whole");
    for record in &output.execution_trace.agent_executions {
        let texts = [
            &record.input.content,
            &record.output.as_ref().unwrap().content,
        ];
        for text in texts {
            assert!(
                text.len() < 200,
                "{}: {} bytes",
                record.agent_name,
                text.len()
            );
        }
    }
}

// graph/mod.rs: "Adding an edge twice adds it once."
#[tokio::test]
async fn an_edge_added_twice_is_one_edge() {
    let graph = GraphOrchestrator::new("g")
        .add_node("a", echo("a"))
        .add_node("b", echo("b"))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("a", "b")
        .add_edge("b", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "x");
    assert_eq!(output.agent_outputs.len(), 2);
}

// resume/mod.rs: a run resumes from "any store: the in-memory one in a
// process"; every finished step's "output comes from the journal".
// config.rs: the text limit bounds the trace — not what a resumed run reuses.
#[tokio::test]
async fn a_run_resumed_from_an_in_memory_journal_reuses_whole_outputs_under_a_text_limit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let journal = Arc::new(claude_agent_sdk::orchestration::InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal);
    let broken = Arc::new(AtomicBool::new(true));
    let agents = |broken: &Arc<AtomicBool>| -> Vec<Box<dyn Agent>> {
        let broken = Arc::clone(broken);
        vec![
            Box::new(slow("big", 0, &"y".repeat(10_000))),
            Box::new(SimpleAgent::new("count", "", move |input| {
                if broken.load(Ordering::SeqCst) {
                    Err(claude_agent_sdk::orchestration::AgentError::new("not yet").into())
                } else {
                    Ok(AgentOutput::new(input.content.len().to_string()))
                }
            })),
        ]
    };
    let pipeline = claude_agent_sdk::orchestration::SequentialOrchestrator::new()
        .with_config(ExecutionConfig::new().with_record_text_limit(100));
    let failed = pipeline
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("go"), &ctx)
        .await;
    assert!(failed.is_err());
    broken.store(false, Ordering::SeqCst);
    let run = ctx.run_ids()[0];
    let output = claude_agent_sdk::orchestration::resume(&pipeline, agents(&broken), run, &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "10000", "the reused output is whole");
    assert_eq!(output.agent_outputs[0].content.len(), 10_000);
    for record in &output.execution_trace.agent_executions {
        assert!(record.input.content.len() < 200, "the trace is still cut");
    }

    // A step that runs again on the run's input gets it whole too.
    let broken = Arc::new(AtomicBool::new(true));
    let only_count = |broken: &Arc<AtomicBool>| agents(broken).split_off(1);
    let big_input = OrchestratorInput::new("z".repeat(5_000));
    assert!(pipeline
        .orchestrate_with_context(only_count(&broken), big_input, &ctx)
        .await
        .is_err());
    broken.store(false, Ordering::SeqCst);
    let run = ctx.run_ids()[2];
    let output = claude_agent_sdk::orchestration::resume(&pipeline, only_count(&broken), run, &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "5000", "the run's input is whole");
}

// trace/mod.rs: records come "in the order the attempts ended; attempts
// still running come last"; context/mod.rs: the context's trace "has an end
// time once no run under it is running".
#[tokio::test(start_paused = true)]
async fn a_trace_read_mid_run_lists_ended_attempts_in_order_and_running_ones_last() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let agents: Vec<Box<dyn Agent>> = vec![
        Box::new(slow("first", 2, "1")),
        Box::new(slow("second", 1, "2")),
        Box::new(slow("third", 10, "3")),
    ];
    let run = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            claude_agent_sdk::orchestration::ParallelOrchestrator::new()
                .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let trace = ctx.get_trace().await;
    let names: Vec<&str> = trace
        .agent_executions
        .iter()
        .map(|r| r.agent_name.as_str())
        .collect();
    assert_eq!(names, ["second", "first", "third"]);
    assert!(!trace.agent_executions[2].has_ended());
    assert_eq!(trace.end_time, None);
    run.await.unwrap().unwrap();
    assert!(ctx.get_trace().await.end_time.is_some());
}

// graph/mod.rs: "several reaching [END] are gathered, in completion order".
#[tokio::test(start_paused = true)]
async fn outputs_reaching_the_end_together_are_gathered_in_completion_order() {
    let graph = GraphOrchestrator::new("g")
        .add_node("a", slow("a", 2, "from a"))
        .add_node("b", slow("b", 1, "from b"))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge("a", END)
        .add_edge("b", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "from b\n\nfrom a");
}

// graph/mod.rs: a loop runs "at most `max_iterations` passes in all. When
// the loop ends, `from`'s output goes on along its edges."
#[tokio::test]
async fn a_loop_that_always_wants_more_stops_after_its_passes_and_goes_on() {
    let graph = GraphOrchestrator::new("g")
        .add_node(
            "grow",
            SimpleAgent::new("grow", "", |i| {
                Ok(AgentOutput::new(format!("{}+", i.content)))
            }),
        )
        .add_edge(START, "grow")
        .add_loop("grow", "grow", 3, |_| true)
        .add_edge("grow", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "x+++");
}

// retry.rs and budget.rs: "Read from JSON, a missing field takes its default."
#[test]
fn a_backoff_and_a_budget_read_from_empty_json_are_the_defaults() {
    use claude_agent_sdk::orchestration::{Backoff, RunBudget};
    assert_eq!(
        serde_json::from_str::<Backoff>("{}").unwrap(),
        Backoff::default()
    );
    assert_eq!(
        serde_json::from_str::<RunBudget>("{}").unwrap(),
        RunBudget::new()
    );
    assert_eq!(Backoff::default().with_jitter(f64::NAN).jitter, 0.0);
}

// graph/mod.rs: under `Any` a join "runs as soon as enough have succeeded,
// on their outputs: what the others produce later does not reach it".
#[tokio::test(start_paused = true)]
async fn an_any_join_runs_on_the_first_branch_without_waiting_for_the_other() {
    let heard = Arc::new(Heard::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(heard.clone());
    let graph = GraphOrchestrator::new("g")
        .add_node("fast", slow("fast", 1, "f"))
        .add_node("late", slow("late", 60, "l"))
        .add_node("join", echo("join"))
        .add_edge(START, "fast")
        .add_edge(START, "late")
        .add_edge("fast", "join")
        .add_edge("late", "join")
        .with_join("join", JoinPolicy::Any)
        .add_edge("join", END);
    let output = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "f");
    let heard = heard.0.lock().unwrap().clone();
    assert_eq!(
        heard,
        ["fast ok", "join ok", "late ok", "run finished None"]
    );
}
