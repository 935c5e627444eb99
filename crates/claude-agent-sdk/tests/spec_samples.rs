//! Every code sample of the specification (section 6, "Agent Orchestration") as a
//! test.
//!
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...), the variables it uses without defining
//! them, and an import or type annotation where a sample's import would otherwise
//! be unused. After the sample come assertions of what the specification's prose
//! and tables say happens. The complete example of 6.8 is `examples/complete.rs`,
//! included at the end of this file.

use std::collections::HashMap;
use std::error::Error;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

use claude_agent_sdk::orchestration as orch;

type TestResult = std::result::Result<(), Box<dyn Error>>;

/// Checks at compile time that `value` has type `T` (the specification's field tables).
fn has_type<T>(_: &T) {}

// ------------------------------------------------------------------ helpers (glue)

/// A pipeline step that turns its input's content into `render(content)`.
fn step(name: &str, render: fn(&str) -> String) -> Box<dyn orch::Agent> {
    Box::new(orch::SimpleAgent::new(
        name,
        format!("{name} step"),
        move |input| Ok(orch::AgentOutput::new(render(&input.content))),
    ))
}

/// 6.4's researcher: "Found 5 articles about Climate Change".
fn create_researcher() -> Box<dyn orch::Agent> {
    step("Researcher", |topic| {
        format!("Found 5 articles about {topic}")
    })
}

/// 6.4's writer: "Article draft based on Found 5 articles...".
fn create_writer() -> Box<dyn orch::Agent> {
    step("Writer", |research| {
        format!("Article draft based on {research}")
    })
}

