//! Durable runs under concurrency and failure, as users running several
//! processes against one store meet them: a store that fails right after a
//! resume claimed its run, a PostgreSQL server that stops answering in the
//! middle of a write, outputs of megabytes, and several processes writing
//! one SQLite file while another lists it. Every test runs on a real SQLite
//! file and a real PostgreSQL server (see `store_support`).
//!
//! The writers are this test binary run again, on the `writer_child` test
//! with `CAS_REVIEW_CHILD` set; without it, that test does nothing.

mod store_support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::store::{PostgresJournal, Prune, RunStatus};
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentError, AgentInput, AgentOutput, EventKind, ExecutionConfig,
    ExecutionContext, Journal, OrchestrationError, Orchestrator, OrchestratorInput,
    ParallelOrchestrator, Result, RunId, SequentialOrchestrator,
};
use store_support::{Kind, Place, KINDS};

/// How often each agent ran.
#[derive(Default)]
struct Book {
    runs: Mutex<HashMap<String, u32>>,
}

impl Book {
    fn count(&self, name: &str) -> u32 {
        self.runs.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// Appends its name (and `size` bytes of padding) to its input; fails
/// while `broken` is set.
struct Step {
    name: String,
    book: Arc<Book>,
    broken: Arc<AtomicBool>,
    size: usize,
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
        if self.broken.load(Ordering::SeqCst) {
            return Err(AgentError::new(format!("{} is broken", self.name)).into());
        }
        Ok(AgentOutput::new(format!(
            "{}>{}{}",
            short(&input.content),
            self.name,
            padding(&self.name, self.size)
        )))
    }
}

/// The start of `text` (an input may be megabytes).
fn short(text: &str) -> &str {
    &text[..text.len().min(40)]
}

/// `size` bytes that differ from one agent to the next (so a mixed-up
/// output shows), with some characters JSON escapes.
fn padding(name: &str, size: usize) -> String {
    let unit = format!("\"{name}\"\\\n\u{e9}");
    unit.repeat(size / unit.len() + 1)[..size].to_owned()
}

fn steps(
    names: &[&str],
    book: &Arc<Book>,
    broken: Option<(&str, &Arc<AtomicBool>)>,
    size: usize,
) -> Vec<Box<dyn Agent>> {
    names
        .iter()
        .map(|name| {
            let broken = match broken {
                Some((which, flag)) if which == *name => Arc::clone(flag),
                _ => Arc::new(AtomicBool::new(false)),
            };
            Box::new(Step {
                name: (*name).to_owned(),
                book: Arc::clone(book),
                broken,
                size,
            }) as Box<dyn Agent>
        })
        .collect()
}

fn context(journal: Arc<dyn Journal>) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new().with_max_retries(0)).with_journal(journal)
}

fn last_run(ctx: &ExecutionContext) -> RunId {
    *ctx.run_ids().last().expect("a run")
}

