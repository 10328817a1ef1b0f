//! The proof market's job flow over Nostr: NIP-90 data vending machine
//! jobs with ZK tags.
//!
//! It owns:
//!
//! * the ZK tags of requests and results ([`tags`]);
//! * the provider ([`provider`]): it listens for job requests, refuses what
//!   it cannot meet with a NIP-90 `error` feedback naming the reason,
//!   proves the rest through a proof server's job store, puts the receipt
//!   in content-addressed storage, publishes the result, and records every
//!   request, refusal and result in the ledger; it announces itself with a
//!   NIP-89 handler event (kind 31990);
//! * the buyer ([`buyer`]): publish a request and wait for its result, and
//!   verify a result before accepting anything;
//! * NIP-90's encrypted parameters and output, by NIP-04 or NIP-44
//!   ([`encryption`]).
//!
//! It must not prove or verify by itself: proving is the proof server's
//! (`zkaudit-server`, through its HTTP job API), receipts are checked by
//! `zkaudit-zkvm`'s verifier, plans are loaded by `zkaudit-app`, blobs
//! are stored by `zkaudit-store`, and ledger events go through
//! `zkaudit-collect`'s sink.
//!
//! The job kind is configurable. The default, [`DEFAULT_JOB_KIND`] (5750,
//! results 6750), is in the 57xx block, where the DVM kinds registry
//! (data-vending-machines.org) lists no kind and no range; the seed's 5900
//! is registered there for event timestamping.

#![forbid(unsafe_code)]

pub mod buyer;
pub mod encryption;
pub mod provider;
pub mod tags;

/// The Nostr library, for front ends that parse keys and events.
pub use nostr_sdk;

use std::time::Duration;

use nostr_sdk::prelude::*;
use zkaudit_app::plans::{load_bytes, DataBytes, LoadError};
use zkaudit_plan::data::Format;
use zkaudit_plan::loaded::Loaded;
use zkaudit_plan::source::PlanFile;

use crate::tags::{Source, ZkRequest};

/// The default job request kind (results are kind + 1000).
pub const DEFAULT_JOB_KIND: u16 = 5750;

/// The NIP-89 handler information kind.
pub const HANDLER_KIND: u16 = 31990;

/// Largest input fetched by URL (bytes).
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Why a provider refuses or abandons a job: the text of its NIP-90
/// `error` feedback and of its `dvm_refusal` ledger event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request's tags are missing, malformed or contradictory.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A requirement this provider does not serve (level, zkVM).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The provider's program is older than `min-program-version`.
    #[error("program version {have} is older than the requested min-program-version {want}")]
    ProgramTooOld {
        /// Requested.
        want: String,
        /// This provider's.
        have: String,
    },
    /// Proving would take longer than `max-proving-time`.
    #[error("proving would take about {estimate_s} s ({cycles} cycles at {rate} cycles/s), over the max-proving-time of {max_s} s")]
    TooSlow {
        /// The estimate (s).
        estimate_s: u64,
        /// The request's limit (s).
        max_s: u64,
        /// Total cycles of the execution.
        cycles: u64,
        /// Assumed proving rate (cycles/s).
        rate: u64,
    },
    /// The plan or its data does not load.
    #[error("plan or data: {0}")]
    Plan(String),
    /// An input could not be fetched.
    #[error("input: {0}")]
    Input(String),
    /// Proving, verifying or storing failed.
    #[error("failed: {0}")]
    Failed(String),
}

fn load_error(e: &LoadError) -> Refusal {
    match e {
        LoadError::Plan { file, errors } => Refusal::Plan(format!("{file}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))),
        e => Refusal::Plan(e.to_string()),
    }
}

/// The bytes of an input: inline text, or fetched (with `timeout`, at most
/// [`MAX_INPUT_BYTES`]); a URL whose last segment is a SHA-256 (a Blossom
/// URL) must deliver bytes with that digest.
///
/// # Errors
/// [`Refusal::Input`] naming the URL and what went wrong.
pub fn resolve(source: &Source, timeout: Duration) -> Result<Vec<u8>, Refusal> {
    match source {
        Source::Text(t) => Ok(t.as_bytes().to_vec()),
        Source::Url(u) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(Refusal::Input(format!("{u}: only http(s) URLs are fetched")));
            }
            let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
            let mut r = agent.get(u).call().map_err(|e| Refusal::Input(format!("{u}: {e}")))?;
            let bytes = r.body_mut().with_config().limit(MAX_INPUT_BYTES).read_to_vec().map_err(|e| Refusal::Input(format!("{u}: {e}")))?;
            if let Ok(blob) = zkaudit_store::BlobRef::parse(u, None) {
                zkaudit_store::check_digest(&bytes, &blob.sha256, u).map_err(|e| Refusal::Input(e.to_string()))?;
            }
            Ok(bytes)
        }
    }
}

/// A request's plan and data, loaded and committed to: what the provider
/// proves and what the buyer expects the journal to name.
///
/// # Errors
/// [`Refusal::Input`] for an input that cannot be fetched, [`Refusal::Plan`]
/// for a plan or data that does not load (each error located).
pub fn load_request(req: &ZkRequest, timeout: Duration) -> Result<(Loaded, String, Vec<DataBytes>), Refusal> {
    let plan = String::from_utf8(resolve(&req.plan, timeout)?).map_err(|_| Refusal::Plan("the plan is not UTF-8 text".into()))?;
    let json = plan.trim_start().starts_with('{');
    let file = PlanFile::parse("request plan", &plan, json).map_err(|errors| load_error(&LoadError::Plan { file: "request plan".into(), errors }))?;
    let mut data = Vec::with_capacity(req.data.len());
    for d in &req.data {
        let format = if d.format == "jsonl" { Format::JsonLines } else { Format::Csv };
        data.push(DataBytes { name: d.name.clone(), bytes: resolve(&d.source, timeout)?, format });
    }
    let (loaded, data) = load_bytes(file, data).map_err(|e| load_error(&e))?;
    Ok((loaded, plan, data))
}

/// Compares dotted versions numerically (`0.10.0` > `0.9.1`); a part that
/// is not a number compares as text.
pub fn version_at_least(have: &str, want: &str) -> bool {
    let parts = |v: &str| v.trim_start_matches('v').split(['.', '-', '+']).map(str::to_owned).collect::<Vec<_>>();
    let (h, w) = (parts(have), parts(want));
    for i in 0..h.len().max(w.len()) {
        let (a, b) = (h.get(i).map_or("0", String::as_str), w.get(i).map_or("0", String::as_str));
        let ord = match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord == std::cmp::Ordering::Greater;
        }
    }
    true
}

/// Connects a client with `keys` to `relays`.
///
/// # Errors
/// A message naming a relay URL that is not a relay URL.
pub async fn connect(keys: &Keys, relays: &[String]) -> Result<Client, String> {
    if relays.is_empty() {
        return Err("no relay: give --relay ws://…".into());
    }
    let client = Client::builder().signer(keys.clone()).build();
    for r in relays {
        client.add_relay(r.as_str()).await.map_err(|e| format!("relay {r}: {e}"))?;
    }
    client.connect().await;
    client.wait_for_connection(Duration::from_secs(5)).await;
    Ok(client)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_numerically() {
        assert!(super::version_at_least("0.10.0", "0.9.1"));
        assert!(super::version_at_least("1.0.0", "1.0"));
        assert!(!super::version_at_least("0.1.0", "1.0.0"));
        assert!(super::version_at_least("v2.0.0", "2.0.0"));
    }
}
