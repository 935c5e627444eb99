//! The display as the run's [`RunObserver`]: each event the library reports
//! changes the row it concerns (a map item's event, its map's row) and,
//! without a terminal, becomes a log line.
//!
//! Events arrive on the run's tasks while the ticker draws: every change
//! goes through `Progress::update`, under the lines' lock.

use std::sync::PoisonError;
use std::time::Instant;

use claude_agent_sdk::orchestration::{OrchestrationError, RunEvent, RunObserver, Usage};

use super::line::{failed_items, Seen, State};
use super::Progress;
use crate::traces::{human_duration, human_tokens};

impl RunObserver for Progress {
    fn on_event(&self, event: &RunEvent<'_>) {
        if let RunEvent::AttemptStarted { run, agent, .. }
        | RunEvent::AttemptFinished { run, agent, .. }
        | RunEvent::RetryScheduled { run, agent, .. } = event
        {
            if self.is_wrapped(*run, agent) {
                return;
            }
        }
        match event {
            RunEvent::RunStarted {
                run, parent: None, ..
            } => {
                *self
                    .shared
                    .run
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(*run);
            }
            RunEvent::RunStarted {
                run,
                parent: Some(parent),
                ..
            } => self.run_started(*run, *parent),
            RunEvent::AttemptStarted {
                run,
                node,
                agent,
                attempt,
                max_attempts,
            } => {
                let now = Instant::now();
                let (name, shown, is_item) = self.row_of(*run, *node, agent);
                self.shared.previews.clear(agent);
                let mut is_map = false;
                let mut is_ask = false;
                let updated = self.update(&name, |line| {
                    is_ask = line.ask;
                    // An item's attempt leaves its map running.
                    if !is_item {
                        line.state = State::Running {
                            attempt: *attempt,
                            max: *max_attempts,
                        };
                        line.max = *max_attempts;
                        line.finished = None;
                    }
                    is_map = line.items.is_some() && !is_item;
                    line.first_start.get_or_insert(now);
                    line.steps.entry((*run, *node)).or_insert(Seen {
                        started: now,
                        failed: false,
                        max: *max_attempts,
                    });
                });
                // A map's own step says how many items it runs once it knows.
                if updated.is_some() && is_ask {
                    self.log(&shown, "asking");
                } else if updated.is_some()
                    && !(is_map || self.shared.maps.contains(&name) && !is_item)
                {
                    self.log(
                        &shown,
                        &format!("running (attempt {attempt}/{max_attempts})"),
                    );
                }
            }
            RunEvent::AttemptFinished {
                run,
                node,
                agent,
                attempt,
                outcome,
                elapsed,
            } => {
                let now = Instant::now();
                let (name, shown, is_item) = self.row_of(*run, *node, agent);
                let usage = outcome.ok().and_then(Usage::from_output);
                let is_group =
                    outcome.is_ok_and(|output| output.data.get("agent_outputs").is_some());
                let interrupted = matches!(outcome, Err(OrchestrationError::Cancelled));
                let waiting = matches!(outcome, Err(OrchestrationError::InputRequired(_)));
                let mut items = (0, 0);
                let mut max = 0;
                let is_map = self.shared.maps.contains(&name);
                let updated = self.update(&name, |line| {
                    let step = line.steps.entry((*run, *node)).or_insert(Seen {
                        started: now,
                        failed: false,
                        max: line.max,
                    });
                    step.failed = outcome.is_err() && !interrupted && !waiting;
                    max = step.max;
                    let started = step.started;
                    if let Some(usage) = usage.filter(|_| !is_group) {
                        line.usage += usage;
                    }
                    if is_item {
                        if let (Ok(_), Some(counted)) = (outcome, line.items.as_mut()) {
                            counted.done += 1;
                        }
                        return;
                    }
                    line.finished = Some(now);
                    if outcome.is_ok() && is_map {
                        items = failed_items(line, *run, started);
                    }
                    line.state = match outcome {
                        Ok(_) if items.0 > 0 => State::Failed,
                        Ok(_) => State::Done,
                        Err(_) if interrupted => State::Interrupted,
                        Err(_) if waiting => State::Paused,
                        Err(_) => State::Failed,
                    };
                });
                let Some(line) = updated else { return };
                match outcome {
                    Ok(_) => {
                        let tokens = if line.usage.total_tokens() > 0 && !is_item {
                            format!(", {}", human_tokens(&line.usage))
                        } else {
                            usage
                                .filter(|usage| usage.total_tokens() > 0)
                                .map_or_else(String::new, |usage| {
                                    format!(", {}", human_tokens(&usage))
                                })
                        };
                        let (failed, of) = items;
                        let done = if failed > 0 {
                            // A map whose join accepted failed items: failed,
                            // as a parallel group's failed step is.
                            format!(
                                "failed: {failed} of {of} items failed (its join accepted the \
                                 others' results) in {}{tokens}",
                                human_duration(*elapsed)
                            )
                        } else if line.ask {
                            "answered".to_owned()
                        } else if of > 0 {
                            let items = if of == 1 { "item" } else { "items" };
                            format!(
                                "done in {} ({of} {items}){tokens}",
                                human_duration(*elapsed)
                            )
                        } else {
                            format!("done in {}{tokens}", human_duration(*elapsed))
                        };
                        self.log(&shown, &done);
                    }
                    Err(_) if interrupted => {
                        self.log(&shown, "interrupted: the run was cancelled");
                    }
                    Err(_) if waiting => {
                        self.log(&shown, "waiting for an answer");
                    }
                    Err(error) => {
                        let retryable = error.is_retryable();
                        let error = error.to_string();
                        let of = if max > 0 {
                            format!("/{max}")
                        } else {
                            String::new()
                        };
                        if retryable {
                            self.log(&shown, &format!("attempt {attempt}{of} failed: {error}"));
                        } else {
                            // "1/4" would promise retries that will not come.
                            self.log(
                                &shown,
                                &format!("failed (not retried: the failure is permanent): {error}"),
                            );
                        }
                    }
                }
            }
            RunEvent::RetryScheduled {
                run,
                node,
                agent,
                next_attempt,
                delay,
                ..
            } => {
                let item = self.item(*run, *node);
                let (name, shown) =
                    item.unwrap_or_else(|| ((*agent).to_owned(), (*agent).to_owned()));
                let is_item = name != shown;
                let mut max = 0;
                let updated = self.update(&name, |line| {
                    max = line
                        .steps
                        .get(&(*run, *node))
                        .map_or(line.max, |seen| seen.max);
                    if !is_item {
                        line.state = State::Retrying {
                            next: *next_attempt,
                            max,
                        };
                        line.finished = None;
                    }
                });
                if updated.is_some() {
                    self.log(
                        &shown,
                        &format!(
                            "retrying in {} (attempt {next_attempt}/{max})",
                            human_duration(*delay)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}
