//! Provenance published by the registries, read, matched against the
//! bytes fetched and verified: npm's attestations for a version (the
//! Sigstore bundles at the packument's `dist.attestations.url`) and PyPI's
//! PEP 740 provenance objects (the simple API's `provenance` URL per file).
//!
//! Each bundle's DSSE envelope carries an in-toto Statement v1; from it
//! come the predicate types, and from SLSA provenance v1 predicates the
//! builder (`runDetails.builder.id`), the build type, the source
//! repository (`buildDefinition.externalParameters.workflow`) and commit
//! (`resolvedDependencies[].digest.gitCommit`). A statement counts only if
//! one of its subjects carries the digest of the bytes fetched, and its
//! bundle is then verified offline by [`crate::sigstore`].
//!
//! What is verified and what is only read is stated in every event
//! ([`Provenance::verification`]).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::sigstore::{Outcome, Sigstore};

/// What the provenance of one artifact said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// in-toto predicate types of the statements whose subject matched.
    pub predicate_types: Vec<String>,
    /// SLSA `runDetails.builder.id`.
    pub builder: Option<String>,
    /// SLSA `buildDefinition.buildType`.
    pub build_type: Option<String>,
    /// The source repository.
    pub repository: Option<String>,
    /// The source commit (git SHA-1 or SHA-256 hex).
    pub commit: Option<String>,
    /// The workflow file that built it.
    pub workflow: Option<String>,
    /// PEP 740's publisher (`kind:repository`), as PyPI states it.
    pub publisher: Option<String>,
    /// Statements read, whatever their subject.
    pub statements: usize,
    /// Statements whose subject digest was not the artifact's.
    pub mismatched: usize,
    /// Bundles about these bytes whose Sigstore verification passed.
    pub verified: usize,
    /// Bundles about these bytes that failed verification, each with where
    /// and why.
    pub invalid: Vec<String>,
    /// Bundles about these bytes that cannot be verified against the trust
    /// root (such as npm's publish attestations, signed with the
    /// registry's own key), each with where and why.
    pub unverifiable: Vec<String>,
    /// The verified signer: the certificate's identity and OIDC issuer.
    pub signer: Option<(String, Option<String>)>,
    /// The trust root the bundles were verified against.
    pub trust_root: Option<String>,
}

impl Provenance {
    /// Whether some statement is about these very bytes (read, not
    /// necessarily verified).
    pub fn present(&self) -> bool {
        !self.predicate_types.is_empty()
    }

    /// Whether some bundle about these bytes verified, and none failed.
    pub fn verified(&self) -> bool {
        self.verified > 0 && self.invalid.is_empty()
    }

    /// The sentence recorded as `zkaudit.provenance.verification`.
    pub fn verification(&self) -> String {
        let root = self.trust_root.as_deref().unwrap_or("trust root");
        let mut s = if !self.invalid.is_empty() {
            format!("Sigstore verification failed: {}", self.invalid.join("; "))
        } else if self.verified > 0 {
            format!(
                "{} Sigstore bundle(s) verified offline against the {root}: the certificate's chain to its CA and its SCT, the transparency log entry (inclusion proof and checkpoint, or signed entry timestamp), the DSSE signature, the subject digest of the bytes fetched",
                self.verified
            )
        } else if self.present() {
            "subject digest checked against the bytes fetched; no signature verified".to_owned()
        } else if self.mismatched > 0 {
            return "statements read, but none names the digest of the bytes fetched".into();
        } else {
            return "no statement found".into();
        };
        if !self.unverifiable.is_empty() {
            s.push_str(&format!("; not verifiable here: {}", self.unverifiable.join("; ")));
        }
        s
    }

