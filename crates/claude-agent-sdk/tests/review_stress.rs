//! Stress tests from an adversarial review of concurrency and lifetimes:
//! deep compositions under random stops (seeded; every failing assertion
//! prints its seed), and the races the review found between a run closing
//! its books and what it left running.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, EventKind, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, Journal, JournalEvent, OrchestrationError, Orchestrator,
    OrchestratorAgent, OrchestratorInput, ParallelOrchestrator, Result, RunEvent, RunId,
    RunObserver, SequentialOrchestrator, Split, Usage, END, START,
};

// ---------------------------------------------------------------- helpers

/// A tiny deterministic RNG (xorshift64*).
#[derive(Clone)]
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Counts running agents per "run instance" (idempotency key minus its last
/// two components) and checks each against a limit.
#[derive(Default)]
pub struct Levels {
    running: Mutex<HashMap<String, usize>>,
    pub total_running: AtomicUsize,
    pub violations: Mutex<Vec<String>>,
    pub max_seen: Mutex<HashMap<String, usize>>,
}

struct LevelGuard {
    levels: Arc<Levels>,
    key: String,
}

impl Drop for LevelGuard {
    fn drop(&mut self) {
        let mut running = self.levels.running.lock().unwrap();
        *running.get_mut(&self.key).unwrap() -= 1;
        self.levels.total_running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run_key() -> String {
    let key = ExecutionContext::idempotency_key().unwrap_or_default();
    let mut parts: Vec<&str> = key.split('/').collect();
    parts.truncate(parts.len().saturating_sub(2));
    parts.join("/")
}

impl Levels {
    fn enter(self: &Arc<Self>, limit: usize, label: &str) -> LevelGuard {
        let key = run_key();
        let mut running = self.running.lock().unwrap();
        let now = running.entry(key.clone()).or_default();
        *now += 1;
        let n = *now;
        drop(running);
        self.total_running.fetch_add(1, Ordering::SeqCst);
        let mut max = self.max_seen.lock().unwrap();
        let m = max.entry(format!("{label}@{key}")).or_default();
        *m = (*m).max(n);
        if n > limit {
            self.violations
                .lock()
                .unwrap()
                .push(format!("{label}: {n} running in run {key} > limit {limit}"));
        }
        LevelGuard {
            levels: Arc::clone(self),
            key,
        }
    }
}

/// Wraps an agent: counts it as running in its run, against `limit`.
pub struct Counted {
    inner: Box<dyn Agent>,
    limit: usize,
    levels: Arc<Levels>,
}

#[async_trait]
impl Agent for Counted {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn description(&self) -> &str {
        "counted"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let _guard = self.levels.enter(self.limit, self.inner.name());
        self.inner.execute(input).await
    }
}

fn counted(inner: impl Agent + 'static, limit: usize, levels: &Arc<Levels>) -> Counted {
    Counted {
        inner: Box::new(inner),
        limit,
        levels: Arc::clone(levels),
    }
}

/// Sleeps a pseudo-random time (derived from its input and a seed), then
/// answers `lines` lines (so a following map gets items).
pub struct Leaf {
    name: String,
    seed: u64,
    lines: usize,
    max_ms: u64,
}

#[async_trait]
impl Agent for Leaf {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "sleeps"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let mut h = self.seed;
        for b in input.content.bytes().chain(run_key().bytes()) {
            h = h.wrapping_mul(31).wrapping_add(u64::from(b));
        }
        let ms = Rng::new(h).below(self.max_ms + 1);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let body: Vec<String> = (0..self.lines)
            .map(|i| format!("{}-{i}", self.name))
            .collect();
        Ok(AgentOutput::new(body.join("\n")))
    }
}

fn leaf(name: &str, seed: u64, lines: usize, max_ms: u64) -> Leaf {
    Leaf {
        name: name.to_owned(),
        seed,
        lines,
        max_ms,
    }
}

/// Records observer events.
#[derive(Default)]
pub struct Seen {
    pub events: Mutex<Vec<String>>,
}

impl RunObserver for Seen {
    fn on_event(&self, event: &RunEvent<'_>) {
        let line = match event {
            RunEvent::RunStarted { run, parent, .. } => {
                format!("start {run} parent={:?}", parent.map(|p| p.run.to_string()))
            }
            RunEvent::RunFinished { run, .. } => format!("finish {run}"),
            RunEvent::AttemptStarted {
                run, node, attempt, ..
            } => format!("astart {run} {} {attempt}", node.0),
            RunEvent::AttemptFinished {
                run, node, attempt, ..
            } => format!("aend {run} {} {attempt}", node.0),
            RunEvent::RetryScheduled { run, node, .. } => format!("retry {run} {}", node.0),
            _ => "other".to_owned(),
        };
        self.events.lock().unwrap().push(line);
    }
}

/// Journal invariants: per run, RunStarted first and RunFinished last and
/// once; every AttemptStarted has exactly one AttemptFinished after it; a
/// nested run finishes before its parent attempt ends; nothing follows the
/// root's RunFinished.
pub fn check_journal(events: &[JournalEvent], root: RunId) -> Vec<String> {
    let mut problems = Vec::new();
    let mut started: HashMap<RunId, usize> = HashMap::new();
    let mut finished: HashMap<RunId, usize> = HashMap::new();
    let mut parent_of: HashMap<RunId, (RunId, u32, u32)> = HashMap::new();
    let mut open: HashMap<(RunId, u32, u32), usize> = HashMap::new();
    let mut ended: HashMap<(RunId, u32, u32), usize> = HashMap::new();
    let mut attempt_end_at: HashMap<(RunId, u32, u32), usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if finished.contains_key(&e.run) {
            problems.push(format!(
                "event #{i} of run {} after its RunFinished: {:?}",
                e.run,
                short(&e.kind)
            ));
        }
        if !started.contains_key(&e.run) && !matches!(e.kind, EventKind::RunStarted { .. }) {
            problems.push(format!("event #{i} of run {} before its RunStarted", e.run));
        }
        match &e.kind {
            EventKind::RunStarted { parent, .. } => {
                if started.insert(e.run, i).is_some() {
                    problems.push(format!("run {} started twice", e.run));
                }
                if let Some(p) = parent {
                    parent_of.insert(e.run, (p.run, p.node.0, p.attempt));
                    if attempt_end_at.contains_key(&(p.run, p.node.0, p.attempt)) {
                        problems.push(format!(
                            "run {} started (#{i}) inside attempt {:?} that had already ended",
                            e.run,
                            (p.node.0, p.attempt)
                        ));
                    }
                }
            }
            EventKind::RunFinished { .. } => {
                finished.insert(e.run, i);
            }
            EventKind::AttemptStarted { node, attempt, .. } => {
                let k = (e.run, node.0, *attempt);
                *open.entry(k).or_default() += 1;
            }
            EventKind::AttemptFinished { node, attempt, .. } => {
                let k = (e.run, node.0, *attempt);
                if !open.contains_key(&k) {
                    problems.push(format!("attempt {k:?} finished without start"));
                }
                *ended.entry(k).or_default() += 1;
                attempt_end_at.insert(k, i);
            }
            _ => {}
        }
    }
    for (k, n) in &open {
        let e = ended.get(k).copied().unwrap_or(0);
        if *n != 1 || e != 1 {
            problems.push(format!(
                "attempt {k:?}: started {n} times, finished {e} times"
            ));
        }
    }
    for run in started.keys() {
        if !finished.contains_key(run) {
            problems.push(format!("run {run} never finished"));
        }
    }
    for (child, parent) in &parent_of {
        if let (Some(cf), Some(pe)) = (finished.get(child), attempt_end_at.get(parent)) {
            if cf > pe {
                problems.push(format!(
                    "nested run {child} finished (#{cf}) after its parent attempt {parent:?} ended (#{pe})"
                ));
            }
        }
    }
    if let Some(rf) = finished.get(&root) {
        if *rf != events.len() - 1 {
            problems.push(format!(
                "root RunFinished at #{rf} but {} events follow",
                events.len() - 1 - rf
            ));
        }
    } else {
        problems.push("root never finished".to_owned());
    }
    problems
}

fn short(kind: &EventKind) -> String {
    let s = format!("{kind:?}");
    s.chars().take(120).collect()
}

/// Observer invariants: same pairing for attempts; run finished after all
/// its attempts' ends; nothing after the root's finish.
pub fn check_observed(lines: &[String], root: RunId) -> Vec<String> {
    let mut problems = Vec::new();
    let mut open: HashMap<String, i64> = HashMap::new();
    let mut finished: HashMap<String, usize> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        let parts: Vec<&str> = l.split(' ').collect();
        if parts.len() > 1 && finished.contains_key(parts[1]) {
            problems.push(format!("observer event #{i} `{l}` after its run finished"));
        }
        match parts[0] {
            "astart" => *open.entry(l[7..].to_owned()).or_default() += 1,
            "aend" => {
                let e = open.entry(l[5..].to_owned()).or_default();
                *e -= 1;
                if *e < 0 {
                    problems.push(format!("observer: `{l}` without start or twice"));
                }
            }
            "finish" => {
                finished.insert(parts[1].to_owned(), i);
            }
            _ => {}
        }
    }
    for (k, n) in open {
        if n != 0 {
            problems.push(format!("observer: attempt {k} open count {n}"));
        }
    }
    let r = root.to_string();
    match finished.get(&r) {
        Some(i) if *i != lines.len() - 1 => problems.push(format!(
            "observer: root finished at #{i} of {}",
            lines.len()
        )),
        None => problems.push("observer: root never finished".into()),
        _ => {}
    }
    problems
}

