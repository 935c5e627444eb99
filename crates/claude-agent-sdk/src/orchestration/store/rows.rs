//! Events as rows: what one batch of events writes, for any store.
//!
//! The writer turns the events it takes into a [`Batch`] — the event rows,
//! the runs that started, the runs that ended, and what each top-level run's
//! totals grew by — and a store writes the batch in one transaction.

use std::collections::{HashMap, HashSet};

use super::columns::micros;
use super::{RunStatus, StoreOptions};
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::journal::{
    AttemptOutcome, EventKind, JournalEvent, ParentAttempt, RunId, RunOutcome,
};
use crate::orchestration::usage::Usage;

/// One event, as stored.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub(crate) root: String,
    pub(crate) run: String,
    pub(crate) at_us: i64,
    pub(crate) kind: &'static str,
    pub(crate) body: String,
}

/// A run that started.
#[derive(Debug, Clone)]
pub(crate) struct NewRun {
    pub(crate) id: String,
    pub(crate) root: String,
    pub(crate) origin: String,
    pub(crate) parent: Option<String>,
    pub(crate) resumes: Option<String>,
    /// The run it forks, when it is a fork.
    pub(crate) forks: Option<String>,
    pub(crate) orchestrator: String,
    pub(crate) label: Option<String>,
    pub(crate) started_us: i64,
    pub(crate) host: String,
    pub(crate) pid: i64,
}

/// A run that ended.
#[derive(Debug, Clone)]
pub(crate) struct RunEnd {
    pub(crate) id: String,
    pub(crate) status: &'static str,
    pub(crate) finished_us: i64,
}

/// What a top-level run's totals grew by: never below zero, and sums that
/// stop at the largest value instead of overflowing (the store's own sums,
/// [`ADD_TOTALS`](super::sql::ADD_TOTALS), rely on both).
#[derive(Debug, Clone, Default)]
pub(crate) struct Totals {
    pub(crate) events: i64,
    pub(crate) tokens: i64,
    pub(crate) cost_usd: f64,
}

impl Totals {
    /// Counts an attempt's `usage`: its input and output tokens, and its
    /// cost when that is a finite amount of at least zero (an agent's
    /// report is not checked: a negative or non-numeric cost is no spending
    /// to add up).
    fn add_usage(&mut self, usage: &Usage) {
        let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
        self.tokens = self
            .tokens
            .saturating_add(i64::try_from(tokens).unwrap_or(i64::MAX));
        if let Some(cost) = usage
            .cost_usd
            .filter(|cost| cost.is_finite() && *cost > 0.0)
        {
            // Two finite costs can add up to infinity: stop at the largest.
            self.cost_usd = (self.cost_usd + cost).min(f64::MAX);
        }
    }
}

/// What one transaction writes.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) runs: Vec<NewRun>,
    pub(crate) events: Vec<EventRow>,
    pub(crate) ends: Vec<RunEnd>,
    pub(crate) totals: HashMap<String, Totals>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The bytes of its events' bodies.
    pub(crate) fn bytes(&self) -> usize {
        self.events.iter().map(|event| event.body.len()).sum()
    }
}

/// Turns events into rows: knows the top-level run and the chain origin of
/// every run it has seen, and the secrets to redact.
#[derive(Debug)]
pub(crate) struct Encoder {
    /// The label of the top-level runs, redacted.
    label: Option<String>,
    /// Each secret and what replaces it; longest first, so a secret
    /// containing another goes whole.
    secrets: Vec<(String, String)>,
    /// The JSON-escaped form of each secret: what a body holding it holds.
    escaped: Vec<String>,
    roots: HashMap<RunId, RunId>,
    origins: HashMap<RunId, RunId>,
    /// The attempts that ran a nested run: their output's usage is the
    /// nested run's, which the nested run's own attempts count.
    hosts: HashSet<ParentAttempt>,
    host: String,
    pid: i64,
}

impl Encoder {
    pub(crate) fn new(options: StoreOptions) -> Self {
        let mut secrets = options.secrets;
        secrets.sort_by_key(|(secret, _)| std::cmp::Reverse(secret.len()));
        let escaped = secrets
            .iter()
            .filter_map(|(secret, _)| {
                let quoted = serde_json::to_string(secret).ok()?;
                Some(quoted[1..quoted.len() - 1].to_owned())
            })
            .collect();
        let label = options.label.map(|label| redact_text(label, &secrets));
        Self {
            label,
            secrets,
            escaped,
            roots: HashMap::new(),
            origins: HashMap::new(),
            hosts: HashSet::new(),
            host: super::owner::host_name(),
            pid: i64::from(std::process::id()),
        }
    }

    /// Notes that run `by` continues run `run` (whose chain starts at `origin`).
    pub(crate) fn resumed(&mut self, by: RunId, origin: RunId) {
        self.origins.insert(by, origin);
    }