/// 6.4's editor: "Final version: Article draft...".
fn create_editor() -> Box<dyn orch::Agent> {
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

fn create_analyzer(angle: &str) -> Box<dyn orch::Agent> {
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
fn failing(name: &str, reason: &'static str) -> Box<dyn orch::Agent> {
    Box::new(orch::SimpleAgent::new(name, "always fails", move |_| {
        Err(orch::AgentError::new(reason).into())
    }))
}

/// An agent that fails `failures` times with `error`, then echoes its input.
fn flaky(name: &str, failures: usize, error: orch::OrchestrationError) -> Box<dyn orch::Agent> {
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
struct Sleeper;

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
struct CancelsItsRun;

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

// ------------------------------------------------------------------ 6.2 Core Types

#[test]
fn s6_2_agent_input() {
    use claude_agent_sdk::orchestration::AgentInput;

    let input = AgentInput::new("Research quantum computing")
        .with_context(serde_json::json!({"depth": "advanced"}))
        .with_metadata("priority", "high");

    // The fields table.
    has_type::<String>(&input.content);
    has_type::<serde_json::Value>(&input.context);
    has_type::<HashMap<String, String>>(&input.metadata);
    assert_eq!(input.content, "Research quantum computing");
    assert_eq!(input.context, serde_json::json!({"depth": "advanced"}));
    assert_eq!(
        input.metadata,
        HashMap::from([("priority".to_owned(), "high".to_owned())])
    );
}

#[test]
fn s6_2_agent_output() {
    use claude_agent_sdk::orchestration::AgentOutput;

    let output = AgentOutput::new("Research complete: 5 articles found")
        .with_confidence(0.95)
        .with_data(serde_json::json!({"articles": 5}))
        .with_metadata("duration_ms", "1500");

    // Check if output indicates success
    if output.is_successful() {
        println!("Agent succeeded with confidence: {}", output.confidence);
    }

    // The fields table.
    has_type::<String>(&output.content);
    has_type::<serde_json::Value>(&output.data);
    has_type::<f64>(&output.confidence);
    has_type::<HashMap<String, String>>(&output.metadata);
    assert!(output.is_successful());
    assert_eq!(output.content, "Research complete: 5 articles found");
    assert_eq!(output.confidence, 0.95);
    assert_eq!(output.data, serde_json::json!({"articles": 5}));
    assert_eq!(output.metadata["duration_ms"], "1500");
    // "Confidence score (0.0 - 1.0)".
    for wild in [-3.0, 7.5, f64::NAN] {
        let confidence = AgentOutput::new("x").with_confidence(wild).confidence;
        assert!((0.0..=1.0).contains(&confidence), "{wild} -> {confidence}");
    }
}

#[tokio::test]
async fn s6_2_orchestrator_input_and_output() -> TestResult {
    use claude_agent_sdk::orchestration::{OrchestratorInput, OrchestratorOutput};

    // Create orchestrator input
    let input = OrchestratorInput::new("Analyze market trends")
        .with_context(serde_json::json!({"region": "US"}))
        .with_metadata("request_id", "12345");

    // Glue: the sample checks an `output` it does not make; run two agents on `input`.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let output: OrchestratorOutput = orch::SequentialOrchestrator::new()
        .orchestrate(vec![create_researcher(), create_writer()], input.clone())
        .await?;

    // Check output
    if output.is_successful() {
        println!("Final result: {}", output.result);
        println!("Agents executed: {}", output.agent_outputs.len());
    }

    assert_eq!(input.content, "Analyze market trends");
    assert_eq!(input.context, serde_json::json!({"region": "US"}));
    assert_eq!(input.metadata["request_id"], "12345");
    assert!(output.is_successful());
    assert_eq!(output.agent_outputs.len(), 2);
    assert_eq!(
        output.result,
        "Article draft based on Found 5 articles about Analyze market trends"
    );
    // Every agent of the run is handed the run's context and metadata.
    for exec in &output.execution_trace.agent_executions {
        assert_eq!(exec.input.context, input.context);
        assert_eq!(exec.input.metadata, input.metadata);
    }
    Ok(())
}

// ------------------------------------------------------------------ 6.3 Agent Trait

#[tokio::test]
async fn s6_3_agent_trait() -> TestResult {
    use async_trait::async_trait;
    use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput, Result};

    #[derive(Debug)]
    struct ResearchAgent;

    #[async_trait]
    impl Agent for ResearchAgent {
        fn name(&self) -> &str {
            "ResearchAgent"
        }

        fn description(&self) -> &str {
            "Researches topics and gathers information"
        }

        async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
            // Perform research logic
            let research_result = format!("Found 10 articles about: {}", input.content);

            Ok(AgentOutput::new(research_result)
                .with_confidence(0.9)
                .with_data(serde_json::json!({"sources": 10})))
        }
    }

    let agent = ResearchAgent;
    assert_eq!(format!("{agent:?}"), "ResearchAgent");
    assert_eq!(agent.name(), "ResearchAgent");
    assert_eq!(
        agent.description(),
        "Researches topics and gathers information"
    );
    let output = agent.execute(AgentInput::new("Rust")).await?;
    assert_eq!(output.content, "Found 10 articles about: Rust");
    assert_eq!(output.confidence, 0.9);
    assert_eq!(output.data, serde_json::json!({"sources": 10}));

    // "participating in orchestration": it runs in a pipeline like any agent.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let run = orch::SequentialOrchestrator::new()
        .orchestrate(
            vec![Box::new(ResearchAgent), create_writer()],
            orch::OrchestratorInput::new("Rust"),
        )
        .await?;
    assert_eq!(
        run.result,
        "Article draft based on Found 10 articles about: Rust"
    );
    Ok(())
}

#[tokio::test]
async fn s6_3_simple_agent() -> TestResult {
    use claude_agent_sdk::orchestration::agent::SimpleAgent;
    // Glue: what the sample uses without importing.
    use claude_agent_sdk::orchestration::{Agent, AgentInput, AgentOutput};

    let agent = SimpleAgent::new("QuickAgent", "A simple agent for quick tasks", |input| {
        Ok(AgentOutput::new(format!("Processed: {}", input.content)))
    });

    assert_eq!(agent.name(), "QuickAgent");
    assert_eq!(agent.description(), "A simple agent for quick tasks");
    let output = agent.execute(AgentInput::new("the inbox")).await?;
    assert_eq!(output.content, "Processed: the inbox");
    Ok(())
}

// ------------------------------------------------------------------ 6.4 Orchestration Patterns

#[tokio::test]
async fn s6_4_sequential_pipeline_passes_each_output_on() -> TestResult {
    use claude_agent_sdk::orchestration::{
        Agent, Orchestrator, OrchestratorInput, SequentialOrchestrator,
    };

    // Create sequential orchestrator
    let orchestrator = SequentialOrchestrator::new().with_max_retries(3);

    // Define pipeline agents
    let agents: Vec<Box<dyn Agent>> = vec![create_researcher(), create_writer(), create_editor()];

    // Execute pipeline
    let input = OrchestratorInput::new("Climate Change");
    let output = orchestrator.orchestrate(agents, input).await?;

    println!("Final result: {}", output.result);
    // Each agent's output is passed to the next:
    // Researcher: "Found 5 articles about Climate Change"
    //   → Writer: "Article draft based on Found 5 articles..."
    //     → Editor: "Final version: Article draft..."

    assert_eq!(orchestrator.config().max_retries, 3);
    let steps: Vec<&str> = output
        .agent_outputs
        .iter()
        .map(|o| o.content.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "Found 5 articles about Climate Change",
            "Article draft based on Found 5 articles about Climate Change",
            "Final version: Article draft based on Found 5 articles about Climate Change",
        ]
    );
    assert!(steps[1].starts_with("Article draft based on Found 5 articles"));
    assert!(steps[2].starts_with("Final version: Article draft"));
    assert_eq!(output.result, steps[2]);
    // Input → Agent A → Agent B → Agent C → Output: each input is the previous output.
    let inputs: Vec<&str> = output
        .execution_trace
        .agent_executions
        .iter()
        .map(|e| e.input.content.as_str())
        .collect();
    assert_eq!(inputs, ["Climate Change", steps[0], steps[1]]);
    assert!(output.is_successful());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn s6_4_parallel_results_are_aggregated_in_order() -> TestResult {
    use claude_agent_sdk::orchestration::{
        Agent, Orchestrator, OrchestratorInput, ParallelOrchestrator,
    };

    // Create parallel orchestrator with concurrency control
    let orchestrator = ParallelOrchestrator::new()
        .with_max_retries(2)
        .with_parallel_limit(5); // Max 5 concurrent agents

    // Define parallel agents
    let agents: Vec<Box<dyn Agent>> = vec![
        create_analyzer("technical"),
        create_analyzer("business"),
        create_analyzer("security"),
    ];

    // Execute in parallel
    let input = OrchestratorInput::new("New Architecture Proposal");
    let output = orchestrator.orchestrate(agents, input).await?;

    // Results are aggregated
    println!("Aggregated results:\n{}", output.result);
    // Output:
    // Parallel execution results:
    // 1. Technical Analysis: ...
    // 2. Business Analysis: ...
    // 3. Security Analysis: ...

    assert_eq!(orchestrator.config().max_retries, 2);
    assert_eq!(orchestrator.config().parallel_limit, 5);
    assert!(output.result.starts_with("Parallel execution results:"));
    let lines: Vec<&str> = output.result.lines().collect();
    assert_eq!(
        lines,
        [
            "Parallel execution results:",
            "1. Technical Analysis: technical review of New Architecture Proposal",
            "2. Business Analysis: business review of New Architecture Proposal",
            "3. Security Analysis: security review of New Architecture Proposal",
        ]
    );
    assert!(output.is_successful());
    assert_eq!(output.agent_outputs.len(), 3);
    // The analyzers finished last-to-first, yet the aggregate follows their order.
    let trace = &output.execution_trace.agent_executions;
    let finished: Vec<&str> = trace.iter().map(|e| e.agent_name.as_str()).collect();
    assert_eq!(
        finished,
        [
            "Security Analysis",
            "Business Analysis",
            "Technical Analysis"
        ]
    );
    // Every agent gets the same input.
    assert!(trace
        .iter()
        .all(|e| e.input.content == "New Architecture Proposal"));
    Ok(())
}

// ------------------------------------------------------------------ 6.5 Execution Context

#[test]
fn s6_5_execution_config() {
    use claude_agent_sdk::orchestration::context::ExecutionConfig;
    use std::time::Duration;

    let config = ExecutionConfig::new()
        .with_timeout(Duration::from_secs(120)) // Max 2 minutes
        .with_max_retries(5) // 5 retries per agent
        .with_parallel_limit(20) // Max 20 parallel agents
        .with_logging(true) // Enable logging
        .with_tracing(true); // Enable tracing

    assert_eq!(config.timeout, Duration::from_secs(120));
    assert_eq!(config.max_retries, 5);
    assert_eq!(config.parallel_limit, 20);
    assert!(config.enable_logging);
    assert!(config.enable_tracing);
}

#[test]
fn s6_5_execution_config_defaults() {
    use claude_agent_sdk::orchestration::context::ExecutionConfig;
    use std::time::Duration;

    // The "Default values" table.
    for config in [ExecutionConfig::new(), ExecutionConfig::default()] {
        assert_eq!(config.timeout, Duration::from_secs(300));
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.parallel_limit, 10);
        assert!(config.enable_logging);
        assert!(config.enable_tracing);
    }
    // Orchestrators start from those defaults.
    assert_eq!(
        *orch::SequentialOrchestrator::new().config(),
        ExecutionConfig::default()
    );
    assert_eq!(
        *orch::ParallelOrchestrator::new().config(),
        ExecutionConfig::default()
    );
}

