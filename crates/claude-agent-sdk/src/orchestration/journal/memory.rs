//! [`InMemoryJournal`]: the default journal, a list of events in memory.

use std::collections::HashSet;
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

    async fn read(&self, runs: &[RunId]) -> Vec<JournalEvent> {
        let events = self.lock();
        select(&events, runs)
    }
}

/// The events of `runs` and of the runs nested in them. A nested run starts
/// after its parent, so one pass in order finds every descendant.
pub(crate) fn select(events: &[JournalEvent], runs: &[RunId]) -> Vec<JournalEvent> {
    let mut wanted: HashSet<RunId> = runs.iter().copied().collect();
    let mut selected = Vec::new();
    for event in events {
        if let EventKind::RunStarted {
            parent: Some(parent),
            ..
        } = &event.kind
        {
            if wanted.contains(&parent.run) {
                wanted.insert(event.run);
            }
        }
        if wanted.contains(&event.run) {
            selected.push(event.clone());
        }
    }
    selected
}
