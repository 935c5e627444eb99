//! Which rows the live display shows when the flow has more agents than the
//! terminal has lines — designed for 1,000 agents on a 24-line terminal.
//!
//! Every row cannot be drawn: indicatif would scroll rows past the top of the
//! screen and leave them behind. The display keeps one row per line of the
//! terminal but a few, and fills them by what matters now — running and
//! retrying agents first, then failures, then what finished last, then what
//! waits — shown in flow order; a footer counts everything (`812/1000 done ·
//! 8 running · 1 failed · 179 waiting`) and says how many rows are hidden.

/// What a row's agent or group is doing, as far as choosing rows goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Running or retrying.
    Active,
    /// A question waiting for a person's answer.
    Asking,
    /// Failed or interrupted.
    Failed,
    /// Done.
    Done,
    /// Waiting for its turn.
    Waiting,
    /// Never run: the run ended first.
    NotRun,
}

/// A row to choose from: what it is doing, and when it last changed (a
/// larger number is more recent).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// What it is doing.
    pub kind: Kind,
    /// When it last changed.
    pub changed: u64,
}

/// The rows shown in `slots` lines (their indexes, in flow order) and how
/// many are hidden.
#[must_use]
pub fn choose(rows: &[Row], slots: usize) -> (Vec<usize>, usize) {
    if rows.len() <= slots {
        return ((0..rows.len()).collect(), 0);
    }
    let rank = |kind: Kind| match kind {
        Kind::Active | Kind::Asking => 0,
        Kind::Failed => 1,
        Kind::Done => 2,
        Kind::Waiting | Kind::NotRun => 3,
    };
    let mut order: Vec<usize> = (0..rows.len()).collect();
    // Most important first; among equals, the latest change first, then
    // flow order (waiting rows: the next to run).
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&rows[a], &rows[b]);
        rank(ra.kind)
            .cmp(&rank(rb.kind))
            .then_with(|| match ra.kind {
                Kind::Waiting | Kind::NotRun => a.cmp(&b),
                _ => rb.changed.cmp(&ra.changed).then(a.cmp(&b)),
            })
    });
    let mut shown: Vec<usize> = order.into_iter().take(slots).collect();
    shown.sort_unstable();
    let hidden = rows.len() - shown.len();
    (shown, hidden)
}

/// The footer: how many are done, running, asking, failed and waiting, out
/// of how many, and how many rows are not shown.
#[must_use]
pub fn footer(rows: &[Row], hidden: usize) -> String {
    let count = |kind: Kind| rows.iter().filter(|row| row.kind == kind).count();
    let mut parts = vec![format!("{}/{} done", count(Kind::Done), rows.len())];
    for (kind, word) in [
        (Kind::Active, "running"),
        (Kind::Asking, "waiting for an answer"),
        (Kind::Failed, "failed"),
        (Kind::Waiting, "waiting"),
        (Kind::NotRun, "not run"),
    ] {
        let n = count(kind);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    if hidden > 0 {
        parts.push(format!("{hidden} more not shown"));
    }
    parts.join(" · ")
}

/// The rows a terminal of `height` lines has for agents: all but the footer
/// and a line for the prompt and notes, and never fewer than 3.
#[must_use]
pub fn slots(height: usize) -> usize {
    height.saturating_sub(3).max(3)
}

/// Text a program printed, made safe to show in one terminal row: what
/// follows its last carriage return, without escape sequences or other
/// control characters.
#[must_use]
pub fn sanitize(text: &str) -> String {
    let after_return = text.rsplit('\r').next().unwrap_or(text);
    console::strip_ansi_codes(after_return)
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(kinds: &[(Kind, u64)]) -> Vec<Row> {
        kinds
            .iter()
            .map(|&(kind, changed)| Row { kind, changed })
            .collect()
    }

    #[test]
    fn a_thousand_agents_fit_a_small_terminal_with_the_running_ones_shown() {
        let mut kinds: Vec<(Kind, u64)> = (0..1000).map(|i| (Kind::Done, i)).collect();
        kinds[500] = (Kind::Active, 0);
        kinds[900] = (Kind::Failed, 3);
        for entry in kinds.iter_mut().skip(950) {
            *entry = (Kind::Waiting, 0);
        }
        let rows = rows(&kinds);
        let (shown, hidden) = choose(&rows, slots(24));
        assert_eq!(shown.len(), 21);
        assert_eq!(hidden, 979);
        assert!(shown.contains(&500) && shown.contains(&900));
        // The latest finished come next, and the rows stay in flow order.
        assert!(shown.contains(&949));
        assert!(shown.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(
            footer(&rows, hidden),
            "948/1000 done · 1 running · 1 failed · 50 waiting · 979 more not shown"
        );
    }

    #[test]
    fn the_last_footer_counts_what_never_ran_as_not_run() {
        let rows = rows(&[(Kind::Done, 1), (Kind::Failed, 2), (Kind::NotRun, 0)]);
        assert_eq!(footer(&rows, 0), "1/3 done · 1 failed · 1 not run");
    }

    #[test]
    fn a_question_waiting_for_its_answer_is_counted_as_such_not_as_running() {
        let rows = rows(&[(Kind::Done, 1), (Kind::Asking, 2), (Kind::NotRun, 0)]);
        assert_eq!(
            footer(&rows, 0),
            "1/3 done · 1 waiting for an answer · 1 not run"
        );
        // Shown before what finished, as a running agent is.
        assert_eq!(choose(&rows, 1), (vec![1], 2));
    }

    #[test]
    fn few_agents_are_all_shown() {
        let rows = rows(&[(Kind::Waiting, 0), (Kind::Active, 1)]);
        assert_eq!(choose(&rows, 10), (vec![0, 1], 0));
    }

    #[test]
    fn printed_text_loses_carriage_returns_and_escape_sequences() {
        assert_eq!(
            sanitize("10%\r50%\r\x1b[32m90%\x1b[0m done\x07"),
            "90% done"
        );
    }
}
