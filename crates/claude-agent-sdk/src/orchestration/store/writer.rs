//! The writer every durable store shares: `append` hands events to a task
//! that stores them in batches (one transaction each), and `flush` waits for
//! the batch that holds everything appended before it.
//!
//! A store only says how to write a [`Batch`], read a tree of runs, and
//! claim a run for resuming ([`Backend`]); ordering, batching, redaction and
//! failure handling live here once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::rows::{Batch, Encoder};
use super::silence::answered;
use super::{Prune, RunSummary, StoreOptions};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::journal::{EventKind, JournalEvent, RunId};

/// The most events one transaction writes.
const MAX_BATCH: usize = 4096;

/// What a store does with SQL.
#[async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Writes `batch` in one transaction.
    async fn write(&self, batch: &Batch) -> Result<()>;
    /// The events of the trees of runs `runs` belong to, in append order.
    async fn read_trees(&self, runs: &[RunId]) -> Result<Vec<JournalEvent>>;
    /// Marks `run` as continued by `by`, unless a run did already (then
    /// `Err(other)`), and returns the origin of `run`'s chain. Refuses a run
    /// that is still running. Writes `by`'s row with the claim, so that a
    /// claim always names a run the store has; a claim by a run that never
    /// started, in a process that is gone, is taken over.
    async fn claim(&self, run: RunId, by: RunId) -> Result<std::result::Result<RunId, RunId>>;
    /// Run summaries: `filter` (a `WHERE` clause, binding `bind` as `$1`),
    /// newest first, at most `limit`.
    async fn summaries(
        &self,
        filter: &str,
        bind: Option<String>,
        limit: usize,
    ) -> Result<Vec<RunSummary>>;
    /// Deletes the finished top-level runs `which` selects; returns how many.
    /// Every wait for the store is bounded (see `silence`), a tree's events
    /// deleted in chunks (see `sql::EVENTS_PER_DELETE`): a silent store
    /// fails the prune, a slow one that answers does not.
    async fn prune_runs(&self, which: Prune) -> Result<u64>;
    /// Writes the heartbeat of running runs `runs`: the store's time now
    /// (its clock, not this machine's: see `sql::Dialect::now_us`).
    async fn heartbeat(&self, runs: &[RunId]) -> Result<()>;
    /// Closes every connection, waiting for those in use to be given back.
    async fn close(&self);
}

/// What the journal tells its writer task.
enum Message {
    Event(JournalEvent),
    Flush(oneshot::Sender<Result<()>>),
    /// Run `by` continues a run whose chain started at `origin`.
    Resumed {
        by: RunId,
        origin: RunId,
    },
}

/// A durable journal over `B`: what [`SqliteJournal`](super::SqliteJournal)
/// and [`PostgresJournal`](super::PostgresJournal) are made of.
#[derive(Debug)]
pub(crate) struct DurableJournal<B> {
    backend: Arc<B>,
    sender: mpsc::UnboundedSender<Message>,
    /// The failure that stopped the writer, once one did.
    failure: Arc<Mutex<Option<OrchestrationError>>>,
}

impl<B: Backend> DurableJournal<B> {
    /// Starts the writer task (on the current tokio runtime).
    pub(crate) fn start(backend: B, options: StoreOptions) -> Self {
        let backend = Arc::new(backend);
        let (sender, receiver) = mpsc::unbounded_channel();
        let failure = Arc::new(Mutex::new(None));
        tokio::spawn(write_batches(
            Arc::clone(&backend),
            receiver,
            Encoder::new(options),
            Arc::clone(&failure),
        ));
        Self {
            backend,
            sender,
            failure,
        }
    }

    pub(crate) async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        self.flush().await?;
        answered(
            self.backend.summaries("WHERE parent IS NULL", None, limit),
            0,
        )
        .await
    }

    /// The newest `limit` top-level runs whose id starts with `prefix`
    /// (hexadecimal digits; anything else matches nothing).
    pub(crate) async fn runs_starting_with(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<RunSummary>> {
        if !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        self.flush().await?;
        let pattern = format!("{}%", prefix.to_ascii_lowercase());
        answered(
            self.backend
                .summaries("WHERE parent IS NULL AND id LIKE $1", Some(pattern), limit),
            0,
        )
        .await
    }

    pub(crate) async fn run(&self, run: RunId) -> Result<Option<RunSummary>> {
        self.flush().await?;
        let mut found = answered(
            self.backend
                .summaries("WHERE id = $1", Some(run.to_string()), 1),
            0,
        )
        .await?;
        Ok(found.pop())
    }

    pub(crate) async fn prune(&self, which: Prune) -> Result<u64> {
        self.flush().await?;
        // Not bounded as a whole: a big prune takes as long as it takes.
        // Each of its waits for the store is (see `Backend::prune_runs`).
        self.backend.prune_runs(which).await
    }

    pub(crate) fn append(&self, event: JournalEvent) {
        match &event.kind {
            EventKind::RunStarted { .. } => live_runs().insert(event.run),
            EventKind::RunFinished { .. } => live_runs().remove(&event.run),
            _ => false,
        };
        // The writer ends only when the journal is dropped: a send cannot fail
        // while `self` lives.
        let _ = self.sender.send(Message::Event(event));
    }

    pub(crate) async fn flush(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        if self.sender.send(Message::Flush(ack)).is_err() {
            return Err(self.stopped());
        }
        done.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    /// Writes what was appended, then closes the store's connections: see
    /// `SqliteJournal::close`.
    pub(crate) async fn close(&self) -> Result<()> {
        let flushed = self.flush().await;
        self.backend.close().await;
        flushed
    }

    pub(crate) async fn read(&self, runs: &[RunId]) -> Result<Vec<JournalEvent>> {
        self.flush().await?;
        let events = self.backend.read_trees(runs).await?;
        Ok(crate::orchestration::journal::events_of(runs, events))
    }

    pub(crate) async fn claim_resume(&self, run: RunId, by: RunId) -> Result<Option<RunId>> {
        self.flush().await?;
        // Running here from its claim on: its row is in the store before
        // its start is, and another journal of this process must not take
        // it for a claim whose process died (see `Backend::claim`).
        live_runs().insert(by);
        match answered(self.backend.claim(run, by), 0).await {
            Ok(Ok(origin)) => {
                let _ = self.sender.send(Message::Resumed { by, origin });
                Ok(None)
            }
            Ok(Err(other)) => {
                live_runs().remove(&by);
                Ok(Some(other))
            }
            Err(error) => {
                live_runs().remove(&by);
                Err(error)
            }
        }
    }

    /// The error for a writer that is gone.
    fn stopped(&self) -> OrchestrationError {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| OrchestrationError::store("the journal's writer stopped", false))
    }
}

