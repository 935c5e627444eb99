//! Glue shared by the specification's samples (`spec_6_*.rs`): the helper
//! agents the samples call without defining them, and a compile-time type check
//! for the specification's field tables.
#![allow(dead_code)]

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};

use claude_agent_sdk::orchestration as orch;

pub type TestResult = std::result::Result<(), Box<dyn Error>>;

/// Checks at compile time that `value` has type `T` (the specification's field tables).
pub fn has_type<T>(_: &T) {}

// ------------------------------------------------------------------ helpers (glue)

/// A pipeline step that turns its input's content into `render(content)`.
pub fn step(name: &str, render: fn(&str) -> String) -> Box<dyn orch::Agent> {
    Box::new(orch::SimpleAgent::new(
        name,
        format!("{name} step"),
        move |input| Ok(orch::AgentOutput::new(render(&input.content))),
    ))
}

/// 6.4's researcher: "Found 5 articles about Climate Change".
pub fn create_researcher() -> Box<dyn orch::Agent> {
    step("Researcher", |topic| {
        format!("Found 5 articles about {topic}")
    })
}

/// 6.4's writer: "Article draft based on Found 5 articles...".
pub fn create_writer() -> Box<dyn orch::Agent> {
    step("Writer", |research| {
        format!("Article draft based on {research}")
    })
}

/// 6.4's editor: "Final version: Article draft...".
pub fn create_editor() -> Box<dyn orch::Agent> {
    step("Editor", |draft| format!("Final version: {draft}"))
}

/// 6.4's analyzers, named "<Angle> Analysis". The first analyzers given take
/// longest, so they finish in the reverse of the order they were given in.
struct Analyzer {
    name: String,
    angle: String,
    delay: std::time::Duration,
}

#[async_trait::async_trait]
impl orch::Agent for Analyzer {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "Analyzes a proposal from one angle"
    }

    async fn execute(&self, input: orch::AgentInput) -> orch::Result<orch::AgentOutput> {
        tokio::time::sleep(self.delay).await;
        Ok(orch::AgentOutput::new(format!(
            "{} review of {}",
            self.angle, input.content
        )))
    }
}

pub fn create_analyzer(angle: &str) -> Box<dyn orch::Agent> {
    let delay_ms = match angle {
        "technical" => 40,
        "business" => 20,
        _ => 0,
    };
    let mut title = angle.to_owned();
    title[..1].make_ascii_uppercase();
    Box::new(Analyzer {
        name: format!("{title} Analysis"),
        angle: angle.to_owned(),
        delay: std::time::Duration::from_millis(delay_ms),
    })
}

/// An agent that always fails for good with `reason`.
pub fn failing(name: &str, reason: &'static str) -> Box<dyn orch::Agent> {
    Box::new(orch::SimpleAgent::new(name, "always fails", move |_| {
        Err(orch::AgentError::new(reason).into())
    }))
}

/// An agent that fails `failures` times with `error`, then echoes its input.
pub fn flaky(name: &str, failures: usize, error: orch::OrchestrationError) -> Box<dyn orch::Agent> {
    let calls = AtomicUsize::new(0);
    Box::new(orch::SimpleAgent::new(
        name,
        "fails, then works",
        move |input| {
            if calls.fetch_add(1, Ordering::SeqCst) < failures {
                Err(error.clone())
            } else {
                Ok(orch::AgentOutput::new(input.content))
            }
        },
    ))
}

/// An agent that takes a minute.
pub struct Sleeper;

#[async_trait::async_trait]
impl orch::Agent for Sleeper {
    fn name(&self) -> &str {
        "Sleeper"
    }

    fn description(&self) -> &str {
        "Takes a minute"
    }

    async fn execute(&self, input: orch::AgentInput) -> orch::Result<orch::AgentOutput> {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        Ok(orch::AgentOutput::new(input.content))
    }
}

/// An agent that cancels the run it is part of.
pub struct CancelsItsRun;

#[async_trait::async_trait]
impl orch::Agent for CancelsItsRun {
    fn name(&self) -> &str {
        "CancelsItsRun"
    }

    fn description(&self) -> &str {
        "Cancels its own run"
    }

    async fn execute(&self, input: orch::AgentInput) -> orch::Result<orch::AgentOutput> {
        orch::ExecutionContext::current()
            .expect("agents run under a context")
            .cancel();
        Ok(orch::AgentOutput::new(input.content))
    }
}
