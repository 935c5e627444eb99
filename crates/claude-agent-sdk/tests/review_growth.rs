//! How costs grow (an adversarial review): stored bytes per step, events a
//! resume reads, what a long-lived context keeps, maps over many items and
//! deep nesting. Every test compares counts (bytes, events, calls) at two
//! sizes; none times anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::store::SqliteJournal;
use claude_agent_sdk::orchestration::{
    resume, AgentInput, AgentOutput, EventKind, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, Journal, JournalEvent, OrchestrationError, Orchestrator,
    OrchestratorInput, Result, RunId, SimpleAgent, Split, END, START,
};

// ---------------------------------------------------------------- helpers

/// A journal that counts what goes through it, over another.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Journal>,
    reads: AtomicUsize,
    events_read: AtomicUsize,
}

impl Counting {
    fn over(inner: Arc<dyn Journal>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            reads: AtomicUsize::new(0),
            events_read: AtomicUsize::new(0),
        })
    }

    fn reset(&self) {
        self.reads.store(0, Ordering::SeqCst);
        self.events_read.store(0, Ordering::SeqCst);
    }

    fn counted(&self, events: &[JournalEvent]) {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.events_read.fetch_add(events.len(), Ordering::SeqCst);
    }
}

#[async_trait]
impl Journal for Counting {
    fn append(&self, event: JournalEvent) {
        self.inner.append(event);
    }
    fn reserve(&self, additional: usize) {
        self.inner.reserve(additional);
    }
    async fn read(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let events = self.inner.read(runs).await;
        self.counted(&events);
        events
    }
    async fn read_checked(&self, runs: &[RunId]) -> Result<Vec<JournalEvent>> {
        let events = self.inner.read_checked(runs).await?;
        self.counted(&events);
        Ok(events)
    }
    async fn take(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let events = self.inner.take(runs).await;
        self.counted(&events);
        events
    }
    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }
    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }
    async fn claim_resume(&self, run: RunId, by: RunId) -> Result<Option<RunId>> {
        self.inner.claim_resume(run, by).await
    }
}

/// A SQLite file in a fresh temporary folder (removed when dropped).
struct TempStore {
    folder: std::path::PathBuf,
}