/// Whether run `run` runs in this process now (started through a durable
/// journal and not finished): a store cannot tell a run of a live process
/// that is still going from one whose end it never received, except in the
/// process itself.
pub(crate) fn runs_here(run: RunId) -> bool {
    live_runs().contains(&run)
}

/// The runs of this process that started and have not finished.
fn live_runs() -> MutexGuard<'static, HashSet<RunId>> {
    static LIVE: OnceLock<Mutex<HashSet<RunId>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The writer task: takes what is waiting (up to [`MAX_BATCH`] events),
/// writes it in one transaction, then answers the flushes that were waiting
/// for it. After a failed write it stores nothing more — the runs whose
/// events were lost cannot be complete — and every flush reports the failure.
async fn write_batches<B: Backend>(
    backend: Arc<B>,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    mut encoder: Encoder,
    failure: Arc<Mutex<Option<OrchestrationError>>>,
) {
    let mut failed: Option<OrchestrationError> = None;
    // The top-level runs this journal has running, and their heartbeat.
    let mut running: HashSet<RunId> = HashSet::new();
    let mut beat = tokio::time::interval(super::owner::HEARTBEAT_EVERY);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            message = receiver.recv() => match message {
                Some(message) => message,
                None => return,
            },
            _ = beat.tick() => {
                if failed.is_none() && !running.is_empty() {
                    let runs: Vec<RunId> = running.iter().copied().collect();
                    // A missed heartbeat is not a lost event: the next one may do.
                    let _ = answered(backend.heartbeat(&runs), 0).await;
                }
                continue;
            }
        };
        let mut batch = Batch::default();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) if failed.is_none() => {
                    match &event.kind {
                        EventKind::RunStarted { parent: None, .. } => {
                            running.insert(event.run);
                        }
                        EventKind::RunFinished { .. } => {
                            running.remove(&event.run);
                        }
                        _ => {}
                    }
                    encoder.encode(&event, &mut batch);
                }
                Message::Event(_) => {}
                Message::Flush(ack) => acks.push(ack),
                Message::Resumed { by, origin } => encoder.resumed(by, origin),
            }
            if batch.events.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if failed.is_none() && !batch.is_empty() {
            if let Err(error) = answered(backend.write(&batch), batch.bytes()).await {
                *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
                failed = Some(error);
            }
        }
        for ack in acks {
            let _ = ack.send(failed.clone().map_or(Ok(()), Err));
        }
    }
}

/// Implements [`Journal`](crate::orchestration::Journal) for a store that
/// wraps a [`DurableJournal`] in a field `journal`.
macro_rules! durable_journal_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::orchestration::Journal for $store {
            fn append(&self, event: $crate::orchestration::JournalEvent) {
                self.journal.append(event);
            }

            async fn read(
                &self,
                runs: &[$crate::orchestration::RunId],
            ) -> Vec<$crate::orchestration::JournalEvent> {
                self.journal.read(runs).await.unwrap_or_default()
            }

            async fn read_checked(
                &self,
                runs: &[$crate::orchestration::RunId],
            ) -> $crate::orchestration::Result<Vec<$crate::orchestration::JournalEvent>> {
                self.journal.read(runs).await
            }

            async fn flush(&self) -> $crate::orchestration::Result<()> {
                self.journal.flush().await
            }

            fn is_durable(&self) -> bool {
                true
            }

            async fn claim_resume(
                &self,
                run: $crate::orchestration::RunId,
                by: $crate::orchestration::RunId,
            ) -> $crate::orchestration::Result<Option<$crate::orchestration::RunId>> {
                self.journal.claim_resume(run, by).await
            }
        }
    };
}
pub(crate) use durable_journal_impl;
