//! The runs nested in a row's step that the display tells apart: a map
//! node's items run as the steps of a run of their own (the map's row counts
//! them, and log lines name each one, `research[2/3]`), and a sequential or
//! parallel group with a budget runs as the one step of a graph of its own,
//! whose step is the group's attempt again (not to be shown twice).
//!
//! The library reports both as ordinary nested runs; only the workflow
//! knows which maps and budgeted groups it has ([`Progress::new`] notes
//! them), so the display keeps which run is whose here.

use std::sync::PoisonError;

use claude_agent_sdk::orchestration::{NodeId, ParentAttempt, RunId};

use super::line::Items;
use super::Progress;

/// Item `index` (from 1) of map `name`'s `total`: `research[2/3]`.
fn item_label(name: &str, index: usize, total: Option<usize>) -> String {
    match total {
        Some(total) => format!("{name}[{index}/{total}]"),
        None => format!("{name}[{index}]"),
    }
}

impl Progress {
    /// The map item that `node` of `run` is, if it is one: the map's name
    /// and the item's label. A map's items are the steps of a run of their
    /// own, after the map's step there: step `n` is item `n`.
    pub(super) fn item(&self, run: RunId, node: NodeId) -> Option<(String, String)> {
        let runs = self
            .shared
            .map_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (name, total) = runs.get(&run)?;
        let index = usize::try_from(node.0).unwrap_or(usize::MAX);
        Some((name.clone(), item_label(name, index, *total)))
    }

    /// The row an attempt of `agent` at `node` of `run` shows in, and how
    /// it is shown there: a map's item in its map's row, under the item's
    /// label; any other step in its agent's row, under its name. The third
    /// value says whether it is a map's item.
    pub(super) fn row_of(&self, run: RunId, node: NodeId, agent: &str) -> (String, String, bool) {
        let (name, shown) = self
            .item(run, node)
            .unwrap_or_else(|| (agent.to_owned(), agent.to_owned()));
        let is_item = name != shown;
        (name, shown, is_item)
    }

    /// Run `run`, nested in `parent`'s attempt, started: when it is the run
    /// of a map's items, the map's line counts them.
    pub(super) fn run_started(&self, run: RunId, parent: ParentAttempt) {
        let name = {
            let lines = self.lines();
            lines
                .iter()
                .find(|line| {
                    self.shared.maps.contains(&line.name)
                        && line.steps.contains_key(&(parent.run, parent.node))
                })
                .map(|line| line.name.clone())
        };
        let Some(name) = name else {
            self.wrapper_started(run, parent);
            return;
        };
        let total = self.shared.counts.get(&name);
        self.shared
            .map_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run, (name.clone(), total));
        self.update(&name, |line| {
            line.items = Some(Items { total, done: 0 });
        });
        let what = match total {
            Some(1) => "running 1 item".to_owned(),
            Some(total) => format!("running {total} items"),
            None => "running its items".to_owned(),
        };
        self.log(&name, &what);
    }

    /// Notes run `run` when it is the graph a budgeted group's attempt (in
    /// `parent`) runs the group in.
    fn wrapper_started(&self, run: RunId, parent: ParentAttempt) {
        let name = self
            .lines()
            .iter()
            .find(|line| {
                self.shared.budgeted.contains(&line.name)
                    && line.steps.contains_key(&(parent.run, parent.node))
            })
            .map(|line| line.name.clone());
        if let Some(name) = name {
            self.shared
                .wrappers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((run, name));
        }
    }

    /// Whether `agent`'s event in `run` is a budgeted group's attempt seen
    /// again inside the graph that carries its budget.
    pub(super) fn is_wrapped(&self, run: RunId, agent: &str) -> bool {
        self.shared
            .wrappers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&(run, agent.to_owned()))
    }
}