impl TempStore {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let folder = std::env::temp_dir().join(format!(
            "review-growth-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        Self { folder }
    }

    fn path(&self) -> std::path::PathBuf {
        self.folder.join("runs.db")
    }

    async fn open(&self) -> Arc<SqliteJournal> {
        Arc::new(SqliteJournal::open(self.path()).await.unwrap())
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The bytes an event takes as stored (its body is its kind's JSON).
fn body_bytes(events: &[JournalEvent]) -> usize {
    events
        .iter()
        .map(|event| serde_json::to_string(&event.kind).unwrap().len())
        .sum()
}

/// An agent answering `{name}:{n}` padded to about `size` bytes, counting its calls.
fn counted_agent(
    name: &'static str,
    size: usize,
    calls: &Arc<AtomicUsize>,
) -> SimpleAgent<impl Fn(AgentInput) -> Result<AgentOutput> + Send + Sync + 'static> {
    let calls = Arc::clone(calls);
    SimpleAgent::new(name, "counts its calls", move |_| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut text = format!("{name}:{n}:");
        while text.len() < size {
            text.push('x');
        }
        Ok(AgentOutput::new(text))
    })
}

/// a -> b, looping back to a for `passes` passes in all.
fn loop_graph(passes: u32, calls: &Arc<AtomicUsize>) -> GraphOrchestrator {
    GraphOrchestrator::new("loop")
        .add_node("a", counted_agent("a", 200, calls))
        .add_node("b", counted_agent("b", 200, calls))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_loop("b", "a", passes, move |route| route.iteration < passes)
        .add_edge("b", END)
        .with_max_steps(4 * passes as usize + 10)
}

// ------------------------------------------- a durable loop's stored size

/// Bytes stored per step of a loop run on SQLite, for `passes` passes.
async fn stored_bytes_per_step(passes: u32) -> f64 {
    let store = TempStore::new("loop");
    let journal = store.open().await;
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    loop_graph(passes, &calls)
        .orchestrate_with_context(vec![], OrchestratorInput::new("go"), &ctx)
        .await
        .unwrap();
    let steps = f64::from(2 * passes);
    assert_eq!(calls.load(Ordering::SeqCst), 2 * passes as usize);
    let run = ctx.run_ids()[0];
    let events = journal.read(&[run]).await;
    body_bytes(&events) as f64 / steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_loop_stores_the_same_bytes_per_step_at_any_length() {
    let small = stored_bytes_per_step(50).await;
    let large = stored_bytes_per_step(500).await;
    eprintln!("event bytes per step: {small:.0} at 100 steps, {large:.0} at 1000");
    assert!(
        large <= small * 1.5,
        "event bytes per step grew from {small:.0} to {large:.0}"
    );
}

// ------------------------------- a conversation paused again and again

/// reply -> turn (asks a person) -> back to reply until the answer is "bye".
fn chat(calls: &Arc<AtomicUsize>) -> GraphOrchestrator {
    GraphOrchestrator::new("chat")
        .add_node("reply", counted_agent("reply", 500, calls))
        .add_ask("turn", "Anything else?")
        .add_edge(START, "reply")
        .add_edge("reply", "turn")
        .add_loop("turn", "reply", 10_000, |route| {
            route.output.content != "bye"
        })
        .add_edge("turn", END)
}

/// Runs the chat on SQLite through `pauses` pauses, each resumed from the
/// journal as `orchestra` does; returns the bytes each run stored (but for
/// its steps' announcements, `StepAdded`), the events the last resume
/// read, and the replies made in all.
async fn chat_through(pauses: usize) -> (Vec<usize>, usize, usize) {
    let store = TempStore::new("chat");
    let journal = Counting::over(store.open().await);
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let graph = chat(&calls);
    let mut result = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("hello"), &ctx)
        .await;
    let mut last_read = 0;
    for pass in 1..=pauses {
        let Err(OrchestrationError::InputRequired(pause)) = &result else {
            panic!("pass {pass}: expected a pause, got {result:?}");
        };
        let id = pause.questions[0].id.clone();
        let answer = if pass == pauses { "bye" } else { "more" };
        ctx.answer(id, answer);
        let paused = *ctx.run_ids().last().unwrap();
        journal.reset();
        result = resume(&graph, vec![], paused, &ctx).await;
        last_read = journal.events_read.load(Ordering::SeqCst);
    }
    result.unwrap();
    let mut per_run = Vec::new();
    for run in ctx.run_ids() {
        let events = journal.inner.read(&[run]).await;
        let events: Vec<JournalEvent> = events
            .into_iter()
            .filter(|event| !matches!(event.kind, EventKind::StepAdded { .. }))
            .collect();
        per_run.push(body_bytes(&events));
    }
    (per_run, last_read, calls.load(Ordering::SeqCst))
}

/// A run paused for a person journaled its whole pause — the outputs of
/// every step finished so far, the shared state, every answer — and each
/// run journaled every answer of its chain again: a conversation paused at
/// every turn stored its history once per turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_paused_at_every_turn_stores_its_outputs_and_answers_once() {
    let (small, _, small_calls) = chat_through(5).await;
    let (large, _, large_calls) = chat_through(40).await;
    // One reply per pass: nothing finished ran again (the last answer ends it).
    assert_eq!(small_calls, 5);
    assert_eq!(large_calls, 40);
    // The runs that paused at turn 5 and at turn 40 (run 0 paused first).
    let early = small[4];
    let late = large[39];
    eprintln!("bytes stored by the run paused at turn 5: {early}; at turn 40: {late}");
    assert!(
        late <= early * 3 / 2,
        "a resumed run stores again what the runs before it stored: \
         the run paused at turn 5 stored {early} B, at turn 40 {late} B"
    );
}

/// A resumed graph run does not announce again the steps it takes back (it
/// journaled a `StepAdded` for each, so the run paused at turn k stored 2k
/// of them, and a resume, which reads every run of its chain, read 2,122
/// events at turn 40 against 92 at turn 5: quadratic in the turns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_conversation_reads_the_same_events_per_turn() {
    let (_, small_read, _) = chat_through(5).await;
    let (_, large_read, _) = chat_through(40).await;
    eprintln!("events the last resume read: {small_read} after 5 turns, {large_read} after 40");
    assert!(
        large_read / 40 <= small_read / 5 * 3 / 2,
        "events read per turn grew from {} to {}",
        small_read / 5,
        large_read / 40
    );
}

