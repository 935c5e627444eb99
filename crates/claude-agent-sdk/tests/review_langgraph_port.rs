#![cfg(feature = "sqlite")]
//! A LangGraph app ported to `claude_agent_sdk::orchestration`, written from
//! the user-facing docs alone (README, docs/durability.md, docs/agents.md and
//! the module's rustdoc), by someone who knows LangGraph.
//!
//! The app: a supervisor routes a request to one of three workers
//! (`billing`, `research`, `coder`); `research` loops with a `critic` up to N
//! passes; `coder`'s patch needs a person's approval before the expensive
//! `deploy`; runs are kept in a SQLite file, so a paused or crashed run goes
//! on later in another process; and a web UI follows a run live (which node
//! runs, tokens and cost so far).
//!
//! Model calls are stand-ins (`FakeLlm`) that report usage with
//! `AgentOutput::with_usage`. "Another process" is a fresh `SqliteJournal`
//! handle on the same file, a fresh `ExecutionContext` and a freshly built
//! graph — nothing shared with the first but the file (and the call counters
//! the tests use to prove nothing ran twice).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::store::{RunStatus, RunSummary, SqliteJournal};
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentError, AgentInput, AgentOutput, AttemptOutcome, Budget, EventKind,
    ExecutionConfig, ExecutionContext, GraphOrchestrator, Journal, OrchestrationError,
    OrchestratorOutput, Question, Result, Route, RunBudget, RunEvent, RunId, RunObserver, Usage,
    END, START,
};
use tokio::sync::{Notify, Semaphore};

// ------------------------------------------------------------------ the app

/// The id under which `approve` asks for a person's go-ahead.
const APPROVAL: &str = "approve-deploy";

/// Every model call of every "process", by agent: how many, and on what.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl Calls {
    /// Records a call of `agent` on `input`; returns its number, from 1.
    fn record(&self, agent: &str, input: &str) -> usize {
        let mut calls = self.0.lock().unwrap();
        let inputs = calls.entry(agent.to_owned()).or_default();
        inputs.push(input.to_owned());
        inputs.len()
    }

    fn count(&self, agent: &str) -> usize {
        self.0.lock().unwrap().get(agent).map_or(0, Vec::len)
    }

    fn inputs(&self, agent: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .get(agent)
            .cloned()
            .unwrap_or_default()
    }
}

/// Holds an agent until the test lets it go, and tells the test it got there.
struct Gate {
    reached: Notify,
    open: Semaphore,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            reached: Notify::new(),
            open: Semaphore::new(0),
        })
    }

    async fn pass(&self) {
        self.reached.notify_one();
        self.open.acquire().await.unwrap().forget();
    }

    async fn reached(&self) {
        self.reached.notified().await;
    }

    fn open(&self) {
        self.open.add_permits(1);
    }
}

type Reply = dyn Fn(&str, usize) -> AgentOutput + Send + Sync;

/// A stand-in for an LLM call: answers with `reply(input, call number)` and
/// reports `usage` for every call.
struct FakeLlm {
    name: &'static str,
    usage: Usage,
    reply: Arc<Reply>,
    calls: Calls,
    /// On call `n` (counted over every process), waits at the gate.
    stall: Option<(usize, Arc<Gate>)>,
}

#[async_trait]
impl Agent for FakeLlm {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "a stand-in for a model call"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.record(self.name, &input.content);
        let key = ExecutionContext::idempotency_key().unwrap_or_default();
        self.calls.record(&format!("{}/key", self.name), &key);
        if let Some((on, gate)) = &self.stall {
            if *on == call {
                gate.pass().await;
            }
        }
        Ok((self.reply)(&input.content, call).with_usage(self.usage))
    }
}

/// LangGraph's `interrupt()` inside a node: asks a person to approve the
/// patch it is given, and passes the patch on with the answer.
struct Approval {
    calls: Calls,
}

#[async_trait]
impl Agent for Approval {
    fn name(&self) -> &str {
        "approve"
    }

    fn description(&self) -> &str {
        "asks a person before the expensive deploy"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls.record("approve", &input.content);
        let ctx = ExecutionContext::current().ok_or_else(|| AgentError::new("runs in a run"))?;
        let answer = ctx.ask(APPROVAL, &format!("Deploy {}?", input.content))?;
        Ok(AgentOutput::new(input.content).with_metadata("answer", answer))
    }
}

/// What each model call costs.
const SUPERVISOR: (u64, u64, f64) = (100, 10, 0.001);
const WORKER: (u64, u64, f64) = (400, 100, 0.01);
const CRITIC: (u64, u64, f64) = (300, 20, 0.005);
const DEPLOY: (u64, u64, f64) = (1_000, 500, 0.25);

fn usage((input, output, cost): (u64, u64, f64)) -> Usage {
    Usage::new(input, output).with_cost_usd(cost)
}

fn tokens((input, output, _): (u64, u64, f64)) -> u64 {
    input + output
}

/// Which worker the supervisor picks for a request.
fn route_for(request: &str) -> &'static str {
    if request.contains("invoice") || request.contains("refund") {
        "billing"
    } else if request.contains("bug") || request.contains("fix") {
        "coder"
    } else {
        "research"
    }
}

/// How the app is built in one process: the same everywhere but for what
/// the tests stall.
#[derive(Clone)]
struct App {
    calls: Calls,
    /// The critic approves from its `approve_from`th call on (0: never).
    approve_from: usize,
    /// The most research ↔ critic passes.
    max_passes: u32,
    research_stall: Option<(usize, Arc<Gate>)>,
    deploy_stall: Option<(usize, Arc<Gate>)>,
    budget: RunBudget,
}

