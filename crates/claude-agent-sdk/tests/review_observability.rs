//! Observability as a user wires it: `tracing` spans nest as the runs do —
//! an attempt's span inside its run's span, whatever task the attempt runs
//! on, and a nested run's span inside the attempt that runs it.
#![cfg(feature = "tracing")]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, GraphOrchestrator,
    Orchestrator, OrchestratorAgent, OrchestratorInput, ParallelOrchestrator, Result, Route,
    SequentialOrchestrator, Split, END, START,
};
use common::{echo, Echo};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One test at a time: `tracing` caches whether a span is wanted per call
/// site, across threads, and a test on another thread (with no subscriber)
/// can make a subscriber set for this one miss spans.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every span created, as `name <- parent name` (`-` for a root span).
#[derive(Clone, Default)]
struct Parents(Arc<Mutex<Vec<String>>>);

impl<S> Layer<S> for Parents
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span.parent().map_or("-", |parent| parent.name());
        self.0
            .lock()
            .unwrap()
            .push(format!("{} <- {parent}", span.name()));
    }
}

impl Parents {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Runs `run` with a subscriber that records each span's parent.
async fn spans_of<F: std::future::Future<Output = ()>>(run: F) -> Vec<String> {
    let parents = Parents::default();
    let subscriber = tracing_subscriber::registry().with(parents.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    run.await;
    parents.seen()
}

/// Asserts that `spans` hold `count` attempt spans, each a child of its
/// run's span.
fn assert_attempts_are_children_of_the_run(spans: &[String], count: usize) {
    let attempts: Vec<&String> = spans
        .iter()
        .filter(|s| s.starts_with("agent_attempt"))
        .collect();
    assert_eq!(attempts.len(), count, "{spans:?}");
    for attempt in attempts {
        assert_eq!(attempt, "agent_attempt <- orchestration", "{spans:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn attempt_spans_of_a_fan_out_are_children_of_its_run_span() {
    let _serial = SERIAL.lock().await;
    let spans = spans_of(async {
        ParallelOrchestrator::new()
            .orchestrate(vec![echo("a"), echo("b")], OrchestratorInput::new("x"))
            .await
            .unwrap();
    })
    .await;
    assert_attempts_are_children_of_the_run(&spans, 2);
}

#[tokio::test(start_paused = true)]
async fn attempt_spans_of_a_pipeline_are_children_of_its_run_span() {
    let _serial = SERIAL.lock().await;
    let spans = spans_of(async {
        SequentialOrchestrator::new()
            .orchestrate(vec![echo("a"), echo("b")], OrchestratorInput::new("x"))
            .await
            .unwrap();
    })
    .await;
    assert_attempts_are_children_of_the_run(&spans, 2);
}

#[tokio::test(start_paused = true)]
async fn a_nested_runs_span_is_a_child_of_the_attempt_that_runs_it() {
    let _serial = SERIAL.lock().await;
    let spans = spans_of(async {
        let nested = OrchestratorAgent::new(
            "fan",
            "",
            ParallelOrchestrator::new(),
            vec![echo("a"), echo("b")],
        );
        ParallelOrchestrator::new()
            .orchestrate(
                vec![Box::new(nested), echo("c")],
                OrchestratorInput::new("x"),
            )
            .await
            .unwrap();
    })
    .await;
    let count = |line: &str| spans.iter().filter(|s| *s == line).count();
    assert_eq!(count("orchestration <- -"), 1, "{spans:?}");
    assert_eq!(count("orchestration <- agent_attempt"), 1, "{spans:?}");
    assert_eq!(count("agent_attempt <- orchestration"), 4, "{spans:?}");
}

#[tokio::test(start_paused = true)]
async fn attempt_spans_of_a_graphs_router_and_map_items_are_children_of_its_run_span() {
    let _serial = SERIAL.lock().await;
    let spans = spans_of(async {
        let graph = GraphOrchestrator::new("g")
            .add_node("split", Echo("split"))
            .add_map(
                "each",
                Echo("each"),
                Split::custom(|_| Ok(vec!["1".into(), "2".into()])),
            )
            .add_node("other", Echo("other"))
            .add_edge(START, "split")
            .add_router("split", ["each", "other"], |_| Route::to("each"))
            .add_edge("each", END)
            .add_edge("other", END);
        graph
            .orchestrate(vec![], OrchestratorInput::new("x"))
            .await
            .unwrap();
    })
    .await;
    let attempts: Vec<&String> = spans
        .iter()
        .filter(|s| s.starts_with("agent_attempt"))
        .collect();
    // `split`, then each of the map's two items.
    assert_eq!(attempts.len(), 3, "{spans:?}");
    for attempt in attempts {
        assert_eq!(attempt, "agent_attempt <- orchestration", "{spans:?}");
    }
}

/// Creates a span of its own in a task spawned with the context.
struct Spawner;

#[async_trait]
impl Agent for Spawner {
    fn name(&self) -> &str {
        "spawner"
    }
    fn description(&self) -> &str {
        "works in a task of its own"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        ExecutionContext::spawn(async {
            let _work = tracing::info_span!("own_work").entered();
        })
        .await
        .ok();
        Ok(AgentOutput::new("done"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_spawned_with_the_context_keeps_the_attempts_span() {
    let _serial = SERIAL.lock().await;
    let spans = spans_of(async {
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        SequentialOrchestrator::new()
            .orchestrate_with_context(vec![Box::new(Spawner)], OrchestratorInput::new("x"), &ctx)
            .await
            .unwrap();
    })
    .await;
    assert!(
        spans.iter().any(|s| s == "own_work <- agent_attempt"),
        "{spans:?}"
    );
}

/// The `run_id` recorded on each `orchestration` span.
#[derive(Clone, Default)]
struct RunIds(Arc<Mutex<Vec<String>>>);

struct RunIdField<'a>(&'a mut Option<String>);

impl tracing::field::Visit for RunIdField<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "run_id" {
            *self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for RunIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if ctx
            .span(id)
            .is_some_and(|span| span.name() == "orchestration")
        {
            let mut run = None;
            values.record(&mut RunIdField(&mut run));
            self.0.lock().unwrap().extend(run);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_span_names_the_run_id_its_events_and_journal_name() {
    let _serial = SERIAL.lock().await;
    let ids = RunIds::default();
    let subscriber = tracing_subscriber::registry().with(ids.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let nested = OrchestratorAgent::new("fan", "", ParallelOrchestrator::new(), vec![echo("a")]);
    SequentialOrchestrator::new()
        .orchestrate_with_context(vec![Box::new(nested)], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    let recorded = ids.0.lock().unwrap().clone();
    let runs: Vec<String> = ctx.run_ids().iter().map(ToString::to_string).collect();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(recorded[0], runs[0], "the outer run is the first");
    assert!(
        runs.iter().all(|run| recorded.contains(run)),
        "{recorded:?} {runs:?}"
    );
}

// ---------------------------------------------------------------------------
// The observer's books: every attempt that starts finishes once, in order.
// ---------------------------------------------------------------------------

mod books {
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    use claude_agent_sdk::orchestration::{
        ExecutionContext, NodeId, ParentAttempt, RunEvent, RunId, RunObserver,
    };

    /// Checks the rules of the events as they come; keeps what broke them.
    #[derive(Default)]
    pub struct Books {
        state: Mutex<State>,
        /// Cancels this context when an attempt of the named agent finishes.
        pub cancel_on: Mutex<Option<(String, ExecutionContext)>>,
    }

    #[derive(Default)]
    struct State {
        running: HashSet<RunId>,
        ended: HashSet<RunId>,
        parents: HashMap<RunId, ParentAttempt>,
        open: HashMap<(RunId, NodeId), (u32, u32)>,
        last_attempt: HashMap<(RunId, NodeId), u32>,
        retry: HashMap<(RunId, NodeId), u32>,
        pub started: usize,
        pub finished: usize,
        pub problems: Vec<String>,
        pub last: Option<String>,
    }

    impl Books {
        pub fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }

        /// (attempts started, attempts finished, what broke the rules).
        pub fn summary(&self) -> (usize, usize, Vec<String>) {
            let state = self.state.lock().unwrap();
            let mut problems = state.problems.clone();
            for ((run, node), (attempt, _)) in &state.open {
                problems.push(format!("{run:?} {node:?} attempt {attempt} never finished"));
            }
            for run in &state.running {
                problems.push(format!("{run:?} never finished"));
            }
            (state.started, state.finished, problems)
        }
    }

    impl RunObserver for Books {
        fn on_event(&self, event: &RunEvent<'_>) {
            let mut cancel = None;
            {
                let mut s = self.state.lock().unwrap();
                let s = &mut *s;
                let mut problem = |text: String| s.problems.push(text);
                match *event {
                    RunEvent::RunStarted { run, parent, .. } => {
                        if !s.running.insert(run) || s.ended.contains(&run) {
                            problem(format!("{run:?} started twice"));
                        }
                        if let Some(parent) = parent {
                            let open = s.open.get(&(parent.run, parent.node));
                            if open.map(|(attempt, _)| *attempt) != Some(parent.attempt) {
                                problem(format!("{run:?} nested in {parent:?}, not running"));
                            }
                            s.parents.insert(run, parent);
                        }
                    }
                    RunEvent::RunFinished { run, .. } => {
                        if !s.running.remove(&run) {
                            problem(format!("{run:?} finished but was not running"));
                        }
                        s.ended.insert(run);
                        if s.open.keys().any(|(open_run, _)| *open_run == run) {
                            problem(format!("{run:?} finished with attempts open"));
                        }
                        if s.running
                            .iter()
                            .any(|r| s.parents.get(r).is_some_and(|p| p.run == run))
                        {
                            problem(format!("{run:?} finished before a run nested in it"));
                        }
                    }
                    RunEvent::AttemptStarted {
                        run,
                        node,
                        attempt,
                        max_attempts,
                        ..
                    } => {
                        s.started += 1;
                        if !s.running.contains(&run) {
                            problem(format!("{run:?} {node:?}: attempt outside its run"));
                        }
                        let before = s.last_attempt.get(&(run, node)).copied().unwrap_or(0);
                        if attempt != before + 1 || attempt > max_attempts {
                            problem(format!(
                                "{run:?} {node:?}: attempt {attempt}/{max_attempts} after {before}"
                            ));
                        }
                        if attempt > 1 && s.retry.remove(&(run, node)) != Some(attempt) {
                            problem(format!("{run:?} {node:?}: attempt {attempt} unannounced"));
                        }
                        s.last_attempt.insert((run, node), attempt);
                        if s.open
                            .insert((run, node), (attempt, max_attempts))
                            .is_some()
                        {
                            problem(format!("{run:?} {node:?}: two attempts open"));
                        }
                    }
                    RunEvent::AttemptFinished {
                        run,
                        node,
                        agent,
                        attempt,
                        ..
                    } => {
                        s.finished += 1;
                        match s.open.remove(&(run, node)) {
                            Some((open, _)) if open == attempt => {}
                            other => problem(format!(
                                "{run:?} {node:?}: attempt {attempt} finished, open {other:?}"
                            )),
                        }
                        let nested_open = s.running.iter().any(|r| {
                            s.parents.get(r).is_some_and(|p| {
                                p.run == run && p.node == node && p.attempt == attempt
                            })
                        });
                        if nested_open {
                            problem(format!("{agent} {attempt} finished before its nested run"));
                        }
                        if let Some((name, ctx)) = &*self.cancel_on.lock().unwrap() {
                            if name == agent {
                                cancel = Some(ctx.clone());
                            }
                        }
                    }
                    RunEvent::RetryScheduled {
                        run,
                        node,
                        next_attempt,
                        ..
                    } => {
                        if s.open.contains_key(&(run, node))
                            || s.last_attempt.get(&(run, node)).copied() != Some(next_attempt - 1)
                        {
                            problem(format!(
                                "{run:?} {node:?}: retry {next_attempt} out of turn"
                            ));
                        }
                        s.retry.insert((run, node), next_attempt);
                    }
                    _ => {}
                }
                s.last = Some(format!("{event:?}"));
            }
            // Cancelling from inside the observer, as a "stop when it costs
            // too much" observer does.
            if let Some(ctx) = cancel {
                ctx.cancel();
            }
        }
    }
}

use std::time::Duration;

use books::Books;
use claude_agent_sdk::orchestration::{OrchestrationError, RunBudget};
use common::{sleeper, transient, Scripted, Step};

#[tokio::test(start_paused = true)]
async fn an_observer_that_cancels_the_run_closes_every_attempt_once() {
    let _serial = SERIAL.lock().await;
    let books = Books::new();
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(books.clone());
    *books.cancel_on.lock().unwrap() = Some(("fast".into(), ctx.clone()));
    let (slow, _) = sleeper("slow", Duration::from_secs(60));
    let (slower, _) = sleeper("slower", Duration::from_secs(120));
    let nested = OrchestratorAgent::new(
        "group",
        "",
        ParallelOrchestrator::new(),
        vec![sleeper("inner", Duration::from_secs(60)).0, echo("quick")],
    );
    let result = ParallelOrchestrator::new()
        .orchestrate_with_context(
            vec![
                sleeper("fast", Duration::from_secs(1)).0,
                slow,
                slower,
                Box::new(nested),
            ],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    let (started, finished, problems) = books.summary();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(started, finished);
    assert_eq!(started, 6);
}

#[tokio::test(start_paused = true)]
async fn timeouts_retries_and_nested_runs_keep_the_observers_books_balanced() {
    let _serial = SERIAL.lock().await;
    let books = Books::new();
    let config = ExecutionConfig::new()
        .with_max_retries(2)
        .with_agent_timeout(Duration::from_secs(5))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(10));
    let ctx = ExecutionContext::new(config.clone()).with_observer(books.clone());
    let (flaky, _) = Scripted::new(
        "flaky",
        [
            Step::Fail(transient("busy")),
            Step::Sleep(Duration::from_secs(60)),
            Step::Ok("ok"),
        ],
    )
    .boxed();
    let (stuck, _) = sleeper("stuck", Duration::from_secs(60));
    let (panics, _) = Scripted::new("panics", [Step::Panic("boom")]).boxed();
    let nested = OrchestratorAgent::new(
        "group",
        "",
        ParallelOrchestrator::new().with_config(config.clone()),
        vec![flaky, panics],
    );
    let result = SequentialOrchestrator::new()
        .with_config(config)
        .orchestrate_with_context(
            vec![Box::new(nested), stuck],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    assert!(result.is_err());
    let (started, finished, problems) = books.summary();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(started, finished);
}

#[tokio::test(start_paused = true)]
async fn a_graphs_loop_map_and_budget_keep_the_observers_books_balanced() {
    let _serial = SERIAL.lock().await;
    let books = Books::new();
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_max_retries(1))
        .with_observer(books.clone());
    let (item, _) = Scripted::new(
        "item",
        [
            Step::Ok("a"),
            Step::Fail(transient("busy")),
            Step::Sleep(Duration::from_secs(1)),
        ],
    )
    .boxed();
    let graph = GraphOrchestrator::new("g")
        .add_node("plan", Echo("plan"))
        .add_map(
            "each",
            BoxedAgent(item),
            Split::custom(|_| Ok(vec!["1".into(), "2".into(), "3".into()])),
        )
        .add_node("check", Echo("check"))
        .add_edge(START, "plan")
        .add_edge("plan", "each")
        .add_edge("each", "check")
        .add_edge("check", END)
        .add_loop("check", "plan", 5, |_| true)
        .with_budget(RunBudget::new().with_max_steps(9));
    let result = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await;
    let (started, finished, problems) = books.summary();
    assert!(problems.is_empty(), "{problems:#?} {result:?}");
    assert_eq!(started, finished);
    assert!(started >= 4, "{result:?}");
}

/// A boxed agent, as a graph node.
struct BoxedAgent(Box<dyn Agent>);

#[async_trait]
impl Agent for BoxedAgent {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn description(&self) -> &str {
        self.0.description()
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.0.execute(input).await
    }
}

/// Asks a question of the human running it; goes on once it is answered.
struct Asker;

#[async_trait]
impl Agent for Asker {
    fn name(&self) -> &str {
        "asker"
    }
    fn description(&self) -> &str {
        "needs an answer"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("runs under a context");
        ctx.ask("go", "Go on?").map(AgentOutput::new)
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_for_an_answer_and_the_run_that_resumes_keep_the_observers_books_balanced() {
    let _serial = SERIAL.lock().await;
    let books = Books::new();
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(books.clone());
    let graph = || {
        GraphOrchestrator::new("g")
            .add_node(
                "slow",
                BoxedAgent(sleeper("slow", Duration::from_secs(3)).0),
            )
            .add_node("asker", Asker)
            .add_node("after", Echo("after"))
            .add_edge(START, "slow")
            .add_edge(START, "asker")
            .add_edge("slow", "after")
            .add_edge("asker", "after")
            .add_edge("after", END)
    };
    let paused = graph()
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("expected a pause, got {paused:?}");
    };
    let (started, finished, problems) = books.summary();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(started, finished);
    let resumed = graph().resume_in(*pause, [("go", "yes")], &ctx).await;
    let (started, finished, problems) = books.summary();
    assert!(problems.is_empty(), "{problems:#?} {resumed:?}");
    assert_eq!(started, finished);
    assert!(resumed.is_ok(), "{resumed:?}");
}
