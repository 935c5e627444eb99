//! Live progress of a run, fed by the library's [`RunObserver`] events: one line
//! per agent and group (waiting, running, retrying n/m, done, failed), with its
//! elapsed time and tokens — redrawn in place on a terminal (indicatif), where a
//! running agent also shows the latest line it streamed or printed ([`Previews`]),
//! or logged line by line otherwise. On a terminal shorter than the flow, the
//! rows that matter now are shown, with a footer counting all ([`layout`]);
//! rows are cut to the terminal's width.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use claude_agent_sdk::orchestration::{
    NodeId, OrchestrationError, ParentAttempt, RunEvent, RunId, RunObserver, Usage,
};
use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::layout;
use super::preview::Previews;
use crate::graph_plan::MapCounts;
use crate::traces::{human_duration, human_tokens};
use crate::workflow::env::Redactor;
use crate::workflow::{Node, Workflow};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Lines redrawn in place (stderr is a terminal).
    Live,
    /// One log line per event.
    Plain,
    /// Nothing.
    Quiet,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting,
    Running {
        attempt: u32,
        max: u32,
    },
    Retrying {
        next: u32,
        max: u32,
    },
    Done,
    Failed,
    Interrupted,
    NotRun,
    /// An ask waiting for its answer.
    Paused,
}

#[derive(Debug, Clone)]
struct Line {
    name: String,
    /// Whether it is an ask (a question to a person).
    ask: bool,
    depth: usize,
    state: State,
    first_start: Option<Instant>,
    finished: Option<Instant>,
    usage: Usage,
    /// The most attempts the agent may get, once known.
    max: u32,
    /// When it last changed (a sequence number), to show the latest first.
    changed: u64,
    /// Its steps (a map node's items run as steps of a run of their own):
    /// when each started, and whether its last attempt failed.
    steps: HashMap<(RunId, NodeId), Seen>,
    /// A map node's items in its current run, once they started.
    items: Option<Items>,
}

/// How a map's items are doing.
#[derive(Debug, Clone, Copy, Default)]
struct Items {
    /// How many there are, when known.
    total: Option<usize>,
    /// How many succeeded.
    done: usize,
}

/// Item `index` (from 1) of map `name`'s `total`: `research[2/3]`.
fn item_label(name: &str, index: usize, total: Option<usize>) -> String {
    match total {
        Some(total) => format!("{name}[{index}/{total}]"),
        None => format!("{name}[{index}]"),
    }
}

/// What the display saw of one step of a line.
#[derive(Debug, Clone, Copy)]
struct Seen {
    started: Instant,
    /// Whether its last attempt failed.
    failed: bool,
    /// The most attempts it may get.
    max: u32,
}

struct Shared {
    lines: Mutex<Vec<Line>>,
    display: Display,
    redactor: Redactor,
    started: Instant,
    /// The rows of the live display (fewer than the lines when the terminal
    /// is short; see [`layout`]), and the footer after them.
    bars: Vec<ProgressBar>,
    footer: Option<ProgressBar>,
    /// The terminal's width, in columns.
    columns: usize,
    /// Numbers the changes of lines.
    changes: AtomicU64,
    multi: Option<MultiProgress>,
    stopped: AtomicBool,
    /// Set while the terminal is lent to a prompt: the ticker draws nothing.
    held: AtomicBool,
    /// Held while the ticker draws: a prompt taking the terminal waits for
    /// the draw under way.
    drawing: Mutex<()>,
    /// The latest run not nested in another (a resumed one after a prompt).
    run: Mutex<Option<RunId>>,
    previews: Previews,
    /// The map nodes' names, and how many items each one's run has.
    maps: HashSet<String>,
    counts: MapCounts,
    /// The runs of map nodes' items: the map's name, and how many items.
    map_runs: Mutex<HashMap<RunId, (String, Option<usize>)>>,
    /// The sequential and parallel groups with a budget, which run as the
    /// one step of a graph of their own, and the runs of those graphs (whose
    /// step is the group's attempt again: not shown twice).
    budgeted: HashSet<String>,
    wrappers: Mutex<HashSet<(RunId, String)>>,
}