#[tokio::test]
async fn s6_5_execution_context() -> TestResult {
    use claude_agent_sdk::orchestration::context::ExecutionContext;
    // Glue: the `config` the sample passes.
    use claude_agent_sdk::orchestration::context::ExecutionConfig;
    let config = ExecutionConfig::new();

    let ctx = ExecutionContext::new(config);

    // Store state
    ctx.set_state("key", serde_json::json!("value")).await;

    // Retrieve state
    if let Some(value) = ctx.get_state("key").await {
        println!("State: {}", value);
    }

    // Get execution trace
    let trace = ctx.get_trace().await;
    println!("Executions: {}", trace.agent_executions.len());

    assert_eq!(ctx.get_state("key").await, Some(serde_json::json!("value")));
    assert_eq!(ctx.get_state("missing").await, None);
    assert_eq!(trace.agent_executions.len(), 0);

    // A run under the context fills its trace.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    orch::SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![create_researcher(), create_writer()],
            orch::OrchestratorInput::new("tides"),
            &ctx,
        )
        .await?;
    assert_eq!(ctx.get_trace().await.agent_executions.len(), 2);
    Ok(())
}

#[tokio::test]
async fn s6_5_execution_trace() -> TestResult {
    use claude_agent_sdk::orchestration::context::ExecutionTrace;

    // Glue: the run whose `output` the sample reads.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let output = orch::SequentialOrchestrator::new()
        .orchestrate(
            vec![create_researcher(), create_writer(), create_editor()],
            orch::OrchestratorInput::new("Climate Change"),
        )
        .await?;

    let trace = output.execution_trace;

    println!("Started: {}", trace.start_time);
    println!("Duration: {:?}", trace.duration());

    // Access individual agent executions
    for exec in &trace.agent_executions {
        println!(
            "Agent: {} - Success: {} - Duration: {:?}ms",
            exec.agent_name, exec.success, exec.duration_ms
        );
    }

    has_type::<ExecutionTrace>(&trace);
    let end = trace.end_time.expect("a finished run has an end time");
    assert!(trace.start_time <= end);
    assert!(trace.duration().is_some());
    let names: Vec<&str> = trace
        .agent_executions
        .iter()
        .map(|e| e.agent_name.as_str())
        .collect();
    assert_eq!(names, ["Researcher", "Writer", "Editor"]);
    for exec in &trace.agent_executions {
        assert!(exec.success);
        assert!(exec.duration_ms.is_some());
        assert!(trace.start_time <= exec.start_time);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn s6_5_agent_execution() -> TestResult {
    use claude_agent_sdk::orchestration::context::AgentExecution;

    // Glue: a run whose first agent fails once (retryably) before it succeeds.
    use claude_agent_sdk::orchestration::Orchestrator as _;
    let output = orch::SequentialOrchestrator::new()
        .orchestrate(
            vec![
                flaky("Fetcher", 1, orch::OrchestrationError::transient("503")),
                create_writer(),
            ],
            orch::OrchestratorInput::new("notes"),
        )
        .await?;

    // Execution records are created automatically
    // and accessible via ExecutionTrace.agent_executions

    for exec in &output.execution_trace.agent_executions {
        println!("Agent: {}", exec.agent_name);
        println!("  Input: {}", exec.input.content);
        if let Some(ref output) = exec.output {
            println!("  Output: {}", output.content);
        }
        if let Some(ref error) = exec.error {
            println!("  Error: {}", error);
        }
    }

    let records: &Vec<AgentExecution> = &output.execution_trace.agent_executions;
    assert_eq!(records.len(), 3, "one record per attempt");
    let (failed, retried, written) = (&records[0], &records[1], &records[2]);
    assert_eq!(failed.agent_name, "Fetcher");
    assert!(!failed.success);
    assert_eq!(failed.input.content, "notes");
    assert!(failed.output.is_none());
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("503")));
    assert_eq!(retried.agent_name, "Fetcher");
    assert!(retried.success);
    assert_eq!(
        retried.output.as_ref().map(|o| o.content.as_str()),
        Some("notes")
    );
    assert!(retried.error.is_none());
    assert_eq!(written.agent_name, "Writer");
    assert_eq!(written.input.content, "notes");
    assert_eq!(
        written.output.as_ref().map(|o| o.content.as_str()),
        Some("Article draft based on notes")
    );
    Ok(())
}