/// A pipeline `a`, `b`, `c` whose `b` failed: the run to resume.
async fn failed_pipeline(place: &Place, book: &Arc<Book>) -> RunId {
    let broken = Arc::new(AtomicBool::new(true));
    let store = place.open().await;
    let ctx = context(store.journal());
    let failed = SequentialOrchestrator::new()
        .orchestrate_with_context(
            steps(&["a", "b", "c"], book, Some(("b", &broken)), 0),
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    assert!(failed.is_err(), "b is broken");
    last_run(&ctx)
}

/// Makes the store refuse to store the start of a resumed run (as a full
/// disk, or a server going away at that moment, would), or stop refusing.
async fn refuse_resumed_starts(place: &Place, refuse: bool) {
    let sql = match (place.kind, refuse) {
        (Kind::Sqlite, true) => {
            "CREATE TRIGGER refuse_resumed BEFORE INSERT ON events \
             WHEN NEW.kind = 'run_started' AND NEW.body LIKE '%\"resumes\":%' \
             BEGIN SELECT RAISE(ABORT, 'no room left'); END;"
        }
        (Kind::Sqlite, false) => "DROP TRIGGER refuse_resumed;",
        (Kind::Postgres, true) => {
            "CREATE FUNCTION refuse_resumed() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'no room left'; END $$; \
             CREATE TRIGGER refuse_resumed BEFORE INSERT ON events FOR EACH ROW \
             WHEN (NEW.kind = 'run_started' AND NEW.body LIKE '%\"resumes\":%') \
             EXECUTE FUNCTION refuse_resumed();"
        }
        (Kind::Postgres, false) => "DROP TRIGGER refuse_resumed ON events;",
    };
    store_support::execute(place, sql).await;
}

/// A resume claims the run it continues before its own start is stored:
/// when the store fails (or the process dies) in between, the run must not
/// be left claimed by a run the store has never heard of — resuming it
/// again would say "resume that one", and that one is nowhere.
#[tokio::test]
async fn a_resume_whose_start_was_never_stored_does_not_keep_the_run_from_being_resumed() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let run = failed_pipeline(&place, &book).await;

        refuse_resumed_starts(&place, true).await;
        let store = place.open().await;
        let error = resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b", "c"], &book, None, 0),
            run,
            &context(store.journal()),
        )
        .await
        .expect_err("the store refuses the resumed run's start");
        assert!(
            matches!(error, OrchestrationError::Store { .. }),
            "{kind:?}: {error}"
        );
        assert_eq!(book.count("b"), 1, "{kind:?}: nothing ran unstored");
        drop(store);

        // The store is back: the run resumes, from another journal.
        refuse_resumed_starts(&place, false).await;
        let store = place.open().await;
        let ctx = context(store.journal());
        let output = resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b", "c"], &book, None, 0),
            run,
            &ctx,
        )
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: the run cannot be resumed: {error}"));
        assert_eq!(output.result, "x>a>b>c", "{kind:?}");
        assert_eq!(
            (book.count("a"), book.count("b"), book.count("c")),
            (1, 2, 1),
            "{kind:?}"
        );
        // The store names the run that did continue it, and lists no run
        // that never started.
        let resumed = last_run(&ctx);
        let old = store.run(run).await.expect("the old run");
        assert_eq!(old.resumed_by, Some(resumed), "{kind:?}");
        let runs = store.runs(10).await;
        assert_eq!(
            runs.iter().map(|run| run.status).collect::<Vec<_>>(),
            [RunStatus::Succeeded, RunStatus::Failed],
            "{kind:?}: {runs:?}"
        );
    }
}

/// The process of `a_resume_that_died_before_its_run_started_in_another_process_holds_nothing`:
/// resumes the run `CAS_REVIEW_RESUME` names on the store `CAS_REVIEW_CLAIMER`
/// (of kind `CAS_REVIEW_KIND`), whose start the store refuses, and exits.
#[tokio::test]
async fn claimer_child() {
    let (Ok(address), Ok(kind), Ok(run)) = (
        std::env::var("CAS_REVIEW_CLAIMER"),
        std::env::var("CAS_REVIEW_KIND"),
        std::env::var("CAS_REVIEW_RESUME"),
    ) else {
        return;
    };
    let journal: Arc<dyn Journal> = if kind == "sqlite" {
        Arc::new(
            claude_agent_sdk::orchestration::store::SqliteJournal::open(&address)
                .await
                .expect("open"),
        )
    } else {
        Arc::new(PostgresJournal::connect(&address).await.expect("connect"))
    };
    let book = Arc::new(Book::default());
    let error = resume(
        &SequentialOrchestrator::new(),
        steps(&["a", "b", "c"], &book, None, 0),
        run.parse().expect("a run id"),
        &context(journal),
    )
    .await
    .expect_err("the store refuses the resumed run's start");
    println!("CAS-CLAIMER: {error}");
}

/// As above, with the resume in another process, which is gone by the time
/// the run is resumed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_died_before_its_run_started_in_another_process_holds_nothing() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let run = failed_pipeline(&place, &book).await;
        refuse_resumed_starts(&place, true).await;
        let claimer = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "claimer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CAS_REVIEW_CLAIMER", &place.address)
            .env(
                "CAS_REVIEW_KIND",
                if kind == Kind::Sqlite {
                    "sqlite"
                } else {
                    "postgres"
                },
            )
            .env("CAS_REVIEW_RESUME", run.to_string())
            .output()
            .expect("run the claimer");
        let said = String::from_utf8_lossy(&claimer.stdout);
        assert!(
            claimer.status.success() && said.contains("CAS-CLAIMER: journal store failed"),
            "{kind:?}: {said}"
        );
        refuse_resumed_starts(&place, false).await;

        let store = place.open().await;
        let output = resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b", "c"], &book, None, 0),
            run,
            &context(store.journal()),
        )
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: the run cannot be resumed: {error}"));
        assert_eq!(output.result, "x>a>b>c", "{kind:?}");
        assert_eq!(store.runs(10).await.len(), 2, "{kind:?}");
    }
}

