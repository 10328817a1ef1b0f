//! The index against real databases: SQLite files and a PostgreSQL server
//! started on loopback for the test.

use std::path::{Path, PathBuf};

use zkaudit_index::{Backend, Error, IndexedEvent, Postgres, Query, Row, Selector, Sqlite};
use zkaudit_tlog::{Log, LogReader};

#[path = "../../../tests-support/events.rs"]
mod events;
use events::append_stream;

fn new_log() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    zkaudit_tlog::init(&dir, "index.test/log").unwrap();
    (tmp, dir)
}

fn sync(index: &mut dyn Backend, dir: &Path) -> zkaudit_index::Synced {
    zkaudit_index::sync(index, &LogReader::open(dir).unwrap(), &mut |_| {}).unwrap()
}

/// An index with the log it answers from.
struct At<'a>(&'a mut dyn Backend, LogReader);

impl At<'_> {
    fn select(&mut self, q: &Query) -> Result<Vec<IndexedEvent>, Error> {
        zkaudit_index::select(self.0, &self.1, q)
    }
    fn count(&mut self, q: &Query) -> Result<u64, Error> {
        zkaudit_index::count(self.0, &self.1, q)
    }
}

fn at<'a>(index: &'a mut dyn Backend, dir: &Path) -> At<'a> {
    At(index, LogReader::open(dir).unwrap())
}

/// The index rows of every entry of the log in `dir`.
fn rows(dir: &Path) -> Vec<Row> {
    let log = LogReader::open(dir).unwrap();
    let mut rows = Vec::new();
    log.for_each_entry(0, log.size(), |i, b| {
        rows.push(Row::from_entry(i, b).unwrap());
        Ok(())
    })
    .unwrap();
    rows
}

/// Every lookup the auditor uses, over the telecoms and trading streams.
fn check_lookups(index: &mut dyn Backend, dir: &Path) {
    let index = &mut at(index, dir);
    let all = index.select(&Query::new(Selector::All)).unwrap();
    assert_eq!(all.len(), 71 + 14);
    assert!(all.windows(2).all(|w| w[0].leaf_index + 1 == w[1].leaf_index));

    let failovers = index.select(&Query::new(Selector::Type("failover".into()))).unwrap();
    assert_eq!(failovers.len(), 3);
    let ms: Vec<&str> = failovers.iter().map(|e| e.metadata.iter().find(|(k, _)| k == "duration_ms").map(|(_, v)| v.as_str()).unwrap()).collect();
    assert_eq!(ms, ["18", "42", "73"]);
    assert_eq!(index.count(&Query::new(Selector::Type("failover".into()))).unwrap(), 3);

    // A time range: 2026-01-10T00:00Z .. 2026-01-20T00:00Z holds 10 daily checks per
    // service, both outages (down and up events) and one failover.
    let mut q = Query::new(Selector::All);
    q.from_ns = Some(1_768_003_200_000_000_000);
    q.to_ns = Some(1_768_867_200_000_000_000);
    let window = index.select(&q).unwrap();
    assert_eq!(window.len(), 20 + 4 + 1);
    assert!(window.iter().all(|e| e.timestamp_ns >= q.from_ns.unwrap() && e.timestamp_ns < q.to_ns.unwrap()));
    q.limit = Some(5);
    assert_eq!(index.select(&q).unwrap().len(), 5);
    assert_eq!(index.count(&q).unwrap(), 25, "count ignores the limit");

    // Layer, digests, parents, metadata keys, precision.
    assert_eq!(index.count(&Query::new(Selector::Layer("application".into()))).unwrap(), 14);
    let executed = index.select(&Query::new(Selector::Type("order_executed".into()))).unwrap();
    let first = &executed[0];
    let by_parent = index.select(&Query::new(Selector::Parent(first.parents[0].clone()))).unwrap();
    assert_eq!(by_parent, vec![first.clone()]);
    let producers = index.select(&Query::new(Selector::Output(first.input.clone()))).unwrap();
    assert_eq!(producers.len(), 1);
    assert_eq!(producers[0].kind, "order_submitted");
    assert_eq!(index.select(&Query::new(Selector::Input(first.input.clone()))).unwrap(), vec![first.clone()]);
    assert_eq!(index.count(&Query::new(Selector::MetaKey("latency_ns".into()))).unwrap(), 5);
    let coarse: Vec<u64> = executed.iter().map(|e| e.precision_ns).collect();
    assert_eq!(coarse, [1, 1, 1, 1_000_000, 1_000]);
    assert_eq!(index.count(&Query::new(Selector::WithProof)).unwrap(), 0);
    check_activity(index, &all);
    let one = index.select(&Query::new(Selector::Index(5))).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].leaf_index, 5);
    assert!(index.select(&Query::new(Selector::Index(10_000))).unwrap().is_empty());
}

