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
#[derive(Debug, Default)]
pub struct InMemoryJournal {
    events: Mutex<Vec<JournalEvent>>,
    claims: ResumeClaims,
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
        self.lock().clone()
    }

    /// How many events the journal holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the journal holds no event.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<JournalEvent>> {
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
        self.lock().reserve(additional);
    }

    async fn read(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let events = self.lock();
        let mut wanted = Wanted::new(runs);
        events
            .iter()
            .filter(|event| wanted.contains(event))
            .cloned()
            .collect()
    }

    async fn take(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let mut events = self.lock();
        let mut wanted = Wanted::new(runs);
        let flags: Vec<bool> = events.iter().map(|event| wanted.contains(event)).collect();
        take_flagged(&mut events, flags)
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