/// While a resume whose start was not stored yet is still going — its
/// process alive — a second resume is refused: only a claim whose run
/// never started, in a process that is gone, is taken over.
#[tokio::test]
async fn a_claim_of_a_live_resume_is_not_taken_over() {
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let run = failed_pipeline(&place, &book).await;
        // A resumed run whose first step waits: its claim stands while it runs.
        let gate = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(tokio::sync::Notify::new());
        let mut agents = steps(&["a"], &book, None, 0);
        agents.push(Box::new(Gate {
            gate: Arc::clone(&gate),
            started: Arc::clone(&started),
        }));
        agents.extend(steps(&["c"], &book, None, 0));
        let first = place.open().await;
        let first_ctx = context(first.journal());
        let pipeline = SequentialOrchestrator::new();
        let running = resume(&pipeline, agents, run, &first_ctx);
        tokio::pin!(running);
        tokio::select! {
            _ = &mut running => panic!("{kind:?}: the gate holds it"),
            () = started.notified() => {}
        }
        let second = place.open().await;
        let refused = resume(
            &SequentialOrchestrator::new(),
            steps(&["a", "b", "c"], &book, None, 0),
            run,
            &context(second.journal()),
        )
        .await
        .expect_err("a live resume holds the run");
        assert!(
            refused.to_string().contains("resumed already"),
            "{kind:?}: {refused}"
        );
        gate.notify_one();
        let output = running.await.expect("the first resume finishes");
        assert_eq!(output.result, "x>a>gated>c", "{kind:?}");
    }
}

