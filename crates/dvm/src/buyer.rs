//! The buyer: publish a ZK job request and wait for its outcome
//! ([`request`], the seed's `request_zk_job`), and check a result before
//! accepting anything ([`verify`], its `verify_proof`).

use std::time::{Duration, Instant};

use nostr_sdk::prelude::*;
use serde::Serialize;
use zkaudit_plan::value::hex;
use zkaudit_store::{BlobRef, ProofStore};
use zkaudit_zkvm::{Expectations, Registry};

use crate::encryption::{is_encrypted, Encryption};
use crate::tags::{tag_vecs, to_nostr_tags, ProofLocation, ZkRequest, ZkResult};
use crate::{connect, load_request};

/// What to ask for.
pub struct Request {
    /// The job (plan, data, requirements).
    pub job: ZkRequest,
    /// The job request kind.
    pub job_kind: u16,
    /// Address the request to this provider (hex or npub), and, with
    /// `encrypt`, encrypt its inputs to it.
    pub provider: Option<PublicKey>,
    /// Encrypt the inputs and requirements for `provider` with this scheme
    /// (NIP-90's `encrypted` tag); the output comes back encrypted too.
    pub encrypt: Option<Encryption>,
    /// How long to wait for a result.
    pub wait: Duration,
}

/// How a request ended.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `result`, `error` (the provider refused or failed) or `timeout`.
    pub status: String,
    /// The request's event ID.
    pub request_id: String,
    /// The result event (JSON), when one came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The provider's reason, for `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Feedback seen (`status: info`), in arrival order.
    pub feedback: Vec<String>,
    /// Time from publishing to the outcome (ms).
    pub elapsed_ms: u64,
}

/// Publishes `r` signed by `keys` on `relays` and waits for its result,
/// an `error` feedback, or the timeout.
///
/// # Errors
/// A message when the relays cannot be used or the request cannot be built.
pub async fn request(keys: &Keys, relays: &[String], r: Request) -> Result<Outcome, String> {
    let client = connect(keys, relays).await?;
    let mut tags = r.job.to_tags();
    let mut content = String::new();
    if let Some(scheme) = r.encrypt {
        let p = r.provider.ok_or("--encrypt needs --provider: inputs are encrypted to one provider's key")?;
        content = scheme.encrypt(keys.secret_key(), &p, &serde_json::to_string(&tags).map_err(|e| e.to_string())?)?;
        tags = vec![vec!["encrypted".into()]];
    }
    if let Some(p) = r.provider {
        tags.push(vec!["p".into(), p.to_hex()]);
    }
    let kind = Kind::from_u16(r.job_kind);
    if !kind.is_job_request() {
        return Err(format!("kind {} is not a NIP-90 job request kind (5000-5999)", r.job_kind));
    }
    let builder = EventBuilder::new(kind, content).tags(to_nostr_tags(tags).map_err(|e| e.to_string())?);
    let event = client.sign_event_builder(builder).await.map_err(|e| e.to_string())?;
    let result_kind = Kind::from_u16(r.job_kind + 1000);
    let filter = Filter::new().kinds([result_kind, Kind::JobFeedback]).event(event.id);
    let mut notifications = client.notifications();
    client.subscribe(filter, None).await.map_err(|e| format!("subscribing: {e}"))?;
    client.send_event(&event).await.map_err(|e| format!("publishing the request: {e}"))?;
    let started = Instant::now();
    let mut out = Outcome { status: "timeout".into(), request_id: event.id.to_hex(), result: None, reason: None, feedback: Vec::new(), elapsed_ms: 0 };
    let deadline = tokio::time::Instant::now() + r.wait;
    loop {
        let n = match tokio::time::timeout_at(deadline, notifications.recv()).await {
            Err(_) => break,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        let RelayPoolNotification::Event { event: e, .. } = n else { continue };
        if !e.tags.event_ids().any(|id| *id == event.id) || e.verify().is_err() {
            continue;
        }
        if r.provider.is_some_and(|p| p != e.pubkey) {
            continue;
        }
        if e.kind == result_kind {
            out.status = "result".into();
            out.result = serde_json::from_str(&e.as_json()).ok();
            break;
        }
        let t = tag_vecs(&e);
        let status = t.iter().find(|t| t.first().map(String::as_str) == Some("status"));
        let (s, info) = (status.and_then(|t| t.get(1)).cloned().unwrap_or_default(), status.and_then(|t| t.get(2)).cloned().unwrap_or_default());
        out.feedback.push(format!("{s}: {info}"));
        if s == "error" {
            out.status = "error".into();
            out.reason = Some(info);
            break;
        }
    }
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    client.shutdown().await;
    Ok(out)
}

/// The verdict on a result.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Whether every check passed.
    pub valid: bool,
    /// The first check that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The result event's ID.
    pub result_id: String,
    /// The request's event ID (from the result's `request` tag).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The provider's public key (hex).
    pub provider: String,
    /// The buyer's public key (hex): the request's author.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub buyer: String,
    /// The request's `bid` (msat), if it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bid_msat: Option<u64>,
    /// The result's `amount` (msat): what the provider asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_msat: Option<u64>,
    /// The request's `max-proving-time` (s).
    pub max_proving_time_s: u64,
    /// The receipt's image ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    /// The program's version in the registry.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub program_version: String,
    /// The plan hash the request's plan has.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plan_hash: String,
    /// The data root the request's data has.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub data_root: String,
    /// The journal's output hash.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output_hash: String,
    /// The journal's public output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_output: Option<serde_json::Value>,
    /// SHA-256 of the receipt file.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub receipt_sha256: String,
    /// Where the receipt came from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proof_ref: String,
    /// Time to fetch the receipt (ms).
    pub fetch_ms: u64,
    /// Time to verify the seal and journal (ms).
    pub verify_ms: u64,
    /// The receipt file, once fetched (also when it then failed to
    /// verify): what settlement checks again before it pays or slashes.
    #[serde(skip)]
    pub receipt: Option<Vec<u8>>,
}

