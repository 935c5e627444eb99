//! The runs a resume continues: a resumed run reuses what the runs before
//! it finished, so its summary — and what `resume` says of a run it has
//! nothing to resume or does not resume — covers them too, read back from
//! the store, oldest first. Apart because both a run ([`execute`](super::execute))
//! and the store commands (`runs`) read them.

use claude_agent_sdk::orchestration::{EventKind, ExecutionContext, ExecutionTrace, RunId};

/// The most runs of a chain of resumes read back for a summary.
const CHAIN_LIMIT: usize = 1_000;

/// The traces of run `run` and of the runs it continued in turn (a chain of
/// resumes), oldest first, as the store keeps them.
pub async fn earlier_traces(ctx: &ExecutionContext, run: RunId) -> Vec<ExecutionTrace> {
    let mut traces = Vec::new();
    let mut next = Some(run);
    while let Some(id) = next.take() {
        if traces.len() >= CHAIN_LIMIT {
            break;
        }
        let Some(trace) = ctx.run_trace(id).await else {
            break;
        };
        traces.push(trace);
        next = ctx
            .journal()
            .read(&[id])
            .await
            .into_iter()
            .find_map(|event| match event.kind {
                EventKind::RunStarted { resumes, .. } if event.run == id => resumes,
                _ => None,
            });
    }
    traces.reverse();
    traces
}
