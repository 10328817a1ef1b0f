//! `/v1/provers`: the proof market's prover registry over HTTP, one call
//! into `zkaudit_app::provers` per request, on the settlement database the
//! server was started with (`serve --settle-db`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use zkaudit_app::provers::{ProbeResult, ProverRecord, ProverRegistry, ProverView};
use zkaudit_app::settle::Market;
use zkaudit_jobs::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs_api::parse_body;
use crate::{blocking, AppState};

/// Runs `f` with the registry, off the async runtime. 404 when the server
/// runs without a settlement database; [`zkaudit_app::Error::Conflict`]
/// is 409, [`zkaudit_app::Error::Settle`] 422.
pub(crate) async fn with_registry<T: Send + 'static>(
    state: Arc<AppState>,
    f: impl FnOnce(&ProverRegistry<'_, zkaudit_settle::SqlLedger>) -> Result<T, zkaudit_app::Error> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(move || {
        let (Some(settlement), Some(m)) = (state.settlement.as_ref(), state.config.market.as_ref()) else {
            return Err(ApiError::not_found("the prover registry is not enabled on this server (start it with --settle-db)"));
        };
        let market = Market { settlement, ledger: &state.ledger, registry: &state.registry };
        f(&ProverRegistry { market: &market, policy: m.policy }).map_err(|e| match e {
            zkaudit_app::Error::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, msg),
            zkaudit_app::Error::Settle(msg) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg),
            other => ApiError::internal(other),
        })
    })
    .await
}

/// `GET /v1/provers`: every registered prover with its stake, outcomes,
/// reputation, ramp and weight.
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<ProverView>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(with_registry(state, |r| r.views()).await?))
}

/// Body of `POST /v1/provers`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterIn {
    key: String,
    endpoint: String,
    /// Stake paid in, in the settlement ledger's unit.
    stake: u64,
    /// The stake payment's reference on the rail (idempotency).
    #[serde(rename = "ref")]
    rail_ref: String,
    /// TEE evidence, base64 (binary or hex text).
    #[serde(default)]
    quote: Option<String>,
    /// Its collateral, base64.
    #[serde(default)]
    collateral: Option<String>,
}

/// `POST /v1/provers` (admin): registers a prover; 201 with its `prover`
/// record, 409 when it is registered already, 422 when the stake, endpoint
/// or attestation is refused.
pub async fn register(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<ProverRecord>), ApiError> {
    caller.require(Scope::Admin)?;
    let req: RegisterIn = parse_body(&body)?;
    let evidence = match (&req.quote, &req.collateral) {
        (Some(q), Some(c)) => Some(evidence(q, c)?),
        (None, None) => None,
        _ => return Err(ApiError::bad("quote", "give quote and collateral together")),
    };
    let r = with_registry(state, move |r| {
        r.register(&req.key, &req.endpoint, u128::from(req.stake), &req.rail_ref, evidence.as_ref().map(|(q, c)| (q.as_slice(), c.as_slice())))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// TEE evidence and its collateral from their base64 fields `quote` and `collateral`.
fn evidence(quote: &str, collateral: &str) -> Result<(Vec<u8>, Vec<u8>), ApiError> {
    let b64 =
        |field: &str, v: &str| base64::engine::general_purpose::STANDARD.decode(v).map_err(|e| ApiError::bad(field.to_owned(), format!("not base64: {e}")));
    Ok((zkaudit_attest::evidence_bytes(&b64("quote", quote)?), b64("collateral", collateral)?))
}

/// Body of `POST /v1/provers/{key}/attest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestIn {
    /// TEE evidence, base64 (binary or hex text).
    quote: String,
    /// Its collateral, base64.
    collateral: String,
}

/// `POST /v1/provers/{key}/attest` (submit): a registered prover presents
/// fresh TEE evidence; 200 with the `attest` record when it verifies, or
/// with the `ban` record when it is forged (the stake is slashed and the
/// prover banned); 422 when refused for another reason, 409 when the
/// prover is not registered, withdrawn or banned.
pub async fn attest(State(state): State<Arc<AppState>>, caller: Caller, Path(key): Path<String>, body: Bytes) -> Result<Json<ProverRecord>, ApiError> {
    caller.require(Scope::Submit)?;
    let req: AttestIn = parse_body(&body)?;
    let (quote, collateral) = evidence(&req.quote, &req.collateral)?;
    Ok(Json(with_registry(state, move |r| r.attest(&key, &quote, &collateral)).await?))
}

/// `POST /v1/provers/probe` (admin): probes every active or unbonding
/// prover's endpoint now (HTTP GET, 10 s each), records changes and
/// slashes outages past the downtime allowed; one result per prover.
pub async fn probe(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<Vec<ProbeResult>>, ApiError> {
    caller.require(Scope::Admin)?;
    let now = zkaudit_settle::Clock::now_ns(&zkaudit_settle::SystemClock);
    let timeout = std::time::Duration::from_secs(zkaudit_app::provers::DEFAULT_PROBE_TIMEOUT_S);
    Ok(Json(with_registry(state, move |r| r.probe(now, |endpoint| zkaudit_app::provers::http_probe(endpoint, timeout))).await?))
}

/// Body of `POST /v1/provers/select`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectIn {
    job: String,
    /// 32 bytes of public randomness, 64 hex digits.
    seed: String,
    #[serde(default)]
    require_tee: bool,
}

/// `POST /v1/provers/select` (submit): draws the prover for a job, recorded
/// with its seed (a repeat returns the first draw); 409 when no prover can
/// be drawn.
pub async fn select(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> Result<Json<ProverRecord>, ApiError> {
    caller.require(Scope::Submit)?;
    let req: SelectIn = parse_body(&body)?;
    let seed = zkaudit_plan::value::parse_hex32(&req.seed).ok_or_else(|| ApiError::bad("seed", "must be 64 hex digits"))?;
    Ok(Json(with_registry(state, move |r| r.select(&req.job, &seed, req.require_tee)).await?))
}

/// `POST /v1/provers/{key}/unbond` (admin).
pub async fn unbond(State(state): State<Arc<AppState>>, caller: Caller, Path(key): Path<String>) -> Result<Json<ProverRecord>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(with_registry(state, move |r| r.unbond(&key)).await?))
}

/// `POST /v1/provers/{key}/withdraw` (admin): pays the stake out once the
/// unbonding period has passed; 409 before.
pub async fn withdraw(State(state): State<Arc<AppState>>, caller: Caller, Path(key): Path<String>) -> Result<Json<ProverRecord>, ApiError> {
    caller.require(Scope::Admin)?;
    let now = zkaudit_settle::Clock::now_ns(&zkaudit_settle::SystemClock);
    Ok(Json(with_registry(state, move |r| r.withdraw(&key, now)).await?))
}