/// `depth` levels of graphs, each running an agent and then the next level;
/// the innermost asks a person.
fn asking_at_depth(depth: usize, calls: &Arc<AtomicUsize>) -> GraphOrchestrator {
    let mut graph = GraphOrchestrator::new("level0")
        .add_ask("ask", "Go on?")
        .add_edge(START, "ask")
        .add_edge("ask", END);
    for level in 1..depth {
        graph = GraphOrchestrator::new(format!("level{level}"))
            .add_node("pre", counted_agent("pre", 200, calls))
            .add_subgraph("inner", graph)
            .add_edge(START, "pre")
            .add_edge("pre", "inner")
            .add_edge("inner", END);
    }
    graph
}

/// The bytes journaled by a run that pauses `depth` levels deep.
async fn paused_deep(depth: usize) -> usize {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let result = asking_at_depth(depth, &calls)
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(matches!(result, Err(OrchestrationError::InputRequired(_))));
    assert_eq!(calls.load(Ordering::SeqCst), depth - 1);
    body_bytes(&journal.events())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_deep_in_nested_graphs_journals_the_same_bytes_per_level() {
    let small = paused_deep(10).await;
    let large = paused_deep(60).await;
    eprintln!("paused 10 levels deep: {small} B; 60 levels deep: {large} B");
    assert!(
        large / 60 <= small / 10 * 3 / 2,
        "journal bytes per level grew from {} to {}",
        small / 10,
        large / 60
    );
}

// -------------------------------------------------- resuming after N steps

/// a -> b looping `passes` passes; b fails for good on pass `fail_at` the
/// first time round.
fn failing_loop(
    passes: u32,
    fail_at: usize,
    calls: &Arc<AtomicUsize>,
    failed: &Arc<AtomicUsize>,
) -> GraphOrchestrator {
    let b_calls = Arc::new(AtomicUsize::new(0));
    let failed = Arc::clone(failed);
    let calls_b = Arc::clone(calls);
    let b = SimpleAgent::new("b", "fails once", move |_| {
        let n = b_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == fail_at && failed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(claude_agent_sdk::orchestration::AgentError::new("down").into());
        }
        calls_b.fetch_add(1, Ordering::SeqCst);
        Ok(AgentOutput::new(format!("b:{n}")))
    });
    GraphOrchestrator::new("loop")
        .add_node("a", counted_agent("a", 100, calls))
        .add_node("b", b)
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_loop("b", "a", passes, move |route| route.iteration < passes)
        .add_edge("b", END)
        .with_max_steps(4 * passes as usize + 10)
}

