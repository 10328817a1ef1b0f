//! The receipt cache: a job proved once is not proved again.
//!
//! A receipt is determined, up to the prover's randomness, by the guest
//! (its image ID), the plan (its hash), the records (the data root), the
//! receipt kind and the segment size. A directory of receipts keyed by
//! those lets a prover answer a job it has already proved at once, which
//! matters because proving takes minutes and execution well under a second.
//!
//! Nothing is trusted from the cache: an entry is used only after its
//! receipt passes the checks of any receipt file ([`crate::verify()`])
//! against the embedded registry, that is this build's image ID, and its
//! journal names the job's plan hash and data root. An entry that fails is
//! removed and the job proved again.
//!
//! Layout, one pair per job under the directory (written to a temporary
//! name, then renamed, so a reader never sees half an entry):
//! * `<key>.receipt`: the receipt (bincode, as receipt files are),
//! * `<key>.json`: what proving it cost ([`EntryMeta`]),
//!
//! where `<key>` is the SHA-256 (hex) of
//! `zkaudit-receipt-cache/1 ‖ image ID ‖ plan hash ‖ data root ‖ kind ‖ po2`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zkaudit_merkle::Hash;
use zkaudit_plan::value::hex;

use crate::guest::GUEST_IMAGE_ID;
use crate::prove::{Execution, Job, Proof, ProveOptions};
use crate::registry::Registry;
use crate::verify::{encode_receipt, verify_decoded, Expectations, VerifyError, COMPOSITE, SUCCINCT};

/// The environment variable naming the receipt cache directory, read by
/// `zkaudit prove` (as `--receipt-cache`) and by proof workers' job
/// processes.
pub const RECEIPT_CACHE_ENV: &str = "ZKAUDIT_RECEIPT_CACHE";

/// A directory of receipts already proved (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptCache {
    dir: PathBuf,
}

/// What a cached receipt is for: the job's plan hash and data root, the
/// receipt kind and the segment size (the image ID is this build's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryFor {
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: Hash,
    /// RFC 9162 tree head over the records.
    pub data_root: Hash,
    /// A succinct receipt rather than a composite one.
    pub succinct: bool,
    /// Segment size as a power of two (cycles); `None` for the size chosen per
    /// job.
    pub segment_po2: Option<u32>,
}

impl EntryFor {
    /// The entry for `job` proved with `opts`.
    pub fn new(job: &Job, opts: &ProveOptions) -> EntryFor {
        EntryFor { plan_hash: job.plan_hash, data_root: job.data_root, succinct: opts.succinct, segment_po2: opts.segment_po2 }
    }

    /// The entry's key (64 hex digits; see the module docs).
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"zkaudit-receipt-cache/1");
        h.update(GUEST_IMAGE_ID.as_bytes());
        h.update(self.plan_hash);
        h.update(self.data_root);
        h.update([u8::from(self.succinct), self.segment_po2.map_or(0, |p| p.min(255) as u8)]);
        hex(&h.finalize())
    }
}

/// What proving a cached receipt cost, kept beside it (`<key>.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryMeta {
    /// The guest's image ID (hex).
    pub image_id: String,
    /// The plan hash (hex).
    pub plan_hash: String,
    /// The data root (hex).
    pub data_root: String,
    /// The execution's user cycles.
    pub user_cycles: u64,
    /// Its paging cycles.
    pub paging_cycles: u64,
    /// Its reserved cycles.
    pub reserved_cycles: u64,
    /// Its total cycles.
    pub total_cycles: u64,
    /// Its segments.
    pub segments: usize,
    /// Wall time of the proof, execution excluded (ms).
    pub prove_millis: u64,
    /// Peak resident memory of the process that proved it (bytes).
    pub peak_rss_bytes: Option<u64>,
}

/// What the receipt cache did for one proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache was given.
    Off,
    /// The receipt came from the cache: proved earlier for the same guest,
    /// plan, data, kind and segment size, verified again now.
    Hit,
    /// Proved now and kept in the cache.
    Stored,
    /// Proved now, because the cached entry was refused (the reason); the
    /// new receipt replaced it.
    Replaced(String),
    /// Proved now; the cache could not be written (the reason). The proof
    /// itself is unaffected.
    Failed(String),
}

