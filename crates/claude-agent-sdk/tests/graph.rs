//! Graphs: routing, joins, maps, loops, limits, budgets and the checks made
//! before anything runs. Time runs on tokio's paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentMetadata, AgentOutput, AgentRegistry, Budget, EventKind,
    ExecutionConfig, ExecutionContext, GraphOrchestrator, InMemoryJournal, JoinPolicy, NodeOptions,
    OrchestrationError, Orchestrator, OrchestratorAgent, OrchestratorInput, OrchestratorOutput,
    ParallelOrchestrator, Question, Result, Route, RunBudget, SequentialOrchestrator, SimpleAgent,
    Split, Usage, END, START,
};
use tokio::time::Instant;

/// Shared by a test's agents: what ran, in order, and how many at once.
#[derive(Default)]
struct Log {
    entries: Mutex<Vec<String>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Log {
    fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }

    /// How many times agent `name` ran.
    fn calls(&self, name: &str) -> usize {
        let prefix = format!("{name}:");
        self.entries()
            .iter()
            .filter(|entry| entry.starts_with(&prefix))
            .count()
    }
}

/// Waits `delay`, logs `"<name>:<input>"`, and answers with `answer(input)`.
struct Step {
    name: String,
    delay: Duration,
    log: Arc<Log>,
    answer: Answer,
}

type Answer = Box<dyn Fn(&str) -> Result<AgentOutput> + Send + Sync>;

#[async_trait]
impl Agent for Step {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "a test step"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let now = self.log.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.most.fetch_max(now, Ordering::SeqCst);
        // Counts the agent out however it ends: finished, or dropped.
        struct Running<'a>(&'a AtomicUsize);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let running = Running(&self.log.running);
        tokio::time::sleep(self.delay).await;
        drop(running);
        self.log
            .entries
            .lock()
            .unwrap()
            .push(format!("{}:{}", self.name, input.content));
        (self.answer)(&input.content)
    }
}

fn step(
    name: &str,
    log: &Arc<Log>,
    answer: impl Fn(&str) -> Result<AgentOutput> + Send + Sync + 'static,
) -> Step {
    Step {
        name: name.to_owned(),
        delay: Duration::ZERO,
        log: Arc::clone(log),
        answer: Box::new(answer),
    }
}

/// A step that answers `"<name>(<input>)"`.
fn wrap(name: &'static str, log: &Arc<Log>) -> Step {
    step(name, log, move |input| {
        Ok(AgentOutput::new(format!("{name}({input})")))
    })
}

fn slow(mut step: Step, delay: Duration) -> Step {
    step.delay = delay;
    step
}

fn input(text: &str) -> OrchestratorInput {
    OrchestratorInput::new(text)
}

fn invalid_config(error: &OrchestrationError) -> &str {
    match error {
        OrchestrationError::InvalidConfig(message) => message,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test]
async fn a_router_sends_the_output_down_one_branch_and_the_join_after_it_still_runs() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("triage")
        .add_node("triage", wrap("triage", &log))
        .add_node("billing", wrap("billing", &log))
        .add_node("tech", wrap("tech", &log))
        .add_node("reply", wrap("reply", &log))
        .add_edge(START, "triage")
        .add_router("triage", ["billing", "tech"], |route| {
            if route.output.content.contains("invoice") {
                Route::to("billing")
            } else {
                Route::to("tech")
            }
        })
        .add_edge("billing", "reply")
        .add_edge("tech", "reply")
        .add_edge("reply", END);
    let output = graph
        .orchestrate(vec![], input("my invoice"))
        .await
        .unwrap();
    assert_eq!(output.result, "reply(billing(triage(my invoice)))");
    assert!(output.is_successful());
    let ran: Vec<_> = output
        .execution_trace
        .agent_executions
        .iter()
        .map(|record| record.agent_name.as_str())
        .collect();
    assert_eq!(
        ran,
        ["triage", "billing", "reply"],
        "the tech branch never ran"
    );
}

#[tokio::test]
async fn a_graph_that_runs_one_step_at_a_time_keeps_one_task_whatever_its_limit() {
    let log = Arc::new(Log::default());
    // How many tasks the runtime has while each agent runs: the run's
    // workers (the test's own future is not a task).
    let tasks = Arc::new(Mutex::new(Vec::new()));
    let counting = |name: &'static str| {
        let tasks = Arc::clone(&tasks);
        step(name, &log, move |input| {
            let alive = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            tasks.lock().unwrap().push(alive);
            Ok(AgentOutput::new(format!("{name}({input})")))
        })
    };
    let graph = GraphOrchestrator::new("triage")
        .with_parallel_limit(16)
        .add_node("triage", counting("triage"))
        .add_node("billing", counting("billing"))
        .add_node("tech", counting("tech"))
        .add_edge(START, "triage")
        .add_router("triage", ["billing", "tech"], |_| Route::to("tech"))
        .add_edge("billing", END)
        .add_edge("tech", END);
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(output.result, "tech(triage(x))");
    assert_eq!(
        *tasks.lock().unwrap(),
        [1, 1],
        "one worker: never more than the steps ready at once"
    );
}