/// The run's progress display; clone it to hand it to the context as an observer.
#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Progress {
    /// A display of every step of `workflow`'s flow, showing beside each running
    /// agent its latest line from `previews`, and each map's items (how
    /// many, from `counts`).
    #[must_use]
    pub fn new(
        workflow: &Workflow,
        display: Display,
        previews: Previews,
        counts: MapCounts,
    ) -> Self {
        let mut maps = HashSet::new();
        let mut budgeted = HashSet::new();
        let mut note_maps = |group: &crate::workflow::Group| {
            if let Some(spec) = &group.graph {
                maps.extend(spec.maps.iter().map(|map| map.node.clone()));
            } else if group.budget.is_some() {
                budgeted.insert(group.name.clone());
            }
        };
        note_maps(&workflow.flow);
        workflow.flow.walk(&mut |node: &Node, _| {
            if let Node::Group(group) = node {
                note_maps(group);
            }
        });
        let mut lines = Vec::new();
        for row in super::summary::rows(workflow) {
            let (name, depth, ask) = match row {
                super::summary::Row::Step(node, depth) => (node.name(), depth, false),
                super::summary::Row::Ask(id) => (id, 1, true),
            };
            lines.push(Line {
                name: name.to_owned(),
                ask,
                depth,
                state: State::Waiting,
                first_start: None,
                finished: None,
                usage: Usage::default(),
                max: 0,
                changed: 0,
                steps: HashMap::new(),
                items: None,
            });
        }
        let (rows, columns) = console::Term::stderr().size();
        let (multi, bars, footer) = if display == Display::Live {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(15));
            let style = ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let shown = lines.len().min(layout::slots(usize::from(rows)));
            let bars = (0..shown)
                .map(|_| multi.add(ProgressBar::new_spinner().with_style(style.clone())))
                .collect();
            let footer = multi.add(ProgressBar::new_spinner().with_style(style));
            (Some(multi), bars, Some(footer))
        } else {
            (None, Vec::new(), None)
        };
        let progress = Self {
            shared: Arc::new(Shared {
                lines: Mutex::new(lines),
                display,
                redactor: workflow.redactor.clone(),
                started: Instant::now(),
                bars,
                footer,
                columns: usize::from(columns).max(20),
                changes: AtomicU64::new(0),
                multi,
                stopped: AtomicBool::new(false),
                held: AtomicBool::new(false),
                drawing: Mutex::new(()),
                run: Mutex::new(None),
                previews,
                maps,
                counts,
                map_runs: Mutex::new(HashMap::new()),
                budgeted,
                wrappers: Mutex::new(HashSet::new()),
            }),
        };
        progress.redraw(0);
        progress
    }

    /// Prints a note above the lines (or as a log line; below a prompt,
    /// which has the terminal, as a line of its own).
    pub fn note(&self, text: &str) {
        match self.shared.display {
            Display::Quiet => {}
            Display::Plain => errln!("{} {text}", self.stamp()),
            Display::Live if self.shared.held.load(Ordering::Acquire) => errln!("\n{text}"),
            Display::Live => {
                if let Some(multi) = &self.shared.multi {
                    let _ = multi.println(text);
                }
            }
        }
    }

    /// Runs `f` (a prompt) with the live lines cleared and held still, and
    /// draws them again afterwards. The display is not locked meanwhile: a
    /// note, or the end of a run given up on while it asks (Ctrl-C), does
    /// not wait for an answer.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.shared.held.store(true, Ordering::Release);
        if let Some(multi) = &self.shared.multi {
            let _drawing = self.drawing();
            let _ = multi.clear();
        }
        let result = f();
        self.shared.held.store(false, Ordering::Release);
        result
    }

    /// Stops drawing at once and prints `text` on a line of its own below
    /// what was drawn, taking no lock of the display (a prompt may have the
    /// terminal): for an exit that cannot wait. The terminal is left as it
    /// is (the display hides no cursor, sets no mode).
    pub fn abandon(&self, text: &str) {
        let drawn = !self.shared.stopped.swap(true, Ordering::AcqRel);
        self.shared.held.store(true, Ordering::Release);
        match self.shared.display {
            // The last live line has no line break of its own.
            Display::Live if drawn => errln!("\n{text}"),
            Display::Plain => errln!("{} {text}", self.stamp()),
            Display::Live | Display::Quiet => errln!("{text}"),
        }
    }

    /// The latest run not nested in another, once it started.
    pub fn run(&self) -> Option<RunId> {
        *self
            .shared
            .run
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the live lines moving (spinners, elapsed times) until [`finish`](Self::finish).
    pub fn spawn_ticker(&self) {
        if self.shared.display != Display::Live {
            return;
        }
        let progress = self.clone();
        tokio::spawn(async move {
            let mut frame = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !progress.shared.stopped.load(Ordering::Acquire) {
                tick.tick().await;
                frame = frame.wrapping_add(1);
                let _drawing = progress.drawing();
                if !progress.shared.held.load(Ordering::Acquire)
                    && !progress.shared.stopped.load(Ordering::Acquire)
                {
                    progress.redraw(frame);
                }
            }
        });
    }

    /// Marks agents still running as interrupted, draws the last state, and
    /// stops redrawing.
    pub fn finish(&self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            // Abandoned: nothing more is drawn.
            return;
        }
        if self.shared.display == Display::Live && self.shared.held.load(Ordering::Acquire) {
            // A prompt given up on (Ctrl-C): what follows goes below it.
            errln!();
        }
        {
            let mut lines = self.lines();
            let now = Instant::now();
            for line in lines.iter_mut() {
                if matches!(line.state, State::Running { .. } | State::Retrying { .. }) {
                    line.state = State::Interrupted;
                    line.finished = Some(now);
                } else if line.state == State::Waiting {
                    line.state = State::NotRun;
                }
            }
        }
        self.redraw(0);
        // The summary table that follows lists every row: the live rows go,
        // the footer's final count stays.
        for bar in &self.shared.bars {
            bar.finish_and_clear();
        }
        if let Some(footer) = &self.shared.footer {
            footer.finish();
        }
        if self.shared.display == Display::Live {
            // The last live line has no line break of its own.
            errln!();
        }
    }

    fn drawing(&self) -> MutexGuard<'_, ()> {
        self.shared
            .drawing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lines(&self) -> MutexGuard<'_, Vec<Line>> {
        self.shared
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn stamp(&self) -> String {
        format!("[{:>8.3}s]", self.shared.started.elapsed().as_secs_f64())
    }

    fn redraw(&self, frame: usize) {
        if self.shared.display != Display::Live {
            return;
        }
        let lines = self.lines().clone();
        let rows: Vec<layout::Row> = lines
            .iter()
            .map(|line| layout::Row {
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
            })
            .collect();
        let (shown, hidden) = layout::choose(&rows, self.shared.bars.len());
        let columns = self.shared.columns;
        // The names' column: as wide as the widest name shown, but never so
        // wide that the states and times go past the terminal's edge (a
        // longer name is cut).
        let width = shown
            .iter()
            .map(|&i| {
                console::measure_text_width(&lines[i].name) + 2 * lines[i].depth.saturating_sub(1)
            })
            .max()
            .unwrap_or(0)
            .min(columns.saturating_sub(STATE_COLUMNS).max(MIN_NAME_COLUMNS));
        for (slot, bar) in self.shared.bars.iter().enumerate() {
            let Some(&index) = shown.get(slot) else {
                bar.set_message(String::new());
                continue;
            };
            let line = &lines[index];
            let usage = subtree_usage(&lines, index);
            let running = matches!(line.state, State::Running { .. });
            let preview = running
                .then(|| self.shared.previews.shown(&line.name))
                .flatten()
                .map(|text| layout::sanitize(&text));
            let text = render_line(line, width, frame, &usage, preview.as_deref());
            bar.set_message(console::truncate_str(&text, columns, "…").into_owned());
        }
        if let Some(footer) = &self.shared.footer {
            let elapsed = human_duration(self.shared.started.elapsed());
            // Once the run ends the rows are cleared: nothing is "not shown".
            let hidden = if self.shared.stopped.load(Ordering::Acquire) {
                0
            } else {
                hidden
            };
            let text = format!("{} · {elapsed}", layout::footer(&rows, hidden));
            footer.set_message(
                style(console::truncate_str(&text, columns, "…"))
                    .dim()
                    .to_string(),
            );
        }
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut Line)) -> Option<Line> {
        let mut lines = self.lines();
        let line = lines.iter_mut().find(|line| line.name == name)?;
        change(line);
        line.changed = self.shared.changes.fetch_add(1, Ordering::Relaxed) + 1;
        Some(line.clone())
    }

    /// The map item that `node` of `run` is, if it is one: the map's name
    /// and the item's label. A map's items are the steps of a run of their
    /// own, after the map's step there: step `n` is item `n`.
    fn item(&self, run: RunId, node: NodeId) -> Option<(String, String)> {
        let runs = self
            .shared
            .map_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (name, total) = runs.get(&run)?;
        let index = usize::try_from(node.0).unwrap_or(usize::MAX);
        Some((name.clone(), item_label(name, index, *total)))
    }

    /// Run `run`, nested in `parent`'s attempt, started: when it is the run
    /// of a map's items, the map's line counts them.
    fn run_started(&self, run: RunId, parent: ParentAttempt) {
        let name = {
            let lines = self.lines();
            lines
                .iter()
                .find(|line| {
                    self.shared.maps.contains(&line.name)
                        && line.steps.contains_key(&(parent.run, parent.node))
                })
                .map(|line| line.name.clone())
        };
        let Some(name) = name else {
            self.wrapper_started(run, parent);
            return;
        };
        let total = self.shared.counts.get(&name);
        self.shared
            .map_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run, (name.clone(), total));
        self.update(&name, |line| {
            line.items = Some(Items { total, done: 0 });
        });
        let what = match total {
            Some(1) => "running 1 item".to_owned(),
            Some(total) => format!("running {total} items"),
            None => "running its items".to_owned(),
        };
        self.log(&name, &what);
    }

    /// Notes run `run` when it is the graph a budgeted group's attempt (in
    /// `parent`) runs the group in.
    fn wrapper_started(&self, run: RunId, parent: ParentAttempt) {
        let name = self
            .lines()
            .iter()
            .find(|line| {
                self.shared.budgeted.contains(&line.name)
                    && line.steps.contains_key(&(parent.run, parent.node))
            })
            .map(|line| line.name.clone());
        if let Some(name) = name {
            self.shared
                .wrappers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((run, name));
        }
    }

    /// Whether `agent`'s event in `run` is a budgeted group's attempt seen
    /// again inside the graph that carries its budget.
    fn is_wrapped(&self, run: RunId, agent: &str) -> bool {
        self.shared
            .wrappers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&(run, agent.to_owned()))
    }

    fn log(&self, name: &str, text: &str) {
        if self.shared.display == Display::Plain {
            errln!(
                "{} {name}: {}",
                self.stamp(),
                self.shared.redactor.redact(text)
            );
        }
    }
}

