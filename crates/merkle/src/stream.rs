//! The Merkle tree head of a stream of leaves, in words.

use alloc::vec::Vec;

use crate::{empty_root, from_words, Hash, HashWords, Hasher};

/// The RFC 9162 §2.1.1 tree head of leaves appended one by one, kept as the
/// right edge of the tree (one complete-subtree hash per set bit of the
/// size) on a stack allocated once, and every hash stays in
/// [`HashWords`] from leaf to root, so a zkVM guest never converts or copies
/// a hash byte by byte. [`CompactRange`](crate::CompactRange) is the same
/// edge with the subtree callbacks the log needs.
#[derive(Clone, Debug)]
pub struct StreamingRoot {
    size: u64,
    /// Subtrees on the stack: `size.count_ones()`, kept as a count so that
    /// an append does not recount the bits of a 64-bit size (a long
    /// sequence on 32-bit targets such as the zkVM's).
    depth: usize,
    /// 64 slots, for the subtrees of any `u64` size: `stack[..depth]`,
    /// highest (leftmost) subtree first. On the heap, so that moving the
    /// tree moves no hashes (a fixed array here cost the zkVM guest a 2 KiB
    /// copy per move), allocated zeroed (which the guest's allocator does
    /// without writing: its fresh memory is zero).
    stack: Vec<HashWords>,
}

impl Default for StreamingRoot {
    fn default() -> Self {
        StreamingRoot { size: 0, depth: 0, stack: alloc::vec![[0; 8]; 64] }
    }
}

impl StreamingRoot {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash: amortised one node hash.
    pub fn append<H: Hasher + ?Sized>(&mut self, h: &H, leaf: HashWords) {
        self.stack[self.depth] = leaf;
        self.merge(h);
    }

    /// Appends the leaf of the entry whose bytes are `words` (see
    /// [`Hasher::leaf_hash_words`]), hashed straight into its place on the
    /// stack.
    pub fn append_leaf<H: Hasher + ?Sized>(&mut self, h: &H, words: &[u32]) {
        h.leaf_hash_into(words, &mut self.stack[self.depth]);
        self.merge(h);
    }

    /// Appends one leaf per item of `leaves`, its hash written by
    /// `hash_into(item, slot)` into its place on the stack (the slot holds
    /// no meaningful value before): for a [`Hasher`] that hashes leaves its
    /// own way, such as a zkVM guest's [`Hasher::append_records`]. The size
    /// and depth stay in locals for the whole loop, so a `hash_into` that
    /// may write any memory (an ecall) does not make every leaf store and
    /// reload them.
    #[inline(always)]
    pub fn append_leaves_with<H: Hasher + ?Sized, T>(&mut self, h: &H, leaves: impl IntoIterator<Item = T>, mut hash_into: impl FnMut(T, &mut HashWords)) {
        let (mut size, mut depth) = (self.size, self.depth);
        for leaf in leaves {
            hash_into(leaf, &mut self.stack[depth]);
            depth = merge(&mut self.stack, depth, size, h);
            size += 1;
        }
        self.size = size;
        self.depth = depth;
    }

    /// Merges the leaf just written at `stack[depth]` (see [`merge`]).
    fn merge<H: Hasher + ?Sized>(&mut self, h: &H) {
        self.depth = merge(&mut self.stack, self.depth, self.size, h);
        self.size += 1;
    }

    /// The tree head: the subtrees folded right to left (RFC 9162 §2.1.1);
    /// `SHA-256("")` for no leaves.
    pub fn root<H: Hasher + ?Sized>(&self, h: &H) -> Hash {
        let Some((last, rest)) = self.stack[..self.depth].split_last() else {
            return empty_root();
        };
        from_words(&rest.iter().rev().fold(*last, |acc, left| h.node_hash_words(left, &acc)))
    }
}

/// Merges a new leaf at `stack[depth]`, appended to a tree of `size`
/// leaves, with the complete subtrees of its height below it (each set
/// low bit of `size` is one) and returns the new depth. The parent
/// replaces its left child, so the subtree being merged is always on top
/// and no hash is copied between merges.
#[inline(always)]
fn merge<H: Hasher + ?Sized>(stack: &mut [HashWords], depth: usize, mut size: u64, h: &H) -> usize {
    let mut top = depth;
    while size & 1 == 1 {
        let (rest, right) = stack.split_at_mut(top);
        top -= 1;
        h.node_hash_onto(&mut rest[top], &right[0]);
        size >>= 1;
    }
    top + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{to_words, CompactRange, Sha2};

    /// Against the independent [`CompactRange`] and RFC 9162's recursive
    /// definition ([`crate::root`] over the subtrees), for every size up to 70.
    #[test]
    fn equals_the_compact_range_for_every_size() {
        let mut s = StreamingRoot::new();
        let mut c = CompactRange::new();
        let mut leaves = alloc::vec::Vec::new();
        assert_eq!(s.root(&Sha2), empty_root());
        for i in 0u32..70 {
            let entry = i.to_le_bytes();
            let leaf = crate::leaf_hash(&entry);
            assert_eq!(to_words(&leaf), Sha2.leaf_hash_words(&[i]));
            match i % 4 {
                0 => s.append(&Sha2, to_words(&leaf)),
                1 => s.append_leaf(&Sha2, &[i]),
                2 => Sha2.append_records(&mut s, 1, &[i]),
                _ => s.append_leaves_with(&Sha2, [i], |w, slot| Sha2.leaf_hash_into(&[w], slot)),
            }
            c.append(leaf, |_, _, _| {});
            leaves.push(leaf);
            assert_eq!(s.root(&Sha2), c.root(), "size {}", i + 1);
            let tree = crate::MemoryTree::from_leaf_hashes(leaves.iter().copied());
            assert_eq!(Some(s.root(&Sha2)), crate::root(&tree, u64::from(i) + 1).ok(), "size {}", i + 1);
        }
        assert_eq!(s.size(), 70);
        // Many leaves in one call, onto a tree of odd size.
        s.append_leaves_with(&Sha2, 70u32..133, |w, slot| Sha2.leaf_hash_into(&[w], slot));
        for i in 70u32..133 {
            c.append(crate::leaf_hash(&i.to_le_bytes()), |_, _, _| {});
        }
        assert_eq!((s.size(), s.root(&Sha2)), (133, c.root()));
    }
}
