//! Jobs, their states, and API tokens.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The wire and database name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("`{s}` is not one of {}", names.join(", "))
                })
            }
        }
    };
}

named_enum! {
    /// Where a job is in its lifecycle.
    State {
        /// Waiting for a worker.
        Queued = "queued",
        /// Claimed by a worker; see [`Phase`].
        Running = "running",
        /// Finished with a result (and, when proving, a receipt).
        Succeeded = "succeeded",
        /// Finished with an error, or ran out of attempts.
        Failed = "failed",
        /// Killed after its time limit.
        TimedOut = "timed_out",
        /// Cancelled by its owner or an admin.
        Cancelled = "cancelled",
    }
}

impl State {
    /// Whether the job can change no more.
    pub fn is_final(self) -> bool {
        !matches!(self, State::Queued | State::Running)
    }
}

named_enum! {
    /// What a running job is doing.
    Phase {
        /// Running the guest (to record its trace, or to count cycles).
        Executing = "executing",
        /// Proving segments.
        Proving = "proving",
    }
}

named_enum! {
    /// What a job produces.
    Mode {
        /// A receipt: the guest is executed and proven.
        Prove = "prove",
        /// No receipt: the guest is only executed in the zkVM, for its
        /// journal, cycles and segments. Proves nothing; for testing and for
        /// sizing a job before paying for its proof.
        ExecuteOnly = "execute-only",
    }
}

named_enum! {
    /// What an API token may do. Each scope includes the ones before it:
    /// `read` < `submit` < `admin`.
    Scope {
        /// Read the ledger, own jobs and receipts; verify receipts.
        Read = "read",
        /// Also submit and cancel jobs, upload blobs, append to the ledger.
        Submit = "submit",
        /// Also see and cancel every tenant's jobs.
        Admin = "admin",
    }
}

impl Scope {
    /// Whether a token of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        let rank = |s: Scope| Scope::ALL.iter().position(|x| *x == s);
        rank(self) >= rank(needed)
    }
}

/// One data input of a job: an uploaded blob and how to read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// The plan's data-input step ID.
    pub name: String,
    /// The blob's SHA-256 (64 lowercase hex).
    pub blob: String,
    /// `csv` or `jsonl`.
    pub format: String,
}

/// What a worker needs to run a job: the plan and its data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The plan as RFC 8785 canonical JSON.
    pub plan: String,
    /// One entry per data input.
    pub data: Vec<DataRef>,
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Tenant of the submitting token.
    pub tenant: String,
    /// ID of the submitting token (`anonymous` never submits).
    pub token_id: String,
    /// `plan`, or a built-in job's name (`income-threshold`).
    pub kind: String,
    /// Prove, or execute only.
    pub mode: Mode,
    /// The plan and data.
    pub spec: JobSpec,
    /// Wall-clock limit of one attempt (seconds).
    pub timeout_s: u64,
    /// Attempts before a job whose worker vanished is failed.
    pub max_attempts: u32,
}

/// A job as stored. Times are nanoseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// 32 lowercase hex digits.
    pub id: String,
    /// Owner tenant.
    pub tenant: String,
    /// Submitting token's ID.
    pub token_id: String,
    /// `plan` or a built-in job's name.
    pub kind: String,
    /// Prove or execute only.
    pub mode: Mode,
    /// Lifecycle state.
    pub state: State,
    /// What a running job is doing.
    pub phase: Option<Phase>,
    /// The plan and data.
    pub spec: JobSpec,
    /// Wall-clock limit of one attempt (seconds).
    pub timeout_s: u64,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// A cancel was asked for while running.
    pub cancel_requested: bool,
    /// Worker holding (or that last held) the job.
    pub worker: Option<String>,
    /// When it was submitted.
    pub created_ns: i64,
    /// When its latest attempt started.
    pub started_ns: Option<i64>,
    /// When it reached a final state.
    pub finished_ns: Option<i64>,
    /// The worker's last sign of life.
    pub heartbeat_ns: Option<i64>,
    /// Total cycles (as the prover pays for them), once known.
    pub cycles: Option<u64>,
    /// Segments, once known.
    pub segments: Option<u64>,
    /// Why it failed, timed out or was cancelled.
    pub error: Option<String>,
    /// The receipt's ID (its SHA-256, 64 hex), when one was made.
    pub receipt_id: Option<String>,
    /// The run's JSON result (plan hash, data root, public output, …).
    pub result: Option<serde_json::Value>,
    /// Leaf index of this job's proof event in the server's ledger, once recorded.
    pub ledger_index: Option<u64>,
    /// Where the server put the receipt in content-addressed storage
    /// (`zkaudit serve --store`): a Blossom URL ending in the receipt's
    /// SHA-256, or `ipfs://<CID>`; unset until stored.
    pub proof_ref: Option<String>,
}

