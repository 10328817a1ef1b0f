//! A validated plan with its data read, encoded and committed: everything a
//! run or a proof needs, built once for the CLI and the proof server alike.

use std::fmt;

use zkaudit_merkle::Sha2;

use crate::source::PlanFile;
use crate::table::Table;
use crate::{records, Journal, Outcome, Program, RunError};

/// A plan file, its compiled program and its inputs' records.
#[derive(Debug)]
pub struct Loaded {
    /// The plan file (its canonical JSON and hash).
    pub file: PlanFile,
    /// The validated program.
    pub program: Program,
    /// Per data input, in plan order: `(record count, record words)`.
    pub inputs: Vec<(usize, Vec<u32>)>,
    /// The RFC 9162 data commitment over all inputs' records.
    pub commitment: records::Commitment,
}

/// Data given for the plan's inputs does not match them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputMismatch {
    /// Data was given for a name that is no `data-input` step.
    Unknown {
        /// The name given.
        name: String,
        /// The plan's data-input IDs.
        inputs: Vec<String>,
    },
    /// The same input was given twice.
    Twice(String),
    /// An input has no data.
    Missing(String),
}

impl fmt::Display for InputMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputMismatch::Unknown { name, inputs } => {
                write!(f, "the plan has no data-input `{name}` (its inputs: {})", inputs.join(", "))
            }
            InputMismatch::Twice(name) => write!(f, "data for `{name}` is given twice"),
            InputMismatch::Missing(name) => write!(f, "no data for input `{name}`"),
        }
    }
}

impl std::error::Error for InputMismatch {}

/// Checks that `names` are exactly the program's data inputs, each once, and
/// returns, per input in plan order, the position in `names` of its data.
///
/// # Errors
/// [`InputMismatch`] for the first name that is unknown or repeated, or the
/// first input without data.
pub fn match_inputs(program: &Program, names: &[&str]) -> Result<Vec<usize>, InputMismatch> {
    for (i, name) in names.iter().enumerate() {
        if !program.inputs.iter().any(|s| s.id == *name) {
            let inputs = program.inputs.iter().map(|s| s.id.clone()).collect();
            return Err(InputMismatch::Unknown { name: (*name).to_owned(), inputs });
        }
        if names[..i].contains(name) {
            return Err(InputMismatch::Twice((*name).to_owned()));
        }
    }
    program.inputs.iter().map(|s| names.iter().position(|n| *n == s.id).ok_or_else(|| InputMismatch::Missing(s.id.clone()))).collect()
}

impl Loaded {
    /// Encodes `tables` (one per data input, in plan order, as
    /// [`match_inputs`] orders them) and commits to their records.
    pub fn new(file: PlanFile, program: Program, tables: &[Table]) -> Loaded {
        let inputs = program.inputs.iter().zip(tables).map(|(spec, t)| (t.rows, records::encode(spec, t))).collect();
        Loaded::committed(file, program, inputs)
    }

    /// `inputs` (`(records, words)` per data input) with their commitment.
    fn committed(file: PlanFile, program: Program, inputs: Vec<(usize, Vec<u32>)>) -> Loaded {
        let sized: Vec<(usize, &[u32])> = program.inputs.iter().zip(&inputs).map(|(s, (_, w))| (s.record_words(), w.as_slice())).collect();
        let commitment = records::commit(&Sha2, &sized);
        Loaded { file, program, inputs, commitment }
    }

    /// The same plan over every input's records repeated `k` times, with
    /// its commitment recomputed: how `zkaudit bench cycles` measures the
    /// marginal cost of a record.
    pub fn repeated(&self, k: usize) -> Loaded {
        let inputs = self.inputs.iter().map(|(n, w)| (n * k, w.repeat(k))).collect();
        Loaded::committed(self.file.clone(), self.program.clone(), inputs)
    }

    /// Total records over all inputs.
    pub fn records(&self) -> usize {
        self.inputs.iter().map(|(n, _)| n).sum()
    }

    /// Runs the plan natively (the hash-commitment tier): the same journal
    /// the guest commits, and the full outcome.
    ///
    /// # Errors
    /// [`RunError`] if execution fails (a limit, a division by zero, …).
    pub fn run_native(&self) -> Result<(Journal, Outcome), RunError> {
        let words: Vec<Vec<u32>> = self.inputs.iter().map(|(_, w)| w.clone()).collect();
        crate::finish(&self.program, &self.file.hash, &self.commitment.data_root, &words, &Sha2)
    }
}
