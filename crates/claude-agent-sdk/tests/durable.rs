//! Durable runs: every test runs on both stores — a SQLite file and a real
//! PostgreSQL server (see `store_support`) — and, where the in-memory
//! journal can do the same, on it too.

mod store_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claude_agent_sdk::orchestration::store::{Prune, RunStatus, StoreOptions, REDACTED};
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentInput, AgentOutput, EventKind, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, Journal, OrchestrationError, Orchestrator,
    OrchestratorInput, ParallelOrchestrator, Question, Result, RunId, SequentialOrchestrator,
    Split, END, START,
};
use store_support::{Kind, Place, KINDS};

/// What the agents of a test did: how often each ran, and the idempotency
/// keys they saw.
#[derive(Default)]
struct Book {
    runs: Mutex<HashMap<String, u32>>,
    keys: Mutex<Vec<(String, String)>>,
}

impl Book {
    fn count(&self, name: &str) -> u32 {
        self.runs.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn note(&self, name: &str) {
        *self
            .runs
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default() += 1;
    }
}

/// Appends its name to its input; fails while `broken` is set.
struct Step {
    name: String,
    book: Arc<Book>,
    broken: Arc<AtomicBool>,
}

#[async_trait]
impl Agent for Step {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "appends its name"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        *self
            .book
            .runs
            .lock()
            .unwrap()
            .entry(self.name.clone())
            .or_default() += 1;
        if let Some(key) = ExecutionContext::idempotency_key() {
            self.book
                .keys
                .lock()
                .unwrap()
                .push((self.name.clone(), key));
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(claude_agent_sdk::orchestration::AgentError::new(format!(
                "{} is broken",
                self.name
            ))
            .into());
        }
        Ok(AgentOutput::new(format!("{}>{}", input.content, self.name)))
    }
}

fn steps(
    names: &[&str],
    book: &Arc<Book>,
    broken: &[(&str, &Arc<AtomicBool>)],
) -> Vec<Box<dyn Agent>> {
    names
        .iter()
        .map(|name| {
            let broken = broken.iter().find(|(which, _)| which == name).map_or_else(
                || Arc::new(AtomicBool::new(false)),
                |(_, flag)| Arc::clone(flag),
            );
            Box::new(Step {
                name: (*name).to_owned(),
                book: Arc::clone(book),
                broken,
            }) as Box<dyn Agent>
        })
        .collect()
}

fn context(journal: Arc<dyn Journal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new().with_max_retries(0)).with_journal(journal)
}

/// The ids of the runs under `ctx`, in order.
fn last_run(ctx: &ExecutionContext) -> RunId {
    *ctx.run_ids().last().expect("a run")
}

/// Runs `check` on a fresh journal of every kind (in-memory included when
/// `memory`), with a function that opens the same journal again.
async fn on_every_store<F, Fut>(memory: bool, check: F)
where
    F: Fn(Opener) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if memory {
        let journal: Arc<dyn Journal> = Arc::new(InMemoryJournal::new());
        check(Opener::Memory(journal)).await;
    }
    for kind in KINDS {
        check(Opener::Store(Place::new(kind).await)).await;
    }
}

/// Opens a test's journal (again: as another process would).
#[derive(Clone)]
enum Opener {
    Memory(Arc<dyn Journal>),
    Store(Place),
}

