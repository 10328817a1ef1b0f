//! The auditor interface: questions in Prolog over the ledger, answered
//! with evidence, and compliance packs that turn events into verdicts.
//!
//! This crate owns the Prolog side: the embedded Scryer Prolog machine and
//! its prelude (`event/6`, `meta/3`, `zkaudit/2`, `zkaudit_trace/3`,
//! `zkaudit_replay/2`, `zkaudit_integrity/1`, ...), the on-demand loading
//! of facts from the index ([`Engine`]), evidence (RFC 9162 inclusion
//! proofs against the checkpoint read), pack evaluation ([`pack`]) and
//! reports ([`report`]).
//!
//! It must not write to the log or the index (it reads them through
//! `zkaudit-tlog` and `zkaudit-index`), and it holds no proof system: a
//! receipt is checked through the [`ReceiptCheck`] the caller supplies.

#![forbid(unsafe_code)]

mod engine;
pub mod evidence;
pub mod pack;
pub mod report;
pub mod term;

pub use engine::{prelude_sha256, Answer, Engine, Options, Outcome, QueryError, ReceiptCheck};
