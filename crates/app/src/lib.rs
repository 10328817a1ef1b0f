//! zkaudit's application layer: the use cases, each written once, that
//! both front ends (the `zkaudit` CLI and the HTTP proof server) call.
//!
//! It owns:
//!
//! * appending events (streamed, or with idempotent retries), with the
//!   index following behind and brought up to date by queries ([`ledger`]);
//! * loading a plan with its data, from files or from request bytes ([`plans`]);
//! * prove → verify → record, for the CLI's proofs and for the jobs the
//!   server's workers prove ([`proof`]), and the typed proof event
//!   ([`claim::ProofClaim`]) that recording writes and auditing reads;
//! * checking an inclusion proof offline ([`inclusion`]);
//! * opening the auditor's engine and running compliance packs ([`audit`]);
//! * settling proof-market jobs on a verified receipt, each step recorded
//!   as a ledger event ([`settle`]), and the prover registry built from
//!   those events ([`provers`]).
//!
//! It must not parse arguments, speak HTTP or print: those are the front
//! ends'. It holds no format, hashing or storage logic of its own: those
//! belong to the library crates it calls (`zkaudit-tlog`, `-event`,
//! `-plan`, `-zkvm`, `-index`, `-audit`, `-jobs`, `-settle`).

#![forbid(unsafe_code)]

pub mod audit;
pub mod claim;
mod error;
pub mod inclusion;
pub mod ledger;
pub mod plans;
pub mod proof;
pub mod provers;
pub mod settle;

pub use error::Error;
pub use zkaudit_tlog::LedgerDir;