// ------------------------------------------------------------------ 6.6 Agent Registry

#[test]
fn s6_6_agent_metadata() {
    use claude_agent_sdk::orchestration::registry::AgentMetadata;

    let metadata = AgentMetadata::new(
        "research-agent",
        "Academic Researcher",
        "Expert in academic research",
        "research",
    )
    .with_tool("web-search")
    .with_tool("read-file")
    .with_skill("citation")
    .with_tag("academic")
    .with_version("2.0.0")
    .with_max_retries(5)
    .with_timeout(120);

    // The "Metadata Fields" table.
    has_type::<String>(&metadata.id);
    has_type::<String>(&metadata.name);
    has_type::<String>(&metadata.description);
    has_type::<String>(&metadata.category);
    has_type::<String>(&metadata.version);
    has_type::<Vec<String>>(&metadata.tools);
    has_type::<Vec<String>>(&metadata.skills);
    has_type::<Vec<String>>(&metadata.tags);
    has_type::<usize>(&metadata.max_retries);
    has_type::<u64>(&metadata.timeout_secs);
    has_type::<bool>(&metadata.enabled);
    assert_eq!(metadata.id, "research-agent");
    assert_eq!(metadata.name, "Academic Researcher");
    assert_eq!(metadata.description, "Expert in academic research");
    assert_eq!(metadata.category, "research");
    assert_eq!(metadata.version, "2.0.0");
    assert_eq!(metadata.tools, ["web-search", "read-file"]);
    assert_eq!(metadata.skills, ["citation"]);
    assert_eq!(metadata.tags, ["academic"]);
    assert_eq!(metadata.max_retries, 5);
    assert_eq!(metadata.timeout_secs, 120);
    assert!(metadata.enabled);
}

