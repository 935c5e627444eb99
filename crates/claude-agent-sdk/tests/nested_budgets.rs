//! A run nested in a step (a subgraph, an `OrchestratorAgent` over a
//! pipeline, fan-out or graph, any `orchestrate` call an agent makes) is
//! bounded by the budgets of the runs around it: what it spends counts in
//! them as it is spent, so it stops the moment they are crossed — also when
//! several nested runs spend at once — and what it spent is paid for, also
//! when the step it ran in failed or reported less.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, Budget, ExecutionConfig, ExecutionContext, GraphOrchestrator,
    JoinPolicy, NodeOptions, OrchestrationError, Orchestrator, OrchestratorAgent,
    OrchestratorInput, ParallelOrchestrator, Route, RunBudget, SequentialOrchestrator, SimpleAgent,
    Split, Usage, END, START,
};

/// Calls by agent name.
type Calls = Arc<Mutex<HashMap<String, usize>>>;

/// An agent that reports spending `usage`, counted in `calls`.
fn spender(
    name: &str,
    usage: Usage,
    calls: &Calls,
) -> SimpleAgent<
    impl Fn(
            claude_agent_sdk::orchestration::AgentInput,
        ) -> claude_agent_sdk::orchestration::Result<AgentOutput>
        + Send
        + Sync,
> {
    let calls = Arc::clone(calls);
    let counted = name.to_owned();
    SimpleAgent::new(name, "spends", move |input| {
        *calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(counted.clone())
            .or_default() += 1;
        Ok(AgentOutput::new(format!("{}.", input.content))
            .with_data(serde_json::json!({ "usage": usage })))
    })
}

fn calls_of(calls: &Calls, name: &str) -> usize {
    calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .copied()
        .unwrap_or(0)
}

fn cents(dollars: f64) -> Usage {
    Usage::new(0, 0).with_cost_usd(dollars)
}

async fn run(graph: &GraphOrchestrator) -> OrchestrationError {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    match graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("go"), &ctx)
        .await
    {
        Ok(output) => panic!("the budget stops the run, but it gave {:?}", output.result),
        Err(error) => error,
    }
}

/// The budget error `error` is, or carries as its cause.
fn exceeded(error: &OrchestrationError) -> &claude_agent_sdk::orchestration::BudgetExceeded {
    match error.root_cause() {
        OrchestrationError::BudgetExceeded(exceeded) => exceeded,
        other => panic!("expected a budget error, got {other:?} (from {error:?})"),
    }
}

/// A subgraph of `items`, each one spending `cost`, one at a time, with
/// `budget`: the map over what it is given.
fn items(cost: f64, budget: RunBudget, calls: &Calls) -> GraphOrchestrator {
    GraphOrchestrator::new("items")
        .with_parallel_limit(1)
        .with_budget(budget)
        .add_map("each", spender("item", cents(cost), calls), Split::Lines)
        .add_edge(START, "each")
        .add_edge("each", END)
}

/// `plan`, then the subgraph `work`, under `budget`.
fn plan_then(
    plan: impl Agent + 'static,
    work: GraphOrchestrator,
    budget: RunBudget,
) -> GraphOrchestrator {
    GraphOrchestrator::new("outer")
        .with_budget(budget)
        .add_node("plan", plan)
        .add_subgraph("work", work)
        .add_edge(START, "plan")
        .add_edge("plan", "work")
        .add_edge("work", END)
}

