//! Integration tests of the job store, [`zkaudit_jobs::Store`], through its public API only: claiming (oldest first, never
//! the same job twice, also from concurrent threads), heartbeats and cancellation, finishing, recovery of jobs whose worker
//! stopped, TTL cleanup of jobs, blobs and receipts, queue capacity, and the blob, receipt and token round trips.
//!
//! Every scenario is written once as a function taking `&Store` and runs twice: on a fresh SQLite file, and on a fresh
//! PostgreSQL server of its own (`tests-support/pg.rs`), as `sqlite::<scenario>` and `postgresql::<scenario>`.

#[path = "../../../tests-support/pg.rs"]
mod pg;

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest as _, Sha256};
use zkaudit_jobs::{now_ns, DataRef, Finish, Idempotent, Job, JobSpec, Mode, NewJob, Phase, Recovered, Scope, State, Stats, Store, Submitted};

/// Runs `scenario` on a store in a fresh SQLite file.
fn run_on_sqlite(scenario: fn(&Store)) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("jobs.db").to_str().unwrap()).unwrap();
    assert!(!store.is_shared(), "a SQLite store is not shared");
    scenario(&store);
}

/// Runs `scenario` on a store in a fresh PostgreSQL server.
fn run_on_postgresql(scenario: fn(&Store)) {
    let server = pg::PgServer::start();
    let store = Store::open(&server.url).unwrap();
    assert!(store.is_shared(), "a PostgreSQL store is shared");
    scenario(&store);
    // Close the pool's connections before the server stops.
    drop(store);
    drop(server);
}

/// Declares one SQLite and one PostgreSQL test per scenario.
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $scenario() {
                    super::run_on_sqlite(super::$scenario);
                }
            )+
        }

        mod postgresql {
            $(
                #[test]
                fn $scenario() {
                    super::run_on_postgresql(super::$scenario);
                }
            )+
        }
    };
}

on_both_backends!(
    claim_takes_the_oldest_queued_job_once,
    concurrent_claims_take_every_job_exactly_once,
    heartbeat_records_progress_and_reports_cancels,
    finish_records_the_outcome_for_its_worker_only,
    recover_requeues_fails_or_cancels_stale_jobs,
    cleanup_deletes_expired_jobs_blobs_and_receipts,
    submit_stops_at_the_capacity,
    blobs_receipts_and_tokens_round_trip,
    idempotency_keys_are_claimed_once_per_tenant,
    succeeded_proofs_are_recorded_and_stored_once,
);

/// Lets the clock move on, so that times taken before and after differ.
fn tick() {
    thread::sleep(Duration::from_millis(2));
}

fn new_job(tenant: &str, blobs: &[&str], max_attempts: u32) -> NewJob {
    NewJob {
        tenant: tenant.to_owned(),
        token_id: format!("token-of-{tenant}"),
        kind: "plan".to_owned(),
        mode: Mode::Prove,
        spec: JobSpec {
            plan: r#"{"steps":[]}"#.to_owned(),
            data: blobs.iter().enumerate().map(|(i, b)| DataRef { name: format!("input{i}"), blob: (*b).to_owned(), format: "csv".to_owned() }).collect(),
        },
        timeout_s: 600,
        max_attempts,
    }
}

/// Submits `new` without a capacity; panics unless it was queued.
fn submit(store: &Store, new: &NewJob) -> Job {
    match store.submit(new, None).unwrap() {
        Submitted::Queued(job) => *job,
        Submitted::Full { queued } => panic!("the queue is full at {queued} jobs, yet no capacity was given"),
    }
}

/// The job `id`; panics if it is missing.
fn get(store: &Store, id: &str) -> Job {
    store.get(id).unwrap().unwrap_or_else(|| panic!("job {id} is missing"))
}

/// Claims for `worker`; panics unless the job claimed is `expected`.
fn claim(store: &Store, worker: &str, expected: &str) -> Job {
    let job = store.claim(worker).unwrap().unwrap_or_else(|| panic!("{worker} claimed nothing; expected {expected}"));
    assert_eq!(job.id, expected, "{worker} claimed the wrong job");
    job
}

