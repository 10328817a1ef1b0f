//! The canonical record encoding and the data commitment.
//!
//! A record is its cells in schema order, each as little-endian 32-bit words:
//! `int` and `decimal` two words (the `i64`), `date` one (days since
//! 1970-01-01 as `i32`), `bool` one (0 or 1), `enum` one (the label's
//! position) and `digest` eight (the 32 bytes in order). Every record of an
//! input therefore has the same width, and the guest receives records as raw
//! words, never as JSON.
//!
//! The data commitment of an input is the RFC 9162 Merkle tree head over its
//! records' encodings as leaves; the `data_root` of an execution is the tree
//! head over the records of all inputs, in plan order. A single record can
//! thus be disclosed later with an inclusion proof.

use alloc::vec::Vec;

use zkaudit_merkle::{CompactRange, Hash, Hasher, LEAF_PREFIX};

use crate::table::{Col, Table};
use crate::validate::InputSpec;
use crate::value::{Type, DATE_RANGE};

/// A record word that is not a valid cell of its column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input `{input}`, record {record}, column `{column}`: {message}")]
pub struct RecordError {
    /// Input step ID.
    pub input: alloc::string::String,
    /// Record index (0-based).
    pub record: usize,
    /// Column name.
    pub column: alloc::string::String,
    /// What is wrong.
    pub message: &'static str,
}

/// Encodes `t` (whose columns follow `spec.schema`) as record words.
pub fn encode(spec: &InputSpec, t: &Table) -> Vec<u32> {
    let mut out = Vec::with_capacity(t.rows * spec.record_words());
    for r in 0..t.rows {
        for (c, (_, ty)) in spec.schema.iter().enumerate() {
            match &t.cols[c] {
                Col::Digest(v) => {
                    for w in v[r].chunks_exact(4) {
                        out.push(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
                    }
                }
                Col::Num(v) => {
                    let x = v[r];
                    if ty.words() == 2 {
                        out.push(x as u32);
                        out.push((x >> 32) as u32);
                    } else {
                        out.push(x as u32);
                    }
                }
            }
        }
    }
    out
}

/// Decodes `words` (a whole number of records) into a table, checking that
/// each cell is valid for its type.
///
/// # Errors
/// [`RecordError`] naming the record and column of the first invalid cell.
pub fn decode(spec: &InputSpec, words: &[u32]) -> Result<Table, RecordError> {
    let width = spec.record_words();
    let rows = words.len().checked_div(width).unwrap_or(0);
    let mut cols: Vec<Col> = spec.schema.iter().map(|(_, t)| Col::for_type(t, rows)).collect();
    for (r, rec) in words.chunks_exact(width.max(1)).enumerate() {
        let mut at = 0;
        for (c, (name, ty)) in spec.schema.iter().enumerate() {
            let bad = |message| RecordError { input: spec.id.clone(), record: r, column: name.clone(), message };
            match (&mut cols[c], ty) {
                (Col::Digest(v), _) => {
                    let mut d = [0u8; 32];
                    for (k, w) in rec[at..at + 8].iter().enumerate() {
                        d[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
                    }
                    v.push(d);
                }
                (Col::Num(v), Type::Int | Type::Decimal(_)) => {
                    v.push(i64::from(rec[at]) | (i64::from(rec[at + 1]) << 32));
                }
                (Col::Num(v), Type::Date) => {
                    let d = i64::from(rec[at] as i32);
                    if !DATE_RANGE.contains(&d) {
                        return Err(bad("date out of range (years -9999 to 9999)"));
                    }
                    v.push(d);
                }
                (Col::Num(v), Type::Bool) => {
                    if rec[at] > 1 {
                        return Err(bad("bool cell is neither 0 nor 1"));
                    }
                    v.push(i64::from(rec[at]));
                }
                (Col::Num(v), Type::Enum(labels)) => {
                    if rec[at] as usize >= labels.len() {
                        return Err(bad("enum cell is not a declared label"));
                    }
                    v.push(i64::from(rec[at]));
                }
                (Col::Num(_), Type::Digest) => unreachable!("digest types get digest columns"),
            }
            at += ty.words();
        }
    }
    Ok(Table { rows, cols })
}

/// Merkle tree heads of a set of inputs' records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// Tree head over the records of all inputs, in order: the `data_root`.
    pub data_root: Hash,
    /// Tree head over each input's records alone: its `dataCommitment`.
    pub inputs: Vec<Hash>,
}

/// Computes the data root over `inputs` (`(record width in words, words)`).
///
/// Each record is hashed once as an RFC 9162 leaf (`SHA-256(0x00 ‖ bytes)`);
/// with several inputs the leaves also feed one tree per input.
pub fn commit(h: &dyn Hasher, inputs: &[(usize, &[u32])]) -> Commitment {
    let several = inputs.len() > 1;
    let mut all = CompactRange::new();
    let mut per: Vec<Hash> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for (width, words) in inputs {
        let mut own = CompactRange::new();
        for rec in words.chunks_exact((*width).max(1)) {
            buf.clear();
            buf.push(LEAF_PREFIX);
            for w in rec {
                buf.extend_from_slice(&w.to_le_bytes());
            }
            let leaf = h.sha256(&buf);
            if several {
                own.append_with(h, leaf, |_, _, _| {});
            }
            all.append_with(h, leaf, |_, _, _| {});
        }
        if several {
            per.push(own.root_with(h));
        }
    }
    let data_root = all.root_with(h);
    if !several {
        per = alloc::vec![data_root; inputs.len()];
    }
    Commitment { data_root, inputs: per }
}
