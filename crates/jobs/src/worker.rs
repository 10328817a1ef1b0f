//! Workers: claim a job, run it as a supervised child process, record the
//! outcome.
//!
//! A job runs as a `zkaudit` child process speaking [`crate::protocol`]: it
//! reports progress as JSON lines on stderr, prints its result on stdout,
//! and exits when its stdin closes, so it dies with its worker. Running the prover in its own process
//! is what lets a cancel or a time limit stop it at once: it is killed, not
//! left to finish.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{Job, Mode, Phase, State};
use crate::protocol::{ChildProgress, ChildRequest, ProveReport, RunReport};
use crate::store::{Finish, Store};
use crate::Error;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Name recorded on claimed jobs; unique among live workers.
    pub name: String,
    /// The `zkaudit` executable that runs jobs.
    pub exe: PathBuf,
    /// Wait between claims while the queue is empty.
    pub poll: Duration,
    /// Interval between heartbeats, which also pick up cancels.
    pub heartbeat: Duration,
    /// Segment size for proofs, as a power of two (cycles); `None` chooses it
    /// per job (`zkaudit_zkvm::best_segment_po2`).
    pub segment_po2: Option<u32>,
}

impl Config {
    /// Worker `index` of this process: named `HOST-PID-INDEX` (HOST from
    /// `/etc/hostname`, else `localhost`), a heartbeat every second.
    pub fn local(index: usize, exe: PathBuf, poll: Duration, segment_po2: Option<u32>) -> Config {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).ok().filter(|h| !h.is_empty());
        Config {
            name: format!("{}-{}-{index}", host.as_deref().unwrap_or("localhost"), std::process::id()),
            exe,
            poll,
            heartbeat: Duration::from_secs(1),
            segment_po2,
        }
    }
}

/// Told about every job a worker finishes (for metrics and logs).
pub trait Observer: Send + Sync {
    /// `job` (as claimed) ended as `f` after `seconds` of wall time.
    fn finished(&self, job: &Job, f: &Finish, seconds: f64);
}

/// An [`Observer`] that does nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn finished(&self, _: &Job, _: &Finish, _: f64) {}
}

/// Claims and runs jobs until `stop` is set. A job still running then is
/// killed and left `running`; [`Store::recover`] re-queues it later.
///
/// # Errors
/// Only if the store fails while claiming; errors while running one job
/// fail that job.
pub fn run(store: &Store, cfg: &Config, stop: &AtomicBool, observer: &dyn Observer) -> Result<(), Error> {
    while !stop.load(Ordering::Relaxed) {
        match store.claim(&cfg.name)? {
            Some(job) => {
                let t = Instant::now();
                if let Some(f) = run_job(store, cfg, &job, stop) {
                    let secs = t.elapsed().as_secs_f64();
                    if store.finish(&job.id, &cfg.name, &f)? {
                        observer.finished(&job, &f, secs);
                    }
                }
            }
            None => {
                let until = Instant::now() + cfg.poll;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    Ok(())
}

fn failed(state: State, error: String) -> Finish {
    Finish { state, error: Some(error), cycles: None, segments: None, receipt_id: None, result: None, cached: false }
}

#[derive(Default)]
struct Shared {
    phase: Option<Phase>,
    cycles: Option<u64>,
    segments: Option<u64>,
    /// stderr lines that are not progress reports (the error text).
    text: String,
}

/// Keeps at most this much of a child's stderr (bytes).
const MAX_ERROR_TEXT: usize = 16 * 1024;

/// Runs one claimed job. `None` if the job was taken away (re-queued after a
/// missed heartbeat) or the worker is stopping.
fn run_job(store: &Store, cfg: &Config, job: &Job, stop: &AtomicBool) -> Option<Finish> {
    let dir = match tempfile::Builder::new().prefix(&format!("zkaudit-job-{}-", job.id)).tempdir() {
        Ok(d) => d,
        Err(e) => return Some(failed(State::Failed, format!("worker {}: cannot create a scratch directory: {e}", cfg.name))),
    };
    let plan = dir.path().join("plan.json");
    let mut request =
        ChildRequest { mode: job.mode, plan: plan.clone(), data: Vec::new(), receipt: dir.path().join("receipt.bin"), segment_po2: cfg.segment_po2 };
    if let Err(e) = std::fs::write(&plan, &job.spec.plan) {
        return Some(failed(State::Failed, format!("worker {}: writing the plan: {e}", cfg.name)));
    }
    for d in &job.spec.data {
        let bytes = match store.blob(&job.tenant, &d.blob) {
            Ok(Some(b)) => b,
            Ok(None) => return Some(failed(State::Failed, format!("data `{}`: blob {} is gone", d.name, d.blob))),
            Err(e) => return Some(failed(State::Failed, format!("data `{}`: {e}", d.name))),
        };
        let ext = if d.format == "jsonl" { "jsonl" } else { "csv" };
        let path = dir.path().join(format!("{}.{ext}", d.name));
        if let Err(e) = std::fs::write(&path, bytes) {
            return Some(failed(State::Failed, format!("worker {}: writing data: {e}", cfg.name)));
        }
        request.data.push((d.name.clone(), path));
    }
    let args = match request.args() {
        Ok(a) => a,
        Err(e) => return Some(failed(State::Failed, format!("worker {}: the child's request: {e}", cfg.name))),
    };
    let mut cmd = Command::new(&cfg.exe);
    cmd.args(args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Some(failed(State::Failed, format!("worker {}: starting {}: {e}", cfg.name, cfg.exe.display()))),
    };
    let shared = Arc::new(Mutex::new(Shared { phase: Some(Phase::Executing), ..Shared::default() }));
    let stderr = child.stderr.take().map(|s| {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || read_progress(s, &shared))
    });
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
    });
    let outcome = supervise(store, cfg, job, stop, &mut child, &shared);
    drop(child.stdin.take());
    let _ = child.wait();
    if let Some(h) = stderr {
        let _ = h.join();
    }
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let status = match outcome? {
        Ok(status) => status,
        Err(f) => return Some(f),
    };
    let s = shared.lock().map(|s| (s.cycles, s.segments, s.text.clone())).unwrap_or_default();
    if !status.success() {
        let text = s.2.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n");
        let msg = text.strip_prefix("error: ").unwrap_or(&text).to_owned();
        return Some(failed(State::Failed, if msg.is_empty() { format!("the job's process ended with {status}") } else { msg }));
    }
    Some(collect(store, job, &out, &request.receipt).unwrap_or_else(|e| failed(State::Failed, e)))
}

