//! The journal: every change of a run's state, as an owned event, in order.
//!
//! A run is its events. The engine appends one [`JournalEvent`] for each
//! change — the run started, a graph added a step, an attempt started, an
//! attempt finished (with its output or its error, or cut short), a graph
//! step's router or loop decided where its output goes, a retry was
//! scheduled, an agent changed the shared state, the run finished — to the
//! [`Journal`] of its [`ExecutionContext`](super::ExecutionContext).
//! Everything else is a view of those events: the
//! [`ExecutionTrace`](super::ExecutionTrace) a run returns is built from them
//! (the private `view` module), and the live [`RunEvent`](super::RunEvent)s
//! an observer hears are told in the same order as the run's starts, ends
//! and retries are appended.
//!
//! Events are deltas, not snapshots, so a durable store keeps each fact once:
//! an attempt names where its input came from ([`InputSource`]) instead of
//! copying the previous step's output, and a nested run names the attempt it
//! runs inside ([`ParentAttempt`]) instead of carrying the path from the root
//! — the path of any node is the chain of its runs' parents, which keeps
//! deep nesting linear in size.
//!
//! [`InMemoryJournal`] is the default store. Durable ones implement the same
//! trait.

mod live;
mod memory;
pub(crate) mod view;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) use live::LiveJournal;
#[cfg(feature = "store")]
pub(crate) use memory::events_of;
pub use memory::InMemoryJournal;

use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::errors::OrchestrationError;

/// Where the events of runs are kept.
///
/// `append` must not block: a store that writes to disk or over the network
/// buffers and writes in the background, and makes [`flush`](Self::flush)
/// wait until everything appended so far is stored. Events of one run are
/// appended in the order they happened; events of different runs (siblings,
/// nested runs) interleave.
#[async_trait]
pub trait Journal: Send + Sync + fmt::Debug {
    /// Appends one event.
    fn append(&self, event: JournalEvent);

    /// A hint that about `additional` more events are coming (a run that
    /// knows its size says so before it starts), so a store can make room
    /// once. The default ignores it.
    fn reserve(&self, additional: usize) {
        let _ = additional;
    }

    /// The events of the runs `runs` and of every run nested in them, in the
    /// order they were appended.
    async fn read(&self, runs: &[RunId]) -> Vec<JournalEvent>;

    /// As [`read`](Self::read), but a store that cannot be read says so
    /// instead of returning nothing (what [`resume`](mod@crate::orchestration::resume)
    /// reads with). The default reads.
    ///
    /// # Errors
    /// [`OrchestrationError::Store`] when the store cannot be read.
    async fn read_checked(
        &self,
        runs: &[RunId],
    ) -> crate::orchestration::Result<Vec<JournalEvent>> {
        Ok(self.read(runs).await)
    }

    /// As [`read`](Self::read), for a reader that is the journal's last: a
    /// store may move the events out instead of copying them (the engine
    /// calls it for the private context of [`Orchestrator::orchestrate`](crate::orchestration::Orchestrator::orchestrate),
    /// which nobody else can read). The default copies.
    async fn take(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        self.read(runs).await
    }

    /// Waits until every event appended so far is stored.
    ///
    /// # Errors
    /// [`OrchestrationError::Store`] when the store could not keep them.
    async fn flush(&self) -> crate::orchestration::Result<()> {
        Ok(())
    }

    /// Whether the store outlives the process. A run on a durable journal
    /// commits each step's end ([`flush`](Self::flush)) before the steps
    /// that follow it start, so a resumed run never runs it again.
    fn is_durable(&self) -> bool {
        false
    }

    /// Records that run `by` continues run `run` (see
    /// [`resume`](mod@crate::orchestration::resume)), unless another run did
    /// first: then returns that run. A run is continued at most once, so two
    /// processes resuming one run cannot both run what is left of it.
    ///
    /// # Errors
    /// [`OrchestrationError::Store`] when the store could not be asked; a
    /// store may also refuse a run that is still running elsewhere.
    async fn claim_resume(
        &self,
        run: RunId,
        by: RunId,
    ) -> crate::orchestration::Result<Option<RunId>>;
}

/// One change of a run's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalEvent {
    /// The run the event belongs to.
    pub run: RunId,
    /// When it happened, in UTC, on the run's clock (see
    /// [`ExecutionTrace`](super::ExecutionTrace) for how times stay consistent).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
}

