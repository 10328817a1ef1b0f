//! Checking an inclusion proof offline, with no access to the log: against
//! a signed checkpoint, the log's verifier key and, optionally, the entry.
//! The check itself is `zkaudit-verify`'s (the one the browser runs too);
//! this reads the proof in the JSON shape of `zkaudit log inclusion --json`.

pub use zkaudit_verify::{Included, InclusionError};

use zkaudit_note::VerifierKey;
use zkaudit_tlog::json::InclusionJson;
use zkaudit_tlog::InclusionProof;

/// Checks `proof` (the JSON of `zkaudit log inclusion --json`) against the
/// signed `checkpoint` note, which must verify with `vkey`, and, if given,
/// the `entry` bytes (one trailing newline is ignored).
///
/// # Errors
/// [`InclusionError`] naming the first check that failed.
pub fn check(proof: &[u8], checkpoint: &[u8], vkey: &VerifierKey, entry: Option<&[u8]>) -> Result<Included, InclusionError> {
    let p: InclusionJson = serde_json::from_slice(proof).map_err(|e| InclusionError::Proof(e.to_string()))?;
    zkaudit_verify::check_inclusion(&InclusionProof::from(p), checkpoint, vkey, entry)
}
