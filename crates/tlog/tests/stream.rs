//! Streamed appends: many blocks committed as one atomic batch, an
//! abandoned stream commits nothing, and batches and streams interleave.

use std::sync::Arc;

use zkaudit_tlog::{fsck, read_vkey, Error, Leaves, Log, LogReader};

/// `entries` as one block.
fn leaves(entries: &[Vec<u8>]) -> Leaves {
    let mut block = Leaves::new();
    for e in entries {
        block.push(e).unwrap();
    }
    block
}

fn entries(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag} entry {i} {}", "x".repeat(i % 97)).into_bytes()).collect()
}

#[test]
fn a_stream_is_one_atomic_commit_and_an_abandoned_one_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    zkaudit_tlog::init(dir, "test.zkaudit.invalid/stream").unwrap();
    let log = Arc::new(Log::open(dir).unwrap());
    log.append(entries("before", 3)).unwrap();

    // Abandoned after 70,000 entries (past the writer's mid-batch flush):
    // the checkpoint does not move.
    let mut s = log.stream().unwrap();
    for block in entries("abandoned", 70_000).chunks(1000) {
        s.push(leaves(block));
    }
    assert_eq!(s.len(), 70_000);
    drop(s);
    assert_eq!(LogReader::open(dir).unwrap().size(), 3);

    // A batch from another thread waits for a stream and lands after it.
    let streamed = entries("streamed", 1000);
    let mut s = log.stream().unwrap();
    let other = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.append(entries("batch", 5)).unwrap())
    };
    // Blocks of 77 split off one block (the last one shorter).
    let mut block = leaves(&streamed);
    assert!(block.split_off(1000).is_empty());
    while !block.is_empty() {
        let rest = block.split_off(77);
        assert_eq!(block.len(), 77.min(block.len() + rest.len()));
        s.push(std::mem::replace(&mut block, rest));
    }
    let a = s.finish().unwrap();
    assert_eq!((a.first_index, a.count, a.tree_size), (3, 1000, 1003));
    let b = other.join().unwrap();
    assert_eq!((b.first_index, b.count, b.tree_size), (1003, 5, 1008));

    let r = LogReader::open(dir).unwrap();
    for (i, e) in streamed.iter().enumerate() {
        assert_eq!(&r.entry(3 + i as u64).unwrap(), e);
    }
    fsck::verify(dir, &read_vkey(dir).unwrap(), |_| {}).unwrap();

    // An entry over the limit is refused where the block is built, naming
    // its position in the block; nothing is added.
    let mut block = leaves(&entries("ok", 10));
    let e = block.push(&vec![b'x'; 70_000]).unwrap_err();
    assert!(matches!(e, Error::EntryTooLarge { position: 10, len: 70_000 }), "{e}");
    assert_eq!(block.len(), 10);
    assert_eq!(LogReader::open(dir).unwrap().size(), 1008);
    // The log still appends.
    assert_eq!(log.append(entries("after", 1)).unwrap().first_index, 1008);
}

/// A large commit (over 64 files, bundles over 32 KiB) is written around
/// the page cache where the file system allows it, and a scan reads full
/// bundles the same way, ahead, on a second thread: every entry reads
/// back as appended, whether scanned, fetched one by one, or checked by
/// fsck; a scan stops at `f`'s first error.
#[test]
fn a_large_commit_reads_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    zkaudit_tlog::init(dir, "test.zkaudit.invalid/large").unwrap();
    let log = Log::open(dir).unwrap();
    let big: Vec<Vec<u8>> = (0..40_000).map(|i| format!("large entry {i} {}", "y".repeat(150 + i % 90)).into_bytes()).collect();
    log.append(entries("small", 100)).unwrap();
    let a = log.append(big.clone()).unwrap();
    assert_eq!((a.first_index, a.tree_size), (100, 40_100));
    let r = LogReader::open(dir).unwrap();
    let mut scanned = Vec::new();
    r.for_each_entry(100, 40_100, |_, e| {
        scanned.push(e.to_vec());
        Ok(())
    })
    .unwrap();
    assert!(scanned == big, "the scan reads back what was appended");
    for i in [0, 255, 256, 39_999] {
        assert_eq!(r.entry(100 + i).unwrap(), big[i as usize]);
    }
    let mut seen = 0;
    let e = r.for_each_entry(0, 40_100, |i, _| {
        seen += 1;
        if i == 30_000 {
            return Err(Error::Abandoned);
        }
        Ok(())
    });
    assert!(matches!(e, Err(Error::Abandoned)) && seen == 30_001, "{e:?} after {seen}");
    fsck::verify(dir, &read_vkey(dir).unwrap(), |_| {}).unwrap();
}
