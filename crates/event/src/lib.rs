//! The universal event record.
//!
//! This crate owns what an event *is*: its fields, their validation, and its
//! entry bytes, the RFC 8785 (JCS) canonical JSON that the ledger hashes.
//! Reading a JSON Lines batch returns every malformed line with its line,
//! column and field, so a caller can reject the whole batch before anything
//! is written.
//!
//! It must not touch storage, sequencing or hashing of the log; those belong
//! to `zkaudit-tlog`.

#![forbid(unsafe_code)]

mod batch;
mod event;
mod fast;
pub mod jcs;
mod strict;

pub use batch::{parse_jsonl, parse_jsonl_parallel, BatchError, LineError, MAX_REPORTED_ERRORS};
pub use event::{Digest, Event, Layer, ProofRef, Timestamp, EVENT_VERSION, MAX_ENTRY_BYTES};