impl Opener {
    async fn open(&self) -> Arc<dyn Journal> {
        match self {
            Self::Memory(journal) => Arc::clone(journal),
            Self::Store(place) => place.open().await.journal(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Store(place) => match place.kind {
                Kind::Sqlite => "sqlite",
                Kind::Postgres => "postgres",
            },
        }
    }
}

#[tokio::test]
async fn a_failed_pipeline_resumes_without_running_its_finished_steps_again() {
    on_every_store(true, |opener| async move {
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let names = ["fetch", "parse", "summarize"];
        let pipeline = SequentialOrchestrator::new();
        let ctx = context(opener.open().await);
        let failed = pipeline
            .orchestrate_with_context(
                steps(&names, &book, &[("parse", &broken)]),
                OrchestratorInput::new("doc"),
                &ctx,
            )
            .await;
        assert!(failed.is_err(), "{}", opener.kind());
        let run = last_run(&ctx);

        // The agent is fixed; another process resumes the run.
        broken.store(false, Ordering::SeqCst);
        let ctx = context(opener.open().await);
        let output = resume(
            &pipeline,
            steps(&names, &book, &[("parse", &broken)]),
            run,
            &ctx,
        )
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", opener.kind()));
        assert_eq!(
            output.result,
            "doc>fetch>parse>summarize",
            "{}",
            opener.kind()
        );
        assert_eq!(book.count("fetch"), 1, "{}: fetch ran again", opener.kind());
        assert_eq!(book.count("parse"), 2);
        assert_eq!(book.count("summarize"), 1);

        // A run is resumed once: resuming it again is refused.
        let again = resume(&pipeline, steps(&names, &book, &[]), run, &ctx).await;
        let Err(OrchestrationError::InvalidConfig(message)) = again else {
            panic!(
                "{}: a second resume of one run was not refused",
                opener.kind()
            );
        };
        assert!(message.contains("resumed already"), "{message}");
        assert_eq!(book.count("summarize"), 1);
    })
    .await;
}

#[tokio::test]
async fn a_resumed_run_names_the_run_it_continues_and_keeps_the_idempotency_keys() {
    on_every_store(true, |opener| async move {
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let names = ["a", "b"];
        let pipeline = SequentialOrchestrator::new();
        let ctx = context(opener.open().await);
        let _ = pipeline
            .orchestrate_with_context(
                steps(&names, &book, &[("b", &broken)]),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await;
        let first = last_run(&ctx);
        broken.store(false, Ordering::SeqCst);
        let journal = opener.open().await;
        let ctx = context(Arc::clone(&journal));
        resume(&pipeline, steps(&names, &book, &[]), first, &ctx)
            .await
            .expect("resumed");
        let second = last_run(&ctx);
        assert_ne!(first, second);
        let events = journal.read(&[second]).await;
        assert!(
            events.iter().any(|event| matches!(
                &event.kind,
                EventKind::RunStarted { resumes: Some(previous), .. } if *previous == first
            )),
            "{}: the resumed run does not name the run it continues",
            opener.kind()
        );
        let keys = book.keys.lock().unwrap().clone();
        let b_keys: Vec<&String> = keys
            .iter()
            .filter(|(name, _)| name == "b")
            .map(|(_, key)| key)
            .collect();
        assert_eq!(b_keys.len(), 2);
        assert_eq!(
            b_keys[0], b_keys[1],
            "the same attempt of the same step keeps its key"
        );
        assert!(b_keys[0].starts_with(&first.to_string()), "{}", b_keys[0]);
        assert_eq!(*b_keys[0], format!("{first}/1.1/1"));
    })
    .await;
}

#[tokio::test]
async fn resuming_with_different_agents_names_the_difference_and_runs_nothing() {
    on_every_store(true, |opener| async move {
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let pipeline = SequentialOrchestrator::new();
        let ctx = context(opener.open().await);
        let _ = pipeline
            .orchestrate_with_context(
                steps(&["a", "b"], &book, &[("b", &broken)]),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await;
        let run = last_run(&ctx);
        let ctx = context(opener.open().await);
        let error = resume(&pipeline, steps(&["a", "c"], &book, &[]), run, &ctx)
            .await
            .expect_err("a different pipeline must not resume");
        let text = error.to_string();
        assert!(text.contains("[a, b]") && text.contains("[a, c]"), "{text}");
        assert_eq!(book.count("c"), 0);
    })
    .await;
}

fn graph(book: &Arc<Book>, broken: &Arc<AtomicBool>) -> GraphOrchestrator {
    let step = |name: &str| Step {
        name: name.to_owned(),
        book: Arc::clone(book),
        broken: if name == "report" {
            Arc::clone(broken)
        } else {
            Arc::new(AtomicBool::new(false))
        },
    };
    let plan = claude_agent_sdk::orchestration::SimpleAgent::new("plan", "three items", |_| {
        Ok(AgentOutput::new("one\ntwo\nthree"))
    });
    GraphOrchestrator::new("research")
        .add_node("plan", plan)
        .add_map("research", step("researcher"), Split::Lines)
        .add_node("draft", step("draft"))
        .add_node("report", step("report"))
        .add_edge(START, "plan")
        .add_edge("plan", "research")
        .add_edge("research", "draft")
        .add_edge("draft", "report")
        .add_edge("report", END)
}

#[tokio::test]
async fn a_graph_with_a_map_resumes_from_its_journal_in_another_process() {
    on_every_store(true, |opener| async move {
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let ctx = context(opener.open().await);
        let failed = graph(&book, &broken)
            .orchestrate_with_context(vec![], OrchestratorInput::new("q"), &ctx)
            .await;
        assert!(failed.is_err());
        let run = last_run(&ctx);
        assert_eq!(book.count("researcher"), 3);
        broken.store(false, Ordering::SeqCst);
        let ctx = context(opener.open().await);
        let output = resume(&graph(&book, &broken), vec![], run, &ctx)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", opener.kind()));
        assert!(
            output.result.ends_with(">draft>report"),
            "{}",
            output.result
        );
        assert_eq!(
            book.count("researcher"),
            3,
            "{}: map items ran again",
            opener.kind()
        );
        assert_eq!(book.count("draft"), 1);
        assert_eq!(book.count("report"), 2);
    })
    .await;
}

/// Asks a question, then answers with what it was told.
struct Approver;

#[async_trait]
impl Agent for Approver {
    fn name(&self) -> &str {
        "approver"
    }
    fn description(&self) -> &str {
        "asks for approval"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("runs in a context");
        let answer = ctx.ask("budget", "Spend $50?")?;
        Ok(AgentOutput::new(format!(
            "{}>approved:{answer}",
            input.content
        )))
    }
}

#[tokio::test]
async fn a_question_survives_a_restart_and_the_answer_resumes_the_run() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let build = |book: &Arc<Book>| {
            GraphOrchestrator::new("approval")
                .add_node(
                    "draft",
                    Step {
                        name: "draft".into(),
                        book: Arc::clone(book),
                        broken: Arc::new(AtomicBool::new(false)),
                    },
                )
                .add_node("approve", Approver)
                .add_edge(START, "draft")
                .add_edge("draft", "approve")
                .add_edge("approve", END)
        };
        let store = place.open().await;
        let ctx = context(store.journal());
        let paused = build(&book)
            .orchestrate_with_context(vec![], OrchestratorInput::new("plan"), &ctx)
            .await;
        assert!(matches!(paused, Err(OrchestrationError::InputRequired(_))));
        let run = last_run(&ctx);
        assert_eq!(
            store.run(run).await.expect("stored").status,
            RunStatus::Paused
        );
        drop(ctx);
        drop(store);

        // Another process, with the answer.
        let store = place.open().await;
        let ctx = context(store.journal());
        ctx.answer("budget", "yes");
        let output = resume(&build(&book), vec![], run, &ctx)
            .await
            .expect("resumed");
        assert_eq!(output.result, "plan>draft>approved:yes");
        assert_eq!(
            book.count("draft"),
            1,
            "{kind:?}: the finished step ran again"
        );
    }
}

#[tokio::test]
async fn the_questions_a_stored_run_waits_for_are_read_without_resuming_it() {
    on_every_store(true, |opener| async move {
        // An agent asking from inside `execute`, and a question node, ready
        // at once: both are asked.
        let graph = || {
            GraphOrchestrator::new("approvals")
                .add_node("approve", Approver)
                .add_ask("legal", "Is the contract signed?")
                .add_edge(START, "approve")
                .add_edge(START, "legal")
                .add_edge("approve", END)
                .add_edge("legal", END)
        };
        let ctx = context(opener.open().await);
        let paused = graph()
            .orchestrate_with_context(vec![], OrchestratorInput::new("order"), &ctx)
            .await;
        assert!(
            matches!(paused, Err(OrchestrationError::InputRequired(_))),
            "{paused:?}"
        );
        let run = last_run(&ctx);
        drop(ctx);

        // Another process, reading only.
        let journal = opener.open().await;
        let mut waiting = Question::waiting_in(journal.as_ref(), run)
            .await
            .expect("read");
        waiting.sort_by(|a, b| a.id.cmp(&b.id));
        let asked: Vec<(&str, &str)> = waiting
            .iter()
            .map(|question| (question.id.as_str(), question.text.as_str()))
            .collect();
        assert_eq!(
            asked,
            [
                ("budget", "Spend $50?"),
                ("legal", "Is the contract signed?\n\norder")
            ],
            "{}",
            opener.kind()
        );

        let ctx = context(Arc::clone(&journal));
        ctx.answer("budget", "yes");
        ctx.answer("legal", "signed");
        resume(&graph(), vec![], run, &ctx)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", opener.kind()));
        let resumed = last_run(&ctx);
        let none = Question::waiting_in(journal.as_ref(), resumed)
            .await
            .expect("read");
        assert!(none.is_empty(), "{}: {none:?}", opener.kind());
        let history = Question::waiting_in(journal.as_ref(), run)
            .await
            .expect("read");
        assert_eq!(
            history.len(),
            2,
            "{}: the paused run still says what it asked",
            opener.kind()
        );
        let unknown = Question::waiting_in(journal.as_ref(), RunId::new())
            .await
            .expect("read");
        assert!(unknown.is_empty(), "{}", opener.kind());
    })
    .await;
}

#[tokio::test]
async fn the_store_lists_runs_with_their_totals_and_prunes_old_ones() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place
            .open_with(StoreOptions::new().with_label("nightly.toml"))
            .await;
        let book = Arc::new(Book::default());
        let ctx = context(store.journal());
        for round in 0..3 {
            ParallelOrchestrator::new()
                .orchestrate_with_context(
                    steps(&["a", "b", "c"], &book, &[]),
                    OrchestratorInput::new(format!("round {round}")),
                    &ctx,
                )
                .await
                .expect("runs");
        }
        let runs = store.runs(10).await;
        assert_eq!(runs.len(), 3, "{kind:?}");
        assert!(runs
            .windows(2)
            .all(|pair| pair[0].started >= pair[1].started));
        for run in &runs {
            assert_eq!(run.status, RunStatus::Succeeded);
            assert_eq!(run.label.as_deref(), Some("nightly.toml"));
            assert_eq!(
                run.events, 8,
                "{kind:?}: run start, 3 × 2 attempt events, run end"
            );
            assert!(run.finished.is_some());
        }
        assert_eq!(store.prune(Prune::KeepNewest(1)).await, 2);
        let left = store.runs(10).await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, runs[0].id);
        assert!(
            store.journal().read(&[runs[1].id]).await.is_empty(),
            "events pruned too"
        );
        assert_eq!(store.journal().read(&[runs[0].id]).await.len(), 8);
    }
}

#[tokio::test]
async fn a_secret_never_reaches_the_store() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let secret = "sk-ant-THE-SECRET-KEY-1234";
        let store = place
            .open_with(StoreOptions::new().with_secret(secret))
            .await;
        let leaky = claude_agent_sdk::orchestration::SimpleAgent::new("leaky", "", move |_| {
            Ok(AgentOutput::new(format!("key is {secret}!")))
        });
        let ctx = context(store.journal());
        SequentialOrchestrator::new()
            .orchestrate_with_context(vec![Box::new(leaky)], OrchestratorInput::new(secret), &ctx)
            .await
            .expect("runs");
        let events = store.journal().read(&[last_run(&ctx)]).await;
        let text = serde_json::to_string(&events).unwrap();
        assert!(!text.contains(secret), "{kind:?}: {text}");
        assert!(text.contains(&format!("key is {REDACTED}!")), "{text}");
    }
}

#[tokio::test]
async fn a_corrupt_sqlite_file_is_a_clear_error() {
    let folder = store_support::TempDir::new("corrupt");
    let path = folder.path().join("runs.db");
    std::fs::write(
        &path,
        b"this is not a database, just some text pretending to be one",
    )
    .unwrap();
    let error = claude_agent_sdk::orchestration::store::SqliteJournal::open(&path)
        .await
        .expect_err("a corrupt file must not open");
    let text = error.to_string();
    assert!(text.contains("runs.db"), "{text}");
    assert!(matches!(error, OrchestrationError::Store { .. }));
}

