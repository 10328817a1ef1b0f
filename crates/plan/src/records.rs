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
    // cell, and each column is checked in the pass that converts it; of
    // several bad cells, the one a row-by-row scan meets first (lowest
    // record, then leftmost column) is reported.
    let mut bad: Option<(usize, usize, &'static str)> = None;
    let mut at = 0;
    for (c, (_, ty)) in spec.schema.iter().enumerate() {
        let mut note = |r: Option<usize>, message: &'static str| {
            if let Some(r) = r {
                if bad.is_none_or(|(r0, _, _)| r < r0) {
                    bad = Some((r, c, message));
                }
            }
        };
        cols.push(match ty {
            Type::Digest => Col::Digest(
                words
                    .chunks_exact(width)
                    .map(|rec| {
                        let mut d = [0u8; 32];
                        for (b, w) in d.chunks_exact_mut(4).zip(&rec[at..at + 8]) {
                            b.copy_from_slice(&w.to_le_bytes());
                        }
                        d
                    })
                    .collect(),
            ),
            Type::Int | Type::Decimal(_) => Col::Num(column::<2>(words, width, at, |_| true, |[lo, hi]| i64::from(lo) | (i64::from(hi) << 32)).0),
            Type::Date => {
                let (v, r) = column::<1>(words, width, at, |w| DATE_RANGE.contains(&i64::from(w as i32)), |[w]| i64::from(w as i32));
                note(r, "date out of range (years -9999 to 9999)");
                Col::Num(v)
            }
            Type::Bool => {
                let (v, r) = column::<1>(words, width, at, |w| w <= 1, |[w]| i64::from(w));
                note(r, "bool cell is neither 0 nor 1");
                Col::Num(v)
            }
            Type::Enum(labels) => {
                let n = labels.len();
                let (v, r) = column::<1>(words, width, at, |w| (w as usize) < n, |[w]| i64::from(w));
                note(r, "enum cell is not a declared label");
                Col::Num(v)
            }
        });
        at += ty.words();
    }
    if let Some((record, c, message)) = bad {
        return Err(RecordError { input: spec.id.clone(), record, column: spec.schema[c].0.clone(), message });
    }
    Ok(Table { rows, cols })
}

/// The cells of the `N`-word column at word `at` of each `width`-word
/// record in `words`, converted by `value`, and the first record whose
/// first cell word fails `ok` (`None` if all pass).
///
/// One pass: a cell is checked as it is converted, and the failing record
/// is searched for only when one failed (the guest decodes every record
/// once, so a second pass over a column is a real cost there).
fn column<const N: usize>(words: &[u32], width: usize, at: usize, ok: impl Fn(u32) -> bool, value: impl Fn([u32; N]) -> i64) -> (Vec<i64>, Option<usize>) {
    let mut all_ok = true;
    let v: Vec<i64> = words
        .chunks_exact(width)
        .map(|rec| {
            let cell: [u32; N] = core::array::from_fn(|i| rec[at + i]);
            all_ok &= ok(cell[0]);
            value(cell)
        })
        .collect();
    let first_bad = if all_ok { None } else { words.chunks_exact(width).position(|rec| !ok(rec[at])) };
    (v, first_bad)
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
        if !several {
            h.append_records(&mut all, *width, words);
            continue;
        }
        let mut own = StreamingRoot::new();
        for rec in words.chunks_exact((*width).max(1)) {
            let leaf = h.leaf_hash_words(rec);
            own.append(h, leaf);
            all.append(h, leaf);
        }
        per.push(own.root(h));
    }
    let data_root = all.root(h);
    if !several {
        per = alloc::vec![data_root; inputs.len()];
    }
    Commitment { data_root, inputs: per }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn spec() -> InputSpec {
        let schema = vec![
            ("when".to_string(), Type::Date),
            ("ok".to_string(), Type::Bool),
            ("amount".to_string(), Type::Decimal(2)),
            ("kind".to_string(), Type::Enum(["a", "b"].iter().map(|s| s.to_string()).collect())),
            ("id".to_string(), Type::Digest),
        ];
        InputSpec { id: "rows".into(), step: 0, formats: vec![None; schema.len()], schema, commitment: None }
    }

    fn table() -> Table {
        let id = |b: u8| core::array::from_fn(|i| b.wrapping_add(i as u8));
        Table {
            rows: 3,
            cols: vec![
                Col::Num(vec![-1, 0, *DATE_RANGE.end()]),
                Col::Num(vec![1, 0, 1]),
                Col::Num(vec![i64::MIN, -5, i64::MAX]),
                Col::Num(vec![1, 0, 1]),
                Col::Digest(vec![id(0), id(100), id(200)]),
            ],
        }
    }

    #[test]
    fn decode_inverts_encode() {
        let s = spec();
        let words = encode(&s, &table());
        assert_eq!(words.len(), 3 * s.record_words());
        let t = decode(&s, &words).unwrap();
        assert_eq!(t.rows, 3);
        for (got, want) in t.cols.iter().zip(&table().cols) {
            match (got, want) {
                (Col::Num(a), Col::Num(b)) => assert_eq!(a, b),
                (Col::Digest(a), Col::Digest(b)) => assert_eq!(a, b),
                _ => panic!("column kinds differ"),
            }
        }
    }

    /// Word offsets in a record of [`spec`]: date 0, bool 1, decimal 2-3, enum 4.
    #[test]
    fn the_first_bad_cell_in_row_order_is_reported() {
        let s = spec();
        let width = s.record_words();
        let mut words = encode(&s, &table());
        // Record 2's date (leftmost column) and record 1's enum: record 1
        // comes first in a row-by-row scan.
        words[2 * width] = (*DATE_RANGE.end() + 1) as u32;
        words[width + 4] = 2;
        let e = decode(&s, &words).unwrap_err();
        assert_eq!((e.record, e.column.as_str(), e.message), (1, "kind", "enum cell is not a declared label"));
        // In the same record, the leftmost column.
        words[width] = (*DATE_RANGE.start() - 1) as u32;
        words[width + 1] = 2;
        let e = decode(&s, &words).unwrap_err();
        assert_eq!((e.record, e.column.as_str(), e.message), (1, "when", "date out of range (years -9999 to 9999)"));
        words[width] = 0;
        let e = decode(&s, &words).unwrap_err();
        assert_eq!((e.record, e.column.as_str(), e.message), (1, "ok", "bool cell is neither 0 nor 1"));
        assert_eq!(e.to_string(), "input `rows`, record 1, column `ok`: bool cell is neither 0 nor 1");
    }
}