/// A [`Finish`] in `state` with nothing else.
fn finish_as(state: State) -> Finish {
    Finish { state, error: None, cycles: None, segments: None, receipt_id: None, result: None, cached: false }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `stats()` with only the queue figures checked.
fn assert_queue(store: &Store, queued: u64, running: u64) {
    let s = store.stats().unwrap();
    assert_eq!((s.queued, s.running), (queued, running), "(queued, running) in {s:?}");
}

fn claim_takes_the_oldest_queued_job_once(store: &Store) {
    assert!(store.claim("w0").unwrap().is_none(), "claim on an empty queue");

    let mut ids = Vec::new();
    for i in 0..3 {
        let before = now_ns();
        let job = submit(store, &new_job("alice", &[], 3));
        assert_eq!(job.state, State::Queued);
        assert_eq!(job.phase, None);
        assert_eq!(job.attempts, 0);
        assert_eq!(job.worker, None);
        assert_eq!(job.started_ns, None);
        assert_eq!(job.heartbeat_ns, None);
        assert!(job.created_ns >= before && job.created_ns <= now_ns(), "created_ns {} of job {i}", job.created_ns);
        ids.push(job.id);
        tick();
    }
    assert_queue(store, 3, 0);

    let mut claimed = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let worker = format!("w{i}");
        let before = now_ns();
        let job = claim(store, &worker, id);
        assert_eq!(job.state, State::Running);
        assert_eq!(job.phase, Some(Phase::Executing));
        assert_eq!(job.attempts, 1);
        assert_eq!(job.worker.as_deref(), Some(worker.as_str()));
        let started = job.started_ns.expect("started_ns of a claimed job");
        assert!(started >= before && started <= now_ns(), "started_ns {started}");
        assert_eq!(job.heartbeat_ns, Some(started), "a claim is the first heartbeat");
        assert_eq!(job.finished_ns, None);
        // What claim returned is what was stored.
        assert_eq!(get(store, id), job);
        assert!(claimed.insert(job.id.clone()), "job {} claimed twice", job.id);
        assert_queue(store, 2 - i as u64, 1 + i as u64);
    }
    assert!(store.claim("w9").unwrap().is_none(), "every job is running: nothing left to claim");
    // Claiming again changed none of them.
    for (i, id) in ids.iter().enumerate() {
        let job = get(store, id);
        assert_eq!((job.attempts, job.worker), (1, Some(format!("w{i}"))));
    }
}

fn concurrent_claims_take_every_job_exactly_once(store: &Store) {
    const JOBS: usize = 60;
    const THREADS: usize = 8;
    let submitted: BTreeSet<String> = (0..JOBS).map(|_| submit(store, &new_job("alice", &[], 1)).id).collect();
    assert_eq!(submitted.len(), JOBS);

    let start = Barrier::new(THREADS);
    let claims: Vec<(String, Job)> = thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    let worker = format!("worker-{t}");
                    start.wait();
                    let mut mine = Vec::new();
                    while let Some(job) = store.claim(&worker).unwrap() {
                        mine.push((worker.clone(), job));
                    }
                    mine
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });

    assert_eq!(claims.len(), JOBS, "claims made in all");
    let ids: BTreeSet<String> = claims.iter().map(|(_, job)| job.id.clone()).collect();
    assert_eq!(ids.len(), JOBS, "some job was claimed twice");
    assert_eq!(ids, submitted, "the claimed jobs are the submitted ones");
    for (worker, job) in &claims {
        assert_eq!(job.state, State::Running);
        assert_eq!(job.attempts, 1, "job {} claimed more than once", job.id);
        assert_eq!(job.worker.as_deref(), Some(worker.as_str()));
        let stored = get(store, &job.id);
        assert_eq!((stored.state, stored.attempts, stored.worker), (State::Running, 1, Some(worker.clone())), "job {}", job.id);
    }
    assert_queue(store, 0, JOBS as u64);
    assert!(store.claim("late").unwrap().is_none());
}