fn root_of(events: &[JournalEvent]) -> Option<RunId> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::RunStarted { parent: None, .. } => Some(e.run),
        _ => None,
    })
}

// ------------------------------------------------ probe 1: deep composition

/// G_inner (limit `l2`): a -> map m (items from a) -> b, loop b -> a (3 passes).
fn inner_graph(seed: u64, levels: &Arc<Levels>, l2: usize, max_ms: u64) -> GraphOrchestrator {
    GraphOrchestrator::new("inner")
        .with_parallel_limit(l2)
        .add_node("a", counted(leaf("a", seed, 4, max_ms), l2, levels))
        .add_map(
            "m",
            counted(leaf("m", seed + 1, 1, max_ms), l2, levels),
            Split::Lines,
        )
        .add_node("b", counted(leaf("b", seed + 2, 1, max_ms), l2, levels))
        .add_edge(START, "a")
        .add_edge("a", "m")
        .add_edge("m", "b")
        .add_loop("b", "a", 3, |r| r.iteration < 3)
        .add_edge("b", END)
}

/// G_mid (limit `l1`): plan -> {x, sub(inner), y} -> join.
fn mid_graph(
    seed: u64,
    levels: &Arc<Levels>,
    l1: usize,
    l2: usize,
    max_ms: u64,
) -> GraphOrchestrator {
    let sub = inner_graph(seed + 10, levels, l2, max_ms);
    let sub_agent = OrchestratorAgent::new("sub", "inner graph", sub, vec![]);
    GraphOrchestrator::new("mid")
        .with_parallel_limit(l1)
        .add_node("plan", counted(leaf("plan", seed, 3, max_ms), l1, levels))
        .add_node("x", counted(leaf("x", seed + 3, 1, max_ms), l1, levels))
        .add_node("y", counted(leaf("y", seed + 4, 1, max_ms), l1, levels))
        .add_map(
            "mm",
            counted(leaf("mm", seed + 5, 1, max_ms), l1, levels),
            Split::Lines,
        )
        .add_node("sub", counted(sub_agent, l1, levels))
        .add_node(
            "join",
            counted(leaf("join", seed + 6, 1, max_ms), l1, levels),
        )
        .add_edge(START, "plan")
        .add_edge("plan", "x")
        .add_edge("plan", "y")
        .add_edge("plan", "mm")
        .add_edge("plan", "sub")
        .add_edge("x", "join")
        .add_edge("y", "join")
        .add_edge("mm", "join")
        .add_edge("sub", "join")
        .add_edge("join", END)
}

