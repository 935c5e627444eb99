//! What a stored run remembers of its workflow: a fingerprint of each agent's
//! definition, kept in the run's input metadata, so that resuming a run whose
//! workflow file changed since can be refused, naming the agents that changed.

use std::collections::BTreeMap;

use claude_agent_sdk::orchestration::OrchestratorInput;

use crate::workflow::Workflow;

/// The metadata key the fingerprints are kept under.
pub const KEY: &str = "orchestra.agents";

/// `input` with the fingerprints of `workflow`'s agents in its metadata.
pub fn stamp(input: OrchestratorInput, workflow: &Workflow) -> OrchestratorInput {
    let (key, prints) = entry(workflow);
    input.with_metadata(key, prints)
}

/// The metadata entry holding the fingerprints of `workflow`'s agents: what
/// a resumed run records, so that a later resume compares with the
/// workflow as it is now, not as it was when the first run started.
pub fn entry(workflow: &Workflow) -> (String, String) {
    let prints = serde_json::to_string(&fingerprints(workflow)).unwrap_or_default();
    (KEY.to_owned(), prints)
}

/// How `workflow`'s agents differ from those a run stamped into `metadata`:
/// one line per agent changed, added or removed (empty when none did, or
/// when the run kept no fingerprints).
pub fn changes(
    metadata: &std::collections::HashMap<String, String>,
    workflow: &Workflow,
) -> Vec<String> {
    let Some(stored) = metadata
        .get(KEY)
        .and_then(|text| serde_json::from_str::<BTreeMap<String, String>>(text).ok())
    else {
        return Vec::new();
    };
    let now = fingerprints(workflow);
    let mut changes = Vec::new();
    for (id, print) in &now {
        match stored.get(id) {
            Some(before) if before == print => {}
            Some(_) => changes.push(format!("agent `{id}` changed")),
            None => changes.push(format!("agent `{id}` was added")),
        }
    }
    for id in stored.keys().filter(|id| !now.contains_key(*id)) {
        changes.push(format!("agent `{id}` was removed"));
    }
    changes
}

/// Each agent's fingerprint: a hash of its whole definition (kind, settings,
/// retries, timeouts), after environment variables were expanded.
fn fingerprints(workflow: &Workflow) -> BTreeMap<String, String> {
    workflow
        .agents
        .iter()
        .map(|agent| {
            (
                agent.id.clone(),
                format!("{:016x}", fnv1a(&format!("{agent:?}"))),
            )
        })
        .collect()
}

/// FNV-1a, 64 bits: a hash that is the same in every build and process.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
