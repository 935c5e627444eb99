//! The engine under every flow: a [scheduler] that decides what
//! runs next, the [executor](crate::orchestration::executor) that runs one
//! node's attempts, and the [journal](crate::orchestration::journal) that
//! every change of a run's state is appended to.
//!
//! A run is a [`Graph`](graph::Graph) of nodes. The [driver] sets the run
//! up, walks it — one step at a time on one task, or with the `workers` —
//! and stops it properly when it must (cancellation, deadline). One step is
//! [`RunState::next_job`](run_state::RunState::next_job) (the scheduler
//! hands out a ready step), [`Walk::run_step`](walk::Walk::run_step)
//! (the executor runs its attempts; a graph's router or loop condition
//! decides where its output goes) and
//! [`RunState::settle`](run_state::RunState::settle) (the scheduler hears
//! how it ended). The [recorder] turns each change into a journal event and
//! an observer event. Patterns only build graphs and conclude results from
//! what the driver reports.

pub(crate) mod branching;
pub(crate) mod driver;
pub(crate) mod gathered;
pub(crate) mod graph;
pub(crate) mod recorder;
pub(crate) mod run_state;
pub(crate) mod scheduler;
mod serial;
mod single;

pub(crate) use single::run_one;
pub(crate) mod stop;
mod turns;
pub(crate) mod walk;
mod workers;