fn heartbeat_records_progress_and_reports_cancels(store: &Store) {
    let job = submit(store, &new_job("alice", &[], 3));
    let id = job.id.as_str();
    assert_eq!(store.heartbeat(id, "w1", Phase::Executing, Some(1), None).unwrap(), None, "a queued job has no worker");
    assert_eq!(get(store, id), job, "a refused heartbeat changes nothing");

    let claimed = claim(store, "w1", id);
    tick();
    assert_eq!(store.heartbeat(id, "w1", Phase::Proving, Some(123_456), Some(3)).unwrap(), Some(false));
    let beat = get(store, id);
    assert_eq!(beat.state, State::Running);
    assert_eq!(beat.phase, Some(Phase::Proving));
    assert_eq!(beat.cycles, Some(123_456));
    assert_eq!(beat.segments, Some(3));
    assert!(beat.heartbeat_ns > claimed.heartbeat_ns, "heartbeat_ns {:?} after {:?}", beat.heartbeat_ns, claimed.heartbeat_ns);
    assert_eq!(beat.started_ns, claimed.started_ns, "a heartbeat does not restart the job");

    // Figures not given are kept.
    tick();
    assert_eq!(store.heartbeat(id, "w1", Phase::Proving, None, Some(4)).unwrap(), Some(false));
    let beat2 = get(store, id);
    assert_eq!((beat2.cycles, beat2.segments), (Some(123_456), Some(4)));
    assert!(beat2.heartbeat_ns > beat.heartbeat_ns);

    // Another worker, or an unknown job, gets None and changes nothing.
    assert_eq!(store.heartbeat(id, "w2", Phase::Executing, Some(1), Some(1)).unwrap(), None);
    assert_eq!(store.heartbeat(&"0".repeat(32), "w1", Phase::Executing, None, None).unwrap(), None);
    assert_eq!(get(store, id), beat2);

    // Cancelling a running job flags it; it keeps running until its worker sees the flag.
    let flagged = store.cancel(id).unwrap().expect("the job");
    assert_eq!(flagged.state, State::Running);
    assert!(flagged.cancel_requested);
    assert_eq!(flagged.finished_ns, None);
    assert_eq!(store.heartbeat(id, "w1", Phase::Proving, None, None).unwrap(), Some(true));

    // Once the job is no longer running, its worker gets None too.
    let f = Finish { error: Some("cancelled while proving".into()), ..finish_as(State::Cancelled) };
    assert!(store.finish(id, "w1", &f).unwrap());
    let done = get(store, id);
    assert_eq!(done.state, State::Cancelled);
    assert_eq!(done.error.as_deref(), Some("cancelled while proving"));
    assert_eq!(store.heartbeat(id, "w1", Phase::Proving, Some(9), Some(9)).unwrap(), None);
    assert_eq!(get(store, id), done, "a heartbeat on a finished job changes nothing");
    // Cancelling a finished job leaves it as it is.
    assert_eq!(store.cancel(id).unwrap(), Some(done));
    assert_eq!(store.cancel(&"0".repeat(32)).unwrap(), None, "cancel of an unknown job");

    // A queued job is cancelled at once, and can no longer be claimed.
    let queued = submit(store, &new_job("alice", &[], 3));
    let cancelled = store.cancel(&queued.id).unwrap().expect("the job");
    assert_eq!(cancelled.state, State::Cancelled);
    assert_eq!(cancelled.error.as_deref(), Some("cancelled before it started"));
    assert!(cancelled.finished_ns.is_some());
    assert_eq!(cancelled.attempts, 0);
    assert!(store.claim("w1").unwrap().is_none());
    assert_queue(store, 0, 0);
}