#[tokio::test]
async fn a_router_that_names_a_node_it_did_not_declare_fails_its_step() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("g")
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_edge(START, "a")
        .add_router("a", ["b"], |_| Route::to("c"))
        .add_edge("b", END);
    let error = graph.orchestrate(vec![], input("x")).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("chose `c`, which is not among its targets"),
        "{error}"
    );
}

#[tokio::test]
async fn a_join_gets_its_branches_gathered_as_text_and_json() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("reviews")
        .add_node("tech", wrap("tech", &log))
        .add_node("biz", wrap("biz", &log))
        .add_node(
            "editor",
            step("editor", &log, |input| Ok(AgentOutput::new(input))),
        )
        .add_edge(START, "tech")
        .add_edge(START, "biz")
        .add_edge("tech", "editor")
        .add_edge("biz", "editor")
        .add_edge("editor", END);
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(output.result, "tech(x)\n\nbiz(x)", "predecessor order");
    // The join's input, as the editor's record shows it.
    let editor = output.execution_trace.attempts_of("editor").next().unwrap();
    assert_eq!(editor.input.content, "tech(x)\n\nbiz(x)");
}

#[tokio::test]
async fn a_join_at_least_k_tolerates_a_failed_branch_and_lists_it() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("vote")
        .add_node("a", wrap("a", &log))
        .add_node(
            "b",
            step("b", &log, |_| {
                Err(OrchestrationError::AgentError("no".into()))
            }),
        )
        .add_node("c", wrap("c", &log))
        .add_node("tally", wrap("tally", &log))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge(START, "c")
        .add_edge("a", "tally")
        .add_edge("b", "tally")
        .add_edge("c", "tally")
        .with_join("tally", JoinPolicy::AtLeast(2))
        .add_edge("tally", END);
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(output.result, "tally(a(x)\n\nc(x))");
    assert!(!output.is_successful());
    assert_eq!(output.failures.len(), 1);
    assert_eq!(output.failures[0].agent_name, "b");

    // Under the default join (all), the same failure fails the run.
    let graph = GraphOrchestrator::new("vote")
        .add_node("a", wrap("a", &log))
        .add_node(
            "b",
            step("b", &log, |_| {
                Err(OrchestrationError::AgentError("no".into()))
            }),
        )
        .add_node("tally", wrap("tally", &log))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge("a", "tally")
        .add_edge("b", "tally")
        .add_edge("tally", END);
    let error = graph.orchestrate(vec![], input("x")).await.unwrap_err();
    assert!(
        matches!(error, OrchestrationError::AgentFailed(ref name, _) if name == "b"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_branch_finishes_three_steps_while_its_slow_sibling_is_on_its_first() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("race")
        .add_node("slow", slow(wrap("slow", &log), Duration::from_secs(10)))
        .add_node("f1", slow(wrap("f1", &log), Duration::from_secs(1)))
        .add_node("f2", slow(wrap("f2", &log), Duration::from_secs(1)))
        .add_node("f3", slow(wrap("f3", &log), Duration::from_secs(1)))
        .add_node("join", wrap("join", &log))
        .add_edge(START, "slow")
        .add_edge(START, "f1")
        .add_edge("f1", "f2")
        .add_edge("f2", "f3")
        .add_edge("f3", "join")
        .add_edge("slow", "join")
        .add_edge("join", END);
    let started = Instant::now();
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10),
        "no barrier: 10 s, not 13 s"
    );
    let order: Vec<String> = log
        .entries()
        .iter()
        .map(|entry| entry.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["f1", "f2", "f3", "slow", "join"]);
    assert_eq!(output.result, "join(f3(f2(f1(x)))\n\nslow(x))");
}

#[tokio::test(start_paused = true)]
async fn a_map_runs_one_step_per_item_within_the_limit_and_gathers_in_item_order() {
    let log = Arc::new(Log::default());
    // Later items finish first: the gathering still follows item order.
    let researcher = {
        let log = Arc::clone(&log);
        Step {
            name: "research".into(),
            delay: Duration::ZERO,
            log: Arc::clone(&log),
            answer: Box::new(|item| Ok(AgentOutput::new(item.to_uppercase()))),
        }
    };
    let graph = GraphOrchestrator::new("map")
        .with_parallel_limit(2)
        .add_node(
            "plan",
            step("plan", &log, |_| Ok(AgentOutput::new("a\nb\n\nc\nd"))),
        )
        .add_map(
            "research",
            slow(researcher, Duration::from_secs(1)),
            Split::Lines,
        )
        .add_node(
            "write",
            step("write", &log, |input| Ok(AgentOutput::new(input))),
        )
        .add_edge(START, "plan")
        .add_edge("plan", "research")
        .add_edge("research", "write")
        .add_edge("write", END);
    let started = Instant::now();
    let output = graph.orchestrate(vec![], input("topic")).await.unwrap();
    assert_eq!(output.result, "A\n\nB\n\nC\n\nD");
    assert_eq!(
        log.most.load(Ordering::SeqCst),
        2,
        "at most parallel_limit items at once"
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "four items, two at a time"
    );
    let items = output.execution_trace.attempts_of("research").count();
    assert_eq!(items, 4, "one record per item");
}

