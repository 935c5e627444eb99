//! Shared run state (an adversarial review): what agents write through
//! their `ExecutionContext` under every reducer, from many writers at once,
//! from retried attempts, nested runs and spawned tasks; and what a resumed
//! or forked run — in memory or from a SQLite journal, under the context the
//! run ran under or a fresh one — starts from.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::store::SqliteJournal;
use claude_agent_sdk::orchestration::{
    fork, resume, Agent, AgentError, AgentInput, AgentOutput, EventKind, ExecutionConfig,
    ExecutionContext, GraphOrchestrator, InMemoryJournal, Journal, OrchestrationError,
    Orchestrator, OrchestratorAgent, OrchestratorInput, ParallelOrchestrator, Result, RunId,
    SequentialOrchestrator, Split, StateChange, END, START,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// Writes under every reducer, then fails while it is told to:
/// appends its name to `log`, sets `last` to it, merges `{name: call}` into
/// `seen` and counts itself in `count` (`update_state`). Its first `flaky`
/// calls then fail retryably; while `broken` is set it fails for good.
struct Writer {
    name: String,
    flaky: u32,
    broken: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Writer {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            flaky: 0,
            broken: Arc::default(),
            calls: Arc::default(),
        }
    }

    fn flaky(mut self, failures: u32) -> Self {
        self.flaky = failures;
        self
    }

    fn broken(mut self, broken: &Arc<AtomicBool>) -> Self {
        self.broken = Arc::clone(broken);
        self
    }

    fn counted(mut self, calls: &Arc<AtomicU32>) -> Self {
        self.calls = Arc::clone(calls);
        self
    }
}

#[async_trait]
impl Agent for Writer {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "writes the shared state"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let ctx = ExecutionContext::current().expect("runs under a context");
        tokio::task::yield_now().await;
        ctx.append_state("log", json!(self.name)).await;
        ctx.set_state("last", json!(self.name)).await;
        ctx.merge_state("seen", json!({ self.name.clone(): call }))
            .await;
        ctx.update_state("count", |slot| {
            let n = slot.as_ref().and_then(Value::as_u64).unwrap_or(0);
            *slot = Some(json!(n + 1));
        })
        .await;
        if call <= self.flaky {
            return Err(OrchestrationError::transient(format!(
                "{} fails on call {call}",
                self.name
            )));
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(AgentError::new(format!("{} is broken", self.name)).into());
        }
        Ok(AgentOutput::new(format!("{}>{}", input.content, self.name)))
    }
}

fn boxed(agent: impl Agent + 'static) -> Box<dyn Agent> {
    Box::new(agent)
}

fn context(journal: Arc<dyn Journal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new().with_max_retries(2)).with_journal(journal)
}

fn last_run(ctx: &ExecutionContext) -> RunId {
    *ctx.run_ids().last().expect("a run")
}

/// The names in the state's `log`, in order.
async fn log_of(ctx: &ExecutionContext) -> Vec<String> {
    match ctx.get_state("log").await {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| item.as_str().unwrap_or("?").to_owned())
            .collect(),
        None => Vec::new(),
        Some(other) => panic!("log is not a list: {other}"),
    }
}