fn finish_records_the_outcome_for_its_worker_only(store: &Store) {
    assert_eq!(store.stats().unwrap(), Stats::default(), "no jobs, no figures");

    let a = submit(store, &new_job("alice", &[], 3));
    claim(store, "w1", &a.id);
    assert_eq!(store.heartbeat(&a.id, "w1", Phase::Proving, Some(1_000), Some(1)).unwrap(), Some(false));
    tick();
    let before = get(store, &a.id);
    let receipt_id = "ab".repeat(32);
    let result = json!({ "planHash": "cd".repeat(32), "output": [42, "yes"] });
    let f = Finish {
        state: State::Succeeded,
        error: None,
        cycles: Some(2_000_000),
        segments: Some(2),
        receipt_id: Some(receipt_id.clone()),
        result: Some(result.clone()),
        cached: false,
    };

    assert!(!store.finish(&a.id, "w2", &f).unwrap(), "another worker cannot finish the job");
    assert_eq!(get(store, &a.id), before, "a refused finish changes nothing");

    let t0 = now_ns();
    assert!(store.finish(&a.id, "w1", &f).unwrap());
    let done = get(store, &a.id);
    assert_eq!(done.state, State::Succeeded);
    assert_eq!(done.phase, None);
    assert_eq!(done.cycles, Some(2_000_000));
    assert_eq!(done.segments, Some(2));
    assert_eq!(done.receipt_id, Some(receipt_id));
    assert_eq!(done.result, Some(result));
    assert_eq!(done.error, None);
    assert_eq!((done.attempts, done.worker.as_deref()), (1, Some("w1")));
    let finished = done.finished_ns.expect("finished_ns");
    assert!(finished >= t0 && finished <= now_ns(), "finished_ns {finished}");

    // A finished job cannot be finished again.
    let again = Finish { error: Some("late".into()), ..finish_as(State::Failed) };
    assert!(!store.finish(&a.id, "w1", &again).unwrap());
    assert_eq!(get(store, &a.id), done);

    // The figures come from the succeeded proof.
    let secs = (finished - done.started_ns.unwrap()) as f64 / 1e9;
    assert!(secs > 0.0);
    let stats = store.stats().unwrap();
    assert_eq!(stats, Stats { succeeded: 1, recent_job_seconds: Some(secs), recent_cycles_per_second: Some(2e6 / secs), ..Stats::default() });

    // A failure keeps the cycles heartbeated when it gives none, and has no receipt.
    let b = submit(store, &new_job("alice", &[], 3));
    claim(store, "w1", &b.id);
    assert_eq!(store.heartbeat(&b.id, "w1", Phase::Executing, Some(77), None).unwrap(), Some(false));
    assert!(store.finish(&b.id, "w1", &Finish { error: Some("guest panicked".into()), ..finish_as(State::Failed) }).unwrap());
    let failed = get(store, &b.id);
    assert_eq!(failed.state, State::Failed);
    assert_eq!(failed.error.as_deref(), Some("guest panicked"));
    assert_eq!((failed.cycles, failed.segments), (Some(77), None));
    assert_eq!((failed.receipt_id, failed.result), (None, None));

    // A timeout is final too; failures and timeouts do not count in the figures.
    let c = submit(store, &new_job("alice", &[], 3));
    claim(store, "w3", &c.id);
    assert!(store.finish(&c.id, "w3", &Finish { error: Some("timed out after 600 s".into()), ..finish_as(State::TimedOut) }).unwrap());
    assert_eq!(get(store, &c.id).state, State::TimedOut);
    assert_eq!(store.stats().unwrap(), Stats { failed: 1, timed_out: 1, ..stats }, "counted by state, not in the figures");
}

fn recover_requeues_fails_or_cancels_stale_jobs(store: &Store) {
    let requeue = submit(store, &new_job("alice", &[], 3));
    tick();
    let exhausted = submit(store, &new_job("alice", &[], 1));
    tick();
    let cancelled = submit(store, &new_job("alice", &[], 1));
    tick();
    let fresh = submit(store, &new_job("alice", &[], 1));
    for (i, job) in [&requeue, &exhausted, &cancelled, &fresh].into_iter().enumerate() {
        claim(store, &format!("w{i}"), &job.id);
    }
    assert!(store.cancel(&cancelled.id).unwrap().unwrap().cancel_requested);

    tick();
    let stale_before = now_ns();
    tick();
    // Only this job's worker is alive after the cutoff.
    assert_eq!(store.heartbeat(&fresh.id, "w3", Phase::Proving, Some(5), None).unwrap(), Some(false));
    let fresh_before = get(store, &fresh.id);

    assert_eq!(store.recover(stale_before).unwrap(), Recovered { requeued: 1, failed: 1, cancelled: 1 });

    let r = get(store, &requeue.id);
    assert_eq!(r.state, State::Queued);
    assert_eq!((r.phase, r.worker.as_deref()), (None, None));
    assert_eq!(r.attempts, 1, "a re-queued job keeps its attempts");
    assert_eq!((r.finished_ns, r.error.as_deref()), (None, None));

    let e = get(store, &exhausted.id);
    assert_eq!(e.state, State::Failed);
    assert_eq!(e.error.as_deref(), Some("retry limit reached: its worker stopped during every attempt"));
    assert_eq!((e.phase, e.attempts), (None, 1));
    assert!(e.finished_ns.is_some());

    let c = get(store, &cancelled.id);
    assert_eq!(c.state, State::Cancelled, "a pending cancel wins over the retry limit");
    assert_eq!(c.error.as_deref(), Some("cancelled; its worker stopped"));
    assert_eq!(c.phase, None);
    assert!(c.finished_ns.is_some());

    assert_eq!(get(store, &fresh.id), fresh_before, "a job with a fresh heartbeat is left alone");
    assert_queue(store, 1, 1);

    // The stopped worker has lost its job.
    assert_eq!(store.heartbeat(&requeue.id, "w0", Phase::Proving, None, None).unwrap(), None);
    assert!(!store.finish(&requeue.id, "w0", &finish_as(State::Succeeded)).unwrap());
    assert_eq!(get(store, &requeue.id), r);

    // The re-queued job is claimed again, for its second attempt.
    let second = claim(store, "w4", &requeue.id);
    assert_eq!((second.state, second.attempts), (State::Running, 2));
    assert_eq!(store.recover(stale_before).unwrap(), Recovered::default(), "nothing is stale any more at the old cutoff");

    // A later cutoff: the second attempt is re-queued (one left), the fresh job ran out of attempts.
    tick();
    assert_eq!(store.recover(now_ns()).unwrap(), Recovered { requeued: 1, failed: 1, cancelled: 0 });
    let r2 = get(store, &requeue.id);
    assert_eq!((r2.state, r2.attempts), (State::Queued, 2));
    assert_eq!(get(store, &fresh.id).state, State::Failed);
    assert!(!store.finish(&fresh.id, "w3", &finish_as(State::Succeeded)).unwrap(), "a failed job cannot be finished");
    assert_queue(store, 1, 0);

    // The last attempt, when its worker stops too, fails the job.
    let third = claim(store, "w5", &requeue.id);
    assert_eq!(third.attempts, 3);
    tick();
    assert_eq!(store.recover(now_ns()).unwrap(), Recovered { requeued: 0, failed: 1, cancelled: 0 });
    assert_eq!(get(store, &requeue.id).state, State::Failed);
    assert_queue(store, 0, 0);
}