impl App {
    fn new(calls: &Calls) -> Self {
        Self {
            calls: calls.clone(),
            approve_from: 2,
            max_passes: 3,
            research_stall: None,
            deploy_stall: None,
            budget: RunBudget::new(),
        }
    }

    fn llm(&self, name: &'static str, cost: (u64, u64, f64), reply: Arc<Reply>) -> FakeLlm {
        FakeLlm {
            name,
            usage: usage(cost),
            reply,
            calls: self.calls.clone(),
            stall: None,
        }
    }

    fn graph(&self) -> GraphOrchestrator {
        // The supervisor passes the request on and says where, as a
        // LangGraph supervisor returns `Command(goto=...)`.
        let supervisor = self.llm(
            "supervisor",
            SUPERVISOR,
            Arc::new(|request, _| {
                AgentOutput::new(request).with_metadata("route", route_for(request))
            }),
        );
        let billing = self.llm(
            "billing",
            WORKER,
            Arc::new(|request, _| AgentOutput::new(format!("refund issued for {request}"))),
        );
        let mut research = self.llm(
            "research",
            WORKER,
            Arc::new(|_, call| AgentOutput::new(format!("draft {call}"))),
        );
        research.stall.clone_from(&self.research_stall);
        let approve_from = self.approve_from;
        let critic = self.llm(
            "critic",
            CRITIC,
            Arc::new(move |draft, call| {
                if approve_from != 0 && call >= approve_from {
                    AgentOutput::new(format!("APPROVED: {draft}"))
                } else {
                    AgentOutput::new(format!("REVISE: {draft}"))
                }
            }),
        );
        let coder = self.llm(
            "coder",
            WORKER,
            Arc::new(|request, _| AgentOutput::new(format!("patch for {request}"))),
        );
        let mut deploy = self.llm(
            "deploy",
            DEPLOY,
            Arc::new(|patch, _| {
                let key = ExecutionContext::idempotency_key().unwrap_or_default();
                AgentOutput::new(format!("deployed {patch}")).with_metadata("key", key)
            }),
        );
        deploy.stall.clone_from(&self.deploy_stall);

        GraphOrchestrator::new("support-app")
            .add_node("supervisor", supervisor)
            .add_node("billing", billing)
            .add_node("research", research)
            .add_node("critic", critic)
            .add_node("coder", coder)
            .add_node(
                "approve",
                Approval {
                    calls: self.calls.clone(),
                },
            )
            .add_node("deploy", deploy)
            .add_edge(START, "supervisor")
            // The router: one worker per request.
            .add_router("supervisor", ["billing", "research", "coder"], |route| {
                Route::to(route.output.metadata["route"].clone())
            })
            .add_edge("billing", END)
            // The bounded loop: back to research until the critic approves.
            .add_edge("research", "critic")
            .add_loop("critic", "research", self.max_passes, |route| {
                !route.output.content.starts_with("APPROVED")
            })
            .add_edge("critic", END)
            // Human in the loop before the expensive action.
            .add_edge("coder", "approve")
            .add_router("approve", ["deploy", END], |route| {
                match route.output.metadata.get("answer").map(|a| a.trim()) {
                    Some("yes") => Route::to("deploy"),
                    _ => Route::end(),
                }
            })
            .add_edge("deploy", END)
            .with_budget(self.budget)
    }
}

// ------------------------------------------------------------ the plumbing

