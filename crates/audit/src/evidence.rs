//! Evidence: inclusion proofs (RFC 9162 §2.1.3) for the events an answer
//! names, against the checkpoint the engine read, in the JSON shapes of
//! `zkaudit log inclusion --json` and `zkaudit log checkpoint`.

use serde_json::{json, Value};
use zkaudit_tlog::LogReader;

pub use zkaudit_tlog::json::{checkpoint as checkpoint_json, inclusion as inclusion_json};

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