fn top_agents(
    seed: u64,
    levels: &Arc<Levels>,
    l0: usize,
    l1: usize,
    l2: usize,
    max_ms: u64,
) -> Vec<Box<dyn Agent>> {
    let mut agents: Vec<Box<dyn Agent>> = Vec::new();
    for k in 0..3u64 {
        let g = mid_graph(seed + 100 * k, levels, l1, l2, max_ms);
        let oa = OrchestratorAgent::new(format!("mid{k}"), "mid graph", g, vec![]);
        agents.push(Box::new(counted(oa, l0, levels)));
    }
    agents.push(Box::new(counted(leaf("solo", seed, 1, max_ms), l0, levels)));
    agents
}

async fn one_deep_case(seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let levels = Arc::new(Levels::default());
    let l0 = 1 + rng.below(3) as usize;
    let l1 = 1 + rng.below(3) as usize;
    let l2 = 1 + rng.below(3) as usize;
    let max_ms = 1 + rng.below(6);
    let journal = Arc::new(InMemoryJournal::new());
    let seen = Arc::new(Seen::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(journal.clone() as Arc<dyn Journal>)
        .with_observer(seen.clone() as Arc<dyn RunObserver>);
    let top = ParallelOrchestrator::new().with_parallel_limit(l0);
    let agents = top_agents(seed, &levels, l0, l1, l2, max_ms);
    let mut mode = rng.below(4);
    if mode == 2 && std::env::var("DROP").is_err() {
        mode = 0;
    }
    let at = Duration::from_millis(rng.below(60));
    let canceller = ctx.clone();
    let result = match mode {
        0 => {
            tokio::spawn(async move {
                tokio::time::sleep(at).await;
                canceller.cancel();
            });
            top.orchestrate_with_context(agents, OrchestratorInput::new("go"), &ctx)
                .await
        }
        1 => {
            let top = top.with_timeout(at + Duration::from_millis(1));
            top.orchestrate_with_context(agents, OrchestratorInput::new("go"), &ctx)
                .await
        }
        2 => {
            // dropped at a random point
            match tokio::time::timeout(
                at,
                top.orchestrate_with_context(agents, OrchestratorInput::new("go"), &ctx),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(OrchestrationError::Cancelled),
            }
        }
        _ => {
            top.orchestrate_with_context(agents, OrchestratorInput::new("go"), &ctx)
                .await
        }
    };
    let mut problems = Vec::new();
    if mode == 2 {
        // A dropped run cannot wait: give the aborted tasks a moment.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let still = levels.total_running.load(Ordering::SeqCst);
    if still != 0 {
        problems.push(format!(
            "{still} agents still running when the run returned (mode {mode})"
        ));
    }
    problems.extend(levels.violations.lock().unwrap().iter().cloned());
    if mode == 3 {
        if let Err(e) = &result {
            problems.push(format!("uncut run failed: {e}"));
        }
    }
    // Let stragglers write, then check the journal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = journal.events();
    if let Some(root) = root_of(&events) {
        for p in check_journal(&events, root) {
            problems.push(format!("journal (mode {mode}): {p}"));
        }
        if std::env::var("DUMP").is_ok() {
            for (i, e) in events.iter().enumerate() {
                eprintln!("#{i} {} {}", e.run, short(&e.kind));
            }
            for (i, l) in seen.events.lock().unwrap().iter().enumerate() {
                eprintln!("obs#{i} {l}");
            }
        }
        let lines = seen.events.lock().unwrap().clone();
        for p in check_observed(&lines, root) {
            problems.push(format!("observer (mode {mode}): {p}"));
        }
    } else if mode != 2 {
        problems.push("no root run".into());
    }
    problems.truncate(8);
    problems
}

/// Cancel / run timeout / uncut (passes). With DROP=1 the future is also
/// dropped at random points: `DROP=1 SEED=1 ITER=150` finds events after
/// RunFinished and nested runs finishing after their root (see the two
/// deterministic tests below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_composition_under_random_stops_keeps_every_invariant() {
    let base: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let iterations: u64 = std::env::var("ITER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut failures = Vec::new();
    for seed in base..base + iterations {
        let problems = one_deep_case(seed).await;
        if !problems.is_empty() {
            failures.push(format!("seed {seed}: {problems:#?}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------- probe 2: events after a dropped run

/// Blocks its thread for `ms`, then answers (or fails retryably).
pub struct Blocker {
    name: &'static str,
    ms: u64,
    fail: bool,
}

#[async_trait]
impl Agent for Blocker {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "blocks its thread"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        std::thread::sleep(Duration::from_millis(self.ms));
        if self.fail {
            return Err(OrchestrationError::transient("try again"));
        }
        Ok(AgentOutput::new(format!(
            "{}({})",
            self.name, input.content
        )))
    }
}

fn events_after_finish(events: &[JournalEvent]) -> Vec<String> {
    let mut finished = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in events {
        if finished.contains(&e.run) {
            out.push(short(&e.kind));
        }
        if matches!(e.kind, EventKind::RunFinished { .. }) {
            finished.insert(e.run);
        }
    }
    out
}

/// A graph run dropped while an agent blocks its thread: when the agent
/// comes back, the run (whose books were closed by the drop, RunFinished
/// written) still journals the next step's `StepAdded` — an event after its
/// own `RunFinished`. ARCHITECTURE.md: "Dropped: ... nothing reaches the
/// journal afterwards".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_graph_journals_nothing_after_its_run_finished() {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(journal.clone() as Arc<dyn Journal>);
    let graph = GraphOrchestrator::new("g")
        .add_node(
            "a",
            Blocker {
                name: "a",
                ms: 200,
                fail: false,
            },
        )
        .add_node("b", leaf("b", 1, 1, 0))
        .add_node("c", leaf("c", 1, 1, 0))
        .add_edge(START, "a")
        .add_edge(START, "c")
        .add_edge("a", "b")
        .add_edge("b", END)
        .add_edge("c", END);
    let run = graph.orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx);
    let dropped = tokio::time::timeout(Duration::from_millis(50), run).await;
    assert!(dropped.is_err(), "the run should still be running at 50 ms");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late = events_after_finish(&journal.events());
    assert!(
        late.is_empty(),
        "events journaled after RunFinished: {late:#?}"
    );
}

/// Same with a retryable failure: the retry is scheduled (journaled and
/// told to the observer) after the dropped run's RunFinished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_schedules_no_retry_after_its_run_finished() {
    let journal = Arc::new(InMemoryJournal::new());
    let seen = Arc::new(Seen::default());
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(journal.clone() as Arc<dyn Journal>)
        .with_observer(seen.clone() as Arc<dyn RunObserver>);
    let agents: Vec<Box<dyn Agent>> = vec![
        Box::new(Blocker {
            name: "a",
            ms: 200,
            fail: true,
        }),
        Box::new(leaf("c", 1, 1, 0)),
    ];
    let fan_out = ParallelOrchestrator::new();
    let run = fan_out.orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx);
    let dropped = tokio::time::timeout(Duration::from_millis(50), run).await;
    assert!(dropped.is_err(), "the run should still be running at 50 ms");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late = events_after_finish(&journal.events());
    let observed = seen.events.lock().unwrap().clone();
    let after: Vec<&String> = observed
        .iter()
        .skip_while(|l| !l.starts_with("finish"))
        .skip(1)
        .collect();
    assert!(
        late.is_empty() && after.is_empty(),
        "journaled after RunFinished: {late:#?}\nobserved after RunFinished: {after:#?}"
    );
}

// ------------------------------- probe 3: close race between parent and child

/// Blocks (in the observer, i.e. user code called inline) when a nested run
/// finishes: widens the window between a run marking itself closed and
/// writing its RunFinished.
struct SlowOnNestedFinish {
    nested: Mutex<std::collections::HashSet<RunId>>,
}

impl RunObserver for SlowOnNestedFinish {
    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RunStarted {
                run,
                parent: Some(_),
                ..
            } => {
                self.nested.lock().unwrap().insert(*run);
            }
            RunEvent::RunFinished { run, .. } if self.nested.lock().unwrap().contains(run) => {
                std::thread::sleep(Duration::from_millis(300));
            }
            _ => {}
        }
    }
}

