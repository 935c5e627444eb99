//! Resuming a run whose step was cut short while a pipeline or fan-out
//! nested in it ran: the agents that finished inside it are not run again
//! (each found by its name and which of the agents with that name it is),
//! the ones cut short run again, and what they changed in the shared state
//! is replayed once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, GraphOrchestrator,
    InMemoryJournal, Journal, OrchestrationError, Orchestrator, OrchestratorAgent,
    OrchestratorInput, ParallelOrchestrator, Result, RunId, SequentialOrchestrator, END, START,
};

/// Calls by worker key, and the keys that wait an hour (the run is cut
/// short around them).
#[derive(Default)]
struct Script {
    calls: HashMap<String, usize>,
    slow: HashSet<String>,
}

type Shared = Arc<Mutex<Script>>;

fn lock(script: &Shared) -> std::sync::MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(|e| e.into_inner())
}

/// An agent named `name`, counted under `key` (several workers may share a
/// name): appends `key` to the shared state's `log` and answers
/// `<input>+<key>`.
struct Worker {
    name: String,
    key: String,
    script: Shared,
}

fn worker(name: &str, key: &str, script: &Shared) -> Box<dyn Agent> {
    Box::new(Worker {
        name: name.to_owned(),
        key: key.to_owned(),
        script: Arc::clone(script),
    })
}

#[async_trait]
impl Agent for Worker {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "counts its calls"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let slow = {
            let mut script = lock(&self.script);
            *script.calls.entry(self.key.clone()).or_default() += 1;
            script.slow.contains(&self.key)
        };
        if slow {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if let Some(ctx) = ExecutionContext::current() {
            ctx.append_state("log", serde_json::json!(self.key)).await;
        }
        Ok(AgentOutput::new(format!("{}+{}", input.content, self.key)))
    }
}

fn calls(script: &Shared) -> HashMap<String, usize> {
    lock(script).calls.clone()
}

fn slow(script: &Shared, keys: &[&str]) {
    lock(script).slow = keys.iter().map(|key| (*key).to_owned()).collect();
}

fn fresh(journal: &Arc<InMemoryJournal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new())
        .with_journal(Arc::clone(journal) as Arc<dyn Journal>)
}

/// Runs `orchestrator` on `ctx` until its one-minute timeout cuts it short;
/// returns the run's id.
async fn cut_short(
    orchestrator: &dyn Orchestrator,
    agents: Vec<Box<dyn Agent>>,
    ctx: &ExecutionContext,
) -> RunId {
    let cut = orchestrator
        .orchestrate_with_context(agents, OrchestratorInput::new("go"), ctx)
        .await;
    assert!(
        matches!(cut, Err(OrchestrationError::Timeout(_))),
        "{cut:?}"
    );
    *ctx.run_ids().last().unwrap_or_else(|| panic!("a run"))
}

