//! Execute-only runs and proofs of the guest.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use risc0_zkvm::{get_prover_server, ExecutorEnv, ExecutorImpl, NullSegmentRef, ProverOpts, Receipt, Segment, Session, SessionEvents, VerifierContext};
use zkaudit_merkle::Hash;
use zkaudit_plan::journal::{guest_input, Journal};

use crate::cache::{CacheUse, EntryFor, ReceiptCache};
use crate::guest::GUEST_PROGRAM;

/// One plan execution to run in the guest.
#[derive(Clone, Debug)]
pub struct Job {
    /// The plan's canonical JSON (RFC 8785).
    pub plan_jcs: Vec<u8>,
    /// SHA-256 of `plan_jcs`.
    pub plan_hash: Hash,
    /// RFC 9162 tree head over all records.
    pub data_root: Hash,
    /// Per data input, in plan order: `(record count, record words)`.
    pub inputs: Vec<(usize, Vec<u32>)>,
    /// The plan's `limits.maxCycles`: the session limit (cycles).
    pub max_cycles: u64,
}

impl Job {
    /// The guest job for a loaded plan: its canonical JSON, hash, data root,
    /// records and cycle limit.
    pub fn for_plan(l: &zkaudit_plan::loaded::Loaded) -> Job {
        Job {
            plan_jcs: l.file.jcs.clone(),
            plan_hash: l.file.hash,
            data_root: l.commitment.data_root,
            inputs: l.inputs.clone(),
            max_cycles: l.program.limits.max_cycles,
        }
    }
}

/// Proving options.
#[derive(Clone, Debug, Default)]
pub struct ProveOptions {
    /// Segment size as a power of two (cycles); `None` chooses it for the
    /// job ([`best_segment_po2`]).
    pub segment_po2: Option<u32>,
    /// Give up after this long (the prover thread is abandoned).
    pub timeout: Option<Duration>,
    /// Compress the composite receipt to a succinct one (needs the
    /// recursion artifacts; see [`crate::succinct_available`]).
    pub succinct: bool,
    /// Answer from, and keep the new receipt in, this receipt cache.
    pub cache: Option<ReceiptCache>,
}

/// Cycle counts and the journal of one guest run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    /// The decoded journal.
    pub journal: Journal,
    /// Cycles spent by the guest's own instructions.
    pub user_cycles: u64,
    /// Cycles spent paging memory in and out.
    pub paging_cycles: u64,
    /// Cycles of proof-system overhead and padding to powers of two.
    pub reserved_cycles: u64,
    /// All cycles a prover pays for.
    pub total_cycles: u64,
    /// Number of segments.
    pub segments: usize,
}

/// Progress reported while proving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The guest is being executed to record its trace.
    Executing,
    /// Execution done; proving starts.
    Executed {
        /// Total cycles.
        total_cycles: u64,
        /// Segments to prove.
        segments: usize,
    },
    /// A segment was proven.
    Segment {
        /// Segments proven so far.
        done: usize,
        /// Segments in all.
        of: usize,
    },
    /// Compressing to a succinct receipt.
    Compressing,
}

/// A proof and what it cost.
#[derive(Debug)]
pub struct Proof {
    /// The receipt.
    pub receipt: Receipt,
    /// Cycles, segments and journal.
    pub execution: Execution,
    /// Wall time of proving, execution excluded.
    pub prove_time: Duration,
    /// Peak resident memory of this process, in bytes (Linux `VmHWM`).
    pub peak_rss_bytes: Option<u64>,
    /// Whether the receipt came from [`ProveOptions::cache`]; for a hit,
    /// `execution` (its journal aside), `prove_time` and `peak_rss_bytes`
    /// are the earlier proof's.
    pub cache: CacheUse,
}

/// Why a run or proof failed.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The guest refused the job or failed (its panic message is included).
    #[error("guest execution failed: {0}")]
    Guest(String),
    /// The run needed more than `maxCycles`.
    #[error("the execution exceeded maxCycles ({limit} cycles)")]
    Cycles {
        /// The limit.
        limit: u64,
    },
    /// The journal was not produced or is malformed.
    #[error("the guest's journal is malformed: {0}")]
    Journal(String),
    /// Proving failed.
    #[error("proving failed: {0}")]
    Prover(String),
    /// Succinct compression is not available in this build.
    #[error("succinct compression needs risc0's recursion programs (recursion_zkr.zip), which this build does not embed; composite receipts are available")]
    NoSuccinct,
    /// The time limit passed.
    #[error("proving did not finish within {0:?}")]
    Timeout(Duration),
}