/// A nested run that is closing its books (its own timeout) while the
/// outer run is dropped: the outer run's close_tree sees the nested run
/// "closed" (the flag is set first) and writes the outer RunFinished while
/// the nested run's RunFinished is still to come. The journal then ends
/// with a nested run finishing after its parent attempt ended and after the
/// root run finished ("a run closes the books of the runs nested in it
/// before its own").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_run_finishes_before_its_parent_even_when_both_close_at_once() {
    let journal = Arc::new(InMemoryJournal::new());
    let observer = Arc::new(SlowOnNestedFinish {
        nested: Mutex::default(),
    });
    let ctx = ExecutionContext::new(ExecutionConfig::new())
        .with_journal(journal.clone() as Arc<dyn Journal>)
        .with_observer(observer as Arc<dyn RunObserver>);
    let inner = ParallelOrchestrator::new().with_timeout(Duration::from_millis(50));
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        inner,
        vec![
            Box::new(leaf("slow", 1, 1, 0)) as Box<dyn Agent>,
            Box::new(Sleeper(10_000)),
        ],
    );
    let outer = SequentialOrchestrator::new();
    let run =
        outer.orchestrate_with_context(vec![Box::new(nested)], OrchestratorInput::new("x"), &ctx);
    let dropped = tokio::time::timeout(Duration::from_millis(150), run).await;
    assert!(dropped.is_err(), "still running at 150 ms");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = journal.events();
    let root = root_of(&events).unwrap();
    let problems = check_journal(&events, root);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Sleeps `ms` (async).
