//! The application layer's use cases against real components: a ledger
//! directory on disk with its SQLite index, and a SQLite job store.
//! (Proving and the server's recording of proofs are tested with real
//! proofs in `crates/cli/tests/server.rs`.)

use zkaudit_app::claim::{ProofClaim, ProofMetadata};
use zkaudit_app::ledger::{IdempotentAppend, Ledger};
use zkaudit_event::{Digest, Event, ProofRef, Timestamp};
use zkaudit_index::{Query, Selector};
use zkaudit_jobs::{Idempotent, Store};

fn event(n: u32) -> Vec<u8> {
    let line = format!(
        r#"{{"version":"1.0","timestamp":"2026-01-01T00:00:{:02}Z","layer":"application","type":"t{n}","input":"sha256:{}","output":"sha256:{}","metadata":{{"n":{n}}}}}"#,
        n % 60,
        "11".repeat(32),
        "22".repeat(32)
    );
    Event::from_entry(line.as_bytes()).unwrap().canonical_bytes().unwrap()
}

fn setup() -> (tempfile::TempDir, Ledger, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    zkaudit_tlog::init(&dir, "test.example/app").unwrap();
    let ledger = Ledger::open(&dir, None).unwrap();
    let store = Store::open(tmp.path().join("jobs.sqlite").to_str().unwrap()).unwrap();
    (tmp, ledger, store)
}

/// Events in the index as it stands (no catching up).
fn indexed(ledger: &Ledger) -> u64 {
    let mut index = zkaudit_index::open(ledger.index_spec()).unwrap();
    index.count(&Query::new(Selector::All), u64::MAX).unwrap()
}

