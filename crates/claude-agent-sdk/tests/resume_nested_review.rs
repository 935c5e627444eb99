//! Resuming runs cut short inside nested graphs, in odd compositions (from
//! an adversarial review): loops, maps in subgraphs in maps, retried
//! subgraphs, nested pipelines, chains of resumes, forks, routers, and the
//! SQLite journal in a fresh context. The shared state each run ends with
//! shows that nested work is replayed exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    fork, resume, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, Journal, NodeOptions, OrchestrationError, Orchestrator,
    OrchestratorAgent, OrchestratorInput, Result, RunId, Split, END, START,
};

/// Shared script: call counts, when each name goes slow / fails, keys seen.
#[derive(Default)]
struct Script {
    calls: HashMap<String, usize>,
    /// name -> slow from this call number on
    slow_from: HashMap<String, usize>,
    /// name -> fail (transient) on this call number
    fail_on: HashMap<String, usize>,
    keys: HashMap<String, Vec<String>>,
}

type S = Arc<Mutex<Script>>;

fn lock(s: &S) -> std::sync::MutexGuard<'_, Script> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

struct P {
    name: String,
    s: S,
    /// when true, the key used for counting is the input content (map items)
    by_input: bool,
}

#[async_trait]
impl Agent for P {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "probe"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let who = if self.by_input {
            input.content.trim().to_owned()
        } else {
            self.name.clone()
        };
        let (n, slow, fail) = {
            let mut s = lock(&self.s);
            let n = {
                let c = s.calls.entry(who.clone()).or_default();
                *c += 1;
                *c
            };
            if let Some(key) = ExecutionContext::idempotency_key() {
                s.keys.entry(who.clone()).or_default().push(key);
            }
            let slow = s.slow_from.get(&who).is_some_and(|from| n >= *from)
                || (self.by_input && who.ends_with("slow") && s.slow_from.contains_key("*"));
            let fail = s.fail_on.get(&who) == Some(&n);
            (n, slow, fail)
        };
        let _ = n;
        if let Some(ctx) = ExecutionContext::current() {
            ctx.append_state("log", serde_json::json!(who)).await;
        }
        if fail {
            return Err(OrchestrationError::transient(format!("{who} fails")));
        }
        if slow {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(AgentOutput::new(format!("{who}({})", input.content)))
    }
}

fn p(name: &str, s: &S) -> P {
    P {
        name: name.into(),
        s: Arc::clone(s),
        by_input: false,
    }
}

fn chain(name: &str, nodes: &[&str], s: &S) -> GraphOrchestrator {
    let mut g = GraphOrchestrator::new(name);
    let mut prev = START.to_owned();
    for n in nodes {
        g = g.add_node(*n, p(n, s)).add_edge(prev.clone(), *n);
        prev = (*n).to_owned();
    }
    g.add_edge(prev, END)
}

async fn cut_short(o: &dyn Orchestrator, ctx: &ExecutionContext) -> RunId {
    let cut = o
        .orchestrate_with_context(vec![], OrchestratorInput::new("go"), ctx)
        .await;
    assert!(
        matches!(cut, Err(OrchestrationError::Timeout(_))),
        "{cut:?}"
    );
    *ctx.run_ids().last().expect("a run")
}

fn fresh(j: &Arc<InMemoryJournal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new()).with_journal(Arc::clone(j) as Arc<dyn Journal>)
}

fn calls(s: &S) -> HashMap<String, usize> {
    lock(s).calls.clone()
}

async fn log_of(ctx: &ExecutionContext) -> Vec<String> {
    match ctx.get_state("log").await {
        Some(serde_json::Value::Array(v)) => v
            .into_iter()
            .map(|v| v.as_str().unwrap_or("?").to_owned())
            .collect(),
        Some(other) => vec![format!("{other}")],
        None => vec![],
    }
}

fn count(log: &[String], who: &str) -> usize {
    log.iter().filter(|x| *x == who).count()
}

