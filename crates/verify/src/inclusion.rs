//! An entry's inclusion in a log, checked against a signed checkpoint.

use zkaudit_merkle::{leaf_hash, verify_inclusion, Hash};
use zkaudit_note::{Checkpoint, Note, VerifierKey};

/// An RFC 9162 §2.1.3 inclusion proof with the values it binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Leaf hash of the entry, `SHA-256(0x00 ‖ entry)` (RFC 9162 §2.1.1).
    pub leaf_hash: Hash,
    /// Audit path, deepest sibling first.
    pub hashes: Vec<Hash>,
    /// Root hash of the tree of `tree_size` leaves.
    pub root_hash: Hash,
}

/// What a successful check established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    /// The entry's leaf index.
    pub leaf_index: u64,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The checkpoint's root hash.
    pub root: Hash,
    /// The log's origin (the checkpoint's first line).
    pub origin: String,
    /// The verifier key's name (signed-note).
    pub key_name: String,
    /// The verifier key's 32-bit ID (signed-note).
    pub key_id: u32,
}

/// Why an inclusion proof was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum InclusionError {
    /// The checkpoint is not a signed note that verifies with the key.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The proof is malformed (not the JSON `zkaudit log inclusion --json`
    /// writes, or a hash of the wrong length).
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

/// Checks `proof` against the signed `checkpoint` note, which must verify
/// with `vkey`, and, if given, the `entry` bytes (one trailing newline is
/// ignored): the checkpoint's size and root must be the proof's, the
/// entry must hash to the proof's leaf hash, and the audit path must lead
/// from the leaf to the root (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`InclusionError`] naming the first check that failed.
pub fn check_inclusion(proof: &InclusionProof, checkpoint: &[u8], vkey: &VerifierKey, entry: Option<&[u8]>) -> Result<Included, InclusionError> {
    let cp_err = |e: &dyn std::fmt::Display| InclusionError::Checkpoint(e.to_string());
    let note = Note::parse(checkpoint).map_err(|e| cp_err(&e))?;
    note.verify(vkey).map_err(|e| cp_err(&e))?;
    let cp = Checkpoint::parse(note.text()).map_err(|e| cp_err(&e))?;
    if proof.tree_size != cp.size || proof.root_hash != cp.root {
        return Err(InclusionError::OtherTree { size: proof.tree_size, root: hex::encode(proof.root_hash), cp_size: cp.size, cp_root: hex::encode(cp.root) });
    }
    if let Some(entry) = entry {
        let entry = entry.strip_suffix(b"\n").unwrap_or(entry);
        if leaf_hash(entry) != proof.leaf_hash {
            return Err(InclusionError::EntryMismatch);
        }
    }
    verify_inclusion(&proof.leaf_hash, proof.leaf_index, proof.tree_size, &proof.hashes, &cp.root).map_err(|e| InclusionError::Path(e.to_string()))?;
    Ok(Included {
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        root: cp.root,
        origin: cp.origin,
        key_name: vkey.name().to_owned(),
        key_id: vkey.id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkaudit_merkle::{inclusion_proof, MemoryTree};
    use zkaudit_note::SigningKey;

    /// A log of `n` entries, its signed checkpoint and key.
    fn log(n: u64) -> (Vec<Vec<u8>>, MemoryTree, Vec<u8>, VerifierKey) {
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        let tree = MemoryTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
        let key = SigningKey::generate("verify.test/log").unwrap();
        let note = Note::sign(&Checkpoint::new("verify.test/log", n, tree.root()).to_text(), &key).unwrap();
        (entries, tree, note.to_bytes(), key.verifier())
    }

    fn proof(tree: &MemoryTree, entries: &[Vec<u8>], i: u64) -> InclusionProof {
        let n = entries.len() as u64;
        InclusionProof {
            leaf_index: i,
            tree_size: n,
            leaf_hash: leaf_hash(&entries[i as usize]),
            hashes: inclusion_proof(&tree, i, n).unwrap(),
            root_hash: tree.root(),
        }
    }

    #[test]
    fn every_entry_of_a_log_verifies_and_a_flipped_byte_fails() {
        let (entries, tree, cp, vkey) = log(37);
        for i in 0..37 {
            let p = proof(&tree, &entries, i);
            let ok = check_inclusion(&p, &cp, &vkey, Some(&entries[i as usize])).unwrap();
            assert_eq!((ok.leaf_index, ok.tree_size, ok.origin.as_str(), ok.key_name.as_str()), (i, 37, "verify.test/log", "verify.test/log"));
            let mut bad = entries[i as usize].clone();
            bad[2] ^= 1;
            assert!(matches!(check_inclusion(&p, &cp, &vkey, Some(&bad)), Err(InclusionError::EntryMismatch)));
        }
    }

    #[test]
    fn a_wrong_key_a_wrong_tree_or_a_wrong_path_is_named() {
        let (entries, tree, cp, vkey) = log(10);
        let p = proof(&tree, &entries, 3);
        let other = SigningKey::generate("verify.test/log").unwrap().verifier();
        assert!(matches!(check_inclusion(&p, &cp, &other, None), Err(InclusionError::Checkpoint(_))));
        let smaller = InclusionProof { tree_size: 9, ..p.clone() };
        assert!(matches!(check_inclusion(&smaller, &cp, &vkey, None), Err(InclusionError::OtherTree { size: 9, cp_size: 10, .. })));
        let mut path = p.clone();
        path.hashes[0][0] ^= 1;
        assert!(matches!(check_inclusion(&path, &cp, &vkey, None), Err(InclusionError::Path(_))));
        let mut cp_bad = cp.clone();
        cp_bad[3] ^= 1;
        assert!(matches!(check_inclusion(&p, &cp_bad, &vkey, None), Err(InclusionError::Checkpoint(_))));
    }
}
