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

/// A table of no rows with the columns of `spec`, with room for `rows`.
pub(crate) fn empty_table(spec: &InputSpec, rows: usize) -> Table {
    Table { rows: 0, cols: spec.schema.iter().map(|(_, ty)| Col::for_type(ty, rows)).collect() }
}

/// Decodes `words` (a whole number of records) into `t` (a table of
/// `spec`'s columns, as [`empty_table`] makes), after its rows, checking
/// that each cell is valid for its type. An error names the record by its
/// index in the whole input; `t` may then hold some of these records'
/// cells, and is meant to be dropped.
///
/// # Errors
/// [`RecordError`] naming the record and column of the first invalid cell.
pub(crate) fn decode_into(spec: &InputSpec, words: &[u32], t: &mut Table) -> Result<(), RecordError> {
    let width = spec.record_words();
    let rows = words.len().checked_div(width).unwrap_or(0);
    // Column by column, so the type is matched once per column, not per
    // cell, and each column is checked in the pass that converts it; of
    // several bad cells, the one a row-by-row scan meets first (lowest
    // record, then leftmost column) is reported.
    let mut bad: Option<(usize, usize, &'static str)> = None;
    let mut at = 0;
    for (c, ((_, ty), col)) in spec.schema.iter().zip(&mut t.cols).enumerate() {
        let mut note = |r: Option<usize>, message: &'static str| {
            if let Some(r) = r {
                if bad.is_none_or(|(r0, _, _)| r < r0) {
                    bad = Some((r, c, message));
                }
            }
        };
        match (ty, col) {
            (Type::Digest, Col::Digest(v)) => v.extend(words.chunks_exact(width).map(|rec| {
                let mut d = [0u8; 32];
                for (b, w) in d.chunks_exact_mut(4).zip(&rec[at..at + 8]) {
                    b.copy_from_slice(&w.to_le_bytes());
                }
                d
            })),
            (Type::Int | Type::Decimal(_), Col::Num(v)) => {
                column::<2>(words, width, at, |_| true, |[lo, hi]| i64::from(lo) | (i64::from(hi) << 32), v);
            }
            (Type::Date, Col::Num(v)) => {
                let r = column::<1>(words, width, at, |w| DATE_RANGE.contains(&i64::from(w as i32)), |[w]| i64::from(w as i32), v);
                note(r, "date out of range (years -9999 to 9999)");
            }
            (Type::Bool, Col::Num(v)) => {
                let r = column::<1>(words, width, at, |w| w <= 1, |[w]| i64::from(w), v);
                note(r, "bool cell is neither 0 nor 1");
            }
            (Type::Enum(labels), Col::Num(v)) => {
                let n = labels.len();
                let r = column::<1>(words, width, at, |w| (w as usize) < n, |[w]| i64::from(w), v);
                note(r, "enum cell is not a declared label");
            }
            _ => unreachable!("the table has the columns of the input's schema"),
        }
        at += ty.words();
    }
    if let Some((record, c, message)) = bad {
        return Err(RecordError { input: spec.id.clone(), record: t.rows + record, column: spec.schema[c].0.clone(), message });
    }
    t.rows += rows;
    Ok(())
}

/// Appends to `out` the cells of the `N`-word column at word `at` of each
/// `width`-word record in `words`, converted by `value`, and returns the
/// first record whose first cell word fails `ok` (`None` if all pass).
///
/// One pass: a cell is checked as it is converted, and the failing record
/// is searched for only when one failed (the guest decodes every record
/// once, so a second pass over a column is a real cost there).
fn column<const N: usize>(
    words: &[u32],
    width: usize,
    at: usize,
    ok: impl Fn(u32) -> bool,
    value: impl Fn([u32; N]) -> i64,
    out: &mut Vec<i64>,
) -> Option<usize> {
    let mut all_ok = true;
    out.extend(words.chunks_exact(width).map(|rec| {
        let cell: [u32; N] = core::array::from_fn(|i| rec[at + i]);
        all_ok &= ok(cell[0]);
        value(cell)
    }));
    if all_ok {
        None
    } else {
        words.chunks_exact(width).position(|rec| !ok(rec[at]))
    }
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
    let mut c = Committer::new(inputs.len());
    for (width, words) in inputs {
        c.push(h, *width, words);
        c.end_input(h);
    }
    c.finish(h)
}

/// A [`Commitment`] built from records given in pieces: every record of
/// the first input, then of the next, in plan order (what [`commit`] does
/// in one call).
pub struct Committer {
    /// The tree over all inputs.
    all: StreamingRoot,
    /// With several inputs, the tree of the current one (none with one
    /// input, whose tree is the one over all).
    own: Option<StreamingRoot>,
    /// The tree heads of the inputs ended so far.
    per: Vec<Hash>,
    inputs: usize,
}

impl Committer {
    /// A commitment over `inputs` data inputs, none of their records taken yet.
    pub fn new(inputs: usize) -> Self {
        Committer { all: StreamingRoot::new(), own: (inputs > 1).then(StreamingRoot::new), per: Vec::with_capacity(inputs), inputs }
    }

    /// Takes the next records of the current input: `words`, records of
    /// `width` words (a trailing partial record is ignored, and nothing is
    /// taken for a `width` of 0, as [`Hasher::append_records`] does).
    pub fn push(&mut self, h: &dyn Hasher, width: usize, words: &[u32]) {
        if width == 0 {
            return;
        }
        match &mut self.own {
            None => h.append_records(&mut self.all, width, words),
            Some(own) => {
                for rec in words.chunks_exact(width) {
                    let leaf = h.leaf_hash_words(rec);
                    own.append(h, leaf);
                    self.all.append(h, leaf);
                }
            }
        }
    }

    /// Ends the current input: the next [`push`](Self::push) takes the
    /// next input's records.
    pub fn end_input(&mut self, h: &dyn Hasher) {
        if let Some(own) = &mut self.own {
            self.per.push(own.root(h));
            *own = StreamingRoot::new();
        }
    }

    /// The tree heads. The current input, and those never started (empty
    /// trees), end here.
    pub fn finish(mut self, h: &dyn Hasher) -> Commitment {
        let data_root = self.all.root(h);
        if self.own.is_none() {
            self.per = alloc::vec![data_root; self.inputs];
        }
        while self.per.len() < self.inputs {
            self.end_input(h);
        }
        Commitment { data_root, inputs: self.per }
    }
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

    fn decode(spec: &InputSpec, words: &[u32]) -> Result<Table, RecordError> {
        let mut t = empty_table(spec, 0);
        decode_into(spec, words, &mut t)?;
        Ok(t)
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
