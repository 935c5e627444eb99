//! What `run`, `resume` and `fork` say when they end without starting a
//! run: a refusal — bad usage, an invalid workflow, a run that cannot be
//! resumed or forked (exit 2) —, a failure to get going, such as a named
//! store that cannot be opened (exit 1), a resume of a run that
//! succeeded, which has nothing to resume (exit 0), or a resume of a run
//! paused on questions that answers none of them where nobody can be asked,
//! which would only pause again (exit 3: [`Unanswered`]).
//!
//! Standard error says why, as it always did. With `--json`, standard output
//! gets one JSON document as well, as it does for every run that starts: a
//! script reading it never finds it empty, whatever the outcome. A
//! refusal's or failure's document is a failed run's (`{"success": false,
//! "error", "run_id"}`) without what only a run makes (`agents`,
//! `execution_trace`), and says `"refused": true` for a refusal and, for an
//! invalid workflow, lists its `problems`. An unanswered resume's document
//! is the one `run --json` prints when a run pauses, for the stored run.
//! `runs --json` prints a refusal's or failure's document too when it lists
//! nothing (a store that cannot be opened or read).

use claude_agent_sdk::orchestration::{ExecutionTrace, Question, RunId};

use super::report::resume_command;
use super::{answers, summary};
use crate::exit::Exit;
use crate::redacted_json;
use crate::store::Location;
use crate::workflow::{Invalid, Workflow};

/// Why a command ended before any run started.
#[derive(Debug)]
pub struct Refusal {
    exit: Exit,
    /// Why, in one line (`error` in the JSON).
    error: String,
    /// What standard error says instead of `error: {error}`, when it says
    /// more (an invalid workflow's problems, each with its place).
    report: Option<String>,
    /// Each problem of an invalid workflow, in one line.
    problems: Vec<String>,
    /// The stored run the command named, once found.
    run: Option<RunId>,
}

impl Refusal {
    /// Ends with `exit` because of `error`.
    pub fn new(exit: Exit, error: impl Into<String>) -> Self {
        Self {
            exit,
            error: error.into(),
            report: None,
            problems: Vec::new(),
            run: None,
        }
    }

    /// Bad usage (exit 2).
    pub fn usage(error: impl Into<String>) -> Self {
        Self::new(Exit::Usage, error)
    }

    /// A failure before the run (exit 1).
    pub fn failed(error: impl Into<String>) -> Self {
        Self::new(Exit::Failed, error)
    }

    /// An invalid workflow (exit 2): standard error shows every problem
    /// where it is, as `validate` does.
    pub fn invalid(invalid: &Invalid) -> Self {
        Self {
            report: Some(invalid.render()),
            problems: invalid.problems(),
            ..Self::usage(invalid.summary())
        }
    }

    /// About stored run `run`.
    #[must_use]
    pub fn of_run(mut self, run: RunId) -> Self {
        self.run = Some(run);
        self
    }

    /// Says why on standard error and, with `json`, prints the JSON document
    /// on standard output; the exit code.
    pub fn tell(self, json: bool) -> Exit {
        match &self.report {
            Some(report) => err!("{report}"),
            None => errln!("error: {}", self.error),
        }
        if json {
            outln!("{}", self.document());
        }
        self.exit
    }

    /// The JSON document.
    fn document(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "success": false,
            "error": self.error,
            "run_id": self.run.map(|run| run.to_string()),
        });
        if let Some(object) = value.as_object_mut() {
            if self.exit == Exit::Usage {
                object.insert("refused".to_owned(), true.into());
            }
            if !self.problems.is_empty() {
                object.insert("problems".to_owned(), self.problems.clone().into());
            }
        }
        value
    }
}

/// What `resume --json` prints for run `run`, which succeeded: nothing was
/// resumed; the run's id, and `trace`, what it (and the runs it resumed) did
/// as the store keeps it (`null` when it keeps no events of it).
pub fn nothing_to_resume(run: RunId, trace: Option<&ExecutionTrace>) -> String {
    let value = serde_json::json!({
        "success": true,
        "nothing_to_resume": true,
        "run_id": run.to_string(),
        "execution_trace": trace,
    });
    value.to_string()
}

/// A resume of stored run `run`, paused on `questions`, that is given no
/// answer to any of them (`given`: the answers it is given) where nobody
/// can be asked: a new run would only pause on them again, so none starts.
pub struct Unanswered<'a> {
    /// The paused run.
    pub run: RunId,
    /// Where the store keeps it.
    pub location: &'a Location,
    /// What it waits for.
    pub questions: &'a [Question],
    /// The answers the resume is given (to other asks).
    pub given: &'a [(String, String)],
    /// What it, and the runs it resumed, did, as the store keeps it.
    pub trace: Option<ExecutionTrace>,
}

impl Unanswered<'_> {
    /// Says so on standard error — the questions and how to answer them —
    /// and, with `json`, prints the paused run's document on standard
    /// output, in `workflow`'s words (its secrets redacted); exit 3.
    pub fn tell(self, workflow: &Workflow, json: bool) -> Exit {
        let resume = resume_command(self.location, self.run, self.questions);
        let text = answers::unanswered_text(self.run, self.questions, self.given, &resume);
        err!("{}", workflow.redactor.redact(&text));
        if json {
            let trace = self.trace.unwrap_or_default();
            let summary = summary::summarize(workflow, &trace);
            let value = answers::waiting_document(
                self.questions,
                None,
                Some((self.run, resume)),
                &summary.agents,
                &trace,
            );
            outln!(
                "{}",
                redacted_json::redact_text(&workflow.redactor, &value.to_string())
            );
        }
        Exit::InputRequired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_so_and_a_failure_does_not() {
        let run = RunId::new();
        let refused = Refusal::usage("no").of_run(run).document();
        assert_eq!(refused["refused"], true);
        assert_eq!(refused["success"], false);
        assert_eq!(refused["error"], "no");
        assert_eq!(refused["run_id"], run.to_string());
        let failed = Refusal::failed("down").document();
        assert_eq!(failed.get("refused"), None);
        assert_eq!(failed["run_id"], serde_json::Value::Null);
        assert_eq!(failed.get("problems"), None);
    }
}
