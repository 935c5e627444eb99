//! OpenTelemetry export (feature `otel`): the run's trace as OTLP spans, sent
//! to a collector over OTLP/HTTP with the JSON encoding (`POST
//! {endpoint}/v1/traces`).
//!
//! Spans are made from the execution trace once the run has ended (also when
//! it failed or was cancelled), so their times are the library's own: one span
//! per run (the root run and every nested group's run) and one per agent
//! attempt, nested as the runs were. Attempt spans carry the GenAI semantic
//! conventions: `gen_ai.operation.name = "invoke_agent"`, `gen_ai.agent.name`,
//! and for model agents `gen_ai.provider.name`, `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens` and `gen_ai.usage.output_tokens`.
//!
//! The exporter settings of the OpenTelemetry specification are read from
//! the environment: `OTEL_EXPORTER_OTLP_HEADERS` and
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`key=value` pairs, comma-separated,
//! values percent-encoded: a hosted collector's API key), `OTEL_SERVICE_NAME`
//! and `OTEL_RESOURCE_ATTRIBUTES` (the resource's attributes; `service.name`
//! defaults to `orchestra`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use claude_agent_sdk::orchestration::{AgentExecution, ExecutionTrace};
use serde_json::{json, Value};

use crate::factory::{model_of, provider_of};
use crate::redacted_json;
use crate::traces::MapItems;
use crate::workflow::Workflow;

/// Sends the spans of `trace` to the collector at `endpoint`; the run's span
/// has an error status with `failure`, why the run failed, if it did.
///
/// # Errors
/// Why the spans could not be delivered.
pub async fn export(
    endpoint: &str,
    workflow: &Workflow,
    trace: &ExecutionTrace,
    failure: Option<&str>,
) -> Result<(), String> {
    let spans = encode(workflow, trace, failure).to_string();
    let body = redacted_json::redact_text(&workflow.redactor, &spans).into_owned();
    let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.post(&url).header("content-type", "application/json");
    for (name, value) in headers()? {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the collector answered {}", response.status()))
    }
}

