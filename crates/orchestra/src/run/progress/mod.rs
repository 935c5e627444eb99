//! Live progress of a run, fed by the library's
//! [`RunObserver`](claude_agent_sdk::orchestration::RunObserver) events: one
//! line per agent and group (waiting, running, retrying n/m, done, failed),
//! with its elapsed time and tokens — redrawn in place on a terminal
//! (indicatif), where a running agent also shows the latest line it streamed
//! or printed ([`Previews`]), or logged line by line otherwise. On a terminal
//! shorter than the flow, the rows that matter now are shown, with a footer
//! counting all ([`layout`]); rows are cut to the terminal's width.
//!
//! One concept per file, so that the drawing, the bookkeeping of nested
//! runs and the reading of events can each be read (and changed) alone:
//! [`line`](mod@line) is a row and what the display saw of it; [`render`]
//! the text a row is drawn as; this file the display itself — its rows
//! behind one lock, the terminal, the ticker, notes and prompts; [`nested`]
//! the nested runs it tells apart (a map's items, a budgeted group's graph);
//! and [`observer`] turns the run's events into changes of rows. Each uses
//! only those named before it.

mod line;
mod nested;
mod observer;
mod render;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use claude_agent_sdk::orchestration::RunId;
use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use self::line::{subtree_usage, Line, State};
use super::layout;
use super::preview::Previews;
use crate::graph_plan::MapCounts;
use crate::traces::human_duration;
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
            lines.push(Line::waiting(name, depth, ask));
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
        let rows: Vec<layout::Row> = lines.iter().map(render::layout_row).collect();
        let (shown, hidden) = layout::choose(&rows, self.shared.bars.len());
        let columns = self.shared.columns;
        let width = render::name_width(&lines, &shown, columns);
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
            let text = render::render_line(line, width, frame, &usage, preview.as_deref());
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
