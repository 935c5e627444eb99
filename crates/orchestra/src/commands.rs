//! The commands that run no agent: `validate`, `agents`, `graph`, `trace` and
//! `schema`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use claude_agent_sdk::orchestration::{
    Agent, AgentFilter, AgentOutput, AgentRegistry, SimpleAgent,
};

use crate::cli::{AgentsArgs, GraphFormat};
use crate::exit::Exit;
use crate::factory::{model_of, provider_of};
use crate::table::{Align, Table};
use crate::traces::{self, human_duration, human_tokens};
use crate::workflow::raw::RawWorkflow;
use crate::workflow::values::written_duration;
use crate::workflow::{self, Node, Strictness, Workflow};

/// Loads `file`, printing its problems when it is invalid.
fn load(file: &Path, strictness: Strictness) -> Result<Workflow, Exit> {
    workflow::load(file, strictness).map_err(|invalid| {
        err!("{}", invalid.render());
        Exit::Usage
    })
}

/// `orchestra validate FILE [--require-env]`.
pub fn validate(file: &Path, require_env: bool) -> Exit {
    let strictness = if require_env {
        Strictness::Run
    } else {
        Strictness::Check
    };
    let workflow = match load(file, strictness) {
        Ok(workflow) => workflow,
        Err(exit) => return exit,
    };
    for warning in &workflow.warnings {
        errln!("warning: {warning}");
    }
    let mut groups = 0;
    workflow
        .flow
        .walk(&mut |node, _| groups += usize::from(matches!(node, Node::Group(_))));
    let format = match workflow.format {
        workflow::located::Format::Toml => "TOML",
        workflow::located::Format::Yaml => "YAML",
    };
    outln!(
        "ok: `{}` is a valid workflow ({format}): {} agent(s), {} nested group(s), {} flow",
        workflow.path.display(),
        workflow.agents.len(),
        groups,
        workflow.flow.mode.as_str()
    );
    Exit::Success
}

/// `orchestra agents FILE [filters]`: the registry's filter over the agents'
/// metadata, as a table.
pub fn agents(args: &AgentsArgs) -> Exit {
    let workflow = match load(&args.file, Strictness::Structure) {
        Ok(workflow) => workflow,
        Err(exit) => return exit,
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        errln!("error: cannot start the async runtime");
        return Exit::Failed;
    };
    let found = runtime.block_on(async {
        let registry = AgentRegistry::new();
        for def in &workflow.agents {
            // The registry needs an agent under each id; listing runs none of them.
            let placeholder: Arc<dyn Agent> = Arc::new(SimpleAgent::new(
                def.id.clone(),
                def.metadata.description.clone(),
                |_| Ok(AgentOutput::new("")),
            ));
            if let Err(e) = registry
                .register_shared(placeholder, def.metadata.clone())
                .await
            {
                return Err(e.to_string());
            }
        }
        let mut filter = AgentFilter::new();
        if let Some(category) = &args.category {
            filter = filter.with_category(category.clone());
        }
        for tool in &args.tool {
            filter = filter.with_tool(tool.clone());
        }
        for skill in &args.skill {
            filter = filter.with_skill(skill.clone());
        }
        for tag in &args.tag {
            filter = filter.with_tag(tag.clone());
        }
        if args.enabled {
            filter = filter.enabled_only();
        }
        Ok(registry.find(&filter).await)
    });
    let found = match found {
        Ok(found) => found,
        Err(problem) => {
            errln!("error: {problem}");
            return Exit::Usage;
        }
    };
    let mut table = Table::new(&[
        ("id", Align::Left),
        ("kind", Align::Left),
        ("model", Align::Left),
        ("category", Align::Left),
        ("tools", Align::Left),
        ("skills", Align::Left),
        ("tags", Align::Left),
        ("version", Align::Left),
        ("retries", Align::Right),
        ("timeout", Align::Right),
        ("enabled", Align::Left),
    ]);
    for metadata in &found {
        let def = workflow.agent(&metadata.id);
        let kind = def.map_or("", |a| a.kind.as_str());
        let model = def
            .and_then(|def| match (provider_of(def), model_of(def)) {
                (Some(provider), Some(model)) => Some(format!("{provider}/{model}")),
                (Some(provider), None) => Some(provider.to_owned()),
                _ => None,
            })
            .unwrap_or_else(|| "—".to_owned());
        table.row(vec![
            metadata.id.clone(),
            kind.to_owned(),
            model,
            metadata.category.clone(),
            metadata.tools.join(", "),
            metadata.skills.join(", "),
            metadata.tags.join(", "),
            metadata.version.clone(),
            metadata.max_retries.to_string(),
            // As the workflow writes it (`300ms`), not the registry's whole seconds.
            def.map_or_else(
                || written_seconds(metadata.timeout_secs),
                crate::workflow::AgentDef::written_timeout,
            ),
            if metadata.enabled { "yes" } else { "no" }.to_owned(),
        ]);
    }
    out!("{}", table.render());
    errln!(
        "{} of {} agent(s) match",
        found.len(),
        workflow.agents.len()
    );
    Exit::Success
}

