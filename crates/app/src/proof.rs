//! Prove → verify → record: the one path by which a proof reaches the
//! ledger, whether `zkaudit prove --ledger` made it or a proof server's
//! worker did, and the auditor's check of a recorded proof.

use std::collections::HashMap;

use zkaudit_audit::ReceiptCheck;
use zkaudit_event::{Digest, Event, ProofRef, Timestamp};
use zkaudit_index::{Query, Selector};
use zkaudit_jobs::protocol::{Cycles, ProveReport, RunReport};
use zkaudit_jobs::{Job, Store};
use zkaudit_plan::loaded::Loaded;
use zkaudit_plan::value::{hex, parse_hex32};
use zkaudit_store::ProofStore;
use zkaudit_zkvm::{Execution, Expectations, Progress, Proof, ProveOptions, Registry, Verified};

use crate::claim::{ProofClaim, ProofMetadata};
use crate::ledger::Ledger;
use crate::Error;

/// A proof made and verified here.
pub struct Proven {
    /// The proof, with its execution's cycles and journal.
    pub proof: Proof,
    /// The receipt's bytes (bincode `risc0_zkvm::Receipt`).
    pub receipt: Vec<u8>,
    /// What verifying the fresh receipt against the embedded registry found.
    pub verified: Verified,
}

/// Cycle figures of an execution, per record of `records`.
pub fn cycles(e: &Execution, records: usize) -> Cycles {
    Cycles {
        user_cycles: e.user_cycles,
        paging_cycles: e.paging_cycles,
        reserved_cycles: e.reserved_cycles,
        total_cycles: e.total_cycles,
        segments: e.segments as u64,
        user_cycles_per_record: e.user_cycles as f64 / records.max(1) as f64,
    }
}

/// Runs `l` natively and, with `zkvm`, in the zkVM executor too (no proof),
/// requiring identical journals.
///
/// # Errors
/// [`Error::Run`], [`Error::Prove`], or [`Error::JournalMismatch`].
pub fn run(l: &Loaded, zkvm: bool) -> Result<RunReport, Error> {
    let (journal, outcome) = l.run_native()?;
    let guest = if zkvm {
        let e = zkaudit_zkvm::execute(&zkaudit_zkvm::Job::for_plan(l), None)?;
        if e.journal != journal {
            return Err(Error::JournalMismatch {
                guest: String::from_utf8_lossy(&e.journal.output).into_owned(),
                native: String::from_utf8_lossy(&journal.output).into_owned(),
            });
        }
        Some(cycles(&e, l.records()))
    } else {
        None
    };
    let json = |b: &[u8]| serde_json::from_slice(b).map_err(|e| Error::Job { job: l.file.plan.id.clone(), reason: format!("output is not JSON: {e}") });
    Ok(RunReport {
        plan_hash: hex(&l.file.hash),
        data_root: hex(&l.commitment.data_root),
        records: l.records() as u64,
        output_hash: hex(&outcome.output_hash),
        output: Some(json(&outcome.output)?),
        public_output: json(&outcome.public)?,
        zkvm: guest,
    })
}

/// Proves `l` in the zkVM: a native run first (run-time errors surface
/// before the slow part), then the proof, whose journal must equal the
/// native one, then a verification of the fresh receipt against the
/// embedded registry. `progress` hears the prover's steps.
///
/// # Errors
/// [`Error::Run`], [`Error::Prove`], [`Error::JournalMismatch`] or [`Error::Verify`].
pub fn prove(l: &Loaded, opts: ProveOptions, progress: impl FnMut(Progress)) -> Result<Proven, Error> {
    let (native, _) = l.run_native()?;
    let proof = zkaudit_zkvm::prove(zkaudit_zkvm::Job::for_plan(l), opts, progress)?;
    if proof.execution.journal != native {
        return Err(Error::JournalMismatch {
            guest: String::from_utf8_lossy(&proof.execution.journal.output).into_owned(),
            native: String::from_utf8_lossy(&native.output).into_owned(),
        });
    }
    let receipt = zkaudit_zkvm::verify::encode_receipt(&proof.receipt)?;
    let verified = zkaudit_zkvm::verify(&receipt, &Registry::embedded(), &Expectations::default())?;
    Ok(Proven { proof, receipt, verified })
}