#[tokio::test]
async fn s6_6_agent_registry() -> TestResult {
    use claude_agent_sdk::orchestration::registry::{AgentMetadata, AgentRegistry};
    // Glue: what the sample uses without importing.
    use claude_agent_sdk::orchestration::{AgentInput, AgentOutput, SimpleAgent};

    let registry = AgentRegistry::new();

    // Register an agent
    let agent = SimpleAgent::new("researcher", "Academic researcher", |input| {
        Ok(AgentOutput::new(format!("Researched: {}", input.content)))
    });

    let metadata = AgentMetadata::new(
        "researcher",
        "researcher", // Must match agent.name()
        "Academic researcher",
        "research",
    );

    registry.register(Box::new(agent), metadata).await?;

    // Check registration
    assert!(registry.contains("researcher").await);

    // Execute agent by ID
    let output = registry
        .execute_agent("researcher", AgentInput::new("Quantum computing"))
        .await?;

    assert_eq!(output.content, "Researched: Quantum computing");
    assert!(!registry.contains("writer").await);
    assert_eq!(
        registry.metadata("researcher").await.map(|m| m.category),
        Some("research".to_owned())
    );
    // "Must match agent.name()".
    let impostor = SimpleAgent::new("writer", "Writes", |input| {
        Ok(AgentOutput::new(input.content))
    });
    let refused = registry
        .register(
            Box::new(impostor),
            AgentMetadata::new("writer", "Writer", "Writes", "writing"),
        )
        .await;
    assert!(matches!(
        refused,
        Err(orch::RegistryError::NameMismatch { .. })
    ));
    assert!(!registry.contains("writer").await);
    // Unknown ids are an error, not a panic.
    assert!(registry
        .execute_agent("writer", AgentInput::new("x"))
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn s6_6_agent_filter() -> TestResult {
    use claude_agent_sdk::orchestration::registry::AgentFilter;

    // Glue: the `registry` the sample searches; only "scholar" meets every criterion.
    use claude_agent_sdk::orchestration::registry::{AgentMetadata, AgentRegistry};
    let registry = AgentRegistry::new();
    let meta =
        |id: &str, category: &str| AgentMetadata::new(id, id, format!("{id} agent"), category);
    for (id, metadata) in [
        (
            "scholar",
            meta("scholar", "research")
                .with_tool("web-search")
                .with_tag("academic"),
        ),
        (
            "librarian",
            meta("librarian", "research")
                .with_tool("read-file")
                .with_tag("academic"),
        ),
        (
            "blogger",
            meta("blogger", "research")
                .with_tool("web-search")
                .with_tag("popular"),
        ),
        (
            "auditor",
            meta("auditor", "analysis")
                .with_tool("web-search")
                .with_tag("academic"),
        ),
        (
            "retired",
            meta("retired", "research")
                .with_tool("web-search")
                .with_tag("academic")
                .with_enabled(false),
        ),
    ] {
        registry.register(step(id, str::to_owned), metadata).await?;
    }

    // Find agents by criteria
    let filter = AgentFilter::new()
        .with_category("research")
        .with_tool("web-search")
        .with_tag("academic")
        .enabled_only();

    let matching = registry.find(&filter).await;

    for metadata in matching {
        println!("Found: {} - {}", metadata.name, metadata.description);
    }

    let found: Vec<String> = registry
        .find(&filter)
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(found, ["scholar"]);
    // Without `enabled_only`, the disabled agent matches too.
    let with_disabled: Vec<String> = registry
        .find(
            &AgentFilter::new()
                .with_category("research")
                .with_tool("web-search")
                .with_tag("academic"),
        )
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(with_disabled, ["retired", "scholar"]);
    assert_eq!(registry.find(&AgentFilter::new()).await.len(), 5);
    Ok(())
}

#[tokio::test]
async fn s6_6_agent_registry_builder() -> TestResult {
    use claude_agent_sdk::orchestration::registry::AgentRegistryBuilder;
    // Glue: what the sample uses without importing.
    use claude_agent_sdk::orchestration::registry::AgentMetadata;
    use claude_agent_sdk::orchestration::{AgentInput, AgentOutput, SimpleAgent};

    let registry = AgentRegistryBuilder::new()
        .with_agent(
            Box::new(SimpleAgent::new("agent1", "First", |input| {
                Ok(AgentOutput::new(format!("1: {}", input.content)))
            })),
            AgentMetadata::new("agent1", "agent1", "First agent", "test"),
        )
        .await?
        .with_agent(
            Box::new(SimpleAgent::new("agent2", "Second", |input| {
                Ok(AgentOutput::new(format!("2: {}", input.content)))
            })),
            AgentMetadata::new("agent2", "agent2", "Second agent", "test"),
        )
        .await?
        .build();

    assert_eq!(registry.count().await, 2);
    assert!(registry.contains("agent1").await && registry.contains("agent2").await);
    let first = registry
        .execute_agent("agent1", AgentInput::new("x"))
        .await?;
    let second = registry
        .execute_agent("agent2", AgentInput::new("x"))
        .await?;
    assert_eq!(first.content, "1: x");
    assert_eq!(second.content, "2: x");
    Ok(())
}

// ------------------------------------------------------------------ 6.7 Error Handling

/// 6.7's `match`, verbatim, on one run.
async fn report_outcome(
    orchestrator: impl orch::Orchestrator,
    agents: Vec<Box<dyn orch::Agent>>,
    input: orch::OrchestratorInput,
) {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;

    match orchestrator.orchestrate(agents, input).await {
        Ok(output) => println!("Success: {}", output.result),
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            eprintln!("Agent {} failed: {}", name, reason);
        }
        Err(OrchestrationError::Timeout(msg)) => {
            eprintln!("Operation timed out: {}", msg);
        }
        Err(OrchestrationError::InvalidConfig(msg)) => {
            eprintln!("Configuration error: {}", msg);
        }
        Err(OrchestrationError::PartialSuccess(count)) => {
            eprintln!("{} agents failed", count);
        }
        Err(e) => eprintln!("Other error: {}", e),
    }
}

#[tokio::test(start_paused = true)]
async fn s6_7_each_failure_ends_in_the_variant_the_table_names() {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;
    use claude_agent_sdk::orchestration::{
        Agent, Orchestrator, OrchestratorInput, ParallelOrchestrator, SequentialOrchestrator,
    };
    use std::time::Duration;

    let input = || OrchestratorInput::new("Climate Change");

    // Ok: the match's first arm.
    let pipeline = || vec![create_researcher(), create_writer(), create_editor()];
    let ok = SequentialOrchestrator::new()
        .orchestrate(pipeline(), input())
        .await;
    assert!(ok.is_ok());
    report_outcome(SequentialOrchestrator::new(), pipeline(), input()).await;

    // AgentFailed: "Agent execution failed", naming the agent and the reason.
    let broken = || {
        vec![
            create_researcher(),
            failing("Writer", "writer's block"),
            create_editor(),
        ]
    };
    let error = SequentialOrchestrator::new()
        .orchestrate(broken(), input())
        .await
        .unwrap_err();
    match &error {
        OrchestrationError::AgentFailed(name, reason) => {
            assert_eq!(name, "Writer");
            assert!(reason.contains("writer's block"), "{reason}");
        }
        other => panic!("expected AgentFailed, got {other:?}"),
    }
    report_outcome(SequentialOrchestrator::new(), broken(), input()).await;

    // Timeout: "Operation timed out".
    let slow = || -> Vec<Box<dyn Agent>> { vec![Box::new(Sleeper)] };
    let hasty = || SequentialOrchestrator::new().with_timeout(Duration::from_millis(50));
    let error = hasty().orchestrate(slow(), input()).await.unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error:?}");
    report_outcome(hasty(), slow(), input()).await;

    // InvalidConfig: "Invalid configuration" (here: nothing to orchestrate).
    let error = SequentialOrchestrator::new()
        .orchestrate(vec![], input())
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error:?}"
    );
    let error = ParallelOrchestrator::new()
        .with_parallel_limit(0)
        .orchestrate(pipeline(), input())
        .await
        .unwrap_err();
    assert!(
        matches!(error, OrchestrationError::InvalidConfig(_)),
        "{error:?}"
    );
    report_outcome(SequentialOrchestrator::new(), vec![], input()).await;

    // PartialSuccess: "Some agents failed", with how many.
    let mixed = || {
        vec![
            create_analyzer("technical"),
            failing("Business Analysis", "no data"),
            create_analyzer("security"),
        ]
    };
    let error = ParallelOrchestrator::new()
        .orchestrate(mixed(), input())
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::PartialSuccess(1));
    report_outcome(ParallelOrchestrator::new(), mixed(), input()).await;

    // Cancelled: "Execution cancelled" (the match's last arm).
    let cancelling = || -> Vec<Box<dyn Agent>> { vec![Box::new(CancelsItsRun), create_writer()] };
    let error = SequentialOrchestrator::new()
        .orchestrate(cancelling(), input())
        .await
        .unwrap_err();
    assert_eq!(error, OrchestrationError::Cancelled);
    report_outcome(SequentialOrchestrator::new(), cancelling(), input()).await;
}

