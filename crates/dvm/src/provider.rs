//! The provider: NIP-90 job requests in, ZK-verified results out.
//!
//! For each request (each event ID once, however often relays deliver it):
//! record a `dvm_request` event; parse and check the requirements; load the
//! plan and data; execute it (no proof) for its cycle count and refuse when
//! the estimated proving time is over `max-proving-time`; send `processing`
//! feedback; prove through the proof server's job API; check the receipt
//! against the request; put it in content-addressed storage; publish the
//! result (kind + 1000) and `success` feedback; record `dvm_result`. Any
//! refusal or failure is an `error` feedback with the reason and a
//! `dvm_refusal` event. Ledger events link to the request's event.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nostr_sdk::prelude::*;
use serde_json::{json, Value};
use zkaudit_collect::shape::{digest_bytes, Observation, OcsfClass};
use zkaudit_collect::Sink;
use zkaudit_event::{Digest, Layer};
use zkaudit_jobs::protocol::ProveReport;
use zkaudit_jobs::{JobView, State as JobState};
use zkaudit_plan::value::hex;
use zkaudit_store::ProofStore;
use zkaudit_zkvm::{Expectations, Registry};

use crate::encryption::{is_encrypted, Encryption};
use crate::tags::{tag_vecs, to_nostr_tags, ProofLocation, ZkRequest, ZkResult, ZKVM};
use crate::{connect, load_request, version_at_least, Refusal, HANDLER_KIND};

/// The proof server the provider proves through.
#[derive(Clone, Debug)]
pub struct Prover {
    /// Its base URL (`http://host:port`).
    pub url: String,
    /// A bearer token with the `submit` scope.
    pub token: String,
}

/// How the provider runs.
pub struct Config {
    /// The provider's key (signs feedback, results and the announcement).
    pub keys: Keys,
    /// Relays to listen and publish on.
    pub relays: Vec<String>,
    /// The job request kind (results are kind + 1000).
    pub job_kind: u16,
    /// Where jobs are proved.
    pub prover: Prover,
    /// Where receipts go; `None` puts them inline when they fit.
    pub store: Option<Arc<ProofStore>>,
    /// The programs receipts are checked against; the embedded program's
    /// version answers `min-program-version`.
    pub registry: Registry,
    /// Assumed proving rate for the estimate (cycles per second).
    pub prove_rate: u64,
    /// Largest event the relays accept (bytes): an inline proof must fit.
    pub max_event_bytes: usize,
    /// Timeout of input fetches and proof-server calls.
    pub timeout: Duration,
}

/// The ledger events' collector name.
pub const COLLECTOR: &str = "dvm";

struct Ctx {
    config: Config,
    client: Client,
    /// Taken (and finished) when the provider stops.
    sink: Mutex<Option<Sink>>,
    version: String,
}

