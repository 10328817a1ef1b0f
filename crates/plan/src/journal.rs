//! The journal a proof commits to, and the guest's input stream.
//!
//! Journal layout (bytes): `plan_hash[32] ‖ data_root[32] ‖ output_hash[32] ‖
//! output`, where `output` is the public part of the output as canonical JSON
//! (RFC 8785) and runs to the end of the journal.
//!
//! Guest input (little-endian 32-bit words, read with `env::read_slice`):
//! `INPUT_FORMAT, plan length in bytes, plan_hash[8], data_root[8],
//! number of inputs`, then the plan's canonical JSON padded with zero bytes to
//! a whole word, then for each input its record count followed by its records
//! (see [`crate::records`]).

use alloc::vec::Vec;

use zkaudit_merkle::Hash;

/// Version of the guest input stream layout.
pub const INPUT_FORMAT: u32 = 1;

/// Words before the plan bytes in the guest input stream.
pub const HEADER_WORDS: usize = 19;

/// What a receipt's journal says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: Hash,
    /// RFC 9162 tree head over all input records.
    pub data_root: Hash,
    /// SHA-256 of the full output's canonical JSON.
    pub output_hash: Hash,
    /// The public output columns, canonical JSON.
    pub output: Vec<u8>,
}

/// A journal shorter than its fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("journal is {0} bytes; it needs at least 96 (three 32-byte hashes)")]
pub struct JournalTooShort(pub usize);

impl Journal {
    /// The journal bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.output.len());
        out.extend_from_slice(&self.plan_hash);
        out.extend_from_slice(&self.data_root);
        out.extend_from_slice(&self.output_hash);
        out.extend_from_slice(&self.output);
        out
    }

    /// Parses journal bytes.
    ///
    /// # Errors
    /// [`JournalTooShort`] when fewer than 96 bytes are given.
    pub fn decode(bytes: &[u8]) -> Result<Journal, JournalTooShort> {
        if bytes.len() < 96 {
            return Err(JournalTooShort(bytes.len()));
        }
        let h = |i: usize| {
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes[32 * i..32 * i + 32]);
            a
        };
        Ok(Journal { plan_hash: h(0), data_root: h(1), output_hash: h(2), output: bytes[96..].to_vec() })
    }
}

/// Packs 32 bytes into 8 little-endian words.
pub fn hash_words(h: &Hash) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in h.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

/// Unpacks 8 little-endian words into 32 bytes.
pub fn words_hash(w: &[u32]) -> Hash {
    let mut h = [0u8; 32];
    for (i, x) in w.iter().take(8).enumerate() {
        h[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
    }
    h
}

/// Builds the guest input stream: header, plan, then each input's records
/// (`(record count, words)`), as described in the module docs.
pub fn guest_input(plan_jcs: &[u8], plan_hash: &Hash, data_root: &Hash, inputs: &[(usize, &[u32])]) -> Vec<u32> {
    let mut w = Vec::with_capacity(HEADER_WORDS + plan_jcs.len() / 4 + 1);
    w.push(INPUT_FORMAT);
    w.push(plan_jcs.len() as u32);
    w.extend_from_slice(&hash_words(plan_hash));
    w.extend_from_slice(&hash_words(data_root));
    w.push(inputs.len() as u32);
    for c in plan_jcs.chunks(4) {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        w.push(u32::from_le_bytes(b));
    }
    for (count, words) in inputs {
        w.push(*count as u32);
        w.extend_from_slice(words);
    }
    w
}

/// Unpacks the plan bytes from their words (`len` bytes).
pub fn plan_bytes(words: &[u32], len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    b.truncate(len);
    b
}
