//! Orchestration overhead against raw tokio doing the same work.
//!
//! For each scenario, ours and the baseline run alternately over several rounds
//! after a warm-up, in the same process and runtime; each round gives one ratio
//! ours/baseline and the table reports the median of those paired ratios, which
//! is robust against a noisy machine drifting between rounds.
//!
//! ```text
//! cargo bench -p claude-agent-sdk --bench overhead
//! cargo bench -p claude-agent-sdk --bench overhead -- --rounds 41 --warmup 5 parallel
//! ```
//!
//! Options: `--rounds N` (default 21), `--warmup N` (default 3), `--strict` (exit
//! with status 1 when a target is missed), `--only ours|baseline` (run one side,
//! for profiling; no ratio), and any other word filters scenarios by their label
//! (e.g. `sequential`, `100000`).

mod common;

use common::{
    input_content, make_agents, median, run_once, runtime, Orchestrators, Scenario, Side,
};

const SCENARIOS: [Scenario; 18] = [
    Scenario::Parallel {
        agents: 10_000,
        limit: 64,
        records: true,
    },
    Scenario::Parallel {
        agents: 10_000,
        limit: 64,
        records: false,
    },
    Scenario::Parallel {
        agents: 100_000,
        limit: 1_000,
        records: true,
    },
    Scenario::Parallel {
        agents: 100_000,
        limit: 1_000,
        records: false,
    },
    Scenario::ParallelReference {
        agents: 10_000,
        limit: 64,
    },
    Scenario::ParallelReference {
        agents: 100_000,
        limit: 1_000,
    },
    Scenario::Sequential {
        agents: 10_000,
        records: true,
    },
    Scenario::Sequential {
        agents: 10_000,
        records: false,
    },
    Scenario::SequentialReference { agents: 10_000 },
    Scenario::JournalAppend { events: 20_000 },
    Scenario::Nested { levels: 50 },
    Scenario::Nested { levels: 100 },
    Scenario::Nested { levels: 200 },
    Scenario::Nested { levels: 1_000 },
    Scenario::GraphChain { nodes: 10_000 },
    Scenario::GraphMap {
        items: 10_000,
        limit: 64,
    },
    Scenario::GraphLoop { iterations: 1_000 },
    Scenario::GraphRouter {
        branches: 100,
        runs: 1_000,
    },
];

struct Options {
    rounds: usize,
    warmup: usize,
    strict: bool,
    only: Option<Side>,
    filters: Vec<String>,
}

fn options() -> Options {
    let mut options = Options {
        rounds: 21,
        warmup: 3,
        strict: false,
        only: None,
        filters: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // Passed by `cargo bench`.
            "--bench" => {}
            "--rounds" => options.rounds = number(args.next()).max(1),
            "--warmup" => options.warmup = number(args.next()),
            "--strict" => options.strict = true,
            "--only" => {
                options.only = match args.next().as_deref() {
                    Some("ours") => Some(Side::Ours),
                    Some("baseline") => Some(Side::Baseline),
                    other => panic!("--only takes `ours` or `baseline`, not {other:?}"),
                }
            }
            other if other.starts_with("--") => {}
            other => options.filters.push(other.to_owned()),
        }
    }
    options
}

fn number(arg: Option<String>) -> usize {
    arg.and_then(|a| a.parse().ok())
        .expect("expected a number after --rounds / --warmup")
}

struct Row {
    ours_ns: f64,
    baseline_ns: f64,
    ratio: f64,
    ratio_p25: f64,
    ratio_p75: f64,
}

fn measure(
    rt: &tokio::runtime::Runtime,
    scenario: Scenario,
    options: &Options,
    content: &str,
) -> Row {
    let n = scenario.agents();
    let orchestrators = Orchestrators::for_scenario(scenario, content);
    let run = |side: Side, check: bool| {
        if options.only.is_some_and(|only| only != side) {
            return std::time::Duration::from_nanos(1);
        }
        let agents = make_agents(scenario.fresh_agents(side));
        rt.block_on(run_once(
            scenario,
            side,
            &orchestrators,
            agents,
            content,
            check,
        ))
    };
    for round in 0..options.warmup.max(1) {
        // The first warm-up round also verifies both sides' outputs.
        let check = round == 0;
        run(Side::Ours, check);
        run(Side::Baseline, check);
    }
    let mut ours = Vec::with_capacity(options.rounds);
    let mut baseline = Vec::with_capacity(options.rounds);
    let mut ratios = Vec::with_capacity(options.rounds);
    for round in 0..options.rounds {
        // Alternate which side goes first, so neither always runs on a warmer heap.
        let (o, b) = if round % 2 == 0 {
            let o = run(Side::Ours, false);
            (o, run(Side::Baseline, false))
        } else {
            let b = run(Side::Baseline, false);
            (run(Side::Ours, false), b)
        };
        let (o, b) = (o.as_secs_f64(), b.as_secs_f64());
        ours.push(o);
        baseline.push(b);
        ratios.push(o / b);
    }
    let per_agent = 1e9 / n as f64;
    let ratio = median(&mut ratios);
    let quartile = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    Row {
        ours_ns: median(&mut ours) * per_agent,
        baseline_ns: median(&mut baseline) * per_agent,
        ratio,
        ratio_p25: quartile(1),
        ratio_p75: quartile(3),
    }
}

fn main() {
    let options = options();
    let content = input_content();
    let rt = runtime();
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "# Orchestration overhead ({} rounds after {} warm-up, {} worker threads, {}-byte inputs)\n",
        options.rounds,
        options.warmup,
        workers,
        content.len()
    );
    println!(
        "| scenario | ns/agent ours | ns/agent baseline | median ratio (p25–p75) | target | result |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    let mut all_pass = true;
    for scenario in SCENARIOS {
        let label = scenario.label();
        if !options.filters.is_empty() && !options.filters.iter().any(|f| label.contains(f)) {
            continue;
        }
        let row = measure(&rt, scenario, &options, &content);
        let (target, result) = match scenario.target() {
            Some(target) => {
                let pass = row.ratio <= target;
                all_pass &= pass;
                (format!("≤ {target:.1}"), if pass { "pass" } else { "FAIL" })
            }
            None => ("—".to_owned(), "(info)"),
        };
        println!(
            "| {label} | {:.0} | {:.0} | {:.2} ({:.2}–{:.2}) | {target} | {result} |",
            row.ours_ns, row.baseline_ns, row.ratio, row.ratio_p25, row.ratio_p75,
        );
    }
    if options.strict && !all_pass {
        std::process::exit(1);
    }
}
