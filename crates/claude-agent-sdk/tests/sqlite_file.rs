//! A SQLite store's file as users handle it: closed, it holds every run
//! alone; `SqliteJournal::open_read_only` reads a store this process may
//! not write, without creating or changing anything. (Reading as a user
//! who cannot write the store is tried with `orchestra runs` as that user,
//! in the orchestra crate's `store_files` tests.)

mod store_support;

use std::path::Path;
use std::sync::Arc;

use claude_agent_sdk::orchestration::store::{RunStatus, SqliteJournal};
use claude_agent_sdk::orchestration::{
    Agent, AgentOutput, ExecutionConfig, ExecutionContext, OrchestrationError, Orchestrator,
    OrchestratorInput, SequentialOrchestrator, SimpleAgent,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;
use store_support::TempDir;

fn steps() -> Vec<Box<dyn Agent>> {
    ["first", "second"]
        .into_iter()
        .map(|name| {
            Box::new(SimpleAgent::new(name, "", move |input| {
                Ok(AgentOutput::new(format!("{name}({})", input.content)))
            })) as Box<dyn Agent>
        })
        .collect()
}

/// A store at `path` holding one finished two-step run.
async fn store_with_a_run(path: &Path) -> Arc<SqliteJournal> {
    let journal = Arc::new(SqliteJournal::open(path).await.unwrap());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let output = SequentialOrchestrator::new()
        .orchestrate_with_context(steps(), OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "second(first(x))");
    journal
}

/// Runs `sql` on the file at `path`, as another program would.
async fn execute(path: &Path, sql: &'static str) {
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
}

fn store_message(error: &OrchestrationError) -> String {
    match error {
        OrchestrationError::Store { message, .. } => message.clone(),
        other => panic!("expected a Store error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_read_only_store_lists_the_runs_and_their_traces_while_the_writer_has_it_open_and_after()
{
    let folder = TempDir::new("read-only");
    let path = folder.path().join("runs.db");
    let mut writer = Some(store_with_a_run(&path).await);

    for when in ["the writer has it open", "the writer let it go"] {
        let reader = Arc::new(SqliteJournal::open_read_only(&path).await.unwrap());
        let runs = reader.runs(10).await.unwrap();
        assert_eq!(runs.len(), 1, "{when}");
        assert_eq!(runs[0].status, RunStatus::Succeeded, "{when}");
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(reader.clone());
        let trace = ctx.run_trace(runs[0].id).await.expect(when);
        let names: Vec<&str> = trace
            .agent_executions
            .iter()
            .map(|record| record.agent_name.as_str())
            .collect();
        assert_eq!(names, ["first", "second"], "{when}");
        drop((ctx, reader));
        writer = None;
    }
    assert!(writer.is_none());
}

#[tokio::test]
async fn a_closed_store_is_its_file_alone_and_refuses_more_work() {
    let folder = TempDir::new("closed");
    let path = folder.path().join("runs.db");
    let journal = store_with_a_run(&path).await;
    journal.close().await.unwrap();
    let mut names: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["runs.db", "runs.db.lock"]);
    assert!(matches!(
        journal.runs(10).await,
        Err(OrchestrationError::Store { .. })
    ));

    let copy = folder.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let copied = SqliteJournal::open_read_only(&copy).await.unwrap();
    assert_eq!(copied.runs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_run_on_a_read_only_store_fails_with_a_store_error_and_writes_nothing() {
    let folder = TempDir::new("read-only");
    let path = folder.path().join("runs.db");
    drop(store_with_a_run(&path).await);

    let reader = Arc::new(SqliteJournal::open_read_only(&path).await.unwrap());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(reader.clone());
    let error = SequentialOrchestrator::new()
        .orchestrate_with_context(steps(), OrchestratorInput::new("y"), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(error.root_cause(), OrchestrationError::Store { .. }),
        "{error:?}"
    );
    drop((ctx, reader));
    let writer = SqliteJournal::open(&path).await.unwrap();
    assert_eq!(writer.runs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_file_is_an_error_and_is_not_created() {
    let folder = TempDir::new("read-only");
    let path = folder.path().join("nothing-here.db");
    let error = SqliteJournal::open_read_only(&path).await.unwrap_err();
    assert_eq!(
        store_message(&error),
        format!("there is no store file at {}", path.display())
    );
    assert!(!path.exists());
    let folder_too = folder.path().join("no-folder").join("runs.db");
    assert!(SqliteJournal::open_read_only(&folder_too).await.is_err());
    assert!(!folder.path().join("no-folder").exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_run_store_is_refused_by_name() {
    let folder = TempDir::new("read-only");
    let other = folder.path().join("other.db");
    execute(
        &other,
        "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi')",
    )
    .await;
    let error = SqliteJournal::open_read_only(&other).await.unwrap_err();
    assert_eq!(
        store_message(&error),
        format!(
            "{} is not a run store (it has no run tables)",
            other.display()
        )
    );

    let text = folder.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, but long enough to have a header",
    )
    .unwrap();
    let error = SqliteJournal::open_read_only(&text).await.unwrap_err();
    assert!(
        store_message(&error).contains(&text.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_of_another_version_is_refused_saying_which_way() {
    let folder = TempDir::new("read-only");
    let newer = folder.path().join("newer.db");
    drop(store_with_a_run(&newer).await);
    execute(
        &newer,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', 1, x'00', 0)",
    )
    .await;
    let error = SqliteJournal::open_read_only(&newer).await.unwrap_err();
    let message = store_message(&error);
    assert!(
        message.contains("written by a newer version") && message.contains("99990101000000"),
        "{message}"
    );

    let older = folder.path().join("older.db");
    drop(store_with_a_run(&older).await);
    execute(
        &older,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .await;
    let error = SqliteJournal::open_read_only(&older).await.unwrap_err();
    let message = store_message(&error);
    assert!(
        message.contains("written by an older version") && message.contains("bring it up to date"),
        "{message}"
    );
}
