//! The specification's section 6.9, "API Reference": the re-exports it lists,
//! verbatim, name the same items as the crate's flat re-exports.

use std::marker::PhantomData;

use claude_agent_sdk::orchestration as orch;

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
