//! Execution plans: the computation zkaudit proves.
//!
//! This crate owns the plan language end to end:
//!
//! * [`ir`]: the plan IR (serde types; JSON Schema with the `std` feature),
//! * [`validate`]: references, cycles, types and limits, compiling a plan
//!   into a [`Program`], with JSON-pointer diagnostics,
//! * [`exec`]: the deterministic, integer-only interpreter,
//! * [`records`]: the canonical record encoding and the RFC 9162 data
//!   commitment,
//! * [`journal`]: the journal layout and the guest's input word stream,
//! * [`prepare`] and [`finish`] (or [`Intake`], which takes the records in
//!   pieces, as the RISC Zero guest does): the exact sequence the guest
//!   runs, shared with native execution so both agree byte for byte.
//!
//! The core is `no_std + alloc` and runs unchanged inside the guest. With the
//! `std` feature (the default) it also reads plan files with source positions
//! ([`source`]) and CSV / JSON Lines data files ([`data`]), and joins them
//! into a [`loaded::Loaded`] plan ready to run or prove.
//!
//! It must not touch the zkVM, receipts, the ledger or the registry: those
//! belong to `zkaudit-zkvm` and `zkaudit-tlog`.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod exec;
pub mod expr;
pub mod ir;
pub mod journal;
pub mod output;
mod pointer;
pub mod records;
pub mod table;
pub mod validate;
pub mod value;

#[cfg(feature = "std")]
pub mod data;
#[cfg(feature = "std")]
pub mod loaded;
#[cfg(feature = "std")]
pub mod source;

use alloc::string::String;
use alloc::vec::Vec;

use zkaudit_merkle::{Hash, Hasher};

pub use exec::{execute, ExecError, Outcome};
pub use ir::Plan;
pub use journal::Journal;
pub use validate::{compile, Bounds, Diagnostic, Program};

/// Why a committed execution was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The plan bytes do not hash to the expected plan hash.
    #[error("plan hash mismatch: expected {expected}, the plan hashes to {computed}")]
    PlanHash {
        /// Hex of the expected hash.
        expected: String,
        /// Hex of the computed hash.
        computed: String,
    },
    /// The plan bytes are not a plan.
    #[error("plan does not parse: {0}")]
    PlanParse(String),
    /// The plan does not validate.
    #[error("plan is invalid: {}", .0.iter().map(|d| alloc::format!("{}: {}", d.path, d.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Diagnostic>),
    /// The records do not hash to the expected data root.
    #[error("data root mismatch: expected {expected}, the records hash to {computed}")]
    DataRoot {
        /// Hex of the expected root.
        expected: String,
        /// Hex of the computed root.
        computed: String,
    },
    /// An input's records do not match its declared `dataCommitment`.
    #[error("input `{input}` does not match its dataCommitment: declared {declared}, the records hash to {computed}")]
    Commitment {
        /// Input step ID.
        input: String,
        /// Hex of the declared commitment.
        declared: String,
        /// Hex of the computed root.
        computed: String,
    },
    /// The number of record words is not a whole number of records.
    #[error("input `{input}`: {words} words is not a whole number of {width}-word records")]
    Ragged {
        /// Input step ID.
        input: String,
        /// Words given.
        words: usize,
        /// Words per record.
        width: usize,
    },
    /// A record cell is invalid for its type.
    #[error(transparent)]
    Record(#[from] records::RecordError),
    /// Execution failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// Checks that `plan_jcs` hashes to `plan_hash`, parses and validates it.
///
/// # Errors
/// [`RunError::PlanHash`], [`RunError::PlanParse`] or [`RunError::Invalid`].
pub fn prepare(plan_jcs: &[u8], plan_hash: &Hash, h: &dyn Hasher) -> Result<Program, RunError> {
    let computed = h.sha256(plan_jcs);
    if computed != *plan_hash {
        return Err(RunError::PlanHash { expected: value::hex(plan_hash), computed: value::hex(&computed) });
    }
    // One UTF-8 check of the whole text: `from_slice` would check every
    // string again, which in the zkVM cost more than the check itself.
    let text = core::str::from_utf8(plan_jcs).map_err(|e| RunError::PlanParse(alloc::format!("{e}")))?;
    let plan: Plan = serde_json::from_str(text).map_err(|e| RunError::PlanParse(alloc::format!("{e}")))?;
    compile(&plan, &Bounds::default()).map_err(RunError::Invalid)
}

/// Checks the records against `data_root` and the plan's declared data
/// commitments, decodes and executes them, and returns the journal with the
/// full outcome (whose private columns the journal leaves out).
///
/// `inputs` holds each data input's record words, in plan order. This is
/// [`Intake`] with each input given whole.
///
/// # Errors
/// Any [`RunError`] after [`prepare`]'s.
pub fn finish(program: &Program, plan_hash: &Hash, data_root: &Hash, inputs: &[Vec<u32>], h: &dyn Hasher) -> Result<(Journal, Outcome), RunError> {
    if inputs.len() != program.inputs.len() {
        return Err(ExecError::InputCount { expected: program.inputs.len(), got: inputs.len() }.into());
    }
    let mut intake = Intake::new(program);
    for (spec, words) in program.inputs.iter().zip(inputs) {
        intake.begin(words.len() / spec.record_words(), h)?;
        intake.push(words, h)?;
    }
    intake.finish(plan_hash, data_root, h)
}

/// The records of a program's data inputs taken in pieces, committed and
/// decoded as they come: what [`finish`] does, for a zkVM guest that reads
/// its records through one small reused buffer instead of holding them all
/// (every page of memory written costs it paging cycles).
///
/// Inputs come in plan order: [`begin`](Self::begin) one, then
/// [`push`](Self::push) its records in order, any number of times.
pub struct Intake<'p> {
    program: &'p Program,
    commitment: records::Committer,
    /// The decoded records of the inputs begun so far.
    tables: Vec<table::Table>,
}

