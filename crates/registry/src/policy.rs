//! The gateway's policy: what happens to an artifact when a check finds
//! something. A TOML file (`--policy FILE`); every table and key is
//! optional, and the defaults are the safe ones.
//!
//! ```toml
//! # Each finding maps to "allow", "warn" (served, and the event says why)
//! # or "quarantine" (kept in the quarantine store, answered 403).
//! [on]
//! digest_mismatch = "quarantine"   # bytes differ from the registry's digest; never "allow"
//! malicious = "quarantine"         # an OSV MAL- advisory names the version
//! vulnerable = "warn"              # any other OSV advisory names it
//! invalid_provenance = "quarantine" # a Sigstore bundle about these bytes fails verification
//! missing_provenance = "warn"      # no verified provenance, for a package under [provenance] require
//! too_new = "warn"                 # published less than [age] min_hours ago
//! install_scripts = "allow"        # npm preinstall / install / postinstall
//! denied = "quarantine"            # listed under [deny] packages
//!
//! [provenance]
//! require = ["pkg:npm/sigstore"]   # purls; without @version, every version
//!
//! [age]
//! min_hours = 48
//!
//! [deny]
//! packages = ["pkg:npm/left-pad@1.3.0"]
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// What a rule does when it fires; ordered from mildest to strictest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Serve, and record the finding.
    Allow,
    /// Serve, and record the finding as a warning (`event.outcome` stays success).
    Warn,
    /// Keep the artifact in the quarantine store and answer 403.
    Quarantine,
}

impl Action {
    /// The lowercase name, as in the policy file and the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Warn => "warn",
            Action::Quarantine => "quarantine",
        }
    }
}

/// The rules, one action per kind of finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct On {
    /// The bytes' digest differs from the registry's.
    pub digest_mismatch: Action,
    /// An OSV `MAL-` advisory names the version.
    pub malicious: Action,
    /// Any other OSV advisory names it.
    pub vulnerable: Action,
    /// A Sigstore bundle whose statement names these bytes fails
    /// verification (signature, certificate chain, transparency log).
    pub invalid_provenance: Action,
    /// No verified provenance, for a package whose provenance is required.
    pub missing_provenance: Action,
    /// Published less than `age.min_hours` ago (or no publish time known).
    pub too_new: Action,
    /// npm install scripts (`preinstall`, `install`, `postinstall`).
    pub install_scripts: Action,
    /// On the deny list.
    pub denied: Action,
}

impl Default for On {
    fn default() -> Self {
        On {
            digest_mismatch: Action::Quarantine,
            malicious: Action::Quarantine,
            vulnerable: Action::Warn,
            invalid_provenance: Action::Quarantine,
            missing_provenance: Action::Warn,
            too_new: Action::Warn,
            install_scripts: Action::Allow,
            denied: Action::Quarantine,
        }
    }
}

/// `[provenance]`: which packages must come with provenance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Provenance {
    /// purls, with or without `@version`.
    pub require: Vec<String>,
}

/// `[age]`: the youngest release served without a finding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Age {
    /// Hours since publication; 0 turns the rule off.
    pub min_hours: u64,
}

/// `[deny]`: packages never to serve.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deny {
    /// purls, with or without `@version`.
    pub packages: Vec<String>,
}

/// The whole policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Actions per finding.
    pub on: On,
    /// Required provenance.
    pub provenance: Provenance,
    /// Minimum age.
    pub age: Age,
    /// Deny list.
    pub deny: Deny,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// It could not be read.
    #[error("policy {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It is not valid TOML for a policy; the message has line and column.
    #[error("policy {path}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, and where.
        why: String,
    },
}

impl Policy {
    /// Reads and checks a policy file.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file, and the line, column and key at fault.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io { path: name.clone(), source })?;
        Policy::parse(&text).map_err(|why| PolicyError::Invalid { path: name, why })
    }

    /// Parses policy TOML.
    ///
    /// # Errors
    /// The parser's message (line, column, key), or the rule broken.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        if p.on.digest_mismatch == Action::Allow {
            return Err("on.digest_mismatch cannot be \"allow\": bytes that differ from the registry's digest are never served silently".into());
        }
        for purl in p.provenance.require.iter().chain(&p.deny.packages) {
            if !purl.starts_with("pkg:") {
                return Err(format!("{purl:?} is not a purl (pkg:TYPE/NAME[@VERSION])"));
            }
        }
        Ok(p)
    }

    /// SHA-256 of the policy's JSON form, recorded with each decision.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(json)))
    }
}

/// Whether purl pattern `pattern` (with or without `@version`) names the
/// package whose versioned purl is `purl`.
pub fn purl_matches(pattern: &str, purl: &str) -> bool {
    if pattern.contains('@') && pattern.rfind('@') > pattern.find('/') {
        pattern == purl
    } else {
        purl.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('@'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let p = Policy::parse("").unwrap();
        assert_eq!(p.on.digest_mismatch, Action::Quarantine);
        let e = Policy::parse("[on]\ndigest_mismatch = \"allow\"\n").unwrap_err();
        assert!(e.contains("never served"), "{e}");
        let e = Policy::parse("[on]\nmalicious = \"block\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = Policy::parse("[deny]\npackages = [\"left-pad\"]\n").unwrap_err();
        assert!(e.contains("not a purl"), "{e}");
        assert!(Policy::parse("[typo]\n").is_err());
    }

    #[test]
    fn purl_patterns() {
        assert!(purl_matches("pkg:npm/left-pad", "pkg:npm/left-pad@1.3.0"));
        assert!(!purl_matches("pkg:npm/left-pad", "pkg:npm/left-pad-x@1.3.0"));
        assert!(purl_matches("pkg:npm/left-pad@1.3.0", "pkg:npm/left-pad@1.3.0"));
        assert!(!purl_matches("pkg:npm/left-pad@1.3.0", "pkg:npm/left-pad@1.3.1"));
        assert!(purl_matches("pkg:npm/%40scope/x", "pkg:npm/%40scope/x@1.0.0"));
    }
}
