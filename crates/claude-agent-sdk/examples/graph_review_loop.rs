// A graph with a router, a map and a loop, under a budget — offline, no API key.
//
//     cargo run -p claude-agent-sdk --example graph_review_loop -- "why is checkout slow?"
//
//   START → triage ─┬→ billing ─┐
//                   ├→ tech ────┼→ planner → research (one per item) → writer ⇄ critic → END
//                   └→ general ─┘
//
// Every agent stands in for an LLM call and reports made-up token usage, so the
// budget has something to count. (Plain `//` comments only: the test
// `tests/examples_run.rs` includes this file with `include!`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionTrace, GraphOrchestrator, Orchestrator,
    OrchestratorInput, Result, Route, RunBudget, SimpleAgent, Split, Usage, END, START,
};

// A stand-in LLM call: `answer` computes the reply; 100 tokens in, 20 out.
fn llm(name: &'static str, answer: impl Fn(&str) -> String + Send + Sync + 'static) -> impl Agent {
    SimpleAgent::new(name, "stands in for an LLM call", move |input| {
        let usage = Usage::new(100, 20);
        Ok(AgentOutput::new(answer(&input.content))
            .with_data(serde_json::json!({ "usage": usage })))
    })
}

// The researcher takes its time, like a real call, and counts how many of
// its calls run at once, to show the map's `parallel_limit` at work.
struct Researcher {
    running: AtomicUsize,
    peak: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Researcher {
    fn name(&self) -> &str {
        "researcher"
    }
    fn description(&self) -> &str {
        "researches one sub-question"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(AgentOutput::new(format!("notes on {}", input.content)))
    }
}

/// What the app gets back from one run.
pub struct Review {
    pub result: String,
    pub trace: ExecutionTrace,
    pub researchers_at_once: usize,
}

/// Runs the graph on `question`; a critic that never approves shows the loop's bound.
pub async fn review(question: &str, critic_approves: bool) -> Result<Review> {
    let peak = Arc::new(AtomicUsize::new(0));
    let researcher = Researcher {
        running: AtomicUsize::new(0),
        peak: Arc::clone(&peak),
    };
    let specialist = |name: &'static str| llm(name, move |q| format!("{name} view: {q}"));

    let graph = GraphOrchestrator::new("support-report")
        .add_node("triage", llm("triage", |q| q.to_owned()))
        .add_node("billing", specialist("billing"))
        .add_node("tech", specialist("tech"))
        .add_node("general", specialist("general"))
        // The planner answers with a JSON array of sub-questions.
        .add_node(
            "planner",
            llm("planner", |_| {
                r#"["causes", "impact", "fixes", "costs"]"#.into()
            }),
        )
        .add_map("research", researcher, Split::JsonArray)
        // The writer drafts from the gathered notes, or revises what the critic sent back.
        .add_node(
            "writer",
            llm("writer", |input| match input.strip_prefix("REVISE: ") {
                Some(draft) => format!("{draft} (revised)"),
                None => format!("Report: {}", input.replace("\n\n", "; ")),
            }),
        )
        .add_node(
            "critic",
            llm("critic", move |draft| {
                if critic_approves && draft.ends_with("(revised)") {
                    format!("APPROVED: {draft}")
                } else {
                    format!("REVISE: {draft}")
                }
            }),
        )
        .add_edge(START, "triage")
        // The router: the triage's output picks exactly one specialist.
        .add_router("triage", ["billing", "tech", "general"], |route| {
            let text = route.output.content.to_lowercase();
            if text.contains("invoice") || text.contains("refund") {
                Route::to("billing")
            } else if text.contains("slow") || text.contains("error") {
                Route::to("tech")
            } else {
                Route::to("general")
            }
        })
        // The planner joins the three; the two branches not taken do not count.
        .add_edge("billing", "planner")
        .add_edge("tech", "planner")
        .add_edge("general", "planner")
        .add_edge("planner", "research")
        .add_edge("research", "writer")
        .add_edge("writer", "critic")
        // The loop: back to the writer until approved, three passes at most.
        .add_loop("critic", "writer", 3, |route| {
            !route.output.content.starts_with("APPROVED")
        })
        .add_edge("critic", END)
        .with_parallel_limit(2) // at most two agents (here: map items) at once
        .with_budget(RunBudget::new().with_max_steps(30).with_max_tokens(5_000));

    let output = graph
        .orchestrate(vec![], OrchestratorInput::new(question))
        .await?;
    Ok(Review {
        result: output.result,
        trace: output.execution_trace,
        researchers_at_once: peak.load(Ordering::SeqCst),
    })
}

/// One line per attempt, from the trace: the step (a graph's records name the
/// step — one per node activation, loop pass or map item — not the node), the
/// agent, its attempt, how long it took and how it went.
pub fn step_summary(trace: &ExecutionTrace) -> Vec<String> {
    let steps = trace.agent_executions.iter();
    steps
        .map(|step| {
            let id = step
                .node
                .map_or_else(|| "?".to_owned(), |id| id.to_string());
            let status = match &step.error {
                None => "ok".to_owned(),
                Some(error) => format!("failed: {error}"),
            };
            let tokens = step.usage().total_tokens();
            let ms = step.duration_ms.unwrap_or(0);
            format!(
                "{id:>4} {:<11} attempt {} {ms:>4} ms {tokens:>4} tokens  {status}",
                step.agent_name, step.attempt
            )
        })
        .collect()
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "why is checkout slow?".into());
    let review = review(&question, true).await?;
    println!("{}\n", review.result);
    for line in step_summary(&review.trace) {
        println!("{line}");
    }
    println!("\nresearchers at once: {}", review.researchers_at_once);
    println!("tokens: {}", review.trace.total_usage().total_tokens());
    Ok(())
}