#[tokio::test]
async fn a_map_over_a_json_array_gives_the_node_after_it_json_results() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("map")
        .add_map("double", wrap("double", &log), Split::JsonArray)
        .add_node(
            "sum",
            step("sum", &log, |input| Ok(AgentOutput::new(input))),
        )
        .add_edge(START, "double")
        .add_edge("double", "sum")
        .add_edge("sum", END);
    let output = graph
        .orchestrate(vec![], input(r#"["x", 2]"#))
        .await
        .unwrap();
    assert_eq!(output.result, "double(x)\n\ndouble(2)");
    // The map's own gathered output is not an agent's: agent_outputs holds
    // the items' and the sum's.
    assert_eq!(output.agent_outputs.len(), 3);

    let error = graph
        .orchestrate(vec![], input("not json"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("JSON array"), "{error}");
}

#[tokio::test]
async fn the_node_after_a_map_gets_the_results_as_json_and_every_step_is_journaled() {
    let seen = Arc::new(Mutex::new(String::new()));
    let log = Arc::new(Log::default());
    struct Inspect(Arc<Mutex<String>>);
    #[async_trait]
    impl Agent for Inspect {
        fn name(&self) -> &str {
            "inspect"
        }
        fn description(&self) -> &str {
            ""
        }
        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            *self.0.lock().unwrap() = input.metadata["results"].clone();
            Ok(AgentOutput::new(input.content))
        }
    }
    let graph = GraphOrchestrator::new("map")
        .add_map("m", wrap("m", &log), Split::Lines)
        .add_node("after", Inspect(Arc::clone(&seen)))
        .add_edge(START, "m")
        .add_edge("m", "after")
        .add_edge("after", END);
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(Arc::new(InMemoryJournal::new()));
    graph
        .orchestrate_with_context(vec![], input("p\nq"), &ctx)
        .await
        .unwrap();
    let results: serde_json::Value = serde_json::from_str(&seen.lock().unwrap()).unwrap();
    assert_eq!(
        results,
        serde_json::json!([
            {"agent": "m", "item": 0, "input": "p", "content": "m(p)"},
            {"agent": "m", "item": 1, "input": "q", "content": "m(q)"}
        ])
    );
    let events = ctx.journal().read(&ctx.run_ids()).await;
    let items: Vec<(String, Option<u32>)> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::StepAdded { node, item, .. } => Some((node.clone(), *item)),
            _ => None,
        })
        .collect();
    assert_eq!(
        items,
        [
            ("m".to_owned(), None),
            ("m".to_owned(), Some(0)),
            ("m".to_owned(), Some(1)),
            ("after".to_owned(), None)
        ],
        "every step is announced, items with their index"
    );
}

#[tokio::test]
async fn refine_until_the_critic_approves() {
    let log = Arc::new(Log::default());
    let drafts = Arc::new(AtomicUsize::new(0));
    let writer = {
        let drafts = Arc::clone(&drafts);
        step("writer", &log, move |_| {
            let n = drafts.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AgentOutput::new(format!("draft {n}")))
        })
    };
    let critic = step("critic", &log, |draft| {
        Ok(AgentOutput::new(if draft == "draft 3" {
            "APPROVED: draft 3".to_owned()
        } else {
            format!("too short: {draft}")
        }))
    });
    let graph = GraphOrchestrator::new("refine")
        .add_node("writer", writer)
        .add_node("critic", critic)
        .add_edge(START, "writer")
        .add_edge("writer", "critic")
        .add_loop("critic", "writer", 5, |route| {
            !route.output.content.starts_with("APPROVED")
        })
        .add_edge("critic", END);
    let output = graph.orchestrate(vec![], input("an essay")).await.unwrap();
    assert_eq!(output.result, "APPROVED: draft 3");
    assert_eq!(drafts.load(Ordering::SeqCst), 3);
    // The writer's second pass got the critic's feedback.
    assert!(log
        .entries()
        .contains(&"writer:too short: draft 1".to_owned()));

    // The bound holds when the critic never approves.
    let stubborn = GraphOrchestrator::new("refine")
        .add_node("writer", wrap("writer", &log))
        .add_node("critic", wrap("critic", &log))
        .add_edge(START, "writer")
        .add_edge("writer", "critic")
        .add_loop("critic", "writer", 3, |_| true)
        .add_edge("critic", END);
    let output = stubborn.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(output.execution_trace.attempts_of("writer").count(), 3);
}

