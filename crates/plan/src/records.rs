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

use zkaudit_merkle::{Hash, Hasher, StreamingRoot};

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
    let mut cols: Vec<Col> = Vec::with_capacity(spec.schema.len());
    // Column by column, so the type is matched once per column, not per
    // cell; of several bad cells, the one a row-by-row scan meets first
    // (lowest record, then leftmost column) is reported.
    let mut bad: Option<(usize, usize, &'static str)> = None;
    let mut at = 0;
    for (c, (_, ty)) in spec.schema.iter().enumerate() {
        let cells = || words.chunks_exact(width.max(1)).map(move |rec| &rec[at..at + ty.words()]);
        let check = |ok: &dyn Fn(u32) -> bool, message: &'static str, bad: &mut Option<(usize, usize, &'static str)>| {
            if let Some(r) = cells().position(|w| !ok(w[0])) {
                if bad.is_none_or(|(r0, _, _)| r < r0) {
                    *bad = Some((r, c, message));
                }
            }
        };
        cols.push(match ty {
            Type::Digest => Col::Digest(
                cells()
                    .map(|w| {
                        let mut d = [0u8; 32];
                        for (b, w) in d.chunks_exact_mut(4).zip(w) {
                            b.copy_from_slice(&w.to_le_bytes());
                        }
                        d
                    })
                    .collect(),
            ),
            Type::Int | Type::Decimal(_) => Col::Num(cells().map(|w| i64::from(w[0]) | (i64::from(w[1]) << 32)).collect()),
            Type::Date => {
                check(&|w| DATE_RANGE.contains(&i64::from(w as i32)), "date out of range (years -9999 to 9999)", &mut bad);
                Col::Num(cells().map(|w| i64::from(w[0] as i32)).collect())
            }
            Type::Bool => {
                check(&|w| w <= 1, "bool cell is neither 0 nor 1", &mut bad);
                Col::Num(cells().map(|w| i64::from(w[0])).collect())
            }
            Type::Enum(labels) => {
                check(&|w| (w as usize) < labels.len(), "enum cell is not a declared label", &mut bad);
                Col::Num(cells().map(|w| i64::from(w[0])).collect())
            }
        });
        at += ty.words();
    }
    if let Some((record, c, message)) = bad {
        return Err(RecordError { input: spec.id.clone(), record, column: spec.schema[c].0.clone(), message });
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
    let mut all = StreamingRoot::new();
    let mut per: Vec<Hash> = Vec::new();
    for (width, words) in inputs {
        let mut own = StreamingRoot::new();
        for rec in words.chunks_exact((*width).max(1)) {
            if several {
                let leaf = h.leaf_hash_words(rec);
                own.append(h, leaf);
                all.append(h, leaf);
            } else {
                all.append_leaf(h, rec);
            }
        }
        if several {
            per.push(own.root(h));
        }
    }
    let data_root = all.root(h);
    if !several {
        per = alloc::vec![data_root; inputs.len()];
    }
    Commitment { data_root, inputs: per }
}