fn env_for(job: &Job, segment_po2: Option<u32>) -> Result<ExecutorEnv<'static>, ProveError> {
    let inputs: Vec<(usize, &[u32])> = job.inputs.iter().map(|(n, w)| (*n, w.as_slice())).collect();
    let words = guest_input(&job.plan_jcs, &job.plan_hash, &job.data_root, &inputs);
    let mut b = ExecutorEnv::builder();
    b.write_slice(&words).session_limit(Some(job.max_cycles));
    if let Some(po2) = segment_po2 {
        b.segment_limit_po2(po2);
    }
    b.build().map_err(|e| ProveError::Guest(format!("{e:#}")))
}

fn run_error(e: anyhow::Error, limit: u64) -> ProveError {
    let msg = format!("{e:#}");
    if msg.to_lowercase().contains("session limit") {
        ProveError::Cycles { limit }
    } else {
        ProveError::Guest(msg)
    }
}

fn execution(session: &Session) -> Result<Execution, ProveError> {
    let bytes = session.journal.as_ref().map(|j| j.bytes.clone()).ok_or_else(|| ProveError::Journal("no journal".into()))?;
    let journal = Journal::decode(&bytes).map_err(|e| ProveError::Journal(e.to_string()))?;
    Ok(Execution {
        journal,
        user_cycles: session.user_cycles,
        paging_cycles: session.paging_cycles,
        reserved_cycles: session.reserved_cycles,
        total_cycles: session.total_cycles,
        segments: session.segments.len(),
    })
}

/// Executes the guest without proving: the cycle counts and journal a proof
/// would have, in well under a second for small inputs.
///
/// # Errors
/// [`ProveError::Guest`] when the guest refuses the job (a wrong plan hash or
/// data root, an invalid plan, a run-time error), [`ProveError::Cycles`].
pub fn execute(job: &Job, segment_po2: Option<u32>) -> Result<Execution, ProveError> {
    let env = env_for(job, segment_po2)?;
    let mut exec = ExecutorImpl::from_elf(env, GUEST_PROGRAM).map_err(|e| ProveError::Guest(format!("{e:#}")))?;
    let session = exec.run_with_callback(|_| Ok(Box::new(NullSegmentRef))).map_err(|e| run_error(e, job.max_cycles))?;
    execution(&session)
}

/// Segment sizes [`best_segment_po2`] chooses from: 2^16 to 2^20 cycles
/// (risc0's default and largest usual size).
pub const AUTO_SEGMENT_PO2: std::ops::RangeInclusive<u32> = 16..=20;

/// The segment size (as a power of two) at which `job` costs a prover the
/// fewest total cycles, found by executing it at each size of
/// [`AUTO_SEGMENT_PO2`]; among equal totals, the largest (fewest
/// segments).
///
/// Each segment is padded to a power of two, so one size rarely suits
/// every job: 600,000 cycles fill one 2^20 segment (1,048,576 proved
/// cycles), but 2^19 + 2^17 (655,360) at a limit of 2^19. Smaller segments
/// page some memory in again, which the executions count. A prover's time
/// grows with the total, and per cycle it is no higher for smaller
/// segments (docs/benchmarks.md).
///
/// The cycle limit (`maxCycles`, risc0's session limit) counts user
/// cycles, which no segment size changes, so every size meets it or none.
///
/// # Errors
/// As [`execute`].
pub fn best_segment_po2(job: &Job) -> Result<(u32, Execution), ProveError> {
    let largest = *AUTO_SEGMENT_PO2.end();
    let mut best = (largest, execute(job, Some(largest))?);
    for po2 in AUTO_SEGMENT_PO2.rev().skip(1) {
        let e = execute(job, Some(po2))?;
        if e.total_cycles < best.1.total_cycles {
            best = (po2, e);
        }
    }
    Ok(best)
}

struct SegmentHook(mpsc::Sender<Event>);

impl SessionEvents for SegmentHook {
    fn on_post_prove_segment(&self, _segment: &Segment) {
        let _ = self.0.send(Event::SegmentDone);
    }
}

enum Event {
    Progress(Progress),
    SegmentDone,
    Done(Box<Result<(Receipt, Execution, Duration), ProveError>>),
}

