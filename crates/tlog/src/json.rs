//! The JSON shapes of the ledger's answers, shared by the CLI (`--json`),
//! the auditor's evidence and the proof server, so all three agree.
//! Hashes are lowercase hex.

use serde_json::{json, Value};

use crate::{Appended, ConsistencyProof, InclusionProof, LogReader};

/// An RFC 9162 §2.1.3 inclusion proof: `{leaf_index, tree_size, leaf_hash,
/// hashes, root_hash}`, hashes deepest sibling first.
pub fn inclusion(p: &InclusionProof) -> Value {
    json!({
        "leaf_index": p.leaf_index,
        "tree_size": p.tree_size,
        "leaf_hash": hex::encode(p.leaf_hash),
        "hashes": p.hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        "root_hash": hex::encode(p.root_hash),
    })
}

/// An RFC 9162 §2.1.4 consistency proof: `{old_size, new_size, hashes,
/// old_root, new_root}`.
pub fn consistency(p: &ConsistencyProof) -> Value {
    json!({
        "old_size": p.old_size,
        "new_size": p.new_size,
        "hashes": p.hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        "old_root": hex::encode(p.old_root),
        "new_root": hex::encode(p.new_root),
    })
}

/// The checkpoint a reader sees: `{origin, tree_size, root_hash, note}`,
/// where `note` is the signed note itself (C2SP tlog-checkpoint).
pub fn checkpoint(r: &LogReader) -> Value {
    let cp = r.checkpoint();
    json!({
        "origin": cp.origin,
        "tree_size": cp.size,
        "root_hash": hex::encode(cp.root),
        "note": String::from_utf8_lossy(r.checkpoint_note()),
    })
}

/// The acknowledgement of `count` entries appended from `first_index`:
/// `{first_index, count, tree_size, root_hash}` of the checkpoint covering them.
pub fn appended(first_index: u64, count: u64, a: &Appended) -> Value {
    json!({
        "first_index": first_index,
        "count": count,
        "tree_size": a.tree_size,
        "root_hash": hex::encode(a.root_hash),
    })
}
