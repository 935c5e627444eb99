//! Choosing the runs a prune deletes.
//!
//! A store's `prune` deletes whole top-level runs, with every run nested in
//! them and all their events. Which runs is not only a matter of age: a run
//! is history that other runs may still need. Resuming a run reads its
//! whole chain of resumes, and a fork reads the run it forks. So a run goes
//! only with its whole chain, and a chain that a kept run needs (it
//! continues the chain, or forks a run of it) is kept. A run still running
//! is never deleted; one whose process is gone ([`Owner::still_running`])
//! counts as finished, or a killed run would keep its chain forever.
//!
//! The choice is made here, over rows both stores read alike, so that both
//! choose alike; each store then deletes what was chosen in one transaction
//! (see *Pruning* in the [store](super) docs).

use super::columns::{micros, run_id};
use super::owner::Owner;
use super::Prune;

/// A top-level run as a prune weighs it: one row of
/// [`TOP_LEVEL_RUNS`](super::sql::TOP_LEVEL_RUNS).
pub(super) struct TopRun {
    pub(super) id: String,
    /// The first run of its chain of resumes.
    pub(super) origin: String,
    pub(super) status: String,
    pub(super) host: String,
    pub(super) pid: i64,
    /// How old its heartbeat is, by the store's clock.
    pub(super) heartbeat_age_us: Option<i64>,
    pub(super) started_us: i64,
    /// The run it forks.
    pub(super) forks: Option<String>,
}

impl TopRun {
    fn owner(&self) -> Owner<'_> {
        Owner {
            status: &self.status,
            host: &self.host,
            pid: self.pid,
            heartbeat_age_us: self.heartbeat_age_us,
            started_us: self.started_us,
        }
    }
}

/// The ids of the top-level runs `which` deletes, of every top-level run
/// `runs` (newest first).
///
/// A run whose row says `running` is a candidate once its owner is gone
/// (the check a resume makes, [`Owner::still_running`]): otherwise a run
/// whose process was killed would stay forever, and so would every run of
/// its chain of resumes. A run whose process is alive never is.
pub(super) fn chosen_for_pruning(which: Prune, runs: &[TopRun]) -> Vec<String> {
    let finished = runs
        .iter()
        .filter(|run| !run.owner().still_running(run_id(&run.id)));
    let candidates: Vec<String> = match which {
        Prune::StartedBefore(at) => {
            let before = micros(at);
            finished
                .filter(|run| run.started_us < before)
                .map(|run| run.id.clone())
                .collect()
        }
        // `runs` is newest first: the finished ones after the first `keep`.
        Prune::KeepNewest(keep) => finished.skip(keep).map(|run| run.id.clone()).collect(),
    };
    let chains: Vec<ChainLink> = runs
        .iter()
        .map(|run| ChainLink {
            id: run.id.clone(),
            origin: run.origin.clone(),
            forks: run.forks.clone(),
        })
        .collect();
    whole_chains(candidates, &chains)
}

/// A top-level run as it links to others: the first run of its chain of
/// resumes, and the run it forks.
struct ChainLink {
    id: String,
    origin: String,
    forks: Option<String>,
}

/// The runs of `candidates` (top-level run ids) whose whole chain of
/// resumes is among them, and that no kept run's history needs: a chain
/// with a kept run is kept, and so is the chain of the run a kept chain's
/// fork forks (and so on back, in a loop).
fn whole_chains(candidates: Vec<String>, runs: &[ChainLink]) -> Vec<String> {
    use std::collections::{HashMap, HashSet};
    let doomed: HashSet<&str> = candidates.iter().map(String::as_str).collect();
    let origin_of: HashMap<&str, &str> = runs
        .iter()
        .map(|run| (run.id.as_str(), run.origin.as_str()))
        .collect();
    let mut kept_chains: HashSet<&str> = runs
        .iter()
        .filter(|run| !doomed.contains(run.id.as_str()))
        .map(|run| run.origin.as_str())
        .collect();
    loop {
        let needed: Vec<&str> = runs
            .iter()
            .filter(|run| kept_chains.contains(run.origin.as_str()))
            .filter_map(|run| origin_of.get(run.forks.as_deref()?).copied())
            .filter(|origin| !kept_chains.contains(origin))
            .collect();
        if needed.is_empty() {
            break;
        }
        kept_chains.extend(needed);
    }
    runs.iter()
        .filter(|run| {
            doomed.contains(run.id.as_str()) && !kept_chains.contains(run.origin.as_str())
        })
        .map(|run| run.id.clone())
        .collect()
}
