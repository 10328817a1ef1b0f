//! The ledger over HTTP: appends (group-committed by the log's sequencer),
//! the checkpoint, RFC 9162 proofs in the CLI's JSON shapes, and the C2SP
//! tlog-tiles files themselves, read-only, with cache headers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zkaudit_app::ledger::IdempotentAppend;
use zkaudit_event::{parse_jsonl, BatchError};
use zkaudit_jobs::Scope;
use zkaudit_tlog::LogReader;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{blocking, AppState};

/// Full tiles never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A partial tile never changes either, but is deleted once its full tile
/// exists, so caches should come back for the full one.
const PARTIAL: &str = "public, max-age=3600";
/// The checkpoint moves with every append.
const CHECKPOINT: &str = "no-cache";

fn ledger_err(e: zkaudit_tlog::Error) -> ApiError {
    match e {
        zkaudit_tlog::Error::BadSize { .. } | zkaudit_tlog::Error::IndexOutOfRange { .. } => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
        e => ApiError::internal(e),
    }
}

/// Opens the log as of its latest checkpoint and runs `f` on it, on the
/// blocking pool (a reader is not `Send`).
async fn with_reader<T: Send + 'static>(state: &Arc<AppState>, f: impl FnOnce(&LogReader) -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    let dir = state.config.dir.clone();
    blocking(move || f(&LogReader::open(&dir).map_err(ApiError::internal)?)).await
}

/// The longest `Idempotency-Key` accepted (characters).
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `POST /v1/log/entries`: appends the events in the body, a JSON array or
/// JSON Lines (`Content-Type: application/x-ndjson`), all or nothing, and
/// updates the index. Answers as `zkaudit log append --json` does. Needs
/// `submit`.
///
/// With an `Idempotency-Key` header (1 to 255 printable ASCII characters,
/// per tenant), a retry with the same key and body gets the first answer
/// and appends nothing (header `Idempotent-Replayed: true`); the same key
/// with another body, or while the first request is still running, gets 409.
pub async fn append(State(state): State<Arc<AppState>>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = caller.require(Scope::Submit)?.clone();
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson") || v.starts_with("application/jsonl"));
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| (0x20..0x7f).contains(&b)));
            Some(k.ok_or_else(|| ApiError::bad("Idempotency-Key", format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")))?.to_owned())
        }
    };
    let st = Arc::clone(&state);
    let outcome = blocking(move || {
        let entries = if ndjson { parse_lines(&body)? } else { parse_array(&body)? };
        if entries.is_empty() {
            return Err(ApiError::bad("body", "no events to append"));
        }
        let outcome = match &key {
            None => st.ledger.append(entries).map(IdempotentAppend::Appended),
            Some(k) => st.ledger.append_idempotent(&st.store, &token.tenant, k, &body, entries),
        };
        let outcome = outcome.map_err(ApiError::internal)?;
        if let IdempotentAppend::Appended(a) = &outcome {
            // Who appended what, for the operator; the append itself is
            // durable already, so a failure here must not turn it into a 500.
            if let Err(e) = st.store.record_append(&token.id, &token.tenant, a.first_index, a.count) {
                eprintln!("POST /v1/log/entries: recording token {}'s append at {}: {e}", token.id, a.first_index);
            }
        }
        Ok(outcome)
    })
    .await?;
    match outcome {
        IdempotentAppend::Appended(a) => {
            state.metrics.appended(a.count);
            Ok(Json(a).into_response())
        }
        IdempotentAppend::Replayed(a) => Ok(([(HeaderName::from_static("idempotent-replayed"), "true")], Json(a)).into_response()),
        IdempotentAppend::KeyReused => {
            Err(ApiError::new(StatusCode::CONFLICT, "this Idempotency-Key was already used with a different request body; nothing was appended")
                .with_field("Idempotency-Key"))
        }
        IdempotentAppend::InProgress => Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::CONFLICT, "a request with this Idempotency-Key is still being appended; retry later").with_field("Idempotency-Key")
        }),
    }
}

/// A rejected batch as a 400 naming each bad event: `[i].field` for a JSON
/// array, `line N` and the field for JSON Lines.
fn batch_error(e: BatchError, array: bool) -> ApiError {
    match e {
        BatchError::Malformed { errors, total } => {
            let list: Vec<Value> = errors
                .iter()
                .map(|l| {
                    let field = if array {
                        Some(format!("[{}]{}", l.line - 1, l.field.as_ref().map(|f| format!(".{f}")).unwrap_or_default()))
                    } else {
                        l.field.clone()
                    };
                    let mut v = json!({"field": field, "message": l.message});
                    if !array {
                        v["line"] = json!(l.line);
                        v["column"] = json!(l.column);
                    }
                    v
                })
                .collect();
            let first = &list[0];
            let what = if array { "event" } else { "line" };
            let field = first["field"].as_str().map_or_else(|| format!("line {}", first["line"]), str::to_owned);
            ApiError::bad(field, format!("{total} malformed {what}(s); nothing was appended: {}", first["message"].as_str().unwrap_or("")))
                .with_details(json!(list))
        }
        BatchError::Io { error, .. } => ApiError::internal(error),
    }
}