#[tokio::test]
async fn a_store_from_a_newer_schema_is_refused() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        drop(place.open().await);
        // A newer version added migration 9999.
        let sql = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                   VALUES (9999, 'from the future', TRUE, X'00', 1)";
        let sql = match kind {
            Kind::Sqlite => sql.to_owned(),
            Kind::Postgres => sql.replace("X'00'", "'\\x00'::bytea"),
        };
        store_support::execute(&place, &sql).await;
        let error = place
            .try_open(StoreOptions::new())
            .await
            .expect_err("a newer schema");
        assert!(
            error.to_string().contains("newer version"),
            "{kind:?}: {error}"
        );
    }
}

#[tokio::test]
async fn two_processes_resuming_one_run_at_once_run_it_once() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let names = ["a", "b", "c"];
        let store = place.open().await;
        let ctx = context(store.journal());
        let _ = SequentialOrchestrator::new()
            .orchestrate_with_context(
                steps(&names, &book, &[("b", &broken)]),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await;
        let run = last_run(&ctx);
        broken.store(false, Ordering::SeqCst);
        let (one, two) = (place.open().await, place.open().await);
        let (ctx_one, ctx_two) = (context(one.journal()), context(two.journal()));
        let pipeline = SequentialOrchestrator::new();
        let (first, second) = tokio::join!(
            resume(&pipeline, steps(&names, &book, &[]), run, &ctx_one),
            resume(&pipeline, steps(&names, &book, &[]), run, &ctx_two),
        );
        let won = [first.is_ok(), second.is_ok()];
        assert_eq!(
            won.iter().filter(|ok| **ok).count(),
            1,
            "{kind:?}: {first:?} / {second:?}"
        );
        let loser = if first.is_ok() { second } else { first };
        assert!(loser.unwrap_err().to_string().contains("resumed already"));
        assert_eq!(book.count("c"), 1, "{kind:?}: c ran twice");
    }
}

/// Keeps what it saw in the shared state, and reads what the step before
/// kept.
struct Keeper {
    name: &'static str,
    broken: Arc<AtomicBool>,
}

#[async_trait]
impl Agent for Keeper {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "keeps state"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("in a context");
        ctx.append_state("log", serde_json::json!(self.name)).await;
        ctx.set_state(self.name, serde_json::json!(input.content.clone()))
            .await;
        if self.broken.load(Ordering::SeqCst) {
            return Err(claude_agent_sdk::orchestration::AgentError::new("broken").into());
        }
        let log = ctx.get_state("log").await.unwrap_or_default();
        Ok(AgentOutput::new(format!(
            "{}>{} log={log}",
            input.content, self.name
        )))
    }
}