/// Proves `job` with the local CPU prover, reporting progress.
///
/// The receipt is composite unless `opts.succinct`. With `opts.cache`, a
/// receipt already proved for this job and checked again
/// ([`ReceiptCache::lookup`]) is returned without proving, and a new one is
/// kept there. The proof runs on its own thread so that `opts.timeout` can
/// be enforced; on timeout that thread is abandoned and finishes in the
/// background.
///
/// # Errors
/// Any [`ProveError`].
pub fn prove(job: Job, opts: ProveOptions, mut progress: impl FnMut(Progress)) -> Result<Proof, ProveError> {
    if opts.succinct && !crate::succinct_available() {
        return Err(ProveError::NoSuccinct);
    }
    let entry = EntryFor::new(&job, &opts);
    let mut refused = None;
    if let Some(cache) = &opts.cache {
        match cache.lookup(&entry) {
            Ok(Some(proof)) => return Ok(proof),
            Ok(None) => {}
            Err(reason) => refused = Some(reason),
        }
    }
    let mut proof = prove_fresh(job, &opts, &mut progress)?;
    if let Some(cache) = &opts.cache {
        proof.cache = match (cache.store(&entry, &proof), refused) {
            (Err(reason), _) => CacheUse::Failed(reason),
            (Ok(()), Some(reason)) => CacheUse::Replaced(reason),
            (Ok(()), None) => CacheUse::Stored,
        };
    }
    Ok(proof)
}

fn prove_fresh(job: Job, opts: &ProveOptions, progress: &mut impl FnMut(Progress)) -> Result<Proof, ProveError> {
    let (tx, rx) = mpsc::channel();
    let (succinct, segment_po2) = (opts.succinct, opts.segment_po2);
    std::thread::Builder::new()
        .name("zkaudit-prover".into())
        .spawn(move || {
            let r = prove_on_thread(&job, succinct, segment_po2, &tx);
            let _ = tx.send(Event::Done(Box::new(r)));
        })
        .map_err(|e| ProveError::Prover(format!("cannot start the prover thread: {e}")))?;
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut done = 0;
    let mut of = 0;
    loop {
        let wait = deadline.map_or(Duration::from_millis(200), |d| d.saturating_duration_since(Instant::now()).min(Duration::from_millis(200)));
        match rx.recv_timeout(wait) {
            Ok(Event::Progress(p)) => {
                if let Progress::Executed { segments, .. } = p {
                    of = segments;
                }
                progress(p);
            }
            Ok(Event::SegmentDone) => {
                done += 1;
                progress(Progress::Segment { done, of });
            }
            Ok(Event::Done(r)) => {
                let (receipt, execution, prove_time) = (*r)?;
                return Ok(Proof { receipt, execution, prove_time, peak_rss_bytes: peak_rss_bytes(), cache: CacheUse::Off });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let (Some(d), Some(t)) = (deadline, opts.timeout) {
                    if Instant::now() >= d {
                        return Err(ProveError::Timeout(t));
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(ProveError::Prover("the prover thread stopped without a result".into()));
            }
        }
    }
}

fn prove_on_thread(job: &Job, succinct: bool, segment_po2: Option<u32>, tx: &mpsc::Sender<Event>) -> Result<(Receipt, Execution, Duration), ProveError> {
    let _ = tx.send(Event::Progress(Progress::Executing));
    let po2 = match segment_po2 {
        Some(po2) => po2,
        None => best_segment_po2(job)?.0,
    };
    let env = env_for(job, Some(po2))?;
    let mut exec = ExecutorImpl::from_elf(env, GUEST_PROGRAM).map_err(|e| ProveError::Guest(format!("{e:#}")))?;
    let mut session = exec.run().map_err(|e| run_error(e, job.max_cycles))?;
    let execution = execution(&session)?;
    let _ = tx.send(Event::Progress(Progress::Executed { total_cycles: execution.total_cycles, segments: execution.segments }));
    session.add_hook(SegmentHook(tx.clone()));
    let started = Instant::now();
    let prover = get_prover_server(&ProverOpts::composite()).map_err(|e| ProveError::Prover(format!("{e:#}")))?;
    let ctx = VerifierContext::default();
    let info = prover.prove_session(&ctx, &session).map_err(|e| ProveError::Prover(format!("{e:#}")))?;
    let mut receipt = info.receipt;
    if succinct {
        let _ = tx.send(Event::Progress(Progress::Compressing));
        receipt = prover.compress(&ProverOpts::succinct(), &receipt).map_err(|e| ProveError::Prover(format!("{e:#}")))?;
    }
    Ok((receipt, execution, started.elapsed()))
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