/// A job as the proof server's API shows it (`GET /v1/jobs/{id}`, and the
/// answers of `POST /v1/jobs` and `DELETE /v1/jobs/{id}`): the one
/// definition of that JSON shape, written by the server and read by its
/// clients (e.g. the DVM provider). Times are RFC 3339 (UTC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// 32 lowercase hex digits.
    pub id: String,
    /// `plan` or a built-in job's name.
    pub kind: String,
    /// Prove or execute only.
    pub mode: Mode,
    /// Lifecycle state.
    pub state: State,
    /// What a running job is doing.
    pub phase: Option<Phase>,
    /// Owner tenant.
    pub tenant: String,
    /// Submitting token's ID.
    pub token_id: String,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Wall-clock limit of one attempt (seconds).
    pub timeout_s: u64,
    /// A cancel was asked for while running.
    pub cancel_requested: bool,
    /// When it was submitted.
    pub created_at: Option<String>,
    /// When its latest attempt started.
    pub started_at: Option<String>,
    /// When it reached a final state.
    pub finished_at: Option<String>,
    /// Total cycles, once known.
    pub cycles: Option<u64>,
    /// Segments, once known.
    pub segments: Option<u64>,
    /// Why it failed, timed out or was cancelled.
    pub error: Option<String>,
    /// The receipt's ID (its SHA-256, 64 hex): `GET /v1/receipts/{id}`.
    pub receipt_id: Option<String>,
    /// Leaf index of the job's proof event in the server's ledger.
    pub ledger_index: Option<u64>,
    /// Where the receipt is in content-addressed storage ([`Job::proof_ref`]).
    pub proof_ref: Option<String>,
    /// The run's report ([`crate::protocol::ProveReport`] as JSON).
    pub result: Option<serde_json::Value>,
    /// The report's `publicOutput`, for clients that want only that.
    pub public_outputs: Option<serde_json::Value>,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> JobView {
        let at = |ns: Option<i64>| {
            ns.and_then(|ns| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).ok())
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        };
        JobView {
            id: j.id.clone(),
            kind: j.kind.clone(),
            mode: j.mode,
            state: j.state,
            phase: j.phase,
            tenant: j.tenant.clone(),
            token_id: j.token_id.clone(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            timeout_s: j.timeout_s,
            cancel_requested: j.cancel_requested,
            created_at: at(Some(j.created_ns)),
            started_at: at(j.started_ns),
            finished_at: at(j.finished_ns),
            cycles: j.cycles,
            segments: j.segments,
            error: j.error.clone(),
            receipt_id: j.receipt_id.clone(),
            ledger_index: j.ledger_index,
            proof_ref: j.proof_ref.clone(),
            result: j.result.clone(),
            public_outputs: j.result.as_ref().and_then(|r| r.get("publicOutput")).cloned(),
        }
    }
}

/// An API token as stored: only the SHA-256 of its secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Public identifier (16 hex), recorded with every job and append.
    pub id: String,
    /// What it may do.
    pub scope: Scope,
    /// Whose jobs it sees.
    pub tenant: String,
    /// When it was created (ns since the epoch).
    pub created_ns: i64,
}