/// A folder of its own for a test's SQLite file, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let folder = std::env::temp_dir().join(format!(
            "review_langgraph_port_{name}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        Self(folder)
    }

    fn db(&self) -> PathBuf {
        self.0.join("runs.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One process of the app: its own handle on the store and its own context.
struct Process {
    journal: Arc<SqliteJournal>,
    ctx: ExecutionContext,
}

impl Process {
    async fn start(scratch: &Scratch) -> Self {
        Self::start_observed(scratch, None).await
    }

    async fn start_observed(scratch: &Scratch, observer: Option<Arc<Progress>>) -> Self {
        let journal = Arc::new(
            SqliteJournal::open(scratch.db())
                .await
                .expect("open the store"),
        );
        let mut ctx = ExecutionContext::new(ExecutionConfig::new());
        if let Some(observer) = observer {
            ctx = ctx.with_observer(observer);
        }
        let ctx = ctx.with_journal(journal.clone());
        Self { journal, ctx }
    }

    /// The runs a "waiting for you" page lists: paused, not continued yet.
    async fn waiting_runs(&self) -> Vec<RunSummary> {
        self.journal
            .runs(50)
            .await
            .unwrap()
            .into_iter()
            .filter(|run| run.status == RunStatus::Paused && run.resumed_by.is_none())
            .collect()
    }

    async fn exit(self) {
        self.journal.close().await.expect("close the store");
    }
}

/// A first process takes the app's request until it pauses for approval,
/// then exits: the paused run's id.
async fn pause_in_a_first_process(scratch: &Scratch, app: &App) -> RunId {
    let first = Process::start(scratch).await;
    let run = paused(app.graph().invoke_in("fix the login bug", &first.ctx).await)
        .run
        .expect("a pause names its run");
    first.exit().await;
    run
}

/// The pause a run ended in.
fn paused(outcome: Result<OrchestratorOutput>) -> Box<claude_agent_sdk::orchestration::Pause> {
    match outcome {
        Err(OrchestrationError::InputRequired(pause)) => pause,
        Err(other) => panic!("expected a pause, got the error {other}"),
        Ok(output) => panic!("expected a pause, got the result {:?}", output.result),
    }
}

/// The agent names of a trace's attempts, in order.
fn attempts(output: &OrchestratorOutput) -> Vec<&str> {
    output
        .execution_trace
        .agent_executions
        .iter()
        .map(|record| record.agent_name.as_str())
        .collect()
}

// ------------------------------------------------- a live progress observer

/// What a web UI shows while a run goes on.
#[derive(Debug, Clone, Default)]
struct Screen {
    /// The agents running now.
    running: Vec<String>,
    /// `start X` / `end X`, as heard.
    log: Vec<String>,
    tokens: u64,
    cost_usd: f64,
    runs_started: usize,
    runs_finished: usize,
}

#[derive(Default)]
struct Progress(Mutex<Screen>);

impl Progress {
    fn screen(&self) -> Screen {
        self.0.lock().unwrap().clone()
    }
}

impl RunObserver for Progress {
    fn on_event(&self, event: &RunEvent<'_>) {
        let mut screen = self.0.lock().unwrap();
        match event {
            RunEvent::RunStarted { .. } => screen.runs_started += 1,
            RunEvent::RunFinished { .. } => screen.runs_finished += 1,
            RunEvent::AttemptStarted { agent, .. } => {
                screen.running.push((*agent).to_owned());
                screen.log.push(format!("start {agent}"));
            }
            RunEvent::AttemptFinished { agent, outcome, .. } => {
                if let Some(at) = screen.running.iter().position(|a| a == agent) {
                    screen.running.remove(at);
                }
                if let Ok(output) = outcome {
                    if let Some(usage) = output.usage() {
                        screen.tokens += usage.total_tokens();
                        screen.cost_usd += usage.cost_usd.unwrap_or(0.0);
                    }
                }
                screen.log.push(format!("end {agent}"));
            }
            _ => {}
        }
    }
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ----------------------------------------------------------------- routing

#[tokio::test(start_paused = true)]
async fn supervisor_routes_each_request_to_exactly_one_worker() {
    let calls = Calls::default();
    let graph = App::new(&calls).graph();
    graph.validate().expect("the app's graph is valid");

    let refund = graph.invoke("refund invoice 7").await.unwrap();
    assert_eq!(refund.result, "refund issued for refund invoice 7");
    assert_eq!(attempts(&refund), ["supervisor", "billing"]);

    let fix = graph.invoke("fix the login bug").await;
    let pause = paused(fix);
    assert_eq!(pause.questions.len(), 1);

    let research = graph.invoke("compare vector databases").await.unwrap();
    assert_eq!(research.result, "APPROVED: draft 2");
    assert_eq!(
        attempts(&research),
        ["supervisor", "research", "critic", "research", "critic"]
    );

    // Each request ran its worker alone.
    assert_eq!(calls.count("supervisor"), 3);
    assert_eq!(calls.count("billing"), 1);
    assert_eq!(calls.count("coder"), 1);
    assert_eq!(calls.count("research"), 2);
    assert_eq!(calls.count("deploy"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_router_naming_an_unknown_worker_fails_the_run_and_names_it() {
    let calls = Calls::default();
    let graph = GraphOrchestrator::new("misrouted")
        .add_node(
            "supervisor",
            FakeLlm {
                name: "supervisor",
                usage: usage(SUPERVISOR),
                reply: Arc::new(|request, _| AgentOutput::new(request)),
                calls: calls.clone(),
                stall: None,
            },
        )
        .add_node(
            "billing",
            FakeLlm {
                name: "billing",
                usage: usage(WORKER),
                reply: Arc::new(|request, _| AgentOutput::new(request)),
                calls: calls.clone(),
                stall: None,
            },
        )
        .add_edge(START, "supervisor")
        // A model that answers a worker the graph does not have.
        .add_router("supervisor", ["billing"], |_| Route::to("biling"))
        .add_edge("billing", END);
    let error = graph.invoke("refund").await.unwrap_err();
    let message = error.to_string();
    // "invalid configuration: the router of `supervisor` chose `biling`,
    // which is not among its targets" — not retried, even though a model
    // asked again might have answered a worker that exists.
    assert!(message.contains("`biling`"), "{message}");
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error:?}"
    );
    assert_eq!(calls.count("supervisor"), 1);
    assert_eq!(calls.count("billing"), 0);
}

// -------------------------------------------------------- the bounded loop

#[tokio::test(start_paused = true)]
async fn critic_loop_ends_as_soon_as_the_critic_approves() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.approve_from = 2;
    let output = app
        .graph()
        .invoke("compare vector databases")
        .await
        .unwrap();

    assert_eq!(output.result, "APPROVED: draft 2");
    assert_eq!(calls.count("research"), 2);
    assert_eq!(calls.count("critic"), 2);
    // Pass 2's research works on the critic's notes, as the docs say
    // (the loop's first node gets the last node's output).
    assert_eq!(
        calls.inputs("research"),
        ["compare vector databases", "REVISE: draft 1"]
    );
}

#[tokio::test(start_paused = true)]
async fn critic_loop_stops_after_n_passes_when_never_approved() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.approve_from = 0; // never
    app.max_passes = 3;
    let output = app
        .graph()
        .invoke("compare vector databases")
        .await
        .unwrap();

    // Three passes, then the last critique goes on to the end.
    assert_eq!(calls.count("research"), 3);
    assert_eq!(calls.count("critic"), 3);
    assert_eq!(output.result, "REVISE: draft 3");
    assert!(output.is_successful());
}

// ---------------------------------------------- human in the loop, durable

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_pauses_and_a_fresh_process_resumes_without_rerunning_finished_steps() {
    let scratch = Scratch::new("approval");
    let calls = Calls::default();

    // Process 1: the request reaches the approval step and the run pauses.
    let first = Process::start(&scratch).await;
    let pause = paused(
        App::new(&calls)
            .graph()
            .invoke_in("fix the login bug", &first.ctx)
            .await,
    );
    let run = pause.run.expect("a pause names its run");
    assert_eq!(pause.questions.len(), 1);
    assert_eq!(pause.questions[0].id, APPROVAL);
    assert_eq!(
        pause.questions[0].text,
        "Deploy patch for fix the login bug?"
    );
    assert_eq!(pause.questions[0].node.as_deref(), Some("approve"));
    assert_eq!(
        calls.count("deploy"),
        0,
        "nothing expensive before the go-ahead"
    );
    first.exit().await;

    // Process 2: a page lists the runs waiting for a person, with their
    // questions, and the person says yes.
    let second = Process::start(&scratch).await;
    let waiting = second.waiting_runs().await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, run);
    let questions = Question::waiting_in(second.journal.as_ref(), run)
        .await
        .unwrap();
    assert_eq!(questions, pause.questions);
    for question in &questions {
        second.ctx.answer(question.id.clone(), "yes");
    }
    let output = resume(&App::new(&calls).graph(), vec![], run, &second.ctx)
        .await
        .expect("the resumed run finishes");

    assert_eq!(output.result, "deployed patch for fix the login bug");
    // Finished steps were not run again; the step that asked ran again and
    // got its answer.
    assert_eq!(calls.count("supervisor"), 1);
    assert_eq!(calls.count("coder"), 1);
    assert_eq!(calls.count("approve"), 2);
    assert_eq!(calls.count("deploy"), 1);
    // The trace of the resumed run holds what this process ran.
    assert_eq!(attempts(&output), ["approve", "deploy"]);

    // The store: the paused run stays paused, names its continuation, and
    // nothing waits any more.
    let old = second.journal.run(run).await.unwrap().unwrap();
    assert_eq!(old.status, RunStatus::Paused);
    let new = old.resumed_by.expect("continued");
    assert_eq!(
        second.journal.run(new).await.unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    assert!(second.waiting_runs().await.is_empty());

    // A second resume of the same run is refused, and says by whom.
    let again = resume(&App::new(&calls).graph(), vec![], run, &second.ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(again, OrchestrationError::InvalidConfig(_)),
        "{again:?}"
    );
    assert!(again.to_string().contains("resumed already"), "{again}");
    assert_eq!(calls.count("deploy"), 1);
    second.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_questions_are_readable_without_resuming_the_run() {
    let scratch = Scratch::new("questions");
    let calls = Calls::default();
    let first = Process::start(&scratch).await;
    let pause = paused(
        App::new(&calls)
            .graph()
            .invoke_in("fix the crash bug", &first.ctx)
            .await,
    );
    let run = pause.run.unwrap();
    first.exit().await;

    // A read-only handle (a dashboard that may not write the store) reads
    // the questions, twice: reading changes nothing.
    let reader = SqliteJournal::open_read_only(scratch.db()).await.unwrap();
    for _ in 0..2 {
        let questions = Question::waiting_in(&reader, run).await.unwrap();
        assert_eq!(questions.len(), 1);
        assert_eq!(questions[0].id, APPROVAL);
        assert!(questions[0].text.contains("patch for fix the crash bug"));
    }
    let summary = reader.run(run).await.unwrap().unwrap();
    assert_eq!(summary.status, RunStatus::Paused);
    assert_eq!(summary.resumed_by, None);
    reader.close().await.unwrap();
    assert_eq!(calls.count("approve"), 1, "reading did not run the step");

    // A run that did not pause has no questions.
    let done = Process::start(&scratch).await;
    let output = App::new(&calls)
        .graph()
        .invoke_in("refund invoice 9", &done.ctx)
        .await
        .unwrap();
    let finished = output.execution_trace.run_id.unwrap();
    assert!(Question::waiting_in(done.journal.as_ref(), finished)
        .await
        .unwrap()
        .is_empty());
    done.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_approval_skips_the_expensive_action() {
    let scratch = Scratch::new("rejected");
    let calls = Calls::default();
    let first = Process::start(&scratch).await;
    let run = paused(
        App::new(&calls)
            .graph()
            .invoke_in("fix the typo bug", &first.ctx)
            .await,
    )
    .run
    .unwrap();
    first.exit().await;

    let second = Process::start(&scratch).await;
    second.ctx.answer(APPROVAL, "no");
    let output = resume(&App::new(&calls).graph(), vec![], run, &second.ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "patch for fix the typo bug");
    assert_eq!(calls.count("deploy"), 0);
    second.exit().await;
}

// ----------------------------------------------------- a crash, and resume

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_resumes_in_a_fresh_process_without_rerunning_finished_steps() {
    let scratch = Scratch::new("cancelled");
    let calls = Calls::default();
    let gate = Gate::new();

    // Process 1 is stopped (Ctrl-C) in the middle of research's second pass.
    let first = Process::start(&scratch).await;
    let mut app = App::new(&calls);
    app.approve_from = 2;
    app.research_stall = Some((2, gate.clone()));
    let graph = Arc::new(app.graph());
    let ctx = first.ctx.clone();
    let running = {
        let graph = graph.clone();
        tokio::spawn(async move { graph.invoke_in("compare vector databases", &ctx).await })
    };
    gate.reached().await;
    first.ctx.cancel();
    let error = running.await.unwrap().unwrap_err();
    assert_eq!(error, OrchestrationError::Cancelled);
    let run = first.journal.runs(1).await.unwrap()[0].id;
    first.exit().await;

    // Process 2 continues it: the supervisor, research pass 1 and critic
    // pass 1 are taken from the store; research pass 2 runs again (it never
    // finished), and the critic approves.
    let second = Process::start(&scratch).await;
    let summary = second.journal.run(run).await.unwrap().unwrap();
    assert_eq!(summary.status, RunStatus::Interrupted);
    let mut app = App::new(&calls);
    app.approve_from = 2;
    let output = resume(&app.graph(), vec![], run, &second.ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "APPROVED: draft 3");
    assert_eq!(calls.count("supervisor"), 1);
    assert_eq!(calls.count("critic"), 2);
    assert_eq!(calls.count("research"), 3); // pass 2 started twice: at least once
    assert_eq!(
        calls.inputs("research"),
        [
            "compare vector databases",
            "REVISE: draft 1",
            "REVISE: draft 1"
        ]
    );
    assert_eq!(attempts(&output), ["research", "critic"]);
    second.exit().await;
}

// ------------------------------------------------------ live progress (UI)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_sees_node_starts_ends_and_usage_while_the_run_goes_on() {
    let scratch = Scratch::new("observer");
    let calls = Calls::default();
    let gate = Gate::new();
    let progress = Arc::new(Progress::default());
    let process = Process::start_observed(&scratch, Some(progress.clone())).await;

    let mut app = App::new(&calls);
    app.approve_from = 1;
    app.research_stall = Some((1, gate.clone()));
    let graph = Arc::new(app.graph());
    let ctx = process.ctx.clone();
    let running = {
        let graph = graph.clone();
        tokio::spawn(async move { graph.invoke_in("compare vector databases", &ctx).await })
    };

    // While research is held: the UI shows research running and the
    // supervisor's spending, already.
    gate.reached().await;
    let screen = progress.screen();
    assert_eq!(screen.running, ["research"]);
    assert_eq!(
        screen.log,
        ["start supervisor", "end supervisor", "start research"]
    );
    assert_eq!(screen.tokens, tokens(SUPERVISOR));
    assert!(approx(screen.cost_usd, SUPERVISOR.2), "{}", screen.cost_usd);
    assert_eq!((screen.runs_started, screen.runs_finished), (1, 0));

    gate.open();
    let output = running.await.unwrap().unwrap();
    let screen = progress.screen();
    assert!(screen.running.is_empty());
    assert_eq!(screen.runs_finished, 1);
    assert_eq!(
        screen.tokens,
        tokens(SUPERVISOR) + tokens(WORKER) + tokens(CRITIC)
    );
    // The UI's running total agrees with the run's own.
    assert_eq!(output.total_usage().total_tokens(), screen.tokens);
    assert!(approx(
        output.total_usage().cost_usd.unwrap(),
        screen.cost_usd
    ));
    process.exit().await;
}

/// A UI and a metrics exporter both follow the run: a context with two
/// observers attached tells both ("Attaches an observer that hears every
/// `RunEvent`"). Failed before the fix: the second `with_observer` replaced
/// the first, which heard nothing.
#[tokio::test(start_paused = true)]
async fn every_observer_attached_to_a_context_hears_the_run() {
    let calls = Calls::default();
    let ui = Arc::new(Progress::default());
    let metrics = Arc::new(Progress::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_observer(ui.clone())
        .with_observer(metrics.clone());
    let mut app = App::new(&calls);
    app.approve_from = 1;
    app.graph()
        .invoke_in("compare vector databases", &ctx)
        .await
        .unwrap();
    let expected = [
        "start supervisor",
        "end supervisor",
        "start research",
        "end research",
    ];
    for screen in [ui.screen(), metrics.screen()] {
        assert_eq!(screen.log[..4], expected, "{screen:?}");
        assert_eq!((screen.runs_started, screen.runs_finished), (1, 1));
        assert_eq!(
            screen.tokens,
            tokens(SUPERVISOR) + tokens(WORKER) + tokens(CRITIC)
        );
    }
}

/// An observer that panics loses its events, not the others' (as one
/// observer that panics is contained and the run goes on).
#[tokio::test(start_paused = true)]
async fn an_observer_that_panics_does_not_silence_the_others() {
    struct Panics;
    impl RunObserver for Panics {
        fn on_event(&self, _: &RunEvent<'_>) {
            panic!("a broken exporter");
        }
    }
    let calls = Calls::default();
    let ui = Arc::new(Progress::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_observer(Arc::new(Panics))
        .with_observer(ui.clone());
    let output = App::new(&calls)
        .graph()
        .invoke_in("refund invoice 3", &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "refund issued for refund invoice 3");
    assert_eq!(
        ui.screen().log,
        [
            "start supervisor",
            "end supervisor",
            "start billing",
            "end billing"
        ]
    );
}

/// The web UI runs in another process than the run: it follows the run in
/// the store. A step's end is committed before the next step starts, so the
/// events of a running run are readable from another handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_follows_a_running_run_in_the_store() {
    let scratch = Scratch::new("follow");
    let calls = Calls::default();
    let gate = Gate::new();
    let process = Process::start(&scratch).await;
    let mut app = App::new(&calls);
    app.approve_from = 1;
    app.research_stall = Some((1, gate.clone()));
    let graph = Arc::new(app.graph());
    let ctx = process.ctx.clone();
    let running = {
        let graph = graph.clone();
        tokio::spawn(async move { graph.invoke_in("compare vector databases", &ctx).await })
    };
    gate.reached().await;

    let ui = SqliteJournal::open_read_only(scratch.db()).await.unwrap();
    let runs = ui.runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Running);
    // The row's totals are live: the supervisor's spending is in already.
    assert_eq!(runs[0].tokens, tokens(SUPERVISOR));
    // The events say which node runs. A step's end is committed before the
    // next step starts; an attempt's start is written in the background, so
    // the UI polls for it (real time: this test runs on the real clock).
    let mut polls = 0;
    let (names, spent) = loop {
        let (names, spent) = follow(&ui.read(&[runs[0].id]).await);
        if !names.is_empty() || polls == 500 {
            break (names, spent);
        }
        polls += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(names, ["research"], "the UI sees the running node");
    assert_eq!(spent.total_tokens(), tokens(SUPERVISOR));
    ui.close().await.unwrap();

    gate.open();
    running.await.unwrap().unwrap();
    process.exit().await;
}

/// What a UI reads in a run's events: the graph nodes running now, and
/// what the finished attempts spent.
fn follow(events: &[claude_agent_sdk::orchestration::JournalEvent]) -> (Vec<String>, Usage) {
    let mut steps = HashMap::new();
    let mut spent = Usage::default();
    let mut running = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::StepAdded { step, node, .. } => {
                steps.insert(*step, node.clone());
            }
            EventKind::AttemptStarted { node, .. } => running.push(*node),
            EventKind::AttemptFinished { node, outcome, .. } => {
                running.retain(|step| step != node);
                if let AttemptOutcome::Succeeded(output) = outcome {
                    spent += output.usage().unwrap_or_default();
                }
            }
            _ => {}
        }
    }
    let names = running.iter().map(|step| steps[step].clone()).collect();
    (names, spent)
}

// ----------------------------------------------------------------- budgets

#[tokio::test(start_paused = true)]
async fn a_token_budget_stops_a_runaway_loop_with_a_typed_error() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.approve_from = 0;
    app.max_passes = 10;
    // Supervisor 110 + research 500 + critic 320 = 930 after pass 1;
    // 1,750 after pass 2.
    app.budget = RunBudget::new().with_max_tokens(1_500);
    let error = app
        .graph()
        .invoke("compare vector databases")
        .await
        .unwrap_err();

    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected a budget error, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert!(approx(exceeded.limit, 1_500.0));
    assert!(exceeded.used >= 1_500.0, "{exceeded:?}");
    assert!(!error.is_retryable());
    // It stopped in pass 2, not pass 10.
    assert_eq!(calls.count("research"), 2);
    assert_eq!(calls.count("critic"), 2);
    assert!(approx(exceeded.used, 1_750.0), "{exceeded:?}");
    let message = error.to_string();
    assert!(message.contains("token"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_cost_budget_stops_a_run_with_a_typed_error() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.approve_from = 0;
    app.max_passes = 10;
    // $0.016 per pass, plus the supervisor's $0.001.
    app.budget = RunBudget::new().with_max_cost_usd(0.04);
    let error = app
        .graph()
        .invoke("compare vector databases")
        .await
        .unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected a budget error, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::CostUsd);
    assert!(exceeded.used >= 0.04, "{exceeded:?}");
    assert_eq!(calls.count("research"), 3);
    let message = error.to_string();
    assert!(message.contains("$0.04"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_time_budget_stops_a_slow_loop_on_the_paused_clock() {
    let calls = Calls::default();
    // Every research call sleeps a minute: build that app.
    let graph = GraphOrchestrator::new("slow-research")
        .add_node(
            "research",
            SlowResearch {
                calls: calls.clone(),
            },
        )
        .add_node(
            "critic",
            FakeLlm {
                name: "critic",
                usage: usage(CRITIC),
                reply: Arc::new(|draft, _| AgentOutput::new(format!("REVISE: {draft}"))),
                calls: calls.clone(),
                stall: None,
            },
        )
        .add_edge(START, "research")
        .add_edge("research", "critic")
        .add_loop("critic", "research", 10, |route| {
            !route.output.content.starts_with("APPROVED")
        })
        .add_edge("critic", END)
        .with_budget(RunBudget::new().with_max_duration(Duration::from_secs(150)));

    let started = tokio::time::Instant::now();
    let error = graph.invoke("compare vector databases").await.unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected a budget error, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Duration);
    // Passes start at 0 s, 60 s and 120 s; the third runs to 180 s (a
    // running agent finishes), and nothing starts after.
    assert_eq!(calls.count("research"), 3);
    assert!(started.elapsed() >= Duration::from_secs(180));
    assert!(started.elapsed() < Duration::from_secs(240));
}

/// A research worker that takes a minute per call.
struct SlowResearch {
    calls: Calls,
}

#[async_trait]
impl Agent for SlowResearch {
    fn name(&self) -> &str {
        "research"
    }

    fn description(&self) -> &str {
        "takes its time"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.record("research", &input.content);
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(AgentOutput::new(format!("draft {call}")).with_usage(usage(WORKER)))
    }
}

/// "A pause does not reset a budget": the resumed run counts what the
/// paused run spent on the steps it takes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_counts_what_the_run_spent_before_its_pause() {
    let scratch = Scratch::new("budget_pause");
    let calls = Calls::default();
    // Before the pause: supervisor 110 + coder 500 = 610 tokens; the deploy
    // (1,500) would bring it to 2,110.
    let budget = RunBudget::new().with_max_tokens(2_000);
    let mut app = App::new(&calls);
    app.budget = budget;

    let run = pause_in_a_first_process(&scratch, &app).await;

    let second = Process::start(&scratch).await;
    second.ctx.answer(APPROVAL, "yes");
    let error = resume(&app.graph(), vec![], run, &second.ctx)
        .await
        .unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected a budget error, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Tokens);
    assert!(approx(exceeded.used, 2_110.0), "{exceeded:?}");
    second.exit().await;
}

// ---------------------------------------------------------- the final trace

#[tokio::test(start_paused = true)]
async fn the_final_trace_lists_every_attempt_with_its_usage() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.approve_from = 2;
    let output = app
        .graph()
        .invoke("compare vector databases")
        .await
        .unwrap();
    let trace = &output.execution_trace;

    assert!(trace.run_id.is_some());
    assert!(trace.end_time.is_some());
    assert_eq!(
        attempts(&output),
        ["supervisor", "research", "critic", "research", "critic"]
    );
    assert!(trace.agent_executions.iter().all(|record| record.success));
    assert!(trace
        .agent_executions
        .iter()
        .all(|record| record.attempt == 1));
    // Loop passes are told apart: each is a step of its own.
    let steps: Vec<_> = trace.agent_executions.iter().map(|r| r.node).collect();
    let mut unique = steps.clone();
    unique.dedup();
    assert_eq!(unique.len(), steps.len(), "{steps:?}");
    // Inputs as the data flowed.
    assert_eq!(trace.agent_executions[2].input.content, "draft 1");
    assert_eq!(trace.agent_executions[3].input.content, "REVISE: draft 1");

    let total = output.total_usage();
    let expected = tokens(SUPERVISOR) + 2 * tokens(WORKER) + 2 * tokens(CRITIC);
    assert_eq!(total.total_tokens(), expected);
    assert!(approx(
        total.cost_usd.unwrap(),
        0.001 + 2.0 * 0.01 + 2.0 * 0.005
    ));
    assert_eq!(trace.total_usage(), total);
    assert_eq!(trace.attempts_of("critic").count(), 2);

    // The trace serializes for the UI, and reads back.
    let json = serde_json::to_string(trace).unwrap();
    let back: claude_agent_sdk::orchestration::ExecutionTrace =
        serde_json::from_str(&json).unwrap();
    assert_eq!(back.agent_executions.len(), 5);
}

/// The totals of a whole chain (paused run + its continuation), as a UI
/// shows "tokens and cost so far" for the request: each run's row has what
/// it spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_each_runs_spending_for_a_chain_total() {
    let scratch = Scratch::new("chain_total");
    let calls = Calls::default();
    let run = pause_in_a_first_process(&scratch, &App::new(&calls)).await;

    let second = Process::start(&scratch).await;
    second.ctx.answer(APPROVAL, "yes");
    let output = resume(&App::new(&calls).graph(), vec![], run, &second.ctx)
        .await
        .unwrap();
    // The resumed run's own totals: what it ran (the deploy).
    assert_eq!(output.total_usage().total_tokens(), tokens(DEPLOY));

    let paused_row = second.journal.run(run).await.unwrap().unwrap();
    let resumed_row = second
        .journal
        .run(paused_row.resumed_by.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused_row.tokens, tokens(SUPERVISOR) + tokens(WORKER));
    assert_eq!(resumed_row.tokens, tokens(DEPLOY));
    assert_eq!(resumed_row.origin, run);
    assert!(approx(
        paused_row.cost_usd + resumed_row.cost_usd,
        SUPERVISOR.2 + WORKER.2 + DEPLOY.2
    ));
    second.exit().await;
}

