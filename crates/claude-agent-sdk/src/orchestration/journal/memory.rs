//! [`InMemoryJournal`]: the default journal, a list of events in memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{EventKind, Journal, JournalEvent, RunId};

/// Keeps every event in memory, in append order, for as long as the journal
/// (usually its [`ExecutionContext`](crate::orchestration::ExecutionContext))
/// lives.
///
/// ```
/// use std::sync::Arc;
/// use claude_agent_sdk::orchestration::{
///     Agent, AgentOutput, EventKind, ExecutionConfig, ExecutionContext, InMemoryJournal,
///     Orchestrator, OrchestratorInput, SequentialOrchestrator, SimpleAgent,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let journal = Arc::new(InMemoryJournal::new());
/// let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
/// let agents: Vec<Box<dyn Agent>> =
///     vec![Box::new(SimpleAgent::new("echo", "", |i| Ok(AgentOutput::new(i.content))))];
/// SequentialOrchestrator::new()
///     .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
///     .await?;
/// let kinds: Vec<_> = journal.events().iter().map(|e| match &e.kind {
///     EventKind::RunStarted { .. } => "run started",
///     EventKind::AttemptStarted { .. } => "attempt started",
///     EventKind::AttemptFinished { .. } => "attempt finished",
///     EventKind::RunFinished { .. } => "run finished",
///     _ => "other",
/// }).collect();
/// assert_eq!(kinds, ["run started", "attempt started", "attempt finished", "run finished"]);
/// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
/// # }).unwrap();
/// ```
///
/// It grows with every run made on it and is never trimmed: a process that
/// makes runs for as long as it lives gives each its own context (or its own
/// journal), or keeps its runs in a durable store (`SqliteJournal`, feature
/// `sqlite`), whose old runs `prune` deletes.
#[derive(Debug, Default)]
pub struct InMemoryJournal {
    events: Mutex<Events>,
    claims: ResumeClaims,
}

/// The events, and where each run's first event is: reading a run looks
/// from there on (its nested runs start after it), so a context that made
/// thousands of runs reads the last one's trace without going through the
/// events of the others.
#[derive(Debug, Default)]
struct Events {
    list: Vec<JournalEvent>,
    starts: HashMap<RunId, usize>,
}

impl Events {
    fn push(&mut self, event: JournalEvent) {
        if let EventKind::RunStarted { .. } = event.kind {
            self.starts.entry(event.run).or_insert(self.list.len());
        }
        self.list.push(event);
    }

    /// Where the events of `runs` (and of the runs nested in them) start:
    /// the first event of the earliest, or the first event of all when a
    /// run has no start in the journal.
    fn start_of(&self, runs: &[RunId]) -> usize {
        runs.iter()
            .map(|run| self.starts.get(run).copied())
            .try_fold(self.list.len(), |first, start| Some(first.min(start?)))
            .unwrap_or(0)
    }

    /// The events from `start` on.
    fn from(&self, start: usize) -> &[JournalEvent] {
        self.list.get(start..).unwrap_or_default()
    }
}

impl InMemoryJournal {
    /// An empty journal.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event so far.
    #[must_use]
    pub fn events(&self) -> Vec<JournalEvent> {
        self.lock().list.clone()
    }

    /// How many events the journal holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().list.len()
    }

    /// Whether the journal holds no event.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().list.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Events> {
        // Only pushes and reads run under the lock: a panic cannot leave the
        // list half-changed, so poisoning is ignored.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    fn append(&self, event: JournalEvent) {
        self.lock().push(event);
    }

    fn reserve(&self, additional: usize) {
        self.lock().list.reserve(additional);
    }

    async fn read(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let events = self.lock();
        let mut wanted = Wanted::new(runs);
        events
            .from(events.start_of(runs))
            .iter()
            .filter(|event| wanted.contains(event))
            .cloned()
            .collect()
    }

    async fn take(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let mut events = self.lock();
        let mut wanted = Wanted::new(runs);
        let flags: Vec<bool> = events
            .list
            .iter()
            .map(|event| wanted.contains(event))
            .collect();
        let taken = take_flagged(&mut events.list, flags);
        // The events kept moved: their runs' starts are found again.
        let kept = std::mem::take(&mut events.list);
        events.starts.clear();
        for event in kept {
            events.push(event);
        }
        taken
    }

    async fn claim_resume(
        &self,
        run: RunId,
        by: RunId,
    ) -> crate::orchestration::Result<Option<RunId>> {
        Ok(self.claims.claim(run, by))
    }
}

/// Which run continues which, in memory (see [`Journal::claim_resume`]).
#[derive(Debug, Default)]
pub(crate) struct ResumeClaims(Mutex<HashMap<RunId, RunId>>);

