//! Proofs served from the tiles agree with an in-memory tree and verify for
//! every index and size; the checkpoint verifies with an independent
//! signed-note implementation.

mod common;

use zkaudit_merkle::{consistency_proof, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion, MemoryTree};
use zkaudit_tlog::{LogReader, CHECKPOINT_FILE};

#[test]
fn tile_backed_proofs_match_memory_tree_for_all_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = 600u64;
    drop(common::build_log(dir, n, &[1, 255, 2, 97]));
    let mem = MemoryTree::from_leaf_hashes((0..n).map(|i| leaf_hash(&common::entry(i))));
    let r = LogReader::open(dir).unwrap();
    assert_eq!(r.checkpoint().root, mem.root());
    for size in 1..=n {
        let root = r.root_at(size).unwrap();
        for index in (0..size).filter(|i| size <= 70 || i % 17 == 0 || *i == size - 1) {
            let p = r.inclusion(index, Some(size)).unwrap();
            assert_eq!(p.hashes, inclusion_proof(&mem, index, size).unwrap(), "index {index} size {size}");
            assert_eq!(p.root_hash, root);
            verify_inclusion(&p.leaf_hash, index, size, &p.hashes, &root).unwrap();
        }
        for old in (0..=size).filter(|o| size <= 70 || o % 13 == 0) {
            let c = r.consistency(old, Some(size)).unwrap();
            assert_eq!(c.hashes, consistency_proof(&mem, old, size).unwrap());
            verify_consistency(old, size, &c.old_root, &c.new_root, &c.hashes).unwrap();
        }
    }
    assert!(r.inclusion(n, Some(n)).is_err());
    assert!(r.inclusion(0, Some(n + 1)).is_err());
    assert!(r.consistency(10, Some(5)).is_err());
}

#[test]
fn checkpoint_verifies_with_independent_signed_note() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    drop(common::build_log(dir, 10, &[10]));
    let note = std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let vkey = zkaudit_tlog::read_vkey(dir).unwrap().to_string();
    let v = signed_note::StandardVerifier::new(&vkey).unwrap();
    let n = signed_note::Note::from_bytes(&note).unwrap();
    n.verify(&signed_note::VerifierList::new(vec![Box::new(v)])).unwrap();
    let cp = tlog_tiles::Checkpoint::from_bytes(n.text()).unwrap();
    assert_eq!(cp.size(), 10);
    assert_eq!(cp.hash().0, LogReader::open(dir).unwrap().checkpoint().root);
}