// ------------------------------------------- more of what the app relies on

/// The expensive action is cut short (the deploy process is stopped) after
/// the approval: the next process runs it again — with the idempotency key
/// it had, so the deploy service can refuse a second deploy — and does not
/// ask the person again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_cut_short_runs_again_with_the_same_idempotency_key() {
    let scratch = Scratch::new("deploy_cut");
    let calls = Calls::default();
    let run = pause_in_a_first_process(&scratch, &App::new(&calls)).await;

    // Process 2: approved, and stopped in the middle of the deploy.
    let gate = Gate::new();
    let second = Process::start(&scratch).await;
    second.ctx.answer(APPROVAL, "yes");
    let mut app = App::new(&calls);
    app.deploy_stall = Some((1, gate.clone()));
    let graph = Arc::new(app.graph());
    let ctx = second.ctx.clone();
    let running = {
        let graph = graph.clone();
        tokio::spawn(async move { resume(graph.as_ref(), vec![], run, &ctx).await })
    };
    gate.reached().await;
    second.ctx.cancel();
    assert_eq!(
        running.await.unwrap().unwrap_err(),
        OrchestrationError::Cancelled
    );
    let interrupted = second.journal.run(run).await.unwrap().unwrap();
    let interrupted = interrupted.resumed_by.unwrap();
    second.exit().await;

    // Process 3: no answer given, none needed; the deploy runs again.
    let third = Process::start(&scratch).await;
    let output = resume(&App::new(&calls).graph(), vec![], interrupted, &third.ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "deployed patch for fix the login bug");
    assert_eq!(calls.count("approve"), 2, "the person is not asked again");
    assert_eq!(calls.count("deploy"), 2, "at least once");
    // `{first run id}/{node}.{activation}/{attempt}`: the first run of the
    // chain, the deploy node, its first step, its first attempt — the same
    // in both processes.
    let keys = calls.inputs("deploy/key");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    assert!(keys[0].starts_with(&format!("{run}/")), "{keys:?}");
    assert!(keys[0].ends_with(".1/1"), "{keys:?}");
    assert_eq!(
        output.agent_outputs.last().unwrap().metadata["key"],
        keys[0]
    );
    third.exit().await;
}

