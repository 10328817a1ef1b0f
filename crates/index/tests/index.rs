//! The index against real databases: SQLite files and a PostgreSQL server
//! started on loopback for the test.

use std::path::{Path, PathBuf};

use zkaudit_index::{Backend, Error, Postgres, Query, Selector, Sqlite};
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

/// Every lookup the auditor uses, over the telecoms and trading streams.
fn check_lookups(index: &mut dyn Backend) {
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
    let one = index.select(&Query::new(Selector::Index(5))).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].leaf_index, 5);
    assert!(index.select(&Query::new(Selector::Index(10_000))).unwrap().is_empty());
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
    check_lookups(index);
    let incremental = index.select(&Query::new(Selector::All)).unwrap();
    // ... and rebuilt from the tiles alone: identical.
    let r = zkaudit_index::rebuild(index, &LogReader::open(dir).unwrap(), &mut |_| {}).unwrap();
    assert_eq!(r.added, 85);
    assert_eq!(index.select(&Query::new(Selector::All)).unwrap(), incremental);
    check_lookups(index);
}

/// Two processes appending to one ledger both sync its index: the one
/// that read the position before the other wrote must skip, not repeat.
fn a_stale_writer_skips_what_is_indexed(a: &mut dyn Backend, b: &mut dyn Backend, dir: &Path) {
    append_stream(dir, "gmp");
    assert_eq!(b.position().unwrap(), None, "b reads the position first");
    sync(a, dir);
    let rows = a.select(&Query::new(Selector::All)).unwrap();
    let to = a.position().unwrap().unwrap();
    b.write(&rows, to).unwrap();
    assert_eq!(b.select(&Query::new(Selector::All)).unwrap(), rows);
    assert_eq!(b.count(&Query::new(Selector::MetaKey("batch_id".into()))).unwrap(), a.count(&Query::new(Selector::MetaKey("batch_id".into()))).unwrap());
    // Half stale: rows from the middle on, past the end.
    append_stream(dir, "itil");
    sync(a, dir);
    let all = a.select(&Query::new(Selector::All)).unwrap();
    b.write(&all[rows.len() / 2..], a.position().unwrap().unwrap()).unwrap();
    assert_eq!(b.select(&Query::new(Selector::All)).unwrap(), all);
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
    let before = index.select(&Query::new(Selector::All)).unwrap();
    drop(index);
    // Delete the index files; a new one built from the log answers the same.
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    let mut index = Sqlite::open(&path).unwrap();
    assert_eq!(index.position().unwrap(), None);
    sync(&mut index, &dir);
    assert_eq!(index.select(&Query::new(Selector::All)).unwrap(), before);
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
    assert_eq!(index.count(&Query::new(Selector::Type("batch_record".into()))).unwrap(), 3);
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
        assert_eq!(index.select(&q).unwrap(), lite.select(&q).unwrap(), "{q:?}");
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