/// Stands in for `b`: waits for its gate.
struct Gate {
    gate: Arc<tokio::sync::Notify>,
    started: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Agent for Gate {
    fn name(&self) -> &str {
        "b"
    }
    fn description(&self) -> &str {
        "waits for its gate"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.started.notify_one();
        self.gate.notified().await;
        Ok(AgentOutput::new(format!("{}>gated", input.content)))
    }
}

/// Outputs of megabytes — with quotes, backslashes, newlines and non-ASCII
/// text — are stored whole and reused whole by a resume, on both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_of_megabytes_round_trip_through_a_resume() {
    const SIZE: usize = 6 * 1024 * 1024;
    for kind in KINDS {
        let place = Place::new(kind).await;
        let book = Arc::new(Book::default());
        let broken = Arc::new(AtomicBool::new(true));
        let names = ["w1", "w2", "w3", "w4"];
        let store = place.open().await;
        let ctx = context(store.journal());
        let failed = ParallelOrchestrator::new()
            .orchestrate_with_context(
                steps(&names, &book, Some(("w4", &broken)), SIZE),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await;
        assert!(failed.is_err(), "{kind:?}: w4 is broken");
        let run = last_run(&ctx);
        drop((ctx, store));

        let store = place.open().await;
        let ctx = context(store.journal());
        let output = resume(
            &ParallelOrchestrator::new(),
            steps(&names, &book, None, SIZE),
            run,
            &ctx,
        )
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: {error}"));
        assert_eq!(output.agent_outputs.len(), names.len(), "{kind:?}");
        for (name, got) in names.iter().zip(&output.agent_outputs) {
            let expected = format!("x>{name}{}", padding(name, SIZE));
            let got = &got.content;
            assert!(
                *got == expected,
                "{kind:?}: {name}'s output came back changed ({} bytes, not {})",
                got.len(),
                expected.len()
            );
        }
        assert_eq!(names.map(|name| book.count(name)), [1, 1, 1, 2], "{kind:?}");
    }
}

/// The writer processes of `several_processes_write_one_sqlite_file_at_once`:
/// `CAS_REVIEW_RUNS` fan-outs on the file `CAS_REVIEW_CHILD` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_child() {
    let (Ok(path), Ok(runs)) = (
        std::env::var("CAS_REVIEW_CHILD"),
        std::env::var("CAS_REVIEW_RUNS"),
    ) else {
        return;
    };
    let runs: usize = runs.parse().expect("a count");
    let journal = Arc::new(
        claude_agent_sdk::orchestration::store::SqliteJournal::open(&path)
            .await
            .unwrap_or_else(|error| panic!("open: {error}")),
    );
    let ctx = context(journal);
    let book = Arc::new(Book::default());
    for _ in 0..runs {
        ParallelOrchestrator::new()
            .orchestrate_with_context(
                steps(&FAN, &book, None, 2048),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await
            .unwrap_or_else(|error| panic!("a run failed: {error}"));
    }
}

const FAN: [&str; 5] = ["p1", "p2", "p3", "p4", "p5"];

/// Three processes run fan-outs on one SQLite file at once while this one
/// lists the runs and reads them: every run succeeds with all its events,
/// the listings never fail, and the file is sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_write_one_sqlite_file_at_once() {
    const WRITERS: usize = 3;
    const RUNS: usize = 25;
    let place = Place::new(Kind::Sqlite).await;
    let path = std::path::PathBuf::from(&place.address);
    let mut children: Vec<_> = (0..WRITERS)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this test binary"))
                .args(["writer_child", "--exact", "--nocapture", "--test-threads=1"])
                .env("CAS_REVIEW_CHILD", &path)
                .env("CAS_REVIEW_RUNS", RUNS.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a writer")
        })
        .collect();
    let mut listings = 0;
    while children
        .iter_mut()
        .any(|child| child.try_wait().expect("wait").is_none())
    {
        if path.exists() {
            let store = place.try_open(Default::default()).await;
            let store = store.unwrap_or_else(|error| panic!("open while others write: {error}"));
            let runs = store.runs(1000).await;
            if let Some(run) = runs.first() {
                let events = store.journal().read_checked(&[run.id]).await;
                assert!(events.is_ok(), "read while others write: {events:?}");
            }
            listings += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for child in children {
        let output = child.wait_with_output().expect("a writer");
        assert!(
            output.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(listings > 0, "the listings ran while the writers did");
    let store = place.open().await;
    let runs = store.runs(1000).await;
    assert_eq!(runs.len(), WRITERS * RUNS);
    for run in &runs {
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        let events = store.journal().read_checked(&[run.id]).await.expect("read");
        // Started, finished, and an attempt's start and end per agent.
        assert_eq!(events.len(), 2 + 2 * FAN.len(), "{run:?}");
        assert_eq!(run.events, events.len() as u64, "{run:?}");
        assert!(matches!(
            events.last().map(|event| &event.kind),
            Some(EventKind::RunFinished { .. })
        ));
    }
    let mut check = Vec::new();
    {
        use sqlx::Connection as _;
        let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect("open the file");
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut connection)
            .await
            .expect("check");
        check.extend(rows);
    }
    assert_eq!(check, ["ok"]);
}

/// A TCP proxy to the PostgreSQL server that can be cut as a network
/// partition cuts a connection: the sockets stay open, and nothing passes
/// either way. It cuts itself right after passing on the first message
/// holding its `trigger` once armed: `BEGIN` (in the middle of a write)
/// unless the test sets another. It can also be slow: each answer of the
/// server is held back for `delay_ms` before it is passed on.
struct Partition {
    /// The store's URL through the proxy.
    url: String,
    armed: Arc<AtomicBool>,
    /// What the message that cuts it holds.
    trigger: Trigger,
    /// How long each answer of the server is held back, in milliseconds.
    delay_ms: Arc<AtomicU64>,
}

/// The bytes a message must hold to cut a [`Partition`].
type Trigger = Arc<Mutex<Vec<u8>>>;

impl Partition {
    /// A journal on the store through the proxy.
    async fn journal(&self) -> PostgresJournal {
        PostgresJournal::connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("connect through the proxy: {error}"))
    }

    async fn to(url: &str) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (before, after) = url.split_once('@').expect("a URL with a user");
        let (server, database) = after.split_once('/').expect("a URL with a database");
        let server = server.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("an address").port();
        let armed = Arc::new(AtomicBool::new(false));
        let trigger = Arc::new(Mutex::new(b"BEGIN".to_vec()));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        async fn pump(
            mut from: tokio::net::tcp::OwnedReadHalf,
            mut to: tokio::net::tcp::OwnedWriteHalf,
            cut: Arc<AtomicBool>,
            armed: Option<(Arc<AtomicBool>, Trigger)>,
            delay_ms: Option<Arc<AtomicU64>>,
        ) {
            let mut buffer = vec![0_u8; 64 * 1024];
            loop {
                let read = match from.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => read,
                };
                if cut.load(Ordering::SeqCst) {
                    // Held open, silent: a partition, not a closed socket.
                    std::future::pending::<()>().await;
                }
                let chunk = &buffer[..read];
                let cutting = armed.as_ref().is_some_and(|(armed, trigger)| {
                    let trigger = trigger.lock().expect("the trigger").clone();
                    armed.load(Ordering::SeqCst)
                        && chunk
                            .windows(trigger.len())
                            .any(|w| w == trigger.as_slice())
                });
                if cutting {
                    cut.store(true, Ordering::SeqCst);
                }
                let delay = delay_ms.as_ref().map_or(0, |ms| ms.load(Ordering::SeqCst));
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                if to.write_all(chunk).await.is_err() {
                    return;
                }
                if cutting {
                    std::future::pending::<()>().await;
                }
            }
        }
        let (arm, cut_all, on) = (Arc::clone(&armed), Arc::clone(&cut), Arc::clone(&trigger));
        let slow = Arc::clone(&delay_ms);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(&server).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = upstream.into_split();
                tokio::spawn(pump(
                    client_read,
                    server_write,
                    Arc::clone(&cut_all),
                    Some((Arc::clone(&arm), Arc::clone(&on))),
                    None,
                ));
                tokio::spawn(pump(
                    server_read,
                    client_write,
                    Arc::clone(&cut_all),
                    None,
                    Some(Arc::clone(&slow)),
                ));
            }
        });
        Self {
            url: format!("{before}@127.0.0.1:{port}/{database}"),
            armed,
            trigger,
            delay_ms,
        }
    }
}