/// The activity histogram equals counting the selected events by hand,
/// whether whole hours come from the hourly counts (an hour-aligned start
/// and whole-hour buckets, with or without a partial last hour) or the
/// events are counted (any other window); nonsense is refused.
fn check_activity(index: &mut At<'_>, all: &[IndexedEvent]) {
    const HOUR: i64 = 3_600_000_000_000;
    const DAY: i64 = 24 * HOUR;
    let from = 1_768_003_200_000_000_000; // 2026-01-10T00:00Z
    let to = 1_768_867_200_000_000_000; // 2026-01-20T00:00Z
    for (f, t, bucket) in [(from, to, DAY), (from, to + 30 * 60_000_000_000, DAY), (from, to, 7 * HOUR), (from + 1, to, DAY), (from, to, 90 * 60_000_000_000)] {
        let got = zkaudit_index::activity(index.0, &index.1, f, t, bucket).unwrap();
        let mut want = std::collections::BTreeMap::<(u64, String, String), u64>::new();
        for e in all.iter().filter(|e| (f..t).contains(&e.timestamp_ns)) {
            *want.entry((((e.timestamp_ns - f) / bucket) as u64, e.layer.clone(), e.kind.clone())).or_default() += 1;
        }
        let got_map: std::collections::BTreeMap<_, _> = got.iter().map(|c| ((c.bucket, c.layer.clone(), c.kind.clone()), c.count)).collect();
        assert_eq!(got_map, want, "window [{f}, {t}) by {bucket} ns");
        assert_eq!(got.iter().map(|c| c.count).sum::<u64>(), want.values().sum::<u64>());
    }
    let got = zkaudit_index::activity(index.0, &index.1, from, to, DAY).unwrap();
    assert_eq!(got.iter().map(|c| c.count).sum::<u64>(), 25);
    assert!(got.iter().all(|c| c.bucket < 10));
    let span = (all.iter().map(|e| e.timestamp_ns).min().unwrap(), all.iter().map(|e| e.timestamp_ns).max().unwrap());
    assert_eq!(index.0.time_span().unwrap(), Some(span));
    assert!(matches!(zkaudit_index::activity(index.0, &index.1, to, from, DAY), Err(Error::Range(_))));
    assert!(matches!(zkaudit_index::activity(index.0, &index.1, from, to, 0), Err(Error::Range(_))));
    assert!(matches!(zkaudit_index::activity(index.0, &index.1, from, to, 1), Err(Error::Range(_))), "10^14 buckets are refused");
}

fn incremental_equals_rebuild(index: &mut dyn Backend, dir: &Path) {
    append_stream(dir, "telecoms");
    let s = sync(index, dir);
    assert_eq!((s.added, s.position.tree_size), (71, 71));
    // Built incrementally, in two steps ...
    append_stream(dir, "trading");
    let s = sync(index, dir);
    assert_eq!((s.added, s.position.tree_size), (14, 85));
    assert_eq!(sync(index, dir).added, 0, "a second sync adds nothing");
    check_lookups(index, dir);
    let incremental = at(index, dir).select(&Query::new(Selector::All)).unwrap();
    // ... and rebuilt from the tiles alone: identical.
    let r = zkaudit_index::rebuild(index, &LogReader::open(dir).unwrap(), &mut |_| {}).unwrap();
    assert_eq!(r.added, 85);
    assert_eq!(at(index, dir).select(&Query::new(Selector::All)).unwrap(), incremental);
    check_lookups(index, dir);
}