#[tokio::test]
async fn a_subgraph_stops_when_it_spends_what_the_graph_around_it_had_left() {
    let calls = Calls::default();
    // Ten items of $0.10, one at a time, after a plan that spent $0.60 of $1.
    let plan = SimpleAgent::new("plan", "lists ten items", |_| {
        Ok(AgentOutput::new("1\n2\n3\n4\n5\n6\n7\n8\n9\n10")
            .with_data(serde_json::json!({ "usage": Usage::new(0, 0).with_cost_usd(0.60) })))
    });
    let work = items(0.10, RunBudget::new(), &calls);
    let graph = plan_then(plan, work, RunBudget::new().with_max_cost_usd(1.0));
    let error = run(&graph).await;
    // The subgraph stopped at what was left; the outer run then counts what
    // it spent, and fails at its own budget.
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::CostUsd);
    assert!((exceeded.limit - 1.0).abs() < 1e-9, "{exceeded:?}");
    assert!((exceeded.used - 1.10).abs() < 1e-9, "{exceeded:?}");
    assert_eq!(exceeded.culprit, None);
    let OrchestrationError::BudgetExceeded(_) = &error else {
        panic!("the outer run fails with its budget, not the step's failure: {error:?}");
    };
    // $0.40 left: the fifth item crossed it, and nothing started after it.
    assert_eq!(calls_of(&calls, "item"), 5);
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_nested_pipeline_stops_at_the_tokens_the_run_around_it_had_left() {
    let calls = Calls::default();
    let pipeline = OrchestratorAgent::new(
        "steps",
        "four steps of 100 tokens",
        SequentialOrchestrator::new(),
        (1..=4)
            .map(|i| {
                Box::new(spender(&format!("s{i}"), Usage::new(100, 0), &calls)) as Box<dyn Agent>
            })
            .collect(),
    );
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(500))
        .add_node("first", spender("first", Usage::new(250, 0), &calls))
        .add_node("steps", pipeline)
        .add_edge(START, "first")
        .add_edge("first", "steps")
        .add_edge("steps", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert_eq!((exceeded.limit, exceeded.used), (500.0, 550.0));
    let ran: Vec<usize> = ["s1", "s2", "s3", "s4"]
        .iter()
        .map(|name| calls_of(&calls, name))
        .collect();
    assert_eq!(ran, [1, 1, 1, 0], "the fourth step never started");
}

#[tokio::test]
async fn a_nested_fan_out_stops_at_what_was_left_and_its_own_tighter_budget_wins() {
    let calls = Calls::default();
    // The fan-out runs one agent at a time: $0.30 each, $0.50 left.
    let fan_out = OrchestratorAgent::new(
        "team",
        "three agents",
        ParallelOrchestrator::new().with_parallel_limit(1),
        (1..=3)
            .map(|i| Box::new(spender(&format!("t{i}"), cents(0.30), &calls)) as Box<dyn Agent>)
            .collect(),
    );
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_cost_usd(0.50))
        .add_node("team", fan_out)
        .add_edge(START, "team")
        .add_edge("team", END);
    let error = run(&graph).await;
    let crossed = exceeded(&error);
    assert_eq!(crossed.budget, Budget::CostUsd);
    assert!((crossed.limit - 0.50).abs() < 1e-9, "{crossed:?}");
    assert_eq!(
        ["t1", "t2", "t3"].map(|name| calls_of(&calls, name)),
        [1, 1, 0]
    );

    // A subgraph whose own budget is tighter than what is left stops at its
    // own, and says so (no word of the runs around it).
    let calls = Calls::default();
    let work = items(0.10, RunBudget::new().with_max_cost_usd(0.15), &calls);
    let plan = SimpleAgent::new("plan", "lists", |_| Ok(AgentOutput::new("a\nb\nc\nd")));
    let graph = plan_then(plan, work, RunBudget::new().with_max_cost_usd(10.0));
    let error = run(&graph).await;
    let own = exceeded(&error);
    assert!((own.limit - 0.15).abs() < 1e-9, "{own:?}");
    assert_eq!(own.culprit, None);
    assert_eq!(calls_of(&calls, "item"), 2);
}

#[tokio::test]
async fn a_nested_run_under_a_run_without_a_budget_is_not_bounded() {
    let calls = Calls::default();
    let pipeline = OrchestratorAgent::new(
        "steps",
        "costly steps",
        SequentialOrchestrator::new(),
        (1..=3)
            .map(|i| Box::new(spender(&format!("s{i}"), cents(100.0), &calls)) as Box<dyn Agent>)
            .collect(),
    );
    let graph = GraphOrchestrator::new("outer")
        .add_node("steps", pipeline)
        .add_edge(START, "steps")
        .add_edge("steps", END);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let output = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("go"), &ctx)
        .await
        .unwrap_or_else(|e| panic!("no budget, no stop: {e}"));
    assert_eq!(output.result, "go...");
}