/// The keys the shared state's `log` holds, in order.
async fn log_of(ctx: &ExecutionContext) -> Vec<String> {
    match ctx.get_state("log").await {
        Some(serde_json::Value::Array(keys)) => keys
            .iter()
            .map(|key| key.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => panic!("no log: {other:?}"),
    }
}

fn assert_calls(script: &Shared, expected: &[(&str, usize)]) {
    let calls = calls(script);
    for (key, count) in expected {
        assert_eq!(calls.get(*key), Some(count), "{key}: {calls:?}");
    }
}

/// A graph whose one node runs `pipeline` over `agents`, under a one-minute
/// timeout.
fn graph_around<O: Orchestrator + 'static>(
    orchestrator: O,
    agents: Vec<Box<dyn Agent>>,
) -> GraphOrchestrator {
    GraphOrchestrator::new("outer")
        .with_timeout(Duration::from_secs(60))
        .add_node(
            "work",
            OrchestratorAgent::new("work", "the nested run", orchestrator, agents),
        )
        .add_edge(START, "work")
        .add_edge("work", END)
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_of_same_named_agents_gets_back_the_ones_that_finished() {
    let script = Shared::default();
    let team = || {
        vec![
            worker("researcher", "r1", &script),
            worker("researcher", "r2", &script),
            worker("researcher", "r3", &script),
            worker("critic", "c1", &script),
        ]
    };
    let outer = || graph_around(ParallelOrchestrator::new(), team());
    let journal = Arc::new(InMemoryJournal::new());
    slow(&script, &["r2", "c1"]);
    let run = cut_short(&outer(), vec![], &fresh(&journal)).await;
    slow(&script, &[]);
    let ctx = fresh(&journal);
    let output = resume(&outer(), vec![], run, &ctx)
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"));
    // The second researcher and the critic were cut short: they alone ran again.
    assert_calls(&script, &[("r1", 1), ("r2", 2), ("r3", 1), ("c1", 2)]);
    for key in ["go+r1", "go+r2", "go+r3", "go+c1"] {
        assert!(output.result.contains(key), "{key}: {}", output.result);
    }
    let mut log = log_of(&ctx).await;
    log.sort();
    assert_eq!(log, ["c1", "r1", "r2", "r3"], "each agent's state once");
}

#[tokio::test(start_paused = true)]
async fn a_top_level_pipeline_hands_its_nested_pipeline_what_it_finished() {
    let script = Shared::default();
    let agents = || {
        vec![
            worker("plan", "plan", &script),
            Box::new(OrchestratorAgent::new(
                "steps",
                "a pipeline of three",
                SequentialOrchestrator::new(),
                vec![
                    worker("draft", "draft", &script),
                    worker("edit", "edit", &script),
                    worker("polish", "polish", &script),
                ],
            )) as Box<dyn Agent>,
        ]
    };
    let outer = SequentialOrchestrator::new().with_timeout(Duration::from_secs(60));
    let journal = Arc::new(InMemoryJournal::new());
    slow(&script, &["edit"]);
    let run = cut_short(&outer, agents(), &fresh(&journal)).await;
    slow(&script, &[]);
    let ctx = fresh(&journal);
    let output = resume(&outer, agents(), run, &ctx)
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"));
    assert_eq!(output.result, "go+plan+draft+edit+polish");
    assert_calls(
        &script,
        &[("plan", 1), ("draft", 1), ("edit", 2), ("polish", 1)],
    );
    assert_eq!(log_of(&ctx).await, ["plan", "draft", "edit", "polish"]);
}

/// Cuts short `[a, b, c]` nested in a graph's node in `c`, then resumes it
/// as `after`; returns the resumed run's result.
async fn resumed_as(script: &Shared, after: &[&str]) -> String {
    let journal = Arc::new(InMemoryJournal::new());
    slow(script, &["c"]);
    let before = graph_around(
        SequentialOrchestrator::new(),
        vec![
            worker("a", "a", script),
            worker("b", "b", script),
            worker("c", "c", script),
        ],
    );
    let run = cut_short(&before, vec![], &fresh(&journal)).await;
    slow(script, &[]);
    let agents = after
        .iter()
        .map(|name| worker(name, name, script))
        .collect();
    let after = graph_around(SequentialOrchestrator::new(), agents);
    resume(&after, vec![], run, &fresh(&journal))
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"))
        .result
}

#[tokio::test(start_paused = true)]
async fn a_nested_pipeline_changed_since_takes_back_the_steps_before_the_change() {
    let script = Shared::default();
    // `b` was renamed: `a` is taken back, `b2` and `c` run.
    let result = resumed_as(&script, &["a", "b2", "c"]).await;
    assert_eq!(result, "go+a+b2+c");
    assert_calls(&script, &[("a", 1), ("b", 1), ("b2", 1), ("c", 2)]);
}

#[tokio::test(start_paused = true)]
async fn a_step_put_before_the_finished_ones_makes_them_run_anew_on_its_output() {
    let script = Shared::default();
    // `new` comes first: `a` and `b` would get another input, so they run.
    let result = resumed_as(&script, &["new", "a", "b", "c"]).await;
    assert_eq!(result, "go+new+a+b+c");
    assert_calls(&script, &[("new", 1), ("a", 2), ("b", 2), ("c", 2)]);
}

#[tokio::test(start_paused = true)]
async fn a_chain_of_resumes_runs_nothing_inside_the_pipeline_twice() {
    let script = Shared::default();
    let outer = || {
        graph_around(
            SequentialOrchestrator::new(),
            vec![
                worker("a", "a", &script),
                worker("b", "b", &script),
                worker("c", "c", &script),
            ],
        )
    };
    let journal = Arc::new(InMemoryJournal::new());
    // Run 1 is cut short in `b`, run 2 (its resume) in `c`.
    slow(&script, &["b"]);
    let first = cut_short(&outer(), vec![], &fresh(&journal)).await;
    slow(&script, &["c"]);
    let ctx = fresh(&journal);
    let cut = resume(&outer(), vec![], first, &ctx).await;
    assert!(
        matches!(cut, Err(OrchestrationError::Timeout(_))),
        "{cut:?}"
    );
    let second = *ctx.run_ids().last().unwrap_or_else(|| panic!("a run"));
    slow(&script, &[]);
    let ctx = fresh(&journal);
    let output = resume(&outer(), vec![], second, &ctx)
        .await
        .unwrap_or_else(|e| panic!("the second resume finishes: {e}"));
    assert_eq!(output.result, "go+a+b+c");
    assert_calls(&script, &[("a", 1), ("b", 2), ("c", 2)]);
    assert_eq!(log_of(&ctx).await, ["a", "b", "c"]);
}

/// Durable: the run is cut short inside a pipeline nested in a graph, and
/// resumed in a fresh context on the SQLite file opened anew.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_pipeline_resumed_from_sqlite_takes_back_what_it_finished() {
    use claude_agent_sdk::orchestration::store::SqliteJournal;

    let dir = std::env::temp_dir().join(format!("resume-nested-patterns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    let path = dir.join("runs.db");
    let _ = std::fs::remove_file(&path);
    let script = Shared::default();
    let outer = |timeout: Duration| {
        graph_around(
            SequentialOrchestrator::new(),
            vec![worker("a", "a", &script), worker("b", "b", &script)],
        )
        .with_timeout(timeout)
    };
    slow(&script, &["b"]);
    let run = {
        let journal: Arc<dyn Journal> = Arc::new(
            SqliteJournal::open(&path)
                .await
                .unwrap_or_else(|e| panic!("open: {e}")),
        );
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal);
        cut_short(&outer(Duration::from_millis(300)), vec![], &ctx).await
    };
    slow(&script, &[]);
    let journal: Arc<dyn Journal> = Arc::new(
        SqliteJournal::open(&path)
            .await
            .unwrap_or_else(|e| panic!("reopen: {e}")),
    );
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal);
    let output = resume(&outer(Duration::from_secs(60)), vec![], run, &ctx)
        .await
        .unwrap_or_else(|e| panic!("the resume finishes: {e}"));
    assert_eq!(output.result, "go+a+b");
    assert_calls(&script, &[("a", 1), ("b", 2)]);
    assert_eq!(log_of(&ctx).await, ["a", "b"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An agent named `name` that asks question `id` (counted under `name`):
/// answers `<input>[<answer>]`.
struct Asking {
    name: String,
    id: String,
    script: Shared,
}

fn asking(name: &str, id: &str, script: &Shared) -> Box<dyn Agent> {
    Box::new(Asking {
        name: name.to_owned(),
        id: id.to_owned(),
        script: Arc::clone(script),
    })
}

#[async_trait]
impl Agent for Asking {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "asks a person"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        *lock(&self.script)
            .calls
            .entry(self.name.clone())
            .or_default() += 1;
        let ctx = ExecutionContext::current().expect("inside a run");
        let answer = ctx.ask(&self.id, "go on?")?;
        Ok(AgentOutput::new(format!("{}[{answer}]", input.content)))
    }
}

/// Runs `outer` until its question pauses it, then resumes the pause with
/// `answer` to question `ok`.
async fn paused_then_answered(outer: &GraphOrchestrator, answer: &str) -> String {
    let paused = outer
        .orchestrate(vec![], OrchestratorInput::new("go"))
        .await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the question pauses the run: {paused:?}");
    };
    assert_eq!(pause.questions[0].id, "ok");
    outer
        .resume(*pause, [("ok", answer)])
        .await
        .unwrap_or_else(|e| panic!("the answer finishes the run: {e}"))
        .result
}

#[tokio::test]
async fn a_question_in_a_nested_pipeline_pauses_and_the_answer_runs_no_finished_agent_again() {
    let script = Shared::default();
    let outer = graph_around(
        SequentialOrchestrator::new(),
        vec![
            worker("draft", "draft", &script),
            worker("edit", "edit", &script),
            asking("check", "ok", &script),
            worker("polish", "polish", &script),
        ],
    );
    let result = paused_then_answered(&outer, "yes").await;
    assert_eq!(result, "go+draft+edit[yes]+polish");
    assert_calls(
        &script,
        &[("draft", 1), ("edit", 1), ("check", 2), ("polish", 1)],
    );
}

#[tokio::test]
async fn a_question_in_a_nested_fan_out_pauses_and_the_answer_runs_no_finished_agent_again() {
    let script = Shared::default();
    let outer = graph_around(
        ParallelOrchestrator::new(),
        vec![
            worker("researcher", "r1", &script),
            asking("check", "ok", &script),
            worker("researcher", "r2", &script),
        ],
    );
    let result = paused_then_answered(&outer, "fine").await;
    for part in ["go+r1", "go[fine]", "go+r2"] {
        assert!(result.contains(part), "{part}: {result}");
    }
    assert_calls(&script, &[("r1", 1), ("check", 2), ("r2", 1)]);
}
