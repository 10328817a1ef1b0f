//! Health, readiness, attestation, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use zkaudit_jobs::Stats;
use zkaudit_note::Note;

use crate::error::ApiError;
use crate::{blocking, AppState};

async fn stats(state: &Arc<AppState>) -> Result<Stats, ApiError> {
    let store = Arc::clone(&state.store);
    let s = blocking(move || store.stats().map_err(ApiError::from)).await?;
    state.metrics.set_queue(s.queued, s.running);
    Ok(s)
}

/// Whole seconds a new job would wait ([`Stats::estimated_wait_seconds`]).
fn estimated_wait(s: &Stats, workers: usize) -> Option<u64> {
    s.estimated_wait_seconds(workers).map(|w| w.ceil() as u64)
}

/// `GET /v1/health`: status, version, queue, capacity and estimated wait.
pub async fn health(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let s = stats(&state).await?;
    let c = &state.config;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "queue_length": s.queued,
        "jobs_running": s.running,
        "capacity": {"workers": c.workers, "queue": c.queue_capacity},
        "estimated_wait_seconds": estimated_wait(&s, c.workers),
        "recent_job_seconds": s.recent_job_seconds,
        "proving_cycles_per_second": s.recent_cycles_per_second,
        "job_store": if state.store.is_shared() { "postgresql" } else { "sqlite" },
    })))
}

/// `GET /v1/ready`: 200 while the queue has room, 503 (with `Retry-After`)
/// when it is full.
pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let s = stats(&state).await?;
    let cap = state.config.queue_capacity;
    if s.queued >= cap {
        return Err(ApiError {
            retry_after: Some(estimated_wait(&s, state.config.workers).unwrap_or(1).max(1)),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("saturated: {} jobs queued, capacity {cap}", s.queued))
        });
    }
    Ok(Json(json!({"ready": true, "queue_length": s.queued, "capacity": cap})).into_response())
}

/// `GET /v1/attestation`: a document naming this server binary (SHA-256),
/// the registry's image IDs and the server's Ed25519 key, signed as a C2SP
/// signed note whose text is the document's RFC 8785 form.
///
/// No trusted execution environment is used, and the `tee` field says so:
/// the signature shows only that the holder of the server's key made the
/// document, not what code the machine runs.
pub async fn attestation(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?;
    let programs: Vec<Value> =
        state.registry.entries().iter().map(|(e, _)| json!({"image_id": e.image_id, "version": e.version, "deprecated": e.deprecated})).collect();
    let doc = json!({
        "type": "zkaudit-attestation/v1",
        "server_version": env!("CARGO_PKG_VERSION"),
        "binary_sha256": state.binary_sha256,
        "image_ids": programs,
        "public_key": state.attestation_key.verifier().to_string(),
        "timestamp": now,
        "tee": {
            "present": false,
            "kind": null,
            "report": null,
            "note": "no trusted execution environment: this document is signed with the server's own key, which proves who signed it, not which code runs",
        },
    });
    let text = serde_json_canonicalizer::to_string(&doc).map_err(ApiError::internal)?;
    let note = Note::sign(&format!("{text}\n"), &state.attestation_key).map_err(ApiError::internal)?;
    Ok(Json(json!({"document": doc, "signed_note": String::from_utf8_lossy(&note.to_bytes())})))
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

/// `GET /metrics`: Prometheus / OpenMetrics text.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    stats(&state).await?;
    let text = state.metrics.encode().map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}