impl<'p> Intake<'p> {
    /// An intake of `program`'s inputs, none begun.
    pub fn new(program: &'p Program) -> Self {
        Intake { program, commitment: records::Committer::new(program.inputs.len()), tables: Vec::with_capacity(program.inputs.len()) }
    }

    /// Ends the current input, if any, and begins the next one, with room
    /// for `records` records.
    ///
    /// # Errors
    /// [`ExecError::InputCount`] when every input has begun already.
    pub fn begin(&mut self, records: usize, h: &dyn Hasher) -> Result<(), RunError> {
        let Some(spec) = self.program.inputs.get(self.tables.len()) else {
            return Err(ExecError::InputCount { expected: self.program.inputs.len(), got: self.tables.len() + 1 }.into());
        };
        if !self.tables.is_empty() {
            self.commitment.end_input(h);
        }
        self.tables.push(records::empty_table(spec, records));
        Ok(())
    }

    /// Takes the next records of the current input: `words`, a whole
    /// number of records.
    ///
    /// # Errors
    /// [`RunError::Ragged`] for a partial record, [`RunError::Record`] for
    /// an invalid cell (named by its record's index in the input),
    /// [`ExecError::InputCount`] before any [`begin`](Self::begin).
    pub fn push(&mut self, words: &[u32], h: &dyn Hasher) -> Result<(), RunError> {
        let Some(i) = self.tables.len().checked_sub(1) else {
            return Err(ExecError::InputCount { expected: self.program.inputs.len(), got: 0 }.into());
        };
        // `begin` adds a table only for an input the program has.
        let (spec, table) = (&self.program.inputs[i], &mut self.tables[i]);
        let width = spec.record_words();
        if !words.len().is_multiple_of(width) {
            return Err(RunError::Ragged { input: spec.id.clone(), words: words.len(), width });
        }
        self.commitment.push(h, width, words);
        records::decode_into(spec, words, table)?;
        Ok(())
    }

    /// Checks the records taken against `data_root` and the plan's
    /// declared data commitments, executes the plan over them, and returns
    /// the journal with the full outcome (whose private columns the journal
    /// leaves out).
    ///
    /// # Errors
    /// [`ExecError::InputCount`] unless every input has begun,
    /// [`RunError::DataRoot`], [`RunError::Commitment`], or the
    /// execution's [`RunError::Exec`].
    pub fn finish(self, plan_hash: &Hash, data_root: &Hash, h: &dyn Hasher) -> Result<(Journal, Outcome), RunError> {
        let program = self.program;
        if self.tables.len() != program.inputs.len() {
            return Err(ExecError::InputCount { expected: program.inputs.len(), got: self.tables.len() }.into());
        }
        let c = self.commitment.finish(h);
        if c.data_root != *data_root {
            return Err(RunError::DataRoot { expected: value::hex(data_root), computed: value::hex(&c.data_root) });
        }
        for (spec, got) in program.inputs.iter().zip(&c.inputs) {
            if let Some(declared) = spec.commitment {
                if declared != *got {
                    return Err(RunError::Commitment { input: spec.id.clone(), declared: value::hex(&declared), computed: value::hex(got) });
                }
            }
        }
        let out = execute(program, self.tables, h)?;
        let journal = Journal { plan_hash: *plan_hash, data_root: *data_root, output_hash: out.output_hash, output: out.public.clone() };
        Ok((journal, out))
    }
}