/// An event named by its ID: 64 hex digits, `note1…`, or `nevent1…`
/// (NIP-19), with an optional `nostr:` prefix (NIP-21); an `nevent`'s
/// relay hints are returned beside the ID.
///
/// # Errors
/// A message naming the input when it is none of these.
pub fn parse_event_ref(s: &str) -> Result<(EventId, Vec<String>), String> {
    let s = s.trim();
    let bare = s.strip_prefix("nostr:").unwrap_or(s);
    if bare.starts_with("nevent1") {
        let n = Nip19Event::from_bech32(bare).map_err(|e| format!("`{s}` is not a valid nevent (NIP-19): {e}"))?;
        return Ok((n.event_id, n.relays.iter().map(ToString::to_string).collect()));
    }
    let id = EventId::parse(bare).map_err(|e| format!("`{s}` is not an event ID (64 hex digits, note1… or nevent1…): {e}"))?;
    Ok((id, Vec::new()))
}

/// Fetches event `id` from `relays` (plus `hints`, an `nevent`'s relays),
/// waiting at most `timeout`, and checks its ID and signature.
///
/// # Errors
/// A message when no relay can be used, none has the event within
/// `timeout`, or what came back is not validly signed.
pub async fn fetch_event(relays: &[String], id: EventId, hints: &[String], timeout: Duration) -> Result<Event, String> {
    let mut all = relays.to_vec();
    all.extend(hints.iter().filter(|h| !relays.contains(h)).cloned());
    // Reading needs no identity: a throwaway key signs nothing here.
    let client = connect(&Keys::generate(), &all).await?;
    let fetched = client.fetch_events(Filter::new().id(id), timeout).await.map_err(|e| format!("fetching event {}: {e}", id.to_hex()));
    client.shutdown().await;
    let event = fetched?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| format!("no relay ({}) returned event {} within {} s", all.join(", "), id.to_hex(), timeout.as_secs()))?;
    event.verify().map_err(|e| format!("event {} from the relays is not validly signed: {e}", id.to_hex()))?;
    Ok(event)
}