/// Waits for the child, heartbeating, enforcing the time limit and
/// honouring cancels. `None`: the job was lost or the worker is stopping.
fn supervise(
    store: &Store,
    cfg: &Config,
    job: &Job,
    stop: &AtomicBool,
    child: &mut Child,
    shared: &Mutex<Shared>,
) -> Option<Result<std::process::ExitStatus, Finish>> {
    let started = Instant::now();
    let limit = Duration::from_secs(job.timeout_s);
    let mut last_beat = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                return Some(Err(failed(State::Failed, format!("worker {}: waiting for the job's process: {e}", cfg.name))));
            }
        }
        if stop.load(Ordering::Relaxed) {
            let _ = child.kill();
            return None;
        }
        let (phase, cycles, segments) = shared.lock().map(|s| (s.phase, s.cycles, s.segments)).unwrap_or_default();
        if started.elapsed() >= limit {
            let _ = child.kill();
            let what = phase.map_or("running", Phase::as_str);
            return Some(Err(Finish {
                cycles,
                segments,
                ..failed(State::TimedOut, format!("stopped after its time limit of {} s while {what}", job.timeout_s))
            }));
        }
        if last_beat.elapsed() >= cfg.heartbeat {
            last_beat = Instant::now();
            match store.heartbeat(&job.id, &cfg.name, phase.unwrap_or(Phase::Executing), cycles, segments) {
                Ok(Some(false)) | Err(_) => {}
                Ok(Some(true)) => {
                    let _ = child.kill();
                    let what = phase.map_or("running", Phase::as_str);
                    return Some(Err(Finish { cycles, segments, ..failed(State::Cancelled, format!("cancelled while {what}; the prover was stopped")) }));
                }
                Ok(None) => {
                    let _ = child.kill();
                    return None;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the child's stderr: progress lines update `shared`, anything else
/// is kept as the error text.
fn read_progress(stderr: impl std::io::Read, shared: &Mutex<Shared>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let Ok(mut s) = shared.lock() else { break };
        match ChildProgress::parse(&line) {
            Some(p) => match p {
                ChildProgress::Executing => s.phase = Some(Phase::Executing),
                ChildProgress::Proving { total_cycles, segments } => {
                    s.phase = Some(Phase::Proving);
                    s.cycles = Some(total_cycles);
                    s.segments = Some(segments);
                }
                ChildProgress::Segment { .. } | ChildProgress::Compressing => s.phase = Some(Phase::Proving),
            },
            None if s.text.len() < MAX_ERROR_TEXT => {
                s.text.push_str(&line);
                s.text.push('\n');
            }
            None => {}
        }
    }
}

/// Turns a successful child's result line (and receipt file) into the
/// job's result.
fn collect(store: &Store, job: &Job, out: &str, receipt: &std::path::Path) -> Result<Finish, String> {
    let line = out.trim();
    let no_result = |e: serde_json::Error| format!("the job's process printed no valid result: {e}");
    let (cycles, receipt_id, result, cached) = match job.mode {
        Mode::Prove => {
            let mut r: ProveReport = serde_json::from_str(line).map_err(no_result)?;
            let bytes = std::fs::read(receipt).map_err(|e| format!("reading the receipt: {e}"))?;
            store.put_receipt(&job.tenant, &r.receipt_digest, &job.id, &bytes).map_err(|e| e.to_string())?;
            r.receipt = None;
            (Some(r.cycles), Some(r.receipt_digest.clone()), serde_json::to_value(&r), r.cached)
        }
        Mode::ExecuteOnly => {
            // The full output may hold private columns; the journal commits
            // to it by hash, and only the public part is kept.
            let mut r: RunReport = serde_json::from_str(line).map_err(no_result)?;
            r.output = None;
            (r.zkvm, None, serde_json::to_value(&r), false)
        }
    };
    Ok(Finish {
        state: State::Succeeded,
        error: None,
        cycles: cycles.map(|c| c.total_cycles),
        segments: cycles.map(|c| c.segments),
        receipt_id,
        result: Some(result.map_err(|e| format!("keeping the result: {e}"))?),
        cached,
    })
}
