//! Jobs, blobs, the built-in `income-threshold` job, receipts and
//! verification.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use zkaudit_app::plans::{load_bytes, DataBytes, LoadError};
use zkaudit_jobs::{DataRef, Job, JobSpec, JobView, Mode, NewJob, Scope, State as JobState, Submitted};
use zkaudit_plan::data::Format;
use zkaudit_plan::loaded::Loaded;
use zkaudit_plan::source::{Located, PlanFile};
use zkaudit_plan::value::{hex, parse_decimal, parse_hex32};
use zkaudit_zkvm::Expectations;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{blocking, AppState};

/// The `income-threshold` example plan, which the built-in job reuses.
const INCOME_PLAN: &str = include_str!("../../../examples/income-threshold/plan.yaml");
/// Jobs listed at most per request.
const MAX_LIST: u32 = 1000;
/// Receipts verified at most per batch request.
const MAX_BATCH: usize = 256;
/// Longest `?wait=` (seconds).
const MAX_WAIT_S: u64 = 600;

/// Parses a JSON body into `T`; errors name the field (`data.prices.csv`)
/// or the line and column of a syntax error.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad("body", format!("malformed JSON at line {} column {}: {inner}", inner.line(), inner.column()));
        }
        let msg = inner.to_string();
        let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_owned();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::bad(field, msg)
    })?;
    de.end().map_err(|e| ApiError::bad("body", format!("trailing characters after the JSON value: {e}")))?;
    Ok(v)
}

fn job_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ApiError::bad("id", format!("`{id}` is not a job ID (32 lowercase hex digits)")))
    }
}

/// A job as the API shows it.
fn job_json(j: &Job) -> Value {
    serde_json::to_value(JobView::from(j)).unwrap_or(Value::Null)
}

/// One data input in a request: exactly one of `csv`, `jsonl`, `records`
/// (an array of objects) or `blob` (with `format`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataIn {
    csv: Option<String>,
    jsonl: Option<String>,
    records: Option<Vec<serde_json::Map<String, Value>>>,
    blob: Option<String>,
    format: Option<String>,
}

/// `POST /v1/jobs` body: a plan and its data, or a built-in job.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    plan: Option<Value>,
    #[serde(default)]
    data: BTreeMap<String, DataIn>,
    builtin: Option<String>,
    input: Option<Value>,
    mode: Option<Mode>,
    timeout_s: Option<u64>,
}

/// `income-threshold` input (the proof-server vision's request).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomeRequest {
    payment_history: Vec<serde_json::Map<String, Value>>,
    threshold: Value,
    history_commitment: Option<String>,
    mode: Option<Mode>,
    timeout_s: Option<u64>,
}

/// A plan and data checked and ready to queue.
pub(crate) struct Checked {
    /// The plan with its data commitment.
    pub(crate) loaded: Loaded,
    /// Per input, in plan order.
    pub(crate) data: Vec<DataBytes>,
}

impl Checked {
    /// The job's spec: the plan's canonical JSON, and each input stored
    /// by `put` (which returns the blob's ID, its SHA-256).
    pub(crate) fn spec(&self, mut put: impl FnMut(&[u8]) -> Result<String, ApiError>) -> Result<JobSpec, ApiError> {
        let mut refs = Vec::new();
        for d in &self.data {
            let format = if d.format == Format::Csv { "csv" } else { "jsonl" };
            refs.push(DataRef { name: d.name.clone(), blob: put(&d.bytes)?, format: format.into() });
        }
        let plan = String::from_utf8(self.loaded.file.jcs.clone()).map_err(ApiError::internal)?;
        Ok(JobSpec { plan, data: refs })
    }
}

/// The `plan` field of a request: a JSON object, or YAML (or JSON) text.
pub(crate) fn parse_plan(plan: Value) -> Result<PlanFile, ApiError> {
    let (text, is_json) = match plan {
        Value::String(s) => {
            let j = s.trim_start().starts_with('{');
            (s, j)
        }
        v @ Value::Object(_) => (v.to_string(), true),
        _ => return Err(ApiError::bad("plan", "expected a JSON object or YAML text")),
    };
    PlanFile::parse("plan", &text, is_json).map_err(|e| plan_error(&e))
}