/// Checks `result` before anything is accepted, stopping at the first
/// failure: the event's signature; its ZK tags; the request it answers (its
/// `request` tag, signature checked) and that request's plan and data,
/// loaded here, so the plan hash and data root are the buyer's own; the
/// receipt fetched by `proof-ref` and checked against its SHA-256; the
/// program in `registry` (unknown or deprecated programs are rejected with
/// the reason); the seal; the journal's plan hash and data root against the
/// request's; and the tags' output hash and program ID against the journal.
/// An encrypted request (NIP-90's `encrypted` tag) is read with `buyer`,
/// the keys that signed it. `timeout` bounds fetching inputs given by URL.
pub fn verify(result: &Event, buyer: Option<&Keys>, store: &ProofStore, registry: &Registry, timeout: Duration) -> Verdict {
    let mut v = Verdict { result_id: result.id.to_hex(), provider: result.pubkey.to_hex(), ..Verdict::default() };
    if let Err(reason) = check(result, buyer, store, registry, timeout, &mut v) {
        v.reason = Some(reason);
        return v;
    }
    v.valid = true;
    v
}

/// The tags of `request`, the request `result` answers: its own, or, for
/// an encrypted one, those in its content, decrypted with `buyer` (who
/// signed it) and the provider's key (the result's author).
fn request_tags(request: &Event, result: &Event, buyer: Option<&Keys>) -> Result<Vec<Vec<String>>, String> {
    let own = tag_vecs(request);
    if !is_encrypted(&own) {
        return Ok(own);
    }
    let keys = buyer.ok_or("the request is encrypted: give --key, the buyer's key that signed it, to read it")?;
    if keys.public_key() != request.pubkey {
        return Err(format!("the request is encrypted and was signed by {}, not by the --key given", request.pubkey.to_hex()));
    }
    let (plain, _) = Encryption::decrypt(keys.secret_key(), &result.pubkey, &request.content).map_err(|e| format!("the encrypted request: {e}"))?;
    let mut tags: Vec<Vec<String>> = serde_json::from_str(&plain).map_err(|e| format!("the encrypted request: not a JSON array of tags: {e}"))?;
    tags.extend(own);
    Ok(tags)
}

