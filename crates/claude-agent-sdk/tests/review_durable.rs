//! Faults an adversarial review of resuming and stores found (session 19),
//! one regression test each.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    fork, resume, Agent, AgentError, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext,
    InMemoryJournal, OrchestrationError, Orchestrator, OrchestratorInput, Result, RunId,
    SequentialOrchestrator,
};

/// Appends its name to its input and to the state's `log`; fails for good
/// while `broken` is set.
struct Step {
    name: &'static str,
    broken: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Step {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "appends its name"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(ctx) = ExecutionContext::current() {
            ctx.append_state("log", serde_json::json!(self.name)).await;
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(OrchestrationError::AgentError(AgentError::new("broken")));
        }
        Ok(AgentOutput::new(format!("{}>{}", input.content, self.name)))
    }
}

/// A pipeline `a → b → …` of [`Step`]s sharing `broken` flags by name.
struct Pipeline {
    steps: Vec<(&'static str, Arc<AtomicBool>, Arc<AtomicUsize>)>,
}

impl Pipeline {
    fn new(names: &[&'static str]) -> Self {
        Self {
            steps: names
                .iter()
                .map(|name| (*name, Arc::new(AtomicBool::new(false)), Arc::default()))
                .collect(),
        }
    }

    fn broken(&self, name: &str, broken: bool) {
        if let Some((_, flag, _)) = self.steps.iter().find(|(n, _, _)| *n == name) {
            flag.store(broken, Ordering::SeqCst);
        }
    }

    fn calls(&self, name: &str) -> usize {
        self.steps
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0, |(_, _, calls)| calls.load(Ordering::SeqCst))
    }

    fn agents(&self) -> Vec<Box<dyn Agent>> {
        self.steps
            .iter()
            .map(|(name, broken, calls)| {
                Box::new(Step {
                    name,
                    broken: Arc::clone(broken),
                    calls: Arc::clone(calls),
                }) as Box<dyn Agent>
            })
            .collect()
    }
}

/// The id of the last top-level run `journal` holds.
fn last_run(journal: &InMemoryJournal) -> RunId {
    journal
        .events()
        .iter()
        .rev()
        .find_map(|event| match &event.kind {
            claude_agent_sdk::orchestration::EventKind::RunStarted { parent: None, .. } => {
                Some(event.run)
            }
            _ => None,
        })
        .expect("a run in the journal")
}

/// `pipeline` run on "x" under a context of its own over an in-memory
/// journal, failing at its broken step: the journal, the context and the
/// stopped run.
async fn stopped_run(pipeline: &Pipeline) -> (Arc<InMemoryJournal>, ExecutionContext, RunId) {
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(pipeline.agents(), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("a step is broken");
    let run = last_run(&journal);
    (journal, ctx, run)
}

#[tokio::test]
async fn resuming_under_the_context_the_run_ran_under_replays_no_state_twice() {
    let pipeline = Pipeline::new(&["a", "b"]);
    pipeline.broken("b", true);
    let (_, ctx, run) = stopped_run(&pipeline).await;
    let orchestrator = SequentialOrchestrator::new();
    pipeline.broken("b", false);
    resume(&orchestrator, pipeline.agents(), run, &ctx)
        .await
        .expect("the resumed run ends");
    let log = ctx.get_state("log").await.unwrap_or_default();
    // `a` ran once (not again on resume), `b` twice (failed, then ran again).
    assert_eq!(log, serde_json::json!(["a", "b", "b"]));
    assert_eq!((pipeline.calls("a"), pipeline.calls("b")), (1, 2));
}

#[tokio::test]
async fn a_resumed_runs_trace_shows_the_input_its_first_step_was_given() {
    let pipeline = Pipeline::new(&["a", "b"]);
    pipeline.broken("b", true);
    let (journal, _, run) = stopped_run(&pipeline).await;
    let orchestrator = SequentialOrchestrator::new();
    pipeline.broken("b", false);
    let fresh = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let output = resume(&orchestrator, pipeline.agents(), run, &fresh)
        .await
        .expect("the resumed run ends");
    assert_eq!(output.result, "x>a>b");
    let b = output
        .execution_trace
        .agent_executions
        .iter()
        .find(|record| record.agent_name == "b")
        .expect("b's record");
    assert_eq!(b.input.content, "x>a", "the input b was given");
}

#[tokio::test]
async fn forking_after_a_step_the_run_did_not_finish_names_those_it_did() {
    let pipeline = Pipeline::new(&["a", "b", "c"]);
    pipeline.broken("c", true);
    let (_, ctx, run) = stopped_run(&pipeline).await;
    let orchestrator = SequentialOrchestrator::new();
    let forked = fork(&orchestrator, pipeline.agents(), run, "zz", None, &ctx).await;
    match forked {
        Err(OrchestrationError::InvalidConfig(message)) => {
            assert!(message.contains("it finished `a`, `b`"), "{message}");
        }
        other => panic!("an unknown step is refused: {other:?}"),
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use claude_agent_sdk::orchestration::store::{Prune, SqliteJournal};

    /// A folder of its own under the system's temporary folder, removed
    /// when dropped.
    struct Folder(std::path::PathBuf);

    impl Folder {
        fn new(tag: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            let path = std::env::temp_dir().join(format!(
                "review-durable-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&path).expect("a temporary folder");
            Self(path)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_keeps_the_runs_a_kept_run_resumes() {
        let folder = Folder::new("prune");
        let journal = Arc::new(
            SqliteJournal::open(folder.0.join("runs.db"))
                .await
                .expect("a store"),
        );
        let context =
            || ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
        let pipeline = Pipeline::new(&["a", "b", "c"]);
        let orchestrator = SequentialOrchestrator::new();
        pipeline.broken("b", true);
        pipeline.broken("c", true);
        let ctx = context();
        orchestrator
            .orchestrate_with_context(pipeline.agents(), OrchestratorInput::new("x"), &ctx)
            .await
            .expect_err("b is broken");
        let first = journal.runs(1).await.expect("the runs")[0].id;
        pipeline.broken("b", false);
        resume(&orchestrator, pipeline.agents(), first, &context())
            .await
            .expect_err("c is broken");
        let second = journal.runs(10).await.expect("the runs")[0].id;
        assert_ne!(second, first);
        let pruned = journal.prune(Prune::KeepNewest(1)).await.expect("a prune");
        assert_eq!(pruned, 0, "the older run is part of the kept run's chain");
        pipeline.broken("c", false);
        let output = resume(&orchestrator, pipeline.agents(), second, &context())
            .await
            .expect("the kept run resumes");
        assert_eq!(output.result, "x>a>b>c");
        assert_eq!(
            (
                pipeline.calls("a"),
                pipeline.calls("b"),
                pipeline.calls("c")
            ),
            (1, 2, 2)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_applications_sqlite_file_is_refused_at_once() {
        let folder = Folder::new("foreign");
        let path = folder.0.join("other.db");
        {
            let journal = SqliteJournal::open(&path).await.expect("a store");
            drop(journal);
        }
        // Another application's file: a table of ours, made differently.
        let foreign = folder.0.join("foreign.db");
        let status = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE runs (x INTEGER)'); c.commit()",
            ])
            .arg(&foreign)
            .status();
        if !status.is_ok_and(|status| status.success()) {
            panic!("python3 makes the foreign file (it is on every CI machine)");
        }
        let started = std::time::Instant::now();
        let error = SqliteJournal::open(&foreign)
            .await
            .expect_err("not a journal of ours");
        assert!(!error.is_retryable(), "{error}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "refused after {:?}",
            started.elapsed()
        );
    }
}
