//! Ed25519 keys in the signed-note encodings (c2sp.org/signed-note §Verifier keys).

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Signature type byte for Ed25519 keys (c2sp.org/signed-note).
pub const ED25519_ALG: u8 = 0x01;

/// A key string could not be parsed or a key name is not allowed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The key name is empty, has a `+`, whitespace or a control character.
    #[error("invalid key name {0:?}: must be non-empty, with no '+', whitespace or control characters")]
    BadName(String),
    /// The string does not have the `name+id+key` shape.
    #[error("malformed {kind} key: {reason}")]
    Malformed {
        /// `"verifier"` or `"signing"`.
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The algorithm byte is not Ed25519.
    #[error("unsupported key algorithm 0x{0:02x} (only Ed25519, 0x01, is supported)")]
    Algorithm(u8),
    /// The key ID in the string does not match the name and key.
    #[error("key ID {found:08x} does not match the name and key (expected {expected:08x})")]
    IdMismatch {
        /// ID written in the string.
        found: u32,
        /// ID computed from name and key.
        expected: u32,
    },
}

/// Whether `name` is a valid signed-note key name: non-empty UTF-8 with no
/// `+`, no whitespace and no control characters.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

/// The 32-bit key ID: the first four bytes, big-endian, of
/// `SHA-256(name ‖ 0x0A ‖ alg ‖ public key)` (c2sp.org/signed-note).
pub fn key_id(name: &str, alg: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 verifier key with its signed-note name and key ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Parses `<name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>`.
    ///
    /// Errors name the malformed part; the key ID must match the name and key.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let bad = |reason| KeyError::Malformed { kind: "verifier", reason };
        let vkey = vkey.trim();
        let (name, rest) = vkey.split_once('+').ok_or(bad("expected <name>+<hex id>+<base64 key>"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(bad("expected <name>+<hex id>+<base64 key>"))?;
        if !valid_key_name(name) {
            return Err(KeyError::BadName(name.to_owned()));
        }
        let id = parse_id(id_hex).ok_or(bad("key ID must be 8 hex digits"))?;
        let raw = B64.decode(key_b64).map_err(|_| bad("key is not valid base64"))?;
        let (&alg, pk) = raw.split_first().ok_or(bad("empty key"))?;
        if alg != ED25519_ALG {
            return Err(KeyError::Algorithm(alg));
        }
        let pk: [u8; 32] = pk.try_into().map_err(|_| bad("Ed25519 public key must be 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|_| bad("not a valid Ed25519 point"))?;
        let expected = key_id(name, ED25519_ALG, &pk);
        if id != expected {
            return Err(KeyError::IdMismatch { found: id, expected });
        }
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// Key name, e.g. the log origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID (see [`key_id`]).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `sig` (64 bytes) is a valid Ed25519 signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| self.key.verify(msg, &s).is_ok())
    }
}

impl std::fmt::Display for VerifierKey {
    /// Formats as `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ED25519_ALG);
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// An Ed25519 signing key with its signed-note name.
///
/// Its string form is `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ 32-byte seed)>`,
/// the encoding used by Go's `golang.org/x/mod/sumdb/note`. The `Debug`
/// output never shows the secret.
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("name", &self.name).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key from the operating system's random source
    /// (feature `keygen`, on by default).
    #[cfg(feature = "keygen")]
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        if !valid_key_name(name) {
            return Err(KeyError::BadName(name.to_owned()));
        }
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        Ok(Self { name: name.to_owned(), key })
    }

    /// Parses the `PRIVATE+KEY+…` string form.
    pub fn parse(skey: &str) -> Result<Self, KeyError> {
        let bad = |reason| KeyError::Malformed { kind: "signing", reason };
        let rest = skey.trim().strip_prefix("PRIVATE+KEY+").ok_or(bad("must start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected PRIVATE+KEY+<name>+<hex id>+<base64 key>"));
        };
        if !valid_key_name(name) {
            return Err(KeyError::BadName(name.to_owned()));
        }
        let id = parse_id(id_hex).ok_or(bad("key ID must be 8 hex digits"))?;
        let raw = Zeroizing::new(B64.decode(key_b64).map_err(|_| bad("key is not valid base64"))?);
        let (&alg, seed) = raw.split_first().ok_or(bad("empty key"))?;
        if alg != ED25519_ALG {
            return Err(KeyError::Algorithm(alg));
        }
        let seed: &[u8; 32] = seed.try_into().map_err(|_| bad("Ed25519 seed must be 32 bytes"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let expected = key_id(name, ED25519_ALG, key.verifying_key().as_bytes());
        if id != expected {
            return Err(KeyError::IdMismatch { found: id, expected });
        }
        Ok(Self { name: name.to_owned(), key })
    }

    /// The secret string form. Callers must write it only to a private file.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(33));
        raw.push(ED25519_ALG);
        raw.extend_from_slice(self.key.as_bytes());
        let v = self.verifier();
        Zeroizing::new(format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, v.id, B64.encode(&*raw)))
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey { id: key_id(&self.name, ED25519_ALG, key.as_bytes()), name: self.name.clone(), key }
    }

    /// Ed25519 signature (64 bytes) over `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

fn parse_id(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u32::from_str_radix(s, 16).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vkey_round_trip_and_rejections() {
        let sk = SigningKey::generate("example.com/log").unwrap();
        let vkey = sk.verifier().to_string();
        let v = VerifierKey::parse(&vkey).unwrap();
        assert_eq!(v, sk.verifier());
        let sk2 = SigningKey::parse(&sk.to_secret_string()).unwrap();
        assert_eq!(sk2.verifier(), v);
        // A wrong key ID is rejected.
        let mut parts: Vec<&str> = vkey.split('+').collect();
        let wrong = format!("{:08x}", v.id() ^ 1);
        parts[1] = &wrong;
        assert!(matches!(VerifierKey::parse(&parts.join("+")), Err(KeyError::IdMismatch { .. })));
        assert!(matches!(SigningKey::generate("bad name"), Err(KeyError::BadName(_))));
        assert!(VerifierKey::parse("no-plus").is_err());
        assert!(!format!("{sk:?}").contains(&*sk.to_secret_string()));
    }

    #[test]
    fn matches_go_note_package() {
        // Cross-check against the independent `signed_note` crate (a port of Go's note package).
        let sk = SigningKey::generate("zkaudit.test/key").unwrap();
        let theirs = signed_note::StandardVerifier::new(&sk.verifier().to_string()).unwrap();
        assert_eq!(signed_note::Verifier::key_id(&theirs), sk.verifier().id());
        let their_signer = signed_note::StandardSigner::new(&sk.to_secret_string()).unwrap();
        assert_eq!(signed_note::Signer::key_id(&their_signer), sk.verifier().id());
    }
}
