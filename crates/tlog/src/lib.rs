//! The zkaudit ledger: a tamper-evident, append-only transparency log.
//!
//! This crate owns the log directory and everything written to it:
//!
//! * C2SP tlog-tiles storage: hash tiles `tile/<L>/<N>[.p/<W>]` and entry
//!   bundles `tile/entries/<N>[.p/<W>]` ([`layout`]);
//! * the signed `checkpoint` (C2SP tlog-checkpoint in a signed note) and
//!   the log's Ed25519 key, created by [`init`];
//! * the ledger directory's layout, including where the components that
//!   keep files beside the log (receipts, index, job store, server keys)
//!   put them, and the one way secret key files are written ([`LedgerDir`],
//!   [`write_secret`]);
//! * appends through one sequencer with group commit and fsync, serialised
//!   across processes by a file lock ([`Log`]);
//! * reads and RFC 9162 proofs as of the checkpoint ([`LogReader`]), and
//!   reading a log another process serves by tlog-tiles, checked against
//!   its signed checkpoint ([`RemoteLog`]);
//! * fsck, which recomputes everything from the entries ([`fsck::verify`]);
//! * bulk I/O around the page cache: large commits write their entry
//!   bundles with `O_DIRECT`, and scans read full bundles the same way,
//!   ahead on a second thread (where the file system allows it).
//!
//! Durability order for each batch: bundles and tiles are written and
//! fsynced (`fdatasync(2)` per file, or one `syncfs(2)` for 64 files or
//! more at a time), then the checkpoint is atomically replaced (temp file, fsync,
//! rename, directory fsync), and only then is the batch acknowledged. After
//! a crash, the checkpoint is the truth: anything written beyond it is
//! ignored and overwritten.
//!
//! It must not interpret entry contents (that is `zkaudit-event`) and it
//! holds no Merkle mathematics of its own (that is `zkaudit-merkle`).

#![forbid(unsafe_code)]

mod dir;
mod direct;
mod durable;
mod error;
pub mod fsck;
pub mod json;
pub mod layout;
mod log;
mod reader;
pub mod remote;
mod store;
mod writer;

pub use dir::{read_signing_key, write_secret, write_signing_key, LedgerDir, KEY_FILE, LOCK_FILE, VKEY_FILE};
pub use durable::write_all_durably;
pub use error::{Error, Result};
pub use log::{init, read_vkey, AppendStream, Appended, Log, MAX_GROUP_ENTRIES};
pub use reader::{ConsistencyProof, InclusionProof, LogReader};
pub use remote::RemoteLog;
pub use store::{TileStore, CHECKPOINT_FILE};
pub use writer::Leaves;
pub use zkaudit_verify::bundle::BundleError;