/// LangGraph keeps a state dict per thread; here an agent keeps what must
/// survive the pause in the run's shared state, and a resumed run in a
/// fresh process starts from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_state_written_before_the_pause_is_there_after_resuming_elsewhere() {
    struct Coder;
    #[async_trait]
    impl Agent for Coder {
        fn name(&self) -> &str {
            "coder"
        }
        fn description(&self) -> &str {
            "writes a patch and notes its ticket"
        }
        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            let ctx = ExecutionContext::current().unwrap();
            ctx.set_state("ticket", serde_json::json!("OPS-7")).await;
            ctx.append_state("files", serde_json::json!("login.rs"))
                .await;
            Ok(AgentOutput::new(format!("patch for {}", input.content)))
        }
    }
    struct Deploy;
    #[async_trait]
    impl Agent for Deploy {
        fn name(&self) -> &str {
            "deploy"
        }
        fn description(&self) -> &str {
            "deploys, citing the ticket"
        }
        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            let ctx = ExecutionContext::current().unwrap();
            let ticket = ctx.get_state("ticket").await.unwrap_or_default();
            let files = ctx.get_state("files").await.unwrap_or_default();
            Ok(AgentOutput::new(format!(
                "{} ({ticket}, {files})",
                input.content
            )))
        }
    }
    let graph = || {
        GraphOrchestrator::new("state")
            .add_node("coder", Coder)
            .add_node(
                "approve",
                Approval {
                    calls: Calls::default(),
                },
            )
            .add_node("deploy", Deploy)
            .add_edge(START, "coder")
            .add_edge("coder", "approve")
            .add_edge("approve", "deploy")
            .add_edge("deploy", END)
    };
    let scratch = Scratch::new("state");
    let first = Process::start(&scratch).await;
    let run = paused(graph().invoke_in("bug 12", &first.ctx).await)
        .run
        .unwrap();
    first.exit().await;

    let second = Process::start(&scratch).await;
    second.ctx.answer(APPROVAL, "yes");
    let output = resume(&graph(), vec![], run, &second.ctx).await.unwrap();
    assert_eq!(output.result, r#"patch for bug 12 ("OPS-7", ["login.rs"])"#);
    second.exit().await;
}

