//! The engine under every flow: a [scheduler] that decides what
//! runs next, the [executor](crate::orchestration::executor) that runs one
//! node's attempts, and the [journal](crate::orchestration::journal) that
//! every change of a run's state is appended to.
//!
//! A run is a [`Graph`](graph::Graph) of nodes. The [driver] walks it:
//! it asks the scheduler what may start, hands each node to the executor,
//! tells the scheduler how it ended, and stops the run properly when it must
//! (cancellation, deadline). The [recorder] turns each change into
//! a journal event and an observer event. Patterns only build graphs and
//! conclude results from what the driver reports.

pub(crate) mod driver;
mod gathered;
pub(crate) mod graph;
pub(crate) mod recorder;
pub(crate) mod run_state;
pub(crate) mod scheduler;
mod single;

pub(crate) use single::run_one;
pub(crate) mod stop;
mod workers;