/// Two processes appending to one ledger both sync its index: the one
/// that read the position before the other wrote must skip, not repeat.
fn a_stale_writer_skips_what_is_indexed(a: &mut dyn Backend, b: &mut dyn Backend, dir: &Path) {
    append_stream(dir, "gmp");
    assert_eq!(b.position().unwrap(), None, "b reads the position first");
    sync(a, dir);
    let first = rows(dir);
    let to = a.position().unwrap().unwrap();
    b.write(&first, to).unwrap();
    let all_a = at(a, dir).select(&Query::new(Selector::All)).unwrap();
    assert_eq!(at(b, dir).select(&Query::new(Selector::All)).unwrap(), all_a);
    let batch = Query::new(Selector::MetaKey("batch_id".into()));
    assert_eq!(at(b, dir).count(&batch).unwrap(), at(a, dir).count(&batch).unwrap());
    // Half stale: rows from the middle on, past the end.
    append_stream(dir, "itil");
    sync(a, dir);
    let all = rows(dir);
    b.write(&all[first.len() / 2..], a.position().unwrap().unwrap()).unwrap();
    assert_eq!(at(b, dir).select(&Query::new(Selector::All)).unwrap(), at(a, dir).select(&Query::new(Selector::All)).unwrap());
    assert_eq!(b.count(&Query::new(Selector::All), u64::MAX).unwrap(), all.len() as u64, "nothing indexed twice");
}

#[test]
fn concurrent_syncs_of_one_sqlite_index() {
    let (tmp, dir) = new_log();
    let path = tmp.path().join("index.sqlite");
    let (mut a, mut b) = (Sqlite::open(&path).unwrap(), Sqlite::open(&path).unwrap());
    a_stale_writer_skips_what_is_indexed(&mut a, &mut b, &dir);
}

#[test]
fn sqlite_incremental_rebuild_and_deleted_index() {
    let (tmp, dir) = new_log();
    let path = tmp.path().join("index.sqlite");
    let mut index = Sqlite::open(&path).unwrap();
    incremental_equals_rebuild(&mut index, &dir);
    let before = at(&mut index, &dir).select(&Query::new(Selector::All)).unwrap();
    drop(index);
    // Delete the index files; a new one built from the log answers the same.
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    let mut index = Sqlite::open(&path).unwrap();
    assert_eq!(index.position().unwrap(), None);
    sync(&mut index, &dir);
    assert_eq!(at(&mut index, &dir).select(&Query::new(Selector::All)).unwrap(), before);
}

#[test]
fn an_index_from_another_log_is_refused() {
    let (tmp, dir) = new_log();
    append_stream(&dir, "gmp");
    let mut index = Sqlite::open(&tmp.path().join("index.sqlite")).unwrap();
    sync(&mut index, &dir);

    // Same size, different entries.
    let other = tmp.path().join("other");
    zkaudit_tlog::init(&other, "index.test/other").unwrap();
    append_stream(&other, "trading");
    let e = zkaudit_index::sync(&mut index, &LogReader::open(&other).unwrap(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::Diverged { size: 14, .. }), "{e}");
    // Smaller than the index.
    let small = tmp.path().join("small");
    zkaudit_tlog::init(&small, "index.test/small").unwrap();
    let e = zkaudit_index::sync(&mut index, &LogReader::open(&small).unwrap(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::Ahead { indexed: 14, log: 0 }), "{e}");
    // Nothing was changed by the refusals.
    assert_eq!(at(&mut index, &dir).count(&Query::new(Selector::Type("batch_record".into()))).unwrap(), 3);
}

#[test]
fn an_entry_that_is_not_an_event_stops_the_sync_at_its_index() {
    let (tmp, dir) = new_log();
    append_stream(&dir, "gmp");
    Log::open(&dir).unwrap().append(vec![b"{\"not\":\"an event\"}".to_vec()]).unwrap();
    let mut index = Sqlite::open(&tmp.path().join("index.sqlite")).unwrap();
    let e = zkaudit_index::sync(&mut index, &LogReader::open(&dir).unwrap(), &mut |_| {}).unwrap_err();
    assert!(matches!(&e, Error::BadEntry { index: 14, .. }), "{e}");
    assert_eq!(index.position().unwrap().unwrap().tree_size, 14, "the 14 good events before it are kept");
}

#[path = "../../../tests-support/pg.rs"]
mod pg;
use pg::PgServer;