#[tokio::test]
async fn a_resumed_run_starts_from_the_state_its_finished_steps_left() {
    on_every_store(true, |opener| async move {
        let broken = Arc::new(AtomicBool::new(true));
        let agents = |broken: &Arc<AtomicBool>| -> Vec<Box<dyn Agent>> {
            vec![
                Box::new(Keeper {
                    name: "a",
                    broken: Arc::new(AtomicBool::new(false)),
                }),
                Box::new(Keeper {
                    name: "b",
                    broken: Arc::clone(broken),
                }),
            ]
        };
        let ctx = context(opener.open().await);
        let _ = SequentialOrchestrator::new()
            .orchestrate_with_context(agents(&broken), OrchestratorInput::new("x"), &ctx)
            .await;
        let run = last_run(&ctx);
        broken.store(false, Ordering::SeqCst);
        let ctx = context(opener.open().await);
        let output = resume(&SequentialOrchestrator::new(), agents(&broken), run, &ctx)
            .await
            .expect("resumed");
        // a's changes are replayed once; the failed attempt of b left none.
        assert_eq!(
            ctx.get_state("log").await,
            Some(serde_json::json!(["a", "b"])),
            "{}",
            opener.kind()
        );
        assert_eq!(ctx.get_state("a").await, Some(serde_json::json!("x")));
        assert!(
            output.result.ends_with(r#"log=["a","b"]"#),
            "{}",
            output.result
        );
    })
    .await;
}

/// A fork resumed after a failure continues the fork, not the run it forked:
/// the steps after its fork point run (they were taken from the old run),
/// and its attempts keep the fork's own idempotency keys.
#[tokio::test]
async fn a_resumed_fork_continues_the_fork_with_its_own_keys() {
    on_every_store(true, |opener| async move {
        let book = Arc::new(Book::default());
        let names = ["outline", "draft", "polish"];
        let pipeline = SequentialOrchestrator::new();
        let journal = opener.open().await;
        let ctx = context(Arc::clone(&journal));
        pipeline
            .orchestrate_with_context(
                steps(&names, &book, &[]),
                OrchestratorInput::new("topic"),
                &ctx,
            )
            .await
            .expect("the first run");
        let old = last_run(&ctx);

        let broken = Arc::new(AtomicBool::new(true));
        let ctx = context(Arc::clone(&journal));
        let failed = claude_agent_sdk::orchestration::fork(
            &pipeline,
            steps(&names, &book, &[("draft", &broken)]),
            old,
            "outline",
            Some(OrchestratorInput::new("other topic")),
            &ctx,
        )
        .await;
        assert!(failed.is_err(), "{}: the fork's draft fails", opener.kind());
        let fork = last_run(&ctx);

        broken.store(false, Ordering::SeqCst);
        book.keys.lock().unwrap().clear();
        let ctx = context(Arc::clone(&journal));
        let resumed = resume(&pipeline, steps(&names, &book, &[]), fork, &ctx)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", opener.kind()));
        // The outline is the old run's (reused by the fork); the rest is the fork's.
        assert_eq!(
            resumed.result,
            "topic>outline>draft>polish",
            "{}",
            opener.kind()
        );
        assert_eq!(book.count("draft"), 3, "{}", opener.kind());
        assert_eq!(book.count("polish"), 2, "{}", opener.kind());
        let keys = book.keys.lock().unwrap().clone();
        assert!(
            keys.iter()
                .all(|(_, key)| key.starts_with(&fork.to_string())),
            "{}: {keys:?}",
            opener.kind()
        );
    })
    .await;
}

#[tokio::test]
async fn a_fork_starts_after_a_step_with_a_changed_agent_and_leaves_the_old_run_alone() {
    on_every_store(true, |opener| async move {
        let book = Arc::new(Book::default());
        let names = ["outline", "draft", "polish"];
        let pipeline = SequentialOrchestrator::new();
        let journal = opener.open().await;
        let ctx = context(Arc::clone(&journal));
        let first = pipeline
            .orchestrate_with_context(
                steps(&names, &book, &[]),
                OrchestratorInput::new("topic"),
                &ctx,
            )
            .await
            .expect("the first run");
        assert_eq!(first.result, "topic>outline>draft>polish");
        let old = last_run(&ctx);
        let old_events = journal.read(&[old]).await.len();

        // A new `draft` (same name, different behaviour) from the outline on.
        let mut agents = steps(&["outline"], &book, &[]);
        agents.push(Box::new(claude_agent_sdk::orchestration::SimpleAgent::new(
            "draft",
            "a better draft",
            |input| Ok(AgentOutput::new(format!("{}>DRAFT", input.content))),
        )));
        agents.extend(steps(&["polish"], &book, &[]));
        let ctx = context(Arc::clone(&journal));
        let forked =
            claude_agent_sdk::orchestration::fork(&pipeline, agents, old, "outline", None, &ctx)
                .await
                .unwrap_or_else(|error| panic!("{}: {error}", opener.kind()));
        assert_eq!(
            forked.result,
            "topic>outline>DRAFT>polish",
            "{}",
            opener.kind()
        );
        assert_eq!(book.count("outline"), 1, "the step forked after is reused");
        assert_eq!(book.count("polish"), 2);
        assert_ne!(last_run(&ctx), old);
        assert_eq!(
            journal.read(&[old]).await.len(),
            old_events,
            "the old run is untouched"
        );

        // The old run can still be forked again, from another step.
        let error = claude_agent_sdk::orchestration::fork(
            &pipeline,
            steps(&names, &book, &[]),
            old,
            "nope",
            None,
            &ctx,
        )
        .await
        .expect_err("no such step");
        assert!(error.to_string().contains("`nope`"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn a_truncated_sqlite_file_is_a_clear_error_not_a_panic() {
    let place = Place::new(Kind::Sqlite).await;
    let store = place.open().await;
    let book = Arc::new(Book::default());
    let ctx = context(store.journal());
    let many: Vec<String> = (0..200).map(|n| format!("step-{n}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    SequentialOrchestrator::new()
        .orchestrate_with_context(
            steps(&names, &book, &[]),
            OrchestratorInput::new("x".repeat(2000)),
            &ctx,
        )
        .await
        .expect("runs");
    let run = last_run(&ctx);
    drop(ctx);
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    store_support::execute(&place, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    let bytes = std::fs::read(&place.address).unwrap();
    std::fs::write(&place.address, &bytes[..bytes.len() / 3]).unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", place.address));
    let _ = std::fs::remove_file(format!("{}-shm", place.address));
    // Opening may notice (a damaged schema) or not (the header is whole);
    // reading the run must then say the store is damaged.
    match place.try_open(StoreOptions::new()).await {
        Err(error) => assert!(matches!(error, OrchestrationError::Store { .. }), "{error}"),
        Ok(store) => {
            let ctx = context(store.journal());
            let error = resume(
                &SequentialOrchestrator::new(),
                steps(&names, &book, &[]),
                run,
                &ctx,
            )
            .await
            .expect_err("a truncated store cannot resume the run");
            let text = error.to_string();
            assert!(
                matches!(error, OrchestrationError::Store { .. }) || text.contains("no run"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn a_run_still_beating_on_another_machine_is_not_resumed_until_its_heartbeat_is_stale() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let store = place.open().await;
        let ctx = context(store.journal());
        let _ = SequentialOrchestrator::new()
            .orchestrate_with_context(
                steps(&["a", "b"], &book, &[("b", &broken)]),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await;
        let run = last_run(&ctx);
        broken.store(false, Ordering::SeqCst);
        // As if another machine were running it, and beat a second ago.
        let now = chrono::Utc::now().timestamp_micros();
        store_support::execute(
            &place,
            &format!(
                "UPDATE runs SET status = 'running', host = 'another-machine', pid = 1, \
                 heartbeat_us = {} WHERE id = '{run}'",
                now - 1_000_000
            ),
        )
        .await;
        let ctx = context(place.open().await.journal());
        let refused = resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b"], &book, &[]),
            run,
            &ctx,
        )
        .await
        .expect_err("a run another machine is running");
        assert!(
            refused.to_string().contains("still running"),
            "{kind:?}: {refused}"
        );
        assert_eq!(book.count("b"), 1);

        // Its process died a minute ago: the run is resumed.
        store_support::execute(
            &place,
            &format!(
                "UPDATE runs SET heartbeat_us = {} WHERE id = '{run}'",
                now - 60_000_000
            ),
        )
        .await;
        let ctx = context(place.open().await.journal());
        resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b"], &book, &[]),
            run,
            &ctx,
        )
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: {error}"));
        assert_eq!(book.count("a"), 1);
        assert_eq!(book.count("b"), 2);
    }
}

/// Counts its runs in the state's `n` (`update_state`) and answers `inc<n>`.
struct Counter;

#[async_trait]
impl Agent for Counter {
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
        Ok(AgentOutput::new(format!("inc{n}")))
    }
}

#[tokio::test]
async fn a_graph_resumed_from_its_journal_keeps_the_loop_decisions_it_made() {
    on_every_store(true, |opener| async move {
        // `inc` loops while the count is under 2, then a person is asked:
        // the resumed run must not decide pass 1 again on the final count.
        let graph = || {
            GraphOrchestrator::new("count")
                .add_node("inc", Counter)
                .add_ask("ask", "go on?")
                .add_edge(START, "inc")
                .add_loop("inc", "inc", 5, |route| {
                    route.state("n").and_then(serde_json::Value::as_u64) < Some(2)
                })
                .add_edge("inc", "ask")
                .add_edge("ask", END)
        };
        let ctx = context(opener.open().await);
        let paused = graph()
            .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
            .await;
        assert!(
            matches!(paused, Err(OrchestrationError::InputRequired(_))),
            "{paused:?}"
        );
        let run = last_run(&ctx);
        let ctx = context(opener.open().await);
        ctx.answer("ask", "yes");
        let output = resume(&graph(), vec![], run, &ctx)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", opener.kind()));
        assert_eq!(output.result, "yes", "{}", opener.kind());
        let asked = output
            .execution_trace
            .agent_executions
            .iter()
            .find(|record| record.agent_name == "ask")
            .map(|record| record.input.content.clone());
        assert_eq!(asked.as_deref(), Some("inc2"), "{}", opener.kind());
        assert_eq!(
            ctx.get_state("n").await,
            Some(serde_json::json!(2)),
            "{}: no pass ran again",
            opener.kind()
        );
    })
    .await;
}

#[tokio::test]
async fn a_secret_that_reads_like_json_or_a_field_name_is_redacted_and_the_run_resumes() {
    // `null`, `true` and digits appear in every event's JSON, and `tent` in
    // its field names: redacting them in the text made events unreadable.
    for secret in ["null", "true", "2048", "tent"] {
        for kind in KINDS {
            let place = Place::new(kind).await;
            let options = || StoreOptions::new().with_secret(secret);
            let store = place.open_with(options()).await;
            let book = Arc::new(Book::default());
            let broken = Arc::new(AtomicBool::new(true));
            let names = ["a", "b"];
            let ctx = context(store.journal());
            ctx.set_state("token", serde_json::json!(format!("is {secret}")))
                .await;
            let _ = SequentialOrchestrator::new()
                .orchestrate_with_context(
                    steps(&names, &book, &[("b", &broken)]),
                    OrchestratorInput::new(format!("say {secret}")),
                    &ctx,
                )
                .await;
            let run = last_run(&ctx);
            let events = store
                .journal()
                .read_checked(&[run])
                .await
                .unwrap_or_else(|error| panic!("{kind:?} {secret:?}: {error}"));
            let text = serde_json::to_string(&events).unwrap();
            assert!(!text.contains(&format!("say {secret}")), "{kind:?}: {text}");
            assert!(
                text.contains(&format!("say {REDACTED}")),
                "{kind:?}: {text}"
            );

            broken.store(false, Ordering::SeqCst);
            let store = place.open_with(options()).await;
            let ctx = context(store.journal());
            let output = resume(
                &SequentialOrchestrator::new(),
                steps(&names, &book, &[]),
                run,
                &ctx,
            )
            .await
            .unwrap_or_else(|error| panic!("{kind:?} {secret:?}: {error}"));
            assert_eq!(output.result, format!("say {REDACTED}>a>b"), "{kind:?}");
            assert_eq!(book.count("a"), 1, "{kind:?} {secret:?}: a ran again");
        }
    }
}

/// A small file system of its own (tmpfs), unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
    _folder: store_support::TempDir,
}

impl SmallDisk {
    /// A disk of `size` (`mount` syntax, e.g. `8m`), or `None` where this
    /// process may not mount one (not root).
    fn mount(size: &str) -> Option<Self> {
        let folder = store_support::TempDir::new("disk");
        let path = folder.path().join("disk");
        std::fs::create_dir_all(&path).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Self {
            path,
            _folder: folder,
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the journal's connections close after the test's runtime.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Fills the disk that `filler` is on, then answers with a long text.
struct Filler {
    filler: std::path::PathBuf,
    fill: Arc<AtomicBool>,
    book: Arc<Book>,
}

#[async_trait]
impl Agent for Filler {
    fn name(&self) -> &str {
        "b"
    }
    fn description(&self) -> &str {
        "fills the disk"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        use std::io::Write as _;
        *self
            .book
            .runs
            .lock()
            .unwrap()
            .entry("b".into())
            .or_default() += 1;
        if self.fill.load(Ordering::SeqCst) {
            let mut file = std::fs::File::create(&self.filler).expect("the filler");
            let chunk = vec![b'f'; 64 << 10];
            while file.write_all(&chunk).is_ok() {}
            let _ = file.sync_all();
        }
        Ok(AgentOutput::new(format!(
            "{}>b{}",
            input.content,
            ".".repeat(256 << 10)
        )))
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_run_retryably_and_it_resumes_once_there_is_room() {
    use claude_agent_sdk::orchestration::store::SqliteJournal;
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let path = disk.path.join("runs.db");
    let filler = disk.path.join("filler");
    let book = Arc::new(Book::default());
    let fill = Arc::new(AtomicBool::new(true));
    let agents = |book: &Arc<Book>| -> Vec<Box<dyn Agent>> {
        let mut agents = steps(&["a"], book, &[]);
        agents.push(Box::new(Filler {
            filler: filler.clone(),
            fill: Arc::clone(&fill),
            book: Arc::clone(book),
        }));
        agents.extend(steps(&["c"], book, &[]));
        agents
    };
    let journal = Arc::new(SqliteJournal::open(&path).await.expect("open"));
    let ctx = context(journal.clone());
    let error = SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&book), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("the disk is full");
    assert!(matches!(error, OrchestrationError::Store { .. }), "{error}");
    assert!(
        error.is_retryable(),
        "a full disk is not for good (the docs promise a retryable error): {error}"
    );
    assert_eq!(book.count("c"), 0, "nothing starts once the store failed");
    let run = last_run(&ctx);
    drop((ctx, journal));

    std::fs::remove_file(&filler).expect("make room");
    fill.store(false, Ordering::SeqCst);
    let journal = Arc::new(SqliteJournal::open(&path).await.expect("open again"));
    let ctx = context(journal);
    let output = resume(&SequentialOrchestrator::new(), agents(&book), run, &ctx)
        .await
        .expect("resumes once there is room");
    assert!(
        output.result.starts_with("x>a>b."),
        "{}",
        &output.result[..20]
    );
    assert!(output.result.ends_with(">c"));
    assert_eq!(book.count("a"), 1, "a finished before the disk filled");
}

/// Waits until `sql` (a `SELECT` of one boolean) holds on the store at `place`.
async fn until_postgres(place: &Place, sql: &str) {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(&place.address)
        .await
        .expect("connect");
    loop {
        let holds: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut connection)
            .await
            .expect("poll");
        if holds {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_while_another_process_resumes_a_run_never_deletes_the_run_it_continues() {
    use sqlx::Connection as _;
    let place = Place::new(Kind::Postgres).await;
    let (pruner, resumer) = (place.open().await, place.open().await);
    let book = Arc::new(Book::default());
    let broken = Arc::new(AtomicBool::new(true));
    let ctx = context(resumer.journal());
    let _ = SequentialOrchestrator::new()
        .orchestrate_with_context(
            steps(&["a", "b"], &book, &[("b", &broken)]),
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    let run = last_run(&ctx);

    // Hold the prune in the middle (its deletes wait for the events table)…
    let mut blocker = sqlx::PgConnection::connect(&place.address)
        .await
        .expect("connect");
    let mut hold = blocker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("lock");
    let prune = tokio::spawn({
        let pruner = pruner.clone();
        async move { pruner.prune(Prune::KeepNewest(0)).await }
    });
    until_postgres(
        &place,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND query LIKE 'DELETE FROM events%')",
    )
    .await;
    // …while another process resumes the run it chose.
    let resumed = tokio::spawn({
        let (book, journal) = (Arc::clone(&book), resumer.journal());
        async move {
            let ctx = context(journal);
            resume(
                &SequentialOrchestrator::new(),
                steps(&["a", "b"], &book, &[]),
                run,
                &ctx,
            )
            .await
        }
    });
    broken.store(false, Ordering::SeqCst);
    until_postgres(
        &place,
        &format!(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = '{run}' AND resumed_by IS NOT NULL) \
             OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE 'UPDATE runs SET resumed_by%')"
        ),
    )
    .await;
    hold.rollback().await.expect("release");
    let pruned = prune.await.expect("the prune");
    let resumed = resumed.await.expect("the resume");

    match resumed {
        Ok(output) => {
            assert_eq!(output.result, "x>a>b");
            assert_eq!(pruned, 0, "the run a running run continues was pruned");
            assert!(
                pruner.run(run).await.is_some(),
                "the run a running run continues was pruned"
            );
            assert!(!pruner.journal().read(&[run]).await.is_empty());
        }
        Err(error) => {
            assert_eq!(pruned, 1);
            assert!(error.to_string().contains("not in"), "{error}");
            assert_eq!(book.count("b"), 1, "nothing ran for a pruned run");
        }
    }
}

/// An agent that reports 5·10¹⁸ input tokens costing $10³⁰⁸: two of them in
/// one run overflow any plain sum (an `i64`, a finite `f64`).
fn spender(name: &'static str) -> Box<dyn Agent> {
    Box::new(claude_agent_sdk::orchestration::SimpleAgent::new(
        name,
        "reports a huge usage",
        |_| {
            Ok(AgentOutput::new("spent").with_data(serde_json::json!({
                "usage": {
                    "input_tokens": 5_000_000_000_000_000_000_u64,
                    "output_tokens": 0,
                    "cost_usd": 1e308
                }
            })))
        },
    ))
}

#[tokio::test]
async fn huge_usages_saturate_a_runs_totals_and_the_runs_are_still_listed() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let ctx = context(store.journal());
        // In a pipeline each step's end is stored before the next starts:
        // the store's own sum saturates. In a fan-out both ends may share a
        // batch: the batch's sum saturates.
        SequentialOrchestrator::new()
            .orchestrate_with_context(
                vec![spender("a"), spender("b")],
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await
            .unwrap_or_else(|error| panic!("{kind:?}: the pipeline's writes failed: {error}"));
        let pipeline = last_run(&ctx);
        ParallelOrchestrator::new()
            .orchestrate_with_context(
                vec![spender("c"), spender("d")],
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await
            .unwrap_or_else(|error| panic!("{kind:?}: the fan-out's writes failed: {error}"));
        let fan_out = last_run(&ctx);

        let runs = store.runs(10).await;
        assert_eq!(runs.len(), 2, "{kind:?}");
        for run in [pipeline, fan_out] {
            let run = store.run(run).await.expect("the run is listed");
            assert_eq!(run.status, RunStatus::Succeeded, "{kind:?}");
            assert_eq!(run.tokens, i64::MAX.unsigned_abs(), "{kind:?}");
            assert_eq!(run.cost_usd, f64::MAX, "{kind:?}");
        }
        // A listing's JSON reads back (it has no infinity).
        let json = serde_json::to_string(&runs).expect("runs as JSON");
        let again: Vec<claude_agent_sdk::orchestration::store::RunSummary> =
            serde_json::from_str(&json).expect("the JSON reads back");
        assert_eq!(again, runs, "{kind:?}");
    }
}

#[tokio::test]
async fn totals_an_older_version_let_overflow_are_listed_saturated() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let ctx = context(store.journal());
        SequentialOrchestrator::new()
            .orchestrate_with_context(vec![spender("a")], OrchestratorInput::new("x"), &ctx)
            .await
            .expect("runs");
        let run = last_run(&ctx);
        // What plain sums left: on SQLite an overflowed integer sum is a
        // REAL (9e999 is SQLite's infinity); on PostgreSQL only the cost
        // could overflow (to infinity).
        let overflowed = match kind {
            Kind::Sqlite => "tokens = 1e19, cost_usd = 9e999",
            Kind::Postgres => "cost_usd = 'Infinity'",
        };
        store_support::execute(
            &place,
            &format!("UPDATE runs SET {overflowed} WHERE id = '{run}'"),
        )
        .await;
        let listed = store.run(run).await.expect("the run is listed");
        if kind == Kind::Sqlite {
            assert_eq!(listed.tokens, i64::MAX.unsigned_abs());
        }
        assert_eq!(listed.cost_usd, f64::MAX, "{kind:?}");
        assert_eq!(store.runs(10).await.len(), 1, "{kind:?}");
    }
}

/// The id of a process that ended (and was reaped): no process has it now.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("run `true`");
    child.wait().expect("wait for `true`");
    child.id()
}

/// A live process of this machine, killed when dropped.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start() -> Self {
        Self(
            std::process::Command::new("sleep")
                .arg("120")
                .spawn()
                .expect("run `sleep`"),
        )
    }

    /// Kills it, and waits until it is gone.
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes run `run`'s row say what a run that never ended says, owned by
/// `owner` (SQL assignments to `host`, `pid`, `heartbeat_us`).
async fn never_ended(place: &Place, run: RunId, owner: &str) {
    store_support::execute(
        place,
        &format!(
            "UPDATE runs SET status = 'running', finished_us = NULL, {owner} WHERE id = '{run}'"
        ),
    )
    .await;
}

/// `count` runs of the pipeline `a` under `ctx`, by id, oldest first.
async fn runs_of_a(ctx: &ExecutionContext, book: &Arc<Book>, count: usize) -> Vec<RunId> {
    let mut runs = Vec::new();
    for _ in 0..count {
        SequentialOrchestrator::new()
            .orchestrate_with_context(steps(&["a"], book, &[]), OrchestratorInput::new("x"), ctx)
            .await
            .expect("runs");
        runs.push(last_run(ctx));
    }
    runs
}

#[tokio::test]
async fn a_run_whose_process_died_is_listed_as_crashed_and_pruned_but_a_live_one_is_not() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let book = Arc::new(Book::default());
        let ctx = context(store.journal());
        let runs = runs_of_a(&ctx, &book, 4).await;
        let mut alive = Sleeper::start();
        let now = chrono::Utc::now().timestamp_micros();
        // On this machine (the host the store wrote): a process that is
        // gone, and one that is alive. On another: a heartbeat a second
        // old, and one a minute old.
        let owners = [
            format!("pid = {}", dead_pid()),
            format!("pid = {}", alive.0.id()),
            format!(
                "host = 'another-machine', pid = 1, heartbeat_us = {}",
                now - 1_000_000
            ),
            format!(
                "host = 'another-machine', pid = 1, heartbeat_us = {}",
                now - 60_000_000
            ),
        ];
        for (run, owner) in runs.iter().zip(&owners) {
            never_ended(&place, *run, owner).await;
        }
        let status = |run: RunId| {
            let store = store.clone();
            async move { store.run(run).await.map(|summary| summary.status) }
        };
        let expected = [
            RunStatus::Crashed,
            RunStatus::Running,
            RunStatus::Running,
            RunStatus::Crashed,
        ];
        for (run, expected) in runs.iter().zip(expected) {
            assert_eq!(status(*run).await, Some(expected), "{kind:?}: run {run}");
        }
        let listed = store.runs(10).await;
        assert_eq!(
            listed
                .iter()
                .filter(|run| run.status == RunStatus::Crashed)
                .count(),
            2,
            "{kind:?}: the listing says the same"
        );

        // The crashed runs are finished runs to a prune; the live ones stay.
        let in_a_second = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
        assert_eq!(
            store.prune(Prune::StartedBefore(in_a_second)).await,
            2,
            "{kind:?}"
        );
        assert_eq!(status(runs[0]).await, None, "{kind:?}");
        assert_eq!(status(runs[3]).await, None, "{kind:?}");
        assert_eq!(store.prune(Prune::KeepNewest(0)).await, 0, "{kind:?}");
        assert_eq!(status(runs[1]).await, Some(RunStatus::Running));
        assert_eq!(status(runs[2]).await, Some(RunStatus::Running));

        // Its process dies: the run is crashed, and pruned.
        alive.stop();
        assert_eq!(status(runs[1]).await, Some(RunStatus::Crashed), "{kind:?}");
        assert_eq!(store.prune(Prune::KeepNewest(0)).await, 1, "{kind:?}");
        assert_eq!(status(runs[1]).await, None, "{kind:?}");
        assert_eq!(
            status(runs[2]).await,
            Some(RunStatus::Running),
            "{kind:?}: the run beating on another machine is kept"
        );
    }
}

#[tokio::test]
async fn answers_a_run_was_given_carry_over_when_it_is_resumed_after_a_failure() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let build = || {
            GraphOrchestrator::new("approval")
                .add_node(
                    "draft",
                    Step {
                        name: "draft".into(),
                        book: Arc::clone(&book),
                        broken: Arc::clone(&broken),
                    },
                )
                .add_node("approve", Approver)
                .add_edge(START, "draft")
                .add_edge("draft", "approve")
                .add_edge("approve", END)
        };
        // The answer is given up front; the run fails before the question.
        let store = place.open().await;
        let ctx = context(store.journal());
        ctx.answer("budget", "yes");
        let failed = build()
            .orchestrate_with_context(vec![], OrchestratorInput::new("plan"), &ctx)
            .await;
        assert!(failed.is_err(), "{kind:?}: the draft fails");
        let run = last_run(&ctx);
        drop(ctx);
        drop(store);

        // Another process resumes it, given no answer: the run had one.
        broken.store(false, Ordering::SeqCst);
        let store = place.open().await;
        let ctx = context(store.journal());
        let output = resume(&build(), vec![], run, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(output.result, "plan>draft>approved:yes", "{kind:?}");
    }
}

/// Keeps a draft in the shared state (counting the drafts it writes), then
/// asks whether it is good: the draft survives the pause.
struct Drafter(Arc<Book>);

#[async_trait]
impl Agent for Drafter {
    fn name(&self) -> &str {
        "drafter"
    }

    fn description(&self) -> &str {
        "drafts once, then asks"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().expect("inside a run");
        let draft = match ctx.get_state("draft").await {
            Some(serde_json::Value::String(draft)) => draft,
            _ => {
                self.0.note("draft");
                let draft = format!("draft of {}", input.content);
                ctx.set_state("draft", serde_json::json!(draft)).await;
                draft
            }
        };
        let answer = ctx.ask("good", &draft)?;
        Ok(AgentOutput::new(format!("{draft}: {answer}")))
    }
}

#[tokio::test]
async fn what_the_asking_step_kept_in_the_state_survives_a_restart() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let build = || {
            GraphOrchestrator::new("drafting")
                .add_node("drafter", Drafter(Arc::clone(&book)))
                .add_edge(START, "drafter")
                .add_edge("drafter", END)
        };
        let store = place.open().await;
        let ctx = context(store.journal());
        let paused = build()
            .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
            .await;
        assert!(matches!(paused, Err(OrchestrationError::InputRequired(_))));
        let run = last_run(&ctx);
        drop(ctx);
        drop(store);

        // Another process, with the answer: the step asks again and finds
        // its draft, as a pause resumed in memory would.
        let store = place.open().await;
        let ctx = context(store.journal());
        ctx.answer("good", "yes");
        let output = resume(&build(), vec![], run, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(output.result, "draft of x: yes", "{kind:?}");
        assert_eq!(book.count("draft"), 1, "{kind:?}: the draft was made again");
    }
}

#[tokio::test]
async fn a_run_whose_process_id_now_names_a_later_process_is_crashed() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let book = Arc::new(Book::default());
        let ctx = context(store.journal());
        SequentialOrchestrator::new()
            .orchestrate_with_context(steps(&["a"], &book, &[]), OrchestratorInput::new("x"), &ctx)
            .await
            .expect("runs");
        let run = last_run(&ctx);
        // The run started an hour ago, in a process that is gone; its id
        // now names a process started a moment ago.
        let later = Sleeper::start();
        let an_hour_ago = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
        never_ended(
            &place,
            run,
            &format!("pid = {}, started_us = {an_hour_ago}", later.0.id()),
        )
        .await;
        let summary = store.run(run).await.expect("the run");
        assert_eq!(summary.status, RunStatus::Crashed, "{kind:?}");
        // So it may be resumed (a live owner's run may not).
        let resumed = resume(
            &SequentialOrchestrator::new(),
            steps(&["a"], &book, &[]),
            run,
            &ctx,
        )
        .await;
        assert!(resumed.is_ok(), "{kind:?}: {resumed:?}");
    }
}

/// Says it started, then waits to be let go.
struct Gate {
    started: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Agent for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn description(&self) -> &str {
        "waits to be let go"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        if let Some(started) = self.started.lock().unwrap().take() {
            let _ = started.send(());
        }
        self.release.notified().await;
        Ok(AgentOutput::new(input.content))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_this_process_is_running_is_listed_as_running_and_never_pruned() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let (started, has_started) = tokio::sync::oneshot::channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let gate = Gate {
            started: Mutex::new(Some(started)),
            release: Arc::clone(&release),
        };
        let ctx = context(store.journal());
        let running = tokio::spawn(async move {
            SequentialOrchestrator::new()
                .orchestrate_with_context(vec![Box::new(gate)], OrchestratorInput::new("x"), &ctx)
                .await
        });
        has_started.await.expect("the gate starts");
        let listed = store.runs(10).await;
        assert_eq!(listed.len(), 1, "{kind:?}");
        assert_eq!(listed[0].status, RunStatus::Running, "{kind:?}");
        let in_a_second = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
        assert_eq!(store.prune(Prune::StartedBefore(in_a_second)).await, 0);
        assert_eq!(store.prune(Prune::KeepNewest(0)).await, 0, "{kind:?}");

        release.notify_one();
        running
            .await
            .expect("the run's task")
            .unwrap_or_else(|error| panic!("{kind:?}: {error}"));
        let run = store.run(listed[0].id).await.expect("kept");
        assert_eq!(run.status, RunStatus::Succeeded, "{kind:?}");
        assert_eq!(store.prune(Prune::KeepNewest(0)).await, 1, "{kind:?}");
    }
}

#[tokio::test]
async fn a_crashed_run_that_was_resumed_is_pruned_with_its_chain() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let ctx = context(store.journal());
        let _ = SequentialOrchestrator::new()
            .orchestrate_with_context(
                steps(&["a", "b"], &book, &[("b", &broken)]),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await;
        let first = last_run(&ctx);
        // Its process was killed in `b`: no end was stored.
        never_ended(&place, first, &format!("pid = {}", dead_pid())).await;
        broken.store(false, Ordering::SeqCst);
        let ctx = context(place.open().await.journal());
        resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b"], &book, &[]),
            first,
            &ctx,
        )
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: {error}"));
        let second = last_run(&ctx);
        assert_eq!(book.count("a"), 1, "{kind:?}");

        let crashed = store.run(first).await.expect("the first run");
        assert_eq!(crashed.status, RunStatus::Crashed, "{kind:?}");
        assert_eq!(crashed.resumed_by, Some(second), "{kind:?}");
        assert_eq!(
            store.prune(Prune::KeepNewest(0)).await,
            2,
            "{kind:?}: the whole chain"
        );
        assert!(store.runs(10).await.is_empty(), "{kind:?}");
    }
}

/// The PostgreSQL server's clock, in microseconds since the epoch, as the
/// store reads it (`clock_timestamp()`, which [`skew_server_clock`] shifts).
const SERVER_NOW_US: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)";