fn cleanup_deletes_expired_jobs_blobs_and_receipts(store: &Store) {
    let put = |tenant: &str, bytes: &[u8]| store.put_blob(tenant, bytes).unwrap();
    let old_blob = put("alice", b"used only by a job that finished long ago");
    let shared = put("alice", b"used by a finished job and by a queued one");
    let running_blob = put("alice", b"used by a running job");
    let recent_blob = put("alice", b"used by a job that finished recently");
    let queued_blob = put("alice", b"used by a queued job");
    let orphan = put("alice", b"used by no job");
    // The same bytes as alice's queued blob, but bob's: no job of bob's needs them.
    let bobs = put("bob", b"used by a queued job");
    assert_eq!(bobs, queued_blob);

    let old = submit(store, &new_job("alice", &[&old_blob, &shared], 3));
    claim(store, "w1", &old.id);
    assert!(store.finish(&old.id, "w1", &Finish { receipt_id: Some("01".repeat(32)), ..finish_as(State::Succeeded) }).unwrap());
    let cancelled = submit(store, &new_job("alice", &[], 3));
    assert_eq!(store.cancel(&cancelled.id).unwrap().unwrap().state, State::Cancelled);
    let running = submit(store, &new_job("alice", &[&running_blob], 3));
    claim(store, "w2", &running.id);
    let recent = submit(store, &new_job("alice", &[&recent_blob], 3));
    claim(store, "w3", &recent.id);
    let queued = submit(store, &new_job("alice", &[&queued_blob, &shared], 3));
    let old_receipt = "01".repeat(32);
    store.put_receipt("alice", &old_receipt, &old.id, b"old receipt").unwrap();

    tick();
    let cutoff = now_ns();
    tick();
    assert!(store.finish(&recent.id, "w3", &finish_as(State::Failed)).unwrap());
    let new_receipt = "02".repeat(32);
    store.put_receipt("alice", &new_receipt, &recent.id, b"new receipt").unwrap();
    let new_orphan = put("alice", b"uploaded after the cutoff, used by no job");

    // Nothing is older than an hour, and no cutoff deletes nothing.
    let hour_ago = now_ns() - 3_600_000_000_000;
    assert_eq!(store.cleanup(Some(hour_ago), Some(hour_ago)).unwrap(), (0, 0, 0));
    assert_eq!(store.cleanup(None, None).unwrap(), (0, 0, 0));
    assert!(store.get(&old.id).unwrap().is_some());

    // (jobs: old and cancelled; receipts: the old one; blobs: old_blob, orphan and bob's copy).
    assert_eq!(store.cleanup(Some(cutoff), Some(cutoff)).unwrap(), (2, 1, 3));
    assert_eq!(store.get(&old.id).unwrap(), None);
    assert_eq!(store.get(&cancelled.id).unwrap(), None);
    assert_eq!(get(store, &running.id).state, State::Running);
    assert_eq!(get(store, &recent.id).state, State::Failed);
    assert_eq!(get(store, &queued.id).state, State::Queued);
    for (tenant, blob, kept) in [
        ("alice", &old_blob, false),
        ("alice", &orphan, false),
        ("bob", &bobs, false),
        ("alice", &shared, true),
        ("alice", &running_blob, true),
        ("alice", &recent_blob, true),
        ("alice", &queued_blob, true),
        ("alice", &new_orphan, true),
    ] {
        assert_eq!(store.has_blob(tenant, blob).unwrap(), kept, "{tenant}'s blob {blob}");
        assert_eq!(store.blob(tenant, blob).unwrap().is_some(), kept, "{tenant}'s blob {blob}");
    }
    assert_eq!(store.blob("alice", &shared).unwrap().as_deref(), Some(&b"used by a finished job and by a queued one"[..]));
    assert_eq!(store.receipt(None, &old_receipt).unwrap(), None);
    assert_eq!(store.receipt(Some("alice"), &new_receipt).unwrap().as_deref(), Some(&b"new receipt"[..]));
    assert_eq!(store.cleanup(Some(cutoff), Some(cutoff)).unwrap(), (0, 0, 0), "a second cleanup finds nothing");

    // Later: the running job finishes; the queued job and its blobs still survive. No receipt cutoff keeps receipts.
    assert!(store.finish(&running.id, "w2", &finish_as(State::Succeeded)).unwrap());
    tick();
    let cutoff2 = now_ns();
    // (jobs: running and recent; blobs: running_blob, recent_blob and new_orphan).
    assert_eq!(store.cleanup(Some(cutoff2), None).unwrap(), (2, 0, 3));
    assert_eq!(store.get(&running.id).unwrap(), None);
    assert_eq!(store.get(&recent.id).unwrap(), None);
    assert_eq!(get(store, &queued.id).state, State::Queued);
    assert!(store.has_blob("alice", &shared).unwrap());
    assert!(store.has_blob("alice", &queued_blob).unwrap());
    assert!(!store.has_blob("alice", &running_blob).unwrap());
    assert!(!store.has_blob("alice", &recent_blob).unwrap());
    assert!(!store.has_blob("alice", &new_orphan).unwrap());
    assert!(store.receipt(None, &new_receipt).unwrap().is_some());
    assert_eq!(store.cleanup(None, Some(cutoff2)).unwrap(), (0, 1, 0));
    assert_eq!(store.receipt(None, &new_receipt).unwrap(), None);

    // Once the queued job is cancelled and expires, its blobs go too.
    store.cancel(&queued.id).unwrap();
    tick();
    assert_eq!(store.cleanup(Some(now_ns()), Some(now_ns())).unwrap(), (1, 0, 2));
    assert!(!store.has_blob("alice", &shared).unwrap());
    assert!(!store.has_blob("alice", &queued_blob).unwrap());
    assert_eq!(store.list(None, None, 100).unwrap(), Vec::new());
}

