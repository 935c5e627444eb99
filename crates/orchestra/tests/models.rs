//! Model agents end to end, against a local OpenAI-compatible server: the
//! request the workflow describes, and the tokens it reports.

mod common;

use common::{json, orchestra, scratch, texts, write, FakeServer};

fn completion(request: &common::Request) -> String {
    let asked = json(&request.body);
    let prompt = asked["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": asked["model"],
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": format!("echo: {prompt}") },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25 }
    })
    .to_string()
}

#[test]
fn an_openai_compatible_agent_runs_with_its_settings_and_reports_tokens() {
    let server = FakeServer::start(completion);
    let dir = scratch();
    let file = write(
        dir.path(),
        "local.yaml",
        "flow:\n  sequential: [ask, polish]\n  retries: 0\nagents:\n  - id: ask\n    kind: openai\n    base_url: ${LOCAL_LLM}/v1\n    model: tiny-model\n    api_key: ${LOCAL_KEY}\n    stream: false\n    system: Be brief.\n    prompt: \"Q: {{input}}\"\n    max_tokens: 50\n  - id: polish\n    kind: template\n    template: \"[{{output.ask}}]\"\n",
    );
    let output = orchestra()
        .args(["run", "--input", "why is the sky blue?"])
        .arg(&file)
        .env("LOCAL_LLM", &server.url)
        .env("LOCAL_KEY", "local-secret-key")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "[echo: Q: why is the sky blue?]\n");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("ask") && l.contains("21 in / 4 out")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("total") && l.contains("21 in / 4 out")),
        "{stderr}"
    );
    assert!(!stderr.contains("local-secret-key"));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].line, "POST /v1/chat/completions HTTP/1.1");
    let sent = json(&requests[0].body);
    assert_eq!(sent["model"], "tiny-model");
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
}

#[test]
fn a_sequential_group_with_a_token_budget_stops_at_the_step_that_crosses_it() {
    let server = FakeServer::start(completion);
    let dir = scratch();
    let agent = |id: &str| {
        format!(
            "  - id: {id}\n    kind: openai\n    base_url: ${{LOCAL_LLM}}/v1\n    model: tiny-model\n    api_key: k\n    stream: false\n"
        )
    };
    // Each answer reports 25 tokens: the second crosses the group's 40.
    let file = write(
        dir.path(),
        "budget.yaml",
        &format!(
            "flow:\n  sequential: [one, two, three]\n  retries: 0\n  budget:\n    max_tokens: 40\nagents:\n{}{}{}",
            agent("one"),
            agent("two"),
            agent("three")
        ),
    );
    let output = orchestra()
        .args(["run", "--input", "go"])
        .arg(&file)
        .env("LOCAL_LLM", &server.url)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tokens"), "{stderr}");
    assert_eq!(server.requests().len(), 2, "{stderr}");
}