/// Makes the clock of the PostgreSQL server at `place` read `offset_s`
/// seconds off this machine's, for every connection to its database made
/// from now on — as if this machine's clock were that far off the server's,
/// as another machine's may be. `clock_timestamp()` is shadowed by a function
/// of a schema the database's search path puts before `pg_catalog` (tables
/// are still made in `public`).
async fn skew_server_clock(place: &Place, offset_s: i64) {
    store_support::execute(
        place,
        &format!(
            "CREATE SCHEMA skewed_clock; \
             CREATE FUNCTION skewed_clock.clock_timestamp() RETURNS timestamptz \
                 LANGUAGE sql VOLATILE \
                 AS $$ SELECT pg_catalog.clock_timestamp() + make_interval(secs => {offset_s}) $$; \
             DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = \
                 public, skewed_clock, pg_catalog', current_database()); END $$;"
        ),
    )
    .await;
    let off = store_support::query_i64(place, &format!("SELECT {SERVER_NOW_US}")).await
        - chrono::Utc::now().timestamp_micros();
    assert!(
        (off - offset_s * 1_000_000).abs() < 5_000_000,
        "the server's clock reads {off} µs off this machine's, not {offset_s} s"
    );
}

/// Whether a run of another machine still runs is told by the age of its
/// heartbeat on one clock, the PostgreSQL server's — never by comparing a
/// time one machine wrote with another machine's clock. With the server's
/// clock ten minutes ahead of this machine's, then ten minutes behind: a run
/// (and a run that claimed a run and has not started yet) whose heartbeat
/// the server's clock says is a second old is running — listed so, not
/// resumed, not pruned —, one whose heartbeat is 30 s old is crashed — listed
/// so, resumed (its claim taken over), pruned.
#[tokio::test]
async fn another_machines_heartbeat_is_judged_by_the_servers_clock_not_by_this_machines() {
    for offset_s in [600, -600] {
        let place = Place::new(Kind::Postgres).await;
        skew_server_clock(&place, offset_s).await;
        let store = place.open().await;
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let ctx = context(store.journal());
        let mut runs = Vec::new();
        for _ in 0..4 {
            let _ = SequentialOrchestrator::new()
                .orchestrate_with_context(
                    steps(&["a", "b"], &book, &[("b", &broken)]),
                    OrchestratorInput::new("x"),
                    &ctx,
                )
                .await;
            runs.push(last_run(&ctx));
        }
        let [beating, silent, claimed_by_beating, claimed_by_silent] = runs[..] else {
            unreachable!("four runs")
        };
        // As another machine writes its rows, whatever its clock says: a
        // heartbeat by the server's clock, a second old or 30 s old.
        let beat = |age_s: i64| format!("{SERVER_NOW_US} - {}", age_s * 1_000_000);
        for (run, age_s) in [(beating, 1), (silent, 30)] {
            let owner = format!(
                "host = 'another-machine', pid = 1, heartbeat_us = {}",
                beat(age_s)
            );
            never_ended(&place, run, &owner).await;
        }
        // Runs claimed by a run of another machine that never stored its
        // start.
        let mut claimers = Vec::new();
        for (run, age_s) in [(claimed_by_beating, 1), (claimed_by_silent, 30)] {
            let claimer = RunId::new();
            store_support::execute(
                &place,
                &format!(
                    "INSERT INTO runs (id, root, origin, resumes, orchestrator, status, \
                     started_us, host, pid, heartbeat_us) \
                     SELECT '{claimer}', '{claimer}', origin, id, orchestrator, 'running', \
                     started_us, 'another-machine', 1, {} FROM runs WHERE id = '{run}'; \
                     UPDATE runs SET resumed_by = '{claimer}' WHERE id = '{run}'",
                    beat(age_s)
                ),
            )
            .await;
            claimers.push(claimer);
        }
        let at = format!("the server's clock {offset_s:+} s off this machine's");

        let judge = place.open().await;
        let listed: HashMap<RunId, RunStatus> = judge
            .runs(20)
            .await
            .into_iter()
            .map(|run| (run.id, run.status))
            .collect();
        for (run, expected) in [
            (beating, RunStatus::Running),
            (silent, RunStatus::Crashed),
            (claimers[0], RunStatus::Running),
            (claimers[1], RunStatus::Crashed),
        ] {
            assert_eq!(listed.get(&run), Some(&expected), "{at}: listed");
            assert_eq!(
                judge.run(run).await.map(|run| run.status),
                Some(expected),
                "{at}: shown"
            );
        }

        broken.store(false, Ordering::SeqCst);
        let resumed = |run: RunId| {
            let (book, journal) = (Arc::clone(&book), judge.journal());
            async move {
                resume(
                    &SequentialOrchestrator::new(),
                    steps(&["a", "b"], &book, &[]),
                    run,
                    &context(journal),
                )
                .await
            }
        };
        let refused = resumed(beating).await.expect_err("a run beating elsewhere");
        assert!(
            refused.to_string().contains("still running"),
            "{at}: {refused}"
        );
        let refused = resumed(claimed_by_beating)
            .await
            .expect_err("a run claimed by a run beating elsewhere");
        assert!(
            refused.to_string().contains("resumed already"),
            "{at}: {refused}"
        );
        for run in [silent, claimed_by_silent] {
            resumed(run)
                .await
                .unwrap_or_else(|error| panic!("{at}: a run whose owner is silent: {error}"));
        }
        assert_eq!(book.count("a"), 4, "{at}: no finished step ran again");

        // The chains of the silent runs (each with the run that resumed
        // it) are pruned; the beating ones are kept.
        assert_eq!(judge.prune(Prune::KeepNewest(0)).await, 4, "{at}");
        for run in [beating, claimed_by_beating, claimers[0]] {
            assert!(judge.run(run).await.is_some(), "{at}: {run} kept");
        }
        assert_eq!(judge.run(silent).await, None, "{at}");
        assert_eq!(judge.run(claimed_by_silent).await, None, "{at}");
    }
}

