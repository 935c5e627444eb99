//! Map steps: one node run once per item of its input.
//!
//! A map node's step runs no agent. The driver splits the step's input into
//! items and calls [`Scheduler::expand`], which gives each item a step of
//! its own on the map node's agent; those run as any ready step does,
//! within the concurrency limit. When every item's step has completed, the
//! map step completes — it succeeded when enough items did, by the node's
//! join policy over its items — and goes to the driver to gather the items'
//! outputs ([`Scheduler::take_gathered`]). The map stays one step of its
//! node so that the nodes after it wait for one token, not one per item.

use super::{Completion, Decision, Scheduler, Step, StepId, StepInput, StepKind};

/// A map step's items.
#[derive(Debug, Clone, Default)]
pub(super) struct MapItems {
    pub(super) steps: Vec<StepId>,
    pub(super) pending: usize,
    pub(super) succeeded: usize,
    /// Items cut short by a stop.
    pub(super) interrupted: usize,
}

impl Scheduler {
    /// Gives map step `map` one step per item, `count` items (none: the
    /// map succeeds at once, with nothing gathered).
    pub(crate) fn expand(&mut self, map: StepId, count: usize) {
        let Some(step) = self.steps.get(map.index()) else {
            return;
        };
        if step.kind != StepKind::Map || self.ended[map.index()].is_some() {
            return;
        }
        let (node, iteration) = (step.node, step.iteration);
        let mut items = MapItems::default();
        for index in 0..count {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let Some(item) = self.add_step(Step {
                node,
                kind: StepKind::Agent,
                input: StepInput::Item { map, index },
                iteration,
                item: Some((map, index)),
                activation: 0,
            }) else {
                break;
            };
            items.steps.push(item);
            self.ready.push_back(item);
        }
        if self.runaway.is_some() {
            // The step limit refused an item: the run starts nothing more,
            // so the items made before it never run and the map is cut short.
            for item in &items.steps {
                self.ended[item.index()] = Some(Completion::Interrupted);
            }
            self.maps[map.index()] = items;
            self.mapping -= 1;
            self.ended[map.index()] = Some(Completion::Interrupted);
            self.finish(map, Completion::Interrupted, &Decision::default());
            return;
        }
        items.pending = items.steps.len();
        let done = items.pending == 0;
        self.maps[map.index()] = items;
        if done {
            self.finish_map(map);
        }
    }

    /// Fails map step `map` (its input could not be split).
    pub(crate) fn fail_map(&mut self, map: StepId) {
        let Some(step) = self.steps.get(map.index()) else {
            return;
        };
        if step.kind != StepKind::Map || self.ended[map.index()].is_some() {
            return;
        }
        self.mapping -= 1;
        self.ended[map.index()] = Some(Completion::Failed);
        self.finish(map, Completion::Failed, &Decision::default());
    }

    /// A map step whose items all completed: it succeeds when enough did
    /// (the node's join policy over its items).
    pub(super) fn finish_map(&mut self, map: StepId) {
        self.mapping -= 1;
        let items = &self.maps[map.index()];
        let node = self.steps[map.index()].node;
        // Fewer items than the join asks for (`AtLeast(k)` over fewer than
        // k, `Any` over none) cannot satisfy it: the map fails.
        let required = self.graph.nodes[node.index()]
            .join
            .required_successes(items.steps.len());
        // An item cut short by a stop cuts the map short: it did not run to
        // its own end.
        let how = if items.interrupted > 0 {
            Completion::Interrupted
        } else if items.succeeded >= required {
            Completion::Succeeded
        } else {
            Completion::Failed
        };
        self.ended[map.index()] = Some(how);
        self.gathered.push(map);
        self.finish(map, how, &Decision::default());
    }
}
