//! The proof event (`type: zk_proof`, layer `computation`): one Rust type
//! for what recording a proof writes and what the auditor's receipt check
//! reads back.
//!
//! Shape: `input` is `sha256:<plan hash>`, `output` is `sha256:<output
//! hash>`, `proof` is the receipt reference (kind, receipt digest, image ID,
//! journal digest), and `metadata` holds `planId`, `jobRequestHash`,
//! `dataRoot` (64 hex), `records`, `totalCycles`, `userCycles`, `segments`,
//! `proveMillis`, `programVersion`, and `jobId` for proofs made by a proof
//! server's job.

use serde::{Deserialize, Serialize};
use zkaudit_event::{Digest, Event, Layer, ProofRef, Timestamp, EVENT_VERSION};
use zkaudit_merkle::Hash;

/// The event type of a proof event.
pub const PROOF_EVENT_TYPE: &str = "zk_proof";

/// The `metadata` of a proof event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofMetadata {
    /// The plan's `id`.
    pub plan_id: String,
    /// The plan's `jobRequestHash`.
    pub job_request_hash: String,
    /// RFC 9162 root over the input records, 64 hex digits.
    pub data_root: String,
    /// Input records.
    pub records: u64,
    /// All cycles proven.
    pub total_cycles: u64,
    /// Cycles of the guest's own instructions.
    pub user_cycles: u64,
    /// Segments proven.
    pub segments: u64,
    /// Wall time of proving (ms).
    pub prove_millis: u64,
    /// The guest program's version, from the program registry.
    pub program_version: String,
    /// The proof server job that made the proof, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// A recorded claim: "this receipt proves that the plan with this hash ran
/// over the data with this root and produced the output with this hash".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofClaim {
    /// When the proof was made.
    pub timestamp: Timestamp,
    /// SHA-256 of the plan's canonical JSON (the event's `input`).
    pub plan_hash: Hash,
    /// SHA-256 of the full output (the event's `output`).
    pub output_hash: Hash,
    /// The details.
    pub metadata: ProofMetadata,
    /// The receipt reference.
    pub proof: ProofRef,
}

/// Why an event is not a proof event.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The event's type or layer is not a proof event's.
    #[error("event of type `{kind}` in layer `{layer}` is not a `zk_proof` event in layer `computation`")]
    NotAProof {
        /// Its type.
        kind: String,
        /// Its layer.
        layer: String,
    },
    /// The event has no `proof` reference.
    #[error("the proof event has no `proof` reference")]
    NoProof,
    /// Its metadata lacks a field or has one of the wrong type.
    #[error("proof event metadata: {0}")]
    Metadata(String),
    /// Its `dataRoot` is not 64 hex digits.
    #[error("proof event metadata dataRoot `{0}` is not 64 hex digits")]
    DataRoot(String),
    /// The event cannot be encoded.
    #[error("building the proof event: {0}")]
    Encode(String),
}

impl ProofClaim {
    /// The data root as bytes.
    ///
    /// # Errors
    /// [`ClaimError::DataRoot`].
    pub fn data_root(&self) -> Result<Hash, ClaimError> {
        zkaudit_plan::value::parse_hex32(&self.metadata.data_root).ok_or_else(|| ClaimError::DataRoot(self.metadata.data_root.clone()))
    }

    /// The event that records this claim.
    ///
    /// # Errors
    /// [`ClaimError::Encode`] (only for metadata that cannot be JSON).
    pub fn to_event(&self) -> Result<Event, ClaimError> {
        let metadata = match serde_json::to_value(&self.metadata).map_err(|e| ClaimError::Encode(e.to_string()))? {
            serde_json::Value::Object(m) => m,
            other => return Err(ClaimError::Encode(format!("metadata is not an object: {other}"))),
        };
        Ok(Event {
            version: EVENT_VERSION.to_owned(),
            timestamp: self.timestamp.clone(),
            layer: Layer::Computation,
            kind: PROOF_EVENT_TYPE.to_owned(),
            input: Digest(self.plan_hash),
            output: Digest(self.output_hash),
            metadata,
            proof: Some(self.proof.clone()),
            parents: None,
        })
    }

    /// The event's entry bytes (RFC 8785 canonical JSON).
    ///
    /// # Errors
    /// [`ClaimError::Encode`].
    pub fn entry(&self) -> Result<Vec<u8>, ClaimError> {
        self.to_event()?.canonical_bytes().map_err(|e| ClaimError::Encode(e.to_string()))
    }
}

impl TryFrom<&Event> for ProofClaim {
    type Error = ClaimError;

    fn try_from(e: &Event) -> Result<Self, ClaimError> {
        if e.kind != PROOF_EVENT_TYPE || e.layer != Layer::Computation {
            return Err(ClaimError::NotAProof { kind: e.kind.clone(), layer: e.layer.as_str().to_owned() });
        }
        let proof = e.proof.clone().ok_or(ClaimError::NoProof)?;
        let metadata: ProofMetadata =
            serde_json::from_value(serde_json::Value::Object(e.metadata.clone())).map_err(|err| ClaimError::Metadata(err.to_string()))?;
        let claim = ProofClaim { timestamp: e.timestamp.clone(), plan_hash: e.input.0, output_hash: e.output.0, metadata, proof };
        claim.data_root()?;
        Ok(claim)
    }
}