#[test]
fn s6_7_retryable_errors_follow_the_table() {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;
    use claude_agent_sdk::orchestration::AgentError;

    // The "Error Variants" table: variant, retryable.
    let table = [
        (
            OrchestrationError::AgentFailed("Writer".into(), "boom".into()),
            true,
        ),
        (
            OrchestrationError::AgentError(AgentError::new("bad input")),
            false,
        ),
        (OrchestrationError::OrchestratorFailed("lost".into()), false),
        (OrchestrationError::Timeout("slow".into()), true),
        (OrchestrationError::InvalidConfig("zero".into()), false),
        (OrchestrationError::Cancelled, false),
        (OrchestrationError::PartialSuccess(2), false),
    ];
    let mut retried = 0;
    for (error, retryable) in table {
        // Check if error is retryable
        if error.is_retryable() {
            // Retry the operation
            retried += 1;
        }
        assert_eq!(error.is_retryable(), retryable, "{error:?}");
    }
    assert_eq!(retried, 2);
}

#[tokio::test(start_paused = true)]
async fn s6_7_only_retryable_errors_are_retried() -> TestResult {
    use claude_agent_sdk::orchestration::errors::OrchestrationError;
    use claude_agent_sdk::orchestration::{
        AgentError, ExecutionConfig, ExecutionContext, Orchestrator, OrchestratorInput,
        SequentialOrchestrator,
    };

    // "Built-in retry logic with exponential backoff" (6.1), for retryable errors
    // only: at most `max_retries` retries after the first attempt.
    let orchestrator = SequentialOrchestrator::new().with_max_retries(3);
    let attempts = |error: OrchestrationError, failures: usize| {
        let orchestrator = orchestrator.clone();
        async move {
            let ctx = ExecutionContext::new(ExecutionConfig::new());
            let result = orchestrator
                .orchestrate_with_context(
                    vec![flaky("Fetcher", failures, error)],
                    OrchestratorInput::new("x"),
                    &ctx,
                )
                .await;
            (result, ctx.get_trace().await.agent_executions.len())
        }
    };

    let (result, tries) = attempts(OrchestrationError::Timeout("slow".into()), 2).await;
    assert_eq!(result?.result, "x");
    assert_eq!(tries, 3, "two retryable failures, then success");

    let (result, tries) = attempts(OrchestrationError::transient("503"), 10).await;
    assert!(
        matches!(result, Err(OrchestrationError::AgentFailed(..))),
        "{result:?}"
    );
    assert_eq!(tries, 4, "the first attempt and 3 retries");

    let (result, tries) = attempts(AgentError::new("bad input").into(), 10).await;
    assert!(
        matches!(result, Err(OrchestrationError::AgentFailed(..))),
        "{result:?}"
    );
    assert_eq!(tries, 1, "a permanent error is not retried");
    Ok(())
}

