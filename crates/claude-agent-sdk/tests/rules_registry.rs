//! Rule 12: the registry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentFilter, AgentInput, AgentMetadata, AgentOutput, AgentRegistry,
    AgentRegistryBuilder, OrchestrationError, RegistryError, Result, SimpleAgent,
};
use common::{echo, sleeper, transient, Scripted, Step};
use tokio::sync::Notify;

fn meta(id: &str, name: &str) -> AgentMetadata {
    AgentMetadata::new(id, name, "test agent", "test")
}

#[tokio::test]
async fn registration_is_validated() {
    let registry = AgentRegistry::new();
    assert_eq!(
        registry.register(echo("a"), meta("", "a")).await,
        Err(RegistryError::EmptyId)
    );
    assert_eq!(
        registry.register(echo("a"), meta("  ", "a")).await,
        Err(RegistryError::EmptyId)
    );
    assert!(matches!(
        registry.register(echo("a"), meta("a", "not-a")).await,
        Err(RegistryError::NameMismatch { .. })
    ));
    assert!(matches!(
        registry
            .register(echo("a"), meta("a", "a").with_timeout(0))
            .await,
        Err(RegistryError::InvalidMetadata { .. })
    ));
    registry.register(echo("a"), meta("a", "a")).await.unwrap();
    assert_eq!(
        registry.register(echo("a"), meta("a", "a")).await,
        Err(RegistryError::DuplicateId("a".into()))
    );
    assert_eq!(registry.count().await, 1);
}

#[tokio::test]
async fn executing_unknown_or_disabled_agents_is_an_error() {
    let registry = AgentRegistry::new();
    registry.register(echo("a"), meta("a", "a")).await.unwrap();
    assert_eq!(
        registry
            .execute_agent("missing", AgentInput::new("x"))
            .await,
        Err(OrchestrationError::Registry(RegistryError::AgentNotFound(
            "missing".into()
        )))
    );
    registry.disable("a").await.unwrap();
    assert_eq!(
        registry.execute_agent("a", AgentInput::new("x")).await,
        Err(OrchestrationError::Registry(RegistryError::AgentDisabled(
            "a".into()
        )))
    );
    registry.enable("a").await.unwrap();
    let output = registry
        .execute_agent("a", AgentInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.content, "a(x)");
    assert_eq!(
        registry.disable("missing").await,
        Err(RegistryError::AgentNotFound("missing".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn execution_applies_the_metadata_retries_and_attempt_timeout() {
    let registry = AgentRegistry::new();
    let (slow, probe) = sleeper("slow", Duration::from_secs(3600));
    registry
        .register(
            slow,
            meta("slow", "slow").with_max_retries(1).with_timeout(2),
        )
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let result = registry.execute_agent("slow", AgentInput::new("x")).await;
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "slow");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(probe.calls(), 2);
    assert_eq!(probe.dropped_unfinished(), 2);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(4080) && elapsed <= Duration::from_millis(4120));

    let (flaky, flaky_probe) =
        Scripted::new("flaky", [Step::Fail(transient("busy")), Step::Ok("ok")]).boxed();
    registry
        .register(flaky, meta("flaky", "flaky").with_max_retries(0))
        .await
        .unwrap();
    assert!(registry
        .execute_agent("flaky", AgentInput::new("x"))
        .await
        .is_err());
    assert_eq!(flaky_probe.calls(), 1, "max_retries 0 means one attempt");
}

/// Blocks inside `execute` until released.
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl Agent for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn description(&self) -> &str {
        "waits to be released"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(AgentOutput::new("released"))
    }
}

#[tokio::test]
async fn no_lock_is_held_while_an_agent_runs() {
    let registry = Arc::new(AgentRegistry::new());
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    registry
        .register(
            Box::new(Gate {
                entered: Arc::clone(&entered),
                release: Arc::clone(&release),
            }),
            meta("gate", "gate"),
        )
        .await
        .unwrap();
    let running = {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move { registry.execute_agent("gate", AgentInput::new("x")).await })
    };
    entered.notified().await;
    // While the gate agent runs, every other registry call completes.
    tokio::time::timeout(Duration::from_secs(5), async {
        registry
            .register(echo("other"), meta("other", "other"))
            .await
            .unwrap();
        assert_eq!(registry.find(&AgentFilter::new()).await.len(), 2);
        registry.disable("gate").await.unwrap();
        registry.enable("gate").await.unwrap();
        assert!(registry.unregister("other").await.is_ok());
        assert_eq!(registry.list().await.len(), 1);
    })
    .await
    .expect("registry calls must not wait for a running agent");
    release.notify_one();
    assert_eq!(running.await.unwrap().unwrap().content, "released");
}

