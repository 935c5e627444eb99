//! The specification's section 6.8, "Complete Example": `examples/complete.rs`,
//! included here so its private agents can be tested.

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
