//! Receipt files and their verification.
//!
//! A receipt file is the risc0 `Receipt` serialized with bincode 1, the
//! encoding risc0's own tools use. Verification runs in this order, stopping
//! at the first failure:
//! 1. the file decodes to a receipt, and it is not a dev-mode fake;
//! 2. the image ID it claims is in the registry and not deprecated;
//! 3. the seal verifies against that image ID (risc0 `Receipt::verify`),
//!    which also binds the journal;
//! 4. the journal matches the expected plan hash, data root and output.

use std::time::{Duration, Instant};

use risc0_zkvm::sha::Digestible;
use risc0_zkvm::{InnerReceipt, Receipt};
use sha2::{Digest as _, Sha256};
use zkaudit_merkle::Hash;
use zkaudit_plan::journal::Journal;
use zkaudit_plan::value::hex;

use crate::registry::{ProgramEntry, Registry, Rejection};

/// What the verifier expects the journal to say; `None` fields are not checked.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: Option<Hash>,
    /// RFC 9162 tree head over the input records.
    pub data_root: Option<Hash>,
    /// The public output, canonical JSON bytes.
    pub output: Option<Vec<u8>>,
}

/// A receipt that passed every check.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The journal.
    pub journal: Journal,
    /// The program's registry entry.
    pub program: ProgramEntry,
    /// `risc0-composite` or `risc0-succinct`.
    pub kind: &'static str,
    /// Segment receipts in a composite receipt (1 for succinct).
    pub segments: usize,
    /// SHA-256 of the receipt file.
    pub receipt_digest: Hash,
    /// SHA-256 of the journal bytes.
    pub journal_digest: Hash,
    /// Time spent in seal verification.
    pub verify_time: Duration,
}

/// Why a receipt was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes are not a receipt.
    #[error("not a receipt file: {0}")]
    Decode(String),
    /// The receipt is a dev-mode fake or of a kind not accepted.
    #[error("{0}")]
    Kind(String),
    /// The program is unknown or deprecated.
    #[error(transparent)]
    Registry(#[from] Rejection),
    /// The seal does not verify.
    #[error("the receipt does not verify against image ID {image_id}: {reason}")]
    Seal {
        /// The image ID.
        image_id: String,
        /// risc0's reason.
        reason: String,
    },
    /// The journal is not a zkaudit journal.
    #[error("the journal is malformed: {0}")]
    Journal(String),
    /// The journal names a different plan.
    #[error("the receipt is for plan hash {got}, not {expected}")]
    PlanHash {
        /// Expected.
        expected: String,
        /// In the journal.
        got: String,
    },
    /// The journal names different data.
    #[error("the receipt is for data root {got}, not {expected}")]
    DataRoot {
        /// Expected.
        expected: String,
        /// In the journal.
        got: String,
    },
    /// The output differs.
    #[error("the receipt's output {got} differs from the expected {expected}")]
    Output {
        /// Expected.
        expected: String,
        /// In the journal.
        got: String,
    },
}

/// Serializes a receipt for a receipt file.
///
/// # Errors
/// Only if bincode cannot encode the receipt.
pub fn encode_receipt(receipt: &Receipt) -> Result<Vec<u8>, VerifyError> {
    bincode::serialize(receipt).map_err(|e| VerifyError::Decode(e.to_string()))
}

/// The image ID a receipt claims to be from, 64 lowercase hex digits.
///
/// # Errors
/// [`VerifyError::Decode`] when the claim is pruned or missing.
pub fn claimed_image_id(receipt: &Receipt) -> Result<String, VerifyError> {
    let claim = receipt.claim().map_err(|e| VerifyError::Decode(format!("no claim: {e}")))?;
    let claim = claim.as_value().map_err(|e| VerifyError::Decode(format!("claim is pruned: {e}")))?;
    Ok(hex(claim.pre.digest().as_bytes()))
}

/// The [`Verified::kind`] of a composite receipt.
pub const COMPOSITE: &str = "risc0-composite";
/// The [`Verified::kind`] of a succinct receipt.
pub const SUCCINCT: &str = "risc0-succinct";

/// Verifies a receipt file's bytes against `registry` and `expect`.
///
/// # Errors
/// The first failed check, as a [`VerifyError`].
pub fn verify(bytes: &[u8], registry: &Registry, expect: &Expectations) -> Result<Verified, VerifyError> {
    verify_decoded(bytes, registry, expect).map(|(_, v)| v)
}

/// [`verify`], also returning the decoded receipt.
///
/// # Errors
/// As for [`verify`].
pub fn verify_decoded(bytes: &[u8], registry: &Registry, expect: &Expectations) -> Result<(Receipt, Verified), VerifyError> {
    let receipt: Receipt = bincode::deserialize(bytes).map_err(|e| VerifyError::Decode(e.to_string()))?;
    let (kind, segments) = match &receipt.inner {
        InnerReceipt::Composite(c) => (COMPOSITE, c.segments.len()),
        InnerReceipt::Succinct(_) => (SUCCINCT, 1),
        InnerReceipt::Fake(_) => return Err(VerifyError::Kind("a dev-mode fake receipt proves nothing and is never accepted".into())),
        _ => return Err(VerifyError::Kind("only composite and succinct receipts are accepted".into())),
    };
    let image_id = claimed_image_id(&receipt)?;
    let program = registry.allow(&image_id)?.clone();
    let id_bytes = zkaudit_plan::value::parse_hex32(&image_id).ok_or_else(|| VerifyError::Decode("image ID is not 32 bytes".into()))?;
    let digest = risc0_zkvm::sha::Digest::from(id_bytes);
    let started = Instant::now();
    receipt.verify(digest).map_err(|e| VerifyError::Seal { image_id: image_id.clone(), reason: e.to_string() })?;
    let verify_time = started.elapsed();

    let journal = Journal::decode(&receipt.journal.bytes).map_err(|e| VerifyError::Journal(e.to_string()))?;
    if let Some(want) = expect.plan_hash {
        if want != journal.plan_hash {
            return Err(VerifyError::PlanHash { expected: hex(&want), got: hex(&journal.plan_hash) });
        }
    }
    if let Some(want) = expect.data_root {
        if want != journal.data_root {
            return Err(VerifyError::DataRoot { expected: hex(&want), got: hex(&journal.data_root) });
        }
    }
    if let Some(want) = &expect.output {
        if *want != journal.output {
            return Err(VerifyError::Output {
                expected: String::from_utf8_lossy(want).into_owned(),
                got: String::from_utf8_lossy(&journal.output).into_owned(),
            });
        }
    }
    let verified = Verified {
        journal_digest: Sha256::digest(&receipt.journal.bytes).into(),
        receipt_digest: Sha256::digest(bytes).into(),
        journal,
        program,
        kind,
        segments,
        verify_time,
    };
    Ok((receipt, verified))
}
