//! Many concurrent appenders, threads and independent handles: indices stay
//! dense with no duplicates or gaps, and each acknowledged batch holds
//! exactly the submitted bytes.

mod common;

use std::sync::Arc;

use zkaudit_tlog::{fsck, read_vkey, Log, LogReader};

#[test]
fn concurrent_threads_and_handles_get_dense_disjoint_indices() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    zkaudit_tlog::init(dir, "test.zkaudit.invalid/log").unwrap();
    // Two handles with separate sequencers contend on the file lock, as two
    // processes would.
    let logs = [Arc::new(Log::open(dir).unwrap()), Arc::new(Log::open(dir).unwrap())];
    let results: Vec<(u64, Vec<Vec<u8>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let log = logs[(t % 2) as usize].clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for b in 0..40u64 {
                        let n = 1 + (t * 13 + b * 7) % 20;
                        let batch: Vec<Vec<u8>> = (0..n).map(|k| format!("t{t} b{b} k{k}").into_bytes()).collect();
                        let a = log.append(batch.clone()).unwrap();
                        assert_eq!(a.count, n);
                        assert!(a.first_index + n <= a.tree_size);
                        out.push((a.first_index, batch));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    drop(logs);
    let reader = LogReader::open(dir).unwrap();
    let total: u64 = results.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(reader.size(), total, "indices are dense: size equals entries acknowledged");
    let mut seen = vec![false; total as usize];
    for (first, batch) in &results {
        for (k, bytes) in batch.iter().enumerate() {
            let i = first + k as u64;
            assert!(!std::mem::replace(&mut seen[i as usize], true), "index {i} assigned twice");
            assert_eq!(&reader.entry(i).unwrap(), bytes, "index {i}");
        }
    }
    assert!(seen.iter().all(|&s| s), "no gaps");
    fsck::verify(dir, &read_vkey(dir).unwrap(), |_| {}).unwrap();
}

#[test]
fn reopened_log_continues_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    drop(common::build_log(dir, 700, &[300]));
    let log = Log::open(dir).unwrap();
    let a = log.append(vec![b"after reopen".to_vec()]).unwrap();
    assert_eq!((a.first_index, a.tree_size), (700, 701));
    let r = LogReader::open(dir).unwrap();
    assert_eq!(r.entry(700).unwrap(), b"after reopen");
    assert_eq!(r.entry(699).unwrap(), common::entry(699));
    assert!(log.append(vec![vec![0u8; 65_536]]).is_err(), "oversized entry rejected");
    assert_eq!(LogReader::open(dir).unwrap().size(), 701, "nothing from a rejected batch is written");
}