impl Proven {
    /// The report `zkaudit prove --json` prints and a job keeps.
    ///
    /// # Errors
    /// [`Error::Job`] if the public output is not JSON (the guest writes JSON).
    pub fn report(&self, l: &Loaded, receipt_path: Option<String>, ledger_index: Option<u64>) -> Result<ProveReport, Error> {
        let e = &self.proof.execution;
        Ok(ProveReport {
            receipt: receipt_path,
            receipt_bytes: self.receipt.len() as u64,
            receipt_digest: hex(&self.verified.receipt_digest),
            kind: self.verified.kind.to_owned(),
            image_id: self.verified.program.image_id.clone(),
            plan_hash: hex(&l.file.hash),
            data_root: hex(&l.commitment.data_root),
            output_hash: hex(&e.journal.output_hash),
            public_output: serde_json::from_slice(&e.journal.output)
                .map_err(|err| Error::Job { job: l.file.plan.id.clone(), reason: format!("public output is not JSON: {err}") })?,
            records: l.records() as u64,
            cycles: cycles(e, l.records()),
            prove_seconds: self.proof.prove_time.as_secs_f64(),
            cached: self.proof.cache == zkaudit_zkvm::CacheUse::Hit,
            peak_rss_bytes: self.proof.peak_rss_bytes,
            ledger_index,
            proof_ref: None,
        })
    }

    /// The claim to record for this proof of `l`, made now.
    pub fn claim(&self, l: &Loaded) -> ProofClaim {
        let e = &self.proof.execution;
        let metadata = ProofMetadata {
            plan_id: l.file.plan.id.clone(),
            job_request_hash: l.file.plan.job_request_hash.clone(),
            data_root: hex(&l.commitment.data_root),
            records: l.records() as u64,
            total_cycles: e.total_cycles,
            user_cycles: e.user_cycles,
            segments: e.segments as u64,
            prove_millis: u64::try_from(self.proof.prove_time.as_millis()).unwrap_or(u64::MAX),
            program_version: self.verified.program.version.clone(),
            job_id: None,
        };
        claim(Timestamp::now(), l.file.hash, &self.verified, metadata)
    }
}

fn claim(timestamp: Timestamp, plan_hash: [u8; 32], v: &Verified, metadata: ProofMetadata) -> ProofClaim {
    ProofClaim {
        timestamp,
        plan_hash,
        output_hash: v.journal.output_hash,
        metadata,
        proof: ProofRef {
            kind: v.kind.to_owned(),
            receipt_digest: Digest(v.receipt_digest),
            image_id: v.program.image_id.clone(),
            journal_digest: Digest(v.journal_digest),
        },
    }
}

/// Records `claim` in `ledger`: keeps the receipt as
/// `receipts/<digest>.bin`, durably (so the auditor can check it again
/// later), then
/// appends the proof event and updates the index. Returns its leaf index.
///
/// # Errors
/// [`Error::Ledger`] writing the receipt; as [`Ledger::append`].
pub fn record(ledger: &Ledger, claim: &ProofClaim, receipt: &[u8]) -> Result<u64, Error> {
    ledger.dir().store_receipt(&claim.proof.receipt_digest.to_string(), receipt).map_err(Error::ledger(ledger.dir().root()))?;
    Ok(ledger.append(vec![claim.entry()?])?.first_index)
}

/// What [`record_jobs`] did.
#[derive(Debug, Default)]
pub struct RecordedJobs {
    /// Proof events appended now.
    pub recorded: usize,
    /// Jobs whose event was found already in the ledger (a process stopped
    /// between appending it and marking the job) and are now marked.
    pub found: usize,
    /// Jobs that could not be recorded, by job ID; they stay unrecorded
    /// and are tried again on the next call.
    pub failed: Vec<(String, Error)>,
}

