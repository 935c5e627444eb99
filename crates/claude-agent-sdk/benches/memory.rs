//! Peak memory of one parallel orchestration of 100,000 agents (limit 1,000,
//! defaults: trace records on), against raw tokio doing the same work.
//!
//! Each side runs in a fresh process so the peaks (VmHWM from
//! `/proc/self/status`) do not mix: without an argument (as under `cargo bench`)
//! the binary re-executes itself once with `ours` and once with `baseline`, then
//! prints a table.
//!
//! ```text
//! cargo bench -p claude-agent-sdk --bench memory
//! target/release/deps/memory-<hash> ours   # one side only
//! ```

mod common;

use std::process::Command;

use common::{
    baseline_parallel, input_content, make_agents, ours_parallel, runtime, Orchestrators,
};

const AGENTS: usize = 100_000;
const LIMIT: usize = 1_000;
const TARGET_MIB: f64 = 200.0;

/// A field of `/proc/self/status` in KiB (e.g. `VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs one side in this process and prints `side peak_kib before_kib records`.
fn run_side(side: &str) {
    let rt = runtime();
    let content = input_content();
    let orchestrators = Orchestrators::new(LIMIT);
    let agents = make_agents(AGENTS);
    let before = status_kib("VmHWM");
    let records = rt.block_on(async {
        match side {
            "ours" => {
                let output = ours_parallel(&orchestrators.parallel_records, agents, &content).await;
                assert_eq!(output.agent_outputs.len(), AGENTS);
                output.execution_trace.agent_executions.len()
            }
            "baseline" => {
                let outputs = baseline_parallel(agents, &content, LIMIT).await;
                assert_eq!(outputs.len(), AGENTS);
                0
            }
            other => panic!("unknown side {other:?}: expected `ours` or `baseline`"),
        }
    });
    let peak = status_kib("VmHWM");
    println!("{side} {peak} {before} {records}");
}

fn main() {
    let side = std::env::args()
        .skip(1)
        .find(|arg| arg == "ours" || arg == "baseline");
    if let Some(side) = side {
        run_side(&side);
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "# Peak RSS of one parallel run: {AGENTS} agents, limit {LIMIT}, fresh process each\n"
    );
    println!("| side | peak RSS (VmHWM) | RSS before the run (agents built) | trace records | target | result |");
    println!("|---|---:|---:|---:|---:|---|");
    for side in ["ours", "baseline"] {
        let out = Command::new(&exe).arg(side).output().expect("re-exec");
        assert!(
            out.status.success(),
            "{side} run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<u64> = stdout
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().expect("number"))
            .collect();
        let (peak, before, records) = (fields[0], fields[1], fields[2]);
        let (target, result) = if side == "ours" {
            let pass = mib(peak) <= TARGET_MIB;
            (
                format!("≤ {TARGET_MIB:.0} MiB"),
                if pass { "pass" } else { "FAIL" },
            )
        } else {
            ("—".to_owned(), "—")
        };
        println!(
            "| {side} | {:.1} MiB | {:.1} MiB | {records} | {target} | {result} |",
            mib(peak),
            mib(before),
        );
    }
}