fn submit_stops_at_the_capacity(store: &Store) {
    let new = new_job("alice", &[], 2);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let before = now_ns();
        match store.submit(&new, Some(2)).unwrap() {
            Submitted::Queued(job) => {
                assert_eq!(job.id.len(), 32);
                assert!(job.id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "id {}", job.id);
                assert_eq!(job.tenant, "alice");
                assert_eq!(job.token_id, "token-of-alice");
                assert_eq!(job.kind, "plan");
                assert_eq!(job.mode, Mode::Prove);
                assert_eq!(job.spec, new.spec);
                assert_eq!((job.timeout_s, job.max_attempts, job.attempts), (600, 2, 0));
                assert_eq!((job.state, job.cancel_requested), (State::Queued, false));
                assert!(job.created_ns >= before);
                ids.push(job.id);
            }
            Submitted::Full { queued } => panic!("full at {queued} of 2"),
        }
        tick();
    }
    assert_ne!(ids[0], ids[1]);
    assert!(matches!(store.submit(&new, Some(2)).unwrap(), Submitted::Full { queued: 2 }));
    assert_eq!(store.list(Some("alice"), Some(State::Queued), 100).unwrap().len(), 2, "a full queue stores nothing");

    // Without a capacity there is no limit; with one, the count is of queued jobs only.
    submit(store, &new);
    assert!(matches!(store.submit(&new, Some(3)).unwrap(), Submitted::Full { queued: 3 }));
    assert!(matches!(store.submit(&new, Some(0)).unwrap(), Submitted::Full { queued: 3 }));
    claim(store, "w1", &ids[0]);
    assert_queue(store, 2, 1);
    assert!(matches!(store.submit(&new, Some(3)).unwrap(), Submitted::Queued(_)), "a claimed job frees a place");
    assert!(matches!(store.submit(&new, Some(3)).unwrap(), Submitted::Full { queued: 3 }));
    assert_queue(store, 3, 1);
}