#[test]
fn postgres_answers_exactly_as_sqlite() {
    let pg = PgServer::start();
    let (tmp, dir) = new_log();
    let mut index = Postgres::connect(&pg.url).unwrap();
    incremental_equals_rebuild(&mut index, &dir);

    let mut lite = Sqlite::open(&tmp.path().join("index.sqlite")).unwrap();
    sync(&mut lite, &dir);
    for sel in [Selector::All, Selector::Type("order_executed".into()), Selector::MetaKey("service".into()), Selector::Layer("network".into())] {
        let q = Query::new(sel);
        assert_eq!(at(&mut index, &dir).select(&q).unwrap(), at(&mut lite, &dir).select(&q).unwrap(), "{q:?}");
    }
    // The opener picks PostgreSQL for a URL.
    let mut opened = zkaudit_index::open(&pg.url).unwrap();
    assert_eq!(opened.position().unwrap(), index.position().unwrap());

    // Two writers of one index, on a fresh database.
    let (_tmp2, dir2) = new_log();
    let mut c = Postgres::connect(&pg.url).unwrap();
    c.reset().unwrap();
    let mut d = Postgres::connect(&pg.url).unwrap();
    a_stale_writer_skips_what_is_indexed(&mut c, &mut d, &dir2);
}

/// Canonical entry bytes of an event with these digests.
fn entry(kind: &str, input: &str, output: &str, parents: &[&str]) -> Vec<u8> {
    let line = serde_json::json!({
        "version": "1.0", "timestamp": "2026-12-03T10:00:00Z", "layer": "application", "type": kind,
        "input": input, "output": output, "metadata": {"k": 1}, "parents": parents,
    })
    .to_string();
    zkaudit_event::parse_jsonl(line.as_bytes(), "test").unwrap().remove(0)
}

#[test]
fn digests_sharing_their_index_key_are_told_apart_by_the_entries() {
    let (tmp, dir) = new_log();
    // The index files digests under their first 8 bytes: these two share them.
    let a = format!("sha256:{}{}", "ab".repeat(8), "00".repeat(24));
    let b = format!("sha256:{}{}", "ab".repeat(8), "11".repeat(24));
    assert_eq!(zkaudit_index::digest_key(&a), zkaudit_index::digest_key(&b));
    let other = format!("sha256:{}", "cd".repeat(32));
    Log::open(&dir).unwrap().append(vec![entry("first", &a, &a, &[&a]), entry("second", &b, &b, &[&b]), entry("third", &other, &other, &[])]).unwrap();
    let mut index = Sqlite::open(&tmp.path().join("index.sqlite")).unwrap();
    sync(&mut index, &dir);
    let mut index = at(&mut index, &dir);
    for (digest, kind) in [(&a, "first"), (&b, "second")] {
        for sel in [Selector::Input(digest.clone()), Selector::Output(digest.clone()), Selector::Parent(digest.clone())] {
            let got = index.select(&Query::new(sel.clone())).unwrap();
            assert_eq!(got.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), [kind], "{sel:?}");
            assert_eq!(index.count(&Query::new(sel.clone())).unwrap(), 1, "{sel:?}");
            // Under a limit of one, the collision does not take the match's place.
            let limited = Query { limit: Some(1), ..Query::new(sel.clone()) };
            assert_eq!(index.select(&limited).unwrap()[0].kind, kind, "{sel:?}");
        }
    }
    // A malformed digest selects nothing.
    assert!(index.select(&Query::new(Selector::Input("sha256:abab".into()))).unwrap().is_empty());
}

#[test]
fn an_index_of_the_previous_schema_is_replaced_and_rebuilt() {
    let (tmp, dir) = new_log();
    append_stream(&dir, "gmp");
    let path = tmp.path().join("index.sqlite");
    // The first schema: text columns, one metadata row per key.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE events (leaf_index INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, ts TEXT NOT NULL, precision_ns INTEGER NOT NULL,
           layer TEXT NOT NULL, type TEXT NOT NULL, input TEXT NOT NULL, output TEXT NOT NULL, proof_kind TEXT, receipt_digest TEXT,
           image_id TEXT, journal_digest TEXT);
         CREATE TABLE meta (leaf_index INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (leaf_index, key));
         CREATE TABLE position (id INTEGER PRIMARY KEY CHECK (id = 1), tree_size INTEGER NOT NULL, root_hash TEXT NOT NULL);
         INSERT INTO position VALUES (1, 14, 'ff');",
    )
    .unwrap();
    drop(old);
    let mut index = Sqlite::open(&path).unwrap();
    assert_eq!(index.position().unwrap(), None, "the old index is dropped");
    assert_eq!(sync(&mut index, &dir).added, 14);
    assert_eq!(at(&mut index, &dir).count(&Query::new(Selector::Type("batch_record".into()))).unwrap(), 3);
}