/// The headers `OTEL_EXPORTER_OTLP_HEADERS` and then
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` name (the latter wins for a name both
/// give). A value is never shown in an error: it is often a key.
fn headers() -> Result<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>, String> {
    let mut headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)> = Vec::new();
    for variable in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        let Ok(list) = std::env::var(variable) else {
            continue;
        };
        for (key, value) in pairs(&list) {
            let name = reqwest::header::HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("{variable}: `{key}` is not a header name"))?;
            let value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| format!("{variable}: the value of `{key}` is not a header value"))?;
            headers.retain(|(given, _)| *given != name);
            headers.push((name, value));
        }
    }
    Ok(headers)
}

/// The `key=value` pairs of an OpenTelemetry list setting: comma-separated,
/// blanks around them ignored, values percent-decoded; an entry without `=`
/// or with an empty key is skipped, as the specification asks.
fn pairs(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), percent_decoded(value.trim())))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// `text` with its `%XX` escapes decoded (an escape that is not one is kept).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The resource's attributes: `OTEL_RESOURCE_ATTRIBUTES`, then
/// `service.name` from `OTEL_SERVICE_NAME` (or `orchestra` when neither
/// names it) and `service.version`.
fn resource_attributes() -> Vec<Value> {
    let mut given = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
        .map(|list| pairs(&list))
        .unwrap_or_default();
    if let Some(name) = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
    {
        given.retain(|(key, _)| key != "service.name");
        given.push(("service.name".to_owned(), name.trim().to_owned()));
    }
    if !given.iter().any(|(key, _)| key == "service.name") {
        given.push(("service.name".to_owned(), "orchestra".to_owned()));
    }
    given.retain(|(key, _)| key != "service.version");
    given.push((
        "service.version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    ));
    given
        .into_iter()
        .map(|(key, value)| attribute(&key, json!({ "stringValue": value })))
        .collect()
}

fn tls_config() -> Result<rustls::ClientConfig, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_platform_verifier()
    .map_err(|e| e.to_string())?
    .with_no_client_auth())
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `trace`, of a run that
/// failed with `failure`, if it did: how the run ended, not whether one of
/// its attempts failed (a retried agent may succeed; a budget fails a run
/// whose attempts all succeeded).
#[must_use]
pub fn encode(workflow: &Workflow, trace: &ExecutionTrace, failure: Option<&str>) -> Value {
    let trace_id = format!("{:016x}{:016x}", random(), random());
    let mut spans = Vec::new();
    let root = random();
    let end = trace.end_time.unwrap_or_else(Utc::now);
    spans.push(span(
        &trace_id,
        root,
        None,
        &format!("orchestra.run {}", workflow.name),
        (trace.start_time, end),
        vec![
            attribute(
                "orchestra.workflow",
                json!({ "stringValue": workflow.name }),
            ),
            attribute(
                "orchestra.group",
                json!({ "stringValue": workflow.flow.name }),
            ),
        ],
        failure,
    ));
    records(workflow, &trace_id, root, trace, &mut spans);
    json!({
        "resourceSpans": [{
            "resource": { "attributes": resource_attributes() },
            "scopeSpans": [{
                "scope": { "name": "orchestra", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

/// The spans of `trace`'s records (and their nested runs), children of
/// `parent`. Iterative: a trace may nest runs deeply.
fn records(
    workflow: &Workflow,
    trace_id: &str,
    parent: u64,
    trace: &ExecutionTrace,
    spans: &mut Vec<Value>,
) {
    // Each trace with the span its records are children of and, when it is
    // a map's run, the map's items.
    let mut pending = vec![(trace, parent, None)];
    while let Some((trace, parent, map)) = pending.pop() {
        for record in &trace.agent_executions {
            let id = random();
            let item = map.as_ref().and_then(|map: &MapItems| map.item_of(record));
            spans.push(attempt_span(workflow, trace_id, (id, parent), record, item));
            let Some(nested) = &record.nested else {
                continue;
            };
            let run = random();
            let end = nested
                .end_time
                .or(record.end_time)
                .unwrap_or(nested.start_time);
            spans.push(span(
                trace_id,
                run,
                Some(id),
                &format!("orchestra.run {}", record.agent_name),
                (nested.start_time, end),
                vec![attribute(
                    "orchestra.group",
                    json!({ "stringValue": record.agent_name }),
                )],
                // The nested run ended as the attempt that ran it.
                record.error.as_deref(),
            ));
            pending.push((nested, run, MapItems::of(record)));
        }
    }
}

/// The span of attempt `record` (`ids`: its own and its parent's), of
/// item `item` (which, of how many) when it is a map's.
fn attempt_span(
    workflow: &Workflow,
    trace_id: &str,
    (id, parent): (u64, u64),
    record: &AgentExecution,
    item: Option<(usize, usize)>,
) -> Value {
    let name = &record.agent_name;
    let mut attributes = vec![
        attribute(
            "gen_ai.operation.name",
            json!({ "stringValue": "invoke_agent" }),
        ),
        attribute("gen_ai.agent.name", json!({ "stringValue": name })),
        attribute("gen_ai.agent.id", json!({ "stringValue": name })),
        attribute(
            "orchestra.attempt",
            json!({ "intValue": record.attempt.to_string() }),
        ),
    ];
    // A map's items, told apart (their span names are the agent's).
    if let Some((index, count)) = item {
        attributes.push(attribute(
            "orchestra.item",
            json!({ "intValue": index.to_string() }),
        ));
        attributes.push(attribute(
            "orchestra.items",
            json!({ "intValue": count.to_string() }),
        ));
    }
    if let Some(def) = workflow.agent(name) {
        attributes.push(attribute(
            "orchestra.agent.kind",
            json!({ "stringValue": def.kind.as_str() }),
        ));
        attributes.push(attribute(
            "gen_ai.agent.description",
            json!({ "stringValue": def.metadata.description }),
        ));
        if let Some(provider) = provider_of(def) {
            attributes.push(attribute(
                "gen_ai.provider.name",
                json!({ "stringValue": provider }),
            ));
            attributes.push(attribute(
                "gen_ai.system",
                json!({ "stringValue": provider }),
            ));
        }
        if let Some(model) = model_of(def) {
            attributes.push(attribute(
                "gen_ai.request.model",
                json!({ "stringValue": model }),
            ));
        }
    }
    if let Some(model) = record
        .output
        .as_ref()
        .and_then(|o| o.data.get("model"))
        .and_then(Value::as_str)
    {
        attributes.push(attribute(
            "gen_ai.response.model",
            json!({ "stringValue": model }),
        ));
    }
    if record.nested.is_none() {
        let usage = record.usage();
        if usage.total_tokens() > 0 {
            let input = usage.input_tokens
                + usage.cache_creation_input_tokens
                + usage.cache_read_input_tokens;
            attributes.push(attribute(
                "gen_ai.usage.input_tokens",
                json!({ "intValue": input.to_string() }),
            ));
            attributes.push(attribute(
                "gen_ai.usage.output_tokens",
                json!({ "intValue": usage.output_tokens.to_string() }),
            ));
        }
        if let Some(cost) = usage.cost_usd {
            attributes.push(attribute(
                "orchestra.cost_usd",
                json!({ "doubleValue": cost }),
            ));
        }
    }
    // An attempt that asked a person and waits for the answer paused its
    // run: not an error.
    let error = record
        .error
        .as_deref()
        .filter(|error| !crate::traces::is_waiting(error));
    if error.is_some() {
        attributes.push(attribute(
            "error.type",
            json!({ "stringValue": "agent_error" }),
        ));
    } else if record.error.is_some() {
        attributes.push(attribute(
            "orchestra.waiting_for_answer",
            json!({ "boolValue": true }),
        ));
    }
    let end = record.end_time.unwrap_or(record.start_time);
    span(
        trace_id,
        id,
        Some(parent),
        &format!("invoke_agent {name}"),
        (record.start_time, end),
        attributes,
        error,
    )
}

fn span(
    trace_id: &str,
    id: u64,
    parent: Option<u64>,
    name: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    attributes: Vec<Value>,
    error: Option<&str>,
) -> Value {
    let nanos = |at: DateTime<Utc>| {
        at.timestamp_nanos_opt()
            .unwrap_or_default()
            .max(0)
            .to_string()
    };
    let mut span = json!({
        "traceId": trace_id,
        "spanId": format!("{id:016x}"),
        "name": name,
        "kind": 1,
        "startTimeUnixNano": nanos(start),
        "endTimeUnixNano": nanos(end.max(start)),
        "attributes": attributes,
        "status": match error {
            Some(message) => json!({ "code": 2, "message": message }),
            // Unset, as the specification asks of instrumentation: `Ok`
            // is for an application to set.
            None => json!({ "code": 0 }),
        },
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    span
}

fn attribute(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

/// A random, non-zero 64-bit id.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_settings_read_as_the_specification_writes_them() {
        assert_eq!(
            pairs(" api-key = a%2Cb%3Dc , empty=,novalue, =x,team=ml%20ops"),
            [
                ("api-key".to_owned(), "a,b=c".to_owned()),
                ("empty".to_owned(), String::new()),
                ("team".to_owned(), "ml ops".to_owned()),
            ]
        );
        // Not an escape: kept as it is.
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
        assert_eq!(percent_decoded("%C3%A9"), "é");
    }
}