/// A SQLite file in a folder of its own, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let folder = std::env::temp_dir().join(format!(
            "review_shared_state_{name}_{}_{}",
            std::process::id(),
            fastrand_suffix()
        ));
        std::fs::create_dir_all(&folder).unwrap();
        Self(folder)
    }

    async fn open(&self) -> Arc<dyn Journal> {
        Arc::new(SqliteJournal::open(self.0.join("runs.db")).await.unwrap())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

// ---------------------------------------------------- concurrent writers

/// Sixty-four branches of a fan-out write one key under every reducer at
/// once: no write is lost, and the value each key ends with is the one the
/// journal's changes, applied in their order, make (the journal's order is
/// the state's).
#[tokio::test]
async fn parallel_branches_writing_one_key_lose_no_write_and_the_journal_agrees() {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_parallel_limit(64))
        .with_journal(journal.clone());
    let agents: Vec<Box<dyn Agent>> = (0..64)
        .map(|i| boxed(Writer::new(format!("w{i}"))))
        .collect();
    ParallelOrchestrator::new()
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
        .await
        .expect("every branch succeeds");

    let mut log = log_of(&ctx).await;
    assert_eq!(log.len(), 64);
    log.sort();
    let mut names: Vec<String> = (0..64).map(|i| format!("w{i}")).collect();
    names.sort();
    assert_eq!(log, names, "each branch appended once");
    assert_eq!(ctx.get_state("count").await, Some(json!(64)));
    let seen = ctx.get_state("seen").await.unwrap();
    assert_eq!(seen.as_object().map(serde_json::Map::len), Some(64));

    // Replaying the journal's changes in order gives the state exactly.
    let mut replayed: HashMap<String, Value> = HashMap::new();
    for event in journal.events() {
        if let EventKind::StateChanged { key, change, .. } = event.kind {
            apply(&mut replayed, key, change);
        }
    }
    assert_eq!(replayed, ctx.state_snapshot().await);
    // Last write wins: `last` is the name the last `set_state` wrote.
    assert_eq!(ctx.get_state("last").await, replayed.get("last").cloned());
}

/// The reducers as documented, applied to a plain map.
fn apply(state: &mut HashMap<String, Value>, key: String, change: StateChange) {
    match change {
        StateChange::Set(value) => {
            state.insert(key, value);
        }
        StateChange::Remove => {
            state.remove(&key);
        }
        StateChange::Append(value) => match state.entry(key).or_insert_with(|| json!([])) {
            Value::Array(items) => items.push(value),
            other => *other = json!([other.take(), value]),
        },
        StateChange::Merge(Value::Object(fields)) => {
            let slot = state.entry(key).or_insert_with(|| json!({}));
            if !slot.is_object() {
                *slot = json!({});
            }
            if let Value::Object(into) = slot {
                into.extend(fields);
            }
        }
        StateChange::Merge(other) => {
            state.insert(key, other);
        }
        _ => unreachable!("no other change"),
    }
}

/// A map's items (each a nested pipeline of two writers) write one key
/// from many steps at once, up to the limit.
#[tokio::test(start_paused = true)]
async fn map_items_running_nested_pipelines_lose_no_write() {
    let nested = OrchestratorAgent::new(
        "item",
        "two writers",
        SequentialOrchestrator::new(),
        vec![boxed(Writer::new("first")), boxed(Writer::new("second"))],
    );
    let graph = GraphOrchestrator::new("map")
        .add_map("items", nested, Split::Lines)
        .add_edge(START, "items")
        .add_edge("items", END)
        .with_parallel_limit(9);
    let items: Vec<String> = (0..150).map(|i| format!("i{i}")).collect();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    graph
        .orchestrate_with_context(vec![], OrchestratorInput::new(items.join("\n")), &ctx)
        .await
        .expect("the map runs");
    assert_eq!(ctx.get_state("count").await, Some(json!(300)));
    let log = log_of(&ctx).await;
    assert_eq!(log.iter().filter(|name| *name == "first").count(), 150);
    assert_eq!(log.iter().filter(|name| *name == "second").count(), 150);
}

// ------------------------------------------------------ reducers' edges