/// Arms the partition, then appends its name: the network fails while the
/// store writes what the run does next.
struct Cutter(Arc<AtomicBool>);

#[async_trait]
impl Agent for Cutter {
    fn name(&self) -> &str {
        "b"
    }
    fn description(&self) -> &str {
        "cuts the network"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.0.store(true, Ordering::SeqCst);
        Ok(AgentOutput::new(format!("{}>b", input.content)))
    }
}

/// A PostgreSQL server that stops answering in the middle of a write (a
/// network partition, a frozen machine: no error ever comes back) fails the
/// run with a retryable store error — it does not hang it for good — and
/// the run resumes once the server is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_server_that_stops_answering_mid_write_fails_the_run_instead_of_hanging() {
    let place = Place::new(Kind::Postgres).await;
    let partition = Partition::to(&place.address).await;
    let journal = partition.journal().await;
    let ctx = context(Arc::new(journal));
    let book = Arc::new(Book::default());
    let reconnected = Arc::new(AtomicBool::new(false));
    let agents = |book: &Arc<Book>, cut: &Arc<AtomicBool>| -> Vec<Box<dyn Agent>> {
        let mut agents = steps(&["a"], book, None, 0);
        agents.push(Box::new(Cutter(Arc::clone(cut))));
        agents.extend(steps(&["c"], book, None, 0));
        agents
    };
    let pipeline = SequentialOrchestrator::new();
    let run = pipeline.orchestrate_with_context(
        agents(&book, &partition.armed),
        OrchestratorInput::new("x"),
        &ctx,
    );
    let ended = tokio::time::timeout(Duration::from_secs(300), run).await;
    let Ok(result) = ended else {
        panic!("the run still waits for a server that stopped answering five minutes ago");
    };
    let error = result.expect_err("its end was never stored");
    assert!(
        matches!(error, OrchestrationError::Store { .. }) && error.is_retryable(),
        "{error}"
    );
    assert_eq!(book.count("c"), 0, "nothing starts once the store failed");
    let run = last_run(&ctx);

    // Straight to the server, as once the network is back.
    let store = place.open().await;
    let output = resume(
        &SequentialOrchestrator::new(),
        agents(&book, &reconnected),
        run,
        &context(store.journal()),
    )
    .await
    .unwrap_or_else(|error| panic!("resume once the server answers: {error}"));
    assert_eq!(output.result, "x>a>b>c");
    assert_eq!(book.count("a"), 1, "a's end was stored before the cut");
}

/// A PostgreSQL server that stops answering in the middle of a read — a
/// listing of runs, a run's history — fails it with a retryable store error
/// once the store has been silent for the bound (30 s): neither waits for
/// good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_a_postgresql_server_that_stops_answering_fail_instead_of_hanging() {
    let place = Place::new(Kind::Postgres).await;
    // The two reads wait out the bound side by side.
    tokio::join!(
        silent_read(&place, "listing"),
        silent_read(&place, "reading")
    );
}