/// The graph changed between the pause and the resume (a node renamed):
/// the resume refuses, naming the node, and runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_a_changed_graph_is_refused_naming_the_node() {
    let scratch = Scratch::new("changed");
    let calls = Calls::default();
    let run = pause_in_a_first_process(&scratch, &App::new(&calls)).await;

    let renamed = GraphOrchestrator::new("support-app")
        .add_node(
            "supervisor",
            App::new(&calls).llm(
                "supervisor",
                SUPERVISOR,
                Arc::new(|r, _| AgentOutput::new(r).with_metadata("route", "engineer")),
            ),
        )
        .add_node(
            "engineer",
            App::new(&calls).llm("coder", WORKER, Arc::new(|r, _| AgentOutput::new(r))),
        )
        .add_edge(START, "supervisor")
        .add_edge("supervisor", "engineer")
        .add_edge("engineer", END);
    let second = Process::start(&scratch).await;
    second.ctx.answer(APPROVAL, "yes");
    let error = resume(&renamed, vec![], run, &second.ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("coder"), "{error}");
    assert_eq!(calls.count("supervisor"), 1);
    // Still waiting: the refused resume did not claim it.
    assert_eq!(second.waiting_runs().await.len(), 1);
    second.exit().await;
}

/// A run that keeps going round its loop is stopped by the step budget,
/// whose error names the loop.
#[tokio::test(start_paused = true)]
async fn a_step_budget_names_the_loop_that_ran_away() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.approve_from = 0;
    app.max_passes = 50;
    app.budget = RunBudget::new().with_max_steps(6);
    let error = app
        .graph()
        .invoke("compare vector databases")
        .await
        .unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected a budget error, got {error:?}");
    };
    assert_eq!(exceeded.budget, Budget::Steps);
    let culprit = exceeded.culprit.as_deref().unwrap_or_default();
    assert!(culprit.contains("`critic` back to `research`"), "{culprit}");
}

