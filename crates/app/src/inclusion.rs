//! Checking an inclusion proof offline, with no access to the log: against
//! a signed checkpoint, the log's verifier key and, optionally, the entry.

use zkaudit_merkle::{leaf_hash, verify_inclusion, Hash};
use zkaudit_note::{Checkpoint, Note, VerifierKey};
use zkaudit_tlog::json::InclusionJson;

/// What a successful check established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    /// The entry's leaf index.
    pub leaf_index: u64,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The checkpoint's root hash.
    pub root: Hash,
    /// The log's origin.
    pub origin: String,
}

/// Why an inclusion proof was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum InclusionError {
    /// The checkpoint is not a signed note that verifies with the key.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The proof file is not the JSON `zkaudit log inclusion --json` writes.
    #[error("proof: {0}")]
    Proof(String),
    /// The proof is for another tree than the checkpoint's.
    #[error("the proof is for tree size {size}, root {root}; the checkpoint has size {cp_size}, root {cp_root}")]
    OtherTree {
        /// The proof's tree size.
        size: u64,
        /// The proof's root (hex).
        root: String,
        /// The checkpoint's size.
        cp_size: u64,
        /// The checkpoint's root (hex).
        cp_root: String,
    },
    /// The entry given does not hash to the proof's leaf hash.
    #[error("the entry does not hash to the proof's leaf_hash")]
    EntryMismatch,
    /// The audit path does not lead to the root (RFC 9162 §2.1.3.2).
    #[error("inclusion proof does not verify: {0}")]
    Path(String),
}

/// Checks `proof` (the JSON of `zkaudit log inclusion --json`) against the
/// signed `checkpoint` note, which must verify with `vkey`, and, if given,
/// the `entry` bytes (one trailing newline is ignored).
///
/// # Errors
/// [`InclusionError`] naming the first check that failed.
pub fn check(proof: &[u8], checkpoint: &[u8], vkey: &VerifierKey, entry: Option<&[u8]>) -> Result<Included, InclusionError> {
    let cp_err = |e: &dyn std::fmt::Display| InclusionError::Checkpoint(e.to_string());
    let note = Note::parse(checkpoint).map_err(|e| cp_err(&e))?;
    note.verify(vkey).map_err(|e| cp_err(&e))?;
    let cp = Checkpoint::parse(note.text()).map_err(|e| cp_err(&e))?;
    let p: InclusionJson = serde_json::from_slice(proof).map_err(|e| InclusionError::Proof(e.to_string()))?;
    if p.tree_size != cp.size || p.root_hash != cp.root {
        return Err(InclusionError::OtherTree { size: p.tree_size, root: hex::encode(p.root_hash), cp_size: cp.size, cp_root: hex::encode(cp.root) });
    }
    if let Some(entry) = entry {
        let entry = entry.strip_suffix(b"\n").unwrap_or(entry);
        if leaf_hash(entry) != p.leaf_hash {
            return Err(InclusionError::EntryMismatch);
        }
    }
    verify_inclusion(&p.leaf_hash, p.leaf_index, p.tree_size, &p.hashes, &cp.root).map_err(|e| InclusionError::Path(e.to_string()))?;
    Ok(Included { leaf_index: p.leaf_index, tree_size: p.tree_size, root: cp.root, origin: cp.origin })
}
