//! The examples of `docs/workflow.md` run as documented.

mod common;

use common::{orchestra, scratch, write};

/// The first fenced block of `language` in `docs/workflow.md`.
fn first_block(language: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/workflow.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let fence = format!("```{language}\n");
    let start = text
        .find(&fence)
        .unwrap_or_else(|| panic!("no {language} block"))
        + fence.len();
    let end = text[start..]
        .find("```")
        .unwrap_or_else(|| panic!("unclosed block"))
        + start;
    text[start..end].to_owned()
}

#[test]
fn the_first_workflow_of_the_docs_runs_in_toml_and_yaml() {
    let dir = scratch();
    for (name, language) in [("greeting.toml", "toml"), ("greeting.yaml", "yaml")] {
        let file = write(dir.path(), name, &first_block(language));
        orchestra()
            .args(["run", "--quiet", "--input", "hello"])
            .arg(&file)
            .assert()
            .code(0)
            .stdout("*** HELLO ***\n");
    }
}
