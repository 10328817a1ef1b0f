//! Downloads with provenance: `zkaudit registry-gateway`, one gateway in
//! front of the npm, PyPI and crates.io registries that speaks each
//! protocol as its clients expect ([`npm`], [`pypi`], [`cargo`]), and
//! records every artifact it is asked for as one `download` event through
//! the collector SDK's sink: the SHA-256 of the bytes as fetched (the
//! event's `input`), the purl, the registry's declared digest and whether
//! it matched ([`artifact`]), the provenance the registry publishes
//! ([`provenance`], verified offline by [`sigstore`]), OSV matches ([`osv`])
//! and the [`policy`]'s decision.
//! What the policy refuses goes to the content-addressed [`quarantine`]
//! store and is answered 403 with the reason; the [`guard`] can have the
//! kernel refuse to execute any file with a quarantined digest.
//!
//! Upstreams are found the way each client finds its own ([`upstream`]);
//! the crate names no registry host.
//!
//! It owns the registry protocols, the checks and the quarantine store.
//! It must not define the event format, the ledger or the sink
//! (`zkaudit-event`, `zkaudit-tlog`, `zkaudit-collect`), nor store tokens
//! (`zkaudit-jobs`); lineage and taint are the auditor's (`zkaudit-audit`).

#![forbid(unsafe_code)]

pub mod artifact;
pub mod cargo;
pub mod gateway;
pub mod guard;
pub mod npm;
pub mod osv;
pub mod package;
pub mod policy;
pub mod provenance;
pub mod pypi;
pub mod quarantine;
pub mod sigstore;
pub mod upstream;

pub use gateway::{start, Config, GatewayError, Report, Running};
pub use policy::Policy;