/// Runs a loop that fails at pass `passes`, then resumes it: the events the
/// resume read, the events stored before it, and the agent calls the
/// resumed run made.
async fn resume_after(passes: u32) -> (usize, usize, usize, usize) {
    let store = TempStore::new("resume");
    let journal = Counting::over(store.open().await);
    let config = ExecutionConfig::new().with_max_retries(0);
    let ctx = ExecutionContext::new(config).with_journal(journal.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let graph = failing_loop(passes, passes as usize, &calls, &failed);
    let first = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("go"), &ctx)
        .await;
    assert!(first.is_err());
    let stopped = ctx.run_ids()[0];
    let stored = journal.inner.read(&[stopped]).await.len();
    let before = calls.load(Ordering::SeqCst);
    journal.reset();
    // A fresh process: a new context on the same file.
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    // The graph's b has failed once already: it succeeds now.
    let output = resume(&graph, vec![], stopped, &ctx).await.unwrap();
    assert_eq!(output.result, format!("b:{}", passes + 1));
    let reads = journal.reads.load(Ordering::SeqCst);
    let read = journal.events_read.load(Ordering::SeqCst);
    let ran = calls.load(Ordering::SeqCst) - before;
    (read, stored, ran, reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_long_run_reads_its_events_once_and_runs_only_what_was_left() {
    for passes in [50_u32, 400] {
        let (read, stored, ran, reads) = resume_after(passes).await;
        eprintln!(
            "{passes} passes: {stored} events stored; the resume read {read} in {reads} reads \
             and ran {ran} agents"
        );
        // Only the step that failed runs again.
        assert_eq!(ran, 1, "{passes} passes: the resume ran {ran} agents");
        // The stopped run read once; the resumed run's own trace once more.
        assert!(
            read <= stored + 3 * (2 * passes as usize) + 20,
            "{passes} passes: the resume read {read} events for {stored} stored"
        );
        assert!(reads <= 3, "{passes} passes: {reads} reads");
    }
}

// ------------------------------------------------ a long-lived context

/// What a context used for `runs` small runs holds afterwards.
async fn after_runs(runs: usize, journal: &Arc<InMemoryJournal>) -> (usize, usize) {
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let graph = GraphOrchestrator::new("one")
        .add_node("a", counted_agent("a", 10, &calls))
        .add_edge(START, "a")
        .add_edge("a", END);
    for _ in 0..runs {
        graph
            .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
            .await
            .unwrap();
    }
    (ctx.run_ids().len(), journal.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_context_keeps_what_its_docs_say_it_keeps() {
    let journal = Arc::new(InMemoryJournal::new());
    let (ids, events) = after_runs(2_000, &journal).await;
    // The history and the in-memory journal keep every run: documented on
    // ExecutionContext and InMemoryJournal. Events per run stay flat.
    assert_eq!(ids, 2_000);
    assert!(
        events <= 2_000 * 6,
        "{events} events for 2000 one-step runs"
    );
}

// ------------------------------------------------------- a map of many items

async fn map_over(items: usize) -> (usize, usize, usize) {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_parallel_limit(16))
        .with_journal(journal.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let graph = GraphOrchestrator::new("map")
        .add_map("each", counted_agent("each", 20, &calls), Split::Lines)
        .add_edge(START, "each")
        .add_edge("each", END)
        .with_max_steps(items + 10);
    let input: String = (0..items).map(|i| format!("item {i}\n")).collect();
    let output = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new(input), &ctx)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), items);
    let records = output.execution_trace.agent_executions.len();
    let events = journal.events();
    (events.len(), body_bytes(&events), records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_journals_the_same_per_item_at_any_size() {
    let (small_events, small_bytes, small_records) = map_over(1_000).await;
    let (large_events, large_bytes, large_records) = map_over(10_000).await;
    eprintln!(
        "1000 items: {small_events} events, {small_bytes} B; \
         10000 items: {large_events} events, {large_bytes} B"
    );
    assert!(small_records >= 1_000 && large_records >= 10_000);
    assert!(large_events <= small_events * 10 * 11 / 10);
    assert!(
        large_bytes <= small_bytes * 10 * 3 / 2,
        "bytes per item grew from {} to {}",
        small_bytes / 1_000,
        large_bytes / 10_000
    );
}

// ------------------------------------------------------------ deep nesting

/// A graph of `depth` levels, each a subgraph of the next, one agent at the bottom.
fn nested(depth: usize, calls: &Arc<AtomicUsize>) -> GraphOrchestrator {
    let mut graph = GraphOrchestrator::new("level0")
        .add_node("leaf", counted_agent("leaf", 10, calls))
        .add_edge(START, "leaf")
        .add_edge("leaf", END);
    for level in 1..depth {
        graph = GraphOrchestrator::new(format!("level{level}"))
            .add_subgraph("inner", graph)
            .add_edge(START, "inner")
            .add_edge("inner", END);
    }
    graph
}

/// Runs `depth` levels on a current-thread runtime inside a plain thread
/// (the default 2 MiB stack): the events journaled, the trace's JSON bytes.
fn deep_run(depth: usize) -> (usize, usize) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let journal = Arc::new(InMemoryJournal::new());
            let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
            let calls = Arc::new(AtomicUsize::new(0));
            let graph = nested(depth, &calls);
            let output = graph
                .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
                .await
                .unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            let json = serde_json::to_string(&output.execution_trace).unwrap();
            let events = journal.len();
            drop(output);
            drop(graph);
            (events, json.len())
        })
    })
    .join()
    .unwrap()
}

#[test]
fn deep_nesting_costs_the_same_per_level_on_a_default_thread() {
    let (small_events, small_json) = deep_run(50);
    let (large_events, large_json) = deep_run(500);
    eprintln!(
        "50 levels: {small_events} events, trace {small_json} B; \
         500 levels: {large_events} events, trace {large_json} B"
    );
    assert!(large_events <= small_events * 10 * 11 / 10);
    assert!(
        large_json <= small_json * 10 * 3 / 2,
        "trace bytes per level grew from {} to {}",
        small_json / 50,
        large_json / 500
    );
}
