//! How one row of the live display reads: its icon, its name (indented by
//! depth, cut to the names' column), its state, elapsed time and tokens,
//! and a running agent's latest line — styled, as text.
//!
//! Drawing is kept to text made from a [`Line`]: which rows get the
//! terminal's few lines is `layout`'s choice, and when they are drawn the
//! display's (`Progress::redraw`).

use claude_agent_sdk::orchestration::Usage;
use console::style;

use super::line::{Line, State};
use crate::run::layout;
use crate::traces::{human_duration, human_tokens};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The most characters of an agent's latest line shown beside it.
const PREVIEW_CHARS: usize = 48;

/// The columns of a row besides its name: the icon, the state and the
/// elapsed time, and the spaces between them.
const STATE_COLUMNS: usize = 2 + 2 + 14 + 1 + 7;

/// The fewest columns a name gets, however narrow the terminal.
const MIN_NAME_COLUMNS: usize = 8;

/// What row `line` is doing, as far as choosing the rows shown goes.
pub(super) fn layout_row(line: &Line) -> layout::Row {
    layout::Row {
        kind: match line.state {
            State::Running { .. } if line.ask => layout::Kind::Asking,
            State::Running { .. } | State::Retrying { .. } => layout::Kind::Active,
            State::Paused => layout::Kind::Asking,
            State::Failed | State::Interrupted => layout::Kind::Failed,
            State::Done => layout::Kind::Done,
            State::Waiting => layout::Kind::Waiting,
            State::NotRun => layout::Kind::NotRun,
        },
        changed: line.changed,
    }
}

/// The names' column: as wide as the widest name `shown` (indices into
/// `lines`), but never so wide that the states and times go past the edge
/// of a terminal `columns` wide (a longer name is cut).
pub(super) fn name_width(lines: &[Line], shown: &[usize], columns: usize) -> usize {
    shown
        .iter()
        .map(|&i| {
            console::measure_text_width(&lines[i].name) + 2 * lines[i].depth.saturating_sub(1)
        })
        .max()
        .unwrap_or(0)
        .min(columns.saturating_sub(STATE_COLUMNS).max(MIN_NAME_COLUMNS))
}

/// Row `line` in a names' column `width` wide, its spinner at `frame`, with
/// the tokens of `usage` and the latest line `preview`.
pub(super) fn render_line(
    line: &Line,
    width: usize,
    frame: usize,
    usage: &Usage,
    preview: Option<&str>,
) -> String {
    let (icon, state) = match &line.state {
        // A map: how many of its items are done.
        State::Running { .. } | State::Retrying { .. } if line.items.is_some() => {
            let items = line.items.unwrap_or_default();
            let total = items.total.map_or_else(String::new, |t| format!("/{t}"));
            (
                SPINNER[frame % SPINNER.len()],
                format!("{}{total} items done", items.done),
            )
        }
        State::Running { .. } if line.ask => (SPINNER[frame % SPINNER.len()], "asking".to_owned()),
        State::Done if line.ask => ("✓", "answered".to_owned()),
        State::Paused => ("?", "waiting for answer".to_owned()),
        State::Waiting => ("·", "waiting".to_owned()),
        State::Running { attempt, max } if *max > 1 => (
            SPINNER[frame % SPINNER.len()],
            format!("running {attempt}/{max}"),
        ),
        State::Running { .. } => (SPINNER[frame % SPINNER.len()], "running".to_owned()),
        State::Retrying { next, max } => ("↻", format!("retrying {next}/{max}")),
        State::Done => ("✓", "done".to_owned()),
        State::Failed => ("✗", "failed".to_owned()),
        State::Interrupted => ("⊘", "interrupted".to_owned()),
        State::NotRun => ("·", "not run".to_owned()),
    };
    // Pad before styling: escape codes must not count as width.
    let state = format!("{state:<14}");
    let (icon, state) = match &line.state {
        State::Waiting | State::NotRun => (style(icon).dim(), style(state).dim()),
        State::Running { .. } => (style(icon).cyan(), style(state).cyan()),
        State::Retrying { .. } | State::Interrupted | State::Paused => {
            (style(icon).yellow(), style(state).yellow())
        }
        State::Done => (style(icon).green(), style(state).green()),
        State::Failed => (style(icon).red(), style(state).red()),
    };
    let elapsed = match (line.first_start, line.finished) {
        (Some(start), Some(end)) => human_duration(end - start),
        (Some(start), None) => human_duration(start.elapsed()),
        _ => String::new(),
    };
    let indent = "  ".repeat(line.depth.saturating_sub(1));
    let name = format!("{indent}{}", line.name);
    let name = console::truncate_str(&name, width, "…");
    let pad = " ".repeat(width.saturating_sub(console::measure_text_width(&name)));
    let tokens = if usage.total_tokens() > 0 {
        human_tokens(usage)
    } else {
        String::new()
    };
    let preview = preview.map_or_else(String::new, |text| {
        // The end of the line is the news; a cut start is marked.
        let chars = text.chars().count();
        let shown = if chars > PREVIEW_CHARS {
            let skip = chars - (PREVIEW_CHARS - 1);
            let cut = text.char_indices().nth(skip).map_or(text.len(), |(i, _)| i);
            format!("…{}", &text[cut..])
        } else {
            text.to_owned()
        };
        format!("  {}", style(shown).dim())
    });
    format!("{icon} {name}{pad}  {state} {elapsed:>7}  {tokens}{preview}")
}
