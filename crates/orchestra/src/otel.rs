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
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the collector answered {}", response.status()))
    }
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
            "resource": { "attributes": [
                attribute("service.name", json!({ "stringValue": "orchestra" })),
                attribute("service.version", json!({ "stringValue": env!("CARGO_PKG_VERSION") })),
            ]},
            "scopeSpans": [{
                "scope": { "name": "orchestra", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

/// The spans of `trace`'s records (and their nested runs), children of `parent`.
fn records(
    workflow: &Workflow,
    trace_id: &str,
    parent: u64,
    trace: &ExecutionTrace,
    spans: &mut Vec<Value>,
) {
    for record in &trace.agent_executions {
        let id = random();
        spans.push(attempt_span(workflow, trace_id, id, parent, record));
        if let Some(nested) = &record.nested {
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
            records(workflow, trace_id, run, nested, spans);
        }
    }
}

fn attempt_span(
    workflow: &Workflow,
    trace_id: &str,
    id: u64,
    parent: u64,
    record: &AgentExecution,
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
    if record.error.is_some() {
        attributes.push(attribute(
            "error.type",
            json!({ "stringValue": "agent_error" }),
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
        record.error.as_deref(),
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
            None => json!({ "code": 1 }),
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
