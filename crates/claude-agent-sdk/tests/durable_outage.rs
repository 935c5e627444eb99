//! A PostgreSQL server that goes away in the middle of a run: the run fails
//! with a retryable store error, and resumes once the server is back. In a
//! test binary of its own: it stops the server its process started.

mod store_support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, OrchestrationError,
    Orchestrator, OrchestratorInput, Result, SequentialOrchestrator,
};
use store_support::{Kind, Place};

#[derive(Default)]
struct Book {
    runs: Mutex<std::collections::HashMap<String, u32>>,
}

impl Book {
    fn ran(&self, name: &str) -> u32 {
        let mut runs = self.runs.lock().unwrap();
        let count = runs.entry(name.to_owned()).or_default();
        *count += 1;
        *count
    }

    fn count(&self, name: &str) -> u32 {
        self.runs.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// Appends its name; the first run of `outage` stops the server.
struct Step(&'static str, Arc<Book>);

#[async_trait]
impl Agent for Step {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "appends its name"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        if self.1.ran(self.0) == 1 && self.0 == "outage" {
            let cluster = store_support::server().cluster.as_ref().expect("ours");
            assert!(cluster.stop(), "pg_ctl stop");
        }
        Ok(AgentOutput::new(format!("{}>{}", input.content, self.0)))
    }
}

fn context(store: &store_support::Store) -> ExecutionContext {
    ExecutionContext::new(ExecutionConfig::new().with_max_retries(0)).with_journal(store.journal())
}

#[tokio::test]
async fn a_server_that_goes_away_fails_the_run_retryably_and_it_resumes_when_back() {
    let place = Place::new(Kind::Postgres).await;
    let Some(cluster) = store_support::server().cluster.as_ref() else {
        panic!(
            "this test stops and restarts its PostgreSQL server: run it without DATABASE_URL, \
             on a cluster it starts itself"
        );
    };
    let store = place.open().await;
    let book = Arc::new(Book::default());
    let agents = |book: &Arc<Book>| -> Vec<Box<dyn Agent>> {
        ["first", "outage", "last"]
            .into_iter()
            .map(|name| Box::new(Step(name, Arc::clone(book))) as Box<dyn Agent>)
            .collect()
    };
    let ctx = context(&store);
    let error = SequentialOrchestrator::new()
        .orchestrate_with_context(agents(&book), OrchestratorInput::new("x"), &ctx)
        .await
        .expect_err("the store went away");
    assert!(matches!(error, OrchestrationError::Store { .. }), "{error}");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(
        book.count("last"),
        0,
        "nothing starts once the store failed"
    );
    let run = *ctx.run_ids().last().expect("a run");
    assert!(cluster.start(), "pg_ctl start");
    let store = place.open().await;
    let ctx = context(&store);
    let output = resume(&SequentialOrchestrator::new(), agents(&book), run, &ctx)
        .await
        .expect("resumes once the server is back");
    assert_eq!(output.result, "x>first>outage>last");
    assert_eq!(book.count("first"), 1);
}