#[test]
fn appends_do_not_wait_for_the_index_and_queries_catch_it_up() {
    let (_tmp, ledger, _) = setup();
    let a = ledger.append(vec![event(0), event(1), event(2)]).unwrap();
    assert_eq!((a.first_index, a.count, a.tree_size), (0, 3, 3));
    assert_eq!(indexed(&ledger), 0, "acknowledged before the index");
    assert_eq!(ledger.select(&Query::new(Selector::All)).unwrap().len(), 3);
    assert_eq!(indexed(&ledger), 3);
    let b = ledger.append(vec![event(3)]).unwrap();
    assert_eq!((b.first_index, b.tree_size), (3, 4));
    assert_eq!(indexed(&ledger), 3);
    let all = ledger.select(&Query::new(Selector::All)).unwrap();
    assert_eq!(all.iter().map(|e| e.leaf_index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(indexed(&ledger), 4);
    assert_eq!(ledger.dir().index_sqlite(), ledger.dir().root().join("index.sqlite"));
}

#[test]
fn an_index_follower_keeps_up_off_the_append_path() {
    let (_tmp, ledger, _) = setup();
    let follower = zkaudit_app::ledger::IndexFollower::spawn(ledger.dir().root(), ledger.index_spec(), std::time::Duration::from_millis(20)).unwrap();
    ledger.append((0..1000).map(event).collect()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while indexed(&ledger) < 1000 {
        assert!(std::time::Instant::now() < deadline, "the follower did not index the append: {:?}", follower.last_error());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(follower.last_error(), None);
    drop(follower);
    assert_eq!(indexed(&ledger), 1000);
}

#[test]
fn idempotent_appends_happen_once_per_key_and_body() {
    let (_tmp, ledger, store) = setup();
    let body = b"the request body";
    let first = ledger.append_idempotent(&store, "alice", "k1", body, vec![event(0), event(1)]).unwrap();
    let IdempotentAppend::Appended(ack) = first else { panic!("{first:?}") };
    assert_eq!((ack.first_index, ack.count, ack.tree_size), (0, 2, 2));
    // A retry: the first answer, nothing appended.
    let again = ledger.append_idempotent(&store, "alice", "k1", body, vec![event(0), event(1)]).unwrap();
    assert_eq!(again, IdempotentAppend::Replayed(ack));
    assert_eq!(ledger.reader().unwrap().size(), 2);
    // The same key with another body is refused; another tenant's key is its own.
    assert_eq!(ledger.append_idempotent(&store, "alice", "k1", b"other", vec![event(9)]).unwrap(), IdempotentAppend::KeyReused);
    assert_eq!(ledger.reader().unwrap().size(), 2);
    let bob = ledger.append_idempotent(&store, "bob", "k1", body, vec![event(5)]).unwrap();
    assert!(matches!(bob, IdempotentAppend::Appended(a) if a.first_index == 2), "{bob:?}");
    assert_eq!(ledger.select(&Query::new(Selector::All)).unwrap().len(), 3);
}

#[test]
fn a_retry_after_a_crash_between_append_and_answer_finds_the_batch() {
    let (_tmp, ledger, store) = setup();
    ledger.append(vec![event(0)]).unwrap();
    // A process took the key, appended, and stopped before storing its answer.
    let body = b"batch";
    assert_eq!(store.claim_idempotency_key("alice", "k", &sha256_hex(body), 1).unwrap(), Idempotent::New);
    let batch = vec![event(1), event(2)];
    ledger.append(batch.clone()).unwrap();
    ledger.append(vec![event(3)]).unwrap();
    // The retry finds the batch at 1..3 and appends nothing.
    let r = ledger.append_idempotent(&store, "alice", "k", body, batch.clone()).unwrap();
    let IdempotentAppend::Replayed(ack) = r else { panic!("{r:?}") };
    assert_eq!((ack.first_index, ack.count, ack.tree_size), (1, 2, 4));
    assert_eq!(ledger.reader().unwrap().size(), 4);
    // Had it stopped before appending, the retry appends it once.
    assert_eq!(store.claim_idempotency_key("alice", "k2", &sha256_hex(b"b2"), 4).unwrap(), Idempotent::New);
    let r = ledger.append_idempotent(&store, "alice", "k2", b"b2", vec![event(7)]).unwrap();
    assert!(matches!(r, IdempotentAppend::Appended(a) if a.first_index == 4), "{r:?}");
    assert_eq!(
        ledger.append_idempotent(&store, "alice", "k2", b"b2", vec![event(7)]).unwrap(),
        IdempotentAppend::Replayed(match r {
            IdempotentAppend::Appended(a) => a,
            _ => unreachable!(),
        })
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn the_proof_event_round_trips_through_its_type() {
    let claim = ProofClaim {
        timestamp: Timestamp::parse("2026-12-02T10:00:00.5Z").unwrap(),
        plan_hash: [1; 32],
        output_hash: [2; 32],
        metadata: ProofMetadata {
            plan_id: "income-threshold".into(),
            job_request_hash: format!("sha256:{}", "33".repeat(32)),
            data_root: "44".repeat(32),
            records: 10,
            total_cycles: 262_144,
            user_cycles: 124_436,
            segments: 1,
            prove_millis: 95_000,
            program_version: "0.1.0".into(),
            job_id: Some("0123456789abcdef0123456789abcdef".into()),
        },
        proof: ProofRef { kind: "composite".into(), receipt_digest: Digest([5; 32]), image_id: "66".repeat(32), journal_digest: Digest([7; 32]) },
    };
    let entry = claim.entry().unwrap();
    let text = String::from_utf8(entry.clone()).unwrap();
    for key in ["\"type\":\"zk_proof\"", "\"layer\":\"computation\"", "\"planId\":\"income-threshold\"", "\"jobId\":", "\"dataRoot\":\"4444"] {
        assert!(text.contains(key), "{key} in {text}");
    }
    let back = ProofClaim::try_from(&Event::from_entry(&entry).unwrap()).unwrap();
    assert_eq!(back, claim);
    assert_eq!(back.data_root().unwrap(), [0x44; 32]);

    // Not a proof event, or a malformed one, is an error naming what is wrong.
    let other = Event::from_entry(&event(0)).unwrap();
    assert!(ProofClaim::try_from(&other).unwrap_err().to_string().contains("not a `zk_proof` event"));
    let mut e = claim.to_event().unwrap();
    e.metadata.remove("totalCycles");
    assert!(ProofClaim::try_from(&e).unwrap_err().to_string().contains("totalCycles"));
    let mut e = claim.to_event().unwrap();
    e.metadata.insert("dataRoot".into(), "xyz".into());
    assert!(ProofClaim::try_from(&e).unwrap_err().to_string().contains("dataRoot"));
    let mut e = claim.to_event().unwrap();
    e.proof = None;
    assert!(matches!(ProofClaim::try_from(&e), Err(zkaudit_app::claim::ClaimError::NoProof)));
}
