//! The SOC dashboard served by `zkaudit serve` at `/`.
//!
//! This crate owns what the dashboard shows and how the browser gets it:
//!
//! * the panels' data, computed from the ledger and the job store
//!   ([`Dashboard`]): log integrity, activity by layer and type with the
//!   collectors' gaps, compliance packs, proofs, findings, the lineage of a
//!   digest, and one event with what the browser needs to verify it;
//! * the JSON shapes of those answers (the `Serialize` types here);
//! * the page, its scripts and style, and the WebAssembly verifier built
//!   from `crates/verify-wasm` ([`asset`]), all inside the binary.
//!
//! It must not speak HTTP or check tokens (`zkaudit-server` routes and
//! authorises), and it computes no verdict of its own: compliance is the
//! packs' (`zkaudit-audit`), inclusion the verifier's (`zkaudit-verify`,
//! run in the browser).

#![forbid(unsafe_code)]

mod assets;
mod panels;

pub use assets::{asset, Asset};
pub use panels::*;
