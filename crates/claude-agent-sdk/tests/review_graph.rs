//! Faults an adversarial review of the graph API found (session 20), with
//! features combined — loops in loops, routers leaving loops, subgraphs in
//! maps and loops, pauses — one regression test each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, GraphOrchestrator,
    JoinPolicy, OrchestrationError, Orchestrator, OrchestratorInput, Result, Route, SimpleAgent,
    Split, END, START,
};

type Calls = Arc<Mutex<Vec<String>>>;

fn calls() -> Calls {
    Arc::new(Mutex::new(Vec::new()))
}

fn names(calls: &Calls) -> Vec<String> {
    calls.lock().unwrap().clone()
}

/// Logs `name:input` and answers `name(input)`.
fn wrap(name: &'static str, calls: &Calls) -> impl Agent + 'static {
    let calls = Arc::clone(calls);
    SimpleAgent::new(name, "", move |input| {
        calls
            .lock()
            .unwrap()
            .push(format!("{name}:{}", input.content));
        Ok(AgentOutput::new(format!("{name}({})", input.content)))
    })
}

fn input(text: &str) -> OrchestratorInput {
    OrchestratorInput::new(text)
}

/// Asks question `id`, answers `name:<answer>`.
struct Asks {
    name: &'static str,
    id: &'static str,
    calls: Calls,
}

#[async_trait]
impl Agent for Asks {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "asks"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}:{}", self.name, input.content));
        let ctx = ExecutionContext::current().expect("in a run");
        let answer = ctx.ask(self.id, "?")?;
        Ok(AgentOutput::new(format!(
            "{}[{}]:{answer}",
            self.name, input.content
        )))
    }
    fn max_retries(&self) -> Option<usize> {
        Some(0)
    }
}

/// Increments state `n`, answers `inc<n>`.
struct Inc {
    calls: Calls,
}

#[async_trait]
impl Agent for Inc {
    fn name(&self) -> &str {
        "inc"
    }
    fn description(&self) -> &str {
        "counts"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("in a run");
        let n = ctx
            .update_state("n", |slot| {
                let n = slot
                    .as_ref()
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
                    + 1;
                *slot = Some(serde_json::json!(n));
                n
            })
            .await;
        self.calls.lock().unwrap().push(format!("inc{n}"));
        Ok(AgentOutput::new(format!("inc{n}")))
    }
}

