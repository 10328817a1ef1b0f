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

/// The digests of fetched bytes: SHA-256 always, the others when a
/// declaration or the ecosystem needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256.
    pub sha256: [u8; 32],
    /// SHA-512 (npm: its integrity and attestation subjects use it).
    pub sha512: Option<[u8; 64]>,
    /// SHA-1 (only to compare with a legacy npm `shasum` or `sha1-` integrity).
    pub sha1: Option<[u8; 20]>,
    /// Size in bytes.
    pub size: u64,
}

/// Bodies from this size up are hashed on two threads, one per algorithm.
const PARALLEL_FROM_BYTES: usize = 1 << 20;

impl Digests {
    /// Hashes `bytes` with SHA-256, and with SHA-512 and SHA-1 when asked.
    pub fn of(bytes: &[u8], sha512: bool, sha1: bool) -> Digests {
        let s512 = || sha512.then(|| Sha512::digest(bytes).into());
        let s1 = || sha1.then(|| Sha1::digest(bytes).into());
        let (sha256, sha512, sha1) = if bytes.len() >= PARALLEL_FROM_BYTES && (sha512 || sha1) {
            std::thread::scope(|sc| {
                let other = sc.spawn(|| (s512(), s1()));
                let sha256: [u8; 32] = Sha256::digest(bytes).into();
                let (a, b) = other.join().unwrap_or_else(|_| (s512(), s1()));
                (sha256, a, b)
            })
        } else {
            (Sha256::digest(bytes).into(), s512(), s1())
        };
        Digests { sha256, sha512, sha1, size: bytes.len() as u64 }
    }

    /// Hashes `bytes` with what checking `declared` needs, plus SHA-512
    /// when `sha512` is set.
    pub fn for_declared(bytes: &[u8], declared: Option<&Declared>, sha512: bool) -> Digests {
        let (need512, need1) = match declared {
            Some(Declared::Sha1Hex(_)) => (false, true),
            Some(Declared::Sri(s)) => match strongest_sri(s) {
                Some("sha512") => (true, false),
                Some("sha1") => (false, true),
                _ => (false, false),
            },
            _ => (false, false),
        };
        Digests::of(bytes, sha512 || need512, need1)
    }

    /// The SRI form of the SHA-512, as npm lockfiles hold it (`sha512-…`).
    pub fn sri_sha512(&self) -> Option<String> {
        self.sha512.map(|d| format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(d)))
    }

    /// Whether the bytes match `declared`. For SRI, the tokens of the
    /// strongest algorithm present are compared (W3C SRI §3.3.3); a
    /// declaration with no algorithm known here, or one whose digest was
    /// not computed, does not match.
    pub fn matches(&self, declared: &Declared) -> bool {
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        match declared {
            Declared::Sha1Hex(h) => self.sha1.is_some_and(|d| h.eq_ignore_ascii_case(&hex::encode(d))),
            Declared::Sha256Hex(h) => h.eq_ignore_ascii_case(&hex::encode(self.sha256)),
            Declared::Sri(s) => {
                let Some(alg) = strongest_sri(s) else { return false };
                let mine = match alg {
                    "sha512" => self.sha512.map(|d| b64(&d)),
                    "sha256" => Some(b64(&self.sha256)),
                    _ => self.sha1.map(|d| b64(&d)),
                };
                let Some(mine) = mine else { return false };
                sri_tokens(s).any(|(a, v)| a == alg && v == mine)
            }
        }
    }
}

/// The `(algorithm, base64)` tokens of SRI metadata, options stripped.
fn sri_tokens(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split_whitespace().filter_map(|t| t.split_once('-')).map(|(a, v)| (a, v.split('?').next().unwrap_or(v)))
}

/// The strongest algorithm known here among SRI metadata's tokens.
fn strongest_sri(s: &str) -> Option<&'static str> {
    ["sha512", "sha256", "sha1"].into_iter().find(|alg| sri_tokens(s).any(|(a, _)| a == *alg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_strongest_algorithm_decides() {
        let d = Digests::of(b"hello", true, true);
        assert!(d.matches(&Declared::Sri(d.sri_sha512().unwrap())));
        let sha1 = format!("sha1-{}", base64::engine::general_purpose::STANDARD.encode(d.sha1.unwrap()));
        assert!(d.matches(&Declared::Sri(sha1.clone())));
        // A wrong sha512 is not rescued by a right sha1.
        let wrong = format!("sha512-{} {sha1}", base64::engine::general_purpose::STANDARD.encode([0u8; 64]));
        assert!(!d.matches(&Declared::Sri(wrong)));
        assert!(d.matches(&Declared::Sha256Hex(hex::encode(d.sha256).to_uppercase())));
        assert!(!d.matches(&Declared::Sha1Hex("00".repeat(20))));
        assert!(!d.matches(&Declared::Sri("md5-xyz".into())));
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn only_what_is_needed_is_hashed_and_large_bodies_agree() {
        let d = Digests::for_declared(b"x", Some(&Declared::Sha256Hex(String::new())), false);
        assert!(d.sha512.is_none() && d.sha1.is_none());
        let d = Digests::for_declared(b"x", Some(&Declared::Sha1Hex(String::new())), false);
        assert!(d.sha1.is_some() && d.sha512.is_none());
        let big = vec![7u8; PARALLEL_FROM_BYTES + 3];
        let par = Digests::of(&big, true, true);
        assert_eq!(par.sha512, Some(Sha512::digest(&big).into()));
        assert_eq!(par.sha1, Some(Sha1::digest(&big).into()));
        assert_eq!(par.sha256, <[u8; 32]>::from(Sha256::digest(&big)));
    }
}