/// How many of the items of the map run that finished (step of `run` started
/// at `started`) on `line` failed for good, and how many there were: the
/// steps of other runs (the map's own) that started after it.
fn failed_items(line: &Line, run: RunId, started: Instant) -> (usize, usize) {
    line.steps
        .iter()
        .filter(|((of, _), seen)| *of != run && seen.started >= started)
        .fold((0, 0), |(failed, all), (_, seen)| {
            (failed + usize::from(seen.failed), all + 1)
        })
}

/// The usage of line `index` and, for a group, of every line below it.
fn subtree_usage(lines: &[Line], index: usize) -> Usage {
    let depth = lines[index].depth;
    let mut usage = lines[index].usage;
    for line in lines.iter().skip(index + 1) {
        if line.depth <= depth {
            break;
        }
        usage += line.usage;
    }
    usage
}

/// The most characters of an agent's latest line shown beside it.
const PREVIEW_CHARS: usize = 48;

/// The columns of a row besides its name: the icon, the state and the
/// elapsed time, and the spaces between them.
const STATE_COLUMNS: usize = 2 + 2 + 14 + 1 + 7;

/// The fewest columns a name gets, however narrow the terminal.
const MIN_NAME_COLUMNS: usize = 8;

fn render_line(
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

impl RunObserver for Progress {
    fn on_event(&self, event: &RunEvent<'_>) {
        if let RunEvent::AttemptStarted { run, agent, .. }
        | RunEvent::AttemptFinished { run, agent, .. }
        | RunEvent::RetryScheduled { run, agent, .. } = event
        {
            if self.is_wrapped(*run, agent) {
                return;
            }
        }
        match event {
            RunEvent::RunStarted {
                run, parent: None, ..
            } => {
                *self
                    .shared
                    .run
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(*run);
            }
            RunEvent::RunStarted {
                run,
                parent: Some(parent),
                ..
            } => self.run_started(*run, *parent),
            RunEvent::AttemptStarted {
                run,
                node,
                agent,
                attempt,
                max_attempts,
            } => {
                let now = Instant::now();
                let item = self.item(*run, *node);
                let (name, shown) =
                    item.unwrap_or_else(|| ((*agent).to_owned(), (*agent).to_owned()));
                let is_item = name != shown;
                self.shared.previews.clear(agent);
                let mut is_map = false;
                let mut is_ask = false;
                let updated = self.update(&name, |line| {
                    is_ask = line.ask;
                    // An item's attempt leaves its map running.
                    if !is_item {
                        line.state = State::Running {
                            attempt: *attempt,
                            max: *max_attempts,
                        };
                        line.max = *max_attempts;
                        line.finished = None;
                    }
                    is_map = line.items.is_some() && !is_item;
                    line.first_start.get_or_insert(now);
                    line.steps.entry((*run, *node)).or_insert(Seen {
                        started: now,
                        failed: false,
                        max: *max_attempts,
                    });
                });
                // A map's own step says how many items it runs once it knows.
                if updated.is_some() && is_ask {
                    self.log(&shown, "asking");
                } else if updated.is_some()
                    && !(is_map || self.shared.maps.contains(&name) && !is_item)
                {
                    self.log(
                        &shown,
                        &format!("running (attempt {attempt}/{max_attempts})"),
                    );
                }
            }
            RunEvent::AttemptFinished {
                run,
                node,
                agent,
                attempt,
                outcome,
                elapsed,
            } => {
                let now = Instant::now();
                let item = self.item(*run, *node);
                let (name, shown) =
                    item.unwrap_or_else(|| ((*agent).to_owned(), (*agent).to_owned()));
                let is_item = name != shown;
                let usage = outcome.ok().and_then(Usage::from_output);
                let is_group =
                    outcome.is_ok_and(|output| output.data.get("agent_outputs").is_some());
                let interrupted = matches!(outcome, Err(OrchestrationError::Cancelled));
                let waiting = matches!(outcome, Err(OrchestrationError::InputRequired(_)));
                let mut items = (0, 0);
                let mut max = 0;
                let is_map = self.shared.maps.contains(&name);
                let updated = self.update(&name, |line| {
                    let step = line.steps.entry((*run, *node)).or_insert(Seen {
                        started: now,
                        failed: false,
                        max: line.max,
                    });
                    step.failed = outcome.is_err() && !interrupted && !waiting;
                    max = step.max;
                    let started = step.started;
                    if let Some(usage) = usage.filter(|_| !is_group) {
                        line.usage += usage;
                    }
                    if is_item {
                        if let (Ok(_), Some(counted)) = (outcome, line.items.as_mut()) {
                            counted.done += 1;
                        }
                        return;
                    }
                    line.finished = Some(now);
                    if outcome.is_ok() && is_map {
                        items = failed_items(line, *run, started);
                    }
                    line.state = match outcome {
                        Ok(_) if items.0 > 0 => State::Failed,
                        Ok(_) => State::Done,
                        Err(_) if interrupted => State::Interrupted,
                        Err(_) if waiting => State::Paused,
                        Err(_) => State::Failed,
                    };
                });
                let Some(line) = updated else { return };
                match outcome {
                    Ok(_) => {
                        let tokens = if line.usage.total_tokens() > 0 && !is_item {
                            format!(", {}", human_tokens(&line.usage))
                        } else {
                            usage
                                .filter(|usage| usage.total_tokens() > 0)
                                .map_or_else(String::new, |usage| {
                                    format!(", {}", human_tokens(&usage))
                                })
                        };
                        let (failed, of) = items;
                        let done = if failed > 0 {
                            // A map whose join accepted failed items: failed,
                            // as a parallel group's failed step is.
                            format!(
                                "failed: {failed} of {of} items failed (its join accepted the \
                                 others' results) in {}{tokens}",
                                human_duration(*elapsed)
                            )
                        } else if line.ask {
                            "answered".to_owned()
                        } else if of > 0 {
                            let items = if of == 1 { "item" } else { "items" };
                            format!(
                                "done in {} ({of} {items}){tokens}",
                                human_duration(*elapsed)
                            )
                        } else {
                            format!("done in {}{tokens}", human_duration(*elapsed))
                        };
                        self.log(&shown, &done);
                    }
                    Err(_) if interrupted => {
                        self.log(&shown, "interrupted: the run was cancelled");
                    }
                    Err(_) if waiting => {
                        self.log(&shown, "waiting for an answer");
                    }
                    Err(error) => {
                        let retryable = error.is_retryable();
                        let error = error.to_string();
                        let of = if max > 0 {
                            format!("/{max}")
                        } else {
                            String::new()
                        };
                        if retryable {
                            self.log(&shown, &format!("attempt {attempt}{of} failed: {error}"));
                        } else {
                            // "1/4" would promise retries that will not come.
                            self.log(
                                &shown,
                                &format!("failed (not retried: the failure is permanent): {error}"),
                            );
                        }
                    }
                }
            }
            RunEvent::RetryScheduled {
                run,
                node,
                agent,
                next_attempt,
                delay,
                ..
            } => {
                let item = self.item(*run, *node);
                let (name, shown) =
                    item.unwrap_or_else(|| ((*agent).to_owned(), (*agent).to_owned()));
                let is_item = name != shown;
                let mut max = 0;
                let updated = self.update(&name, |line| {
                    max = line
                        .steps
                        .get(&(*run, *node))
                        .map_or(line.max, |seen| seen.max);
                    if !is_item {
                        line.state = State::Retrying {
                            next: *next_attempt,
                            max,
                        };
                        line.finished = None;
                    }
                });
                if updated.is_some() {
                    self.log(
                        &shown,
                        &format!(
                            "retrying in {} (attempt {next_attempt}/{max})",
                            human_duration(*delay)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}
