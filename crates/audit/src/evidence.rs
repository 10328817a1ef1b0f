//! Evidence: inclusion proofs (RFC 9162 §2.1.3) for the events an answer
//! names, against the checkpoint the engine read, in the JSON shapes of
//! `zkaudit log inclusion --json` and `zkaudit log checkpoint`.

use serde_json::{json, Value};
use zkaudit_tlog::{InclusionProof, LogReader};

/// An inclusion proof as `{leaf_index, tree_size, leaf_hash, hashes, root_hash}`
/// (hashes in lowercase hex, deepest sibling first).
pub fn inclusion_json(p: &InclusionProof) -> Value {
    json!({
        "leaf_index": p.leaf_index,
        "tree_size": p.tree_size,
        "leaf_hash": hex::encode(p.leaf_hash),
        "hashes": p.hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        "root_hash": hex::encode(p.root_hash),
    })
}

/// The checkpoint a result was computed against: origin, tree size, root
/// hash (hex) and the signed note itself (C2SP tlog-checkpoint).
pub fn checkpoint_json(r: &LogReader) -> Value {
    let cp = r.checkpoint();
    json!({
        "origin": cp.origin,
        "tree_size": cp.size,
        "root_hash": hex::encode(cp.root),
        "note": String::from_utf8_lossy(r.checkpoint_note()),
    })
}

/// For each leaf index: `{leaf_index, entry, inclusion_proof}`, where
/// `entry` is the event's entry bytes as text and the proof is against the
/// reader's checkpoint. Save `inclusion_proof` and the checkpoint's `note`
/// to files and `zkaudit log check-inclusion` re-checks it.
pub fn events_json(r: &LogReader, indices: &[u64]) -> Result<Vec<Value>, zkaudit_tlog::Error> {
    indices
        .iter()
        .map(|&i| {
            let entry = r.entry(i)?;
            let proof = r.inclusion(i, None)?;
            Ok(json!({
                "leaf_index": i,
                "entry": String::from_utf8_lossy(&entry),
                "inclusion_proof": inclusion_json(&proof),
            }))
        })
        .collect()
}