#[tokio::test]
async fn the_step_limit_stops_a_loop_that_runs_away_and_names_it() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("spin")
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_loop("b", "a", u32::MAX, |_| true)
        .add_edge("b", END)
        .with_max_steps(50);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let error = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected BudgetExceeded, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Steps);
    assert_eq!(exceeded.limit, 50.0);
    let culprit = exceeded.culprit.as_deref().unwrap();
    assert!(
        culprit.contains("the loop from `b` back to `a`"),
        "{culprit}"
    );
    assert!(!error.is_retryable());
    // The trace keeps the steps that ran.
    assert_eq!(ctx.get_trace().await.agent_executions.len(), 50);
}

/// Reports `tokens` of usage after `delay`.
fn spender(name: &str, log: &Arc<Log>, tokens: u64, delay: Duration) -> Step {
    slow(
        step(name, log, move |input| {
            Ok(AgentOutput::new(input).with_data(serde_json::json!({
                "usage": Usage::new(tokens, 0)
            })))
        }),
        delay,
    )
}

#[tokio::test(start_paused = true)]
async fn crossing_the_token_budget_starts_nothing_more_and_lets_running_siblings_finish() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("spend")
        .add_node("big", spender("big", &log, 1_000, Duration::from_secs(1)))
        .add_node(
            "sibling",
            spender("sibling", &log, 10, Duration::from_secs(5)),
        )
        .add_node("after_big", spender("after_big", &log, 10, Duration::ZERO))
        .add_node("end", spender("end", &log, 10, Duration::ZERO))
        .add_edge(START, "big")
        .add_edge(START, "sibling")
        .add_edge("big", "after_big")
        .add_edge("after_big", "end")
        .add_edge("sibling", "end")
        .add_edge("end", END)
        .with_budget(RunBudget::new().with_max_tokens(500));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let started = Instant::now();
    let error = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected BudgetExceeded, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert_eq!((exceeded.limit, exceeded.used), (500.0, 1_000.0));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "the sibling finished"
    );
    let trace = ctx.get_trace().await;
    let ran: Vec<_> = trace
        .agent_executions
        .iter()
        .map(|record| (record.agent_name.as_str(), record.success))
        .collect();
    assert_eq!(
        ran,
        [("big", true), ("sibling", true)],
        "nothing started after"
    );
}

#[tokio::test(start_paused = true)]
async fn the_duration_budget_stops_starting_steps() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("slow")
        .add_node("a", slow(wrap("a", &log), Duration::from_secs(3)))
        .add_node("b", slow(wrap("b", &log), Duration::from_secs(3)))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", END)
        .with_budget(RunBudget::new().with_max_duration(Duration::from_secs(2)));
    let error = graph.orchestrate(vec![], input("x")).await.unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected BudgetExceeded, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Duration);
    assert_eq!(log.entries(), ["a:x"], "b never started");
}

#[tokio::test]
async fn every_problem_is_reported_before_anything_runs() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("broken")
        .add_node("draft", wrap("draft", &log))
        .add_node("review", wrap("review", &log))
        .add_node("orphan", wrap("orphan", &log))
        .add_node("dead_end", wrap("dead_end", &log))
        .add_edge(START, "draft")
        .add_edge("draft", "reveiw")
        .add_edge("draft", "review")
        .add_edge("review", "draft")
        .add_edge("draft", "dead_end")
        .add_edge("review", END);
    let error = graph.validate().unwrap_err();
    let message = invalid_config(&error);
    assert!(
        message.contains("`reveiw`, which is not a node (did you mean `review`?)"),
        "{message}"
    );
    let error = GraphOrchestrator::new("broken")
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_node("orphan", wrap("orphan", &log))
        .add_node("dead_end", wrap("dead_end", &log))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", "a")
        .add_edge("b", END)
        .validate()
        .unwrap_err();
    let message = invalid_config(&error);
    assert!(message.contains("`orphan` can never run"), "{message}");
    assert!(message.contains("`dead_end` can never run"), "{message}");
    assert!(message.contains("also fed by `b`"), "{message}");
    let error = GraphOrchestrator::new("cycle")
        .add_node("s", wrap("s", &log))
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_node("stuck", wrap("stuck", &log))
        .add_edge(START, "s")
        .add_edge("s", "a")
        .add_edge("a", "b")
        .add_edge("b", "a")
        .add_edge("s", "stuck")
        .add_edge("b", END)
        .validate()
        .unwrap_err();
    let message = invalid_config(&error);
    assert!(
        message.contains("the cycle `a` → `b` → `a` has no bound"),
        "{message}"
    );
    // Every problem at once: the node that cannot reach END beside the cycle.
    assert!(message.contains("no path to END from `stuck`"), "{message}");
    let error = GraphOrchestrator::new("stuck")
        .add_node("s", wrap("s", &log))
        .add_node("stuck", wrap("stuck", &log))
        .add_edge(START, "s")
        .add_edge("s", "stuck")
        .add_edge("s", END)
        .validate()
        .unwrap_err();
    assert!(
        invalid_config(&error).contains("no path to END from `stuck`"),
        "{error}"
    );
    assert!(log.entries().is_empty(), "nothing ran");
    let error = GraphOrchestrator::new("empty").validate().unwrap_err();
    assert!(invalid_config(&error).contains("no nodes"));
}