fn check(result: &Event, buyer: Option<&Keys>, store: &ProofStore, registry: &Registry, timeout: Duration, v: &mut Verdict) -> Result<(), String> {
    result.verify().map_err(|e| format!("the result event's signature does not verify: {e}"))?;
    if !result.kind.is_job_result() {
        return Err(format!("kind {} is not a NIP-90 job result (6000-6999)", result.kind.as_u16()));
    }
    let tags = tag_vecs(result);
    let z = ZkResult::parse(&tags)?;
    let request_json =
        tags.iter().find(|t| t.first().map(String::as_str) == Some("request")).and_then(|t| t.get(1)).ok_or("the result has no `request` tag")?;
    let request = Event::from_json(request_json).map_err(|e| format!("the `request` tag is not an event: {e}"))?;
    request.verify().map_err(|e| format!("the embedded request's signature does not verify: {e}"))?;
    v.request_id = request.id.to_hex();
    v.buyer = request.pubkey.to_hex();
    v.amount_msat = z.amount_msat;
    if request.kind.as_u16() + 1000 != result.kind.as_u16() {
        return Err(format!("a kind {} result cannot answer a kind {} request", result.kind.as_u16(), request.kind.as_u16()));
    }
    let req = ZkRequest::parse(&request_tags(&request, result, buyer)?).map_err(|e| format!("the request: {e}"))?;
    v.bid_msat = req.bid_msat;
    v.max_proving_time_s = req.max_proving_time_s;
    let (loaded, _, _) = load_request(&req, timeout).map_err(|e| format!("the request's {e}"))?;
    v.plan_hash = hex(&loaded.file.hash);
    v.data_root = hex(&loaded.commitment.data_root);
    if z.plan_hash != v.plan_hash {
        return Err(format!("plan-hash {} is not the request's plan hash {}", z.plan_hash, v.plan_hash));
    }
    if z.data_root != v.data_root {
        return Err(format!("data-merkle-root {} is not the request's data root {}", z.data_root, v.data_root));
    }
    let fetch = Instant::now();
    let receipt = match &z.proof {
        ProofLocation::Ref { reference, sha256 } => {
            v.proof_ref = reference.clone();
            let blob = BlobRef::parse(reference, Some(sha256)).map_err(|e| format!("proof-ref: {e}"))?;
            store.get(&blob).map_err(|e| format!("fetching the receipt: {e}"))?
        }
        ProofLocation::Inline(b) => b.clone(),
    };
    v.fetch_ms = fetch.elapsed().as_millis() as u64;
    v.receipt_sha256 = zkaudit_store::sha256_hex(&receipt);
    v.receipt = Some(receipt.clone());
    let started = Instant::now();
    let expect = Expectations { plan_hash: Some(loaded.file.hash), data_root: Some(loaded.commitment.data_root), output: None };
    let verified = zkaudit_zkvm::verify(&receipt, registry, &expect).map_err(|e| format!("the receipt: {e}"))?;
    v.verify_ms = started.elapsed().as_millis() as u64;
    v.image_id = verified.program.image_id.clone();
    v.program_version = verified.program.version.clone();
    v.output_hash = hex(&verified.journal.output_hash);
    v.public_output = serde_json::from_slice(&verified.journal.output).ok();
    if z.output_hash != v.output_hash {
        return Err(format!("output-hash {} is not the journal's {}", z.output_hash, v.output_hash));
    }
    if z.program_id != v.image_id {
        return Err(format!("program-id {} is not the receipt's image ID {}", z.program_id, v.image_id));
    }
    Ok(())
}

/// Settles the job `v` judged on `market` (the market's accounts and
/// ledger): accepted at the result's `amount` from the request's author
/// to the result's author, with the request's plan hash and data root as
/// its terms, then delivered (`Market::settle_on_delivery`): paid with
/// the split on a valid receipt, refunded and the provider slashed on an
/// invalid one. Repeating it answers with the first settlement.
///
/// # Errors
/// A message when the result is not settled: it failed before its receipt
/// was fetched (nothing shows the provider signed a bad proof), asks no
/// amount or more than the request's bid, or the market refuses.
pub fn settle<L: zkaudit_settle::Ledger>(v: &Verdict, market: &zkaudit_app::settle::Market<'_, L>) -> Result<zkaudit_app::settle::SettlementRecord, String> {
    let receipt = v
        .receipt
        .as_deref()
        .ok_or_else(|| format!("not settled: the result failed before its receipt was fetched ({})", v.reason.as_deref().unwrap_or("no reason")))?;
    let price = v.amount_msat.filter(|a| *a > 0).ok_or("not settled: the result asks no amount (NIP-90 `amount` tag)")?;
    if let Some(bid) = v.bid_msat.filter(|b| price > *b) {
        return Err(format!("not settled: the result asks {price} msat, over the request's bid of {bid}"));
    }
    let hash = |h: &str, what: &str| zkaudit_plan::value::parse_hex32(h).ok_or_else(|| format!("not settled: the request's {what} is unknown"));
    let terms = zkaudit_app::settle::Terms { plan_hash: hash(&v.plan_hash, "plan hash")?, data_root: hash(&v.data_root, "data root")?, spec: None };
    let job = zkaudit_settle::settlement::Job {
        id: v.request_id.clone(),
        buyer: v.buyer.clone(),
        prover: v.provider.clone(),
        price: u128::from(price),
        deadline_s: u32::try_from(v.max_proving_time_s).map_err(|_| format!("not settled: a max-proving-time of {} s is too long", v.max_proving_time_s))?,
    };
    market.settle_on_delivery(&job, &terms, receipt).map_err(|e| e.to_string())
}