fn parse_lines(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    parse_jsonl(body, "body").map_err(|e| batch_error(e, false))
}

fn parse_array(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    let items: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("expected a JSON array of events (or JSON Lines with Content-Type: application/x-ndjson): {e}")))?;
    // One event per line, so each error's line is the element's position.
    let mut lines = Vec::with_capacity(body.len() + items.len());
    for v in &items {
        serde_json::to_writer(&mut lines, v).map_err(ApiError::internal)?;
        lines.push(b'\n');
    }
    parse_jsonl(lines.as_slice(), "body").map_err(|e| batch_error(e, true))
}

/// `GET /v1/log/checkpoint`: `{origin, tree_size, root_hash, note}`.
pub async fn checkpoint(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_log_read(&state)?;
    Ok(Json(with_reader(&state, |r| Ok(zkaudit_tlog::json::checkpoint(r))).await?))
}

/// Query of `GET /v1/log/proof/inclusion`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    tree_size: Option<u64>,
}

/// `GET /v1/log/proof/inclusion?index=&tree_size=`: RFC 9162 §2.1.3.
pub async fn inclusion(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<InclusionQuery>) -> Result<Json<Value>, ApiError> {
    caller.require_log_read(&state)?;
    let p = with_reader(&state, move |r| r.inclusion(q.index, q.tree_size).map_err(ledger_err)).await?;
    Ok(Json(zkaudit_tlog::json::inclusion(&p)))
}

/// Query of `GET /v1/log/proof/consistency`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

/// `GET /v1/log/proof/consistency?old=&new=`: RFC 9162 §2.1.4.
pub async fn consistency(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ConsistencyQuery>) -> Result<Json<Value>, ApiError> {
    caller.require_log_read(&state)?;
    let p = with_reader(&state, move |r| r.consistency(q.old, q.new).map_err(ledger_err)).await?;
    Ok(Json(zkaudit_tlog::json::consistency(&p)))
}

/// `GET /checkpoint`: the signed checkpoint note (C2SP tlog-tiles).
pub async fn checkpoint_file(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_log_read(&state)?;
    let note = with_reader(&state, |r| Ok(r.checkpoint_note().to_vec())).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, CHECKPOINT)], note).into_response())
}

/// Whether `path` (below `tile/`) is a tile path of C2SP tlog-tiles:
/// `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, with `<N>` as `x001/x234/067`.
/// Returns `Some(is_full)`.
fn tile_kind(path: &str) -> Option<bool> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = path.split('/').peekable();
    let level = parts.next()?;
    let level_ok =
        level == "entries" || (!level.is_empty() && level.len() <= 2 && level.bytes().all(|b| b.is_ascii_digit()) && level.parse::<u8>().is_ok_and(|l| l < 64));
    if !level_ok {
        return None;
    }
    loop {
        let seg = parts.next()?;
        if let Some(rest) = seg.strip_prefix('x') {
            if !digits(rest, 3) {
                return None;
            }
            continue;
        }
        if digits(seg, 3) {
            return parts.next().is_none().then_some(true);
        }
        let last = seg.strip_suffix(".p")?;
        if !digits(last, 3) {
            return None;
        }
        let w = parts.next()?;
        let width_ok = !w.is_empty() && w.len() <= 3 && !w.starts_with('0') && w.parse::<u16>().is_ok_and(|w| (1..256).contains(&w));
        return (width_ok && parts.next().is_none()).then_some(false);
    }
}

/// `GET /tile/…`: a tile or entry bundle file, as stored.
pub async fn tile(State(state): State<Arc<AppState>>, caller: Caller, Path(path): Path<String>) -> Result<Response, ApiError> {
    caller.require_log_read(&state)?;
    let full = tile_kind(&path).ok_or_else(|| ApiError::not_found(format!("`tile/{path}` is not a C2SP tlog-tiles path")))?;
    let file = state.config.dir.join("tile").join(&path);
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, if full { IMMUTABLE } else { PARTIAL })], bytes).into_response())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::not_found(format!("no tile `tile/{path}` in this log"))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::tile_kind;

    #[test]
    fn tile_paths_follow_c2sp_tlog_tiles() {
        for (p, want) in [
            ("0/000", Some(true)),
            ("1/x001/234", Some(true)),
            ("entries/x001/x002/003", Some(true)),
            ("0/000.p/17", Some(false)),
            ("entries/001.p/255", Some(false)),
            ("0/000.p/256", None),
            ("0/000.p/0", None),
            ("0/000.p/017", None),
            ("0/00", None),
            ("0/x01/000", None),
            ("64/000", None),
            ("../private/log.key", None),
            ("0/../../private/log.key", None),
            ("0/000/001", None),
            ("entries", None),
            ("", None),
        ] {
            assert_eq!(tile_kind(p), want, "{p}");
        }
    }
}
