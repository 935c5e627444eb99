//! The examples' logic, run as tests: each example is included with
//! `include!` so its functions can be called and their results checked.

/// `examples/graph_review_loop.rs`: a router, a map and a loop under a budget.
mod graph_review_loop {
    include!("../examples/graph_review_loop.rs");

    #[test]
    fn main_runs_offline() {
        main().expect("the graph example runs");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_maps_and_loops_until_the_critic_approves() -> Result<()> {
        let review = review("why is checkout slow?", true).await?;
        assert_eq!(
            review.result,
            "APPROVED: Report: notes on causes; notes on impact; notes on fixes; notes on costs (revised)"
        );
        let nodes: Vec<&str> = review
            .trace
            .agent_executions
            .iter()
            .map(|step| step.agent_name.as_str())
            .collect();
        // Only the tech specialist ran; the map ran once per item; two passes of the loop.
        assert_eq!(nodes.iter().filter(|n| **n == "tech").count(), 1);
        assert!(!nodes.contains(&"billing") && !nodes.contains(&"general"));
        assert_eq!(nodes.iter().filter(|n| **n == "researcher").count(), 4);
        assert_eq!(nodes.iter().filter(|n| **n == "writer").count(), 2);
        assert_eq!(nodes.iter().filter(|n| **n == "critic").count(), 2);
        assert!(review.researchers_at_once <= 2, "parallel_limit is 2");
        // triage, tech, planner, writer ×2, critic ×2 report 120 tokens each.
        assert_eq!(review.trace.total_usage().total_tokens(), 7 * 120);
        let summary = step_summary(&review.trace);
        assert_eq!(summary.len(), 11);
        assert!(
            summary[0].contains("triage") && summary[0].ends_with("ok"),
            "{summary:?}"
        );
        assert!(summary[0].contains(" 120 tokens"), "{summary:?}");
        Ok(())
    }

    #[tokio::test]
    async fn the_router_picks_another_specialist() -> Result<()> {
        let review = review("please refund my invoice", true).await?;
        let names: Vec<&str> = review
            .trace
            .agent_executions
            .iter()
            .map(|s| s.agent_name.as_str())
            .collect();
        assert!(
            names.contains(&"billing") && !names.contains(&"tech"),
            "{names:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_critic_that_never_approves_stops_at_the_loop_bound() -> Result<()> {
        let review = review("hello", false).await?;
        let critic_passes = review.trace.attempts_of("critic").count();
        assert_eq!(critic_passes, 3, "max_iterations is 3");
        assert!(review.result.starts_with("REVISE: "), "{}", review.result);
        Ok(())
    }
}

/// `examples/durable_approval.rs`: a run on a SQLite file that pauses for an
/// approval and is resumed by a second "process" (a fresh journal and context).
#[cfg(feature = "sqlite")]
#[allow(dead_code)] // its `main`: `cli` is what the tests call
mod durable_approval {
    include!("../examples/durable_approval.rs");

    fn temp_store(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("examples-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        dir.join("runs.db")
    }

    #[tokio::test]
    async fn pauses_then_resumes_from_the_store_without_running_quote_again() -> Result<()> {
        let store = temp_store("yes");
        let calls = Calls::default();

        let Outcome::Paused(pause) = invoke(&store, "2 chairs", None, &calls).await? else {
            panic!("the first invocation pauses on the approval");
        };
        let questions = &pause.questions;
        let run = pause.run.expect("a graph's pause names its run");
        assert_eq!(questions.len(), 1);
        assert_eq!(questions[0].id, "approve");
        assert_eq!(questions[0].text, "Spend $120 for 2 chairs?");
        assert_eq!(calls.quote.load(Ordering::SeqCst), 1);
        assert_eq!(
            calls.spend.load(Ordering::SeqCst),
            0,
            "nothing is spent before the approval"
        );

        // A "second process": a fresh journal on the same file, fresh agents.
        let later = Calls::default();
        let Outcome::Finished {
            result,
            steps_run_now,
        } = invoke(&store, "ignored", Some("yes"), &later).await?
        else {
            panic!("the answered run finishes");
        };
        assert!(
            result.starts_with("paid $120 for 2 chairs (key "),
            "{result}"
        );
        assert!(
            result.contains(&run.to_string()),
            "the key starts with the first run's id: {result}"
        );
        assert_eq!(
            later.quote.load(Ordering::SeqCst),
            0,
            "quote finished before the pause"
        );
        assert_eq!(later.spend.load(Ordering::SeqCst), 1);
        assert!(
            !steps_run_now.iter().any(|step| step == "quote"),
            "{steps_run_now:?}"
        );
        assert!(
            steps_run_now.iter().any(|step| step == "spend"),
            "{steps_run_now:?}"
        );

        // The run is done: nothing paused is left to answer.
        let error = invoke(&store, "ignored", Some("yes"), &later)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no paused run"), "{error}");
        Ok(())
    }

    #[tokio::test]
    async fn a_no_ends_the_run_without_spending() -> Result<()> {
        let store = temp_store("no");
        let calls = Calls::default();
        assert!(matches!(
            invoke(&store, "a yacht", None, &calls).await?,
            Outcome::Paused(_)
        ));
        let Outcome::Finished { result, .. } =
            invoke(&store, "a yacht", Some("no"), &calls).await?
        else {
            panic!("the answered run finishes");
        };
        assert_eq!(
            result, "$120 for a yacht",
            "the approval's output ends the run"
        );
        assert_eq!(calls.quote.load(Ordering::SeqCst), 1);
        assert_eq!(calls.spend.load(Ordering::SeqCst), 0);
        Ok(())
    }

    #[tokio::test]
    async fn two_invocations_of_the_command_line_pause_then_finish() -> Result<()> {
        let store = temp_store("cli");
        let args = |more: &[&str]| -> Vec<String> {
            let mut args = vec!["--store".to_owned(), store.display().to_string()];
            args.extend(more.iter().map(|arg| (*arg).to_owned()));
            args
        };
        let first = cli(&args(&[])).await?;
        assert!(
            first.contains("paused, asking: [approve] Spend $120 for 10 ad slots?"),
            "{first}"
        );
        assert!(first.contains("--answer yes"), "{first}");
        let second = cli(&args(&["--answer", "yes"])).await?;
        assert!(
            second.starts_with("paid $120 for 10 ad slots (key "),
            "{second}"
        );
        assert!(
            second.ends_with(r#"steps run by this process: ["approve", "spend"]"#),
            "{second}"
        );
        Ok(())
    }
}
