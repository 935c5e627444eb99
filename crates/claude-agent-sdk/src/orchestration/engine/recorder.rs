//! The recorder: how a run's changes reach its journal and its observer.
//!
//! Every event of a run goes through its [`Recorder`], which appends it to
//! the context's [`Journal`](crate::orchestration::Journal) and tells the
//! context's [`RunObserver`](crate::orchestration::RunObserver) — the same
//! event, in the same order. The recorder also keeps the run's open
//! attempts, which is what makes "every started attempt ends exactly once"
//! hold by construction: an attempt's end is written by whoever takes it
//! from the open table first — the attempt itself, or the run closing its
//! books when it stops (an attempt abandoned, a run dropped) — and an end
//! that comes later is ignored.
//!
//! The observer hears each event whole; the journal gets the copy
//! `journaled` makes (texts cut to the run's limit, a pause without the
//! copies it carries).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::{Clock, ExecutionContext};
use crate::orchestration::engine::stop::{interruption_error, TimeLimit};
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::executor::panic::contained;
use crate::orchestration::journal::{
    AttemptOutcome, EventKind, ForkPoint, InputSource, Interruption, JournalEvent, NodeId,
    ParentAttempt, RunId, RunOutcome, StepDecision,
};
use crate::orchestration::observer::RunEvent;
use crate::orchestration::telemetry::log_event;

mod journaled;

use journaled::{capped_input, capped_output, capped_source, journaled_error};

/// How an attempt ended, borrowed from whoever ended it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttemptEnd<'a> {
    Succeeded(&'a AgentOutput),
    Failed(&'a OrchestrationError),
    Interrupted(Interruption),
}

/// The names of a run's nodes: its agents' names, read when needed rather
/// than copied up front.
#[derive(Clone)]
pub(crate) enum NodeNames {
    /// The run's agents, by node.
    Agents(Arc<Vec<Box<dyn Agent>>>),
    /// A run of one (borrowed) agent.
    One(Arc<str>),
}

impl NodeNames {
    pub(crate) fn get(&self, node: NodeId) -> &str {
        match self {
            Self::Agents(agents) => agents.get(node.index()).map_or("", |agent| agent.name()),
            Self::One(name) => name,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Agents(agents) => agents.len(),
            Self::One(_) => 1,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|index| self.get(NodeId::from_index(index)))
    }
}

/// The recording side of one run (see the module docs).
pub(crate) struct Recorder {
    run: RunId,
    orchestrator: String,
    /// What bounds the run's time, for the errors of attempts cut short.
    time_limit: TimeLimit,
    ctx: ExecutionContext,
    /// The name of each node's agent.
    names: NodeNames,
    /// Whether attempts are journaled (trace records on).
    records: bool,
    /// The most bytes of each text the journal keeps.
    text_limit: Option<usize>,
    /// Whether the run's steps are its nodes, named up front (a pipeline, a
    /// fan-out), rather than added as the run goes (a graph).
    steps_are_nodes: bool,
    open: Mutex<OpenAttempts>,
}

/// The attempts that started and have not ended, by step (a step has at
/// most one attempt running).
struct OpenAttempts {
    by_node: Vec<Option<(u32, Instant)>>,
    /// The node of each step a graph run added (a pipeline's or fan-out's
    /// steps are its nodes: empty).
    step_nodes: Vec<NodeId>,
    closed: bool,
    /// When the last event was dated: events are dated in the order they
    /// are appended.
    last: Option<Moment>,
    /// The answers the journal holds for a run not nested in another, as
    /// of its start (`None` for a nested run, whose end no resume reads
    /// answers from): its pause journals only those given since.
    answered: Option<HashMap<String, String>>,
}

impl OpenAttempts {
    /// The node step `step` is an activation of.
    fn node_of(&self, step: NodeId) -> NodeId {
        self.step_nodes.get(step.index()).copied().unwrap_or(step)
    }

    /// `moment`, or the last event's when the clock was read earlier than
    /// that (by a sibling that took the lock later): an event is never dated
    /// before the one appended ahead of it.
    fn in_order(&mut self, moment: Moment) -> Moment {
        match self.last {
            Some(last) if last.mono > moment.mono => last,
            _ => {
                self.last = Some(moment);
                moment
            }
        }
    }
}

/// When an event happened, on the monotonic clock and in UTC: read and
/// converted before the recorder's lock is taken, so that siblings wait for
/// the append only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    mono: Instant,
    wall: DateTime<Utc>,
}

impl Moment {
    fn at(mono: Instant, clock: &Clock) -> Self {
        Self {
            mono,
            wall: clock.wall_at(mono),
        }
    }
}

