//! One row of the progress display — an agent, a group or an ask — and
//! what the display saw of it: its state, times, tokens, and the steps it
//! ran (a map's items among them).
//!
//! Plain data, apart from what changes it (the run's events, in
//! `observer`) and from how it is drawn (`render`): both read this one model
//! of a row.

use std::collections::HashMap;
use std::time::Instant;

use claude_agent_sdk::orchestration::{NodeId, RunId, Usage};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum State {
    Waiting,
    Running {
        attempt: u32,
        max: u32,
    },
    Retrying {
        next: u32,
        max: u32,
    },
    Done,
    Failed,
    Interrupted,
    NotRun,
    /// An ask waiting for its answer.
    Paused,
}

#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) name: String,
    /// Whether it is an ask (a question to a person).
    pub(super) ask: bool,
    pub(super) depth: usize,
    pub(super) state: State,
    pub(super) first_start: Option<Instant>,
    pub(super) finished: Option<Instant>,
    pub(super) usage: Usage,
    /// The most attempts the agent may get, once known.
    pub(super) max: u32,
    /// When it last changed (a sequence number), to show the latest first.
    pub(super) changed: u64,
    /// Its steps (a map node's items run as steps of a run of their own):
    /// when each started, and whether its last attempt failed.
    pub(super) steps: HashMap<(RunId, NodeId), Seen>,
    /// A map node's items in its current run, once they started.
    pub(super) items: Option<Items>,
}

impl Line {
    /// The row of `name`, `depth` groups deep (an ask when `ask`), before
    /// anything ran.
    pub(super) fn waiting(name: &str, depth: usize, ask: bool) -> Self {
        Self {
            name: name.to_owned(),
            ask,
            depth,
            state: State::Waiting,
            first_start: None,
            finished: None,
            usage: Usage::default(),
            max: 0,
            changed: 0,
            steps: HashMap::new(),
            items: None,
        }
    }
}

/// How a map's items are doing.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Items {
    /// How many there are, when known.
    pub(super) total: Option<usize>,
    /// How many succeeded.
    pub(super) done: usize,
}

/// What the display saw of one step of a line.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub(super) started: Instant,
    /// Whether its last attempt failed.
    pub(super) failed: bool,
    /// The most attempts it may get.
    pub(super) max: u32,
}

/// How many of the items of the map run that finished (step of `run` started
/// at `started`) on `line` failed for good, and how many there were: the
/// steps of other runs (the map's own) that started after it.
pub(super) fn failed_items(line: &Line, run: RunId, started: Instant) -> (usize, usize) {
    line.steps
        .iter()
        .filter(|((of, _), seen)| *of != run && seen.started >= started)
        .fold((0, 0), |(failed, all), (_, seen)| {
            (failed + usize::from(seen.failed), all + 1)
        })
}

/// The usage of line `index` and, for a group, of every line below it.
pub(super) fn subtree_usage(lines: &[Line], index: usize) -> Usage {
    let depth = lines[index].depth;
    let mut usage = lines[index].usage;
    for line in lines.iter().skip(index + 1) {
        if line.depth <= depth {
            break;
        }
        usage += line.usage;
    }
    usage
}
