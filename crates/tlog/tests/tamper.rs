//! Tamper detection: every single-byte flip, truncation or deletion of a
//! stored file is reported by fsck, naming the exact leaf index or path.

mod common;

use std::path::Path;

use zkaudit_tlog::fsck::{self, FsckError};
use zkaudit_tlog::layout::{tiles_for_size, TileId, TILE_WIDTH};
use zkaudit_tlog::{read_vkey, CHECKPOINT_FILE};

fn fsck_err(dir: &Path) -> FsckError {
    let key = read_vkey(dir).unwrap();
    fsck::verify(dir, &key, |_| {}).expect_err("fsck accepted a damaged log")
}

/// Entry index that byte `offset` of a bundle belongs to (its length prefix included).
fn entry_at(bundle: &[u8], offset: usize) -> usize {
    let (mut pos, mut k) = (0, 0);
    loop {
        let len = usize::from(u16::from_be_bytes([bundle[pos], bundle[pos + 1]]));
        if offset < pos + 2 + len {
            return k;
        }
        pos += 2 + len;
        k += 1;
    }
}

/// Asserts that `err` names leaf `index` (or the bundle and that index).
fn assert_names_leaf(err: &FsckError, index: u64, what: &str) {
    match err {
        FsckError::BadLeaf { index: i, .. } | FsckError::BadBundle { index: i, .. } => assert_eq!(*i, index, "{what}: {err}"),
        other => panic!("{what}: expected leaf {index}, got: {other}"),
    }
}

fn assert_names_path(err: &FsckError, path: &str, what: &str) {
    match err {
        FsckError::BadTile { path: p, .. } => assert_eq!(p, path, "{what}: {err}"),
        other => panic!("{what}: expected {path}, got: {other}"),
    }
}

/// Flips each byte of `path` in turn (XOR `mask`), runs fsck and hands
/// `check(offset, original bytes, error)` the result; restores the file.
fn for_each_byte_flip(dir: &Path, path: &Path, mask: u8, mut check: impl FnMut(usize, &[u8], &FsckError)) {
    let orig = std::fs::read(path).unwrap();
    for offset in 0..orig.len() {
        let mut bad = orig.clone();
        bad[offset] ^= mask;
        std::fs::write(path, &bad).unwrap();
        check(offset, &orig, &fsck_err(dir));
    }
    std::fs::write(path, &orig).unwrap();
}

/// 300 entries in odd batches: two bundles (one partial), level-0 tiles,
/// a partial level-1 tile, and stale partials beside them.
fn small_log(dir: &Path) -> Vec<TileId> {
    common::build_log(dir, 300, &[1, 37, 120, 5]);
    let key = read_vkey(dir).unwrap();
    fsck::verify(dir, &key, |_| {}).unwrap();
    tiles_for_size(300)
}

#[test]
fn every_byte_flip_in_entry_bundles_names_the_leaf() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for id in small_log(dir).into_iter().filter(|t| t.level.is_none()) {
        for_each_byte_flip(dir, &dir.join(id.path()), 0x01, |offset, orig, err| {
            let leaf = id.index * TILE_WIDTH + entry_at(orig, offset) as u64;
            assert_names_leaf(err, leaf, &format!("{} byte {offset}", id.path()));
        });
    }
}

#[test]
fn every_byte_flip_in_hash_tiles_names_the_tile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for id in small_log(dir).into_iter().filter(|t| t.level.is_some()) {
        for_each_byte_flip(dir, &dir.join(id.path()), 0x80, |offset, _, err| {
            assert_names_path(err, &id.path(), &format!("byte {offset}"));
        });
    }
}

#[test]
fn stale_partial_tiles_are_checked_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Batches end at 10, 30 and 60: the partials for 10 and 30 stay beside
    // the current ones, and clients holding older checkpoints may read them.
    drop(common::build_log(dir, 60, &[10, 20, 30]));
    let stale = ["tile/0/000.p/10", "tile/0/000.p/30", "tile/entries/000.p/10", "tile/entries/000.p/30"];
    for rel in stale {
        let path = dir.join(rel);
        let orig = std::fs::read(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut bad = orig.clone();
        bad[orig.len() / 2] ^= 0x04;
        std::fs::write(&path, &bad).unwrap();
        assert_names_path(&fsck_err(dir), rel, rel);
        std::fs::write(&path, &orig).unwrap();
    }
}

#[test]
fn every_byte_flip_in_the_checkpoint_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_log(dir);
    for_each_byte_flip(dir, &dir.join(CHECKPOINT_FILE), 0x01, |offset, _, err| {
        assert!(matches!(err, FsckError::Checkpoint(_)), "checkpoint byte {offset}: {err}");
    });
}

#[test]
fn truncation_and_deletion_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for id in small_log(dir) {
        let path = dir.join(id.path());
        let orig = std::fs::read(&path).unwrap();
        for cut in [orig.len() - 1, orig.len() / 2, 0] {
            std::fs::write(&path, &orig[..cut]).unwrap();
            let err = fsck_err(dir);
            match id.level {
                // A cut bundle is named with the first leaf it loses.
                None => {
                    assert!(
                        matches!(&err, FsckError::BadLeaf { bundle, .. } | FsckError::BadBundle { path: bundle, .. } if *bundle == id.path()),
                        "{}: {err}",
                        id.path()
                    )
                }
                Some(_) => assert_names_path(&err, &id.path(), &format!("truncated to {cut}")),
            }
        }
        std::fs::remove_file(&path).unwrap();
        assert_names_path(&fsck_err(dir), &id.path(), "deleted");
        std::fs::write(&path, &orig).unwrap();
    }
    std::fs::remove_file(dir.join(CHECKPOINT_FILE)).unwrap();
    assert!(matches!(fsck_err(dir), FsckError::Checkpoint(_)));
}

#[test]
fn wrong_key_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_log(dir);
    let other = tempfile::tempdir().unwrap();
    zkaudit_tlog::init(other.path(), "test.zkaudit.invalid/log").unwrap();
    let key = read_vkey(other.path()).unwrap();
    assert!(matches!(fsck::verify(dir, &key, |_| {}), Err(FsckError::Checkpoint(_))));
}