/// Records the proof event of every succeeded proof job not yet recorded
/// (at most 100 a call, oldest first), exactly once each: the receipt is
/// verified again against `registry`, the plan's hash and the job's data
/// root before anything is written, and the job's `ledger_index` is set
/// after the append. A job whose event is already in the ledger (the
/// process stopped between the two) is found by its `jobId` and not
/// appended again. A job that cannot be recorded (its receipt fails
/// verification or is gone) does not hold up the others: it is reported
/// in [`RecordedJobs::failed`] and keeps no `ledger_index`.
///
/// # Errors
/// [`Error::Store`] if the unrecorded jobs cannot be listed.
pub fn record_jobs(store: &Store, ledger: &Ledger, registry: &Registry) -> Result<RecordedJobs, Error> {
    let mut done = RecordedJobs::default();
    let jobs = store.unrecorded_proofs(100)?;
    if jobs.is_empty() {
        return Ok(done);
    }
    let in_ledger = recorded_jobs(ledger)?;
    for job in jobs {
        match record_job(store, ledger, registry, &job, in_ledger.get(&job.id).copied()) {
            Ok(true) => done.found += 1,
            Ok(false) => done.recorded += 1,
            Err(e) => done.failed.push((job.id.clone(), e)),
        }
    }
    Ok(done)
}

/// Records one succeeded job (see [`record_jobs`]) unless its event is
/// already in the ledger at `in_ledger`; `true` when it was, and only the
/// job was marked.
fn record_job(store: &Store, ledger: &Ledger, registry: &Registry, job: &Job, in_ledger: Option<u64>) -> Result<bool, Error> {
    let (index, found) = match in_ledger {
        Some(i) => (i, true),
        None => {
            let (claim, receipt) = job_claim(store, job, registry)?;
            (record(ledger, &claim, &receipt)?, false)
        }
    };
    store.set_recorded(&job.id, index)?;
    Ok(found)
}

/// The leaf index of every proof event in the ledger that names a job
/// (`jobId`), by job ID; the first event of a job if it has several.
fn recorded_jobs(ledger: &Ledger) -> Result<HashMap<String, u64>, Error> {
    let mut by_job = HashMap::new();
    for e in ledger.select(&Query::new(Selector::MetaKey("jobId".into())))? {
        if e.kind != crate::claim::PROOF_EVENT_TYPE {
            continue;
        }
        // Metadata values are JSON: the job ID is a JSON string.
        if let Some(Ok(id)) = e.meta("jobId").map(serde_json::from_str::<String>) {
            by_job.entry(id).or_insert(e.leaf_index);
        }
    }
    Ok(by_job)
}

/// The claim for a succeeded job, from its receipt verified again here.
fn job_claim(store: &Store, job: &Job, registry: &Registry) -> Result<(ProofClaim, Vec<u8>), Error> {
    let bad = |reason: String| Error::Job { job: job.id.clone(), reason };
    let report: ProveReport = serde_json::from_value(job.result.clone().ok_or_else(|| bad("no result".into()))?).map_err(|e| bad(format!("result: {e}")))?;
    let receipt_id = job.receipt_id.as_deref().ok_or_else(|| bad("no receipt".into()))?;
    let receipt = store.receipt(Some(&job.tenant), receipt_id)?.ok_or_else(|| bad(format!("receipt {receipt_id} is gone")))?;
    let file = zkaudit_plan::source::PlanFile::parse("the job's plan", &job.spec.plan, true)
        .map_err(|errs| bad(format!("plan: {}", errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))))?;
    let (plan, plan_hash) = (file.plan, file.hash);
    let data_root = parse_hex32(&report.data_root).ok_or_else(|| bad(format!("dataRoot {} is not 64 hex digits", report.data_root)))?;
    let v = zkaudit_zkvm::verify(&receipt, registry, &Expectations { plan_hash: Some(plan_hash), data_root: Some(data_root), output: None })?;
    let metadata = ProofMetadata {
        plan_id: plan.id,
        job_request_hash: plan.job_request_hash,
        data_root: report.data_root.clone(),
        records: report.records,
        total_cycles: report.cycles.total_cycles,
        user_cycles: report.cycles.user_cycles,
        segments: report.cycles.segments,
        prove_millis: (report.prove_seconds * 1e3).round() as u64,
        program_version: v.program.version.clone(),
        job_id: Some(job.id.clone()),
    };
    let at =
        job.finished_ns.and_then(|ns| Timestamp::from_unix_nanos(i128::from(ns))).ok_or_else(|| bad("a succeeded job without a valid finish time".into()))?;
    Ok((claim(at, plan_hash, &v, metadata), receipt))
}