/// A read (`listing` the runs or `reading` a run's history) whose server goes
/// silent as it is sent.
async fn silent_read(place: &Place, what: &str) {
    let book = Arc::new(Book::default());
    let bound = Duration::from_secs(300);
    let partition = Partition::to(&place.address).await;
    let journal = Arc::new(partition.journal().await);
    let ctx = context(Arc::clone(&journal) as Arc<dyn Journal>);
    SequentialOrchestrator::new()
        .orchestrate_with_context(
            steps(&["a"], &book, None, 0),
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .expect("a run to read");
    let run = last_run(&ctx);
    // A statement's text goes to the server once per connection (then
    // only its parameters): a listing's text, never sent before, and
    // the run's id, a parameter of every read of its history.
    *partition.trigger.lock().unwrap() = match what {
        "listing" => b"FROM runs".to_vec(),
        _ => run.to_string().into_bytes(),
    };
    partition.armed.store(true, Ordering::SeqCst);
    let error = if what == "listing" {
        tokio::time::timeout(bound, journal.runs(10))
            .await
            .unwrap_or_else(|_| panic!("{what} waits for a silent store for good"))
            .map(|_| ())
    } else {
        tokio::time::timeout(bound, journal.read_checked(&[run]))
            .await
            .unwrap_or_else(|_| panic!("{what} waits for a silent store for good"))
            .map(|_| ())
    }
    .expect_err("a silent store answers nothing");
    assert_silence_error(what, &error);
}

/// `error` is what `what` fails with once the store has been silent for the
/// bound: a retryable store error that says the server did not answer.
fn assert_silence_error(what: &str, error: &OrchestrationError) {
    assert!(
        matches!(error, OrchestrationError::Store { .. }) && error.is_retryable(),
        "{what}: {error}"
    );
    assert!(
        error.to_string().contains("did not answer"),
        "{what}: {error}"
    );
}

/// A PostgreSQL server that stops answering in the middle of a prune —
/// while it chooses the runs to delete, or while it deletes them — fails
/// the prune with a retryable store error once the store has been silent
/// for the bound (30 s), and deletes nothing (its transaction never
/// commits): the prune does not wait for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_on_a_postgresql_server_that_stops_answering_fails_instead_of_hanging() {
    // The two cases wait out the bound side by side.
    tokio::join!(
        silent_prune("choosing", "WHERE parent IS NULL ORDER BY"),
        silent_prune("deleting", "DELETE FROM events"),
    );
}

/// A prune whose server goes silent when it sends `trigger`.
async fn silent_prune(what: &str, trigger: &str) {
    let bound = Duration::from_secs(300);
    // A database of its own: the silent prune's transaction keeps its lock
    // on the server's side.
    let place = Place::new(Kind::Postgres).await;
    let partition = Partition::to(&place.address).await;
    let journal = Arc::new(partition.journal().await);
    let book = Arc::new(Book::default());
    SequentialOrchestrator::new()
        .orchestrate_with_context(
            steps(&["a"], &book, None, 0),
            OrchestratorInput::new("x"),
            &context(Arc::clone(&journal) as Arc<dyn Journal>),
        )
        .await
        .expect("a run to prune");
    *partition.trigger.lock().unwrap() = trigger.as_bytes().to_vec();
    partition.armed.store(true, Ordering::SeqCst);
    let error = tokio::time::timeout(bound, journal.prune(Prune::KeepNewest(0)))
        .await
        .unwrap_or_else(|_| panic!("{what}: a prune waits for a silent store for good"))
        .expect_err("a silent store answers nothing");
    assert_silence_error(what, &error);
    let store = place.open().await;
    assert_eq!(store.runs(10).await.len(), 1, "{what}: nothing was deleted");
}