fn located_json(errs: &[Located]) -> Value {
    json!(errs.iter().map(|e| json!({"line": e.line, "column": e.column, "path": e.path, "message": e.message})).collect::<Vec<_>>())
}

fn plan_error(errs: &[Located]) -> ApiError {
    let first = errs.first().map_or_else(String::new, |e| format!("{}:{}: {}: {}", e.line, e.column, e.path, e.message));
    ApiError::unprocessable("plan", format!("{} plan error(s); first: {first}", errs.len())).with_details(located_json(errs))
}

fn format_name(s: &str, field: &str) -> Result<Format, ApiError> {
    match s {
        "csv" => Ok(Format::Csv),
        "jsonl" | "ndjson" => Ok(Format::JsonLines),
        _ => Err(ApiError::bad(field, format!("`{s}` is not a data format (csv or jsonl)"))),
    }
}

fn records_to_jsonl(records: &[serde_json::Map<String, Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(Value::Object(r.clone()).to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// A plan or data error as the API reports it: 422 naming `plan` (every
/// error located), `data` (inputs that do not match) or `data.<name>`
/// (with the line, column and field).
fn load_error(e: LoadError) -> ApiError {
    match e {
        LoadError::Plan { errors, .. } => plan_error(&errors),
        LoadError::Argument(a) => ApiError::bad("data", a),
        LoadError::Inputs(m) => ApiError::unprocessable("data", m.to_string()),
        LoadError::Data { input, error } => ApiError::unprocessable(format!("data.{input}"), error.to_string())
            .with_details(json!({"line": error.line, "column": error.column, "field": error.field, "message": error.message})),
    }
}

/// Validates the plan, reads every input's data by its schema, and commits
/// to the records: everything a worker would refuse is refused here.
pub(crate) fn check(state: &AppState, tenant: &str, file: PlanFile, data: BTreeMap<String, DataIn>) -> Result<Checked, ApiError> {
    let mut given = Vec::new();
    for (name, d) in data {
        let field = format!("data.{name}");
        let given_kinds = [d.csv.is_some(), d.jsonl.is_some(), d.records.is_some(), d.blob.is_some()];
        if given_kinds.iter().filter(|k| **k).count() != 1 {
            return Err(ApiError::bad(field, "give exactly one of csv, jsonl, records or blob"));
        }
        let (bytes, format) = if let Some(t) = d.csv {
            (t.into_bytes(), Format::Csv)
        } else if let Some(t) = d.jsonl {
            (t.into_bytes(), Format::JsonLines)
        } else if let Some(r) = d.records {
            (records_to_jsonl(&r), Format::JsonLines)
        } else {
            let id = d.blob.unwrap_or_default();
            let format = format_name(d.format.as_deref().unwrap_or(""), &format!("{field}.format"))?;
            let bytes = state
                .store
                .blob(tenant, &id)?
                .ok_or_else(|| ApiError::unprocessable(format!("{field}.blob"), format!("no blob `{id}` (upload it with POST /v1/blobs)")))?;
            (bytes, format)
        };
        given.push(DataBytes { name, bytes, format });
    }
    let (loaded, data) = load_bytes(file, given).map_err(load_error)?;
    Ok(Checked { loaded, data })
}

/// Stores the data as blobs and queues the job. Runs on the blocking pool.
fn enqueue(state: &AppState, caller: &zkaudit_jobs::Token, kind: &str, c: &Checked, mode: Mode, timeout_s: Option<u64>) -> Result<Job, ApiError> {
    let max = state.config.job_timeout_s;
    let timeout_s = timeout_s.unwrap_or(max);
    if timeout_s == 0 || timeout_s > max {
        return Err(ApiError::bad("timeout_s", format!("must be between 1 and {max} seconds")));
    }
    let spec = c.spec(|bytes| Ok(state.store.put_blob(&caller.tenant, bytes)?))?;
    let new = NewJob {
        tenant: caller.tenant.clone(),
        token_id: caller.id.clone(),
        kind: kind.into(),
        mode,
        spec,
        timeout_s,
        max_attempts: state.config.max_attempts,
    };
    match state.store.submit(&new, Some(state.config.queue_capacity))? {
        Submitted::Queued(job) => Ok(*job),
        Submitted::Full { queued } => {
            let s = state.store.stats()?;
            let wait = s.recent_job_seconds.map_or(1, |t| (t * queued as f64 / state.config.workers.max(1) as f64).ceil() as u64);
            Err(ApiError {
                retry_after: Some(wait.max(1)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("the queue is full ({queued} jobs queued); retry later"))
            })
        }
    }
}

fn accepted(job: &Job, extra: Value) -> Response {
    let mut v = job_json(job);
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    let location = format!("/v1/jobs/{}", job.id);
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(v)).into_response()
}

/// `POST /v1/jobs`: queues a plan with its data, or a built-in job; 202
/// with the job and `Location`. Needs `submit`.
pub async fn submit(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    let token = caller.require(Scope::Submit)?.clone();
    let req: SubmitRequest = parse_body(&body)?;
    match req.builtin.as_deref() {
        Some("income-threshold") => {
            if req.plan.is_some() || !req.data.is_empty() {
                return Err(ApiError::bad("builtin", "a built-in job takes `input`, not `plan` or `data`"));
            }
            let input = req.input.ok_or_else(|| ApiError::bad("input", "missing: the built-in job's input"))?;
            let mut r: IncomeRequest = parse_body(input.to_string().as_bytes()).map_err(|e| ApiError { field: e.field.map(|f| format!("input.{f}")), ..e })?;
            r.mode = r.mode.or(req.mode);
            r.timeout_s = r.timeout_s.or(req.timeout_s);
            let (job, extra) = submit_income(&state, token, r).await?;
            return Ok(accepted(&job, extra));
        }
        Some(other) => return Err(ApiError::bad("builtin", format!("unknown built-in job `{other}` (known: income-threshold)"))),
        None => {}
    }
    if req.input.is_some() {
        return Err(ApiError::bad("input", "`input` is for built-in jobs; give `plan` and `data`"));
    }
    let plan = req.plan.ok_or_else(|| ApiError::bad("plan", "missing: a plan (JSON object, or YAML text) or `builtin`"))?;
    let mode = req.mode.unwrap_or(Mode::Prove);
    let st = Arc::clone(&state);
    let job = blocking(move || {
        let c = check(&st, &token.tenant, parse_plan(plan)?, req.data)?;
        enqueue(&st, &token, "plan", &c, mode, req.timeout_s).map(|j| (j, c.loaded.commitment.data_root, c.loaded.file.hash))
    })
    .await?;
    Ok(accepted(&job.0, json!({"data_root": hex(&job.1), "plan_hash": hex(&job.2)})))
}

/// The job request text the income-threshold plan answers, for `threshold`.
fn income_request(threshold: &str) -> String {
    format!(
        "Job request: prove that payments received between 2026-01-01 and 2026-06-30,\nrefunds excluded, total at least {threshold}. \
         Disclose only the verdict and the\nnumber of payments.\n"
    )
}

/// Builds the income-threshold plan for `threshold` from the example plan:
/// only the threshold literal and the job request hash change.
fn income_plan(threshold: &str) -> Result<(PlanFile, String), ApiError> {
    let base = PlanFile::parse("income-threshold", INCOME_PLAN, false).map_err(|e| ApiError::internal(format!("the built-in plan: {e:?}")))?;
    let mut v: Value = serde_json::from_slice(&base.jcs).map_err(ApiError::internal)?;
    let request = income_request(threshold);
    v["jobRequestHash"] = json!(format!("sha256:{}", ::hex::encode(<sha2::Sha256 as sha2::Digest>::digest(request.as_bytes()))));
    let verdict = v["steps"]
        .as_array_mut()
        .and_then(|s| s.iter_mut().find(|s| s["id"] == "verdict"))
        .ok_or_else(|| ApiError::internal("the built-in plan has no `verdict` step"))?;
    verdict["columns"][0]["expression"]["ge"][1] = json!({"decimal": threshold});
    let file = PlanFile::parse("income-threshold", &v.to_string(), true).map_err(|e| plan_error(&e))?;
    Ok((file, request))
}

async fn submit_income(state: &Arc<AppState>, token: zkaudit_jobs::Token, r: IncomeRequest) -> Result<(Job, Value), ApiError> {
    let threshold = match &r.threshold {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(ApiError::bad("threshold", "expected a number or a decimal string")),
    };
    if parse_decimal(&threshold, 2).is_none() {
        return Err(ApiError::unprocessable("threshold", format!("`{threshold}` is not a decimal with at most 2 places")));
    }
    let commitment = match &r.history_commitment {
        Some(c) => {
            let h = c.strip_prefix("0x").or_else(|| c.strip_prefix("sha256:")).unwrap_or(c);
            Some(parse_hex32(h).ok_or_else(|| ApiError::bad("history_commitment", "expected 0x followed by 64 lowercase hex digits"))?)
        }
        None => None,
    };
    let st = Arc::clone(state);
    blocking(move || {
        let (file, request) = income_plan(&threshold)?;
        let mut data = BTreeMap::new();
        data.insert("payments".to_owned(), DataIn { csv: None, jsonl: None, records: Some(r.payment_history), blob: None, format: None });
        let c = check(&st, &token.tenant, file, data).map_err(|e| match e.field.as_deref() {
            // `data.payments` line N is payment_history[N-1].
            Some("data.payments") => {
                let line = e.details.as_ref().and_then(|d| d["line"].as_u64()).unwrap_or(1);
                let f = e.details.as_ref().and_then(|d| d["field"].as_str().map(str::to_owned));
                let field = format!("payment_history[{}]{}", line.saturating_sub(1), f.map(|f| format!(".{f}")).unwrap_or_default());
                ApiError { field: Some(field), ..e }
            }
            _ => e,
        })?;
        let root = c.loaded.commitment.data_root;
        if let Some(want) = commitment {
            if want != root {
                return Err(ApiError::unprocessable("history_commitment", format!("does not match the payment history: its data root is 0x{}", hex(&root))));
            }
        }
        let job = enqueue(&st, &token, "income-threshold", &c, r.mode.unwrap_or(Mode::Prove), r.timeout_s)?;
        Ok((job, json!({"history_commitment": format!("0x{}", hex(&root)), "plan_hash": hex(&c.loaded.file.hash), "job_request": request})))
    })
    .await
}

/// `?wait=` seconds to hold the request open for the job to finish.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    wait: Option<u64>,
}

/// `POST /v1/prove/income-threshold`: queues the built-in job and answers
/// 202 with the job; with `?wait=S`, waits up to S seconds and, if it
/// finished, answers 200 with the receipt (base64) and
/// `public_outputs {meets_threshold, payment_count}`. Needs `submit`.
pub async fn income_threshold(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<WaitQuery>, body: Bytes) -> Result<Response, ApiError> {
    let token = caller.require(Scope::Submit)?.clone();
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_S {
        return Err(ApiError::bad("wait", format!("at most {MAX_WAIT_S} seconds")));
    }
    let r: IncomeRequest = parse_body(&body)?;
    let (job, extra) = submit_income(&state, token, r).await?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut current = job;
    while !current.state.is_final() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (store, id) = (Arc::clone(&state.store), current.id.clone());
        current = blocking(move || store.get(&id)?.ok_or_else(|| ApiError::internal("the job vanished"))).await?;
    }
    if !current.state.is_final() {
        return Ok(accepted(&current, extra));
    }
    let mut v = job_json(&current);
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    if let Some(id) = current.receipt_id.clone() {
        let (store, tenant) = (Arc::clone(&state.store), current.tenant.clone());
        let bytes = blocking(move || store.receipt(Some(&tenant), &id).map_err(ApiError::from)).await?;
        v["receipt"] = json!(bytes.map(|b| base64::engine::general_purpose::STANDARD.encode(b)));
    }
    Ok((StatusCode::OK, Json(v)).into_response())
}