fn blobs_receipts_and_tokens_round_trip(store: &Store) {
    let bytes = b"name,income\nann,100\n";
    let id = store.put_blob("alice", bytes).unwrap();
    assert_eq!(id, sha256_hex(bytes), "a blob's ID is its SHA-256");
    assert_eq!(store.put_blob("alice", bytes).unwrap(), id, "storing it again");
    assert_eq!(store.blob("alice", &id).unwrap().as_deref(), Some(&bytes[..]));
    assert!(store.has_blob("alice", &id).unwrap());
    assert!(!store.has_blob("bob", &id).unwrap(), "blobs are per tenant");
    assert_eq!(store.blob("bob", &id).unwrap(), None);
    let empty = store.put_blob("alice", b"").unwrap();
    assert_eq!(store.blob("alice", &empty).unwrap(), Some(Vec::new()));

    let rid = "ee".repeat(32);
    store.put_receipt("alice", &rid, "job-1", b"receipt bytes").unwrap();
    store.put_receipt("alice", &rid, "job-2", b"other bytes").unwrap();
    assert_eq!(store.receipt(Some("alice"), &rid).unwrap().as_deref(), Some(&b"receipt bytes"[..]), "the first receipt stays");
    assert_eq!(store.receipt(None, &rid).unwrap().as_deref(), Some(&b"receipt bytes"[..]));
    assert_eq!(store.receipt(Some("bob"), &rid).unwrap(), None, "receipts are per tenant");
    assert_eq!(store.receipt(None, &"ff".repeat(32)).unwrap(), None);

    let before = now_ns();
    let (token, secret) = store.create_token(Scope::Submit, "alice").unwrap();
    assert_eq!((token.scope, token.tenant.as_str()), (Scope::Submit, "alice"));
    assert_eq!(token.id.len(), 16);
    assert!(token.created_ns >= before);
    let hex_part = secret.strip_prefix("zkaudit_").unwrap_or_else(|| panic!("secret {secret}"));
    assert_eq!(hex_part.len(), 64);
    assert!(hex_part.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(store.token(&secret).unwrap(), Some(token.clone()));
    assert_eq!(store.token(&format!("zkaudit_{}", "0".repeat(64))).unwrap(), None, "an unknown secret");
    let (admin, admin_secret) = store.create_token(Scope::Admin, "ops").unwrap();
    assert_ne!(admin.id, token.id);
    assert_ne!(admin_secret, secret);

    assert!(store.revoke_token(&token.id).unwrap());
    assert_eq!(store.token(&secret).unwrap(), None, "a revoked token");
    assert!(!store.revoke_token(&token.id).unwrap(), "revoked already");
    assert!(!store.revoke_token("0123456789abcdef").unwrap(), "an unknown token");
    assert_eq!(store.token(&admin_secret).unwrap(), Some(admin), "other tokens stay");
}

fn idempotency_keys_are_claimed_once_per_tenant(store: &Store) {
    let (body, other) = (sha256_hex(b"body"), sha256_hex(b"other"));
    assert_eq!(store.claim_idempotency_key("alice", "k", &body, 7).unwrap(), Idempotent::New);
    // Claimed and not answered: pending, with the log size it started at,
    // whoever asks with the same body; another body is a mismatch.
    assert_eq!(store.claim_idempotency_key("alice", "k", &body, 9).unwrap(), Idempotent::Pending { tree_size_before: 7 });
    assert_eq!(store.claim_idempotency_key("alice", "k", &other, 9).unwrap(), Idempotent::Mismatch);
    // Keys are per tenant.
    assert_eq!(store.claim_idempotency_key("bob", "k", &other, 9).unwrap(), Idempotent::New);
    // Released (the request failed before changing anything): new again.
    store.release_idempotency_key("bob", "k").unwrap();
    assert_eq!(store.claim_idempotency_key("bob", "k", &body, 10).unwrap(), Idempotent::New);
    // Answered: the answer, every time; release no longer forgets it.
    let answer = json!({"first_index": 7, "count": 2, "tree_size": 9, "root_hash": "ab".repeat(32)});
    store.complete_idempotency_key("alice", "k", &answer).unwrap();
    store.release_idempotency_key("alice", "k").unwrap();
    for _ in 0..2 {
        assert_eq!(store.claim_idempotency_key("alice", "k", &body, 11).unwrap(), Idempotent::Done(answer.clone()));
    }
    assert_eq!(store.claim_idempotency_key("alice", "k", &other, 11).unwrap(), Idempotent::Mismatch);
    assert_eq!(store.claim_idempotency_key("bob", "k", &body, 11).unwrap(), Idempotent::Pending { tree_size_before: 10 });
}

fn succeeded_proofs_are_recorded_and_stored_once(store: &Store) {
    let proven = |worker: &str, receipt: Option<&str>| {
        let job = submit(store, &new_job("alice", &[], 1));
        claim(store, worker, &job.id);
        tick();
        let f = Finish { receipt_id: receipt.map(str::to_owned), ..finish_as(State::Succeeded) };
        assert!(store.finish(&job.id, worker, &f).unwrap());
        job.id
    };
    let a = proven("w1", Some(&"aa".repeat(32)));
    let b = proven("w1", Some(&"bb".repeat(32)));
    // Succeeded without a receipt (an execute-only run): nothing to record.
    proven("w1", None);
    // Failed: nothing to record.
    let failed = submit(store, &new_job("alice", &[], 1));
    claim(store, "w1", &failed.id);
    assert!(store.finish(&failed.id, "w1", &finish_as(State::Failed)).unwrap());

    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(ids(store.unrecorded_proofs(10).unwrap()), [a.as_str(), b.as_str()], "oldest first, proofs only");
    assert_eq!(ids(store.unrecorded_proofs(1).unwrap()), [a.as_str()], "at most the limit");
    assert!(store.set_recorded(&a, 5).unwrap());
    assert!(!store.set_recorded(&a, 6).unwrap(), "only the first mark takes effect");
    assert_eq!(get(store, &a).ledger_index, Some(5));
    assert_eq!(ids(store.unrecorded_proofs(10).unwrap()), [b.as_str()]);
    assert!(store.set_recorded(&b, 6).unwrap());
    assert!(store.unrecorded_proofs(10).unwrap().is_empty());

    // Recorded proofs go to content-addressed storage, once each.
    assert_eq!(ids(store.unstored_proofs(10).unwrap()), [a.as_str(), b.as_str()]);
    assert_eq!(ids(store.unstored_proofs(1).unwrap()), [a.as_str()], "at most the limit");
    let url = format!("http://127.0.0.1:1/blossom/{}", "aa".repeat(32));
    assert!(store.set_stored(&a, &url).unwrap());
    assert!(!store.set_stored(&a, "ipfs://other").unwrap(), "only the first reference takes effect");
    assert_eq!(get(store, &a).proof_ref.as_deref(), Some(url.as_str()));
    assert_eq!(ids(store.unstored_proofs(10).unwrap()), [b.as_str()]);
    assert!(store.set_stored(&b, "ipfs://bafkreib").unwrap());
    assert!(store.unstored_proofs(10).unwrap().is_empty());
}

/// The token cache answers from the store once, then from memory for
/// `TOKEN_CACHE_TTL`: a token revoked meanwhile is still accepted from the
/// cache (the documented window), an unknown secret is remembered as
/// unknown, and another secret is looked up on its own.
#[test]
fn token_cache_remembers_lookups_within_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path().join("jobs.db").to_str().unwrap()).unwrap());
    let cache = zkaudit_jobs::TokenCache::new(std::sync::Arc::clone(&store));
    let (token, secret) = store.create_token(Scope::Submit, "alice").unwrap();
    let unknown = format!("zkaudit_{}", "0".repeat(64));

    assert_eq!(cache.cached(&secret), None, "nothing cached before the first lookup");
    assert_eq!(cache.lookup(&secret).unwrap(), Some(token.clone()));
    assert_eq!(cache.lookup(&unknown).unwrap(), None);
    assert!(store.revoke_token(&token.id).unwrap());
    assert_eq!(store.token(&secret).unwrap(), None, "the store knows it is revoked");
    assert_eq!(cache.cached(&secret), Some(Some(token.clone())), "the cache answers within its TTL");
    assert_eq!(cache.lookup(&secret).unwrap(), Some(token), "and lookup uses it");
    assert_eq!(cache.cached(&unknown), Some(None), "an unknown secret is cached as unknown");

    let (other, other_secret) = store.create_token(Scope::Read, "bob").unwrap();
    assert_eq!(cache.cached(&other_secret), None);
    assert_eq!(cache.lookup(&other_secret).unwrap(), Some(other));
    assert!(zkaudit_jobs::TOKEN_CACHE_TTL >= Duration::from_secs(1), "the window is long enough for this test's steps");
}
