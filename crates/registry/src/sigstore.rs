//! Offline verification of the Sigstore bundles that carry npm and PyPI
//! provenance, against a pinned trust root.
//!
//! The checks are `sigstore-verify`'s (the Sigstore client specification's
//! verification steps): the signing certificate chains to a Fulcio CA of
//! the trust root and was valid when the entry was logged, its embedded
//! SCT verifies against a CT log key, the Rekor entry's inclusion proof
//! and signed checkpoint (or its signed entry timestamp) verify against a
//! Rekor key, the entry describes this very envelope, and the DSSE
//! signature verifies with the certificate's key. Nothing is fetched: the
//! trust root is the Sigstore public-good `trusted_root.json` embedded in
//! the pinned `sigstore-trust-root` release, or a file the user names.
//!
//! Any identity the CA certified is accepted; the identity and issuer are
//! returned so that the event records who signed.
//!
//! This module owns the crypto provider that `sigstore-verify` runs on:
//! `ring` (already linked for TLS), instead of the `aws-lc-rs` default,
//! which would add a C library build. It must not decide policy.

use std::path::Path;
use std::sync::Arc;

use ring::signature as sig;
use serde_json::Value;
use sigstore_verify::crypto::{self, CryptoProvider, HashContext, SigningScheme};
use sigstore_verify::trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};
use sigstore_verify::types::{ArtifactDigest, Bundle, HashAlgorithm};
use sigstore_verify::{VerificationPolicy, Verifier};

/// Why a trust root could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SigstoreError {
    /// The trust root file could not be read.
    #[error("reading the Sigstore trusted root {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trust root is not a valid `trusted_root.json`, or names no
    /// certificate authority.
    #[error("the Sigstore trusted root {origin}: {reason}")]
    Invalid {
        /// The file, or "embedded public-good root".
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What the verification of one bundle found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed.
    Verified {
        /// The certificate's subject alternative name (for CI builds, the
        /// workflow's URI; for people, their e-mail address).
        identity: String,
        /// The OIDC issuer in the certificate (Fulcio extension
        /// 1.3.6.1.4.1.57264.1.8 or .1.1).
        issuer: Option<String>,
    },
    /// The bundle cannot be checked against this trust root: it is signed
    /// with a key outside it (npm's publish attestations are signed with
    /// the registry's own key), or uses a form the verifier does not know.
    Unverifiable(String),
    /// A check failed: the bundle does not prove what it claims.
    Invalid(String),
}

/// A Sigstore verifier holding one trust root; cheap to share.
#[derive(Clone)]
pub struct Sigstore {
    verifier: Arc<Verifier>,
    origin: Arc<str>,
}

impl std::fmt::Debug for Sigstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sigstore").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Sigstore {
    /// The Sigstore public-good instance's trust root, as embedded in the
    /// pinned `sigstore-trust-root` release.
    ///
    /// # Errors
    /// [`SigstoreError::Invalid`] if the embedded root does not load.
    pub fn public_good() -> Result<Sigstore, SigstoreError> {
        Sigstore::from_json(SIGSTORE_PRODUCTION_TRUSTED_ROOT, "embedded public-good root (sigstore-trust-root 0.15.1)")
    }

    /// A trust root from a `trusted_root.json` file (the format of
    /// `cosign --trusted-root` and Sigstore's TUF repository).
    ///
    /// # Errors
    /// [`SigstoreError::Read`] or [`SigstoreError::Invalid`], naming the file.
    pub fn from_file(path: &Path) -> Result<Sigstore, SigstoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| SigstoreError::Read { path: path.display().to_string(), source })?;
        Sigstore::from_json(&text, &path.display().to_string())
    }

    fn from_json(json: &str, origin: &str) -> Result<Sigstore, SigstoreError> {
        install_provider();
        let invalid = |reason: String| SigstoreError::Invalid { origin: origin.to_owned(), reason };
        let root = TrustedRoot::from_json(json).map_err(|e| invalid(e.to_string()))?;
        if root.certificate_authorities.is_empty() {
            return Err(invalid("it names no certificate authority, so no keyless bundle could verify".into()));
        }
        let verifier = Verifier::new(&root).map_err(|e| invalid(e.to_string()))?;
        Ok(Sigstore { verifier: Arc::new(verifier), origin: origin.into() })
    }

    /// Where the trust root came from, for the event.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Verifies one Sigstore bundle (its JSON, any of media types v0.1 to
    /// v0.3) about an artifact whose digest in `alg` (`sha256` or `sha512`)
    /// is `digest`. A DSSE bundle verifies only if one of its in-toto
    /// subjects carries that digest.
    pub fn verify(&self, bundle: &Value, alg: &str, digest: &[u8]) -> Outcome {
        if let Some(hint) = bundle.pointer("/verificationMaterial/publicKey") {
            let hint = hint.get("hint").and_then(Value::as_str).unwrap_or("no hint");
            return Outcome::Unverifiable(format!("signed with a key outside the trust root (key hint {hint}), not with a Fulcio certificate"));
        }
        let algorithm = match alg {
            "sha256" => HashAlgorithm::Sha2256,
            "sha512" => HashAlgorithm::Sha2512,
            other => return Outcome::Unverifiable(format!("no {other} subject digest can be checked")),
        };
        let subject = match ArtifactDigest::new(algorithm, digest.to_vec()) {
            Ok(d) => d,
            Err(e) => return Outcome::Unverifiable(e.to_string()),
        };
        let parsed = match Bundle::from_json(&bundle.to_string()) {
            Ok(b) => b,
            Err(e) => return Outcome::Invalid(format!("not a Sigstore bundle: {e}")),
        };
        match self.verifier.verify(subject, &parsed, &VerificationPolicy::any_identity()) {
            Ok(r) => match r.identity() {
                Some(id) => Outcome::Verified { identity: id.as_str().to_owned(), issuer: r.issuer().map(str::to_owned) },
                None => Outcome::Invalid("verified, but the certificate names no identity".into()),
            },
            Err(e @ (sigstore_verify::Error::UnsupportedBundle(_) | sigstore_verify::Error::UnsupportedArtifact(_))) => Outcome::Unverifiable(e.to_string()),
            Err(e) => Outcome::Invalid(e.to_string()),
        }
    }
}