/// What [`store_jobs`] did.
#[derive(Debug, Default)]
pub struct StoredJobs {
    /// Receipts put in storage now: (job ID, reference).
    pub stored: Vec<(String, String)>,
    /// Jobs whose receipt no store took, with why; they keep no
    /// `proof_ref` and are tried again on the next call.
    pub failed: Vec<(String, Error)>,
}

/// Puts the receipt of every recorded proof job not yet stored (at most
/// `limit` a call, oldest first) in content-addressed storage, and sets
/// the job's `proof_ref` to the reference it got (a Blossom URL ending in
/// the receipt's SHA-256, or `ipfs://<CID>`). The bytes are the ledger's
/// copy (`receipts/<sha256>.bin`, kept by [`record`]), so only receipts
/// [`record_jobs`] verified and recorded are published, and a receipt TTL
/// in the job store cannot lose one that is waiting for a store. A put is
/// idempotent (the blob is named by its SHA-256), so a job retried after a
/// crash between the put and the mark is stored once. A failure does not
/// hold up the other jobs.
///
/// # Errors
/// [`Error::Store`] if the unstored jobs cannot be listed.
pub fn store_jobs(store: &Store, ledger: &Ledger, proofs: &ProofStore, limit: u32) -> Result<StoredJobs, Error> {
    let mut done = StoredJobs::default();
    for job in store.unstored_proofs(limit)? {
        match store_job(store, ledger, proofs, &job) {
            Ok(reference) => done.stored.push((job.id, reference)),
            Err(e) => done.failed.push((job.id, e)),
        }
    }
    Ok(done)
}

/// Stores one job's receipt (see [`store_jobs`]); its reference.
fn store_job(store: &Store, ledger: &Ledger, proofs: &ProofStore, job: &Job) -> Result<String, Error> {
    let bad = |reason: String| Error::Job { job: job.id.clone(), reason };
    let receipt_id = job.receipt_id.as_deref().ok_or_else(|| bad("no receipt".into()))?;
    let path = ledger.dir().receipt(receipt_id);
    let receipt = std::fs::read(&path).map_err(|e| bad(format!("reading the ledger's copy of its receipt, {}: {e}", path.display())))?;
    let put = proofs.put(&receipt, RECEIPT_CONTENT_TYPE, false).map_err(|e| bad(format!("storing receipt {receipt_id}: {e}")))?;
    if put.blob.sha256 != receipt_id {
        return Err(bad(format!("the store named receipt {receipt_id} {}", put.blob.sha256)));
    }
    let reference = put.blob.reference();
    store.set_stored(&job.id, &reference)?;
    Ok(reference)
}

/// The MIME type receipts are stored under (bincode bytes, no registered type).
pub const RECEIPT_CONTENT_TYPE: &str = "application/octet-stream";

/// The auditor's check of a recorded proof (`zkaudit/2`): the receipt must
/// verify against the registry, for the event's plan hash and data root,
/// and prove the event's output hash, image ID and journal digest.
pub struct ZkvmCheck {
    /// Programs receipts are verified against.
    pub registry: Registry,
}

impl ReceiptCheck for ZkvmCheck {
    fn check(&self, e: &Event, receipt: &[u8]) -> Result<(), String> {
        let claim = ProofClaim::try_from(e).map_err(|err| err.to_string())?;
        let expect = Expectations { plan_hash: Some(claim.plan_hash), data_root: Some(claim.data_root().map_err(|err| err.to_string())?), output: None };
        let v = zkaudit_zkvm::verify(receipt, &self.registry, &expect).map_err(|err| err.to_string())?;
        if v.journal.output_hash != claim.output_hash {
            return Err("the journal's output hash differs from the event's output".into());
        }
        if v.program.image_id != claim.proof.image_id {
            return Err(format!("the receipt is from image ID {}, the event names {}", v.program.image_id, claim.proof.image_id));
        }
        if Digest(v.journal_digest) != claim.proof.journal_digest {
            return Err("the receipt's journal digest differs from the event's".into());
        }
        Ok(())
    }
}