#[tokio::test]
async fn problems_lists_each_problem_with_the_nodes_it_is_about_as_validate_words_them() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("cycle")
        .add_node("s", wrap("s", &log))
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_node("stuck", wrap("stuck", &log))
        .add_node("orphan", wrap("orphan", &log))
        .add_edge(START, "s")
        .add_edge("s", "a")
        .add_edge("a", "b")
        .add_edge("b", "a")
        .add_edge("s", "stuck")
        .add_edge("b", END)
        .add_edge("orphan", END);
    let problems = graph.problems();
    let about: Vec<(&str, Vec<&str>)> = problems
        .iter()
        .map(|problem| {
            let first = problem.message.split(':').next().unwrap_or_default();
            (first, problem.nodes.iter().map(String::as_str).collect())
        })
        .collect();
    assert_eq!(
        about,
        [
            ("`orphan` can never run", vec!["orphan"]),
            (
                "the cycle `a` → `b` → `a` has no bound",
                vec!["a", "b", "a"]
            ),
            ("no path to END from `stuck`", vec!["stuck"]),
        ]
    );
    // `validate` (and a run) says the same, joined.
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    let error = graph.validate().unwrap_err();
    assert_eq!(
        invalid_config(&error),
        format!("graph `cycle`: {}", messages.join("; "))
    );
    // An id that names no node is about no node.
    let unknown = GraphOrchestrator::new("typo")
        .add_node("a", wrap("a", &log))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("a", END)
        .problems();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].nodes.is_empty(), "{unknown:?}");
    // A sound graph has none.
    let sound = GraphOrchestrator::new("sound")
        .add_node("a", wrap("a", &log))
        .add_edge(START, "a")
        .add_edge("a", END);
    assert!(sound.problems().is_empty());
    assert!(log.entries().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_graph_nests_in_a_pipeline_and_a_subgraph_nests_in_a_graph() {
    let log = Arc::new(Log::default());
    let inner = GraphOrchestrator::new("inner")
        .add_node("i", wrap("i", &log))
        .add_edge(START, "i")
        .add_edge("i", END);
    let outer = GraphOrchestrator::new("outer")
        .add_subgraph("sub", inner)
        .add_node("o", wrap("o", &log))
        .add_edge(START, "sub")
        .add_edge("sub", "o")
        .add_edge("o", END);
    let pipeline: Vec<Box<dyn Agent>> = vec![Box::new(OrchestratorAgent::new(
        "graph",
        "a graph as a step",
        outer,
        vec![],
    ))];
    let output = SequentialOrchestrator::new()
        .orchestrate(pipeline, input("x"))
        .await
        .unwrap();
    assert_eq!(output.result, "o(i(x))");
    let graph_record = &output.execution_trace.agent_executions[0];
    let nested = graph_record.nested.as_ref().unwrap();
    assert_eq!(nested.agent_executions[0].agent_name, "sub");
    assert!(
        nested.agent_executions[0].nested.is_some(),
        "the subgraph's own trace"
    );
}

#[tokio::test]
async fn registry_nodes_run_under_the_registrys_metadata_and_node_options_win_over_the_agent() {
    let log = Arc::new(Log::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = {
        let calls = Arc::clone(&calls);
        step("flaky", &log, move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(OrchestrationError::transient("busy"))
        })
    };
    let registry = Arc::new(AgentRegistry::new());
    registry
        .register(
            Box::new(flaky),
            AgentMetadata::new("flaky-1", "flaky", "flaky", "test").with_max_retries(2),
        )
        .await
        .unwrap();
    let config = ExecutionConfig::new().with_backoff(Duration::ZERO, Duration::ZERO);
    let graph = GraphOrchestrator::new("r")
        .with_config(config.clone())
        .add_registry_node("f", Arc::clone(&registry), "flaky-1")
        .add_edge(START, "f")
        .add_edge("f", END);
    assert!(graph.orchestrate(vec![], input("x")).await.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the metadata's two retries"
    );

    let unknown = GraphOrchestrator::new("r")
        .add_registry_node("f", Arc::clone(&registry), "nope")
        .add_edge(START, "f")
        .add_edge("f", END);
    let error = unknown.orchestrate(vec![], input("x")).await.unwrap_err();
    assert!(
        matches!(error, OrchestrationError::Registry(_)),
        "{error:?}"
    );

    calls.store(0, Ordering::SeqCst);
    let counting = {
        let calls = Arc::clone(&calls);
        step("counting", &log, move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(OrchestrationError::transient("busy"))
        })
    };
    let graph = GraphOrchestrator::new("o")
        .with_config(config.with_max_retries(5))
        .add_node_with("c", counting, NodeOptions::new().with_max_retries(1))
        .add_edge(START, "c")
        .add_edge("c", END);
    assert!(graph.orchestrate(vec![], input("x")).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the node's one retry");
}

#[tokio::test]
async fn a_graph_takes_no_agents_from_the_caller() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("g")
        .add_node("a", wrap("a", &log))
        .add_edge(START, "a")
        .add_edge("a", END);
    let error = graph
        .orchestrate(vec![Box::new(wrap("extra", &log))], input("x"))
        .await
        .unwrap_err();
    assert!(invalid_config(&error).contains("pass an empty list"));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_graph_stops_its_running_branches() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("g")
        .add_node("a", slow(wrap("a", &log), Duration::from_secs(60)))
        .add_node("b", slow(wrap("b", &log), Duration::from_secs(60)))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge("a", END)
        .add_edge("b", END);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let error = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Cancelled), "{error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(
        log.running.load(Ordering::SeqCst),
        0,
        "nothing keeps running"
    );
    assert!(log.entries().is_empty());
}