impl CacheUse {
    /// What a user should be told: `Some` for [`CacheUse::Replaced`] and
    /// [`CacheUse::Failed`].
    pub fn warning(&self) -> Option<String> {
        match self {
            CacheUse::Replaced(r) => Some(format!("receipt cache: the cached receipt was refused and replaced: {r}")),
            CacheUse::Failed(r) => Some(format!("receipt cache: the new receipt could not be kept: {r}")),
            CacheUse::Off | CacheUse::Hit | CacheUse::Stored => None,
        }
    }
}

impl ReceiptCache {
    /// A cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> ReceiptCache {
        ReceiptCache { dir: dir.into() }
    }

    /// The cache named by [`RECEIPT_CACHE_ENV`], if set and not empty.
    pub fn from_env() -> Option<ReceiptCache> {
        std::env::var_os(RECEIPT_CACHE_ENV).filter(|v| !v.is_empty()).map(ReceiptCache::new)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{key}.receipt")), self.dir.join(format!("{key}.json")))
    }

    /// The cached proof of `job`, if there is one and it checks out.
    ///
    /// `Ok(None)`: no entry. `Err(reason)`: an entry that does not decode,
    /// does not verify against this guest, or is for another plan or data
    /// root; it has been removed.
    pub fn lookup(&self, entry: &EntryFor) -> Result<Option<Proof>, String> {
        let key = entry.key();
        let (receipt_path, meta_path) = self.paths(&key);
        let (bytes, meta) = match (std::fs::read(&receipt_path), std::fs::read(&meta_path)) {
            (Ok(b), Ok(m)) => (b, m),
            _ => return Ok(None),
        };
        match check(&bytes, &meta, entry) {
            Ok(proof) => Ok(Some(proof)),
            Err(reason) => {
                let _ = std::fs::remove_file(&receipt_path);
                let _ = std::fs::remove_file(&meta_path);
                Err(format!("{}: {reason}", receipt_path.display()))
            }
        }
    }

    /// Keeps `proof` as `entry`.
    ///
    /// # Errors
    /// The I/O or encoding error, naming the path.
    pub fn store(&self, entry: &EntryFor, proof: &Proof) -> Result<(), String> {
        let key = entry.key();
        let (receipt_path, meta_path) = self.paths(&key);
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let e = &proof.execution;
        let meta = EntryMeta {
            image_id: GUEST_IMAGE_ID.to_owned(),
            plan_hash: hex(&entry.plan_hash),
            data_root: hex(&entry.data_root),
            user_cycles: e.user_cycles,
            paging_cycles: e.paging_cycles,
            reserved_cycles: e.reserved_cycles,
            total_cycles: e.total_cycles,
            segments: e.segments,
            prove_millis: u64::try_from(proof.prove_time.as_millis()).unwrap_or(u64::MAX),
            peak_rss_bytes: proof.peak_rss_bytes,
        };
        let receipt = encode_receipt(&proof.receipt).map_err(|e| format!("encoding the receipt: {e}"))?;
        let meta = serde_json::to_vec_pretty(&meta).map_err(|e| format!("encoding the entry: {e}"))?;
        // The receipt first: an entry counts only once its `.json` exists.
        write_atomic(&receipt_path, &receipt)?;
        write_atomic(&meta_path, &meta)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

/// Decodes and checks one entry's files against `entry`: the receipt
/// verifies like any receipt file ([`crate::verify::verify_decoded`])
/// against the embedded registry, which lists only this build's guest.
fn check(bytes: &[u8], meta: &[u8], entry: &EntryFor) -> Result<Proof, String> {
    let meta: EntryMeta = serde_json::from_slice(meta).map_err(|e| format!("the entry's metadata: {e}"))?;
    let expect = Expectations { plan_hash: Some(entry.plan_hash), data_root: Some(entry.data_root), output: None };
    let (receipt, v) = verify_decoded(bytes, &Registry::embedded(), &expect).map_err(|e| match e {
        VerifyError::PlanHash { .. } | VerifyError::DataRoot { .. } => format!("a receipt for another plan or data root: {e}"),
        e => e.to_string(),
    })?;
    if v.kind != if entry.succinct { SUCCINCT } else { COMPOSITE } {
        return Err(format!("a {} receipt, not the kind asked for", v.kind));
    }
    Ok(Proof {
        receipt,
        execution: Execution {
            journal: v.journal,
            user_cycles: meta.user_cycles,
            paging_cycles: meta.paging_cycles,
            reserved_cycles: meta.reserved_cycles,
            total_cycles: meta.total_cycles,
            segments: meta.segments,
        },
        prove_time: Duration::from_millis(meta.prove_millis),
        peak_rss_bytes: meta.peak_rss_bytes,
        cache: CacheUse::Hit,
    })
}
