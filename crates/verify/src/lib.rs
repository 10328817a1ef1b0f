//! Offline checks of zkaudit log evidence, with no I/O.
//!
//! This crate owns what a verifier needs that holds no file, socket or
//! clock, so that the same code runs in the CLI, the server and the
//! browser (built to WebAssembly by `crates/verify-wasm`):
//!
//! * the entry bundle format of C2SP tlog-tiles ([`bundle`]);
//! * checking an entry's RFC 9162 §2.1.3 inclusion proof against a signed
//!   C2SP checkpoint note and the log's verifier key ([`check_inclusion`]).
//!
//! It must not read tiles, fetch anything or pick the trusted key: where
//! the bytes come from and which key is trusted are the caller's decision.

#![forbid(unsafe_code)]

pub mod bundle;
mod inclusion;

pub use inclusion::{check_inclusion, Included, InclusionError, InclusionProof};