impl Recorder {
    pub(crate) fn new(
        run: RunId,
        orchestrator: &str,
        config: &ExecutionConfig,
        ctx: &ExecutionContext,
        names: NodeNames,
        steps_are_nodes: bool,
        time_limit: TimeLimit,
    ) -> Self {
        let durable = ctx.journal().is_durable();
        Self {
            run,
            orchestrator: orchestrator.to_owned(),
            ctx: ctx.clone(),
            open: Mutex::new(OpenAttempts {
                by_node: vec![None; if steps_are_nodes { names.len() } else { 0 }],
                step_nodes: Vec::new(),
                closed: false,
                last: None,
                answered: None,
            }),
            steps_are_nodes,
            names,
            time_limit,
            // A durable journal keeps every attempt, whole: a resumed run
            // reuses what they produced. So does any journal a run can be
            // resumed from (a caller's context's): only the private journal
            // of `orchestrate` keeps texts cut.
            records: config.enable_tracing || durable,
            text_limit: if ctx.keeps_whole_texts() {
                None
            } else {
                config.record_text_limit
            },
        }
    }

    pub(crate) fn run_id(&self) -> RunId {
        self.run
    }

    /// The most bytes of each text the journal keeps of this run.
    pub(crate) fn text_limit(&self) -> Option<usize> {
        self.text_limit
    }

    /// This recorder, for a run nested in a run whose journal keeps at most
    /// `enclosing` bytes of each text: it keeps no more (their records are
    /// one trace, which the run around it returns).
    #[must_use]
    pub(crate) fn nested_within(mut self, enclosing: Option<usize>) -> Self {
        if let Some(enclosing) = enclosing {
            self.text_limit = Some(self.text_limit.map_or(enclosing, |own| own.min(enclosing)));
        }
        self
    }

    fn agent_name(&self, open: &OpenAttempts, step: NodeId) -> &str {
        self.names.get(open.node_of(step))
    }

