//! RFC 9162 hashing straight on the zkVM's SHA-256 ecall.
//!
//! `risc0_zkvm::sha::Impl::hash_bytes` allocates, pads and copies each
//! message into fresh heap memory (the bump allocator never frees, so every
//! hash also pages in new memory): about 560 cycles for one 64-byte block.
//! Here (about 200 cycles for a one-block leaf, most of it the ecall
//! itself; see docs/benchmarks.md) the padded message of a leaf or
//! a node is built in word-aligned buffers that are reused: the padding and
//! the length are written once per message size, and each hash rewrites only
//! the words that hold the message, shifting the entry by the one prefix
//! byte with word arithmetic instead of a byte copy.
//!
//! The ecall reads whole words: a buffer that is not 4-byte aligned would be
//! silently truncated to the word below and give a wrong hash, so every
//! buffer handed to it is a `[u32]` (the guest tests compare its data root
//! with the native one for record sizes on both sides of the one- and
//! two-block boundaries).

use core::cell::{Cell, UnsafeCell};

use risc0_zkvm::sha::{Impl, Sha256};
use risc0_zkvm_platform::syscall::sys_sha_buffer;
use zkaudit_merkle::{from_words, to_words, Hash, HashWords, Hasher, StreamingRoot, LEAF_PREFIX, NODE_PREFIX};

/// SHA-256's initial state (FIPS 180-4 §5.3.3), as the accelerator keeps
/// it: each word big-endian in memory.
const INIT: [u32; 8] = [
    0x6a09e667_u32.to_be(),
    0xbb67ae85_u32.to_be(),
    0x3c6ef372_u32.to_be(),
    0xa54ff53a_u32.to_be(),
    0x510e527f_u32.to_be(),
    0x9b05688c_u32.to_be(),
    0x1f83d9ab_u32.to_be(),
    0x5be0cd19_u32.to_be(),
];

/// Words in one 64-byte block.
const BLOCK_WORDS: usize = 16;

/// A padded SHA-256 message of a fixed byte length, in 4-byte-aligned words
/// (the message bytes little-endian in each word, as they lie in memory).
struct Padded {
    /// Message length in bytes.
    len: usize,
    /// Whole blocks: message, `0x80`, zeros, 64-bit big-endian bit length.
    words: Vec<u32>,
}

impl Padded {
    fn new(len: usize) -> Self {
        let blocks = (len + 9).div_ceil(64);
        let mut words = vec![0u32; blocks * BLOCK_WORDS];
        let bits = (len as u64) * 8;
        let n = words.len();
        words[n - 2] = ((bits >> 32) as u32).swap_bytes();
        words[n - 1] = (bits as u32).swap_bytes();
        Padded { len, words }
    }

    /// Writes `prefix ‖ LE(entry words)` and the `0x80` terminator: the
    /// message is `1 + 4 · entry.len()` bytes, so `self.len` must be that.
    /// Each message word takes the top byte of the entry word before it and
    /// the low three bytes of its own: the one-byte prefix shifts the entry
    /// with word arithmetic, never byte by byte.
    #[inline(always)]
    fn set_prefixed(&mut self, prefix: u8, entry: &[u32]) {
        debug_assert_eq!(self.len, 4 * entry.len() + 1);
        set_prefixed(&mut self.words, prefix, entry);
    }
}

/// Writes `prefix ‖ LE(entry words)` and the `0x80` terminator to the
/// start of `words` (see [`Padded::set_prefixed`]).
#[inline(always)]
fn set_prefixed(words: &mut [u32], prefix: u8, entry: &[u32]) {
    let mut carry = u32::from(prefix);
    for (m, &w) in words.iter_mut().zip(entry) {
        *m = carry | (w << 8);
        carry = w >> 24;
    }
    words[entry.len()] = carry | 0x80 << 8;
}

/// SHA-256 of the padded message of `n_blocks` 16-word blocks at `blocks`,
/// by the ecall, which reads them word by word and writes the digest to
/// `out` (in memory, the state's bytes are the digest's).
///
/// # Safety
/// `blocks` must point to `16 · n_blocks` readable `u32`s, and `out` to
/// eight writable ones that the blocks do not overlap.
#[inline(always)]
unsafe fn compress(blocks: *const u32, n_blocks: usize, out: *mut [u32; 8]) {
    // SAFETY: `out`, `INIT` and `blocks` are `u32`s, so 4-byte aligned,
    // and the caller vouches for them.
    unsafe { sys_sha_buffer(out, &INIT, blocks.cast(), n_blocks as u32) }
}

/// The padded node message `0x01 ‖ left ‖ right`: 65 bytes, `0x80`, and the
/// bit length 520 at the end of the second block.
fn node_message() -> [u32; 2 * BLOCK_WORDS] {
    let mut m = [0u32; 2 * BLOCK_WORDS];
    m[2 * BLOCK_WORDS - 1] = (65u32 * 8).swap_bytes();
    m
}