/// Runs the provider until `stop` resolves: announces it (NIP-89), then
/// serves requests of the configured kind published from now on; `ready`
/// is called once it is subscribed.
///
/// # Errors
/// A message when the relays cannot be added or the subscription fails;
/// errors of single jobs are feedback, not returned.
pub async fn run(config: Config, sink: Sink, ready: impl FnOnce(), stop: impl std::future::Future<Output = ()>) -> Result<(), String> {
    let client = connect(&config.keys, &config.relays).await?;
    let version = zkaudit_zkvm::registry::embedded_entry().version;
    let ctx = Arc::new(Ctx { config, client, sink: Mutex::new(Some(sink)), version });
    announce(&ctx).await?;
    let kind = Kind::from_u16(ctx.config.job_kind);
    let filter = Filter::new().kind(kind).since(Timestamp::now());
    let mut notifications = ctx.client.notifications();
    ctx.client.subscribe(filter, None).await.map_err(|e| format!("subscribing: {e}"))?;
    ready();
    let mut seen = Seen::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            n = notifications.recv() => match n {
                Ok(RelayPoolNotification::Event { event, .. }) => {
                    if event.kind == kind && seen.take(&event, Timestamp::now()) {
                        tokio::spawn(handle(Arc::clone(&ctx), *event));
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }
    ctx.client.shutdown().await;
    let sink = ctx.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(sink) = sink {
        let report = tokio::task::spawn_blocking(move || sink.finish()).await.map_err(|e| e.to_string())?;
        report.map_err(|e| format!("flushing the ledger events: {e}"))?;
    }
    Ok(())
}

/// How long a request stays served-once: requests are remembered this
/// long after their `created_at` (s), and older ones are not served.
pub const SEEN_WINDOW_S: u64 = 24 * 3600;

/// The requests already taken. Relays deliver a request again after a
/// reconnect (the subscription is renewed), and each must be served once;
/// memory stays bounded by forgetting requests older than
/// [`SEEN_WINDOW_S`], which are then not served at all.
#[derive(Default)]
struct Seen {
    ids: HashSet<EventId>,
    by_time: std::collections::BTreeSet<(Timestamp, EventId)>,
}

impl Seen {
    /// Whether `e` is new and timely (then it is remembered); forgets
    /// requests that left the window as of `now`.
    fn take(&mut self, e: &Event, now: Timestamp) -> bool {
        let horizon = Timestamp::from_secs(now.as_secs().saturating_sub(SEEN_WINDOW_S));
        while let Some(&(t, id)) = self.by_time.first() {
            if t >= horizon {
                break;
            }
            self.by_time.pop_first();
            self.ids.remove(&id);
        }
        // Outside the window either way: too old to serve, or dated so far
        // ahead that remembering it would outlast the window.
        if e.created_at < horizon || e.created_at.as_secs() > now.as_secs() + SEEN_WINDOW_S || !self.ids.insert(e.id) {
            return false;
        }
        self.by_time.insert((e.created_at, e.id));
        true
    }
}

/// Publishes the NIP-89 handler information: the kind served and what the
/// provider offers.
async fn announce(ctx: &Ctx) -> Result<(), String> {
    let about = json!({
        "name": "zkaudit prover",
        "about": "Proves zkaudit execution plans in the RISC Zero zkVM; results carry ZK tags and a receipt in content-addressed storage.",
        "zkvm": ZKVM,
        "programVersion": ctx.version,
        "imageId": zkaudit_zkvm::registry::embedded_entry().image_id,
        "proveRateCyclesPerSecond": ctx.config.prove_rate,
    });
    let tags = to_nostr_tags(vec![
        vec!["d".into(), format!("zkaudit-{}", ctx.config.job_kind)],
        vec!["k".into(), ctx.config.job_kind.to_string()],
        vec!["verification".into(), "zk".into()],
        vec!["zkvm".into(), ZKVM.into()],
    ])
    .map_err(|e| e.to_string())?;
    let e = EventBuilder::new(Kind::from_u16(HANDLER_KIND), about.to_string()).tags(tags);
    ctx.client.send_event_builder(e).await.map_err(|e| format!("announcing: {e}"))?;
    Ok(())
}

/// Hands `o` to the sink (which batches and spools; it does not block on
/// the destination) and returns its digest, for the events that follow it.
fn record(ctx: &Ctx, o: Observation) -> Option<Digest> {
    let mut sink = ctx.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match sink.as_mut().map(|s| s.send(&o.into_event())) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            eprintln!("dvm: recording in the ledger failed: {e}");
            None
        }
        None => None,
    }
}

/// The ledger event of `action` on `request`, as OCSF API Activity: a
/// request or a result is a Create (activity 1), a refusal is Other (99).
fn observation(action: &str, request: &Event) -> Observation {
    let activity = if action == "refusal" { 99 } else { 1 };
    Observation::new(&format!("dvm_{action}"), Layer::Application, OcsfClass::ApiActivity, activity, &format!("dvm-{action}"))
        .field("nostr.event.id", request.id.to_hex())
        .field("nostr.event.kind", u64::from(request.kind.as_u16()))
        .field("nostr.customer.pubkey", request.pubkey.to_hex())
}