/// `GET /v1/jobs?state=&limit=` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/jobs`: the caller's jobs (an admin's: everyone's), newest first.
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let filter: Option<JobState> = q.state.as_deref().map(str::parse).transpose().map_err(|e: String| ApiError::bad("state", e))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::bad("limit", format!("must be between 1 and {MAX_LIST}")));
    }
    let tenant = caller.tenant_filter().map(str::to_owned);
    let store = Arc::clone(&state.store);
    let jobs = blocking(move || store.list(tenant.as_deref(), filter, limit).map_err(ApiError::from)).await?;
    Ok(Json(json!({"jobs": jobs.iter().map(job_json).collect::<Vec<_>>()})))
}

/// Loads job `id` if the caller may see it (others' jobs are 404, not 403:
/// their existence is not disclosed).
async fn visible_job(state: &Arc<AppState>, caller: &Caller, id: String) -> Result<Job, ApiError> {
    job_id(&id)?;
    let store = Arc::clone(&state.store);
    let tenant = caller.tenant_filter().map(str::to_owned);
    let job = blocking(move || store.get(&id).map_err(ApiError::from)).await?;
    job.filter(|j| tenant.as_deref().is_none_or(|t| t == j.tenant)).ok_or_else(|| ApiError::not_found("no such job"))
}

