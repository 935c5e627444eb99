// A durable run that asks a person before it spends money — offline, no API key.
//
//     cargo run -p claude-agent-sdk --features sqlite --example durable_approval
//     cargo run -p claude-agent-sdk --features sqlite --example durable_approval -- --answer yes
//
// The first invocation runs `quote`, then `approve` asks a person and the run
// pauses: it is kept in a SQLite file and the process exits. The second finds
// the paused run in that file, answers the question and resumes it: `quote`
// is not run again (its output comes from the store), `approve` runs again and
// gets the answer, which routes the run to `spend` (on "yes") or to the end. `--store PATH` picks the
// file (default: `durable_approval.db` in the temporary folder).
// (Plain `//` comments only: the test `tests/examples_run.rs` includes this file.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::store::{RunStatus, RunSummary, SqliteJournal};
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentError, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, OrchestrationError, Orchestrator, OrchestratorInput, Pause, Question,
    Result, Route, SimpleAgent, END, START,
};

/// How often each agent ran in this process (a real app would not need this).
#[derive(Clone, Default)]
pub struct Calls {
    pub quote: Arc<AtomicUsize>,
    pub spend: Arc<AtomicUsize>,
}

/// Asks a person to approve the quote it is given, and passes the quote on
/// with the answer. (`GraphOrchestrator::add_ask` makes a node that only asks:
/// its output would be the answer, without the quote.)
struct Approval;

#[async_trait]
impl Agent for Approval {
    fn name(&self) -> &str {
        "approve"
    }
    fn description(&self) -> &str {
        "asks a person before money is spent"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().ok_or_else(|| AgentError::new("runs in a run"))?;
        // No answer yet: `?` passes on `InputRequired`, and the run pauses.
        let answer = ctx.ask("approve", &format!("Spend {}?", input.content))?;
        Ok(AgentOutput::new(input.content).with_metadata("answer", answer))
    }
}

/// The workflow: quote → approve (a person) → spend, or the end on anything but "yes".
/// Every process that resumes the run builds it the same way.
fn workflow(calls: &Calls) -> GraphOrchestrator {
    let quoted = Arc::clone(&calls.quote);
    let quote = SimpleAgent::new("quote", "prices the order", move |input| {
        quoted.fetch_add(1, Ordering::SeqCst);
        Ok(AgentOutput::new(format!("$120 for {}", input.content)))
    });
    let spent = Arc::clone(&calls.spend);
    let spend = SimpleAgent::new("spend", "pays for the order", move |input| {
        spent.fetch_add(1, Ordering::SeqCst);
        // The key stays the same if this very attempt runs again after a crash:
        // give it to the payment service so that it never charges twice.
        let key = ExecutionContext::idempotency_key().unwrap_or_default();
        Ok(AgentOutput::new(format!(
            "paid {} (key {key})",
            input.content
        )))
    });
    GraphOrchestrator::new("purchase")
        .add_node("quote", quote)
        .add_node("approve", Approval)
        .add_node("spend", spend)
        .add_edge(START, "quote")
        .add_edge("quote", "approve")
        // Feed `spend` from the router alone: a second edge into it (say from
        // `quote`) would make it a join, which runs when the router skips it.
        .add_router("approve", ["spend", END], |route| {
            match route
                .output
                .metadata
                .get("answer")
                .map(|a| a.trim().to_lowercase())
            {
                Some(yes) if yes == "yes" => Route::to("spend"),
                _ => Route::end(),
            }
        })
        .add_edge("spend", END)
}

/// How one invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The run waits in the store for answers to its questions.
    Paused(Box<Pause>),
    /// The run is over.
    Finished {
        result: String,
        steps_run_now: Vec<String>,
    },
}

/// One invocation of the app: without `answer`, starts a run of `order`;
/// with it, answers the newest paused run in `store` and resumes it.
pub async fn invoke(
    store: &Path,
    order: &str,
    answer: Option<&str>,
    calls: &Calls,
) -> Result<Outcome> {
    let journal = Arc::new(SqliteJournal::open(store).await?);
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let graph = workflow(calls);

    let outcome = match answer {
        None => {
            graph
                .orchestrate_with_context(vec![], OrchestratorInput::new(order), &ctx)
                .await
        }
        Some(answer) => {
            // Newest first. A paused run that was resumed keeps its status;
            // the run that continued it is named in `resumed_by`.
            let runs = journal.runs(50).await?;
            let waiting =
                |run: &&RunSummary| run.status == RunStatus::Paused && run.resumed_by.is_none();
            let Some(paused) = runs.iter().find(waiting) else {
                return Err(OrchestrationError::InvalidConfig(format!(
                    "no paused run in {}: start one first",
                    store.display()
                )));
            };
            // What the paused run asks, read from the store without resuming
            // it: every question it waits for gets the answer given.
            for question in Question::waiting_in(journal.as_ref(), paused.id).await? {
                ctx.answer(question.id, answer);
            }
            resume(&graph, vec![], paused.id, &ctx).await
        }
    };
    match outcome {
        Ok(output) => Ok(Outcome::Finished {
            result: output.result,
            // The trace holds the attempts this process ran, not the reused steps.
            steps_run_now: output
                .execution_trace
                .agent_executions
                .iter()
                .map(|step| step.agent_name.clone())
                .collect(),
        }),
        Err(OrchestrationError::InputRequired(pause)) => Ok(Outcome::Paused(pause)),
        Err(error) => Err(error),
    }
}

/// The command line, `[--store PATH] [--answer TEXT]`: returns what it prints.
pub async fn cli(args: &[String]) -> Result<String> {
    let flag = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
    };
    let store = flag("--store").map_or_else(
        || std::env::temp_dir().join("durable_approval.db"),
        PathBuf::from,
    );
    let answer = flag("--answer").map(String::as_str);

    Ok(
        match invoke(&store, "10 ad slots", answer, &Calls::default()).await? {
            Outcome::Paused(pause) => {
                let run = pause.run.map(|run| run.to_string()).unwrap_or_default();
                format!(
                    "run {run} paused, asking: {pause}\nanswer with: --store {} --answer yes",
                    store.display()
                )
            }
            Outcome::Finished {
                result,
                steps_run_now,
            } => {
                format!("{result}\nsteps run by this process: {steps_run_now:?}")
            }
        },
    )
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{}", cli(&args).await?);
    Ok(())
}
