//! The proof server's persistent state and its workers.
//!
//! This crate owns:
//!
//! * [`Store`]: the job queue with its lifecycle
//!   (`queued → running (executing | proving) → succeeded | failed |
//!   timed_out | cancelled`), uploaded data blobs, receipts and API tokens,
//!   in SQLite (one process) or PostgreSQL (workers on several machines,
//!   which claim jobs with `FOR UPDATE SKIP LOCKED`);
//! * [`worker`]: the loop that claims a job, runs it as a supervised child
//!   process (so a cancelled or timed-out prover is killed, not left to
//!   finish), heartbeats, and records the outcome;
//! * [`protocol`]: the one definition of what a worker and its child say to
//!   each other (request, progress lines, result reports);
//! * idempotency keys of ledger appends, and the `ledger_index` of each
//!   proof job once its proof event is recorded;
//! * [`TokenCache`]: token lookups cached for the front ends that
//!   authenticate every request.
//!
//! It must not speak HTTP (that is `zkaudit-server`), parse plans or data
//! (`zkaudit-plan`), or prove in-process (`zkaudit-zkvm`, reached through
//! the child process).

#![forbid(unsafe_code)]

mod db;
mod model;
pub mod protocol;
mod store;
mod tokens;
pub mod worker;

pub use model::{DataRef, Job, JobSpec, JobView, Mode, NewJob, Phase, Scope, State, Token};
pub use store::{Finish, Idempotent, Recovered, Stats, Store, Submitted};
pub use tokens::{TokenCache, TOKEN_CACHE_TTL};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL or path is unusable.
    #[error("job store configuration: {0}")]
    Config(String),
    /// The database reported an error.
    #[error("job store: {0}")]
    Db(String),
    /// A stored row could not be read back (a column has the wrong type).
    #[error("job store: corrupt row in {table}: {what}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        what: String,
    },
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(e.to_string())
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Db(e.to_string())
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