    fn lock(&self) -> MutexGuard<'_, OpenAttempts> {
        // Only table updates and appends run under the lock.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock, unless the run has closed its books: nothing is written
    /// after the run's last event.
    fn lock_open(&self) -> Option<MutexGuard<'_, OpenAttempts>> {
        let open = self.lock();
        (!open.closed).then_some(open)
    }

    /// The moment `now`, for an event appended soon.
    fn moment(&self, now: Instant) -> Moment {
        Moment::at(now, &self.ctx.clock())
    }

    /// Appends `kind`, dated now; the caller holds the lock.
    fn append(&self, open: &mut OpenAttempts, kind: EventKind) {
        self.append_at(open, self.moment(Instant::now()), kind);
    }

    /// Appends `kind`, dated as the event appended before it (now, if it is
    /// the first): for what follows from that event without taking time of
    /// its own. The caller holds the lock.
    fn append_as_last(&self, open: &mut OpenAttempts, kind: EventKind) {
        match open.last {
            Some(last) => self.append_at(open, last, kind),
            None => self.append(open, kind),
        }
    }

    /// Appends `kind`, dated `moment` (kept in order); the caller holds the lock.
    fn append_at(&self, open: &mut OpenAttempts, moment: Moment, kind: EventKind) {
        let at = open.in_order(moment).wall;
        self.ctx
            .journal()
            .append(JournalEvent::new(self.run, at, kind));
    }

    /// Tells the observer the event `event` makes, if there is an observer
    /// (the event is made only then: its agent's name is read from the
    /// agent). An observer that panics is contained here — the run, its
    /// books and its other events go on as if it had returned — and the
    /// panic is logged.
    fn notify<'e>(&self, event: impl FnOnce() -> RunEvent<'e>) {
        let Some(observer) = self.ctx.observer() else {
            return;
        };
        let event = event();
        let heard = contained(|| observer.on_event(&event));
        #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
        if let Err(panic) = heard {
            log_event!(true, warn, %panic, "a run observer panicked; the run goes on");
        }
    }

    /// The run started on `input`, nested in `parent` if it is.
    pub(crate) fn run_started(
        &self,
        input: &AgentInput,
        parent: Option<ParentAttempt>,
        resumes: Option<RunId>,
        forks: Option<ForkPoint>,
    ) {
        let mut open = self.lock();
        self.append(
            &mut open,
            EventKind::RunStarted {
                orchestrator: self.orchestrator.clone(),
                // The names serve the attempts' records: none without them (and
                // a graph's steps are named as they are added).
                nodes: if self.records && self.steps_are_nodes {
                    self.names.iter().map(str::to_owned).collect()
                } else {
                    Vec::new()
                },
                input: Box::new(capped_input(input, self.text_limit)),
                parent,
                resumes,
                forks,
            },
        );
        self.notify(|| RunEvent::RunStarted {
            run: self.run,
            parent,
            orchestrator: &self.orchestrator,
            agents: self.names.len(),
        });
    }

    /// The run (not nested in another) starts with `answers` to questions:
    /// journaled, so that a run resuming it has them too — but for those
    /// the run it continues `carried` already (its chain has them: a
    /// conversation resumed at every turn journals each answer once).
    pub(crate) fn answers_given(
        &self,
        answers: HashMap<String, String>,
        carried: Option<&HashMap<String, String>>,
    ) {
        let Some(mut open) = self.lock_open() else {
            return;
        };
        let mut given = answers.clone();
        if let Some(carried) = carried {
            given.retain(|id, answer| carried.get(id) != Some(answer));
        }
        open.answered = Some(answers);
        if !given.is_empty() {
            self.append_as_last(&mut open, EventKind::AnswersGiven { answers: given });
        }
    }

    /// A graph run added step `step`, activation `activation` of node
    /// `node` (labelled `label`), in loop iteration `iteration` (and for map
    /// item `item`).
    pub(crate) fn step_added(
        &self,
        step: NodeId,
        node: NodeId,
        label: &str,
        activation: u32,
        iteration: u32,
        item: Option<u32>,
    ) {
        let Some(mut open) = self.lock_open() else {
            return;
        };
        if open.by_node.len() <= step.index() {
            open.by_node.resize(step.index() + 1, None);
            open.step_nodes.resize(step.index() + 1, NodeId(0));
        }
        open.step_nodes[step.index()] = node;
        let agent = self.names.get(node);
        if self.records {
            let kind = EventKind::StepAdded {
                step,
                agent: agent.to_owned(),
                node: label.to_owned(),
                iteration,
                item,
                activation: Some(activation),
            };
            // Steps are added as the event before them (the run's start, a
            // step's end) is handled: they share its moment.
            self.append_as_last(&mut open, kind);
        }
        self.notify(|| RunEvent::StepAdded {
            run: self.run,
            step,
            node: label,
            agent,
            iteration,
            item,
        });
    }

    /// Attempt `attempt` of `node` starts at `now`: returns `false` when
    /// the run has closed its books (the attempt must not run).
    pub(crate) fn attempt_started(
        &self,
        node: NodeId,
        attempt: u32,
        max_attempts: u32,
        now: Instant,
        input: impl FnOnce() -> InputSource,
    ) -> bool {
        // The event is made before the lock is taken (a map item's input is
        // copied for it): siblings on other threads wait for the append only.
        let journaled = self.records.then(|| {
            let kind = EventKind::AttemptStarted {
                node,
                attempt,
                max_attempts,
                input: capped_source(input(), self.text_limit),
            };
            (kind, self.moment(now))
        });
        let Some(mut open) = self.lock_open() else {
            return false;
        };
        if let Some(slot) = open.by_node.get_mut(node.index()) {
            *slot = Some((attempt, now));
        }
        if let Some((kind, moment)) = journaled {
            self.append_at(&mut open, moment, kind);
        }
        self.notify(|| RunEvent::AttemptStarted {
            run: self.run,
            node,
            agent: self.agent_name(&open, node),
            attempt,
            max_attempts,
        });
        true
    }

    /// Whether attempt `attempt` of `node` has started and not ended.
    pub(crate) fn is_open(&self, node: NodeId, attempt: u32) -> bool {
        self.lock()
            .by_node
            .get(node.index())
            .copied()
            .flatten()
            .is_some_and(|(open, _)| open == attempt)
    }

    /// Attempt `attempt` of `node` ended as `end`, unless its end was
    /// already written.
    pub(crate) fn attempt_finished(&self, node: NodeId, attempt: u32, end: AttemptEnd<'_>) {
        // The journal's copy is made before the lock is taken: siblings on
        // other threads wait for the append only.
        let now = Instant::now();
        let journaled = self
            .records
            .then(|| (self.owned_outcome(end), self.moment(now)));
        let mut open = self.lock();
        let Some(slot) = open.by_node.get_mut(node.index()) else {
            return;
        };
        let Some((_, started)) = slot.take_if(|(open, _)| *open == attempt) else {
            return;
        };
        let elapsed = now.saturating_duration_since(started);
        self.write_end(&mut open, node, attempt, elapsed, end, journaled);
    }

    /// What the journal keeps of how an attempt ended.
    fn owned_outcome(&self, end: AttemptEnd<'_>) -> AttemptOutcome {
        match end {
            AttemptEnd::Succeeded(output) => {
                AttemptOutcome::Succeeded(capped_output(output, self.text_limit))
            }
            AttemptEnd::Failed(error) => AttemptOutcome::Failed(journaled_error(error, None)),
            AttemptEnd::Interrupted(why) => AttemptOutcome::Interrupted(why),
        }
    }

    /// Writes an attempt's end after `elapsed` (`journaled` is the
    /// journal's copy of `end` and its moment, when attempts are journaled);
    /// the caller holds the lock.
    fn write_end(
        &self,
        open: &mut OpenAttempts,
        node: NodeId,
        attempt: u32,
        elapsed: Duration,
        end: AttemptEnd<'_>,
        journaled: Option<(AttemptOutcome, Moment)>,
    ) {
        if let Some((outcome, moment)) = journaled {
            self.append_at(
                open,
                moment,
                EventKind::AttemptFinished {
                    node,
                    attempt,
                    outcome,
                    elapsed,
                },
            );
        }
        if self.ctx.observer().is_some() {
            let stand_in;
            let outcome = match end {
                AttemptEnd::Succeeded(output) => Ok(output),
                AttemptEnd::Failed(error) => Err(error),
                AttemptEnd::Interrupted(why) => {
                    stand_in = interruption_error(why, &self.orchestrator, self.time_limit);
                    Err(&stand_in)
                }
            };
            self.notify(|| RunEvent::AttemptFinished {
                run: self.run,
                node,
                agent: self.agent_name(open, node),
                attempt,
                outcome,
                elapsed,
            });
        }
    }

    /// Step `step`'s node decided `decision` about its output (journaled
    /// only: observers hear where the run goes from the steps that start).
    pub(crate) fn step_decided(&self, step: NodeId, decision: StepDecision) {
        if !self.records {
            return;
        }
        let Some(mut open) = self.lock_open() else {
            return;
        };
        // Decided as the step's attempt ended: it shares that moment.
        self.append_as_last(&mut open, EventKind::StepDecided { step, decision });
    }

    /// A retry of `node` is scheduled after `delay`, because of `error`.
    pub(crate) fn retry_scheduled(
        &self,
        node: NodeId,
        next_attempt: u32,
        delay: Duration,
        error: &OrchestrationError,
    ) {
        let Some(mut open) = self.lock_open() else {
            return;
        };
        if self.records {
            let kind = EventKind::RetryScheduled {
                node,
                next_attempt,
                delay,
            };
            self.append(&mut open, kind);
        }
        self.notify(|| RunEvent::RetryScheduled {
            run: self.run,
            node,
            agent: self.agent_name(&open, node),
            next_attempt,
            delay,
            error,
        });
    }

    /// Closes the run's books: every attempt still open ends as `why`, and no
    /// attempt starts or ends after this.
    pub(crate) fn close(&self, why: Interruption) {
        let mut open = self.lock();
        open.closed = true;
        let still_open: Vec<(NodeId, u32, Instant)> = open
            .by_node
            .iter_mut()
            .enumerate()
            .filter_map(|(index, slot)| {
                slot.take()
                    .map(|(attempt, started)| (NodeId::from_index(index), attempt, started))
            })
            .collect();
        let now = Instant::now();
        for (node, attempt, started) in still_open {
            let end = AttemptEnd::Interrupted(why);
            let journaled = self
                .records
                .then(|| (self.owned_outcome(end), self.moment(now)));
            let elapsed = now.saturating_duration_since(started);
            self.write_end(&mut open, node, attempt, elapsed, end, journaled);
        }
    }

    /// The run ended as `outcome`.
    pub(crate) fn run_finished(&self, outcome: RunOutcome) {
        let mut open = self.lock();
        // The journal has the run's end before the observer hears of it, as
        // with every other event: the error is kept for the observer (if
        // there is one) before the outcome goes to the journal.
        let error = match (&outcome, self.ctx.observer()) {
            (RunOutcome::Failed(error), Some(_)) => Some(error.clone()),
            (RunOutcome::Interrupted(why), Some(_)) => Some(interruption_error(
                *why,
                &self.orchestrator,
                self.time_limit,
            )),
            _ => None,
        };
        let outcome = match outcome {
            RunOutcome::Failed(error) => {
                RunOutcome::Failed(journaled_error(&error, open.answered.as_ref()))
            }
            other => other,
        };
        self.append(&mut open, EventKind::RunFinished { outcome });
        self.notify(|| RunEvent::RunFinished {
            run: self.run,
            orchestrator: &self.orchestrator,
            error: error.as_ref(),
        });
    }
}