/// A running run's heartbeat — written when it starts, every few seconds
/// after, and when a run claims another — is the store's time, not this
/// machine's: with a PostgreSQL server whose clock is ten minutes ahead of
/// this machine's, every heartbeat written is the server's time, and a live
/// run of "another machine" is listed as running. (A SQLite store's clock is
/// its machine's: the heartbeats are that clock's microseconds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_written_by_the_stores_clock() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let clock = match kind {
            Kind::Postgres => {
                skew_server_clock(&place, 600).await;
                SERVER_NOW_US
            }
            Kind::Sqlite => "CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
        };
        let store = place.open().await;
        // Every heartbeat written, with the store's clock as it was written.
        let note =
            |op: &str| format!("INSERT INTO beats VALUES ('{op}', NEW.heartbeat_us, {clock})");
        let triggers = match kind {
            Kind::Postgres => format!(
                "CREATE TABLE beats (op TEXT, heartbeat_us BIGINT, clock_us BIGINT); \
                 CREATE FUNCTION note_beat() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN {}; RETURN NEW; END $$; \
                 CREATE TRIGGER note_beat AFTER INSERT OR UPDATE OF heartbeat_us ON runs \
                 FOR EACH ROW EXECUTE FUNCTION note_beat();",
                note("' || TG_OP || '")
            ),
            Kind::Sqlite => format!(
                "CREATE TABLE beats (op TEXT, heartbeat_us INTEGER, clock_us INTEGER); \
                 CREATE TRIGGER note_insert AFTER INSERT ON runs BEGIN {}; END; \
                 CREATE TRIGGER note_update AFTER UPDATE OF heartbeat_us ON runs \
                 BEGIN {}; END;",
                note("INSERT"),
                note("UPDATE")
            ),
        };
        store_support::execute(&place, &triggers).await;

        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let (started, has_started) = tokio::sync::oneshot::channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let mut agents: Vec<Box<dyn Agent>> = vec![Box::new(Gate {
            started: Mutex::new(Some(started)),
            release: Arc::clone(&release),
        })];
        agents.extend(steps(&["b"], &book, &[("b", &broken)]));
        let ctx = context(store.journal());
        let running = tokio::spawn(async move {
            SequentialOrchestrator::new()
                .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
                .await
        });
        has_started.await.expect("the gate starts");
        let run = store.runs(1).await[0].id;
        // As if it ran on another machine: its heartbeat tells.
        store_support::execute(
            &place,
            &format!("UPDATE runs SET host = 'another-machine' WHERE id = '{run}'"),
        )
        .await;
        // A heartbeat is written every 5 s.
        tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
        let judge = place.open().await;
        assert_eq!(
            judge.run(run).await.map(|run| run.status),
            Some(RunStatus::Running),
            "{kind:?}: a live run beating on another machine"
        );
        release.notify_one();
        let _ = running.await.expect("the run's task");
        broken.store(false, Ordering::SeqCst);
        let mut agents: Vec<Box<dyn Agent>> = vec![Box::new(Gate {
            started: Mutex::new(None),
            release: Arc::clone(&release),
        })];
        agents.extend(steps(&["b"], &book, &[]));
        resume(
            &SequentialOrchestrator::new(),
            agents,
            run,
            &context(judge.journal()),
        )
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: {error}"));

        // The run's start and the claim's row (inserts), a heartbeat while
        // it ran and the resumed run's start completing the claim's row
        // (updates): each the store's time as it was written.
        let count = |filter: &str| {
            let place = place.clone();
            let sql = format!("SELECT COUNT(*) FROM beats WHERE {filter}");
            async move { store_support::query_i64(&place, &sql).await }
        };
        assert_eq!(count("op = 'INSERT'").await, 2, "{kind:?}");
        assert!(count("op = 'UPDATE'").await >= 2, "{kind:?}");
        assert_eq!(
            count("heartbeat_us IS NULL OR ABS(heartbeat_us - clock_us) > 5000000").await,
            0,
            "{kind:?}: a heartbeat is not the store's time"
        );
    }
}

