//! A fully materialised Merkle tree held in memory.

use alloc::vec::Vec;

use crate::{CompactRange, Hash, SubtreeSource};

/// Every complete subtree hash of a tree, level by level.
///
/// Memory is about `2 × size × 32` bytes, so this is meant for small trees:
/// tests, data commitments over a few thousand records, and cross-checks.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    range: CompactRange,
    levels: Vec<Vec<Hash>>,
}

/// A subtree was requested that is not complete in a [`MemoryTree`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no complete subtree at height {height} index {index}")]
pub struct OutOfRange {
    /// Requested height.
    pub height: u8,
    /// Requested index at that height.
    pub index: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tree from leaf hashes.
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut t = Self::new();
        for l in leaves {
            t.push_leaf_hash(l);
        }
        t
    }

    /// Appends one leaf hash.
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.range.append(leaf, |height, _index, h| {
            let height = usize::from(height);
            if levels.len() <= height {
                levels.resize_with(height + 1, Vec::new);
            }
            levels[height].push(*h);
        });
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// Merkle tree head of the whole tree (RFC 9162 §2.1.1).
    pub fn root(&self) -> Hash {
        self.range.root()
    }
}

impl SubtreeSource for MemoryTree {
    type Error = OutOfRange;

    fn subtree(&self, height: u8, index: u64) -> Result<Hash, OutOfRange> {
        usize::try_from(index).ok().and_then(|i| self.levels.get(usize::from(height))?.get(i)).copied().ok_or(OutOfRange { height, index })
    }
}
