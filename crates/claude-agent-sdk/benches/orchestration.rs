//! Criterion statistics for the overhead scenarios: ours and the raw-tokio
//! baseline side by side in one group per scenario. Agents are built outside the
//! timing; each iteration is one whole run, output dropped inside the timing.
//!
//! ```text
//! cargo bench -p claude-agent-sdk --bench orchestration
//! ```
//!
//! The paired-ratio table with the targets is `benches/overhead.rs`.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

use common::{input_content, make_agents, run_once, runtime, Orchestrators, Scenario, Side};

fn group(c: &mut Criterion, name: &str, agents: usize, limit: usize, sequential: bool) {
    let rt = runtime();
    let content = input_content();
    let orchestrators = Orchestrators::new(limit);
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(agents as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(if agents > 10_000 { 8 } else { 3 }));
    let variants: Vec<(&str, Scenario, Side)> = if sequential {
        let with = |records| Scenario::Sequential { agents, records };
        vec![
            ("ours_records", with(true), Side::Ours),
            ("ours_no_records", with(false), Side::Ours),
            ("baseline", with(true), Side::Baseline),
        ]
    } else {
        let with = |records| Scenario::Parallel {
            agents,
            limit,
            records,
        };
        vec![
            ("ours_records", with(true), Side::Ours),
            ("ours_no_records", with(false), Side::Ours),
            ("baseline", with(true), Side::Baseline),
        ]
    };
    for (label, scenario, side) in variants {
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_batched(
                || make_agents(agents),
                |agents| {
                    rt.block_on(run_once(
                        scenario,
                        side,
                        &orchestrators,
                        agents,
                        &content,
                        false,
                    ))
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn parallel_10k(c: &mut Criterion) {
    group(c, "parallel_10k_limit_64", 10_000, 64, false);
}

fn parallel_100k(c: &mut Criterion) {
    group(c, "parallel_100k_limit_1000", 100_000, 1_000, false);
}

fn sequential_10k(c: &mut Criterion) {
    group(c, "sequential_10k", 10_000, 1, true);
}

criterion_group!(benches, parallel_10k, parallel_100k, sequential_10k);
criterion_main!(benches);
