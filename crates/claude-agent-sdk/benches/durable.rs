//! Durable journals against the in-memory journal, in the same run: a chain
//! whose every step is committed before the next starts, a fan-out stored
//! with group commit, the resume of a long run with one step left, and the
//! bytes a step costs in the store.
//!
//! ```text
//! cargo bench -p claude-agent-sdk --features sqlite,postgres --bench durable
//! cargo bench -p claude-agent-sdk --features sqlite,postgres --bench durable -- --rounds 5
//! ```
//!
//! PostgreSQL is a throw-away cluster on loopback, started as the tests start
//! theirs but with the server's default durability settings (`fsync` and
//! synchronous commits on), or the server `DATABASE_URL` names.

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    resume, Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, InMemoryJournal,
    Journal, Orchestrator, OrchestratorInput, ParallelOrchestrator, Result, SequentialOrchestrator,
};
use store_support::{Kind, Place};

/// Answers `output` at once; fails while `broken` is set.
struct Fixed {
    name: String,
    output: Arc<str>,
    broken: Option<Arc<AtomicBool>>,
}

#[async_trait]
impl Agent for Fixed {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "answers a fixed text"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        if self
            .broken
            .as_ref()
            .is_some_and(|b| b.load(Ordering::SeqCst))
        {
            return Err(claude_agent_sdk::orchestration::AgentError::new("broken").into());
        }
        Ok(AgentOutput::new(self.output.to_string()))
    }
}

