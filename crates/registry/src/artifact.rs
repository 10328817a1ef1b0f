//! One artifact as a registry's metadata describes it, the digests of the
//! bytes actually fetched, and the comparison of the two.

use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use time::OffsetDateTime;

use crate::package::Package;

/// The digest a registry declares for an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declared {
    /// npm `dist.integrity`: Subresource Integrity metadata (W3C SRI §3.1),
    /// one or more `alg-base64` tokens; the strongest algorithm decides.
    Sri(String),
    /// npm `dist.shasum`: SHA-1 hex, for versions published before `integrity`.
    Sha1Hex(String),
    /// PyPI `hashes.sha256`, or the crates index `cksum`: SHA-256 hex.
    Sha256Hex(String),
}

impl Declared {
    /// The algorithm and value, as recorded.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Declared::Sri(s) => ("sri", s),
            Declared::Sha1Hex(s) => ("sha1", s),
            Declared::Sha256Hex(s) => ("sha256", s),
        }
    }
}

/// What the registry's metadata says about one downloadable file.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The package and version.
    pub package: Package,
    /// The file name the client asked for.
    pub file: String,
    /// Where the upstream serves it.
    pub url: String,
    /// The registry's digest, if it publishes one.
    pub declared: Option<Declared>,
    /// When the version was published, if the registry says.
    pub published: Option<OffsetDateTime>,
    /// npm lifecycle scripts that run at install (`preinstall`, `install`, `postinstall`).
    pub install_scripts: Vec<String>,
    /// Where the registry publishes provenance for it, if it does.
    pub provenance_url: Option<String>,
    /// The `Content-Type` to answer with.
    pub content_type: &'static str,
}

/// The digests of fetched bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256.
    pub sha256: [u8; 32],
    /// SHA-512.
    pub sha512: [u8; 64],
    /// SHA-1 (only to compare with legacy npm `shasum`).
    pub sha1: [u8; 20],
    /// Size in bytes.
    pub size: u64,
}

impl Digests {
    /// Hashes `bytes` with each algorithm.
    pub fn of(bytes: &[u8]) -> Digests {
        Digests { sha256: Sha256::digest(bytes).into(), sha512: Sha512::digest(bytes).into(), sha1: Sha1::digest(bytes).into(), size: bytes.len() as u64 }
    }

    /// The SRI form of the SHA-512, as npm lockfiles hold it (`sha512-…`).
    pub fn sri_sha512(&self) -> String {
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(self.sha512))
    }

    /// Whether the bytes match `declared`. For SRI, the tokens of the
    /// strongest algorithm present are compared (W3C SRI §3.3.3); a
    /// declaration with no algorithm known here does not match.
    pub fn matches(&self, declared: &Declared) -> bool {
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        match declared {
            Declared::Sha1Hex(h) => h.eq_ignore_ascii_case(&hex::encode(self.sha1)),
            Declared::Sha256Hex(h) => h.eq_ignore_ascii_case(&hex::encode(self.sha256)),
            Declared::Sri(s) => {
                let tokens: Vec<(&str, &str)> =
                    s.split_whitespace().filter_map(|t| t.split_once('-')).map(|(a, v)| (a, v.split('?').next().unwrap_or(v))).collect();
                for alg in ["sha512", "sha256", "sha1"] {
                    let mine = match alg {
                        "sha512" => b64(&self.sha512),
                        "sha256" => b64(&self.sha256),
                        _ => b64(&self.sha1),
                    };
                    let of_alg: Vec<&str> = tokens.iter().filter(|(a, _)| *a == alg).map(|(_, v)| *v).collect();
                    if !of_alg.is_empty() {
                        return of_alg.contains(&mine.as_str());
                    }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_strongest_algorithm_decides() {
        let d = Digests::of(b"hello");
        assert!(d.matches(&Declared::Sri(d.sri_sha512())));
        let sha1 = format!("sha1-{}", base64::engine::general_purpose::STANDARD.encode(d.sha1));
        assert!(d.matches(&Declared::Sri(sha1.clone())));
        // A wrong sha512 is not rescued by a right sha1.
        let wrong = format!("sha512-{} {sha1}", base64::engine::general_purpose::STANDARD.encode([0u8; 64]));
        assert!(!d.matches(&Declared::Sri(wrong)));
        assert!(d.matches(&Declared::Sha256Hex(hex::encode(d.sha256).to_uppercase())));
        assert!(!d.matches(&Declared::Sha1Hex("00".repeat(20))));
        assert!(!d.matches(&Declared::Sri("md5-xyz".into())));
    }
}