/// The reducers' documented edges: append onto a value that is not a list,
/// merge into one that is not an object, merge of fields that are not an
/// object; odd keys; a value of a few megabytes.
#[tokio::test]
async fn the_reducers_edges_behave_as_documented() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    ctx.set_state("a", json!(7)).await;
    ctx.append_state("a", json!(8)).await;
    assert_eq!(ctx.get_state("a").await, Some(json!([7, 8])));
    ctx.set_state("n", Value::Null).await;
    ctx.append_state("n", json!(1)).await;
    assert_eq!(ctx.get_state("n").await, Some(json!([null, 1])));

    ctx.set_state("m", json!("text")).await;
    ctx.merge_state("m", json!({"x": 1})).await;
    assert_eq!(ctx.get_state("m").await, Some(json!({"x": 1})));
    ctx.merge_state("m", json!({"x": {"deep": 1}, "y": 2}))
        .await;
    ctx.merge_state("m", json!({"x": {"other": 2}})).await;
    assert_eq!(
        ctx.get_state("m").await,
        Some(json!({"x": {"other": 2}, "y": 2})),
        "a merge is one level deep: a field both set is the last writer's"
    );
    ctx.merge_state("m", json!([1, 2])).await;
    assert_eq!(ctx.get_state("m").await, Some(json!([1, 2])));

    for key in [
        "",
        " ",
        "output.a",
        "ключ/🔑",
        "a\0b",
        "'; DROP TABLE events; --",
    ] {
        ctx.set_state(key, json!(key)).await;
        assert_eq!(ctx.get_state(key).await, Some(json!(key)), "{key:?}");
    }
    let huge = "x".repeat(4 << 20);
    ctx.set_state("huge", json!(huge)).await;
    assert_eq!(ctx.get_state("huge").await, Some(json!(huge)));
    assert_eq!(ctx.remove_state("huge").await, Some(json!(huge)));
    assert_eq!(ctx.get_state("huge").await, None);
}

/// Odd keys, a big value and every reducer's edge go through a SQLite
/// journal and come back the same in a fresh process's resume.
#[tokio::test]
async fn odd_keys_and_big_values_survive_a_sqlite_resume() {
    struct Odd;
    #[async_trait]
    impl Agent for Odd {
        fn name(&self) -> &str {
            "odd"
        }
        fn description(&self) -> &str {
            "writes odd keys"
        }
        async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
            let ctx = ExecutionContext::current().expect("in a run");
            for key in ["", "ключ/🔑", "a\0b", "'; DROP TABLE events; --", "${HOME}"] {
                ctx.set_state(key, json!({ "k": key })).await;
            }
            ctx.set_state("big", json!("y".repeat(1 << 20))).await;
            ctx.set_state("scalar", json!(1)).await;
            ctx.append_state("scalar", json!(2)).await;
            ctx.merge_state("scalar", json!({"z": 0})).await;
            ctx.merge_state("whole", json!("not an object")).await;
            ctx.set_state("gone", json!(1)).await;
            ctx.remove_state("gone").await;
            Ok(AgentOutput::new("odd"))
        }
    }
    let scratch = Scratch::new("odd");
    let broken = Arc::new(AtomicBool::new(true));
    let agents =
        |broken: &Arc<AtomicBool>| vec![boxed(Odd), boxed(Writer::new("b").broken(broken))];
    let ctx = context(scratch.open().await);
    SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("b is broken");
    let run = last_run(&ctx);
    let mut expected = ctx.state_snapshot().await;
    drop(ctx);

    broken.store(false, Ordering::SeqCst);
    let fresh = context(scratch.open().await);
    resume(&SequentialOrchestrator::new(), agents(&broken), run, &fresh)
        .await
        .expect("the resumed run ends");
    let mut state = fresh.state_snapshot().await;
    // What b's failed attempt wrote is dropped; b wrote it again.
    for key in ["log", "last", "seen", "count"] {
        expected.remove(key);
        state.remove(key);
    }
    assert_eq!(state, expected);
    assert_eq!(state.get("scalar"), Some(&json!({"z": 0})));
    assert_eq!(state.get("whole"), Some(&json!("not an object")));
    assert!(!state.contains_key("gone"));
}

// -------------------------------------------------------------- resuming