/// A prune deletes a big tree's events in chunks (a statement deletes a
/// bounded number, so that each is answered soon): a tree of many more
/// events than a chunk goes whole, and the events of a kept tree, written
/// between them, stay.
#[tokio::test]
async fn a_prune_deletes_every_event_of_a_big_tree_and_none_of_another() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let store = place.open().await;
        let book = Arc::new(Book::default());
        let ctx = context(store.journal());
        let runs = runs_of_a(&ctx, &book, 2).await;
        let [old, new] = runs[..] else {
            unreachable!("two runs")
        };
        // 25,000 more events each, the two trees' in turn.
        store_support::execute(
            &place,
            &format!(
                "INSERT INTO events (root, run, at_us, kind, body) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) \
                 SELECT CASE WHEN i % 2 = 0 THEN '{old}' ELSE '{new}' END, \
                 CASE WHEN i % 2 = 0 THEN '{old}' ELSE '{new}' END, 0, 'padding', \
                 'padding ' || i FROM n"
            ),
        )
        .await;
        let events = |run: RunId| {
            let place = place.clone();
            async move {
                store_support::query_i64(
                    &place,
                    &format!("SELECT COUNT(*) FROM events WHERE root = '{run}'"),
                )
                .await
            }
        };
        let kept = events(new).await;
        assert!(events(old).await > 25_000, "{kind:?}");
        assert_eq!(store.prune(Prune::KeepNewest(1)).await, 1, "{kind:?}");
        assert_eq!(events(old).await, 0, "{kind:?}");
        assert_eq!(
            events(new).await,
            kept,
            "{kind:?}: the kept tree's events stay"
        );
        assert_eq!(store.run(old).await, None, "{kind:?}");
        assert!(store.run(new).await.is_some(), "{kind:?}");
    }
}

