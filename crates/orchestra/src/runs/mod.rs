//! The store commands: `runs` lists the stored runs, `show` shows one,
//! `resume` continues one that stopped, `fork` starts a new run from one,
//! and `prune` deletes old ones.
//!
//! Here: the commands that read the store and change no run (`runs`,
//! `show`) or only delete finished ones (`prune`), and how they show runs.
//! Those that start a run from a stored one are in [`continuing`]; both
//! reach the store through [`access`].

mod access;
mod continuing;

use chrono::{DateTime, Utc};
use claude_agent_sdk::orchestration::store::{Prune, RunSummary};
use claude_agent_sdk::orchestration::{ExecutionConfig, ExecutionContext, RunId};

use self::access::{failed, started, usage, with_store, Access};
pub use self::continuing::{fork, resume};
use crate::cli::{PruneArgs, RunsArgs, StoreArgs};
use crate::commands::render_trace;
use crate::exit::Exit;
use crate::run::Refusal;
use crate::table::{Align, Table};

/// `orchestra runs`.
pub fn list(args: &RunsArgs) -> Exit {
    // A limit of 0 would list nothing and say the store is empty when it is
    // not; whoever types it more likely means "no limit", which it is not.
    if args.limit == 0 {
        let problem = "`--limit` is how many runs to show, at least 1 (the default is 20)";
        return Refusal::usage(problem).tell(args.json);
    }
    with_store(&args.store, Access::Read, args.json, |store| async move {
        let runs = store.runs(args.limit).await.map_err(failed)?;
        if args.json {
            let json = serde_json::to_string_pretty(&runs)
                .map_err(|e| failed(format!("cannot encode the runs: {e}")))?;
            outln!("{json}");
            return Ok(Exit::Success);
        }
        if runs.is_empty() {
            errln!("no runs in the store yet");
            return Ok(Exit::Success);
        }
        let mut table = Table::new(&[
            ("run", Align::Left),
            ("workflow", Align::Left),
            ("status", Align::Left),
            ("started", Align::Left),
            ("duration", Align::Right),
            ("tokens", Align::Right),
            ("cost", Align::Right),
        ]);
        for run in &runs {
            table.row(vec![
                run.id.to_string(),
                workflow_name(run),
                status(run),
                run.started.format("%Y-%m-%d %H:%M:%S").to_string(),
                duration(run.started, run.finished),
                run.tokens.to_string(),
                dollars(run.cost_usd),
            ]);
        }
        out!("{}", table.render());
        Ok(Exit::Success)
    })
}

/// `orchestra show`.
pub fn show(run: &str, store_args: &StoreArgs) -> Exit {
    with_store(store_args, Access::Read, false, |store| async move {
        let summary = store.find(run).await.map_err(usage)?;
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(store.journal());
        let Some(trace) = ctx.run_trace(summary.id).await else {
            return Err(failed(format!(
                "run {} has no events in the store",
                summary.id
            )));
        };
        outln!("run       {}", summary.id);
        outln!(
            "workflow  {}",
            summary.label.as_deref().unwrap_or(&summary.orchestrator)
        );
        outln!("status    {}", status(&summary));
        outln!(
            "started   {} ({})",
            summary.started.format("%Y-%m-%d %H:%M:%S UTC"),
            duration(summary.started, summary.finished)
        );
        if let Some(forked) = summary.forks {
            match started(&store, summary.id).await.fork_step {
                Some(after) => outln!("forks     {forked}, after `{after}`"),
                None => outln!("forks     {forked}"),
            }
        }
        if let Some(previous) = summary.resumes {
            outln!("resumes   {previous}");
        }
        if let Some(next) = summary.resumed_by {
            outln!("resumed   by {next}");
        }
        outln!(
            "tokens    {} ({})",
            summary.tokens,
            dollars(summary.cost_usd)
        );
        outln!();
        out!("{}", render_trace(&trace));
        Ok(Exit::Success)
    })
}

/// `orchestra prune`.
pub fn prune(args: &PruneArgs) -> Exit {
    let which = match (&args.older_than, args.keep) {
        (Some(age), _) => match parse_age(age) {
            // An age beyond the calendar: older than any run.
            Ok(age) => Prune::StartedBefore(
                Utc::now()
                    .checked_sub_signed(age)
                    .unwrap_or(chrono::DateTime::<Utc>::UNIX_EPOCH),
            ),
            Err(problem) => {
                errln!("error: {problem}");
                return Exit::Usage;
            }
        },
        (None, Some(keep)) => Prune::KeepNewest(keep),
        (None, None) => {
            errln!("error: say which runs to delete: --older-than AGE or --keep N");
            return Exit::Usage;
        }
    };
    with_store(&args.store, Access::Write, false, |store| async move {
        let deleted = store.prune(which).await.map_err(failed)?;
        errln!("deleted {deleted} run(s)");
        Ok(Exit::Success)
    })
}

/// The workflow a run belongs to, as a listing shows it: the file name.
fn workflow_name(run: &RunSummary) -> String {
    match &run.label {
        Some(label) => std::path::Path::new(label)
            .file_name()
            .map_or_else(|| label.clone(), |name| name.to_string_lossy().into_owned()),
        None => run.orchestrator.clone(),
    }
}

/// A cost as listings show it, `$0.0123`; one too large to read digit by
/// digit (the store stops a sum at the largest number rather than let it
/// overflow) in scientific notation, `$1.798e308`, so the table stays a
/// table.
fn dollars(usd: f64) -> String {
    if usd.abs() < 1e12 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.3e}")
    }
}

/// A run's status (`crashed` for a run whose process died without recording
/// its end: the store tells), with the run it forks and what continued it
/// (ids cut to 12 digits, as a prefix finds them).
fn status(run: &RunSummary) -> String {
    let short = |id: RunId| id.to_string()[..12].to_owned();
    let mut status = run.status.to_string();
    if let Some(forked) = run.forks {
        status.push_str(&format!(" (fork of {})", short(forked)));
    }
    if let Some(next) = run.resumed_by {
        status.push_str(&format!(" (resumed by {})", short(next)));
    }
    status
}

fn duration(started: DateTime<Utc>, finished: Option<DateTime<Utc>>) -> String {
    let Some(finished) = finished else {
        return "-".to_owned();
    };
    // As the run's own summary says it: `850ms`, `12.3s`, `2m05s`.
    crate::traces::human_duration((finished - started).to_std().unwrap_or_default())
}

/// `30d`, `12h`, `90m`, `45s` as a duration.
fn parse_age(text: &str) -> Result<chrono::TimeDelta, String> {
    let text = text.trim();
    let bad =
        || format!("`{text}` is not an age: write a number and a unit, as 30d, 12h, 90m or 45s");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => number.checked_mul(86_400),
        "h" => number.checked_mul(3_600),
        "m" => number.checked_mul(60),
        "s" => Some(number),
        _ => None,
    }
    .ok_or_else(bad)?;
    chrono::TimeDelta::try_seconds(seconds).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_durations() {
        assert_eq!(parse_age("30d").unwrap(), chrono::TimeDelta::days(30));
        assert_eq!(parse_age("90m").unwrap(), chrono::TimeDelta::minutes(90));
        assert!(parse_age("soon").is_err());
        assert!(parse_age("10y").is_err());
        assert!(parse_age("99999999999999999d").is_err());
    }

    #[test]
    fn costs_read_as_dollars_however_large() {
        assert_eq!(dollars(0.0), "$0.0000");
        assert_eq!(dollars(0.01234), "$0.0123");
        assert_eq!(dollars(f64::MAX), "$1.798e308");
    }
}