#[tokio::test(start_paused = true)]
async fn what_failed_attempts_nested_runs_spent_counts_and_bounds_their_retries() {
    let calls = Calls::default();
    // Each attempt of `steps` spends 100 tokens in `s1`, then fails in
    // `boom` (a transient failure, retried up to five times).
    let boom = SimpleAgent::new("boom", "fails", |_| {
        Err(OrchestrationError::transient("the back end is busy"))
    });
    let pipeline = OrchestratorAgent::new(
        "steps",
        "spends, then fails",
        SequentialOrchestrator::new().with_max_retries(0),
        vec![
            Box::new(spender("s1", Usage::new(100, 0), &calls)) as Box<dyn Agent>,
            Box::new(boom),
        ],
    );
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(250))
        .add_node_with("steps", pipeline, NodeOptions::new().with_max_retries(5))
        .add_edge(START, "steps")
        .add_edge("steps", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::Tokens);
    // Two failed attempts spent 200; the third was given the 50 left, and
    // its first step crossed that: no retry after it, and the outer run
    // counts all 300.
    assert_eq!(calls_of(&calls, "s1"), 3, "{error}");
    assert_eq!(
        (exceeded.limit, exceeded.used),
        (250.0, 300.0),
        "{exceeded:?}"
    );
}

#[tokio::test]
async fn nested_runs_spending_at_once_share_what_the_run_around_them_has_left() {
    let calls = Calls::default();
    // Two branches, each a subgraph running twenty $0.10 items one at a
    // time, under a $1.00 budget: together they may not spend more than
    // one item each past it (each handed what was left when it started,
    // they would spend $1.00 each).
    let plan = SimpleAgent::new("plan", "lists twenty items", |_| {
        Ok(AgentOutput::new(
            (1..=20)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    });
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_cost_usd(1.0))
        .add_node("plan", plan)
        .add_subgraph("left", items(0.10, RunBudget::new(), &calls))
        .add_subgraph("right", items(0.10, RunBudget::new(), &calls))
        .add_edge(START, "plan")
        .add_edge("plan", "left")
        .add_edge("plan", "right")
        .add_edge("left", END)
        .add_edge("right", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::CostUsd);
    assert!((exceeded.limit - 1.0).abs() < 1e-9, "{exceeded:?}");
    let items = calls_of(&calls, "item");
    assert!(
        (11..=12).contains(&items),
        "ten items fit in the budget, and each branch may have one running as \
         it is crossed: {items} ran"
    );
    assert!(exceeded.used <= 1.2 + 1e-9, "{exceeded:?}");
}

/// An agent that runs a pipeline of `steps` agents spending 100 tokens
/// each through plain `orchestrate`, and reports no usage of its own.
struct Quiet {
    name: String,
    steps: usize,
    calls: Calls,
}

#[async_trait]
impl Agent for Quiet {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "runs a pipeline, says nothing of what it spent"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        let agents = (1..=self.steps)
            .map(|i| {
                let name = format!("{}-{i}", self.name);
                Box::new(spender(&name, Usage::new(100, 0), &self.calls)) as Box<dyn Agent>
            })
            .collect();
        let output = SequentialOrchestrator::new()
            .orchestrate(agents, OrchestratorInput::new(input.content))
            .await?;
        Ok(AgentOutput::new(output.result))
    }
}

#[tokio::test]
async fn a_step_is_charged_what_its_nested_runs_spent_when_its_output_reports_less() {
    let calls = Calls::default();
    let quiet = |name: &str| Quiet {
        name: name.to_owned(),
        steps: 2,
        calls: Arc::clone(&calls),
    };
    // Each step's pipeline spends 200 tokens and its output reports none:
    // the first leaves 50 of 250, and the second's first agent crosses it.
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(250))
        .add_node("a", quiet("a"))
        .add_node("b", quiet("b"))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert_eq!((exceeded.limit, exceeded.used), (250.0, 300.0));
    assert_eq!(
        ["a-1", "a-2", "b-1", "b-2"].map(|name| calls_of(&calls, name)),
        [1, 1, 1, 0]
    );
}

/// A graph of one node running `agent`, under a budget of `tokens`.
fn budgeted(tokens: u64, agent: impl Agent + 'static) -> GraphOrchestrator {
    GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(tokens))
        .add_node("step", agent)
        .add_edge(START, "step")
        .add_edge("step", END)
}

/// Calls a 100-token agent through `ExecutionContext::run_agent` twenty
/// times, stopping at its first error.
struct ToolLoop(Calls);

#[async_trait]
impl Agent for ToolLoop {
    fn name(&self) -> &str {
        "loop"
    }

