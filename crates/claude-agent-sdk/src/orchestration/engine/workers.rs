//! Running a graph's nodes at the same time: a few workers, each a tokio
//! task, that take the next ready node from the scheduler, run it through
//! the executor, and hand its outcome back — so CPU-heavy agents use every
//! core, and a fan-out of 100,000 agents costs as many tasks as its
//! `parallel_limit`, not 100,000.
//!
//! The scheduler stays the one place that decides: it sits behind the
//! workers' shared lock, taken once per node (to report the node that ended
//! and take the next). A worker with nothing ready while others still run
//! waits to be told that something became ready. When the run must stop,
//! the workers stop taking nodes; the driver tells the running attempts to
//! stop, waits for the workers for [`STOP_GRACE`], and writes off any
//! attempt that did not stop as abandoned.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::driver::{make_input, policy_for, source_of, Overrides, Settled};
use super::graph::InputRule;
use super::stop::STOP_GRACE;
use crate::orchestration::agent::{Agent, AgentInput};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::executor::retry::RetryPolicy;
use crate::orchestration::executor::{run_node, NodeFailure, RunShared};
use crate::orchestration::journal::{Interruption, NodeId};

/// What the workers of a run share.
struct Fleet {
    run: Arc<RunShared>,
    agents: Arc<Vec<Box<dyn Agent>>>,
    input: Arc<AgentInput>,
    config: ExecutionConfig,
    overrides: Overrides,
    retry: Arc<dyn RetryPolicy>,
    /// The scheduler and what the run produced so far.
    state: Mutex<Settled>,
    /// Told whenever a node may have become ready, or the run is over.
    wake: Notify,
}

impl Fleet {
    fn lock(&self) -> MutexGuard<'_, Settled> {
        // Only the scheduler's bookkeeping runs under this lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a worker does next.
enum Next {
    Run(NodeId, InputRule, Option<AgentInput>),
    Wait,
    Stop,
}

/// Runs every node of `settled`'s scheduler with at most `limit` workers;
/// returns what the run produced and why it was cut short, if it was.
pub(crate) async fn drive(
    run: &Arc<RunShared>,
    agents: &Arc<Vec<Box<dyn Agent>>>,
    input: &Arc<AgentInput>,
    config: &ExecutionConfig,
    overrides: Overrides,
    retry: &Arc<dyn RetryPolicy>,
    settled: Settled,
) -> (Settled, Option<Interruption>) {
    let limit = config
        .parallel_limit
        .clamp(1, settled.scheduler.graph().len().max(1));
    let fleet = Arc::new(Fleet {
        run: Arc::clone(run),
        agents: Arc::clone(agents),
        input: Arc::clone(input),
        config: config.clone(),
        overrides,
        retry: Arc::clone(retry),
        state: Mutex::new(settled),
        wake: Notify::new(),
    });
    let mut workers = JoinSet::new();
    for _ in 0..limit {
        workers.spawn(work(Arc::clone(&fleet)));
    }
    let mut interrupted = tokio::select! {
        biased;
        () = join_all(&mut workers) => None,
        why = run.stop.stopped() => Some(why),
    };
    if interrupted.is_some() {
        // Stop: the running attempts are told, then awaited for a while.
        run.stop.token.cancel();
        fleet.wake.notify_waiters();
        let give_up_at = Instant::now() + STOP_GRACE;
        tokio::select! {
            () = join_all(&mut workers) => {}
            () = tokio::time::sleep_until(give_up_at) => {}
        }
        // What did not stop in time is abandoned: its record says so.
        run.recorder.close(Interruption::Abandoned);
        workers.abort_all();
    }
    let mut settled = std::mem::replace(&mut *fleet.lock(), Settled::empty());
    if let Some(why) = settled.interrupted.take() {
        interrupted.get_or_insert(why);
    }
    (settled, interrupted)
}

/// Waits for every worker (one aborted by a runtime shutting down loses only
/// the node it was running, which then has no outcome).
async fn join_all(workers: &mut JoinSet<()>) {
    while workers.join_next().await.is_some() {}
}

/// One worker: takes ready nodes and runs them until none is left to run or
/// the run must stop.
async fn work(fleet: Arc<Fleet>) {
    let mut ended: Option<(
        NodeId,
        Result<crate::orchestration::AgentOutput, NodeFailure>,
    )> = None;
    loop {
        let wake = fleet.wake.notified();
        tokio::pin!(wake);
        let (next, more_ready) = {
            let mut state = fleet.lock();
            if let Some((node, outcome)) = ended.take() {
                state.settle(node, outcome);
            }
            let next = next_for(&fleet, &mut state);
            (next, state.scheduler.has_ready())
        };
        // Wake the waiting workers only when there is something for them: a
        // node left ready, or the run over (a fan-out wakes nobody until its
        // end, however many workers wait).
        if more_ready || matches!(next, Next::Stop) {
            fleet.wake.notify_waiters();
        }
        match next {
            Next::Stop => return,
            Next::Wait => {
                tokio::select! {
                    biased;
                    _ = fleet.run.stop.stopped() => return,
                    () = &mut wake => {}
                }
            }
            Next::Run(node, rule, own_input) => {
                ended = Some((node, run_one(&fleet, node, rule, own_input.as_ref()).await));
                // Agents that finish at once never yield on their own: take turns.
                tokio::task::coop::consume_budget().await;
            }
        }
    }
}

/// What a worker holding the lock does next.
fn next_for(fleet: &Fleet, state: &mut Settled) -> Next {
    // A run that must stop: the executor refuses to start the node taken
    // next, and its interruption ends up here.
    if state.interrupted.is_some() {
        return Next::Stop;
    }
    match state.scheduler.next() {
        Some(node) => {
            // A node on another node's output gets its own copy of it, made
            // now (under the lock: the outputs may not move meanwhile).
            let rule = state.scheduler.graph().nodes[node.index()].input;
            let own_input = match rule {
                InputRule::RunInput => None,
                InputRule::OutputOf(_) => Some(make_input(rule, &fleet.input, &state.outputs)),
            };
            Next::Run(node, rule, own_input)
        }
        None if state.scheduler.running() == 0 => Next::Stop,
        None => Next::Wait,
    }
}

/// Runs node `node` on `own_input`, or on the run's input.
async fn run_one(
    fleet: &Fleet,
    node: NodeId,
    rule: InputRule,
    own_input: Option<&AgentInput>,
) -> Result<crate::orchestration::AgentOutput, NodeFailure> {
    let Some(agent) = fleet.agents.get(node.index()) else {
        return Err(NodeFailure::Failed(super::driver::missing_agent(node)));
    };
    let agent = agent.as_ref();
    let given = own_input.unwrap_or(&fleet.input);
    let input = || given.clone();
    let policy = policy_for(agent, &fleet.config, fleet.overrides, fleet.retry.as_ref());
    run_node(&fleet.run, node, agent, &input, &source_of(rule), &policy).await
}
