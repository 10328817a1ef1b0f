//! `/v1/market`: the proof market's job board over HTTP, on the
//! settlement database the server was started with (`serve --settle-db`).
//! A buyer posts a job (plan and data, price, deadline); the registry
//! draws its prover and settlement accepts it (`zkaudit_app::provers`
//! `post`); the prover finds it under `/v1/provers/{key}/jobs`, fetches
//! the spec and data from this server's Blossom store, and delivers the
//! receipt, which is verified against the recorded terms and settled
//! (`zkaudit_app::settle::Market::deliver`). Each handler is one call.
//!
//! Identities: the buyer is the posting token's tenant; only a token
//! whose tenant is the drawn prover's key may deliver for a job (anyone
//! else could get the prover slashed with a bad receipt).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use zkaudit_app::provers::{Assignment, Offer};
use zkaudit_app::settle::{SettlementRecord, Terms};
use zkaudit_jobs::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs_api::{check, parse_body, parse_plan, DataIn};
use crate::provers_api::with_registry;
use crate::{blocking, AppState};

/// The Blossom owner the market stores job specs and data as.
const MARKET_OWNER: &str = "zkaudit-market";

/// Body of `POST /v1/market/jobs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostIn {
    /// The plan: a JSON object, or YAML text.
    plan: Value,
    /// Its data inputs, as for `POST /v1/jobs`.
    #[serde(default)]
    data: BTreeMap<String, DataIn>,
    /// What the buyer pays, in the settlement unit.
    price: u64,
    /// Seconds the prover has for a valid proof.
    deadline_s: u32,
    /// Draw only provers with a verified TEE attestation.
    #[serde(default)]
    require_tee: bool,
    /// 32 bytes of public randomness for the draw, 64 hex; by default the
    /// root hash of the ledger's latest checkpoint.
    seed: Option<String>,
    /// The job's ID; by default the SHA-256 of the buyer and the spec.
    id: Option<String>,
}

/// `POST /v1/market/jobs` (submit): stores the job's spec and data in the
/// Blossom store, draws its prover, accepts it (escrow, collateral); 201
/// with the assignment, 409 when no prover can be drawn, 422 when the
/// buyer cannot pay or the plan or data are refused.
pub async fn post(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Assignment>), ApiError> {
    let buyer = caller.require(Scope::Submit)?.tenant.clone();
    let req: PostIn = parse_body(&body)?;
    let seed = match &req.seed {
        Some(s) => Some(zkaudit_plan::value::parse_hex32(s).ok_or_else(|| ApiError::bad("seed", "must be 64 hex digits"))?),
        None => None,
    };
    let st = Arc::clone(&state);
    let (offer, seed) = blocking(move || {
        let c = check(&st, &buyer, parse_plan(req.plan)?, req.data)?;
        let spec = c.spec(|bytes| st.blossom.put(bytes, "application/octet-stream", MARKET_OWNER).map_err(ApiError::internal))?;
        let spec_bytes = serde_json::to_vec(&spec).map_err(ApiError::internal)?;
        let spec_sha = st.blossom.put(&spec_bytes, "application/json", MARKET_OWNER).map_err(ApiError::internal)?;
        let id = req.id.unwrap_or_else(|| hex::encode(Sha256::digest(format!("zkaudit-market/job/1\n{buyer}\n{spec_sha}").as_bytes())));
        let seed = match seed {
            Some(s) => s,
            None => st.ledger.reader().map_err(ApiError::internal)?.checkpoint().root,
        };
        let terms = Terms {
            plan_hash: c.loaded.file.hash,
            data_root: c.loaded.commitment.data_root,
            spec: Some(zkaudit_event::Digest(Sha256::digest(&spec_bytes).into())),
        };
        Ok((Offer { id, buyer, price: u128::from(req.price), deadline_s: req.deadline_s, require_tee: req.require_tee, terms }, seed))
    })
    .await?;
    let a = with_registry(state, move |r| r.post(&offer, &seed)).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// `GET /v1/market/jobs/{id}` (read): the job's assignment; 404 when no
/// prover was drawn for it.
pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> Result<Json<Assignment>, ApiError> {
    caller.require(Scope::Read)?;
    let found = with_registry(state, move |r| r.assignment(&id)).await?;
    found.map(Json).ok_or_else(|| ApiError::not_found("no such job on the market"))
}

/// `GET /v1/provers/{key}/jobs` (read): the jobs drawn for prover `key`,
/// oldest first, each with its acceptance (terms, spec) and outcome.
pub async fn assigned(State(state): State<Arc<AppState>>, caller: Caller, Path(key): Path<String>) -> Result<Json<Vec<Assignment>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(with_registry(state, move |r| r.assigned(&key)).await?))
}

/// `POST /v1/market/jobs/{id}/receipt` (submit, as the drawn prover):
/// the body is the receipt file; it is verified against the job's terms
/// and the job paid (a valid proof) or refunded and the prover slashed;
/// 200 with the `pay` or `refund` record (also for the same receipt
/// again). 403 for any other caller, 404 for an unknown job, 409 when it
/// was settled already on another receipt.
pub async fn deliver(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>, body: Bytes) -> Result<Json<SettlementRecord>, ApiError> {
    let tenant = caller.require(Scope::Submit)?.tenant.clone();
    if body.is_empty() {
        return Err(ApiError::bad("body", "empty: send the receipt file as the body"));
    }
    let r = with_registry(state, move |r| {
        let Some(a) = r.assignment(&id)? else { return Ok(Err(ApiError::not_found("no such job on the market"))) };
        if a.prover != tenant {
            return Ok(Err(ApiError::new(StatusCode::FORBIDDEN, format!("job {id} was drawn for prover {}; this token's tenant is {tenant}", a.prover))));
        }
        r.market.deliver(&id, &body).map(Ok)
    })
    .await??;
    Ok(Json(r))
}

/// `POST /v1/market/jobs/{id}/expire` (submit): no valid proof by the
/// deadline: the buyer is refunded and the prover slashed; 422 before the
/// deadline has passed.
pub async fn expire(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> Result<Json<SettlementRecord>, ApiError> {
    caller.require(Scope::Submit)?;
    Ok(Json(with_registry(state, move |r| r.market.missed_deadline(&r.market.job(&id)?)).await?))
}

/// Body of `POST /v1/market/deposits`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositIn {
    buyer: String,
    amount: u64,
    /// The payment's reference on the rail (idempotency).
    #[serde(rename = "ref")]
    rail_ref: String,
}

/// `POST /v1/market/deposits` (admin): money paid in for a buyer over the
/// payment rail; 201 with the `deposit` record (a repeat of `ref` answers
/// with the first).
pub async fn deposit(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<SettlementRecord>), ApiError> {
    caller.require(Scope::Admin)?;
    let req: DepositIn = parse_body(&body)?;
    let r = with_registry(state, move |r| r.market.deposit(&req.buyer, u128::from(req.amount), &req.rail_ref)).await?;
    Ok((StatusCode::CREATED, Json(r)))
}