/// A fan-out's branches append in whatever order they end; a fresh
/// context's resume rebuilds the list in that same order, from a SQLite
/// journal as from memory.
#[tokio::test]
async fn a_fresh_resume_rebuilds_what_parallel_branches_appended_in_their_order() {
    let scratch = Scratch::new("order");
    let broken = Arc::new(AtomicBool::new(true));
    let agents = |broken: &Arc<AtomicBool>| -> Vec<Box<dyn Agent>> {
        (0..20)
            .map(|i| {
                let writer = Writer::new(format!("w{i}"));
                boxed(if i == 13 {
                    writer.broken(broken)
                } else {
                    writer
                })
            })
            .collect()
    };
    let memory: Arc<dyn Journal> = Arc::new(InMemoryJournal::new());
    for journal in [memory, scratch.open().await] {
        broken.store(true, Ordering::SeqCst);
        let ctx = context(Arc::clone(&journal));
        ParallelOrchestrator::new()
            .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
            .await
            .expect_err("w13 is broken");
        let run = last_run(&ctx);
        let stopped: Vec<String> = log_of(&ctx)
            .await
            .into_iter()
            .filter(|name| name != "w13")
            .collect();
        assert_eq!(stopped.len(), 19);

        broken.store(false, Ordering::SeqCst);
        let fresh = context(journal);
        resume(&ParallelOrchestrator::new(), agents(&broken), run, &fresh)
            .await
            .expect("the resumed run ends");
        let mut expected = stopped;
        expected.push("w13".to_owned());
        assert_eq!(log_of(&fresh).await, expected);
    }
}

/// An attempt that failed and was retried is over: its step finished with
/// the next attempt, and what the failed one wrote stays in the state the
/// run goes on with. A resumed run starts from that state — in a fresh
/// context (another process) as under the context the run ran under.
#[tokio::test]
async fn a_retried_attempts_writes_are_in_the_state_a_fresh_resume_starts_from() {
    let scratch = Scratch::new("retried");
    let broken = Arc::new(AtomicBool::new(true));
    let agents = |broken: &Arc<AtomicBool>| {
        vec![
            boxed(Writer::new("flaky").flaky(1)),
            boxed(Writer::new("b").broken(broken)),
        ]
    };
    let ctx = context(scratch.open().await);
    SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("b is broken");
    let run = last_run(&ctx);
    // b failed for good (not retried): its step runs again on resume.
    assert_eq!(log_of(&ctx).await, ["flaky", "flaky", "b"]);
    drop(ctx);

    broken.store(false, Ordering::SeqCst);
    let fresh = context(scratch.open().await);
    resume(&SequentialOrchestrator::new(), agents(&broken), run, &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(log_of(&fresh).await, ["flaky", "flaky", "b"]);
    assert_eq!(fresh.get_state("count").await, Some(json!(3)));
    assert_eq!(
        fresh.get_state("seen").await,
        Some(json!({"flaky": 2, "b": 1}))
    );
}

/// A context seeded before the resume (the process sets up what every run
/// starts with, as it did for the first run) still gets the changes the
/// finished steps made to those keys: "a fresh one gets them all".
#[tokio::test]
async fn a_fresh_context_seeded_before_the_resume_still_gets_the_finished_steps_changes() {
    let journal: Arc<dyn Journal> = Arc::new(InMemoryJournal::new());
    let broken = Arc::new(AtomicBool::new(true));
    let agents = |broken: &Arc<AtomicBool>| {
        vec![
            boxed(Writer::new("a")),
            boxed(Writer::new("b").broken(broken)),
        ]
    };
    let seeded = |journal: Arc<dyn Journal>| async move {
        let ctx = context(journal);
        ctx.set_state("log", json!(["seed"])).await;
        ctx.set_state("seen", json!({"seed": 0})).await;
        ctx
    };
    let ctx = seeded(Arc::clone(&journal)).await;
    SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("b is broken");
    let run = last_run(&ctx);

    broken.store(false, Ordering::SeqCst);
    let fresh = seeded(Arc::clone(&journal)).await;
    resume(&SequentialOrchestrator::new(), agents(&broken), run, &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(log_of(&fresh).await, ["seed", "a", "b"]);
    assert_eq!(
        fresh.get_state("seen").await,
        Some(json!({"seed": 0, "a": 1, "b": 1}))
    );
}

/// A chain of resumes under one context replays nothing twice, and a
/// second process resuming the chain's newest run rebuilds the same state
/// from the journal.
#[tokio::test]
async fn a_chain_of_resumes_replays_each_change_once() {
    let scratch = Scratch::new("chain");
    let flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(true))).collect();
    let agents = |flags: &[Arc<AtomicBool>]| {
        vec![
            boxed(Writer::new("a")),
            boxed(Writer::new("b").broken(&flags[0])),
            boxed(Writer::new("c").broken(&flags[1])),
            boxed(Writer::new("d").broken(&flags[2])),
        ]
    };
    let pipeline = SequentialOrchestrator::new();
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_max_retries(0))
        .with_journal(scratch.open().await);
    pipeline
        .orchestrate_with_context(agents(&flags), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("b is broken");
    flags[0].store(false, Ordering::SeqCst);
    let first = last_run(&ctx);
    resume(&pipeline, agents(&flags), first, &ctx)
        .await
        .expect_err("c is broken");
    let second = last_run(&ctx);
    assert_ne!(first, second);
    // Under the context the runs ran under, it keeps what it has: b's
    // failed attempt wrote once, and so did c's.
    assert_eq!(log_of(&ctx).await, ["a", "b", "b", "c"]);

    // Another process resumes the newest run: the finished steps' changes,
    // once each, in order.
    flags[1].store(false, Ordering::SeqCst);
    flags[2].store(false, Ordering::SeqCst);
    let fresh = ExecutionContext::new(ExecutionConfig::new().with_max_retries(0))
        .with_journal(scratch.open().await);
    resume(&pipeline, agents(&flags), second, &fresh)
        .await
        .expect("the chain ends");
    assert_eq!(log_of(&fresh).await, ["a", "b", "c", "d"]);
    // `update_state` is journaled as the value it made: b's count in the
    // second run was made on top of its failed attempt's in the first,
    // whose own change is dropped (b ran again).
    assert_eq!(fresh.get_state("count").await, Some(json!(5)));
}