/// plan -> work(subgraph a -> b) -> tail; cut in b; resume (a handed back);
/// then fork the resumed run after `work` on a fresh context: a's state
/// change must be there (the fork keeps work's output, which includes a).
#[tokio::test(start_paused = true)]
async fn fork_after_a_step_finished_by_a_resume_keeps_state_of_handed_back_nested_steps() {
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 1);
    let outer = || {
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_node("plan", p("plan", &s))
            .add_subgraph("work", chain("inner", &["a", "b"], &s))
            .add_node("tail", p("tail", &s))
            .add_edge(START, "plan")
            .add_edge("plan", "work")
            .add_edge("work", "tail")
            .add_edge("tail", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    lock(&s).slow_from.clear();
    let ctx2 = fresh(&j);
    resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    let log2 = log_of(&ctx2).await;
    assert_eq!(log2, ["plan", "a", "b", "tail"], "resume log");
    let run2 = *ctx2.run_ids().last().unwrap();
    assert_eq!(calls(&s).get("a"), Some(&1));
    let ctx3 = fresh(&j);
    fork(&outer(), vec![], run2, "work", None, &ctx3)
        .await
        .expect("fork");
    let log3 = log_of(&ctx3).await;
    assert_eq!(calls(&s).get("a"), Some(&1), "{:?}", calls(&s));
    assert_eq!(log3, ["plan", "a", "b", "tail"], "fork log");
}

/// Same, but resume the resumed run (run 2 cut short in tail): state of a
/// replayed exactly once.
#[tokio::test(start_paused = true)]
async fn chain_of_resumes_replays_nested_state_exactly_once() {
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 1);
    let outer = || {
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_subgraph("work", chain("inner", &["a", "b", "c"], &s))
            .add_edge(START, "work")
            .add_edge("work", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    {
        let mut g = lock(&s);
        g.slow_from.clear();
        g.slow_from.insert("c".into(), 1);
    }
    let ctx2 = fresh(&j);
    let cut = resume(&outer(), vec![], run1, &ctx2).await;
    assert!(
        matches!(cut, Err(OrchestrationError::Timeout(_))),
        "{cut:?}"
    );
    let run2 = *ctx2.run_ids().last().unwrap();
    lock(&s).slow_from.clear();
    let ctx3 = fresh(&j);
    let out = resume(&outer(), vec![], run2, &ctx3)
        .await
        .expect("resume 2");
    assert_eq!(out.result, "c(b(a(go)))");
    let c = calls(&s);
    assert_eq!(
        (c.get("a"), c.get("b"), c.get("c")),
        (Some(&1), Some(&2), Some(&2)),
        "{c:?}"
    );
    assert_eq!(log_of(&ctx3).await, ["a", "b", "c"]);
}

/// A loop around a subgraph: pass 1 finishes, pass 2 is cut short after a.
#[tokio::test(start_paused = true)]
async fn loop_around_subgraph_pass2_cut() {
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 2);
    let outer = || {
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_subgraph("work", chain("inner", &["a", "b"], &s))
            .add_edge(START, "work")
            .add_edge("work", END)
            .add_loop("work", "work", 2, |_| true)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    assert_eq!(calls(&s).get("b"), Some(&2));
    lock(&s).slow_from.clear();
    let ctx2 = fresh(&j);
    let out = resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    let c = calls(&s);
    assert_eq!((c.get("a"), c.get("b")), (Some(&2), Some(&3)), "{c:?}");
    assert_eq!(out.result, "b(a(b(a(go))))");
    assert_eq!(log_of(&ctx2).await, ["a", "b", "a", "b"]);
}

/// The subgraph step retried: attempt 1 fails in b (after a), attempt 2 cut
/// short in b (after a again). Resume: a not run again; a's state?
#[tokio::test(start_paused = true)]
async fn retried_subgraph_attempt1_failed_attempt2_cut() {
    let s = S::default();
    {
        let mut g = lock(&s);
        g.fail_on.insert("b".into(), 1);
        g.slow_from.insert("b".into(), 2);
    }
    let outer = || {
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_node_with(
                "work",
                OrchestratorAgent::new(
                    "work",
                    "w",
                    GraphOrchestrator::new("inner")
                        .add_node("a", p("a", &s))
                        .add_node_with("b", p("b", &s), NodeOptions::new().with_max_retries(0))
                        .add_edge(START, "a")
                        .add_edge("a", "b")
                        .add_edge("b", END),
                    vec![],
                ),
                NodeOptions::new().with_max_retries(1),
            )
            .add_edge(START, "work")
            .add_edge("work", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    assert_eq!(calls(&s).get("a"), Some(&2), "{:?}", calls(&s));
    {
        let mut g = lock(&s);
        g.slow_from.clear();
        g.fail_on.clear();
    }
    let ctx2 = fresh(&j);
    let out = resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    assert_eq!(out.result, "b(a(go))");
    let c = calls(&s);
    assert_eq!((c.get("a"), c.get("b")), (Some(&2), Some(&3)), "{c:?}");
    let log = log_of(&ctx2).await;
    // One a is kept (the one handed back). A failed attempt's own changes
    // are not replayed for top-level steps.
    assert_eq!(count(&log, "a"), 1, "{log:?}");
}

/// Map of subgraphs each holding a map, inside a subgraph (3 runs deep).
#[tokio::test(start_paused = true)]
async fn map_in_subgraph_in_map_in_subgraph() {
    let s = S::default();
    lock(&s).slow_from.insert("*".into(), 0);
    let expand = {
        let s = Arc::clone(&s);
        claude_agent_sdk::orchestration::SimpleAgent::new("expand", "e", move |i: AgentInput| {
            let c = i.content.trim().to_owned();
            *lock(&s).calls.entry(format!("expand {c}")).or_default() += 1;
            Ok(AgentOutput::new(format!("{c} fast\n{c} slow")))
        })
    };
    let item = P {
        name: "item".into(),
        s: Arc::clone(&s),
        by_input: true,
    };
    let inner = GraphOrchestrator::new("inner")
        .add_node("expand", expand)
        .add_map("sub", item, Split::Lines)
        .add_edge(START, "expand")
        .add_edge("expand", "sub")
        .add_edge("sub", END);
    let mid = GraphOrchestrator::new("mid")
        .add_map(
            "each",
            OrchestratorAgent::new("per", "p", inner, vec![]),
            Split::Lines,
        )
        .add_edge(START, "each")
        .add_edge("each", END);
    let plan = {
        let s = Arc::clone(&s);
        claude_agent_sdk::orchestration::SimpleAgent::new("plan", "p", move |_| {
            *lock(&s).calls.entry("plan".into()).or_default() += 1;
            Ok(AgentOutput::new("x\ny"))
        })
    };
    let outer = GraphOrchestrator::new("outer")
        .with_timeout(Duration::from_secs(60))
        .add_node("plan", plan)
        .add_subgraph("work", mid)
        .add_edge(START, "plan")
        .add_edge("plan", "work")
        .add_edge("work", END);
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer, &fresh(&j)).await;
    let keys1 = lock(&s).keys.clone();
    lock(&s).slow_from.clear();
    let ctx2 = fresh(&j);
    let out = resume(&outer, vec![], run1, &ctx2).await.expect("resume");
    let c = calls(&s);
    eprintln!("{c:?}\n{}", out.result);
    for (k, n) in [
        ("plan", 1),
        ("expand x", 1),
        ("expand y", 1),
        ("x fast", 1),
        ("y fast", 1),
        ("x slow", 2),
        ("y slow", 2),
    ] {
        assert_eq!(c.get(k), Some(&n), "{k}: {c:?}");
    }
    // idempotency: the slow items run again under the same key
    let keys2 = lock(&s).keys.clone();
    for k in ["x slow", "y slow"] {
        let v = &keys2[k];
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], v[1], "{k}: keys differ {v:?}");
        assert_eq!(keys1[k][0], v[0]);
    }
    let log = log_of(&ctx2).await;
    for k in ["x fast", "y fast", "x slow", "y slow"] {
        assert_eq!(count(&log, k), 1, "{k}: {log:?}");
    }
}

/// A pipeline nested inside a subgraph: the step it finished is handed back
/// (not run again, its state replayed once), the one cut short runs again.
#[tokio::test(start_paused = true)]
async fn nested_pipeline_hands_back_its_finished_steps() {
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 1);
    let outer = || {
        let pipe = claude_agent_sdk::orchestration::SequentialOrchestrator::new();
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_node(
                "work",
                OrchestratorAgent::new(
                    "work",
                    "w",
                    pipe,
                    vec![Box::new(p("a", &s)) as Box<dyn Agent>, Box::new(p("b", &s))],
                ),
            )
            .add_edge(START, "work")
            .add_edge("work", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    lock(&s).slow_from.clear();
    let ctx2 = fresh(&j);
    resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    let c = calls(&s);
    assert_eq!((c.get("a"), c.get("b")), (Some(&1), Some(&2)), "{c:?}");
    assert_eq!(log_of(&ctx2).await, ["a", "b"]);
}

/// A subgraph inside a pipeline step inside a subgraph: the pipeline between
/// hands its graph's finished work back through it.
#[tokio::test(start_paused = true)]
async fn graph_in_pipeline_in_graph() {
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 1);
    let outer = || {
        let pipe = claude_agent_sdk::orchestration::SequentialOrchestrator::new();
        let inner = chain("inner", &["a", "b"], &s);
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_node(
                "work",
                OrchestratorAgent::new(
                    "work",
                    "w",
                    pipe,
                    vec![
                        Box::new(p("pre", &s)) as Box<dyn Agent>,
                        Box::new(OrchestratorAgent::new("g", "g", inner, vec![])),
                    ],
                ),
            )
            .add_edge(START, "work")
            .add_edge("work", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    lock(&s).slow_from.clear();
    let ctx2 = fresh(&j);
    let out = resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    let c = calls(&s);
    eprintln!("{c:?} {}", out.result);
    let log = log_of(&ctx2).await;
    assert_eq!(log, ["pre", "a", "b"], "{c:?}");
    let counts = (c.get("pre"), c.get("a"), c.get("b"));
    assert_eq!(counts, (Some(&1), Some(&1), Some(&2)), "{c:?}");
}

/// Durable: cut short inside a subgraph with a map, resume in a fresh
/// context on a freshly opened SQLite journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fresh_context_resume_inside_subgraph() {
    use claude_agent_sdk::orchestration::store::SqliteJournal;
    let dir = std::env::temp_dir().join(format!("resume_nested_review_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 1);
    let outer = || {
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(3))
            .add_node("plan", p("plan", &s))
            .add_subgraph("work", chain("inner", &["a", "b"], &s))
            .add_edge(START, "plan")
            .add_edge("plan", "work")
            .add_edge("work", END)
    };
    let run1 = {
        let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&path).await.expect("open"));
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(j);
        cut_short(&outer(), &ctx).await
    };
    lock(&s).slow_from.clear();
    let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&path).await.expect("reopen"));
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(j);
    let out = resume(&outer(), vec![], run1, &ctx).await.expect("resume");
    assert_eq!(out.result, "b(a(plan(go)))");
    let c = calls(&s);
    assert_eq!(
        (c.get("plan"), c.get("a"), c.get("b")),
        (Some(&1), Some(&1), Some(&2)),
        "{c:?}"
    );
    assert_eq!(log_of(&ctx).await, ["plan", "a", "b"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A router inside the subgraph: its decision for the finished step is
/// handed back too (a would route to c now, but routed to b then).
#[tokio::test(start_paused = true)]
async fn nested_router_decision_kept() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = S::default();
    lock(&s).slow_from.insert("b".into(), 1);
    lock(&s).slow_from.insert("c".into(), 1);
    let to_c = Arc::new(AtomicBool::new(false));
    let outer = || {
        let to_c = Arc::clone(&to_c);
        let inner = GraphOrchestrator::new("inner")
            .add_node("a", p("a", &s))
            .add_node("b", p("b", &s))
            .add_node("c", p("c", &s))
            .add_edge(START, "a")
            .add_router("a", ["b", "c"], move |_| {
                if to_c.load(Ordering::SeqCst) {
                    claude_agent_sdk::orchestration::Route::to("c")
                } else {
                    claude_agent_sdk::orchestration::Route::to("b")
                }
            })
            .add_edge("b", END)
            .add_edge("c", END);
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_subgraph("work", inner)
            .add_edge(START, "work")
            .add_edge("work", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    lock(&s).slow_from.clear();
    to_c.store(true, Ordering::SeqCst);
    let ctx2 = fresh(&j);
    let out = resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    assert_eq!(out.result, "b(a(go))", "{:?}", calls(&s));
}

/// Same retried subgraph as above, but the cut comes later (in `tail`, after
/// `work` finished): `work` is not run again, and the state its two
/// attempts left — the failed one's `a` and `b` too, as the run went on
/// with them — is replayed once each. Compare with
/// `zz_retried_subgraph_attempt1_failed_attempt2_cut`.
#[tokio::test(start_paused = true)]
async fn retried_subgraph_then_cut_in_tail_replays_a_once() {
    let s = S::default();
    {
        let mut g = lock(&s);
        g.fail_on.insert("b".into(), 1);
        g.slow_from.insert("tail".into(), 1);
    }
    let outer = || {
        GraphOrchestrator::new("outer")
            .with_timeout(Duration::from_secs(60))
            .add_node_with(
                "work",
                OrchestratorAgent::new(
                    "work",
                    "w",
                    GraphOrchestrator::new("inner")
                        .add_node("a", p("a", &s))
                        .add_node_with("b", p("b", &s), NodeOptions::new().with_max_retries(0))
                        .add_edge(START, "a")
                        .add_edge("a", "b")
                        .add_edge("b", END),
                    vec![],
                ),
                NodeOptions::new().with_max_retries(1),
            )
            .add_node("tail", p("tail", &s))
            .add_edge(START, "work")
            .add_edge("work", "tail")
            .add_edge("tail", END)
    };
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer(), &fresh(&j)).await;
    {
        let mut g = lock(&s);
        g.slow_from.clear();
        g.fail_on.clear();
    }
    let ctx2 = fresh(&j);
    resume(&outer(), vec![], run1, &ctx2).await.expect("resume");
    let log = log_of(&ctx2).await;
    eprintln!("cut in tail: {log:?}");
    assert_eq!(log, ["a", "b", "a", "b", "tail"]);
    assert_eq!(calls(&s).get("a"), Some(&2), "a is not run again");
}

/// A loop around a map inside a subgraph: pass 1's items finished, pass 2
/// cut short with one slow item.
#[tokio::test(start_paused = true)]
async fn loop_around_map_inside_subgraph() {
    let s = S::default();
    let item = P {
        name: "item".into(),
        s: Arc::clone(&s),
        by_input: true,
    };
    lock(&s).slow_from.insert("p2 slow".into(), 1);
    let gen = {
        let s = Arc::clone(&s);
        claude_agent_sdk::orchestration::SimpleAgent::new("gen", "g", move |_| {
            let n = {
                let mut g = lock(&s);
                let c = g.calls.entry("gen".into()).or_default();
                *c += 1;
                *c
            };
            // pass numbering as seen by gen: 1, 2 (run 1), then resumed pass 2
            let pass = if n >= 2 { 2 } else { 1 };
            Ok(AgentOutput::new(format!("p{pass} fast\np{pass} slow")))
        })
    };
    let inner = GraphOrchestrator::new("inner")
        .add_node("gen", gen)
        .add_map("each", item, Split::Lines)
        .add_edge(START, "gen")
        .add_node(
            "after",
            claude_agent_sdk::orchestration::SimpleAgent::new("after", "a", |i: AgentInput| {
                Ok(AgentOutput::new(i.content))
            }),
        )
        .add_edge("gen", "each")
        .add_edge("each", "after")
        .add_edge("after", END)
        .add_loop("after", "gen", 2, |_| true);
    let outer = GraphOrchestrator::new("outer")
        .with_timeout(Duration::from_secs(60))
        .add_subgraph("work", inner)
        .add_edge(START, "work")
        .add_edge("work", END);
    let j = Arc::new(InMemoryJournal::new());
    let run1 = cut_short(&outer, &fresh(&j)).await;
    eprintln!("after run1 {:?}", calls(&s));
    lock(&s).slow_from.clear();
    let ctx2 = fresh(&j);
    let out = resume(&outer, vec![], run1, &ctx2).await.expect("resume");
    let c = calls(&s);
    eprintln!("{c:?} {}", out.result);
    for (k, n) in [
        ("gen", 2),
        ("p1 fast", 1),
        ("p1 slow", 1),
        ("p2 fast", 1),
        ("p2 slow", 2),
    ] {
        assert_eq!(c.get(k), Some(&n), "{k}: {c:?}");
    }
    let log = log_of(&ctx2).await;
    for k in ["p1 fast", "p1 slow", "p2 fast", "p2 slow"] {
        assert_eq!(count(&log, k), 1, "{k}: {log:?}");
    }
}