    /// Its event fields (in-toto and SLSA names under `zkaudit.provenance.`).
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("zkaudit.provenance.present".into(), self.present().into());
        m.insert("zkaudit.provenance.verified".into(), self.verified().into());
        m.insert("zkaudit.provenance.verification".into(), self.verification().into());
        m.insert("zkaudit.provenance.statements".into(), self.statements.into());
        if self.present() {
            m.insert("zkaudit.provenance.predicateType".into(), self.predicate_types.clone().into());
        }
        if !self.invalid.is_empty() {
            m.insert("zkaudit.provenance.invalid".into(), self.invalid.clone().into());
        }
        let issuer = self.signer.as_ref().and_then(|(_, i)| i.clone());
        let opt = [
            ("zkaudit.provenance.runDetails.builder.id", &self.builder),
            ("zkaudit.provenance.buildDefinition.buildType", &self.build_type),
            ("zkaudit.provenance.source.repository", &self.repository),
            ("zkaudit.provenance.source.commit", &self.commit),
            ("zkaudit.provenance.source.workflow", &self.workflow),
            ("zkaudit.provenance.publisher", &self.publisher),
            ("zkaudit.provenance.signer.identity", &self.signer.as_ref().map(|(id, _)| id.clone())),
            ("zkaudit.provenance.signer.issuer", &issuer),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                m.insert(k.into(), v.as_str().into());
            }
        }
        m
    }

    /// Reads one Sigstore bundle about an artifact whose digest in `alg`
    /// (`sha256`, `sha512`) is `digest`: its statement, then, if the
    /// statement names these bytes, its verification. `at` names the
    /// bundle in messages.
    fn bundle(&mut self, sigstore: &Sigstore, at: &str, bundle: &Value, alg: &str, digest: &[u8]) -> Result<(), String> {
        let payload = bundle.pointer("/dsseEnvelope/payload").and_then(Value::as_str).ok_or(format!("{at}: no dsseEnvelope.payload"))?;
        if !self.statement(&b64(payload).map_err(|e| format!("{at}: {e}"))?, alg, digest).map_err(|e| format!("{at}: {e}"))? {
            return Ok(());
        }
        self.trust_root = Some(sigstore.origin().to_owned());
        match sigstore.verify(bundle, alg, digest) {
            Outcome::Verified { identity, issuer } => {
                self.verified += 1;
                self.signer.get_or_insert((identity, issuer));
            }
            Outcome::Unverifiable(why) => self.unverifiable.push(format!("{at}: {why}")),
            Outcome::Invalid(why) => self.invalid.push(format!("{at}: {why}")),
        }
        Ok(())
    }

    /// Reads one in-toto Statement (JSON bytes) about an artifact whose
    /// digest in algorithm `alg` (`sha256`, `sha512`) is `digest`; whether
    /// one of its subjects names that digest.
    fn statement(&mut self, bytes: &[u8], alg: &str, digest: &[u8]) -> Result<bool, String> {
        let s: Value = serde_json::from_slice(bytes).map_err(|e| format!("statement: {e}"))?;
        self.statements += 1;
        let want = hex::encode(digest);
        let subjects = s.get("subject").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let matched = subjects.iter().any(|sub| sub.pointer(&format!("/digest/{alg}")).and_then(Value::as_str) == Some(want.as_str()));
        if !matched {
            self.mismatched += 1;
            return Ok(false);
        }
        let Some(pt) = s.get("predicateType").and_then(Value::as_str) else { return Err("statement: no predicateType".into()) };
        if !self.predicate_types.iter().any(|p| p == pt) {
            self.predicate_types.push(pt.to_owned());
        }
        let p = s.get("predicate").unwrap_or(&Value::Null);
        let text = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).map(str::to_owned);
        self.builder = self.builder.take().or_else(|| text("/runDetails/builder/id"));
        self.build_type = self.build_type.take().or_else(|| text("/buildDefinition/buildType"));
        self.repository = self.repository.take().or_else(|| text("/buildDefinition/externalParameters/workflow/repository"));
        self.workflow = self.workflow.take().or_else(|| text("/buildDefinition/externalParameters/workflow/path"));
        if self.commit.is_none() {
            let deps = p.pointer("/buildDefinition/resolvedDependencies").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            self.commit = deps.iter().find_map(|d| d.pointer("/digest/gitCommit").and_then(Value::as_str)).map(str::to_owned);
        }
        Ok(true)
    }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("base64: {e}"))
}

/// Reads and verifies npm's attestations document (`{"attestations":
/// [{"predicateType", "bundle": <Sigstore bundle>}]}`) for a tarball whose
/// SHA-512 is `sha512`.
///
/// # Errors
/// What is malformed, with its place. A bundle that fails verification is
/// not an error: it is recorded in [`Provenance::invalid`].
pub fn from_npm(json: &[u8], sha512: &[u8], sigstore: &Sigstore) -> Result<Provenance, String> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| format!("attestations: {e}"))?;
    let list = doc.get("attestations").and_then(Value::as_array).ok_or("attestations: no \"attestations\" array")?;
    let mut p = Provenance::default();
    for (i, a) in list.iter().enumerate() {
        let at = format!("attestations[{i}]");
        let bundle = a.get("bundle").ok_or(format!("{at}: no bundle"))?;
        p.bundle(sigstore, &format!("{at}.bundle"), bundle, "sha512", sha512)?;
    }
    Ok(p)
}