#[tokio::test]
async fn a_store_opened_read_only_reads_the_runs_and_a_run_under_it_fails_without_writing() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let writer = place.open().await;
        let ctx = context(writer.journal());
        SequentialOrchestrator::new()
            .orchestrate_with_context(
                steps(&["a", "b"], &book, &[]),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await
            .unwrap();
        let run = last_run(&ctx);

        let reader = place.open_read_only().await.unwrap();
        let runs = reader.runs(10).await;
        assert_eq!(runs.len(), 1, "{kind:?}");
        assert_eq!(runs[0].id, run, "{kind:?}");
        let read = context(reader.journal());
        let trace = read.run_trace(run).await.expect("the run's trace");
        assert_eq!(trace.agent_executions.len(), 2, "{kind:?}");

        let error = SequentialOrchestrator::new()
            .orchestrate_with_context(
                steps(&["c"], &book, &[]),
                OrchestratorInput::new("y"),
                &read,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error.root_cause(), OrchestrationError::Store { .. }),
            "{kind:?}: {error:?}"
        );
        assert_eq!(writer.runs(10).await.len(), 1, "{kind:?}: a run was kept");

        // Closed, a store writes what it was given and takes no more: the
        // reader says it could not write the run's events.
        assert!(
            matches!(reader.close().await, Err(OrchestrationError::Store { .. })),
            "{kind:?}"
        );
        writer.close().await.unwrap();
        assert!(
            matches!(
                writer.journal().read_checked(&[run]).await,
                Err(OrchestrationError::Store { .. })
            ),
            "{kind:?}"
        );
        assert_eq!(place.open().await.runs(10).await.len(), 1, "{kind:?}");
    }
}