/// Converts one PEP 740 attestation object (`{"version": 1,
/// "verification_material": {"certificate", "transparency_entries"},
/// "envelope": {"statement", "signature"}}`) into the Sigstore bundle v0.3
/// it stands for: the certificate, the Rekor entries as they are, and a
/// DSSE envelope of type `application/vnd.in-toto+json` with one signature.
///
/// # Errors
/// The member that is missing.
pub fn pep740_bundle(attestation: &Value) -> Result<Value, String> {
    let text = |ptr: &str| attestation.pointer(ptr).and_then(Value::as_str).ok_or_else(|| format!("no {}", &ptr[1..].replace('/', ".")));
    let entries = attestation.pointer("/verification_material/transparency_entries").cloned().ok_or("no verification_material.transparency_entries")?;
    Ok(serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": text("/verification_material/certificate")?}, "tlogEntries": entries},
        "dsseEnvelope": {"payload": text("/envelope/statement")?, "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": text("/envelope/signature")?}]},
    }))
}

/// `ring` as `sigstore-verify`'s crypto provider: hashing and signature
/// verification (ECDSA P-256/P-384 in ASN.1 form, Ed25519, RSA PKCS#1 v1.5
/// and PSS). ML-DSA and verification of a bare digest are not supported
/// (the DSSE bundles npm and PyPI publish need neither).
#[derive(Debug)]
struct Ring;

struct RingHash(ring::digest::Context);

impl HashContext for RingHash {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

static RING: Ring = Ring;

/// Installs [`Ring`] once per process; a provider installed earlier (by
/// another user of `sigstore-crypto`) is kept.
fn install_provider() {
    let _ = crypto::install_default_provider(&RING);
}

impl CryptoProvider for Ring {
    fn hash(&self, algorithm: HashAlgorithm) -> crypto::Result<Box<dyn HashContext>> {
        let alg = match algorithm {
            HashAlgorithm::Sha2256 => &ring::digest::SHA256,
            HashAlgorithm::Sha2384 => &ring::digest::SHA384,
            HashAlgorithm::Sha2512 => &ring::digest::SHA512,
            other => return Err(crypto::Error::UnsupportedAlgorithm(format!("no {other} digests"))),
        };
        Ok(Box::new(RingHash(ring::digest::Context::new(alg))))
    }

    fn verify_raw(&self, scheme: SigningScheme, key: &[u8], data: &[u8], signature: &[u8]) -> crypto::Result<()> {
        let alg: &'static dyn sig::VerificationAlgorithm = match scheme {
            SigningScheme::EcdsaP256Sha256 => &sig::ECDSA_P256_SHA256_ASN1,
            SigningScheme::EcdsaP256Sha384 => &sig::ECDSA_P256_SHA384_ASN1,
            SigningScheme::EcdsaP384Sha256 => &sig::ECDSA_P384_SHA256_ASN1,
            SigningScheme::EcdsaP384Sha384 => &sig::ECDSA_P384_SHA384_ASN1,
            SigningScheme::Ed25519 => &sig::ED25519,
            SigningScheme::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
            SigningScheme::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
            SigningScheme::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
            SigningScheme::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            SigningScheme::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            SigningScheme::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            other => return Err(crypto::Error::UnsupportedAlgorithm(format!("{} signatures", other.name()))),
        };
        sig::UnparsedPublicKey::new(alg, key).verify(data, signature).map_err(|_| crypto::Error::Verification(format!("{} signature invalid", scheme.name())))
    }

    fn verify_prehashed(&self, scheme: SigningScheme, _key: &[u8], _digest: &[u8], _signature: &[u8]) -> crypto::Result<()> {
        Err(crypto::Error::UnsupportedAlgorithm(format!("{} over a bare digest (only the signed message can be verified)", scheme.name())))
    }
}
