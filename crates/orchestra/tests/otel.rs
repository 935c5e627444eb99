//! `--otlp` (feature `otel`): the run's spans reach an OTLP/HTTP collector,
//! with the GenAI semantic-convention attributes.
#![cfg(feature = "otel")]

mod common;

use common::{fixture, json, orchestra, scratch, write, FakeServer};

#[test]
fn spans_of_every_run_and_attempt_are_exported_over_otlp_http() {
    let collector = FakeServer::start(|_| "{}".to_owned());
    let dir = scratch();
    // The directory is listed as a secret: spans are redacted like all output.
    let workflow = format!(
        "secrets = [\"FLAKY_DIR\"]\n{}",
        std::fs::read_to_string(fixture("flaky.toml")).unwrap_or_else(|e| panic!("{e}"))
    );
    let file = write(dir.path(), "flaky.toml", &workflow);
    orchestra()
        .args(["run", "-q", "--otlp"])
        .arg(&collector.url)
        .arg(&file)
        .env("FLAKY_DIR", dir.path())
        .assert()
        .code(0);
    let requests = collector.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].line, "POST /v1/traces HTTP/1.1");
    let body = json(&requests[0].body);
    let spans = common::otlp_spans(&body);
    // One run span and one span per attempt (flaky twice, priced once).
    assert_eq!(spans.len(), 4, "{body}");
    let root = &spans[0];
    assert_eq!(root["name"], "orchestra.run flaky");
    assert!(root.get("parentSpanId").is_none());
    let attr = |span: &serde_json::Value, key: &str| common::otlp_attribute(span, key).cloned();
    let priced = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent priced")
        .unwrap_or_else(|| panic!("no span for priced: {body}"));
    assert_eq!(priced["parentSpanId"], root["spanId"]);
    assert_eq!(priced["traceId"], root["traceId"]);
    assert_eq!(
        attr(priced, "gen_ai.operation.name"),
        Some(serde_json::json!({"stringValue": "invoke_agent"}))
    );
    assert_eq!(
        attr(priced, "gen_ai.usage.input_tokens"),
        Some(serde_json::json!({"intValue": "12"}))
    );
    assert_eq!(
        attr(priced, "gen_ai.usage.output_tokens"),
        Some(serde_json::json!({"intValue": "5"}))
    );
    let failed = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent flaky" && s["status"]["code"] == 2);
    assert!(failed.is_some(), "{body}");
    assert!(
        !requests[0].body.contains(&dir.path().display().to_string()),
        "a secret value leaked"
    );
}

#[test]
fn a_resumed_run_exports_its_spans_too() {
    let collector = FakeServer::start(|_| "{}".to_owned());
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = common::gated(dir.path());
    let failed = orchestra()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.status.code(), Some(1));
    let run = common::resume_id(&common::texts(&failed).1);
    std::fs::write(dir.path().join("open"), "").unwrap_or_else(|e| panic!("{e}"));
    orchestra()
        .args(["resume", "-q", &run, "--otlp", &collector.url, "--store"])
        .arg(&store)
        .assert()
        .code(0);
    let requests = collector.requests();
    assert_eq!(requests.len(), 1, "the resumed run sent no spans");
    let body = json(&requests[0].body);
    let spans = common::otlp_spans(&body);
    assert!(
        spans.iter().any(|span| span["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("orchestra.run"))),
        "{body}"
    );
}

#[test]
fn the_standard_exporter_settings_give_the_headers_and_the_resource() {
    let collector = FakeServer::start(|_| "{}".to_owned());
    let dir = scratch();
    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    orchestra()
        .args(["run", "-q", "--no-store", "--otlp", &collector.url])
        .arg(&file)
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k%3D1,x-team=all")
        .env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=traces")
        .env("OTEL_SERVICE_NAME", "nightly-reports")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=ci,service.name=overridden",
        )
        .assert()
        .code(0);
    let requests = collector.requests();
    assert_eq!(requests.len(), 1);
    let header = |name: &str| {
        requests[0]
            .headers
            .iter()
            .filter(|(given, _)| given == name)
            .map(|(_, value)| value.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(header("x-api-key"), ["k=1"]);
    assert_eq!(header("x-team"), ["traces"], "the traces setting wins");
    let body = json(&requests[0].body);
    let resource = &body["resourceSpans"][0]["resource"];
    let value = |key: &str| common::otlp_attribute(resource, key).map(|v| v["stringValue"].clone());
    assert_eq!(
        value("service.name"),
        Some(serde_json::json!("nightly-reports"))
    );
    assert_eq!(
        value("deployment.environment"),
        Some(serde_json::json!("ci"))
    );
    assert!(value("service.version").is_some());
}

#[test]
fn a_header_setting_that_is_not_a_header_is_a_warning_that_keeps_its_value_secret() {
    let collector = FakeServer::start(|_| "{}".to_owned());
    let dir = scratch();
    let file = write(dir.path(), "one.toml", common::ONE_AGENT);
    let output = orchestra()
        .args(["run", "-q", "--no-store", "--otlp", &collector.url])
        .arg(&file)
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=sk-secret%0A")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = common::texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "x");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{stderr}");
    assert!(!stderr.contains("sk-secret"), "{stderr}");
    assert!(collector.requests().is_empty());
}

#[test]
fn a_maps_items_are_told_apart_by_their_spans() {
    let collector = FakeServer::start(|_| "{}".to_owned());
    orchestra()
        .args(["run", "-q", "--no-store", "--otlp", &collector.url])
        .arg(common::example("graph-map.toml"))
        .assert()
        .code(0);
    let requests = collector.requests();
    assert_eq!(requests.len(), 1);
    let body = json(&requests[0].body);
    let spans = common::otlp_spans(&body);
    let int = |span: &serde_json::Value, key: &str| {
        common::otlp_attribute(span, key)
            .and_then(|value| value["intValue"].as_str().map(str::to_owned))
    };
    let research: Vec<&serde_json::Value> = spans
        .iter()
        .filter(|span| span["name"] == "invoke_agent research")
        .collect();
    // The map's own attempt, and one per item (of three), under the map's run.
    let mut items: Vec<String> = research
        .iter()
        .filter_map(|span| int(span, "orchestra.item"))
        .collect();
    items.sort();
    assert_eq!(items, ["1", "2", "3"], "{body}");
    for span in research
        .iter()
        .filter(|span| int(span, "orchestra.item").is_some())
    {
        assert_eq!(int(span, "orchestra.items").as_deref(), Some("3"));
    }
    let ids: Vec<&serde_json::Value> = spans.iter().map(|span| &span["spanId"]).collect();
    for span in &spans {
        if let Some(parent) = span.get("parentSpanId") {
            assert!(ids.contains(&parent), "a parent that is not a span: {body}");
        }
    }
}

#[test]
fn a_run_paused_for_an_answer_exports_no_error_and_successes_leave_the_status_unset() {
    let collector = FakeServer::start(|_| "{}".to_owned());
    let output = orchestra()
        .args(["run", "-q", "--no-store", "--otlp", &collector.url])
        .arg(common::example("graph-ask.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        common::texts(&output).1
    );
    let requests = collector.requests();
    assert_eq!(requests.len(), 1);
    let body = json(&requests[0].body);
    let spans = common::otlp_spans(&body);
    assert!(spans.len() >= 2, "{body}");
    for span in &spans {
        assert_eq!(span["status"]["code"], 0, "no span is an error: {span}");
    }
    let waiting = spans
        .iter()
        .filter(|span| common::otlp_attribute(span, "orchestra.waiting_for_answer").is_some());
    assert_eq!(waiting.count(), 1, "{body}");
}
