//! Provenance published by the registries, read and matched against the
//! bytes fetched: npm's attestations for a version (the Sigstore bundles
//! at the packument's `dist.attestations.url`) and PyPI's PEP 740
//! provenance objects (the simple API's `provenance` URL per file).
//!
//! Each bundle's DSSE envelope carries an in-toto Statement v1; from it
//! come the predicate types, and from SLSA provenance v1 predicates the
//! builder (`runDetails.builder.id`), the build type, the source
//! repository (`buildDefinition.externalParameters.workflow`) and commit
//! (`resolvedDependencies[].digest.gitCommit`). A statement counts only if
//! one of its subjects carries the digest of the bytes fetched.
//!
//! What is verified and what is only read is stated in every event
//! ([`Provenance::verification`]): the subject digest is checked here; the
//! Sigstore signatures and certificate chain are not (no offline Sigstore
//! verifier is built in yet), so `zkaudit.provenance.verified` is false.

use base64::Engine as _;
use serde_json::{Map, Value};

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
}

impl Provenance {
    /// Whether some statement is about these very bytes.
    pub fn present(&self) -> bool {
        !self.predicate_types.is_empty()
    }

    /// The sentence recorded as `zkaudit.provenance.verification`.
    pub fn verification(&self) -> &'static str {
        if self.present() {
            "subject digest checked against the bytes fetched; Sigstore signatures and certificate chain not verified"
        } else if self.mismatched > 0 {
            "statements read, but none names the digest of the bytes fetched"
        } else {
            "no statement found"
        }
    }

    /// Its event fields (in-toto and SLSA names under `zkaudit.provenance.`).
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("zkaudit.provenance.present".into(), self.present().into());
        m.insert("zkaudit.provenance.verified".into(), false.into());
        m.insert("zkaudit.provenance.verification".into(), self.verification().into());
        m.insert("zkaudit.provenance.statements".into(), self.statements.into());
        if self.present() {
            m.insert("zkaudit.provenance.predicateType".into(), self.predicate_types.clone().into());
        }
        let opt = [
            ("zkaudit.provenance.runDetails.builder.id", &self.builder),
            ("zkaudit.provenance.buildDefinition.buildType", &self.build_type),
            ("zkaudit.provenance.source.repository", &self.repository),
            ("zkaudit.provenance.source.commit", &self.commit),
            ("zkaudit.provenance.source.workflow", &self.workflow),
            ("zkaudit.provenance.publisher", &self.publisher),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                m.insert(k.into(), v.as_str().into());
            }
        }
        m
    }

    /// Reads one in-toto Statement (JSON bytes) about an artifact whose
    /// digest in algorithm `alg` (`sha256`, `sha512`) is `digest`.
    fn statement(&mut self, bytes: &[u8], alg: &str, digest: &[u8]) -> Result<(), String> {
        let s: Value = serde_json::from_slice(bytes).map_err(|e| format!("statement: {e}"))?;
        self.statements += 1;
        let want = hex::encode(digest);
        let subjects = s.get("subject").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let matched = subjects.iter().any(|sub| sub.pointer(&format!("/digest/{alg}")).and_then(Value::as_str) == Some(want.as_str()));
        if !matched {
            self.mismatched += 1;
            return Ok(());
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
        Ok(())
    }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("base64: {e}"))
}

/// Reads npm's attestations document (`{"attestations": [{"predicateType",
/// "bundle": {"dsseEnvelope": {"payload", …}}}]}`) for a tarball whose
/// SHA-512 is `sha512`.
///
/// # Errors
/// What is malformed, with its place.
pub fn from_npm(json: &[u8], sha512: &[u8]) -> Result<Provenance, String> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| format!("attestations: {e}"))?;
    let list = doc.get("attestations").and_then(Value::as_array).ok_or("attestations: no \"attestations\" array")?;
    let mut p = Provenance::default();
    for (i, a) in list.iter().enumerate() {
        let payload = a.pointer("/bundle/dsseEnvelope/payload").and_then(Value::as_str).ok_or(format!("attestations[{i}]: no bundle.dsseEnvelope.payload"))?;
        p.statement(&b64(payload).map_err(|e| format!("attestations[{i}]: {e}"))?, "sha512", sha512).map_err(|e| format!("attestations[{i}]: {e}"))?;
    }
    Ok(p)
}

/// Reads a PEP 740 provenance object (`{"version": 1,
/// "attestation_bundles": [{"publisher", "attestations": [{"envelope":
/// {"statement"}}]}]}`) for a file whose SHA-256 is `sha256`.
///
/// # Errors
/// What is malformed, with its place.
pub fn from_pep740(json: &[u8], sha256: &[u8]) -> Result<Provenance, String> {
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
            let st = a.pointer("/envelope/statement").and_then(Value::as_str).ok_or(format!("{at}: no envelope.statement"))?;
            p.statement(&b64(st).map_err(|e| format!("{at}: {e}"))?, "sha256", sha256).map_err(|e| format!("{at}: {e}"))?;
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
        let p = from_npm(doc.to_string().as_bytes(), &digest).unwrap();
        assert!(p.present());
        assert_eq!(p.repository.as_deref(), Some("https://github.com/o/x"));
        assert_eq!(p.commit.as_deref(), Some("0123abcd"));
        assert_eq!(p.builder.as_deref(), Some("https://github.com/actions/runner/github-hosted"));
        let other = from_npm(doc.to_string().as_bytes(), &[8u8; 64]).unwrap();
        assert!(!other.present());
        assert_eq!(other.mismatched, 1);
        assert!(from_npm(b"{\"attestations\":[{}]}", &digest).unwrap_err().contains("attestations[0]"));
    }

    #[test]
    fn pep740_publisher_and_statement() {
        let digest = [9u8; 32];
        let st = json!({"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x-1.0-py3-none-any.whl","digest":{"sha256":hex::encode(digest)}}],
            "predicateType":"https://docs.pypi.org/attestations/publish/v1","predicate":null});
        let doc = json!({"version":1,"attestation_bundles":[{"publisher":{"kind":"GitHub","repository":"o/x","workflow":"release.yml"},
            "attestations":[{"version":1,"envelope":{"statement":enc(&st),"signature":"AA=="}}]}]});
        let p = from_pep740(doc.to_string().as_bytes(), &digest).unwrap();
        assert_eq!(p.predicate_types, vec!["https://docs.pypi.org/attestations/publish/v1".to_owned()]);
        assert_eq!(p.publisher.as_deref(), Some("GitHub:o/x"));
        assert_eq!(p.fields()["zkaudit.provenance.verified"], json!(false));
    }
}