/// An attempt timeout of whole seconds as a workflow file writes it
/// (`10m`, `45s`); `none` for the largest value, which stands for no timeout.
fn written_seconds(secs: u64) -> String {
    match secs {
        u64::MAX => "none".to_owned(),
        secs => written_duration(std::time::Duration::from_secs(secs)),
    }
}

/// `orchestra graph FILE --format mermaid|dot`.
pub fn graph(file: &Path, format: GraphFormat) -> Exit {
    match load(file, Strictness::Structure) {
        Ok(workflow) => {
            // `render` masks the secrets a label may hold (a condition, a
            // question, the workflow's name) before it escapes them.
            out!("{}", crate::graph::render(&workflow, format));
            Exit::Success
        }
        Err(exit) => exit,
    }
}

/// `orchestra trace PATH`: a saved trace as a table and a text timeline.
pub fn trace(path: &Path) -> Exit {
    let trace = match traces::read(path) {
        Ok(trace) => trace,
        Err(problem) => {
            errln!("error: {problem}");
            return Exit::Usage;
        }
    };
    out!("{}", render_trace(&trace));
    Exit::Success
}

/// The table and the timeline of `trace`.
#[must_use]
pub fn render_trace(trace: &claude_agent_sdk::orchestration::ExecutionTrace) -> String {
    let attempts = traces::attempts(trace);
    let origin = trace.start_time;
    let offset = |at: chrono::DateTime<chrono::Utc>| (at - origin).to_std().unwrap_or_default();
    let mut table = Table::new(&[
        ("agent", Align::Left),
        ("attempt", Align::Right),
        ("start", Align::Right),
        ("duration", Align::Right),
        ("tokens", Align::Right),
        ("status", Align::Left),
    ]);
    for attempt in &attempts {
        let record = attempt.record;
        let status = attempt_status(record);
        table.row(vec![
            format!("{}{}", "  ".repeat(attempt.depth), attempt.label()),
            record.attempt.to_string(),
            format!("+{}", human_duration(offset(attempt.start()))),
            human_duration(
                (attempt.end() - attempt.start())
                    .to_std()
                    .unwrap_or_default(),
            ),
            human_tokens(&attempt.own_usage()),
            status,
        ]);
    }
    let total = trace
        .duration()
        .or_else(|| attempts.iter().map(|a| offset(a.end())).max())
        .unwrap_or_default();
    let mut out = table.render();
    let _ = writeln!(
        out,
        "\n{} attempt(s), {}, {}\n",
        attempts.len(),
        human_duration(total),
        human_tokens(&trace.total_usage())
    );
    out.push_str(&timeline(&attempts, origin, total));
    out
}

