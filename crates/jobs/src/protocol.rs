//! The protocol between a worker and the `zkaudit` child process that runs
//! one job, defined once and used by both sides.
//!
//! * The worker starts `zkaudit <`[`CHILD_COMMAND`]`> <request JSON>`: one
//!   argument, a [`ChildRequest`] (mode, plan file, data files, receipt path,
//!   segment size).
//! * The child reports [`ChildProgress`] as one JSON line each on stderr
//!   (any other stderr line is error text), and exits when its stdin closes,
//!   so it never outlives its worker.
//! * On success it prints one JSON line on stdout: a [`ProveReport`]
//!   (mode `prove`) or a [`RunReport`] (mode `execute-only`). These are
//!   also what `zkaudit prove --json` and `zkaudit run --json` print, and
//!   what the API shows as a job's `result`.
//!
//! Keys are camelCase, as the CLI's `--json` output has always used.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::Mode;

/// The hidden `zkaudit` subcommand that runs one job for a worker.
pub const CHILD_COMMAND: &str = "job-child";

/// What the child is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChildRequest {
    /// Prove, or execute in the zkVM without proving.
    pub mode: Mode,
    /// The plan file (canonical JSON).
    pub plan: PathBuf,
    /// Per data input: its name and data file (CSV, or JSON Lines for a
    /// `.jsonl` file).
    pub data: Vec<(String, PathBuf)>,
    /// Where a proof's receipt is written (mode `prove`).
    pub receipt: PathBuf,
    /// Segment size as a power of two (cycles); `None` chooses it per job
    /// (`zkaudit_zkvm::best_segment_po2`).
    pub segment_po2: Option<u32>,
}

impl ChildRequest {
    /// The child's arguments: [`CHILD_COMMAND`] and this request as JSON.
    ///
    /// # Errors
    /// If a path is not UTF-8 (JSON cannot carry it).
    pub fn args(&self) -> Result<Vec<OsString>, serde_json::Error> {
        Ok(vec![CHILD_COMMAND.into(), serde_json::to_string(self)?.into()])
    }

    /// Parses the request argument.
    ///
    /// # Errors
    /// The JSON error, naming the field.
    pub fn parse(arg: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(arg)
    }
}

/// One progress report, a JSON line on the child's stderr:
/// `{"progress": "executing" | "proving" | "segment" | "compressing", …}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "progress", rename_all = "camelCase")]
pub enum ChildProgress {
    /// The guest runs in the zkVM executor.
    Executing,
    /// Execution is done and proving starts.
    #[serde(rename_all = "camelCase")]
    Proving {
        /// Total cycles.
        total_cycles: u64,
        /// Segments to prove.
        segments: u64,
    },
    /// `done` of `of` segments are proven.
    Segment {
        /// Segments proven so far.
        done: u64,
        /// Segments in all.
        of: u64,
    },
    /// Compressing to a succinct receipt.
    Compressing,
}

impl ChildProgress {
    /// Parses a stderr line; `None` if it is not a progress report.
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }

    /// The line to write (no newline).
    ///
    /// # Errors
    /// Never in practice (the variants hold only integers); the serializer's error otherwise.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Cycle counts of a zkVM execution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cycles {
    /// Cycles spent in the guest's own instructions.
    pub user_cycles: u64,
    /// Cycles spent paging memory in and out.
    pub paging_cycles: u64,
    /// Cycles reserved by the segment format.
    pub reserved_cycles: u64,
    /// All cycles, the sum of the segments' padded sizes.
    pub total_cycles: u64,
    /// Segments.
    pub segments: u64,
    /// `user_cycles` per input record.
    pub user_cycles_per_record: f64,
}

/// The result of a proof (`zkaudit prove --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProveReport {
    /// Where the receipt was written (not kept in a job's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// Size of the receipt (bytes).
    pub receipt_bytes: u64,
    /// SHA-256 of the receipt, 64 hex digits.
    pub receipt_digest: String,
    /// Receipt kind, e.g. `composite`.
    pub kind: String,
    /// The guest's image ID, 64 hex digits.
    pub image_id: String,
    /// SHA-256 of the plan's canonical JSON (hex).
    pub plan_hash: String,
    /// RFC 9162 root over the input records (hex).
    pub data_root: String,
    /// SHA-256 of the full output (hex).
    pub output_hash: String,
    /// The public output columns.
    pub public_output: serde_json::Value,
    /// Input records.
    pub records: u64,
    /// What the execution cost.
    pub cycles: Cycles,
    /// Wall time of proving, execution excluded (seconds).
    pub prove_seconds: f64,
    /// True when the receipt came from the prover's receipt cache: proved
    /// earlier for the same guest, plan and data, and verified again now;
    /// `cycles`, `proveSeconds` and `peakRssBytes` are then that proof's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// Peak resident memory of the prover (bytes), where known.
    pub peak_rss_bytes: Option<u64>,
    /// Leaf index of the proof event, when recorded in a ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_index: Option<u64>,
    /// Where the receipt was stored by `zkaudit prove --store`: a Blossom
    /// URL (ending in its SHA-256) or `ipfs://<CID>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_ref: Option<String>,
}

/// The result of a run (`zkaudit run --json`), native and optionally in the
/// zkVM executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunReport {
    /// SHA-256 of the plan's canonical JSON (hex).
    pub plan_hash: String,
    /// RFC 9162 root over the input records (hex).
    pub data_root: String,
    /// Input records.
    pub records: u64,
    /// SHA-256 of the full output (hex).
    pub output_hash: String,
    /// The full output, private columns included (never kept in a job's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// The public output columns.
    pub public_output: serde_json::Value,
    /// Cycles in the zkVM executor, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zkvm: Option<Cycles>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_round_trip_in_the_wire_shape() {
        let p = ChildProgress::Proving { total_cycles: 524_288, segments: 2 };
        let line = p.to_line().unwrap();
        assert_eq!(line, r#"{"progress":"proving","totalCycles":524288,"segments":2}"#);
        assert_eq!(ChildProgress::parse(&line), Some(p));
        assert_eq!(ChildProgress::parse(r#"{"progress":"segment","done":1,"of":2}"#), Some(ChildProgress::Segment { done: 1, of: 2 }));
        assert_eq!(ChildProgress::parse("error: the plan is invalid"), None);
    }

    #[test]
    fn requests_round_trip_through_the_argument() {
        let r = ChildRequest {
            mode: Mode::Prove,
            plan: "/tmp/j/plan.json".into(),
            data: vec![("payments".into(), "/tmp/j/payments.csv".into())],
            receipt: "/tmp/j/receipt.bin".into(),
            segment_po2: Some(18),
        };
        let args = r.args().unwrap();
        assert_eq!(args[0], CHILD_COMMAND);
        assert_eq!(ChildRequest::parse(args[1].to_str().unwrap()).unwrap(), r);
        assert!(ChildRequest::parse(r#"{"mode":"prove"}"#).unwrap_err().to_string().contains("missing field"));
    }
}
