//! The context's shared state: what agents write for each other, with
//! reducers for concurrent writers (set, append, merge, remove, update), and
//! the journal of those changes that a resumed run replays.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;

use super::{ExecutionContext, State};
use crate::orchestration::journal::{EventKind, JournalEvent, RunId, StateChange};

impl ExecutionContext {
    /// Stores `value` under `key`, replacing any previous value.
    pub async fn set_state(&self, key: impl Into<String>, value: serde_json::Value) {
        self.change_state(key.into(), StateChange::Set(value));
    }

    /// The value stored under `key`.
    pub async fn get_state(&self, key: &str) -> Option<serde_json::Value> {
        self.read_state().get(key).cloned()
    }

    /// Appends `value` to the JSON array under `key` (made when missing; a
    /// value that is not an array becomes the array's first element), in one
    /// step: the reducer for parallel branches that each add to a list.
    ///
    /// ```
    /// # use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let ctx = ExecutionContext::new(ExecutionConfig::new());
    /// ctx.append_state("findings", serde_json::json!("a")).await;
    /// ctx.append_state("findings", serde_json::json!("b")).await;
    /// assert_eq!(ctx.get_state("findings").await, Some(serde_json::json!(["a", "b"])));
    /// # });
    /// ```
    pub async fn append_state(&self, key: &str, value: serde_json::Value) {
        self.change_state(key.to_owned(), StateChange::Append(value));
    }

    /// Merges the fields of JSON object `fields` into the object under `key`
    /// (made when missing; a value that is not an object is replaced), in one
    /// step: the reducer for parallel branches that each fill in their own
    /// fields. A field both set is the last writer's. `fields` that are not
    /// an object replace the value under `key`, as
    /// [`set_state`](ExecutionContext::set_state) would.
    ///
    /// ```
    /// # use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let ctx = ExecutionContext::new(ExecutionConfig::new());
    /// ctx.merge_state("report", serde_json::json!({"tech": "ok"})).await;
    /// ctx.merge_state("report", serde_json::json!({"legal": "ok"})).await;
    /// assert_eq!(
    ///     ctx.get_state("report").await,
    ///     Some(serde_json::json!({"tech": "ok", "legal": "ok"}))
    /// );
    /// # });
    /// ```
    pub async fn merge_state(&self, key: &str, fields: serde_json::Value) {
        self.change_state(key.to_owned(), StateChange::Merge(fields));
    }

    /// Applies `change` to `key` and, inside an attempt, journals it for
    /// the run (a resumed run replays the changes of finished attempts).
    fn change_state(&self, key: String, change: StateChange) {
        let mut state = self.write_state();
        self.journal_change(&key, || change.clone());
        apply_change(&mut state, key, change);
    }

    /// Journals the change `change` makes, when the code runs in an attempt
    /// (called with the state's lock held, so the journal's order is the
    /// state's).
    fn journal_change(&self, key: &str, change: impl FnOnce() -> StateChange) {
        if let Some(scope) = crate::orchestration::scope::current() {
            self.inner.journal.append(JournalEvent::new(
                scope.attempt.run,
                self.inner.clock.now(),
                EventKind::StateChanged {
                    node: scope.attempt.node,
                    attempt: scope.attempt.attempt,
                    key: key.to_owned(),
                    change: change(),
                },
            ));
        }
    }

    /// Removes the keys `reset`, then applies `changes` without journaling
    /// them (what a resumed or forked run replays), in one step. The
    /// caller leaves out the changes the state holds already (see
    /// [`holds_changes_of`](Self::holds_changes_of)).
    pub(crate) fn replay_state(
        &self,
        reset: &HashSet<String>,
        changes: impl IntoIterator<Item = (String, StateChange)>,
    ) {
        let mut state = self.write_state();
        state.retain(|key, _| !reset.contains(key));
        for (key, change) in changes {
            apply_change(&mut state, key, change);
        }
    }

    /// Notes that the state holds the changes of `runs` (runs not nested
    /// in another): made under a handle sharing it, or replayed into it.
    pub(crate) fn hold_changes_of(&self, runs: impl IntoIterator<Item = RunId>) {
        self.lock_state_runs().extend(runs);
    }

    /// Whether the state holds the changes of run `run` (see
    /// [`hold_changes_of`](Self::hold_changes_of)): a resumed run does not
    /// replay them again.
    pub(crate) fn holds_changes_of(&self, run: RunId) -> bool {
        self.lock_state_runs().contains(&run)
    }

    fn lock_state_runs(&self) -> std::sync::MutexGuard<'_, HashSet<RunId>> {
        // Only inserts and lookups happen under this lock.
        self.inner
            .state_runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes and returns the value stored under `key`.
    pub async fn remove_state(&self, key: &str) -> Option<serde_json::Value> {
        let mut state = self.write_state();
        self.journal_change(key, || StateChange::Remove);
        state.remove(key)
    }

    /// Reads and changes the value under `key` in one step, so concurrent agents
    /// never lose each other's updates (a counter, a list being appended to).
    /// `update` runs under the state's lock: keep it short. If it panics, the
    /// panic goes on to the caller and the key keeps the value `update` left
    /// in the slot (the one it was given, unless it changed it first) — in
    /// the journal too.
    ///
    /// ```
    /// # use claude_agent_sdk::orchestration::context::{ExecutionConfig, ExecutionContext};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let ctx = ExecutionContext::new(ExecutionConfig::new());
    /// for _ in 0..3 {
    ///     ctx.update_state("visits", |slot| {
    ///         let n = slot.as_ref().and_then(|v| v.as_u64()).unwrap_or(0);
    ///         *slot = Some(serde_json::json!(n + 1));
    ///     }).await;
    /// }
    /// assert_eq!(ctx.get_state("visits").await, Some(serde_json::json!(3)));
    /// # });
    /// ```
    pub async fn update_state<R>(
        &self,
        key: &str,
        update: impl FnOnce(&mut Option<serde_json::Value>) -> R,
    ) -> R {
        let mut state = self.write_state();
        let mut slot = state.remove(key);
        // An update that panics leaves the value in place (as far as it
        // got before panicking), not taken from every other writer.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| update(&mut slot)));
        // Journaled as the value it made — or, when it panicked, left: a
        // resumed run replays what this context holds.
        self.journal_change(key, || match &slot {
            Some(value) => StateChange::Set(value.clone()),
            None => StateChange::Remove,
        });
        if let Some(value) = slot {
            state.insert(key.to_owned(), value);
        }
        drop(state);
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// A copy of the whole state.
    pub async fn state_snapshot(&self) -> HashMap<String, serde_json::Value> {
        self.read_state().clone()
    }
}

/// Applies `change` to `key` of `state`: the one place the state reducers live.
fn apply_change(state: &mut State, key: String, change: StateChange) {
    use serde_json::Value;
    match change {
        StateChange::Set(value) => {
            state.insert(key, value);
        }
        StateChange::Remove => {
            state.remove(&key);
        }
        StateChange::Append(value) => {
            let slot = state.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            match slot {
                Value::Array(items) => items.push(value),
                other => *other = Value::Array(vec![other.take(), value]),
            }
        }
        StateChange::Merge(fields) => {
            let slot = state
                .entry(key)
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(serde_json::Map::new());
            }
            match (slot, fields) {
                (Value::Object(into), Value::Object(from)) => into.extend(from),
                (slot, other) => *slot = other,
            }
        }
    }
}