/// `GET /v1/jobs/{id}`.
pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(job_json(&visible_job(&state, &caller, id).await?)))
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job (a running
/// prover is killed within a heartbeat); 409 if it already finished.
pub async fn cancel(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require(Scope::Submit)?;
    let job = visible_job(&state, &caller, id).await?;
    if job.state.is_final() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("the job already ended: {}", job.state)).with_details(job_json(&job)));
    }
    let store = Arc::clone(&state.store);
    let id = job.id.clone();
    let job = blocking(move || store.cancel(&id)?.ok_or_else(|| ApiError::not_found("no such job"))).await?;
    Ok((StatusCode::ACCEPTED, Json(job_json(&job))).into_response())
}

/// `POST /v1/blobs`: stores the body for later jobs; 201 with its ID (SHA-256).
pub async fn upload(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    let token = caller.require(Scope::Submit)?.clone();
    if body.is_empty() {
        return Err(ApiError::bad("body", "an empty blob"));
    }
    let n = body.len();
    let store = Arc::clone(&state.store);
    let id = blocking(move || store.put_blob(&token.tenant, &body).map_err(ApiError::from)).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "bytes": n}))).into_response())
}

fn receipt_id(id: &str, field: &str) -> Result<(), ApiError> {
    if parse_hex32(id).is_some() {
        Ok(())
    } else {
        Err(ApiError::bad(field, format!("`{id}` is not a receipt ID (64 lowercase hex digits)")))
    }
}

