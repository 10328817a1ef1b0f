//! Offline Sigstore verification of real provenance bundles.
//!
//! The bundles are real ones from the public-good instance: npm's SLSA
//! provenance for `sigstore@2.0.0` (a Fulcio certificate for sigstore-js's
//! release workflow, a Rekor v1 entry with inclusion proof and checkpoint)
//! and a managed-key bundle, as published in the test data of the
//! `sigstore-verify` crate (see `tests-support/sigstore_data.rs`).
//! Each is checked as published, then with one thing changed: the verdict
//! must turn from verified to invalid.

#[path = "../../../tests-support/sigstore_data.rs"]
mod sigstore_data;

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Value};
use zkaudit_registry::provenance;
use zkaudit_registry::sigstore::{Outcome, Sigstore};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn test_data() -> PathBuf {
    sigstore_data::sigstore_test_data(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn statement(bundle: &Value) -> Value {
    serde_json::from_slice(&B64.decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()).unwrap()
}

/// The SHA-512 the statement names, which is `sha512sum sigstore-2.0.0.tgz`.
fn subject_sha512(bundle: &Value) -> Vec<u8> {
    hex::decode(statement(bundle)["subject"][0]["digest"]["sha512"].as_str().unwrap()).unwrap()
}

fn invalid(o: Outcome, says: &str) {
    match o {
        Outcome::Invalid(why) => assert!(why.contains(says), "expected {says:?} in {why:?}"),
        other => panic!("expected Invalid({says:?}), got {other:?}"),
    }
}

#[test]
fn npm_provenance_verifies_offline_and_any_change_breaks_it() {
    let data = test_data();
    let bundle = read(data.join("bundles/sigstore.js@2.0.0-provenance.sigstore.json"));
    let digest = subject_sha512(&bundle);
    let sigstore = Sigstore::public_good().unwrap();

    assert_eq!(
        sigstore.verify(&bundle, "sha512", &digest),
        Outcome::Verified {
            identity: "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main".into(),
            issuer: Some("https://token.actions.githubusercontent.com".into()),
        }
    );

    // Other bytes: the statement is not about them.
    let mut other = digest.clone();
    other[0] ^= 1;
    invalid(sigstore.verify(&bundle, "sha512", &other), "artifact hash does not match any subject");

    // The statement rewritten to claim another repository: the DSSE
    // signature (and the Rekor entry's payload hash) no longer match.
    let mut forged = bundle.clone();
    let mut st = statement(&bundle);
    st["predicate"]["buildDefinition"]["externalParameters"]["workflow"]["repository"] = json!("https://github.com/attacker/sigstore-js");
    forged["dsseEnvelope"]["payload"] = json!(B64.encode(st.to_string()));
    invalid(sigstore.verify(&forged, "sha512", &digest), "DSSE signature verification failed");

    // One hash of the Rekor inclusion proof changed.
    let mut proof = bundle.clone();
    let h = proof["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0].as_str().unwrap().to_owned();
    let mut raw = B64.decode(h).unwrap();
    raw[0] ^= 1;
    proof["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0] = json!(B64.encode(raw));
    invalid(sigstore.verify(&proof, "sha512", &digest), "root hash mismatch");

    // Trust roots from files: the public-good one verifies it; another
    // Sigstore instance's root (sigstore's test scaffolding) does not know
    // its Rekor log; the public-good logs with that instance's CA (valid
    // at the time) do not chain its certificate; a root that trusts no CA
    // is refused.
    let public_good = Sigstore::from_file(&data.join("trusted_roots/public-good.json")).unwrap();
    assert!(matches!(public_good.verify(&bundle, "sha512", &digest), Outcome::Verified { .. }));
    let scaffolding = read(data.join("trusted_roots/scaffolding.json"));
    let other = Sigstore::from_file(&data.join("trusted_roots/scaffolding.json")).unwrap();
    invalid(other.verify(&bundle, "sha512", &digest), "No log key valid at integrated time 2023-08-18T16:05:35Z");
    let tmp = tempfile::tempdir().unwrap();
    let mut root = read(data.join("trusted_roots/public-good.json"));
    let mut cas = scaffolding["certificateAuthorities"].clone();
    for ca in cas.as_array_mut().unwrap() {
        ca["validFor"] = json!({"start": "2022-01-01T00:00:00Z"});
    }
    root["certificateAuthorities"] = cas;
    let other_ca = Sigstore::from_file(&write(&tmp, "other-ca.json", &root)).unwrap();
    invalid(other_ca.verify(&bundle, "sha512", &digest), "certificate chain validation failed: UnknownIssuer");
    root["certificateAuthorities"] = json!([]);
    let err = Sigstore::from_file(&write(&tmp, "no-ca.json", &root)).unwrap_err().to_string();
    assert!(err.contains("no-ca.json") && err.contains("no certificate authority"), "{err}");

    // Through npm's attestations document, as the gateway reads it.
    let doc = json!({"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": bundle}]});
    let p = provenance::from_npm(doc.to_string().as_bytes(), &digest, &sigstore).unwrap();
    assert!(p.verified(), "{}", p.verification());
    assert_eq!(p.repository.as_deref(), Some("https://github.com/sigstore/sigstore-js"));
    let f = p.fields();
    assert_eq!(f["zkaudit.provenance.verified"], json!(true));
    assert_eq!(f["zkaudit.provenance.signer.issuer"], json!("https://token.actions.githubusercontent.com"));
    let doc = json!({"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": forged}]});
    let p = provenance::from_npm(doc.to_string().as_bytes(), &digest, &sigstore).unwrap();
    assert!(p.present() && !p.verified());
    assert!(p.verification().starts_with("Sigstore verification failed: attestations[0].bundle: "), "{}", p.verification());
}

#[test]
fn a_bundle_signed_with_a_key_outside_the_trust_root_is_unverifiable_not_verified() {
    let bundle = read(test_data().join("managed-key/bundle.sigstore.json"));
    let sigstore = Sigstore::public_good().unwrap();
    match sigstore.verify(&bundle, "sha256", &[0u8; 32]) {
        Outcome::Unverifiable(why) => assert!(why.contains("key outside the trust root"), "{why}"),
        other => panic!("{other:?}"),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, v: &Value) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p
}