    fn description(&self) -> &str {
        "calls a model agent until done"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("inside a run");
        let model = spender("model", Usage::new(100, 0), &self.0);
        for _ in 0..20 {
            ctx.run_agent(&model, AgentInput::new(input.content.clone()))
                .await?;
        }
        Ok(AgentOutput::new("done"))
    }
}

#[tokio::test]
async fn an_agent_run_with_run_agent_inside_a_step_stops_at_the_budget_around_it() {
    let calls = Calls::default();
    let error = run(&budgeted(250, ToolLoop(Arc::clone(&calls)))).await;
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert_eq!((exceeded.limit, exceeded.used), (250.0, 300.0));
    assert_eq!(calls_of(&calls, "model"), 3, "the third call crossed it");
}

/// Spends 300 tokens through a pipeline it runs (ignoring how that ended),
/// then fails as an overloaded back end does; counts its attempts.
struct SpendsThenFlakes(Calls);

#[async_trait]
impl Agent for SpendsThenFlakes {
    fn name(&self) -> &str {
        "flaky"
    }

    fn description(&self) -> &str {
        "a best-effort nested pipeline, then a failing call"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry("flaky".to_owned())
            .or_default() += 1;
        let inner = spender("inner", Usage::new(300, 0), &self.0);
        let _ = SequentialOrchestrator::new()
            .orchestrate(
                vec![Box::new(inner) as Box<dyn Agent>],
                OrchestratorInput::new(input.content),
            )
            .await;
        Err(OrchestrationError::transient("529 overloaded"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_is_not_retried_once_a_budget_is_crossed() {
    let calls = Calls::default();
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(250))
        .add_node_with(
            "flaky",
            SpendsThenFlakes(Arc::clone(&calls)),
            NodeOptions::new().with_max_retries(4),
        )
        .add_edge(START, "flaky")
        .add_edge("flaky", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!((exceeded.limit, exceeded.used), (250.0, 300.0), "{error}");
    assert_eq!(calls_of(&calls, "flaky"), 1, "{error}");
}

/// Thinks for a second, then runs a fan-out of ten 10-token agents.
struct Late(Calls);

#[async_trait]
impl Agent for Late {
    fn name(&self) -> &str {
        "late"
    }

    fn description(&self) -> &str {
        "thinks, then fans out"
    }

    async fn execute(
        &self,
        input: AgentInput,
    ) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let parts = (0..10)
            .map(|_| Box::new(spender("part", Usage::new(10, 0), &self.0)) as Box<dyn Agent>)
            .collect();
        let output = ParallelOrchestrator::new()
            .orchestrate(parts, OrchestratorInput::new(input.content))
            .await?;
        Ok(AgentOutput::new(output.result))
    }
}

#[tokio::test(start_paused = true)]
async fn a_nested_run_started_after_the_budget_was_crossed_starts_nothing() {
    let calls = Calls::default();
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(100))
        .add_node("big", spender("big", Usage::new(500, 0), &calls))
        .add_node("late", Late(Arc::clone(&calls)))
        .add_edge(START, "big")
        .add_edge(START, "late")
        .add_edge("big", END)
        .add_edge("late", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!((exceeded.limit, exceeded.used), (100.0, 500.0), "{error}");
    assert_eq!(
        calls_of(&calls, "part"),
        0,
        "crossed before the fan-out started"
    );
}

#[tokio::test]
async fn a_step_whose_router_fails_is_charged_what_its_agent_spent() {
    let calls = Calls::default();
    let sub = GraphOrchestrator::new("sub")
        .add_node("a", spender("a", Usage::new(1_000, 0), &calls))
        .add_node("x", spender("x", Usage::new(1, 0), &calls))
        .add_edge(START, "a")
        .add_router("a", ["x"], |_| Route::to("nowhere"))
        .add_edge("x", END);
    // The subgraph fails (its router names no node), and the join takes
    // the other branch: the run would succeed but for its budget.
    let graph = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(500))
        .add_subgraph("sub", sub)
        .add_node("b", spender("b", Usage::new(1, 0), &calls))
        .add_node("j", spender("j", Usage::new(1, 0), &calls))
        .add_edge(START, "sub")
        .add_edge(START, "b")
        .add_edge("sub", "j")
        .add_edge("b", "j")
        .with_join("j", JoinPolicy::Any)
        .add_edge("j", END);
    let error = run(&graph).await;
    let exceeded = exceeded(&error);
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert!(exceeded.used >= 1_000.0, "{exceeded:?}");
}