    /// Adds `event` to `batch`.
    pub(crate) fn encode(&mut self, event: &JournalEvent, batch: &mut Batch) {
        let run = event.run;
        if let EventKind::RunStarted {
            orchestrator,
            parent,
            resumes,
            forks,
            ..
        } = &event.kind
        {
            let root = parent.map(|parent| self.root_of(parent.run)).unwrap_or(run);
            self.roots.insert(run, root);
            if let Some(parent) = parent {
                self.hosts.insert(*parent);
            }
            let origin = match resumes {
                Some(previous) => self.origins.remove(&run).unwrap_or(*previous),
                None => run,
            };
            batch.runs.push(NewRun {
                id: run.to_string(),
                root: root.to_string(),
                origin: origin.to_string(),
                parent: parent.map(|parent| parent.run.to_string()),
                resumes: resumes.map(|previous| previous.to_string()),
                forks: forks.as_ref().map(|fork| fork.run.to_string()),
                orchestrator: self.redact(orchestrator.clone()),
                label: if parent.is_none() {
                    self.label.clone()
                } else {
                    None
                },
                started_us: micros(event.at),
                host: self.host.clone(),
                pid: self.pid,
            });
        }
        let root = self.root_of(run);
        let totals = batch.totals.entry(root.to_string()).or_default();
        totals.events += 1;
        match &event.kind {
            EventKind::AttemptFinished {
                node,
                attempt,
                outcome,
                ..
            } => {
                let attempt = ParentAttempt {
                    run,
                    node: *node,
                    attempt: *attempt,
                };
                let ran_nested = self.hosts.remove(&attempt);
                let usage = match outcome {
                    AttemptOutcome::Succeeded(output) if !ran_nested => Usage::from_output(output),
                    _ => None,
                };
                if let Some(usage) = usage {
                    totals.add_usage(&usage);
                }
            }
            EventKind::RunFinished { outcome } => batch.ends.push(RunEnd {
                id: run.to_string(),
                status: status_of(outcome).as_str(),
                finished_us: micros(event.at),
            }),
            _ => {}
        }
        batch.events.push(EventRow {
            root: root.to_string(),
            run: run.to_string(),
            at_us: micros(event.at),
            kind: kind_name(&event.kind),
            body: self.body(&event.kind),
        });
        // Nothing of a run follows its end, and the runs nested in it
        // ended first: what is known of it is not needed again (a journal
        // open for as long as its process lives keeps only its running runs).
        if let EventKind::RunFinished { .. } = &event.kind {
            self.roots.remove(&run);
            self.origins.remove(&run);
        }
    }

    fn root_of(&self, run: RunId) -> RunId {
        self.roots.get(&run).copied().unwrap_or(run)
    }

    /// The event as stored: its JSON, with the secrets redacted.
    ///
    /// Secrets are replaced in the JSON's strings (values, and the keys of
    /// maps), never in its text: a secret that reads like JSON (`null`,
    /// `true`, digits) or like part of a field's name would otherwise turn
    /// the body into text no version can read back. Bodies whose text
    /// holds no secret are stored as serialized.
    fn body(&self, kind: &EventKind) -> String {
        let text = serde_json::to_string(kind).unwrap_or_else(|error| unreadable(&error));
        let holds_secret = self
            .escaped
            .iter()
            .any(|secret| text.contains(secret.as_str()));
        if !holds_secret {
            return text;
        }
        let Ok(mut value) = serde_json::to_value(kind) else {
            return text;
        };
        let renamed_keys = redact_strings(&mut value, &self.secrets, true);
        if renamed_keys && serde_json::from_value::<EventKind>(value.clone()).is_err() {
            // A secret inside a field's own name: keep the names.
            value = serde_json::to_value(kind).unwrap_or_default();
            redact_strings(&mut value, &self.secrets, false);
        }
        serde_json::to_string(&value).unwrap_or_else(|error| unreadable(&error))
    }

    /// `text` (not JSON: a name, a label) with the secrets redacted.
    fn redact(&self, text: String) -> String {
        redact_text(text, &self.secrets)
    }
}

/// The body of an event that cannot be serialized.
fn unreadable(error: &serde_json::Error) -> String {
    format!(
        "{{\"event\":\"unreadable\",\"error\":{:?}}}",
        error.to_string()
    )
}

/// `text` with every secret of `secrets` (longest first) replaced.
fn redact_text(mut text: String, secrets: &[(String, String)]) -> String {
    for (secret, replacement) in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), replacement);
        }
    }
    text
}