pub struct Sleeper(u64);

#[async_trait]
impl Agent for Sleeper {
    fn name(&self) -> &str {
        "sleeper"
    }
    fn description(&self) -> &str {
        "sleeps"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        tokio::time::sleep(Duration::from_millis(self.0)).await;
        Ok(AgentOutput::new(input.content))
    }
}

/// A graph run cancelled while a routed agent blocks its thread returns after
/// STOP_GRACE with the attempt recorded as abandoned and RunFinished written.
/// When the agent comes back, its router's decision is still journaled
/// (`StepDecided`) — after the run's RunFinished. (Also on drop.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_routed_step_journals_no_decision_after_run_finished() {
    for cut in ["cancel", "drop"] {
        let journal = Arc::new(InMemoryJournal::new());
        let ctx = ExecutionContext::new(ExecutionConfig::new())
            .with_journal(journal.clone() as Arc<dyn Journal>);
        let graph = GraphOrchestrator::new("g")
            .add_node(
                "a",
                Blocker {
                    name: "a",
                    ms: 300,
                    fail: false,
                },
            )
            .add_node("b", leaf("b", 1, 1, 0))
            .add_node("c", leaf("c", 1, 1, 0))
            .add_edge(START, "a")
            .add_edge(START, "c")
            .add_router("a", ["b", END], |_| {
                claude_agent_sdk::orchestration::Route::to("b")
            })
            .add_edge("b", END)
            .add_edge("c", END);
        let run = graph.orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx);
        if cut == "cancel" {
            let canceller = ctx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                canceller.cancel();
            });
            let result = run.await;
            assert!(result.is_err());
        } else {
            assert!(tokio::time::timeout(Duration::from_millis(30), run)
                .await
                .is_err());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let late = events_after_finish(&journal.events());
        assert!(
            late.is_empty(),
            "{cut}: events journaled after RunFinished: {late:#?}"
        );
    }
}

