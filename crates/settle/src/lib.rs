//! Settlement accounting for the proof market: an accounting ledger with
//! TigerBeetle's semantics (double-entry accounts with pending and posted
//! balances, immutable transfers idempotent by 128-bit ID, two-phase
//! transfers that are posted, voided or expire, and linked batches that
//! apply all or nothing), kept in SQLite or PostgreSQL.
//!
//! It owns the accounting rules ([`engine`]), their data model
//! ([`model`]), and their storage ([`sql`]), behind the [`Ledger`] trait,
//! which a TigerBeetle client could implement as well; and, on top, the
//! settlement of a job ([`settlement`]): escrow, collateral locks, the fee
//! split, refunds and slashing, as linked batches with IDs derived from
//! names, so every step is idempotent; and the prover registry's rules
//! ([`provers`]: reputation, the verification period, seeded weighted
//! selection, unbonding). It must not verify proofs (the
//! caller decides, from `zkaudit-zkvm`'s verdict, whether to pay or to
//! refund) and moves no money outside its own accounts: [`rail`] is the
//! interface to a payment rail that releases money by a preimage
//! (Lightning hold invoices, Cashu HTLCs), with a custodial adapter on
//! this ledger.
//!
//! Amounts are integers in the ledger's unit (msat, or a currency's minor
//! unit), never floats.

#![forbid(unsafe_code)]

pub mod engine;
pub mod model;
pub mod provers;
pub mod rail;
pub mod settlement;
pub mod sql;

use std::sync::atomic::{AtomicU64, Ordering};

pub use model::{Account, AccountFlags, CreateAccountResult, CreateTransferResult, PendingStatus, Transfer, TransferFlags};
pub use sql::SqlLedger;

/// Why a ledger call failed (not why an event was refused: that is its
/// [`CreateAccountResult`] or [`CreateTransferResult`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed or could not be reached.
    #[error("settlement database: {0}")]
    Db(String),
    /// A transient conflict between concurrent transactions (retried).
    #[error("settlement database: conflict: {0}")]
    Retry(String),
    /// A stored row is not what this ledger writes.
    #[error("settlement database: corrupt row: {0}")]
    Corrupt(String),
}

impl Error {
    fn sqlite(e: rusqlite::Error) -> Error {
        Error::Db(e.to_string())
    }

    fn postgres(e: postgres::Error) -> Error {
        use postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::UNIQUE_VIOLATION => {
                Error::Retry(e.to_string())
            }
            _ => Error::Db(e.to_string()),
        }
    }
}

/// Where the ledger's timestamps come from (ns since the Unix epoch). The
/// ledger makes them strictly increasing whatever the clock says.
pub trait Clock: Send + Sync {
    /// The time now (ns).
    fn now_ns(&self) -> u64;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told: for reproducible runs (tests,
/// replays of a settlement for an audit).
#[derive(Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `ns`.
    pub fn at(ns: u64) -> ManualClock {
        ManualClock(AtomicU64::new(ns))
    }

    /// Moves the clock forward by `ns`.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// An accounting ledger with TigerBeetle's semantics. Each call is atomic:
/// all of its effects are stored, or none.
pub trait Ledger: Send + Sync {
    /// Creates accounts (TigerBeetle's `create_accounts`): one result per
    /// account, in order.
    ///
    /// # Errors
    /// [`Error`] when the database fails (then nothing was created).
    fn create_accounts(&self, batch: &[Account]) -> Result<Vec<CreateAccountResult>, Error>;

    /// Creates transfers (TigerBeetle's `create_transfers`): one result
    /// per transfer, in order. Pending transfers whose timeout has passed
    /// are expired first.
    ///
    /// # Errors
    /// [`Error`] when the database fails (then nothing was created).
    fn create_transfers(&self, batch: &[Transfer]) -> Result<Vec<CreateTransferResult>, Error>;

    /// Expires every pending transfer whose timeout has passed, releasing
    /// its reservation; the IDs expired.
    ///
    /// # Errors
    /// [`Error`] when the database fails.
    fn expire_pending(&self) -> Result<Vec<u128>, Error>;

    /// The accounts of `ids` that exist, in that order.
    ///
    /// # Errors
    /// [`Error`] when the database fails.
    fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, Error>;

    /// The transfers of `ids` that exist, in that order, each with its
    /// status when it is a pending transfer.
    ///
    /// # Errors
    /// [`Error`] when the database fails.
    fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<(Transfer, Option<PendingStatus>)>, Error>;

    /// Every account, by ID.
    ///
    /// # Errors
    /// [`Error`] when the database fails.
    fn accounts(&self) -> Result<Vec<Account>, Error>;

    /// Every transfer, in timestamp order, with its pending status.
    ///
    /// # Errors
    /// [`Error`] when the database fails.
    fn transfers(&self) -> Result<Vec<(Transfer, Option<PendingStatus>)>, Error>;
}