/// Redacts every string in `value` (and, when `keys`, every map key) in
/// place, without recursing (an output's metadata may nest deeply);
/// returns whether a key changed.
fn redact_strings(value: &mut serde_json::Value, secrets: &[(String, String)], keys: bool) -> bool {
    use serde_json::Value;
    let mut renamed = false;
    let mut pending: Vec<&mut Value> = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => {
                if secrets
                    .iter()
                    .any(|(secret, _)| text.contains(secret.as_str()))
                {
                    *text = redact_text(std::mem::take(text), secrets);
                }
            }
            Value::Array(items) => pending.extend(items.iter_mut()),
            Value::Object(map) => {
                let leaks = |key: &String| {
                    secrets
                        .iter()
                        .any(|(secret, _)| key.contains(secret.as_str()))
                };
                if keys && map.keys().any(leaks) {
                    renamed = true;
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(key, value)| (redact_text(key, secrets), value))
                        .collect();
                }
                pending.extend(map.values_mut());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    renamed
}

/// How a run that ended with `outcome` stands.
fn status_of(outcome: &RunOutcome) -> RunStatus {
    match outcome {
        RunOutcome::Succeeded => RunStatus::Succeeded,
        RunOutcome::Failed(OrchestrationError::InputRequired(_)) => RunStatus::Paused,
        RunOutcome::Failed(_) => RunStatus::Failed,
        RunOutcome::Interrupted(_) => RunStatus::Interrupted,
    }
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::RunStarted { .. } => "run_started",
        EventKind::StepAdded { .. } => "step_added",
        EventKind::AttemptStarted { .. } => "attempt_started",
        EventKind::AttemptFinished { .. } => "attempt_finished",
        EventKind::RetryScheduled { .. } => "retry_scheduled",
        EventKind::StateChanged { .. } => "state_changed",
        EventKind::StepDecided { .. } => "step_decided",
        EventKind::AnswersGiven { .. } => "answers_given",
        EventKind::RunFinished { .. } => "run_finished",
    }
}

/// Reads a stored event back.
pub(crate) fn decode(
    run: &str,
    at_us: i64,
    body: &str,
) -> Result<JournalEvent, OrchestrationError> {
    let kind: EventKind = serde_json::from_str(body).map_err(|error| {
        OrchestrationError::store(
            format!("an event of run {run} cannot be read ({error}); the store is damaged"),
            false,
        )
    })?;
    Ok(JournalEvent::new(
        super::columns::run_id(run),
        super::columns::from_micros(at_us),
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(run: RunId, kind: EventKind) -> JournalEvent {
        JournalEvent::new(run, chrono::Utc::now(), kind)
    }

    fn started(run: RunId, parent: Option<RunId>, resumes: Option<RunId>) -> JournalEvent {
        event(
            run,
            EventKind::RunStarted {
                orchestrator: "o".into(),
                nodes: Vec::new(),
                input: Box::new(crate::orchestration::AgentInput::new("x")),
                parent: parent.map(|run| ParentAttempt {
                    run,
                    node: crate::orchestration::NodeId(0),
                    attempt: 1,
                }),
                resumes,
                forks: None,
            },
        )
    }

    fn finished(run: RunId) -> JournalEvent {
        event(
            run,
            EventKind::RunFinished {
                outcome: RunOutcome::Succeeded,
            },
        )
    }

    #[test]
    fn the_encoder_forgets_the_runs_that_finished() {
        let mut encoder = Encoder::new(StoreOptions::new());
        let mut batch = Batch::default();
        let mut previous = None;
        for _ in 0..1_000 {
            let (top, nested) = (RunId::new(), RunId::new());
            if let Some(previous) = previous {
                encoder.resumed(top, previous);
            }
            encoder.encode(&started(top, None, previous), &mut batch);
            encoder.encode(&started(nested, Some(top), None), &mut batch);
            encoder.encode(&finished(nested), &mut batch);
            encoder.encode(&finished(top), &mut batch);
            previous = Some(top);
        }
        // Every nested run's events went under its top-level run.
        assert!(batch.events.chunks(4).all(|run| run[1].root == run[0].run));
        assert!(batch.events.chunks(4).all(|run| run[2].root == run[0].run));
        assert_eq!((encoder.roots.len(), encoder.origins.len()), (0, 0));
    }

    #[test]
    fn totals_saturate_instead_of_overflowing() {
        let huge = Usage::new(5_000_000_000_000_000_000, 0).with_cost_usd(1e308);
        let mut totals = Totals::default();
        totals.add_usage(&huge);
        totals.add_usage(&huge);
        assert_eq!(totals.tokens, i64::MAX);
        assert_eq!(totals.cost_usd, f64::MAX);
        assert!(totals.cost_usd.is_finite());
        // A report beyond any count is the largest count too.
        let mut totals = Totals::default();
        totals.add_usage(&Usage::new(u64::MAX, u64::MAX));
        assert_eq!(totals.tokens, i64::MAX);
    }

    #[test]
    fn costs_that_are_no_amount_are_not_counted() {
        let mut totals = Totals::default();
        for cost in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -3.0] {
            totals.add_usage(&Usage::new(1, 1).with_cost_usd(cost));
        }
        totals.add_usage(&Usage::new(1, 1).with_cost_usd(0.25));
        assert_eq!((totals.tokens, totals.cost_usd), (10, 0.25));
    }
}