/// `GET /v1/receipts/{id}`: the receipt file (bincode `risc0_zkvm::Receipt`).
pub async fn receipt(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    receipt_id(&id, "id")?;
    let store = Arc::clone(&state.store);
    let tenant = caller.tenant_filter().map(str::to_owned);
    let bytes = blocking(move || store.receipt(tenant.as_deref(), &id).map_err(ApiError::from)).await?;
    let bytes = bytes.ok_or_else(|| ApiError::not_found("no such receipt"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// What a verification expects of the journal.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpectIn {
    plan_hash: Option<String>,
    data_root: Option<String>,
    output: Option<Value>,
}

/// One receipt to verify: inline (`receipt`, base64) or stored (`receipt_id`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    receipt: Option<String>,
    receipt_id: Option<String>,
    #[serde(default)]
    expect: ExpectIn,
}

/// `POST /v1/verify/batch` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    receipts: Vec<VerifyIn>,
}

fn expectations(e: &ExpectIn, at: &str) -> Result<Expectations, ApiError> {
    let hash = |v: &Option<String>, f: &str| {
        v.as_deref()
            .map(|h| {
                parse_hex32(h.strip_prefix("sha256:").unwrap_or(h)).ok_or_else(|| ApiError::bad(format!("{at}expect.{f}"), "expected 64 lowercase hex digits"))
            })
            .transpose()
    };
    let output = e
        .output
        .as_ref()
        .map(|o| serde_json_canonicalizer::to_vec(o).map_err(|err| ApiError::bad(format!("{at}expect.output"), err.to_string())))
        .transpose()?;
    Ok(Expectations { plan_hash: hash(&e.plan_hash, "plan_hash")?, data_root: hash(&e.data_root, "data_root")?, output })
}