fn agents(
    count: usize,
    output: &Arc<str>,
    broken_last: Option<&Arc<AtomicBool>>,
) -> Vec<Box<dyn Agent>> {
    (0..count)
        .map(|index| {
            Box::new(Fixed {
                name: format!("step-{index}"),
                output: Arc::clone(output),
                broken: (index + 1 == count).then(|| broken_last.cloned()).flatten(),
            }) as Box<dyn Agent>
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Store {
    Memory,
    Sqlite,
    Postgres,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "in-memory",
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh journal of `store`, and where it lives.
async fn journal(store: Store) -> (Arc<dyn Journal>, Option<Place>) {
    match store {
        Store::Memory => (Arc::new(InMemoryJournal::new()), None),
        Store::Sqlite | Store::Postgres => {
            let kind = if store == Store::Sqlite {
                Kind::Sqlite
            } else {
                Kind::Postgres
            };
            let place = Place::new(kind).await;
            (place.open().await.journal(), Some(place))
        }
    }
}

fn config(limit: usize) -> ExecutionConfig {
    ExecutionConfig::new()
        .with_max_retries(0)
        .with_parallel_limit(limit)
        .with_timeout(Duration::from_secs(3600))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn chain(store: Store, steps: usize) -> Duration {
    let (journal, _place) = journal(store).await;
    let ctx = ExecutionContext::new(config(1)).with_journal(journal);
    let output: Arc<str> = Arc::from("ok");
    let started = Instant::now();
    SequentialOrchestrator::new()
        .with_timeout(Duration::from_secs(3600))
        .orchestrate_with_context(
            agents(steps, &output, None),
            OrchestratorInput::new("go"),
            &ctx,
        )
        .await
        .expect("the chain");
    started.elapsed()
}

async fn fan_out(store: Store, count: usize) -> (Duration, usize) {
    let (journal, _place) = journal(store).await;
    let ctx = ExecutionContext::new(config(64)).with_journal(Arc::clone(&journal));
    let output: Arc<str> = Arc::from("ok");
    let started = Instant::now();
    ParallelOrchestrator::new()
        .with_config(config(64))
        .orchestrate_with_context(
            agents(count, &output, None),
            OrchestratorInput::new("go"),
            &ctx,
        )
        .await
        .expect("the fan-out");
    let elapsed = started.elapsed();
    let run = *ctx.run_ids().last().expect("a run");
    (elapsed, journal.read(&[run]).await.len())
}

/// A `steps`-step chain whose last step failed, resumed: the time to resume.
async fn resume_one_left(store: Store, steps: usize) -> Duration {
    let (journal, _place) = journal(store).await;
    let broken = Arc::new(AtomicBool::new(true));
    let output: Arc<str> = Arc::from("ok");
    let pipeline = SequentialOrchestrator::new().with_config(config(1));
    let ctx = ExecutionContext::new(config(1)).with_journal(Arc::clone(&journal));
    let failed = pipeline
        .orchestrate_with_context(
            agents(steps, &output, Some(&broken)),
            OrchestratorInput::new("go"),
            &ctx,
        )
        .await;
    assert!(failed.is_err());
    let run = *ctx.run_ids().last().expect("a run");
    broken.store(false, Ordering::SeqCst);
    let ctx = ExecutionContext::new(config(1)).with_journal(journal);
    let started = Instant::now();
    resume(&pipeline, agents(steps, &output, Some(&broken)), run, &ctx)
        .await
        .expect("the resume");
    started.elapsed()
}

/// The bytes a store holds after a `steps`-step chain with 1 KB outputs.
async fn size(store: Store, steps: usize) -> u64 {
    let (journal, place) = journal(store).await;
    let place = place.expect("a durable store");
    let ctx = ExecutionContext::new(config(1)).with_journal(journal);
    let output: Arc<str> = Arc::from("x".repeat(1024));
    SequentialOrchestrator::new()
        .with_timeout(Duration::from_secs(3600))
        .orchestrate_with_context(
            agents(steps, &output, None),
            OrchestratorInput::new("go"),
            &ctx,
        )
        .await
        .expect("the chain");
    drop(ctx);
    match store {
        Store::Sqlite => {
            store_support::execute(&place, "PRAGMA wal_checkpoint(TRUNCATE)").await;
            std::fs::metadata(&place.address)
                .map(|m| m.len())
                .unwrap_or(0)
        }
        _ => {
            use sqlx::Connection as _;
            let mut connection = sqlx::PgConnection::connect(&place.address)
                .await
                .expect("connect");
            let bytes: i64 = sqlx::query_scalar(
                "SELECT pg_total_relation_size('events') + pg_total_relation_size('runs')",
            )
            .fetch_one(&mut connection)
            .await
            .expect("size");
            u64::try_from(bytes).unwrap_or(0)
        }
    }
}

fn main() {
    // SAFETY (edition 2021: safe): set before any thread reads the environment.
    std::env::set_var("CAS_PG_DURABLE", "1");
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|arg| arg == "--rounds")
        .and_then(|at| args.get(at + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_usize)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let stores = [Store::Memory, Store::Sqlite, Store::Postgres];
        println!("durable journals, median of {rounds} round(s)\n");

        println!("| 1,000-step chain, each step committed | per step | vs in-memory |");
        println!("|---|---:|---:|");
        let mut base = 0.0;
        for store in stores {
            let times: Vec<f64> = futures_rounds(rounds, || chain(store, 1_000)).await;
            let per_step = median(times) / 1_000.0;
            if store == Store::Memory {
                base = per_step;
            }
            println!(
                "| {} | {:.3} ms | {:.1}× |",
                store.name(),
                per_step * 1e3,
                per_step / base
            );
        }

        println!("\n| 10,000-agent fan-out (64 at once), group commit | events/s | time |");
        println!("|---|---:|---:|");
        for store in stores {
            let mut rates = Vec::new();
            let mut times = Vec::new();
            for _ in 0..rounds {
                let (elapsed, events) = fan_out(store, 10_000).await;
                rates.push(events as f64 / elapsed.as_secs_f64());
                times.push(elapsed.as_secs_f64());
            }
            println!(
                "| {} | {:.0} | {:.2} s |",
                store.name(),
                median(rates),
                median(times)
            );
        }

        println!("\n| resume a run with one step left | 1,000 steps | 10,000 steps |");
        println!("|---|---:|---:|");
        for store in stores {
            let small = median(futures_rounds(rounds, || resume_one_left(store, 1_000)).await);
            let large = median(futures_rounds(rounds, || resume_one_left(store, 10_000)).await);
            println!(
                "| {} | {:.1} ms | {:.1} ms ({:.1}× for 10× the steps) |",
                store.name(),
                small * 1e3,
                large * 1e3,
                large / small
            );
        }

        println!("\n| store size, 1 KB outputs | 1,000 steps | 2,000 steps | bytes per step |");
        println!("|---|---:|---:|---:|");
        for store in [Store::Sqlite, Store::Postgres] {
            let one = size(store, 1_000).await;
            let two = size(store, 2_000).await;
            println!(
                "| {} | {} KB | {} KB | {} |",
                store.name(),
                one / 1024,
                two / 1024,
                (two.saturating_sub(one)) / 1_000
            );
        }
    });
}

/// `rounds` timings of `run`, in seconds.
async fn futures_rounds<F, Fut>(rounds: usize, run: F) -> Vec<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        times.push(run().await.as_secs_f64());
    }
    times
}