async fn catalogue() -> AgentRegistry {
    let mk = |id: &'static str| -> Box<dyn Agent> {
        Box::new(SimpleAgent::new(id, "", |input| {
            Ok(AgentOutput::new(input.content))
        }))
    };
    AgentRegistryBuilder::new()
        .with_agent(
            mk("zeta"),
            AgentMetadata::new("zeta", "zeta", "", "research")
                .with_tool("web-search")
                .with_tool("read-file")
                .with_skill("citation")
                .with_tag("academic"),
        )
        .await
        .unwrap()
        .with_agent(
            mk("alpha"),
            AgentMetadata::new("alpha", "alpha", "", "research")
                .with_tool("web-search")
                .with_tag("academic")
                .with_enabled(false),
        )
        .await
        .unwrap()
        .with_agent(
            mk("mid"),
            AgentMetadata::new("mid", "mid", "", "analysis").with_tool("web-search"),
        )
        .await
        .unwrap()
        .build()
}

fn ids(found: &[AgentMetadata]) -> Vec<&str> {
    found.iter().map(|m| m.id.as_str()).collect()
}

#[tokio::test]
async fn find_matches_every_criterion_and_sorts_by_id() {
    let registry = catalogue().await;
    assert_eq!(
        ids(&registry.find(&AgentFilter::new()).await),
        ["alpha", "mid", "zeta"]
    );
    assert_eq!(
        ids(&registry
            .find(&AgentFilter::new().with_category("research"))
            .await),
        ["alpha", "zeta"]
    );
    assert_eq!(
        ids(&registry
            .find(&AgentFilter::new().with_tool("web-search"))
            .await),
        ["alpha", "mid", "zeta"]
    );
    assert_eq!(
        ids(&registry
            .find(
                &AgentFilter::new()
                    .with_tool("web-search")
                    .with_tool("read-file")
            )
            .await),
        ["zeta"]
    );
    assert_eq!(
        ids(&registry
            .find(&AgentFilter::new().with_skill("citation"))
            .await),
        ["zeta"]
    );
    assert_eq!(
        ids(&registry
            .find(
                &AgentFilter::new()
                    .with_category("research")
                    .with_tag("academic")
                    .enabled_only()
            )
            .await),
        ["zeta"]
    );
    assert!(registry
        .find(
            &AgentFilter::new()
                .with_category("analysis")
                .with_tag("academic")
        )
        .await
        .is_empty());
}

#[tokio::test]
async fn registry_bookkeeping() {
    let registry = catalogue().await;
    assert_eq!(registry.count().await, 3);
    assert!(registry.contains("mid").await);
    assert_eq!(registry.metadata("mid").await.unwrap().category, "analysis");
    assert_eq!(registry.get("mid").await.unwrap().name(), "mid");
    let removed = registry.unregister("mid").await.unwrap();
    assert_eq!(removed.id, "mid");
    assert!(!registry.contains("mid").await);
    assert_eq!(
        registry.unregister("mid").await,
        Err(RegistryError::AgentNotFound("mid".into()))
    );
    assert_eq!(ids(&registry.list().await), ["alpha", "zeta"]);
}

#[tokio::test]
async fn registry_errors_convert_with_question_mark() {
    async fn in_orchestration_code(registry: &AgentRegistry) -> Result<AgentOutput> {
        registry.register(echo("a"), meta("a", "a")).await?;
        registry.register(echo("a"), meta("a", "a")).await?;
        registry.execute_agent("a", AgentInput::new("x")).await
    }
    async fn in_main(
        registry: &AgentRegistry,
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        registry.register(echo("b"), meta("", "b")).await?;
        Ok(())
    }
    let registry = AgentRegistry::new();
    assert_eq!(
        in_orchestration_code(&registry).await,
        Err(OrchestrationError::Registry(RegistryError::DuplicateId(
            "a".into()
        )))
    );
    let error = in_main(&registry).await.unwrap_err();
    assert_eq!(error.to_string(), "agent id must not be empty");
}

#[test]
fn metadata_defaults_and_builders() {
    let metadata = AgentMetadata::new(
        "research-agent",
        "Academic Researcher",
        "Expert",
        "research",
    )
    .with_tool("web-search")
    .with_skill("citation")
    .with_tag("academic")
    .with_version("2.0.0")
    .with_max_retries(5)
    .with_timeout(120);
    assert_eq!(metadata.version, "2.0.0");
    assert_eq!(metadata.max_retries, 5);
    assert_eq!(metadata.timeout_secs, 120);
    assert!(metadata.enabled);
    let defaults = AgentMetadata::new("x", "x", "", "c");
    assert_eq!(
        (
            defaults.version.as_str(),
            defaults.max_retries,
            defaults.timeout_secs
        ),
        ("1.0.0", 3, 300)
    );
    let json = serde_json::to_string(&metadata).unwrap();
    assert_eq!(
        serde_json::from_str::<AgentMetadata>(&json).unwrap(),
        metadata
    );
}
