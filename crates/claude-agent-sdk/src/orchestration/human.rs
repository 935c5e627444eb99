//! Human input: an agent asks a person a question, the run pauses, and a
//! resumed run continues where it stopped.
//!
//! Inside `execute`, an agent asks through its context:
//! `ExecutionContext::current()` then
//! [`ask`](crate::orchestration::ExecutionContext::ask)`("approve", "Spend $50?")?`.
//! When the context holds an answer to that question, `ask` returns it;
//! otherwise it returns [`OrchestrationError::InputRequired`], which the
//! agent passes on with `?`. The run then *pauses*: the agents already
//! running finish, nothing new starts but the question nodes ready then
//! (they do no work: every question ready at once is asked at once), and
//! the orchestrate call fails with `InputRequired` carrying a [`Pause`] —
//! the questions asked, and every step that finished with its output. A
//! pipeline or fan-out nested in a step passes on all its agents'
//! questions (whatever its join policy: a question is not a failure to
//! tolerate). A cancel, a timeout or a crossed budget during the pause
//! ends the run with that error instead. Resuming
//! ([`GraphOrchestrator::resume`](crate::orchestration::GraphOrchestrator::resume))
//! with the answers runs the graph again without running any finished step
//! (their outputs are reused — inside subgraphs too: a question asked in a
//! subgraph pauses the graph around it, and the pause keeps the subgraph's
//! finished steps, [`FinishedStep::within`] naming where they ran), and the
//! step that asked runs again and gets
//! its answer from `ask` — work it wants to keep across the pause, it keeps
//! in the run's shared state, which the pause carries to the resumed run.
//! A [`Pause`] is plain data (it serializes), so it can wait for its answers
//! as long as the process keeps it.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::orchestration::agent::AgentOutput;
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::journal::{EventKind, Journal, RunId, RunOutcome, StepDecision};

/// A question for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Question {
    /// The question's id: the answer is given under it.
    pub id: String,
    /// What is asked.
    pub text: String,
    /// The graph node whose agent asked, once the run knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Question {
    /// Question `id`, asking `text`.
    #[must_use]
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            node: None,
        }
    }

    /// The id a question node `ask` asks under on pass `pass` of a loop
    /// around it: `ask` on the first, `ask#n` on pass *n* > 1, so that an
    /// answer given for one pass is never taken for the next.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::Question;
    /// assert_eq!(Question::id_on_pass("review", 1), "review");
    /// assert_eq!(Question::id_on_pass("review", 2), "review#2");
    /// assert_eq!(Question::ask_of("review#2"), "review");
    /// assert_eq!(Question::ask_of("review#x"), "review#x");
    /// ```
    #[must_use]
    pub fn id_on_pass(ask: &str, pass: u32) -> String {
        Self::id_on_passes(ask, &[pass])
    }

    /// The id a question node `ask` asks under when it sits in subgraphs:
    /// `passes` are the activations of the steps it is nested in, outermost
    /// first, then its own (each step's [`FinishedStep::activation`]: its
    /// pass of its loop — or for a map's item, its step among the map's,
    /// where the map's own step is counted first, so the first item of a
    /// map's first run is 2). The leading first passes are left out, so a
    /// question node that is not nested asks as [`id_on_pass`](Self::id_on_pass)
    /// says; the rest are joined by dots (`review#2.1`: outer pass 2, inner
    /// pass 1; and a question node in a subgraph that a map runs per item
    /// asks `review#2.1`, `review#3.1`, … for items 1, 2, …). The ids to
    /// answer are those of the pause's [`questions`](Pause::questions).
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::Question;
    /// assert_eq!(Question::id_on_passes("review", &[1, 1]), "review");
    /// assert_eq!(Question::id_on_passes("review", &[1, 3]), "review#3");
    /// assert_eq!(Question::id_on_passes("review", &[2, 1]), "review#2.1");
    /// assert_eq!(Question::ask_of("review#2.1"), "review");
    /// ```
    #[must_use]
    pub fn id_on_passes(ask: &str, passes: &[u32]) -> String {
        let first_other = passes.iter().position(|&pass| pass > 1);
        let Some(first_other) = first_other else {
            return ask.to_owned();
        };
        let passes: Vec<String> = passes[first_other..].iter().map(u32::to_string).collect();
        format!("{ask}#{}", passes.join("."))
    }

    /// The questions run `run` paused on, read from `journal` — any
    /// journal: the in-memory one of a context, or a store another process
    /// wrote — without resuming it: what a page that lists the runs waiting
    /// for a person shows next to each. Empty when the run did not pause
    /// (it succeeded, failed, was cut short, or has not ended). Whether
    /// another run has continued it since is the store's
    /// `RunSummary::resumed_by`; to answer, give the answers to a context
    /// (`ctx.answer(id, text)`) and [`resume`](crate::orchestration::resume())
    /// the run under it.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{
    ///     ExecutionConfig, ExecutionContext, GraphOrchestrator, OrchestrationError, Orchestrator,
    ///     OrchestratorInput, Question, END, START,
    /// };
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let graph = GraphOrchestrator::new("approval")
    ///     .add_ask("approve", "Spend $50?")
    ///     .add_edge(START, "approve")
    ///     .add_edge("approve", END);
    /// let ctx = ExecutionContext::new(ExecutionConfig::default());
    /// let Err(OrchestrationError::InputRequired(pause)) = graph
    ///     .orchestrate_with_context(vec![], OrchestratorInput::new("order 42"), &ctx)
    ///     .await
    /// else {
    ///     panic!("the run asks first")
    /// };
    /// let run = pause.run.unwrap();
    ///
    /// let waiting = Question::waiting_in(ctx.journal().as_ref(), run).await.unwrap();
    /// assert_eq!(waiting.len(), 1);
    /// assert_eq!(waiting[0].id, "approve");
    /// assert!(waiting[0].text.starts_with("Spend $50?")); // then the node's input
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`OrchestrationError::Store`] when the journal cannot be read.
    pub async fn waiting_in(
        journal: &(impl Journal + ?Sized),
        run: RunId,
    ) -> crate::orchestration::Result<Vec<Self>> {
        let events = journal.read_checked(&[run]).await?;
        let finished = events.into_iter().rev().find_map(|event| match event.kind {
            EventKind::RunFinished { outcome } if event.run == run => Some(outcome),
            _ => None,
        });
        Ok(match finished {
            Some(RunOutcome::Failed(error)) => match error.root_cause() {
                OrchestrationError::InputRequired(pause) => pause.questions.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
    }

    /// The question node a question id belongs to: the inverse of
    /// [`id_on_passes`](Self::id_on_passes) (`review#2` → `review`; an id
    /// without pass numbers is its own).
    #[must_use]
    pub fn ask_of(id: &str) -> &str {
        match id.rsplit_once('#') {
            Some((ask, passes))
                if passes
                    .split('.')
                    .all(|pass| !pass.is_empty() && pass.bytes().all(|b| b.is_ascii_digit())) =>
            {
                ask
            }
            _ => id,
        }
    }
}

/// A step that finished before a run paused: resuming reuses its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FinishedStep {
    /// The graph node — for a step of a pipeline or fan-out nested in a
    /// step (handed back by a resume), its agent's name.
    pub node: String,
    /// Which of the node's steps, counted as the run made them (1 for its
    /// first run, 2 for its second loop pass, …). A map node's own step —
    /// the one that splits its input — counts too: on the map's first run
    /// it is 1 and its items are 2, 3, … For a pipeline's or fan-out's
    /// step, which of the agents with that name it is.
    pub activation: u32,
    /// What it produced.
    pub output: AgentOutput,
    /// The steps of subgraph nodes it ran inside, outermost first (empty: a
    /// step of the paused graph itself). Resuming hands a subgraph's steps
    /// to the run nested in that same step — the same node and activation,
    /// so each loop pass or map item gets back its own — which reuses them
    /// in turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub within: Vec<EnclosingStep>,
    /// What its node's router or loop condition decided about its output
    /// (`None` for a node that decides nothing): resuming takes the same
    /// way again rather than deciding anew on the state as it is by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<StepDecision>,
}

impl FinishedStep {
    /// Step `activation` of graph node `node`, which produced `output`.
    #[must_use]
    pub fn new(node: impl Into<String>, activation: u32, output: AgentOutput) -> Self {
        Self {
            node: node.into(),
            activation,
            output,
            within: Vec::new(),
            decision: None,
        }
    }
}

/// A step of a subgraph node that a [`FinishedStep`] ran inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnclosingStep {
    /// The subgraph node (a pipeline's or fan-out's step: its agent's name,
    /// as in [`FinishedStep::node`]).
    pub node: String,
    /// Which of the node's steps (a pipeline's or fan-out's: which of the
    /// agents with that name).
    pub activation: u32,
}

