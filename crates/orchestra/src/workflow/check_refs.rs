//! Checking what a template's `{{output.ID}}` can read: the output of `ID`
//! exists only once `ID` has finished, so a template that reads a parallel
//! sibling (a race: usually `""`), a step that comes later in its sequence,
//! or the group it runs inside, is an error before the run — not a text that
//! is silently empty. Graphs are left to their edges.

use std::collections::HashMap;

use super::diagnostics::Diagnostic;
use super::located::Span;
use super::model::{Group, Mode, Node};

/// One group around a step: its name, mode, and the index of the step in it
/// that leads to the step.
type Around = (String, Mode, usize);

/// Where every agent and group sits: the groups around it, outermost first.
fn positions(root: &Group) -> HashMap<String, Vec<Around>> {
    let mut found: HashMap<String, Vec<Around>> = HashMap::new();
    found.insert(root.name.clone(), Vec::new());
    let mut pending: Vec<(&Group, Vec<Around>)> = vec![(root, Vec::new())];
    while let Some((group, path)) = pending.pop() {
        for (index, step) in group.steps.iter().enumerate() {
            let mut inner = path.clone();
            inner.push((group.name.clone(), group.mode, index));
            found.insert(step.name().to_owned(), inner.clone());
            if let Node::Group(child) = step {
                pending.push((child, inner));
            }
        }
    }
    found
}

/// The problems of `{{output.ID}}` references `(reader, id, place)` that can
/// never read a finished output.
pub fn unready_outputs(root: &Group, refs: &[(String, String, Option<Span>)]) -> Vec<Diagnostic> {
    let places = positions(root);
    let mut problems = Vec::new();
    for (reader, id, span) in refs {
        let (Some(at), Some(of)) = (places.get(reader), places.get(id)) else {
            continue;
        };
        let placeholder = format!("{{{{output.{id}}}}}");
        if at.iter().any(|(group, _, _)| group == id) {
            problems.push(
                Diagnostic::new(
                    format!("`{placeholder}` in `{reader}` reads the group `{reader}` runs in"),
                    *span,
                )
                .with_label("that group's output does not exist before it ends")
                .with_help(Some(format!("read it from a step after group `{id}`"))),
            );
            continue;
        }
        let Some((shared, mine, theirs)) = at
            .iter()
            .zip(of.iter())
            .find(|(mine, theirs)| mine != theirs)
            .map(|(mine, theirs)| (&mine.0, mine, theirs))
        else {
            continue;
        };
        let (_, mode, my_index) = mine;
        let (_, _, their_index) = theirs;
        let problem = match mode {
            Mode::Parallel => Some((
                format!("`{placeholder}` in `{reader}` reads a step that runs at the same time"),
                format!("`{reader}` and `{id}` run in parallel in group `{shared}`"),
                format!("read it from a step after group `{shared}`, in a sequence"),
            )),
            Mode::Sequential if their_index > my_index => Some((
                format!("`{placeholder}` in `{reader}` reads a step that runs later"),
                format!("`{id}` comes after `{reader}` in group `{shared}`"),
                format!("move `{reader}` after `{id}`"),
            )),
            _ => None,
        };
        if let Some((message, label, help)) = problem {
            problems.push(
                Diagnostic::new(message, *span)
                    .with_label(label)
                    .with_help(Some(help)),
            );
        }
    }
    problems
}