/// Asks `question` (id `id`) once it has seen its input; answers with it.
struct Asker {
    name: &'static str,
    id: &'static str,
    runs: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Asker {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "asks a person"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        // Think a while first, so that siblings get going.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ctx = ExecutionContext::current().expect("inside a run");
        let answer = ctx.ask(self.id, &format!("ok to go on with {}?", input.content))?;
        Ok(AgentOutput::new(format!("{}[{answer}]", input.content)))
    }
}

#[tokio::test(start_paused = true)]
async fn a_question_pauses_the_run_and_resuming_runs_no_finished_step_again() {
    let log = Arc::new(Log::default());
    let asks = Arc::new(AtomicUsize::new(0));
    let graph = GraphOrchestrator::new("approve")
        .add_node("plan", wrap("plan", &log))
        .add_node(
            "approve",
            Asker {
                name: "approve",
                id: "go",
                runs: Arc::clone(&asks),
            },
        )
        .add_node(
            "sibling",
            slow(wrap("sibling", &log), Duration::from_secs(5)),
        )
        .add_node("act", wrap("act", &log))
        .add_edge(START, "plan")
        .add_edge("plan", "approve")
        .add_edge("plan", "sibling")
        .add_edge("approve", "act")
        .add_edge("sibling", "act")
        .add_edge("act", END);
    let started = Instant::now();
    let error = graph.orchestrate(vec![], input("x")).await.unwrap_err();
    let OrchestrationError::InputRequired(pause) = error else {
        panic!("expected InputRequired, got {error:?}");
    };
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "the running sibling finished"
    );
    assert!(!OrchestrationError::InputRequired(pause.clone()).is_retryable());
    assert_eq!(pause.questions.len(), 1);
    assert_eq!(pause.questions[0].id, "go");
    assert_eq!(pause.questions[0].text, "ok to go on with plan(x)?");
    assert_eq!(pause.questions[0].node.as_deref(), Some("approve"));
    let finished: Vec<&str> = pause
        .finished
        .iter()
        .map(|step| step.node.as_str())
        .collect();
    assert_eq!(finished, ["plan", "sibling"]);
    assert_eq!(
        log.entries(),
        ["plan:x", "sibling:plan(x)"],
        "act never started"
    );

    // The pause is plain data: it survives a trip through JSON.
    let pause: claude_agent_sdk::orchestration::Pause =
        serde_json::from_str(&serde_json::to_string(&pause).unwrap()).unwrap();
    let output = graph.resume(pause, [("go", "yes")]).await.unwrap();
    assert_eq!(output.result, "act(plan(x)[yes]\n\nsibling(plan(x)))");
    assert_eq!(
        log.entries(),
        [
            "plan:x",
            "sibling:plan(x)",
            "act:plan(x)[yes]\n\nsibling(plan(x))"
        ],
        "plan and sibling did not run again"
    );
    assert_eq!(
        asks.load(Ordering::SeqCst),
        2,
        "the asking node ran again, with its answer"
    );
    let ran: Vec<_> = output
        .execution_trace
        .agent_executions
        .iter()
        .map(|record| record.agent_name.as_str())
        .collect();
    assert_eq!(ran, ["approve", "act"], "the resumed run's own records");
}