/// What became of an attempt, as `show` and `trace` list it: an attempt
/// that never ended (its run is still going, or was killed) is not "ok", an
/// ask waiting for its answer and an attempt a stop cut short did not fail.
fn attempt_status(record: &claude_agent_sdk::orchestration::AgentExecution) -> String {
    let Some(error) = &record.error else {
        return if record.has_ended() {
            "ok"
        } else {
            "not finished"
        }
        .to_owned();
    };
    if let Some(question) = traces::waiting_for(error) {
        format!("waiting for an answer: {}", first_line(question, 60))
    } else if error.starts_with("interrupted") {
        first_line(error, 60)
    } else if traces::is_interruption(error) {
        format!("interrupted: {}", first_line(error, 60))
    } else {
        format!("failed: {}", first_line(error, 60))
    }
}

/// One bar per attempt on a shared time axis.
fn timeline(
    attempts: &[traces::Attempt<'_>],
    origin: chrono::DateTime<chrono::Utc>,
    total: std::time::Duration,
) -> String {
    const WIDTH: usize = 50;
    let total_us = total.as_micros().max(1) as f64;
    let labels: Vec<String> = attempts
        .iter()
        .map(|a| {
            format!(
                "{}{} #{}",
                "  ".repeat(a.depth),
                a.label(),
                a.record.attempt
            )
        })
        .collect();
    // By the columns text takes on screen (a CJK id takes two a character).
    let label_width = labels
        .iter()
        .map(|l| console::measure_text_width(l))
        .max()
        .unwrap_or(0);
    // Padded by hand: a format's width stops at 65,535, and an agent's name
    // in a trace file can be longer.
    let mut out = format!(
        "{}  0{}{}\n",
        " ".repeat(label_width),
        " ".repeat(WIDTH - 1),
        human_duration(total)
    );
    for (attempt, label) in attempts.iter().zip(&labels) {
        let at = |t: chrono::DateTime<chrono::Utc>| {
            let us = (t - origin).num_microseconds().unwrap_or(0).max(0) as f64;
            ((us / total_us) * WIDTH as f64).round() as usize
        };
        let start = at(attempt.start()).min(WIDTH - 1);
        let end = at(attempt.end()).clamp(start + 1, WIDTH);
        let fill = if attempt.record.success { '█' } else { '░' };
        let bar: String = (0..WIDTH)
            .map(|i| if (start..end).contains(&i) { fill } else { ' ' })
            .collect();
        let pad = " ".repeat(label_width.saturating_sub(console::measure_text_width(label)));
        let _ = writeln!(out, "{label}{pad}  |{bar}|");
    }
    out.push_str("(█ succeeded, ░ failed)\n");
    out
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// `orchestra schema`: the JSON Schema of workflow files.
pub fn schema() -> Exit {
    let schema = schemars::schema_for!(RawWorkflow);
    match serde_json::to_string_pretty(&schema) {
        Ok(json) => {
            outln!("{json}");
            Exit::Success
        }
        Err(e) => {
            errln!("error: cannot encode the schema: {e}");
            Exit::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use claude_agent_sdk::orchestration::{AgentExecution, AgentInput, ExecutionTrace};

    use super::*;

    #[test]
    fn the_timeline_lines_up_wide_names_by_the_columns_they_take() {
        let start = chrono::Utc::now();
        let mut trace = ExecutionTrace::starting_at(start);
        for name in ["日本", "ab"] {
            let mut record = AgentExecution::new(name, 1, start, AgentInput::new("x"));
            record.end_time = Some(start + chrono::TimeDelta::milliseconds(10));
            record.success = true;
            trace.agent_executions.push(record);
        }
        trace.end_time = Some(start + chrono::TimeDelta::milliseconds(10));
        let rendered = render_trace(&trace);
        // Where each bar starts, in screen columns.
        let bars: Vec<usize> = rendered
            .lines()
            .filter(|line| line.ends_with('|'))
            .map(|line| {
                let at = line.find('|').unwrap_or(0);
                console::measure_text_width(&line[..at])
            })
            .collect();
        assert_eq!(bars.len(), 2, "{rendered}");
        assert_eq!(bars[0], bars[1], "{rendered}");
    }
}