// ------------------------------------------------------------------ 6.9 API Reference

/// 6.9's re-exports, verbatim, as paths from outside the crate.
mod reexports {
    // Glue: the modules the `pub use`s are relative to.
    use claude_agent_sdk::orchestration::{
        agent, context, errors, orchestrator, patterns, registry,
    };

    // Core types
    pub use agent::{Agent, AgentError, AgentInput, AgentOutput, SimpleAgent};
    pub use orchestrator::{BaseOrchestrator, Orchestrator, OrchestratorInput, OrchestratorOutput};

    // Context
    pub use context::{AgentExecution, ExecutionConfig, ExecutionContext, ExecutionTrace};

    // Errors
    pub use errors::{OrchestrationError, Result};

    // Registry
    pub use registry::{
        AgentFilter, AgentMetadata, AgentRegistry, AgentRegistryBuilder, RegistryError,
    };

    // Patterns
    pub use patterns::{ParallelOrchestrator, SequentialOrchestrator};
}

#[test]
fn s6_9_module_paths_and_flat_reexports_are_the_same_items() {
    use reexports as r;
    type Handler = fn(orch::AgentInput) -> orch::Result<orch::AgentOutput>;

    let _: PhantomData<dyn orch::Agent> = PhantomData::<dyn r::Agent>;
    let _: PhantomData<orch::AgentInput> = PhantomData::<r::AgentInput>;
    let _: PhantomData<orch::AgentOutput> = PhantomData::<r::AgentOutput>;
    let _: PhantomData<orch::AgentError> = PhantomData::<r::AgentError>;
    let _: PhantomData<orch::SimpleAgent<Handler>> = PhantomData::<r::SimpleAgent<Handler>>;
    let _: PhantomData<dyn orch::Orchestrator> = PhantomData::<dyn r::Orchestrator>;
    let _: PhantomData<orch::OrchestratorInput> = PhantomData::<r::OrchestratorInput>;
    let _: PhantomData<orch::OrchestratorOutput> = PhantomData::<r::OrchestratorOutput>;
    let _: PhantomData<orch::BaseOrchestrator> = PhantomData::<r::BaseOrchestrator>;
    let _: PhantomData<orch::ExecutionConfig> = PhantomData::<r::ExecutionConfig>;
    let _: PhantomData<orch::ExecutionContext> = PhantomData::<r::ExecutionContext>;
    let _: PhantomData<orch::ExecutionTrace> = PhantomData::<r::ExecutionTrace>;
    let _: PhantomData<orch::AgentExecution> = PhantomData::<r::AgentExecution>;
    let _: PhantomData<orch::OrchestrationError> = PhantomData::<r::OrchestrationError>;
    let _: PhantomData<orch::Result<u8>> = PhantomData::<r::Result<u8>>;
    let _: PhantomData<orch::AgentRegistry> = PhantomData::<r::AgentRegistry>;
    let _: PhantomData<orch::AgentRegistryBuilder> = PhantomData::<r::AgentRegistryBuilder>;
    let _: PhantomData<orch::AgentMetadata> = PhantomData::<r::AgentMetadata>;
    let _: PhantomData<orch::AgentFilter> = PhantomData::<r::AgentFilter>;
    let _: PhantomData<orch::RegistryError> = PhantomData::<r::RegistryError>;
    let _: PhantomData<orch::SequentialOrchestrator> = PhantomData::<r::SequentialOrchestrator>;
    let _: PhantomData<orch::ParallelOrchestrator> = PhantomData::<r::ParallelOrchestrator>;
}