impl EnclosingStep {
    /// Step `activation` of subgraph node `node`.
    #[must_use]
    pub fn new(node: impl Into<String>, activation: u32) -> Self {
        Self {
            node: node.into(),
            activation,
        }
    }
}

/// A paused run: the questions waiting for answers, and what the run needs
/// to continue (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pause {
    /// The questions asked, in the order the run heard them.
    pub questions: Vec<Question>,
    /// The steps that finished, with their outputs.
    pub finished: Vec<FinishedStep>,
    /// The answers the run already had (they carry over to the resumed run).
    #[serde(default)]
    pub answers: HashMap<String, String>,
    /// The run's input, which the resumed run starts from again.
    #[serde(default)]
    pub input: Option<crate::orchestration::OrchestratorInput>,
    /// The context's shared state when the run paused: a resumed run starts
    /// with it, so work an agent kept there carries over — set over what
    /// a fresh context was given before the resume; a context that holds
    /// the run's state already (the run paused under it) keeps what it has. (Where the finished steps' outputs went is
    /// kept with them, [`FinishedStep::decision`]: routers and loop
    /// conditions are not asked again on the state as it is by then.)
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub state: HashMap<String, serde_json::Value>,
    /// The run that paused (every pause a run returns names it; `None` only
    /// in a pause made by [`asking`](Self::asking), which the run fills in).
    /// Resuming makes the resumed run its continuation in the journal (once:
    /// a second resume of it under the same journal is refused, as a resume
    /// from the journal is). With a durable journal, the paused run is also
    /// found in the store — paused, and not resumed by another run yet — and
    /// resumed from any process with [`resume`](crate::orchestration::resume()),
    /// the answers given to the context first (`ctx.answer(id, text)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<crate::orchestration::RunId>,
    /// The run whose id the paused run's idempotency keys start with (the
    /// first of its chain of resumes): the resumed run keeps its keys, so an
    /// agent that asks again after a side effect can tell it already did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<crate::orchestration::RunId>,
}

impl Pause {
    /// A pause for one question (what [`ask`](crate::orchestration::ExecutionContext::ask)
    /// returns; the run fills in the rest).
    #[must_use]
    pub fn asking(question: Question) -> Self {
        Self {
            questions: vec![question],
            finished: Vec::new(),
            answers: HashMap::new(),
            input: None,
            state: HashMap::new(),
            run: None,
            origin: None,
        }
    }
}

impl fmt::Display for Pause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let questions: Vec<String> = self
            .questions
            .iter()
            .map(|question| format!("[{}] {}", question.id, question.text))
            .collect();
        f.write_str(&questions.join("; "))
    }
}