// ---------------------------------------------------------------- forks

/// A fork starts from the state after its step — also under the context
/// the forked run ran under, which holds what the steps after the fork
/// point wrote: those steps run anew, and must not find (and add to) their
/// old writes.
#[tokio::test]
async fn a_fork_under_the_context_the_run_ran_under_starts_from_the_state_after_its_step() {
    let journal: Arc<dyn Journal> = Arc::new(InMemoryJournal::new());
    let agents = || {
        vec![
            boxed(Writer::new("a")),
            boxed(Writer::new("b")),
            boxed(Writer::new("c")),
        ]
    };
    let pipeline = SequentialOrchestrator::new();
    let ctx = context(journal);
    ctx.set_state("mine", json!("the caller's")).await;
    pipeline
        .orchestrate_with_context(agents(), OrchestratorInput::new("x"), &ctx)
        .await
        .expect("the run ends");
    let run = last_run(&ctx);
    assert_eq!(log_of(&ctx).await, ["a", "b", "c"]);

    fork(&pipeline, agents(), run, "a", None, &ctx)
        .await
        .expect("the fork ends");
    assert_eq!(
        log_of(&ctx).await,
        ["a", "b", "c"],
        "b and c wrote once more"
    );
    assert_eq!(ctx.get_state("count").await, Some(json!(3)));
    assert_eq!(ctx.get_state("last").await, Some(json!("c")));
    assert_eq!(
        ctx.get_state("mine").await,
        Some(json!("the caller's")),
        "a key no run changed is the caller's"
    );
}