#[tokio::test(start_paused = true)]
async fn a_question_asked_deep_in_a_nested_pipeline_pauses_the_graph() {
    let asks = Arc::new(AtomicUsize::new(0));
    let inner = OrchestratorAgent::new(
        "inner",
        "a pipeline that asks",
        SequentialOrchestrator::new(),
        vec![Box::new(Asker {
            name: "deep",
            id: "deep-q",
            runs: Arc::clone(&asks),
        })],
    );
    let graph = GraphOrchestrator::new("outer")
        .add_node("inner", inner)
        .add_edge(START, "inner")
        .add_edge("inner", END);
    let result = graph.orchestrate(vec![], input("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = result else {
        panic!("the run should pause: {result:?}");
    };
    assert_eq!(pause.questions[0].id, "deep-q");
    let output = graph.resume(*pause, [("deep-q", "fine")]).await.unwrap();
    assert_eq!(output.result, "x[fine]");
}

/// The ids of the questions `result`'s pause asks.
fn asked_ids(result: &Result<OrchestratorOutput>) -> Vec<String> {
    match result {
        Err(OrchestrationError::InputRequired(pause)) => {
            pause.questions.iter().map(|q| q.id.clone()).collect()
        }
        other => panic!("the run should pause: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn every_question_a_nested_fan_out_asks_pauses_the_graph_at_once() {
    let asks = Arc::new(AtomicUsize::new(0));
    let asker = |name: &'static str, id: &'static str| {
        Box::new(Asker {
            name,
            id,
            runs: Arc::clone(&asks),
        }) as Box<dyn Agent>
    };
    let team = OrchestratorAgent::new(
        "team",
        "two agents that ask",
        ParallelOrchestrator::new(),
        vec![asker("legal", "legal-ok"), asker("money", "money-ok")],
    );
    let graph = GraphOrchestrator::new("outer")
        .add_node("team", team)
        .add_edge(START, "team")
        .add_edge("team", END);
    let result = graph.orchestrate(vec![], input("x")).await;
    assert_eq!(asked_ids(&result), ["legal-ok", "money-ok"]);
    let Err(OrchestrationError::InputRequired(pause)) = result else {
        unreachable!()
    };
    let output = graph
        .resume(*pause, [("legal-ok", "yes"), ("money-ok", "fine")])
        .await
        .unwrap_or_else(|e| panic!("both answered: {e}"));
    assert!(output.result.contains("x[yes]"), "{}", output.result);
    assert!(output.result.contains("x[fine]"), "{}", output.result);
    assert_eq!(
        asks.load(Ordering::SeqCst),
        4,
        "each asked once, then answered"
    );
}

#[tokio::test(start_paused = true)]
async fn questions_ready_together_are_asked_together() {
    let log = Arc::new(Log::default());
    // Both questions become ready when `plan` ends; the run pauses at the
    // first, and still asks the second: a person answers both in one go.
    let graph = GraphOrchestrator::new("two asks")
        .add_node("plan", wrap("plan", &log))
        .add_ask("legal", "Legal OK?")
        .add_ask("money", "Budget OK?")
        .add_node("merge", wrap("merge", &log))
        .add_edge(START, "plan")
        .add_edge("plan", "legal")
        .add_edge("plan", "money")
        .add_edge("legal", "merge")
        .add_edge("money", "merge")
        .add_edge("merge", END);
    let result = graph.orchestrate(vec![], input("x")).await;
    assert_eq!(asked_ids(&result), ["legal", "money"]);
    assert_eq!(
        log.calls("merge"),
        0,
        "nothing but questions starts after a pause"
    );
    // Answered in part, it asks the rest; answered, it runs on.
    let Err(OrchestrationError::InputRequired(pause)) = result else {
        unreachable!()
    };
    let again = graph.resume(*pause, [("legal", "yes")]).await;
    assert_eq!(asked_ids(&again), ["money"]);
    let Err(OrchestrationError::InputRequired(pause)) = again else {
        unreachable!()
    };
    let output = graph
        .resume(*pause, [("money", "fine")])
        .await
        .unwrap_or_else(|e| panic!("answered: {e}"));
    assert_eq!(log.calls("plan"), 1);
    assert_eq!(log.calls("merge"), 1);
    assert!(output.result.starts_with("merge("), "{}", output.result);
}

/// Notes the idempotency key of each of its attempts, then asks `q`.
struct Keyed(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl Agent for Keyed {
    fn name(&self) -> &str {
        "keyed"
    }

    fn description(&self) -> &str {
        "notes its key, then asks"
    }

    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let key = ExecutionContext::idempotency_key().expect("inside a run");
        self.0.lock().unwrap().push(key);
        let ctx = ExecutionContext::current().expect("inside a run");
        Ok(AgentOutput::new(ctx.ask("q", "go on?")?))
    }
}

#[tokio::test(start_paused = true)]
async fn a_resumed_pause_keeps_the_idempotency_keys_and_is_resumed_once_per_journal() {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let graph = GraphOrchestrator::new("keyed")
        .add_node("keyed", Keyed(Arc::clone(&keys)))
        .add_edge(START, "keyed")
        .add_edge("keyed", END);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let paused = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the run pauses: {paused:?}")
    };
    let first = *ctx.run_ids().last().expect("a run");
    assert_eq!(pause.run, Some(first));
    let output = graph
        .resume_in((*pause).clone(), [("q", "yes")], &ctx)
        .await
        .unwrap_or_else(|e| panic!("answered: {e}"));
    assert_eq!(output.result, "yes");
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the step that asks again keeps its key");
    // Its journal links the runs: the pause was resumed, once.
    let again = graph.resume_in(*pause, [("q", "no")], &ctx).await;
    let Err(OrchestrationError::InvalidConfig(message)) = again else {
        panic!("a second resume under one journal is refused: {again:?}")
    };
    assert!(message.contains("resumed already"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_question_in_a_fan_out_that_tolerates_failures_still_pauses() {
    let asks = Arc::new(AtomicUsize::new(0));
    let team = OrchestratorAgent::new(
        "team",
        "one agent asks, one does not",
        ParallelOrchestrator::new().with_join_policy(JoinPolicy::Any),
        vec![
            Box::new(Asker {
                name: "asker",
                id: "go",
                runs: Arc::clone(&asks),
            }) as Box<dyn Agent>,
            Box::new(SimpleAgent::new("plain", "echoes", |input| {
                Ok(AgentOutput::new(input.content))
            })),
        ],
    );
    let graph = GraphOrchestrator::new("outer")
        .add_node("team", team)
        .add_edge(START, "team")
        .add_edge("team", END);
    let result = graph.orchestrate(vec![], input("x")).await;
    assert_eq!(asked_ids(&result), ["go"]);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_or_timeout_while_a_question_waits_ends_the_run_as_such() {
    let log = Arc::new(Log::default());
    let graph = |timeout: Duration| {
        GraphOrchestrator::new("approve")
            .with_timeout(timeout)
            // The slow step starts first: the question comes while it runs.
            .add_node("slow", slow(wrap("slow", &log), Duration::from_secs(10)))
            .add_ask("approve", "ok?")
            .add_edge(START, "slow")
            .add_edge(START, "approve")
            .add_edge("approve", END)
            .add_edge("slow", END)
    };
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        canceller.cancel();
    });
    let cancelled = graph(Duration::from_secs(60))
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await;
    assert!(
        matches!(cancelled, Err(OrchestrationError::Cancelled)),
        "{cancelled:?}"
    );
    let timed_out = graph(Duration::from_secs(2))
        .orchestrate(vec![], input("x"))
        .await;
    assert!(
        matches!(timed_out, Err(OrchestrationError::Timeout(_))),
        "{timed_out:?}"
    );
}

#[tokio::test]
async fn a_question_node_pauses_until_a_person_answers() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("approve")
        .add_node("draft", wrap("draft", &log))
        .add_ask("approval", "Publish this?")
        .add_node("publish", wrap("publish", &log))
        .add_edge(START, "draft")
        .add_edge("draft", "approval")
        .add_edge("approval", "publish")
        .add_edge("publish", END);
    let Err(OrchestrationError::InputRequired(pause)) = graph.orchestrate(vec![], input("x")).await
    else {
        panic!("the run should pause");
    };
    assert_eq!(pause.questions[0].id, "approval");
    assert_eq!(pause.questions[0].text, "Publish this?\n\ndraft(x)");
    let output = graph.resume(*pause, [("approval", "yes")]).await.unwrap();
    assert_eq!(output.result, "publish(yes)");
    assert_eq!(log.entries(), ["draft:x", "publish:yes"], "draft ran once");
}

#[tokio::test]
async fn a_map_with_fewer_items_than_its_join_needs_says_so() {
    let log = Arc::new(Log::default());
    let graph = GraphOrchestrator::new("research")
        .add_map("each", wrap("each", &log), Split::Lines)
        .with_join("each", JoinPolicy::AtLeast(5))
        .add_edge(START, "each")
        .add_edge("each", END);
    let error = graph
        .orchestrate(vec![], input("a\nb\nc"))
        .await
        .expect_err("three items cannot make five successes");
    let message = error.to_string();
    assert!(
        message.contains("map `each` needs 5 item(s) to succeed")
            && message.contains("split into 3 item(s)"),
        "{message}"
    );
    assert_eq!(log.calls("each"), 3);
}

#[tokio::test]
async fn a_graph_runs_on_plain_text_without_an_agent_list() {
    let graph = GraphOrchestrator::new("echo")
        .add_node(
            "shout",
            SimpleAgent::new("shout", "upper-cases", |input| {
                Ok(AgentOutput::new(input.content.to_uppercase()))
            }),
        )
        .add_ask("check", "Good?")
        .add_edge(START, "shout")
        .add_edge("shout", "check")
        .add_edge("check", END);

    let ctx = ExecutionContext::new(ExecutionConfig::default());
    let paused = graph.invoke_in("hi", &ctx).await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the run asks: {paused:?}");
    };
    assert_eq!(pause.input.as_ref().map(|i| i.content.as_str()), Some("hi"));
    let run = pause.run.expect("the pause names its run");
    let waiting = Question::waiting_in(ctx.journal().as_ref(), run)
        .await
        .expect("read");
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].text.starts_with("Good?\n\nHI"), "{waiting:?}");

    ctx.answer("check", "yes");
    let output = graph
        .invoke_in(String::from("hi"), &ctx)
        .await
        .expect("answered");
    assert_eq!(output.result, "yes");
    let once_more = graph.invoke("hi").await;
    assert!(
        matches!(once_more, Err(OrchestrationError::InputRequired(_))),
        "a fresh context has no answer: {once_more:?}"
    );
}