/// RFC 9162 hashing on the zkVM's SHA-256 accelerator.
///
/// Its buffers are rewritten through `&self` without a borrow flag: it is
/// not `Sync` (its cells see to that), so one thread at a time uses it, and
/// no method calls another while it holds its buffer.
pub struct Accelerated {
    /// The leaf message, sized for the last record width seen.
    leaf: UnsafeCell<Padded>,
    /// The node message (see [`node_message`]), a word at a time.
    node: Cell<[u32; 2 * BLOCK_WORDS]>,
}

impl Accelerated {
    /// A hasher with its buffers allocated.
    pub fn new() -> Self {
        Accelerated { leaf: UnsafeCell::new(Padded::new(1)), node: Cell::new(node_message()) }
    }

    /// The leaf buffer, padded for entries of `words` words.
    #[allow(clippy::mut_from_ref)]
    fn leaf_message(&self, words: usize) -> &mut Padded {
        // SAFETY: the only reference to the leaf buffer while the caller
        // holds it: no method that takes it calls another that does (see
        // the type's doc).
        let leaf = unsafe { &mut *self.leaf.get() };
        let len = 4 * words + 1;
        if leaf.len != len {
            *leaf = Padded::new(len);
        }
        leaf
    }
}

impl Hasher for Accelerated {
    fn leaf_hash(&self, entry: &[u8]) -> Hash {
        let mut buf = Vec::with_capacity(entry.len() + 1);
        buf.push(LEAF_PREFIX);
        buf.extend_from_slice(entry);
        self.sha256(&buf)
    }

    fn leaf_hash_words(&self, entry: &[u32]) -> HashWords {
        let mut out = [0; 8];
        self.leaf_hash_into(entry, &mut out);
        out
    }

    fn leaf_hash_into(&self, entry: &[u32], out: &mut HashWords) {
        let leaf = self.leaf_message(entry.len());
        leaf.set_prefixed(LEAF_PREFIX, entry);
        // SAFETY: `Padded` holds whole blocks, and `out` is not part of it.
        unsafe { compress(leaf.words.as_ptr(), leaf.words.len() / BLOCK_WORDS, out) }
    }

    /// One loop over the records, with the leaf buffer sized once, the
    /// Merkle stack's size and depth in registers, and its merges (node
    /// hashes) called statically, so inlined: 37 cycles a record fewer than
    /// a [`leaf_hash_into`] call per record on example 2
    /// (docs/benchmarks.md).
    ///
    /// [`leaf_hash_into`]: Hasher::leaf_hash_into
    fn append_records(&self, root: &mut StreamingRoot, width: usize, words: &[u32]) {
        if width == 0 {
            return;
        }
        let leaf = self.leaf_message(width);
        if leaf.words.len() != BLOCK_WORDS {
            // Records over 54 bytes: a call per record (through `dyn`, so
            // that this loop's merges are not inlined a second time).
            let h: &dyn Hasher = self;
            for rec in words.chunks_exact(width) {
                root.append_leaf(h, rec);
            }
            return;
        }
        let block = &mut leaf.words[..BLOCK_WORDS];
        root.append_leaves_with(self, words.chunks_exact(width), |rec, slot| {
            set_prefixed(block, LEAF_PREFIX, rec);
            // SAFETY: one block, and the stack slot is not part of it. A
            // constant block count lets the ecall's wrapper drop its loop
            // over batches of blocks.
            unsafe { compress(block.as_ptr(), 1, slot) }
        });
    }

    fn node_hash(&self, left: &Hash, right: &Hash) -> Hash {
        from_words(&self.node_hash_words(&to_words(left), &to_words(right)))
    }

    fn node_hash_words(&self, left: &HashWords, right: &HashWords) -> HashWords {
        let mut out = *left;
        self.node_hash_onto(&mut out, right);
        out
    }

    fn node_hash_onto(&self, left: &mut HashWords, right: &HashWords) {
        // Fixed sizes, so the shifts unroll with no bounds checks; the
        // padding words after word 16 were written once, by `node_message`.
        let m = self.node.as_array_of_cells();
        let mut carry = u32::from(NODE_PREFIX);
        for i in 0..8 {
            m[i].set(carry | (left[i] << 8));
            carry = left[i] >> 24;
        }
        for i in 0..8 {
            m[8 + i].set(carry | (right[i] << 8));
            carry = right[i] >> 24;
        }
        m[16].set(carry | 0x80 << 8);
        // SAFETY: two blocks, and `Cell<u32>` has the layout of `u32`;
        // `left` is read into the message above, so the ecall may write
        // the digest over it, and it does not overlap the message.
        unsafe { compress(m.as_ptr().cast(), 2, left) }
    }

    fn sha256(&self, data: &[u8]) -> Hash {
        let mut out = [0u8; 32];
        out.copy_from_slice(Impl::hash_bytes(data).as_bytes());
        out
    }
}