/// The same fork in a fresh context starts from the changes up to the
/// fork point alone.
#[tokio::test]
async fn a_fork_in_a_fresh_context_starts_from_the_changes_up_to_its_step() {
    let scratch = Scratch::new("fork");
    let agents = || {
        vec![
            boxed(Writer::new("a")),
            boxed(Writer::new("b")),
            boxed(Writer::new("c")),
        ]
    };
    let pipeline = SequentialOrchestrator::new();
    let ctx = context(scratch.open().await);
    pipeline
        .orchestrate_with_context(agents(), OrchestratorInput::new("x"), &ctx)
        .await
        .expect("the run ends");
    let run = last_run(&ctx);
    drop(ctx);

    struct Peek;
    #[async_trait]
    impl Agent for Peek {
        fn name(&self) -> &str {
            "b"
        }
        fn description(&self) -> &str {
            "reads the state"
        }
        async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
            let ctx = ExecutionContext::current().expect("in a run");
            let log = ctx.get_state("log").await.unwrap_or_default();
            Ok(AgentOutput::new(log.to_string()))
        }
    }
    let fresh = context(scratch.open().await);
    let output = fork(
        &pipeline,
        vec![
            boxed(Writer::new("a")),
            boxed(Peek),
            boxed(Writer::new("c")),
        ],
        run,
        "a",
        None,
        &fresh,
    )
    .await
    .expect("the fork ends");
    assert_eq!(output.agent_outputs[1].content, r#"["a"]"#);
    assert_eq!(log_of(&fresh).await, ["a", "c"]);
}

// ------------------------------------------------- nested runs and tasks

/// A run nested in a step (an `OrchestratorAgent` over a pipeline) writes
/// the outer run's state: the next outer step reads it, the changes are
/// journaled once, and a fresh resume after a later failure replays them
/// once.
#[tokio::test]
async fn a_nested_runs_writes_reach_the_outer_run_and_are_replayed_once() {
    let journal = Arc::new(InMemoryJournal::new());
    let broken = Arc::new(AtomicBool::new(true));
    let inner_calls = Arc::new(AtomicU32::new(0));
    let agents = |broken: &Arc<AtomicBool>| {
        vec![
            boxed(OrchestratorAgent::new(
                "nested",
                "a pipeline",
                SequentialOrchestrator::new(),
                vec![
                    boxed(Writer::new("n1").counted(&inner_calls)),
                    boxed(Writer::new("n2")),
                ],
            )),
            boxed(Writer::new("after").broken(broken)),
        ]
    };
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_max_retries(0))
        .with_journal(journal.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("after is broken");
    assert_eq!(log_of(&ctx).await, ["n1", "n2", "after"]);
    let run = last_run(&ctx);
    let journaled = journal
        .events()
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::StateChanged { key, .. } if key == "log"))
        .count();
    assert_eq!(journaled, 3, "each append journaled once");

    broken.store(false, Ordering::SeqCst);
    let fresh = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    resume(&SequentialOrchestrator::new(), agents(&broken), run, &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(log_of(&fresh).await, ["n1", "n2", "after"]);
    assert_eq!(
        inner_calls.load(Ordering::SeqCst),
        1,
        "the nested step is reused"
    );
}