async fn feedback(ctx: &Ctx, request: &Event, status: DataVendingMachineStatus, info: &str) {
    let fb = EventBuilder::job_feedback(JobFeedbackData::new(request, status).extra_info(info));
    if let Err(e) = ctx.client.send_event_builder(fb).await {
        eprintln!("dvm: sending {status} feedback for {}: {e}", request.id);
    }
}

async fn handle(ctx: Arc<Ctx>, request: Event) {
    let parent = record(&ctx, observation("request", &request).input(digest_bytes(request.as_json().as_bytes())));
    match process(&ctx, &request).await {
        Ok((result, z)) => {
            let sent = ctx.client.send_event(&result).await;
            let mut o = observation("result", &request)
                .output(digest_bytes(result.as_json().as_bytes()))
                .field("nostr.result.id", result.id.to_hex())
                .field("zkaudit.plan_hash", z.plan_hash.clone())
                .field("zkaudit.data_root", z.data_root.clone())
                .field("zkaudit.output_hash", z.output_hash.clone())
                .field("zkaudit.proof.image_id", z.program_id.clone())
                .field("zkaudit.cycles", z.cycles_used)
                .field("zkaudit.prove_millis", z.proving_time_ms);
            if let ProofLocation::Ref { reference, sha256 } = &z.proof {
                o = o.field("zkaudit.proof_ref", reference.clone()).field("zkaudit.receipt_sha256", sha256.clone());
            }
            o = o.outcome(sent.is_ok());
            if let Err(e) = &sent {
                o = o.field("error.message", e.to_string());
            }
            record(&ctx, o.parents(parent));
            if sent.is_ok() {
                feedback(&ctx, &request, DataVendingMachineStatus::Success, "proved; the receipt is at proof-ref").await;
            }
        }
        Err(r) => {
            let reason = r.to_string();
            feedback(&ctx, &request, DataVendingMachineStatus::Error, &reason).await;
            record(&ctx, observation("refusal", &request).outcome(false).field("zkaudit.dvm.reason", reason).parents(parent));
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Refusal> + Send + 'static) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Refusal::Failed(e.to_string()))?
}

/// The request's tags: its own, or those encrypted to this provider in its
/// content (an `encrypted` tag and the provider's `p` tag, NIP-90), by
/// NIP-04 or NIP-44, with the scheme, which the output is encrypted with.
fn request_tags(ctx: &Ctx, request: &Event) -> Result<(Vec<Vec<String>>, Option<Encryption>), Refusal> {
    let own = tag_vecs(request);
    if !is_encrypted(&own) {
        return Ok((own, None));
    }
    let (plain, scheme) = Encryption::decrypt(ctx.config.keys.secret_key(), &request.pubkey, &request.content)
        .map_err(|e| Refusal::Malformed(format!("encrypted request: {e} for this provider")))?;
    let mut tags: Vec<Vec<String>> =
        serde_json::from_str(&plain).map_err(|e| Refusal::Malformed(format!("encrypted request: not a JSON array of tags: {e}")))?;
    tags.extend(own);
    Ok((tags, Some(scheme)))
}

async fn process(ctx: &Arc<Ctx>, request: &Event) -> Result<(Event, ZkResult), Refusal> {
    let (tags, encryption) = request_tags(ctx, request)?;
    let req = ZkRequest::parse(&tags)?;
    if req.verification != "zk" {
        return Err(Refusal::Unsupported(format!("verification level `{}`: this provider serves `zk` only", req.verification)));
    }
    if req.zkvm != ZKVM && req.zkvm != "any" {
        return Err(Refusal::Unsupported(format!("zkVM `{}`: this provider proves with {ZKVM}", req.zkvm)));
    }
    if let Some(want) = &req.min_program_version {
        if !version_at_least(&ctx.version, want) {
            return Err(Refusal::ProgramTooOld { want: want.clone(), have: ctx.version.clone() });
        }
    }
    let timeout = ctx.config.timeout;
    let r = req.clone();
    // The loaded plan stays on the blocking thread; what crosses is Send.
    let (plan_hash, data_root, plan, data, cycles) = blocking(move || {
        let (loaded, plan, data) = load_request(&r, timeout)?;
        let run = zkaudit_app::proof::run(&loaded, true).map_err(|e| Refusal::Plan(e.to_string()))?;
        Ok((loaded.file.hash, loaded.commitment.data_root, plan, data, run.zkvm.as_ref().map_or(0, |c| c.total_cycles)))
    })
    .await?;
    let rate = ctx.config.prove_rate.max(1);
    let estimate_s = cycles.div_ceil(rate);
    if estimate_s > req.max_proving_time_s {
        return Err(Refusal::TooSlow { estimate_s, max_s: req.max_proving_time_s, cycles, rate });
    }
    feedback(ctx, request, DataVendingMachineStatus::Processing, &format!("proving {cycles} cycles, about {estimate_s} s")).await;

    let prover = ctx.config.prover.clone();
    let mut body_data = serde_json::Map::new();
    for d in &data {
        let key = if matches!(d.format, zkaudit_plan::data::Format::JsonLines) { "jsonl" } else { "csv" };
        let text = String::from_utf8(d.bytes.clone()).map_err(|_| Refusal::Plan(format!("data `{}` is not UTF-8 text", d.name)))?;
        body_data.insert(d.name.clone(), json!({ key: text }));
    }
    // The job's own limit: the request's, plus room for queueing.
    let job_timeout = req.max_proving_time_s.saturating_mul(2).max(60);
    let body = json!({"plan": plan, "data": body_data, "mode": "prove", "timeout_s": job_timeout});
    let http_timeout = ctx.config.timeout;
    let (receipt, report, wall) = blocking(move || prove_remote(&prover, &body, Duration::from_secs(job_timeout + 60), http_timeout)).await?;

    let registry = ctx.config.registry.clone();
    let expect = Expectations { plan_hash: Some(plan_hash), data_root: Some(data_root), output: None };
    let rc = receipt.clone();
    let v = blocking(move || {
        zkaudit_zkvm::verify(&rc, &registry, &expect).map_err(|e| Refusal::Failed(format!("the proof server's receipt does not verify: {e}")))
    })
    .await?;

    let proof = match &ctx.config.store {
        Some(store) => {
            let store = Arc::clone(store);
            let rc = receipt.clone();
            let put = blocking(move || {
                store.put(&rc, zkaudit_app::proof::RECEIPT_CONTENT_TYPE, false).map_err(|e| Refusal::Failed(format!("storing the receipt: {e}")))
            })
            .await?;
            ProofLocation::Ref { reference: put.blob.reference(), sha256: put.blob.sha256 }
        }
        None => ProofLocation::Inline(receipt.clone()),
    };
    let z = ZkResult {
        program_id: v.program.image_id.clone(),
        plan_hash: hex(&plan_hash),
        data_root: hex(&data_root),
        output_hash: hex(&v.journal.output_hash),
        proof,
        proving_time_ms: report.as_ref().map_or(wall.as_millis() as u64, |r| (r.prove_seconds * 1000.0).round() as u64),
        cycles_used: report.as_ref().map_or(cycles, |r| r.cycles.total_cycles),
        // The provider asks what the buyer bid (NIP-90 `amount`), no more.
        amount_msat: req.bid_msat,
    };
    // An encrypted request gets its output back encrypted with the same
    // scheme, marked `encrypted` (NIP-90); the ZK tags are commitments and
    // stay readable, so anyone can check the proof.
    let output = String::from_utf8_lossy(&v.journal.output).into_owned();
    let (content, mut tags) = match encryption {
        Some(scheme) => (scheme.encrypt(ctx.config.keys.secret_key(), &request.pubkey, &output).map_err(Refusal::Failed)?, vec![vec!["encrypted".into()]]),
        None => (output, Vec::new()),
    };
    tags.extend(z.to_tags());
    // NIP-90's `amount` tag is written by the builder.
    let builder = EventBuilder::job_result(request.clone(), content, z.amount_msat.unwrap_or(0), None)
        .map_err(|e| Refusal::Failed(format!("building the result: {e}")))?
        .tags(to_nostr_tags(tags)?);
    let event = ctx.client.sign_event_builder(builder).await.map_err(|e| Refusal::Failed(format!("signing the result: {e}")))?;
    if event.as_json().len() > ctx.config.max_event_bytes {
        return Err(Refusal::Failed(format!(
            "the result event is {} bytes, over the relays' limit of {} (give --store so the receipt goes by proof-ref)",
            event.as_json().len(),
            ctx.config.max_event_bytes
        )));
    }
    Ok((event, z))
}

/// Submits `body` to the proof server, waits (up to `limit`) for the job to
/// finish, and returns the receipt, the job's report and the wall time.
fn prove_remote(p: &Prover, body: &Value, limit: Duration, timeout: Duration) -> Result<(Vec<u8>, Option<ProveReport>, Duration), Refusal> {
    let started = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into();
    let auth = format!("Bearer {}", p.token);
    let base = p.url.trim_end_matches('/');
    let fail = |m: String| Refusal::Failed(format!("proof server {base}: {m}"));
    let read = |r: &mut ureq::http::Response<ureq::Body>| -> Result<JobView, Refusal> {
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().map_err(|e| fail(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("HTTP {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("not a job: {e}")))
    };
    let mut r = agent.post(format!("{base}/v1/jobs")).header("Authorization", &auth).send_json(body).map_err(|e| fail(e.to_string()))?;
    let id = read(&mut r)?.id;
    let job = loop {
        let mut r = agent.get(format!("{base}/v1/jobs/{id}")).header("Authorization", &auth).call().map_err(|e| fail(e.to_string()))?;
        let job = read(&mut r)?;
        match job.state {
            JobState::Succeeded => break job,
            JobState::Queued | JobState::Running => {}
            other => return Err(fail(format!("job {id} ended {other}: {}", job.error.as_deref().unwrap_or("no reason given")))),
        }
        if started.elapsed() > limit {
            let _ = agent.delete(format!("{base}/v1/jobs/{id}")).header("Authorization", &auth).call();
            return Err(fail(format!("job {id} did not finish within {} s; cancelled", limit.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let receipt_id = job.receipt_id.as_deref().ok_or_else(|| fail(format!("job {id} succeeded without a receipt")))?;
    let mut r = agent.get(format!("{base}/v1/receipts/{receipt_id}")).header("Authorization", &auth).call().map_err(|e| fail(e.to_string()))?;
    if !r.status().is_success() {
        return Err(fail(format!("receipt {receipt_id}: HTTP {}", r.status().as_u16())));
    }
    let receipt = r.body_mut().with_config().limit(zkaudit_store::DEFAULT_MAX_BLOB_BYTES).read_to_vec().map_err(|e| fail(e.to_string()))?;
    let report = job.result.and_then(|v| serde_json::from_value::<ProveReport>(v).ok());
    Ok((receipt, report, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_at(keys: &Keys, secs: u64) -> Event {
        EventBuilder::new(Kind::from_u16(5750), "").custom_created_at(Timestamp::from_secs(secs)).sign_with_keys(keys).unwrap()
    }

    #[test]
    fn requests_are_taken_once_within_a_bounded_window() {
        let keys = Keys::generate();
        let now = 10 * SEEN_WINDOW_S;
        let mut seen = Seen::default();
        let a = request_at(&keys, now - 10);
        assert!(seen.take(&a, Timestamp::from_secs(now)));
        assert!(!seen.take(&a, Timestamp::from_secs(now + 5)), "a redelivered request is not served again");
        assert!(!seen.take(&request_at(&keys, now - SEEN_WINDOW_S - 1), Timestamp::from_secs(now)), "stale");
        assert!(!seen.take(&request_at(&keys, now + SEEN_WINDOW_S + 1), Timestamp::from_secs(now)), "dated too far ahead");
        let b = request_at(&keys, now);
        assert!(seen.take(&b, Timestamp::from_secs(now)));
        // A window later, a is forgotten (and would be refused as stale), b is still held.
        assert!(!seen.take(&a, Timestamp::from_secs(now + SEEN_WINDOW_S)));
        assert_eq!(seen.ids.len(), 1);
        assert!(seen.ids.contains(&b.id));
        assert_eq!(seen.by_time.len(), 1);
    }
}