// ------------------------------------------- probe 4: odd inputs never panic

async fn no_panic<F>(label: &str, f: F) -> Option<String>
where
    F: std::future::Future<Output = Result<claude_agent_sdk::orchestration::OrchestratorOutput>>
        + Send
        + 'static,
{
    match tokio::time::timeout(Duration::from_secs(5), tokio::spawn(f)).await {
        Err(_) => Some(format!("{label}: hung")),
        Ok(Err(e)) if e.is_panic() => Some(format!("{label}: panicked")),
        Ok(_) => None,
    }
}

fn simple_graph() -> GraphOrchestrator {
    GraphOrchestrator::new("g")
        .add_node("a", leaf("a", 1, 2, 0))
        .add_map("m", leaf("m", 1, 1, 0), Split::Lines)
        .add_edge(START, "a")
        .add_edge("a", "m")
        .add_edge("m", END)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_configurations_give_errors_not_panics() {
    use claude_agent_sdk::orchestration::RunBudget;
    let mut problems = Vec::new();
    let cases: Vec<(&str, GraphOrchestrator)> = vec![
        ("parallel_limit 0", simple_graph().with_parallel_limit(0)),
        ("max_steps 0", simple_graph().with_max_steps(0)),
        ("max_steps 1", simple_graph().with_max_steps(1)),
        ("timeout MAX", simple_graph().with_timeout(Duration::MAX)),
        ("timeout 0", simple_graph().with_timeout(Duration::ZERO)),
        (
            "agent timeout MAX",
            simple_graph().with_agent_timeout(Duration::MAX),
        ),
        (
            "agent timeout 0",
            simple_graph().with_agent_timeout(Duration::ZERO),
        ),
        (
            "max retries MAX",
            simple_graph().with_max_retries(usize::MAX),
        ),
        (
            "cost NaN",
            simple_graph().with_budget(RunBudget::new().with_max_cost_usd(f64::NAN)),
        ),
        (
            "cost -1",
            simple_graph().with_budget(RunBudget::new().with_max_cost_usd(-1.0)),
        ),
        (
            "duration MAX",
            simple_graph().with_budget(RunBudget::new().with_max_duration(Duration::MAX)),
        ),
        (
            "duration 0",
            simple_graph().with_budget(RunBudget::new().with_max_duration(Duration::ZERO)),
        ),
        (
            "tokens 0",
            simple_graph().with_budget(RunBudget::new().with_max_tokens(0)),
        ),
        (
            "loop 0",
            GraphOrchestrator::new("g")
                .add_node("a", leaf("a", 1, 1, 0))
                .add_node("b", leaf("b", 1, 1, 0))
                .add_edge(START, "a")
                .add_edge("a", "b")
                .add_loop("b", "a", 0, |_| true)
                .add_edge("b", END),
        ),
        (
            "self loop",
            GraphOrchestrator::new("g")
                .add_node("a", leaf("a", 1, 1, 0))
                .add_edge(START, "a")
                .add_loop("a", "a", u32::MAX, |_| true)
                .add_edge("a", END),
        ),
        (
            "duplicate ids",
            GraphOrchestrator::new("g")
                .add_node("a", leaf("a", 1, 1, 0))
                .add_node("a", leaf("a", 1, 1, 0))
                .add_edge(START, "a")
                .add_edge("a", END),
        ),
        (
            "edge to START",
            GraphOrchestrator::new("g")
                .add_node("a", leaf("a", 1, 1, 0))
                .add_edge(START, "a")
                .add_edge("a", START)
                .add_edge("a", END),
        ),
        (
            "START to END",
            GraphOrchestrator::new("g").add_edge(START, END),
        ),
        ("empty", GraphOrchestrator::new("g")),
        (
            "router to undeclared",
            GraphOrchestrator::new("g")
                .add_node("a", leaf("a", 1, 1, 0))
                .add_node("b", leaf("b", 1, 1, 0))
                .add_edge(START, "a")
                .add_router("a", ["b"], |_| {
                    claude_agent_sdk::orchestration::Route::to("zzz")
                })
                .add_edge("b", END),
        ),
        (
            "map join AtLeast(MAX)",
            simple_graph().with_join(
                "m",
                claude_agent_sdk::orchestration::JoinPolicy::AtLeast(usize::MAX),
            ),
        ),
        (
            "backoff max<initial",
            simple_graph().with_config(
                ExecutionConfig::new()
                    .with_backoff(Duration::from_secs(5), Duration::from_millis(1)),
            ),
        ),
        (
            "backoff MAX",
            simple_graph()
                .with_config(ExecutionConfig::new().with_backoff(Duration::MAX, Duration::MAX)),
        ),
    ];
    for (label, g) in cases {
        let label_owned = label.to_owned();
        let fut = async move { g.orchestrate(vec![], OrchestratorInput::new("x")).await };
        if let Some(p) = no_panic(&label_owned, fut).await {
            problems.push(p);
        }
    }
    // Patterns.
    let agents = || -> Vec<Box<dyn Agent>> {
        vec![Box::new(leaf("a", 1, 1, 0)), Box::new(leaf("b", 1, 1, 0))]
    };
    let a = agents();
    if let Some(p) = no_panic("parallel limit 0", async move {
        ParallelOrchestrator::new()
            .with_parallel_limit(0)
            .orchestrate(a, OrchestratorInput::new("x"))
            .await
    })
    .await
    {
        problems.push(p)
    }
    if let Some(p) = no_panic("sequential no agents", async move {
        SequentialOrchestrator::new()
            .orchestrate(vec![], OrchestratorInput::new("x"))
            .await
    })
    .await
    {
        problems.push(p)
    }
    if let Some(p) = no_panic("parallel no agents", async move {
        ParallelOrchestrator::new()
            .orchestrate(vec![], OrchestratorInput::new("x"))
            .await
    })
    .await
    {
        problems.push(p)
    }
    let a = agents();
    if let Some(p) = no_panic("parallel AtLeast(MAX)", async move {
        ParallelOrchestrator::new()
            .with_join_policy(claude_agent_sdk::orchestration::JoinPolicy::AtLeast(
                usize::MAX,
            ))
            .orchestrate(a, OrchestratorInput::new("x"))
            .await
    })
    .await
    {
        problems.push(p)
    }
    let a = agents();
    if let Some(p) = no_panic("sequential record_text_limit 0", async move {
        SequentialOrchestrator::new()
            .with_config(ExecutionConfig::new().with_record_text_limit(0))
            .orchestrate(a, OrchestratorInput::new("xé"))
            .await
    })
    .await
    {
        problems.push(p)
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_self_loop_is_stopped_by_the_step_limit() {
    use claude_agent_sdk::orchestration::SimpleAgent;
    let g = GraphOrchestrator::new("g")
        .add_node(
            "a",
            SimpleAgent::new("a", "", |i| Ok(AgentOutput::new(i.content))),
        )
        .add_edge(START, "a")
        .add_loop("a", "a", u32::MAX, |_| true)
        .add_edge("a", END);
    let t = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        g.orchestrate(vec![], OrchestratorInput::new("x")),
    )
    .await;
    let took = t.elapsed();
    let r = r.expect("hung for 10 s");
    match r {
        Err(OrchestrationError::BudgetExceeded(b)) => eprintln!("took {took:?}: {b}"),
        other => panic!("took {took:?}: {other:?}"),
    }
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

// ---------------------------------- probe 5: budgets crossed by siblings

/// Reports `tokens` tokens after sleeping a little.
struct Spender {
    tokens: u64,
}

#[async_trait]
impl Agent for Spender {
    fn name(&self) -> &str {
        "spender"
    }
    fn description(&self) -> &str {
        "spends tokens"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(
            AgentOutput::new(input.content).with_data(serde_json::json!({
                "usage": Usage::new(self.tokens, 0)
            })),
        )
    }
}

/// A map of 20 items (4 at once) inside a subgraph inside a loop, each item
/// spending 100 tokens, under a 450-token budget on the outer graph:
/// the run must fail with BudgetExceeded naming tokens, and stop well short
/// of all 20×3 items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_crossed_by_concurrent_map_items_in_a_subgraph_stops_the_run() {
    use claude_agent_sdk::orchestration::{Budget, RunBudget, SimpleAgent};
    let items: Vec<String> = (0..20).map(|i| format!("i{i}")).collect();
    let text = items.join("\n");
    let counter = Arc::new(AtomicUsize::new(0));
    let c2 = Arc::clone(&counter);
    let inner = GraphOrchestrator::new("inner")
        .with_parallel_limit(4)
        .add_node(
            "src",
            SimpleAgent::new("src", "", move |_| Ok(AgentOutput::new(text.clone()))),
        )
        .add_map("m", Spender { tokens: 100 }, Split::Lines)
        .add_edge(START, "src")
        .add_edge("src", "m")
        .add_edge("m", END);
    let outer = GraphOrchestrator::new("outer")
        .with_budget(RunBudget::new().with_max_tokens(450))
        .add_node(
            "head",
            SimpleAgent::new("head", "", move |i| {
                c2.fetch_add(1, Ordering::SeqCst);
                Ok(AgentOutput::new(i.content))
            }),
        )
        .add_subgraph("sub", inner)
        .add_edge(START, "head")
        .add_edge("head", "sub")
        .add_loop("sub", "head", 3, |_| true)
        .add_edge("sub", END);
    let r = outer.orchestrate(vec![], OrchestratorInput::new("x")).await;
    match r {
        Err(OrchestrationError::BudgetExceeded(b)) => {
            assert_eq!(b.budget, Budget::Tokens, "{b}");
            assert_eq!(
                counter.load(Ordering::SeqCst),
                1,
                "the loop went round after the budget was crossed"
            );
        }
        other => panic!("expected BudgetExceeded(tokens), got {other:?}"),
    }
}