// ------------------------------------------------------------------ 6.8 Complete Example

/// `examples/complete.rs`, included so its private agents can be tested.
mod complete_example {
    include!("../examples/complete.rs");

    #[test]
    fn main_runs_offline() {
        main().expect("the complete example runs");
    }

    #[tokio::test]
    async fn its_agents_produce_the_expected_final_string() -> Result<(), Box<dyn std::error::Error>>
    {
        let agents: Vec<Box<dyn Agent>> =
            vec![Box::new(Researcher), Box::new(Writer), Box::new(Editor)];
        let output = SequentialOrchestrator::new()
            .orchestrate(agents, OrchestratorInput::new("AI Trends 2024"))
            .await?;
        assert!(output.is_successful());
        assert_eq!(output.agent_outputs.len(), 3);
        assert_eq!(
            output.result,
            "Final: Draft: Research: AI Trends 2024 - Found 10 sources"
        );
        let confidences: Vec<f64> = output.agent_outputs.iter().map(|o| o.confidence).collect();
        assert_eq!(confidences, [0.95, 0.90, 0.92]);
        assert!(output.execution_trace.duration().is_some());

        let analyzers: Vec<Box<dyn Agent>> = vec![Box::new(Researcher)];
        let output = ParallelOrchestrator::new()
            .with_parallel_limit(5)
            .orchestrate(analyzers, OrchestratorInput::new("Market Analysis"))
            .await?;
        assert!(output.is_successful());
        assert_eq!(
            output.result,
            "Parallel execution results:\n1. Researcher: Research: Market Analysis - Found 10 sources"
        );
        Ok(())
    }
}