/// Reads and verifies a PEP 740 provenance object (`{"version": 1,
/// "attestation_bundles": [{"publisher", "attestations": [<attestation>]}]}`)
/// for a file whose SHA-256 is `sha256`; each attestation is verified as
/// the Sigstore bundle it stands for ([`crate::sigstore::pep740_bundle`]).
///
/// # Errors
/// What is malformed, with its place. An attestation that fails
/// verification is recorded in [`Provenance::invalid`].
pub fn from_pep740(json: &[u8], sha256: &[u8], sigstore: &Sigstore) -> Result<Provenance, String> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| format!("provenance: {e}"))?;
    let bundles = doc.get("attestation_bundles").and_then(Value::as_array).ok_or("provenance: no \"attestation_bundles\" array")?;
    let mut p = Provenance::default();
    for (i, b) in bundles.iter().enumerate() {
        if p.publisher.is_none() {
            let kind = b.pointer("/publisher/kind").and_then(Value::as_str);
            let repo = b.pointer("/publisher/repository").and_then(Value::as_str);
            p.publisher = match (kind, repo) {
                (Some(k), Some(r)) => Some(format!("{k}:{r}")),
                (Some(k), None) => Some(k.to_owned()),
                _ => None,
            };
            if p.workflow.is_none() {
                p.workflow = b.pointer("/publisher/workflow").and_then(Value::as_str).map(str::to_owned);
            }
        }
        let atts = b.get("attestations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (j, a) in atts.iter().enumerate() {
            let at = format!("attestation_bundles[{i}].attestations[{j}]");
            let bundle = crate::sigstore::pep740_bundle(a).map_err(|e| format!("{at}: {e}"))?;
            p.bundle(sigstore, &at, &bundle, "sha256", sha256)?;
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn enc(v: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    }

    #[test]
    fn npm_slsa_statement_is_read_when_its_subject_matches() {
        let digest = [7u8; 64];
        let st = json!({"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"pkg:npm/x@1.0.0","digest":{"sha512":hex::encode(digest)}}],
            "predicateType":"https://slsa.dev/provenance/v1",
            "predicate":{"buildDefinition":{"buildType":"https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                "externalParameters":{"workflow":{"repository":"https://github.com/o/x","path":".github/workflows/release.yml","ref":"refs/tags/v1"}},
                "resolvedDependencies":[{"uri":"git+https://github.com/o/x@refs/tags/v1","digest":{"gitCommit":"0123abcd"}}]},
                "runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"}}}});
        let doc = json!({"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","bundle":{"dsseEnvelope":{"payload":enc(&st),"payloadType":"application/vnd.in-toto+json"}}}]});
        let sigstore = Sigstore::public_good().unwrap();
        let p = from_npm(doc.to_string().as_bytes(), &digest, &sigstore).unwrap();
        assert!(p.present());
        // Read, but with no signature or verification material it is not
        // provenance anyone can rely on: the event says it failed.
        assert!(!p.verified());
        assert_eq!(p.invalid.len(), 1, "{:?}", p.invalid);
        assert!(p.invalid[0].starts_with("attestations[0].bundle: "), "{:?}", p.invalid);
        assert_eq!(p.fields()["zkaudit.provenance.verified"], json!(false));
        assert_eq!(p.repository.as_deref(), Some("https://github.com/o/x"));
        assert_eq!(p.commit.as_deref(), Some("0123abcd"));
        assert_eq!(p.builder.as_deref(), Some("https://github.com/actions/runner/github-hosted"));
        let other = from_npm(doc.to_string().as_bytes(), &[8u8; 64], &sigstore).unwrap();
        assert!(!other.present());
        assert_eq!((other.mismatched, other.invalid.len()), (1, 0), "a statement about other bytes is not verified at all");
        assert!(from_npm(b"{\"attestations\":[{}]}", &digest, &sigstore).unwrap_err().contains("attestations[0]"));
    }

    #[test]
    fn pep740_publisher_and_statement() {
        let digest = [9u8; 32];
        let st = json!({"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x-1.0-py3-none-any.whl","digest":{"sha256":hex::encode(digest)}}],
            "predicateType":"https://docs.pypi.org/attestations/publish/v1","predicate":null});
        let doc = json!({"version":1,"attestation_bundles":[{"publisher":{"kind":"GitHub","repository":"o/x","workflow":"release.yml"},
            "attestations":[{"version":1,"envelope":{"statement":enc(&st),"signature":"AA=="},
                "verification_material":{"certificate":"AA==","transparency_entries":[]}}]}]});
        let p = from_pep740(doc.to_string().as_bytes(), &digest, &Sigstore::public_good().unwrap()).unwrap();
        assert_eq!(p.predicate_types, vec!["https://docs.pypi.org/attestations/publish/v1".to_owned()]);
        assert_eq!(p.publisher.as_deref(), Some("GitHub:o/x"));
        assert_eq!(p.fields()["zkaudit.provenance.verified"], json!(false));
    }
}