/// A task an agent spawns with `ExecutionContext::spawn` writes as the
/// attempt: its writes are journaled with it and replayed by a fresh resume.
#[tokio::test]
async fn writes_from_a_task_spawned_with_the_context_are_journaled_with_the_attempt() {
    struct Spawner;
    #[async_trait]
    impl Agent for Spawner {
        fn name(&self) -> &str {
            "spawner"
        }
        fn description(&self) -> &str {
            "writes from a task"
        }
        async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
            let read = ExecutionContext::spawn(async {
                let ctx = ExecutionContext::current().expect("the task carries the context");
                ctx.append_state("log", json!("from the task")).await;
                ctx.get_state("log").await
            })
            .await
            .expect("the task ends");
            Ok(AgentOutput::new(read.unwrap_or_default().to_string()))
        }
    }
    let journal = Arc::new(InMemoryJournal::new());
    let broken = Arc::new(AtomicBool::new(true));
    let agents =
        |broken: &Arc<AtomicBool>| vec![boxed(Spawner), boxed(Writer::new("b").broken(broken))];
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_max_retries(0))
        .with_journal(journal.clone());
    let failed = SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(failed.is_err());
    let run = last_run(&ctx);
    let spawner_wrote = journal.events().iter().any(|event| {
        matches!(&event.kind, EventKind::StateChanged { node, attempt: 1, key, .. }
            if key == "log" && node.index() == 0)
    });
    assert!(spawner_wrote, "journaled as the spawner's attempt");

    broken.store(false, Ordering::SeqCst);
    let fresh = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let output = resume(&SequentialOrchestrator::new(), agents(&broken), run, &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(output.agent_outputs[0].content, r#"["from the task"]"#);
    assert_eq!(log_of(&fresh).await, ["from the task", "b"]);
}

/// A graph paused by a question and resumed from its `Pause` in a fresh
/// context seeded the way the first run's was: the state the run had when
/// it paused wins over the seed for the keys the run changed.
#[tokio::test]
async fn a_pause_resumed_in_a_fresh_seeded_context_starts_from_the_paused_state() {
    struct Asker;
    #[async_trait]
    impl Agent for Asker {
        fn name(&self) -> &str {
            "asker"
        }
        fn description(&self) -> &str {
            "writes, then asks"
        }
        async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
            let ctx = ExecutionContext::current().expect("in a run");
            let answer = ctx.ask("go", "go on?")?;
            Ok(AgentOutput::new(answer))
        }
    }
    let graph = || {
        GraphOrchestrator::new("paused")
            .add_node("a", Writer::new("a"))
            .add_node("ask", Asker)
            .add_edge(START, "a")
            .add_edge("a", "ask")
            .add_edge("ask", END)
    };
    let seeded = || async {
        let ctx = ExecutionContext::new(ExecutionConfig::new());
        ctx.set_state("log", json!(["seed"])).await;
        ctx
    };
    let ctx = seeded().await;
    let paused = graph()
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the run pauses: {paused:?}");
    };
    assert_eq!(log_of(&ctx).await, ["seed", "a"]);

    let fresh = seeded().await;
    let output = graph()
        .resume_in(*pause, [("go", "yes")], &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(output.result, "yes");
    assert_eq!(log_of(&fresh).await, ["seed", "a"]);
}

/// Inside a step that finished, a nested step's failed attempt that was
/// retried wrote too: a fresh resume after a later failure keeps its
/// changes, as the run went on with them.
#[tokio::test]
async fn a_nested_retried_attempts_writes_are_kept_when_its_outer_step_finished() {
    let journal = Arc::new(InMemoryJournal::new());
    let broken = Arc::new(AtomicBool::new(true));
    let agents = |broken: &Arc<AtomicBool>| {
        vec![
            boxed(OrchestratorAgent::new(
                "nested",
                "a pipeline with a flaky step",
                SequentialOrchestrator::new(),
                vec![boxed(Writer::new("n1").flaky(1)), boxed(Writer::new("n2"))],
            )),
            boxed(Writer::new("after").broken(broken)),
        ]
    };
    let ctx = context(journal.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("after is broken");
    assert_eq!(log_of(&ctx).await, ["n1", "n1", "n2", "after"]);
    let run = last_run(&ctx);

    broken.store(false, Ordering::SeqCst);
    let fresh = context(journal);
    resume(&SequentialOrchestrator::new(), agents(&broken), run, &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(log_of(&fresh).await, ["n1", "n1", "n2", "after"]);
    assert_eq!(fresh.get_state("count").await, Some(json!(4)));
}