/// The UI shows "waiting for approval": the observer hears the run end on
/// the question (and the asking attempt end with it), not a failure.
#[tokio::test(start_paused = true)]
async fn the_observer_hears_a_run_pause_on_its_question() {
    #[derive(Default)]
    struct Waiting(Mutex<Vec<String>>);
    impl RunObserver for Waiting {
        fn on_event(&self, event: &RunEvent<'_>) {
            if let RunEvent::RunFinished {
                error: Some(error), ..
            } = event
            {
                if let OrchestrationError::InputRequired(pause) = error.root_cause() {
                    let mut asked = self.0.lock().unwrap();
                    asked.extend(pause.questions.iter().map(|q| q.id.clone()));
                }
            }
        }
    }
    let calls = Calls::default();
    let waiting = Arc::new(Waiting::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(waiting.clone());
    paused(
        App::new(&calls)
            .graph()
            .invoke_in("fix the login bug", &ctx)
            .await,
    );
    assert_eq!(*waiting.0.lock().unwrap(), [APPROVAL]);
}

/// A person answers hours later: the time the run waited for them does not
/// count against its time budget.
#[tokio::test(start_paused = true)]
async fn a_time_budget_does_not_count_the_wait_for_a_person() {
    let calls = Calls::default();
    let mut app = App::new(&calls);
    app.budget = RunBudget::new().with_max_duration(Duration::from_secs(60));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let pause = paused(app.graph().invoke_in("fix the login bug", &ctx).await);
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    let output = app
        .graph()
        .resume_in(*pause, [(APPROVAL, "yes")], &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "deployed patch for fix the login bug");
}
