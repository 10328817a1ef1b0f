//! RFC 9162 Merkle tree hashing and proofs.
//!
//! This crate owns the pure mathematics of the zkaudit transparency log:
//!
//! * leaf and interior node hashing (RFC 9162 §2.1.1),
//! * the Merkle tree head of any tree size, computed from a [`SubtreeSource`],
//! * inclusion proofs (RFC 9162 §2.1.3) and consistency proofs (§2.1.4),
//!   both generation and verification,
//! * [`CompactRange`], the O(log n) right edge of a growing tree that lets an
//!   appender compute roots and every complete subtree hash exactly once,
//! * [`MemoryTree`], a fully materialised tree for small data sets.
//!
//! It is `no_std + alloc` so that the same code can run inside a zkVM guest.
//! It must not touch files, clocks, signatures or any storage layout: tiles,
//! checkpoints and signing live in `zkaudit-tlog` and `zkaudit-note`.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod compact;
mod proof;
mod stream;
mod tree;

pub use compact::CompactRange;
pub use stream::StreamingRoot;

pub use proof::{
    consistency_proof, inclusion_proof, range_root, root, root_from_inclusion_proof, verify_consistency, verify_inclusion, ProofError, VerifyError,
};
pub use tree::{MemoryTree, OutOfRange};

use sha2::{Digest, Sha256};

/// Size of a SHA-256 hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; HASH_SIZE];

/// Domain separation prefix for leaf hashes (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix for interior node hashes (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// Leaf hash of one entry: `SHA-256(0x00 ‖ entry)` (RFC 9162 §2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(entry);
    h.finalize().into()
}

/// Interior node hash: `SHA-256(0x01 ‖ left ‖ right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The two RFC 9162 §2.1.1 hash functions, so that a zkVM guest can plug in
/// its accelerated SHA-256 while sharing the tree logic with the host.
///
/// Implementations must compute exactly [`leaf_hash`] and [`node_hash`];
/// [`Sha2`] is the portable one.
pub trait Hasher {
    /// `SHA-256(0x00 ‖ entry)`.
    fn leaf_hash(&self, entry: &[u8]) -> Hash;
    /// `SHA-256(0x01 ‖ left ‖ right)`.
    fn node_hash(&self, left: &Hash, right: &Hash) -> Hash;
    /// Plain `SHA-256(data)` (FIPS 180-4), for content digests.
    fn sha256(&self, data: &[u8]) -> Hash;
    /// [`leaf_hash`](Self::leaf_hash) of the entry whose bytes are `words`,
    /// each little-endian: `SHA-256(0x00 ‖ LE(words[0]) ‖ LE(words[1]) ‖ …)`,
    /// as [`HashWords`]. This is how fixed-width records are committed; a
    /// zkVM guest, which holds them as words, overrides it to hash them
    /// without a byte copy.
    fn leaf_hash_words(&self, words: &[u32]) -> HashWords {
        let mut h = Sha256::new();
        h.update([LEAF_PREFIX]);
        for w in words {
            h.update(w.to_le_bytes());
        }
        to_words(&h.finalize().into())
    }
    /// [`leaf_hash_words`](Self::leaf_hash_words), written to `out` (a
    /// zkVM guest lets the accelerator write it there).
    fn leaf_hash_into(&self, words: &[u32], out: &mut HashWords) {
        *out = self.leaf_hash_words(words);
    }
    /// [`node_hash`](Self::node_hash) on [`HashWords`]; a zkVM guest
    /// overrides it to stay in words from leaf to root.
    fn node_hash_words(&self, left: &HashWords, right: &HashWords) -> HashWords {
        to_words(&self.node_hash(&from_words(left), &from_words(right)))
    }
    /// [`node_hash_words`](Self::node_hash_words) of `left` and `right`,
    /// written over `left`: where a tree keeps its right edge on a stack,
    /// the parent takes the left child's slot, and a zkVM guest lets the
    /// accelerator write it there instead of copying a returned hash.
    fn node_hash_onto(&self, left: &mut HashWords, right: &HashWords) {
        *left = self.node_hash_words(left, right);
    }
    /// Appends to `root` one leaf per record of `words`, records of
    /// `width` words each (a trailing partial record is ignored, as
    /// `chunks_exact` does; none for a `width` of 0): each leaf as
    /// [`leaf_hash_words`](Self::leaf_hash_words) of its record, as
    /// [`StreamingRoot::append_leaf`] appends it. This is how an input's
    /// records are committed; a zkVM guest overrides it to hash the whole
    /// input in one loop, its buffers set up once and no call per record.
    fn append_records(&self, root: &mut StreamingRoot, width: usize, words: &[u32]) {
        if width == 0 {
            return;
        }
        for rec in words.chunks_exact(width) {
            root.append_leaf(self, rec);
        }
    }
}

/// A [`Hash`](type@Hash) as eight 32-bit words in memory order: word `i` holds bytes
/// `4i..4i+4` as they lie in memory (native endianness), which is the form
/// the RISC Zero SHA-256 accelerator reads and writes.
pub type HashWords = [u32; 8];

/// The [`HashWords`] of `h`.
pub fn to_words(h: &Hash) -> HashWords {
    core::array::from_fn(|i| u32::from_ne_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]))
}

/// The [`Hash`](type@Hash) of `w`.
pub fn from_words(w: &HashWords) -> Hash {
    let mut h = [0u8; HASH_SIZE];
    for (b, w) in h.chunks_exact_mut(4).zip(w) {
        b.copy_from_slice(&w.to_ne_bytes());
    }
    h
}

/// The portable [`Hasher`], backed by the `sha2` crate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha2;

impl Hasher for Sha2 {
    fn leaf_hash(&self, entry: &[u8]) -> Hash {
        leaf_hash(entry)
    }
    fn node_hash(&self, left: &Hash, right: &Hash) -> Hash {
        node_hash(left, right)
    }
    fn sha256(&self, data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }
}

/// Root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Access to the hashes of complete, aligned subtrees of a tree.
///
/// `subtree(height, index)` returns the hash of the perfect subtree with
/// `2^height` leaves covering leaf indices `[index << height, (index + 1) << height)`.
/// Height 0 is the leaf hash itself. Implementations are only ever asked for
/// subtrees that are complete in the tree being proven.
pub trait SubtreeSource {
    /// Error raised when a hash cannot be produced (missing or unreadable storage).
    type Error;

    /// Hash of the complete subtree at `height` and `index` (see trait docs).
    fn subtree(&self, height: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: SubtreeSource + ?Sized> SubtreeSource for &S {
    type Error = S::Error;
    fn subtree(&self, height: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).subtree(height, index)
    }
}