/// Verifies one receipt; a rejected receipt is `valid: false` with the reason.
fn verify_one(state: &AppState, tenant: Option<&str>, v: &VerifyIn, at: &str) -> Result<Value, ApiError> {
    let expect = expectations(&v.expect, at)?;
    let bytes = match (&v.receipt, &v.receipt_id) {
        (Some(b64), None) => {
            base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| ApiError::bad(format!("{at}receipt"), format!("not base64: {e}")))?
        }
        (None, Some(id)) => {
            receipt_id(id, &format!("{at}receipt_id"))?;
            state.store.receipt(tenant, id)?.ok_or_else(|| ApiError::unprocessable(format!("{at}receipt_id"), "no such receipt"))?
        }
        _ => return Err(ApiError::bad(format!("{at}receipt"), "give exactly one of receipt (base64) or receipt_id")),
    };
    Ok(match zkaudit_zkvm::verify(&bytes, &state.registry, &expect) {
        Ok(ok) => json!({
            "valid": true,
            "reason": null,
            "output_hash": hex(&ok.journal.output_hash),
            "plan_hash": hex(&ok.journal.plan_hash),
            "data_root": hex(&ok.journal.data_root),
            "public_output": serde_json::from_slice::<Value>(&ok.journal.output).ok(),
            "image_id": ok.program.image_id,
            "program_version": ok.program.version,
            "kind": ok.kind,
            "segments": ok.segments,
            "receipt_digest": hex(&ok.receipt_digest),
        }),
        Err(e) => json!({"valid": false, "reason": e.to_string(), "output_hash": null}),
    })
}

/// `POST /v1/verify`: verifies a receipt against the registry and the
/// expected commitments. Needs `read`.
pub async fn verify(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let req: VerifyIn = parse_body(&body)?;
    let tenant = caller.tenant_filter().map(str::to_owned);
    let st = Arc::clone(&state);
    Ok(Json(blocking(move || verify_one(&st, tenant.as_deref(), &req, "")).await?))
}

/// `POST /v1/verify/batch`: `{receipts: [...]}` → `{results, valid, invalid}`.
pub async fn verify_batch(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let req: BatchIn = parse_body(&body)?;
    if req.receipts.is_empty() || req.receipts.len() > MAX_BATCH {
        return Err(ApiError::bad("receipts", format!("give 1 to {MAX_BATCH} receipts")));
    }
    let tenant = caller.tenant_filter().map(str::to_owned);
    let st = Arc::clone(&state);
    let results = blocking(move || {
        req.receipts.iter().enumerate().map(|(i, v)| verify_one(&st, tenant.as_deref(), v, &format!("receipts[{i}]."))).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let valid = results.iter().filter(|r| r["valid"] == true).count();
    Ok(Json(json!({"valid": valid, "invalid": results.len() - valid, "results": results})))
}