impl JournalEvent {
    /// An event of `run` at `at`.
    #[must_use]
    pub fn new(run: RunId, at: DateTime<Utc>, kind: EventKind) -> Self {
        Self { run, at, kind }
    }
}

/// What happened to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run started.
    RunStarted {
        /// The orchestrator's name.
        orchestrator: String,
        /// The name of each node (its agent's name), by [`NodeId`]; empty
        /// when the run keeps no attempt records
        /// ([`ExecutionConfig::enable_tracing`](crate::orchestration::ExecutionConfig::enable_tracing) off).
        nodes: Vec<String>,
        /// What the run was given.
        input: Box<AgentInput>,
        /// The attempt this run runs inside, when it is nested.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentAttempt>,
        /// The run this one continues, when it was resumed (see
        /// [`resume`](mod@crate::orchestration::resume)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<RunId>,
        /// Where this run starts from, when it is a fork (see
        /// [`fork`](crate::orchestration::resume::fork)): a run of its own,
        /// not a continuation, whose history is the forked run's up to the
        /// fork point.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forks: Option<ForkPoint>,
    },
    /// A graph run added a step: one activation of one of its nodes (a
    /// pipeline's or fan-out's steps are its nodes, named in
    /// [`RunStarted`](Self::RunStarted); a graph's are added as the run
    /// goes — once per loop iteration, once per map item).
    StepAdded {
        /// The step's id, which the step's attempt events name.
        step: NodeId,
        /// The name of the agent the step runs.
        agent: String,
        /// The graph node it is an activation of.
        node: String,
        /// The iteration of the loop the node is in (1 outside loops).
        iteration: u32,
        /// For a map's item: the item's index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<u32>,
        /// Which of its node's steps in the run this is, from 1 — counted
        /// over the steps the run took back from the run it resumes too,
        /// which it does not announce again. `None` in journals written
        /// before it was kept (the run's announcements are counted then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<u32>,
    },
    /// An attempt of a node started.
    AttemptStarted {
        /// The node.
        node: NodeId,
        /// The attempt's number, from 1.
        attempt: u32,
        /// The most attempts the node may get.
        max_attempts: u32,
        /// Where its input came from.
        input: InputSource,
    },
    /// An attempt of a node ended — every started attempt ends exactly once.
    AttemptFinished {
        /// The node.
        node: NodeId,
        /// The attempt's number, from 1.
        attempt: u32,
        /// How it ended.
        outcome: AttemptOutcome,
        /// How long it took, on the monotonic clock.
        elapsed: Duration,
    },
    /// A failed attempt will be followed by another after `delay`.
    RetryScheduled {
        /// The node.
        node: NodeId,
        /// The number of the attempt that will follow.
        next_attempt: u32,
        /// How long the retry waits.
        delay: Duration,
    },
    /// An agent changed the shared state of its context
    /// ([`ExecutionContext::set_state`](crate::orchestration::ExecutionContext::set_state)
    /// and the other state methods) while attempt `attempt` of step `node`
    /// ran: a resumed run replays the changes of the attempts that finished.
    StateChanged {
        /// The step whose attempt made the change.
        node: NodeId,
        /// The attempt.
        attempt: u32,
        /// The state's key.
        key: String,
        /// What changed.
        change: StateChange,
    },
    /// The answers to questions a run not nested in another was given when
    /// it started ([`ExecutionContext::answer`](crate::orchestration::ExecutionContext::answer)):
    /// a run that resumes it has them too, whether it paused, failed or
    /// crashed.
    AnswersGiven {
        /// By question id.
        answers: std::collections::HashMap<String, String>,
    },
    /// Where a graph step's output went, as its node's router or loop
    /// condition decided when the step succeeded: a resumed run that reuses
    /// the step takes the same way, whatever the state is by then.
    StepDecided {
        /// The step.
        step: NodeId,
        /// What was decided.
        decision: StepDecision,
    },
    /// The run ended.
    RunFinished {
        /// How.
        outcome: RunOutcome,
    },
}

/// What a graph step's router or loop condition decided about its output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepDecision {
    /// The graph nodes its output went to; `None`: every node it has an
    /// edge to (a node without a router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// Whether its output is one of the run's results; `None`: as the
    /// node's edge to the end says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<bool>,
    /// Whether the loop the node closes went round again.
    #[serde(default)]
    pub again: bool,
}

/// A change of one key of a context's shared state: the operation, not the
/// value it made (an append stores the item, not the whole list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateChange {
    /// The key was set to this value.
    Set(serde_json::Value),
    /// This value was appended to the array under the key.
    Append(serde_json::Value),
    /// These fields were merged into the object under the key.
    Merge(serde_json::Value),
    /// The key was removed.
    Remove,
}

