//! Signed notes (c2sp.org/signed-note).

use base64::{engine::general_purpose::STANDARD as B64, Engine};

use crate::keys::{valid_key_name, KeyError, SigningKey, VerifierKey};

/// Most signature lines accepted in one note, as in Go's note package.
pub const MAX_SIGNATURES: usize = 100;

/// The prefix of each signature line: an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// A note that is malformed or does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// The text has a control character other than newline.
    #[error("note text has a control character at byte {0}")]
    ControlChar(usize),
    /// The text does not end with a newline, or no blank line precedes the signatures.
    #[error("note has no blank line separating text from signatures")]
    NoSeparator,
    /// A signature line is malformed.
    #[error("malformed signature line {line}: {reason}")]
    BadSignatureLine {
        /// 1-based line number within the signature block.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// No signature line carries the verifier's name and key ID.
    #[error("note has no signature from key {name}+{id:08x}")]
    NoSignatureFromKey {
        /// Expected key name.
        name: String,
        /// Expected key ID.
        id: u32,
    },
    /// A signature from the key is present but invalid.
    #[error("signature from key {name}+{id:08x} is invalid")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key ID.
        id: u32,
    },
    /// A key problem while signing.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// One signature line: `— <name> <base64(key id ‖ signature)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID (4 bytes, big-endian in the encoding).
    pub id: u32,
    /// Signature bytes (64 for Ed25519).
    pub signature: Vec<u8>,
}

/// A signed note: UTF-8 text ending in a newline, then a blank line, then
/// one or more signature lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::NoSeparator);
    }
    match text.char_indices().find(|&(_, c)| c.is_control() && c != '\n') {
        Some((i, _)) => Err(NoteError::ControlChar(i)),
        None => Ok(()),
    }
}

impl Note {
    /// Signs `text` with `key`. The text must end in a newline and have no
    /// control characters other than newline.
    pub fn sign(text: &str, key: &SigningKey) -> Result<Self, NoteError> {
        check_text(text)?;
        let mut n = Self { text: text.to_owned(), signatures: Vec::new() };
        n.add_signature(key);
        Ok(n)
    }

    /// Adds a further signature (e.g. a cosignature) over the same text.
    pub fn add_signature(&mut self, key: &SigningKey) {
        let v = key.verifier();
        self.signatures.push(NoteSignature { name: v.name().to_owned(), id: v.id(), signature: key.sign(self.text.as_bytes()).to_vec() });
    }

    /// Parses a signed note. Signatures are not checked here: see [`Note::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        let split = s.rfind("\n\n").ok_or(NoteError::NoSeparator)?;
        let (text, sigs) = (&s[..=split], &s[split + 2..]);
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(NoteError::BadSignatureLine { line: sigs.lines().count().max(1), reason: "missing final newline" });
        }
        let mut signatures = Vec::new();
        for (i, line) in sigs.split_terminator('\n').enumerate() {
            let bad = |reason| NoteError::BadSignatureLine { line: i + 1, reason };
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(bad("must start with an em dash and a space"))?;
            let (name, b64) = rest.split_once(' ').ok_or(bad("expected <name> <base64>"))?;
            if !valid_key_name(name) {
                return Err(bad("invalid key name"));
            }
            let raw = B64.decode(b64).map_err(|_| bad("signature is not valid base64"))?;
            if raw.len() < 5 {
                return Err(bad("signature too short"));
            }
            let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            signatures.push(NoteSignature { name: name.to_owned(), id, signature: raw[4..].to_vec() });
        }
        if signatures.is_empty() {
            return Err(NoteError::BadSignatureLine { line: 1, reason: "no signatures" });
        }
        Ok(Self { text: text.to_owned(), signatures })
    }

    /// The signed text, ending in a newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// All signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Checks that a signature from `key` (same name and key ID) is present
    /// and valid. Signatures from other keys are ignored, as the spec asks.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), NoteError> {
        let mut found = false;
        for s in self.signatures.iter().filter(|s| s.name == key.name() && s.id == key.id()) {
            found = true;
            if key.verify(self.text.as_bytes(), &s.signature) {
                return Ok(());
            }
        }
        let (name, id) = (key.name().to_owned(), key.id());
        Err(if found { NoteError::InvalidSignature { name, id } } else { NoteError::NoSignatureFromKey { name, id } })
    }

    /// The encoded note: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.text.len() + 128 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            let mut raw = Vec::with_capacity(4 + s.signature.len());
            raw.extend_from_slice(&s.id.to_be_bytes());
            raw.extend_from_slice(&s.signature);
            out.push_str(SIG_PREFIX);
            out.push_str(&s.name);
            out.push(' ');
            out.push_str(&B64.encode(raw));
            out.push('\n');
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_parse_verify() {
        let k = SigningKey::generate("log.example").unwrap();
        let n = Note::sign("hello\nworld\n", &k).unwrap();
        let bytes = n.to_bytes();
        let p = Note::parse(&bytes).unwrap();
        assert_eq!(p, n);
        p.verify(&k.verifier()).unwrap();
        let other = SigningKey::generate("log.example").unwrap();
        assert!(matches!(p.verify(&other.verifier()), Err(NoteError::NoSignatureFromKey { .. })));
        // Any change to the text breaks the signature.
        let mut tampered = bytes.clone();
        tampered[0] ^= 1;
        let t = Note::parse(&tampered).unwrap();
        assert!(matches!(t.verify(&k.verifier()), Err(NoteError::InvalidSignature { .. })));
        assert_eq!(Note::sign("no newline", &k), Err(NoteError::NoSeparator));
        assert!(matches!(Note::sign("tab\there\n", &k), Err(NoteError::ControlChar(3))));
    }

    #[test]
    fn independent_implementation_agrees() {
        let k = SigningKey::generate("log.example").unwrap();
        let n = Note::sign("origin\n1\nAAAA\n", &k).unwrap();
        let theirs = signed_note::Note::from_bytes(&n.to_bytes()).unwrap();
        let v = signed_note::StandardVerifier::new(&k.verifier().to_string()).unwrap();
        let list = signed_note::VerifierList::new(vec![Box::new(v)]);
        theirs.verify(&list).unwrap();
        // And we parse and verify what they sign.
        let signer = signed_note::StandardSigner::new(&k.to_secret_string()).unwrap();
        let mut their_note = signed_note::Note::new(b"from go\n", &[]).unwrap();
        their_note.add_sigs(&[&signer]).unwrap();
        Note::parse(&their_note.to_bytes()).unwrap().verify(&k.verifier()).unwrap();
    }
}