/// A prune of many runs over a slow link takes longer than the bound on
/// silence (30 s) and is not cut: the bound is on each answer of the
/// server, not on the whole prune.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_prune_over_a_slow_link_is_not_cut_while_the_server_answers() {
    const RUNS: usize = 12;
    let place = Place::new(Kind::Postgres).await;
    let partition = Partition::to(&place.address).await;
    let journal = Arc::new(partition.journal().await);
    let book = Arc::new(Book::default());
    let ctx = context(Arc::clone(&journal) as Arc<dyn Journal>);
    for _ in 0..RUNS {
        SequentialOrchestrator::new()
            .orchestrate_with_context(
                steps(&["a", "b"], &book, None, 0),
                OrchestratorInput::new("x"),
                &ctx,
            )
            .await
            .expect("a run to prune");
    }
    // Every answer of the server a second late.
    partition.delay_ms.store(1_000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let pruned = tokio::time::timeout(
        Duration::from_secs(600),
        journal.prune(Prune::KeepNewest(0)),
    )
    .await
    .expect("the prune ends")
    .unwrap_or_else(|error| panic!("a prune whose server answers was cut: {error}"));
    let took = started.elapsed();
    assert_eq!(pruned, RUNS as u64);
    assert!(
        took > Duration::from_secs(30),
        "the prune took {took:?}, less than the bound: this test shows nothing"
    );
    partition.delay_ms.store(0, Ordering::SeqCst);
    assert!(journal.runs(10).await.expect("list").is_empty());
}

/// A run that must stop — its timeout, a cancel — while its PostgreSQL
/// server has stopped answering returns when it stops (give or take the
/// grace it gives the store to take its end), not when the store's own
/// silence bound (30 s) gives up on the server: stopped while its start is
/// being stored, before any agent ran, and in the middle, while a step's
/// end is being stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_while_its_store_is_silent_returns_at_its_stop() {
    let place = Place::new(Kind::Postgres).await;
    let book = Arc::new(Book::default());
    for (when, how) in [
        ("start", "timeout"),
        ("middle", "timeout"),
        ("start", "cancel"),
        ("middle", "cancel"),
    ] {
        let case = format!("{how} at the {when}");
        let partition = Partition::to(&place.address).await;
        let journal = partition.journal().await;
        let ctx = context(Arc::new(journal));
        let mut agents = steps(&["a"], &book, None, 0);
        agents.push(Box::new(Cutter(Arc::clone(&partition.armed))));
        if when == "start" {
            // The run's first write is its start.
            partition.armed.store(true, Ordering::SeqCst);
        }
        let mut config = ExecutionConfig::new().with_max_retries(0);
        if how == "timeout" {
            config = config.with_timeout(Duration::from_secs(2));
        } else {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                ctx.cancel();
            });
        }
        let started = std::time::Instant::now();
        let pipeline = SequentialOrchestrator::new().with_config(config);
        let run = pipeline.orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx);
        let error = tokio::time::timeout(Duration::from_secs(300), run)
            .await
            .unwrap_or_else(|_| panic!("{case}: the run waits for a silent store for good"))
            .expect_err("the run was stopped");
        let took = started.elapsed();
        match how {
            "timeout" => assert!(
                matches!(error, OrchestrationError::Timeout(_)),
                "{case}: {error}"
            ),
            _ => assert!(
                matches!(error, OrchestrationError::Cancelled),
                "{case}: {error}"
            ),
        }
        // Stopped at 2 s, the store given 2 s more: well before the 30 s
        // after which the store itself gives up.
        assert!(
            took < Duration::from_secs(20),
            "{case}: the run returned {took:?} after it started"
        );
    }
}

/// A resume whose claim of the run it continues meets a silent PostgreSQL
/// server returns at the resumed run's stop too, not after the store's 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_stopped_while_its_claim_waits_for_a_silent_store_returns_at_its_stop() {
    let place = Place::new(Kind::Postgres).await;
    let book = Arc::new(Book::default());
    let run = failed_pipeline(&place, &book).await;
    let partition = Partition::to(&place.address).await;
    let journal = partition.journal().await;
    let ctx = context(Arc::new(journal));
    // The claim's statement (the history's reads, before it, pass).
    *partition.trigger.lock().unwrap() = b"resumed_by".to_vec();
    partition.armed.store(true, Ordering::SeqCst);
    let pipeline = SequentialOrchestrator::new().with_config(
        ExecutionConfig::new()
            .with_max_retries(0)
            .with_timeout(Duration::from_secs(2)),
    );
    let started = std::time::Instant::now();
    let resumed = resume(
        &pipeline,
        steps(&["a", "b", "c"], &book, None, 0),
        run,
        &ctx,
    );
    let error = tokio::time::timeout(Duration::from_secs(300), resumed)
        .await
        .expect("the resume waits for a silent store for good")
        .expect_err("the resume was stopped");
    let took = started.elapsed();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error}");
    assert!(took < Duration::from_secs(20), "it returned after {took:?}");
    assert_eq!(book.count("c"), 0, "nothing ran");
}
