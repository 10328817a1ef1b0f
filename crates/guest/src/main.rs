//! The zkaudit guest: runs one execution plan inside the RISC Zero zkVM.
//!
//! It reads the input word stream described in `zkaudit_plan::journal`,
//! checks that the plan bytes hash to the given plan hash and the records to
//! the given data root (RFC 9162), executes the plan with the same
//! interpreter `zkaudit run` uses, and commits the journal
//! `plan_hash ‖ data_root ‖ output_hash ‖ public output`. Any mismatch or
//! run-time error panics, so no receipt exists for it.
//!
//! It owns nothing but this glue: the plan language lives in `zkaudit-plan`,
//! hashing is the zkVM's SHA-256 ecall ([`sha`]).

mod sha;

use risc0_zkvm::guest::env;
use zkaudit_plan::journal::{plan_bytes, words_hash, HEADER_WORDS, INPUT_FORMAT};
use zkaudit_plan::Intake;

use crate::sha::Accelerated;

/// Words in one page of the zkVM's memory (1 KiB).
const PAGE_WORDS: usize = 256;

fn main() {
    let mut header = [0u32; HEADER_WORDS];
    env::read_slice(&mut header);
    assert_eq!(header[0], INPUT_FORMAT, "unsupported input format {}", header[0]);
    let plan_len = header[1] as usize;
    let plan_hash = words_hash(&header[2..10]);
    let data_root = words_hash(&header[10..18]);
    let n_inputs = header[18] as usize;

    let mut words = vec![0u32; plan_len.div_ceil(4)];
    env::read_slice(&mut words);
    let plan = plan_bytes(&words, plan_len);
    let hasher = Accelerated::new();
    let program = zkaudit_plan::prepare(&plan, &plan_hash, &hasher).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n_inputs, program.inputs.len(), "the plan has {} data inputs, {n_inputs} were sent", program.inputs.len());

    // Records are read a page at a time into one buffer, committed and
    // decoded as they come: a buffer for all of them would be memory
    // written once and paged in and out for nothing.
    let mut intake = Intake::new(&program);
    let mut buf = Vec::new();
    for spec in &program.inputs {
        let mut count = [0u32; 1];
        env::read_slice(&mut count);
        let mut left = count[0] as usize;
        intake.begin(left, &hasher).unwrap_or_else(|e| panic!("{e}"));
        let width = spec.record_words();
        let per_read = (PAGE_WORDS / width).max(1);
        buf.resize(per_read.min(left) * width, 0);
        while left > 0 {
            let n = per_read.min(left);
            let words = &mut buf[..n * width];
            env::read_slice(words);
            intake.push(words, &hasher).unwrap_or_else(|e| panic!("{e}"));
            left -= n;
        }
    }
    let (journal, _) = intake.finish(&plan_hash, &data_root, &hasher).unwrap_or_else(|e| panic!("{e}"));
    env::commit_slice(&journal.encode());
}
