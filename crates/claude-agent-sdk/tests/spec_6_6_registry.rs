//! The code samples of the specification's section 6.6, "Agent Registry"
//! (`AgentMetadata`, `AgentRegistry`, `AgentFilter`, `AgentRegistryBuilder`), as
//! tests.
//!
//! Each sample is copied unchanged and wrapped in the glue it needs: an (async)
//! test function, the helper agents it calls (`create_researcher()`,
//! `create_analyzer("technical")`, ...; they live in `spec_support`), the
//! variables it uses without defining them, and an import or type annotation
//! where a sample's import would otherwise be unused. After the sample come
//! assertions of what the specification's prose and tables say happens.

mod spec_support;

use claude_agent_sdk::orchestration as orch;

use spec_support::{has_type, step, TestResult};

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
