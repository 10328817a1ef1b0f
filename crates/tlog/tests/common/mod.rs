//! Helpers shared by the ledger's integration tests.
#![allow(dead_code)]

use std::path::Path;

use zkaudit_tlog::Log;

/// Entry `i` of a test log: distinct, with a length that varies.
pub fn entry(i: u64) -> Vec<u8> {
    let mut e = format!("{{\"entry\":{i}}}").into_bytes();
    e.resize(e.len() + (i as usize * 7) % 23, b' ');
    e
}

/// Creates a log and appends `entry(0..n)` in batches of the given sizes
/// (cycled), so that the log has full and partial tiles and stale partials.
pub fn build_log(dir: &Path, n: u64, batches: &[u64]) -> Log {
    zkaudit_tlog::init(dir, "test.zkaudit.invalid/log").unwrap();
    let log = Log::open(dir).unwrap();
    let mut i = 0;
    let mut k = 0;
    while i < n {
        let b = batches[k % batches.len()].min(n - i);
        let a = log.append((i..i + b).map(entry).collect()).unwrap();
        assert_eq!(a.first_index, i);
        assert_eq!(a.tree_size, i + b);
        i += b;
        k += 1;
    }
    log
}
