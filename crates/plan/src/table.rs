//! Columnar tables: the values flowing between steps.

use alloc::vec::Vec;

use zkaudit_merkle::Hash;

use crate::value::Type;

/// One column's cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Col {
    /// Numeric, bool, date and enum cells (see [`crate::value`]).
    Num(Vec<i64>),
    /// Digest cells.
    Digest(Vec<Hash>),
}

impl Col {
    /// An empty column able to hold values of `ty`, with room for `rows`.
    pub fn for_type(ty: &Type, rows: usize) -> Col {
        if *ty == Type::Digest {
            Col::Digest(Vec::with_capacity(rows))
        } else {
            Col::Num(Vec::with_capacity(rows))
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            Col::Num(v) => v.len(),
            Col::Digest(v) => v.len(),
        }
    }

    /// Whether the column has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of cell data (8 per number, 32 per digest), for memory limits.
    pub fn bytes(&self) -> u64 {
        self.cell_bytes() * self.len() as u64
    }

    /// Bytes of one cell: 8 for a number, 32 for a digest.
    pub fn cell_bytes(&self) -> u64 {
        match self {
            Col::Num(_) => 8,
            Col::Digest(_) => 32,
        }
    }

    /// Appends cell `r` of `from` (same kind).
    pub fn push_from(&mut self, from: &Col, r: usize) {
        match (self, from) {
            (Col::Num(a), Col::Num(b)) => a.push(b[r]),
            (Col::Digest(a), Col::Digest(b)) => a.push(b[r]),
            _ => unreachable!("columns of one schema position have one kind"),
        }
    }
}

/// A table: equally long columns, in schema order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Number of rows.
    pub rows: usize,
    /// The columns.
    pub cols: Vec<Col>,
}

impl Table {
    /// Numeric cell `(c, r)`.
    #[inline]
    pub fn num(&self, c: usize, r: usize) -> i64 {
        match &self.cols[c] {
            Col::Num(v) => v[r],
            Col::Digest(_) => unreachable!("type checker resolved a numeric column"),
        }
    }

    /// Digest cell `(c, r)`.
    #[inline]
    pub fn digest(&self, c: usize, r: usize) -> Hash {
        match &self.cols[c] {
            Col::Digest(v) => v[r],
            Col::Num(_) => unreachable!("type checker resolved a digest column"),
        }
    }

    /// Bytes of cell data, for memory limits.
    pub fn bytes(&self) -> u64 {
        self.cols.iter().map(Col::bytes).sum()
    }
}
