//! What a node fed by several others receives — after a join, or after a
//! map — in one documented form: their contents one after another as text,
//! and a JSON array of one object per output in the input's metadata.

use crate::orchestration::agent::{AgentInput, AgentOutput};

/// The key of an input's metadata that holds, for a gathered input, the
/// gathered results as a JSON array (see [`gathered_results`]).
pub(crate) const RESULTS_KEY: &str = "results";

/// The input of a step fed gathered outputs: their text as content, the
/// JSON results in its metadata under [`RESULTS_KEY`], and the run's context
/// and metadata (from `run_input`).
pub(crate) fn gathered_input(
    run_input: &AgentInput,
    content: String,
    results: String,
) -> AgentInput {
    let mut metadata = run_input.metadata.clone();
    metadata.insert(RESULTS_KEY.to_owned(), results);
    AgentInput {
        content,
        context: run_input.context.clone(),
        metadata,
    }
}

/// One output among those gathered.
pub(crate) struct GatheredPart<'a> {
    pub(crate) agent: &'a str,
    /// For a map's item: its index and text.
    pub(crate) item: Option<(usize, &'a str)>,
    pub(crate) output: &'a AgentOutput,
}

/// Several outputs as one text: their contents one after another, separated
/// by a blank line.
pub(crate) fn gathered_content(parts: &[GatheredPart<'_>]) -> String {
    parts
        .iter()
        .map(|part| part.output.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Several outputs as the JSON text of an array with one object per output —
/// its `agent`, `content`, `data` (when it had any) and, for a map's items,
/// `item` (the index) and `input` (the item's text).
pub(crate) fn gathered_results(parts: &[GatheredPart<'_>]) -> String {
    let entries: Vec<GatheredEntry<'_>> = parts
        .iter()
        .map(|part| GatheredEntry {
            agent: part.agent,
            content: &part.output.content,
            data: (!part.output.data.is_null()).then_some(&part.output.data),
            input: part.item.map(|(_, text)| text),
            item: part.item.map(|(index, _)| index),
        })
        .collect();
    // Written straight to text: a `serde_json::Value` tree of thousands of
    // items would cost more to build and to drop than the text itself.
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_owned())
}

/// One gathered output, as its JSON object shows it (keys in this order).
#[derive(serde::Serialize)]
struct GatheredEntry<'a> {
    agent: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
}
