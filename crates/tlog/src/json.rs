//! The JSON shapes of the ledger's answers, shared by the CLI (`--json`),
//! the auditor's evidence and the proof server, so all three agree. Each
//! shape is one serde type here, read back by the same type (the offline
//! inclusion check reads what `zkaudit log inclusion --json` wrote).
//! Hashes are 64 lowercase hex digits.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zkaudit_merkle::Hash;

use crate::{ConsistencyProof, InclusionProof, LogReader};

/// Serde for a 32-byte hash as 64 hex digits.
pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};
    use zkaudit_merkle::Hash;

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(&s, &mut h).map_err(|_| serde::de::Error::custom(format!("`{s}` is not 64 hex digits")))?;
        Ok(h)
    }
}

/// Serde for a list of 32-byte hashes.
mod hex32_list {
    use serde::ser::SerializeSeq as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use zkaudit_merkle::Hash;

    #[derive(Deserialize)]
    struct H(#[serde(with = "super::hex32")] Hash);

    pub fn serialize<S: Serializer>(hs: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hs.len()))?;
        for h in hs {
            seq.serialize_element(&hex::encode(h))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Ok(Vec::<H>::deserialize(d)?.into_iter().map(|H(h)| h).collect())
    }
}

/// An RFC 9162 §2.1.3 inclusion proof: `{leaf_index, tree_size, leaf_hash,
/// hashes, root_hash}`, hashes deepest sibling first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionJson {
    /// Index of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// `SHA-256(0x00 ‖ entry)`.
    #[serde(with = "hex32")]
    pub leaf_hash: Hash,
    /// The audit path, deepest sibling first.
    #[serde(with = "hex32_list")]
    pub hashes: Vec<Hash>,
    /// Root of the tree of `tree_size` leaves.
    #[serde(with = "hex32")]
    pub root_hash: Hash,
}

impl From<InclusionJson> for InclusionProof {
    fn from(p: InclusionJson) -> Self {
        Self { leaf_index: p.leaf_index, tree_size: p.tree_size, leaf_hash: p.leaf_hash, hashes: p.hashes, root_hash: p.root_hash }
    }
}

impl From<&InclusionProof> for InclusionJson {
    fn from(p: &InclusionProof) -> Self {
        Self { leaf_index: p.leaf_index, tree_size: p.tree_size, leaf_hash: p.leaf_hash, hashes: p.hashes.clone(), root_hash: p.root_hash }
    }
}

/// An RFC 9162 §2.1.4 consistency proof: `{old_size, new_size, hashes,
/// old_root, new_root}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyJson {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
    /// The proof's hashes.
    #[serde(with = "hex32_list")]
    pub hashes: Vec<Hash>,
    /// Root of the older tree.
    #[serde(with = "hex32")]
    pub old_root: Hash,
    /// Root of the newer tree.
    #[serde(with = "hex32")]
    pub new_root: Hash,
}

impl From<&ConsistencyProof> for ConsistencyJson {
    fn from(p: &ConsistencyProof) -> Self {
        Self { old_size: p.old_size, new_size: p.new_size, hashes: p.hashes.clone(), old_root: p.old_root, new_root: p.new_root }
    }
}

fn to_value(v: &impl Serialize) -> Value {
    // These types hold only integers, strings and lists of them, which
    // always serialize.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// [`InclusionJson`] as a JSON value.
pub fn inclusion(p: &InclusionProof) -> Value {
    to_value(&InclusionJson::from(p))
}

/// [`ConsistencyJson`] as a JSON value.
pub fn consistency(p: &ConsistencyProof) -> Value {
    to_value(&ConsistencyJson::from(p))
}

/// The checkpoint a reader sees: `{origin, tree_size, root_hash, note}`,
/// where `note` is the signed note itself (C2SP tlog-checkpoint).
pub fn checkpoint(r: &LogReader) -> Value {
    let cp = r.checkpoint();
    serde_json::json!({
        "origin": cp.origin,
        "tree_size": cp.size,
        "root_hash": hex::encode(cp.root),
        "note": String::from_utf8_lossy(r.checkpoint_note()),
    })
}