/// A run's id: unique among runs, in this process and beyond (128 random
/// bits), written as 32 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u128);

impl RunId {
    /// A fresh id.
    #[must_use]
    pub fn new() -> Self {
        Self(fastrand::u128(..))
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

impl FromStr for RunId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        u128::from_str_radix(text, 16).map(Self)
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A node of a run: its position among the run's nodes (for the patterns,
/// the agent's position in the list it was given). A graph run's attempt
/// events (and its trace records) name *steps* by this id instead — one per
/// node activation, loop pass and map item, as each
/// [`StepAdded`](EventKind::StepAdded) announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The node's position, as an index.
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn from_index(index: usize) -> Self {
        Self(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a fork starts: after the last finished step of node `after` of
/// run `run` (a graph's node id, or an agent's name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ForkPoint {
    /// The forked run.
    pub run: RunId,
    /// The node after whose last finished step the fork starts.
    pub after: String,
}

/// The attempt a nested run runs inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParentAttempt {
    /// The enclosing run.
    pub run: RunId,
    /// The node of the enclosing run whose attempt started this run.
    pub node: NodeId,
    /// That attempt's number.
    pub attempt: u32,
}

/// Where an attempt's input came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputSource {
    /// The run's own input.
    RunInput,
    /// The content of a node's output, with the run's context and metadata.
    OutputOf(NodeId),
    /// An input given in full.
    Given(Box<AgentInput>),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The agent returned an output.
    Succeeded(AgentOutput),
    /// The agent returned an error, panicked, or ran out its attempt timeout.
    Failed(OrchestrationError),
    /// The attempt was cut short before the agent finished.
    Interrupted(Interruption),
}

/// Why an attempt, or a run, was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Interruption {
    /// The run was cancelled.
    Cancelled,
    /// The run reached its deadline.
    TimedOut,
    /// The run ended and the attempt did not stop within the grace period
    /// (an agent that blocks its thread cannot be stopped); it was abandoned.
    Abandoned,
    /// The run's future was dropped before it ended.
    Dropped,
}

impl Interruption {
    /// How a trace record words it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Cancelled => "interrupted: the run was cancelled",
            Self::TimedOut => "interrupted: the run timed out",
            Self::Abandoned => "interrupted: the attempt was abandoned (it did not stop in time)",
            Self::Dropped => "interrupted: the run was dropped",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunOutcome {
    /// The run returned `Ok` (a tolerant join policy may have let some nodes fail).
    Succeeded,
    /// The run returned this error.
    Failed(OrchestrationError),
    /// The run was cut short.
    Interrupted(Interruption),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_round_trip_as_text() {
        let (a, b) = (RunId::new(), RunId::new());
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<RunId>().unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<RunId>(&json).unwrap(), a);
    }

    #[test]
    fn events_round_trip_through_json() {
        let run = RunId::new();
        let at = Utc::now();
        let events = [
            EventKind::RunStarted {
                orchestrator: "o".into(),
                nodes: vec!["a".into()],
                input: Box::new(AgentInput::new("x")),
                parent: Some(ParentAttempt {
                    run: RunId::new(),
                    node: NodeId(2),
                    attempt: 1,
                }),
                resumes: Some(RunId::new()),
                forks: Some(ForkPoint {
                    run: RunId::new(),
                    after: "draft".into(),
                }),
            },
            EventKind::AnswersGiven {
                answers: [("approve".to_owned(), "yes".to_owned())].into(),
            },
            EventKind::AttemptStarted {
                node: NodeId(0),
                attempt: 1,
                max_attempts: 4,
                input: InputSource::OutputOf(NodeId(3)),
            },
            EventKind::AttemptFinished {
                node: NodeId(0),
                attempt: 1,
                outcome: AttemptOutcome::Failed(OrchestrationError::transient("429")),
                elapsed: Duration::from_millis(5),
            },
            EventKind::AttemptFinished {
                node: NodeId(0),
                attempt: 2,
                outcome: AttemptOutcome::Interrupted(Interruption::Cancelled),
                elapsed: Duration::from_millis(5),
            },
            EventKind::RunFinished {
                outcome: RunOutcome::Succeeded,
            },
        ];
        for kind in events {
            let event = JournalEvent::new(run, at, kind);
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<JournalEvent>(&json).unwrap(), event);
        }
    }
}