impl ResumeClaims {
    /// Records that `by` continues `run`, unless another run did first:
    /// then returns that run.
    pub(crate) fn claim(&self, run: RunId, by: RunId) -> Option<RunId> {
        let mut resumed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match resumed.get(&run) {
            Some(other) if *other != by => Some(*other),
            _ => {
                resumed.insert(run, by);
                None
            }
        }
    }
}

/// Keeps only the events of `runs` and of the runs nested in them, in order.
#[cfg(feature = "store")]
pub(crate) fn events_of(runs: &[RunId], events: Vec<JournalEvent>) -> Vec<JournalEvent> {
    let mut wanted = Wanted::new(runs);
    events
        .into_iter()
        .filter(|event| wanted.contains(event))
        .collect()
}

/// Moves the items whose flag is set out of `items`, in order (all of
/// them at once when every flag is set).
pub(crate) fn take_flagged<T>(items: &mut Vec<T>, flags: Vec<bool>) -> Vec<T> {
    if flags.iter().all(|&flag| flag) {
        return std::mem::take(items);
    }
    let mut flags = flags.into_iter();
    let (taken, kept) = std::mem::take(items)
        .into_iter()
        .partition(|_| flags.next().unwrap_or(false));
    *items = kept;
    taken
}

/// The runs asked for and the runs nested in them. A nested run starts
/// after its parent, so one pass in order finds every descendant.
pub(crate) struct Wanted {
    runs: HashSet<RunId>,
    /// The run of the last event looked at, and whether it was wanted
    /// (events of one run mostly come together).
    last: Option<(RunId, bool)>,
}

impl Wanted {
    pub(crate) fn new(runs: &[RunId]) -> Self {
        Self {
            runs: runs.iter().copied().collect(),
            last: None,
        }
    }

    /// Whether `event` belongs to a wanted run (seen in order).
    fn contains(&mut self, event: &JournalEvent) -> bool {
        if let EventKind::RunStarted { parent, .. } = &event.kind {
            self.starts(event.run, parent.map(|parent| parent.run));
            self.last = None;
        }
        match self.last {
            Some((run, wanted)) if run == event.run => wanted,
            _ => {
                let wanted = self.runs.contains(&event.run);
                self.last = Some((event.run, wanted));
                wanted
            }
        }
    }

    /// Run `run` starts, nested in run `parent` if it is: whether it is wanted
    /// (runs are seen in the order they started).
    pub(crate) fn starts(&mut self, run: RunId, parent: Option<RunId>) -> bool {
        if parent.is_some_and(|parent| self.runs.contains(&parent)) {
            self.runs.insert(run);
        }
        self.runs.contains(&run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::agent::AgentInput;
    use crate::orchestration::journal::{NodeId, ParentAttempt, RunOutcome};

    fn started(run: RunId, parent: Option<RunId>) -> JournalEvent {
        let kind = EventKind::RunStarted {
            orchestrator: "o".into(),
            nodes: Vec::new(),
            input: Box::new(AgentInput::new("x")),
            parent: parent.map(|run| ParentAttempt {
                run,
                node: NodeId(0),
                attempt: 1,
            }),
            resumes: None,
            forks: None,
        };
        JournalEvent::new(run, chrono::Utc::now(), kind)
    }

    fn finished(run: RunId) -> JournalEvent {
        let kind = EventKind::RunFinished {
            outcome: RunOutcome::Succeeded,
        };
        JournalEvent::new(run, chrono::Utc::now(), kind)
    }

    #[tokio::test]
    async fn reading_the_last_of_many_runs_looks_only_at_the_events_since_it_started() {
        let journal = InMemoryJournal::new();
        let runs: Vec<RunId> = (0..1_000).map(|_| RunId::new()).collect();
        for run in &runs {
            journal.append(started(*run, None));
            journal.append(finished(*run));
        }
        let last = runs[999];
        let nested = RunId::new();
        journal.append(started(nested, Some(last)));
        journal.append(finished(nested));
        {
            let events = journal.lock();
            // The events a read of the last run goes through: its own and
            // its nested run's, not the 1,998 before them.
            assert_eq!(events.from(events.start_of(&[last])).len(), 4);
            // A run the journal has no start for: every event is looked at.
            assert_eq!(events.start_of(&[RunId::new()]), 0);
        }
        assert_eq!(journal.read(&[last]).await.len(), 4);
        assert_eq!(journal.read(&[runs[0], nested]).await.len(), 4);
        // After a take, the starts follow the events that moved.
        assert_eq!(journal.take(&[runs[0]]).await.len(), 2);
        assert_eq!(journal.read(&[last]).await.len(), 4);
        assert_eq!(journal.read(&[runs[1]]).await.len(), 2);
    }
}
