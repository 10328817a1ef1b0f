//! The application layer's error type.

use std::path::PathBuf;

/// Why a use case failed. Each variant names what was being done and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ledger (log directory) failed.
    #[error("ledger {dir}: {source}")]
    Ledger {
        /// The ledger directory.
        dir: PathBuf,
        /// The log's error.
        source: zkaudit_tlog::Error,
    },
    /// The secondary index failed.
    #[error("index {spec}: {source}")]
    Index {
        /// The index (SQLite path or PostgreSQL URL).
        spec: String,
        /// The index's error.
        source: zkaudit_index::Error,
    },
    /// A JSON Lines input was rejected; `committed` says what of it was
    /// committed before (nothing, unless it was cut into batches).
    #[error("{error}\n({committed})")]
    Input {
        /// What is wrong with the input.
        error: zkaudit_event::BatchError,
        /// What was committed before.
        committed: crate::ledger::CommittedBefore,
    },
    /// A plan or its data could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::plans::LoadError),
    /// The plan failed at run time (natively).
    #[error("running the plan: {0}")]
    Run(#[from] zkaudit_plan::RunError),
    /// Executing or proving in the zkVM failed.
    #[error(transparent)]
    Prove(#[from] zkaudit_zkvm::ProveError),
    /// A receipt did not verify.
    #[error(transparent)]
    Verify(#[from] zkaudit_zkvm::VerifyError),
    /// The guest's journal differs from the native run's.
    #[error("the guest's journal differs from native execution (guest output {guest}, native {native}); refusing to go on")]
    JournalMismatch {
        /// The guest's public output.
        guest: String,
        /// The native public output.
        native: String,
    },
    /// A proof event is malformed.
    #[error(transparent)]
    Claim(#[from] crate::claim::ClaimError),
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] zkaudit_jobs::Error),
    /// A settlement step was refused or its ledger failed (nothing moved).
    #[error("settlement: {0}")]
    Settle(String),
    /// A market step that the state of things refuses now (a prover
    /// registered already, an unbonding period still running, stake still
    /// locked, no prover to select); nothing moved.
    #[error("{0}")]
    Conflict(String),
    /// A job's stored result or plan cannot be recorded.
    #[error("job {job}: {reason}")]
    Job {
        /// The job ID.
        job: String,
        /// What is wrong.
        reason: String,
    },
    /// A compliance pack failed to load or evaluate.
    #[error(transparent)]
    Pack(#[from] zkaudit_audit::pack::PackError),
    /// A pack name is neither built in nor a file.
    #[error("--pack {name}: neither a built-in pack ({known}) nor a file")]
    UnknownPack {
        /// The name given.
        name: String,
        /// The built-in packs' names.
        known: String,
    },
}

impl Error {
    pub(crate) fn ledger(dir: &std::path::Path) -> impl FnOnce(zkaudit_tlog::Error) -> Error + '_ {
        move |source| Error::Ledger { dir: dir.to_owned(), source }
    }
}
