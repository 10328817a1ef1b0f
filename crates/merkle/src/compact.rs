//! The compact range: the right edge of a Merkle tree.

use alloc::vec::Vec;

use crate::{empty_root, Hash, Hasher, Sha2};

/// The right edge of a tree of `size` leaves: one complete-subtree hash per set
/// bit of `size`, ordered from the highest (leftmost) subtree to the lowest.
///
/// Appending a leaf costs amortised one node hash, and every complete subtree
/// hash is produced exactly once, which is how the log derives its hash tiles
/// without hashing anything twice. The root follows RFC 9162 §2.1.1: the
/// subtrees are folded from right to left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<Hash>,
}

impl CompactRange {
    /// An empty range (tree size 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its parts.
    ///
    /// `nodes` must hold exactly `size.count_ones()` hashes, highest subtree
    /// first; returns `None` otherwise.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree hashes, highest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash.
    ///
    /// `visit(height, index, hash)` is called for every complete subtree that
    /// this leaf creates or completes: first the leaf itself at height 0 and
    /// index `size`, then each newly completed parent, bottom up.
    pub fn append(&mut self, leaf: Hash, visit: impl FnMut(u8, u64, &Hash)) {
        self.append_with(&Sha2, leaf, visit)
    }

    /// [`append`](Self::append) with the node hashes computed by `hasher`.
    pub fn append_with<H: Hasher + ?Sized>(&mut self, hasher: &H, leaf: Hash, mut visit: impl FnMut(u8, u64, &Hash)) {
        let mut index = self.size;
        let mut cur = leaf;
        visit(0, index, &cur);
        let mut height: u8 = 0;
        while (self.size >> height) & 1 == 1 {
            // A left sibling at this height exists exactly when the bit is set.
            let left = self.nodes.pop().unwrap_or_default();
            cur = hasher.node_hash(&left, &cur);
            height += 1;
            index >>= 1;
            visit(height, index, &cur);
        }
        self.nodes.push(cur);
        self.size += 1;
    }

    /// The Merkle tree head of the covered leaves (RFC 9162 §2.1.1).
    pub fn root(&self) -> Hash {
        self.root_with(&Sha2)
    }

    /// [`root`](Self::root) with the node hashes computed by `hasher`.
    pub fn root_with<H: Hasher + ?Sized>(&self, hasher: &H) -> Hash {
        let mut it = self.nodes.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| hasher.node_hash(left, &acc)),
        }
    }
}
