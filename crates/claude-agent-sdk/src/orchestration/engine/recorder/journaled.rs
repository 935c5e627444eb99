//! What the journal keeps of a run: its texts cut to the run's limit, and a
//! pause's error without the copies it carries.
//!
//! An observer hears each event whole, once, as it happens; the journal keeps
//! it for as long as the journal lives and hands it to every reader of the
//! run's trace. So the recorder gives the journal its own copy, made smaller
//! where that loses nothing a reader or a resume needs: the texts of inputs
//! and outputs cut to the run's text limit, when it has one (a journal a run
//! can be resumed from keeps them whole), and a pause without what the
//! journal holds already. These copies are made from the run's values and
//! never change them.

use std::collections::HashMap;

use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::journal::InputSource;
use crate::orchestration::trace::cut;

/// `input`, its texts cut to `limit` bytes when there is a limit.
pub(super) fn capped_input(input: &AgentInput, limit: Option<usize>) -> AgentInput {
    match limit {
        Some(limit) => cut::capped_input(input, limit),
        None => input.clone(),
    }
}

/// `source`, with the texts of an input given in full cut as the run's
/// input is (a join's gathered outputs, a map's item).
pub(super) fn capped_source(source: InputSource, limit: Option<usize>) -> InputSource {
    match (source, limit) {
        (InputSource::Given(mut input), Some(limit)) => {
            cut::cap_input(&mut input, limit);
            InputSource::Given(input)
        }
        (other, _) => other,
    }
}

/// `output`, its texts cut to `limit` bytes when there is a limit.
pub(super) fn capped_output(output: &AgentOutput, limit: Option<usize>) -> AgentOutput {
    match limit {
        Some(limit) => cut::capped_output(output, limit),
        None => output.clone(),
    }
}

/// `error` as the journal keeps it. A pause carries, for a resume in
/// memory, copies of what the journal holds once already in events of its
/// own — the outputs of the finished steps (their attempts' ends), the
/// shared state (its changes) and the answers given before the run started
/// (`answered`; `None`: no resume reads answers from this event) — and
/// each level of graphs a question passes through adds its own copies: kept
/// whole, a run paused at every turn, or deep in nested graphs, would store
/// its history again with each pause. The journal keeps the questions and
/// the answers given since.
pub(super) fn journaled_error(
    error: &OrchestrationError,
    answered: Option<&HashMap<String, String>>,
) -> OrchestrationError {
    let mut error = error.clone();
    if let Some(pause) = error.pause_mut() {
        pause.finished = Vec::new();
        pause.state = HashMap::new();
        match answered {
            Some(answered) => pause
                .answers
                .retain(|id, answer| answered.get(id) != Some(answer)),
            None => pause.answers = HashMap::new(),
        }
    }
    error
}
