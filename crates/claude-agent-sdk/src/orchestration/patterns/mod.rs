//! Orchestration patterns: how a list of agents is run on one input.
//!
//! | Use case | Pattern |
//! |----------|---------|
//! | Data pipelines, multi-step workflows | [`SequentialOrchestrator`] |
//! | Multi-perspective analysis, batch processing | [`ParallelOrchestrator`] |
//! | Mixed dependencies | nest one in the other with [`OrchestratorAgent`](super::OrchestratorAgent) |
//!
//! A pattern only decides which agent runs when, and on what; retries, timeouts,
//! cancellation and traces come from [`BaseOrchestrator`](super::BaseOrchestrator).

mod parallel;
mod sequential;

pub use parallel::ParallelOrchestrator;
pub use sequential::SequentialOrchestrator;

/// The configuration builders every pattern shares; the pattern must have a
/// `base: BaseOrchestrator` field.
macro_rules! orchestrator_builders {
    () => {
        /// Replaces the whole configuration.
        #[must_use]
        pub fn with_config(
            mut self,
            config: $crate::orchestration::config::ExecutionConfig,
        ) -> Self {
            self.base = self.base.with_config(config);
            self
        }

        /// Sets the retries per agent after its first attempt (shorthand for the config's).
        #[must_use]
        pub fn with_max_retries(mut self, max_retries: usize) -> Self {
            self.base.config_mut().max_retries = max_retries;
            self
        }

        /// Bounds the whole run (shorthand for the config's).
        #[must_use]
        pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.base.config_mut().timeout = timeout;
            self
        }

        /// Bounds each attempt of each agent (shorthand for the config's).
        #[must_use]
        pub fn with_agent_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.base.config_mut().agent_timeout = Some(timeout);
            self
        }

        /// The configuration that governs this orchestrator's runs.
        #[must_use]
        pub fn config(&self) -> &$crate::orchestration::config::ExecutionConfig {
            self.base.config()
        }
    };
}
pub(crate) use orchestrator_builders;

/// Implements [`Orchestrator`](crate::orchestration::Orchestrator) for a pattern with
/// a `base: BaseOrchestrator` field and an inherent
/// `async fn run(&self, agents, input, &ExecutionContext) -> Result<OrchestratorOutput>`
/// that leaves the trace in the context.
macro_rules! orchestrator_impl {
    ($pattern:ty) => {
        #[async_trait::async_trait]
        impl $crate::orchestration::Orchestrator for $pattern {
            fn name(&self) -> &str {
                self.base.name()
            }

            fn description(&self) -> &str {
                self.base.description()
            }

            fn config(&self) -> &$crate::orchestration::ExecutionConfig {
                self.base.config()
            }

            async fn orchestrate(
                &self,
                agents: Vec<Box<dyn $crate::orchestration::Agent>>,
                input: $crate::orchestration::OrchestratorInput,
            ) -> $crate::orchestration::Result<$crate::orchestration::OrchestratorOutput> {
                // This context is ours alone: its trace moves into the output.
                let ctx = $crate::orchestration::ExecutionContext::new(self.base.config().clone());
                let mut output = self.run(agents, input, &ctx).await?;
                output.execution_trace = ctx.take_trace();
                Ok(output)
            }

            async fn orchestrate_with_context(
                &self,
                agents: Vec<Box<dyn $crate::orchestration::Agent>>,
                input: $crate::orchestration::OrchestratorInput,
                ctx: &$crate::orchestration::ExecutionContext,
            ) -> $crate::orchestration::Result<$crate::orchestration::OrchestratorOutput> {
                // The caller keeps the context's trace; the output gets a copy.
                let mut output = self.run(agents, input, ctx).await?;
                output.execution_trace = ctx.get_trace().await;
                Ok(output)
            }
        }
    };
}
pub(crate) use orchestrator_impl;
