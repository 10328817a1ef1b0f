//! C2SP `signed-note` and `tlog-checkpoint`.
//!
//! This crate owns the text formats that carry a log's signed statement of
//! its size and root hash:
//!
//! * Ed25519 signing and verifier keys in the signed-note encodings
//!   (`PRIVATE+KEY+<name>+<hex id>+<base64>` and `<name>+<hex id>+<base64>`),
//! * signed notes: parse, sign, verify (c2sp.org/signed-note),
//! * checkpoint bodies: origin, tree size, base64 root hash, extension lines
//!   (c2sp.org/tlog-checkpoint).
//!
//! It must not touch the file system or the Merkle tree layout; the log
//! storage in `zkaudit-tlog` decides where notes are kept and when they are
//! signed.

#![forbid(unsafe_code)]

mod checkpoint;
mod keys;
mod note;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use keys::{key_id, KeyError, SigningKey, VerifierKey, ED25519_ALG};
pub use note::{Note, NoteError, NoteSignature, MAX_SIGNATURES};