#[tokio::test(start_paused = true)]
async fn an_inner_loop_goes_round_again_on_every_pass_of_the_outer_loop() {
    let log = calls();
    let graph = GraphOrchestrator::new("g")
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_node("c", wrap("c", &log))
        .add_node("d", wrap("d", &log))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", "c")
        .add_edge("c", "d")
        .add_loop("c", "b", 2, |_| true)
        .add_loop("d", "a", 2, |_| true)
        .add_edge("d", END);
    graph.orchestrate(vec![], input("x")).await.expect("runs");
    let runs: Vec<String> = names(&log)
        .iter()
        .map(|c| c.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        runs,
        ["a", "b", "c", "b", "c", "d", "a", "b", "c", "b", "c", "d"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_keeps_the_loop_decisions_made_before_the_pause() {
    let log = calls();
    let graph = GraphOrchestrator::new("g")
        .add_node(
            "inc",
            Inc {
                calls: Arc::clone(&log),
            },
        )
        .add_node(
            "ask",
            Asks {
                name: "ask",
                id: "q",
                calls: Arc::clone(&log),
            },
        )
        .add_edge(START, "inc")
        .add_loop("inc", "inc", 5, |route| {
            route
                .state("n")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                < 2
        })
        .add_edge("inc", "ask")
        .add_edge("ask", END);
    let first = graph.orchestrate(vec![], input("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = first else {
        panic!("pauses: {first:?}");
    };
    let output = graph.resume(*pause, [("q", "yes")]).await.expect("ends");
    assert_eq!(output.result, "ask[inc2]:yes");
}

#[tokio::test(start_paused = true)]
async fn a_question_node_in_a_subgraph_in_a_loop_asks_again_on_every_pass() {
    let inner = GraphOrchestrator::new("inner")
        .add_ask("review", "ok?")
        .add_edge(START, "review")
        .add_edge("review", END);
    let log = calls();
    let graph = GraphOrchestrator::new("g")
        .add_node("w", wrap("w", &log))
        .add_subgraph("sub", inner)
        .add_edge(START, "w")
        .add_edge("w", "sub")
        .add_loop("sub", "w", 3, |route| route.output.content != "yes")
        .add_edge("sub", END);
    let first = graph.orchestrate(vec![], input("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = first else {
        panic!("pauses: {first:?}");
    };
    let second = graph.resume(*pause, [("review", "more")]).await;
    assert!(
        matches!(second, Err(OrchestrationError::InputRequired(_))),
        "pass 2 must ask again, not reuse pass 1's answer: {second:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn map_items_that_run_a_subgraph_each_keep_their_own_finished_steps_on_resume() {
    let log = calls();
    let inner = GraphOrchestrator::new("inner")
        .add_node(
            "prep",
            Slow {
                name: "prep",
                calls: Arc::clone(&log),
            },
        )
        .add_node(
            "ask",
            Asks {
                name: "ask",
                id: "q",
                calls: Arc::clone(&log),
            },
        )
        .add_edge(START, "prep")
        .add_edge("prep", "ask")
        .add_edge("ask", END);
    let sub = claude_agent_sdk::orchestration::OrchestratorAgent::new("sub", "", inner, vec![]);
    let graph = GraphOrchestrator::new("g")
        .add_map("m", sub, Split::Lines)
        .add_edge(START, "m")
        .add_edge("m", END);
    let first = graph.orchestrate(vec![], input("x\ny")).await;
    let Err(OrchestrationError::InputRequired(pause)) = first else {
        panic!("pauses: {first:?}");
    };
    let preps_before = names(&log).iter().filter(|c| c.starts_with("prep")).count();
    assert_eq!(preps_before, 2, "{:?}", names(&log));
    let output = graph.resume(*pause, [("q", "ok")]).await.expect("ends");
    assert_eq!(output.result, "ask[prep(x)]:ok\n\nask[prep(y)]:ok");
    let preps = names(&log).iter().filter(|c| c.starts_with("prep")).count();
    assert_eq!(preps, 2, "no prep runs again: {:?}", names(&log));
}

/// Sleeps a second, logs `name:input`, answers `name(input)`.
struct Slow {
    name: &'static str,
    calls: Calls,
}

#[async_trait]
impl Agent for Slow {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "slow"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}:{}", self.name, input.content));
        Ok(AgentOutput::new(format!(
            "{}({})",
            self.name, input.content
        )))
    }
}

// ----------------------------------------------------------------

/// Asks question `q<item>` for items in `asking`, answers `<item>:<answer>`;
/// others answer `<item>` after `delay`.
struct ItemAsker {
    asking: &'static [&'static str],
    shared_id: Option<&'static str>,
    delay: Duration,
    calls: Calls,
}

#[async_trait]
impl Agent for ItemAsker {
    fn name(&self) -> &str {
        "item"
    }
    fn description(&self) -> &str {
        ""
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls.lock().unwrap().push(input.content.clone());
        tokio::time::sleep(self.delay).await;
        if self.asking.contains(&input.content.as_str()) {
            let ctx = ExecutionContext::current().expect("in a run");
            let id = self
                .shared_id
                .map_or_else(|| format!("q{}", input.content), str::to_owned);
            let answer = ctx.ask(&id, "?")?;
            return Ok(AgentOutput::new(format!("{}:{answer}", input.content)));
        }
        Ok(AgentOutput::new(input.content))
    }
    fn max_retries(&self) -> Option<usize> {
        Some(0)
    }
}

#[tokio::test(start_paused = true)]
async fn map_items_asking_the_same_question_pause_with_it_once() {
    let log = calls();
    let graph = GraphOrchestrator::new("g")
        .add_map(
            "m",
            ItemAsker {
                asking: &["a", "b"],
                shared_id: Some("approve"),
                delay: Duration::from_secs(1),
                calls: Arc::clone(&log),
            },
            Split::Lines,
        )
        .add_edge(START, "m")
        .add_edge("m", END);
    let first = graph.orchestrate(vec![], input("a\nb")).await;
    let Err(OrchestrationError::InputRequired(pause)) = first else {
        panic!("pauses: {first:?}");
    };
    let ids: Vec<&str> = pause.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["approve"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_update_state_keeps_the_value_it_was_given() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    ctx.set_state("k", serde_json::json!(1)).await;
    let result = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            ctx.update_state("k", |_slot| -> () { panic!("user bug") })
                .await;
        })
        .await
    };
    assert!(result.is_err());
    assert_eq!(ctx.get_state("k").await, Some(serde_json::json!(1)));
}

/// An agent whose state update changes the value, then panics.
struct HalfUpdater;

#[async_trait]
impl Agent for HalfUpdater {
    fn name(&self) -> &str {
        "half"
    }
    fn description(&self) -> &str {
        "changes a key, then panics"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        if let Some(ctx) = ExecutionContext::current() {
            ctx.update_state("k", |slot| {
                *slot = Some(serde_json::json!(2));
                panic!("user bug after the change")
            })
            .await;
        }
        Ok(AgentOutput::new(input.content))
    }
}

#[tokio::test(start_paused = true)]
async fn a_state_update_that_panics_is_journaled_as_what_it_left() {
    use claude_agent_sdk::orchestration::{EventKind, InMemoryJournal, StateChange};
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    ctx.set_state("k", serde_json::json!(1)).await;
    let graph = GraphOrchestrator::new("g")
        .add_node("half", HalfUpdater)
        .add_edge(START, "half")
        .add_edge("half", END);
    let ran = graph
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await;
    assert!(ran.is_err(), "the panic fails the step: {ran:?}");
    // What a resumed run would replay is what the context holds.
    let journaled: Vec<StateChange> = journal
        .events()
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::StateChanged { key, change, .. } if key == "k" => Some(change),
            _ => None,
        })
        .collect();
    let held = ctx.get_state("k").await;
    assert_eq!(held, Some(serde_json::json!(2)));
    assert!(
        matches!(journaled.last(), Some(StateChange::Set(value)) if Some(value) == held.as_ref()),
        "{journaled:?}"
    );
}

// ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_map_joined_at_least_three_with_two_items_fails() {
    let graph = GraphOrchestrator::new("g")
        .add_map(
            "m",
            SimpleAgent::new("m", "", |i| Ok(AgentOutput::new(i.content))),
            Split::Lines,
        )
        .with_join("m", JoinPolicy::AtLeast(3))
        .add_edge(START, "m")
        .add_edge("m", END);
    let result = graph.orchestrate(vec![], input("a\nb")).await;
    assert!(
        result.is_err(),
        "3 successes were required of 2 items: {result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_router_leaving_a_loop_early_ends_the_run_with_the_exit_branch() {
    let log = calls();
    let graph = GraphOrchestrator::new("g")
        .add_node("r", wrap("r", &log))
        .add_node("work", wrap("work", &log))
        .add_node("exit", wrap("exit", &log))
        .add_edge(START, "r")
        .add_router("r", ["work", "exit"], |route| {
            if route.iteration >= 2 {
                Route::to("exit")
            } else {
                Route::to("work")
            }
        })
        .add_loop("work", "r", 5, |_| true)
        .add_edge("work", END)
        .add_edge("exit", END);
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        graph.orchestrate(vec![], input("x")),
    )
    .await
    .expect("no hang")
    .expect("runs");
    assert_eq!(output.result, "exit(r(work(r(x))))");
}

#[tokio::test(start_paused = true)]
async fn a_join_after_a_loop_fed_from_inside_it_runs_once_on_the_last_pass() {
    // `b` (in the loop) and `c` (closing it) both feed `j`, after the loop.
    let log = calls();
    let graph = GraphOrchestrator::new("g")
        .add_node("a", wrap("a", &log))
        .add_node("b", wrap("b", &log))
        .add_node("c", wrap("c", &log))
        .add_node("j", wrap("j", &log))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", "c")
        .add_edge("b", "j")
        .add_edge("c", "j")
        .add_loop("c", "a", 3, |_| true)
        .add_edge("j", END);
    let output = graph.orchestrate(vec![], input("x")).await.expect("runs");
    let joins = names(&log).iter().filter(|c| c.starts_with("j:")).count();
    assert_eq!(joins, 1, "{:?}", names(&log));
    let last_b = "b(a(c(b(a(c(b(a(x))))))))";
    assert_eq!(
        output.result,
        format!("j({last_b}\n\nc({last_b}))"),
        "the join gets the last pass's outputs"
    );
}
