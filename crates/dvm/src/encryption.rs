//! NIP-90's encrypted parameters and output: a request's tags moved into
//! its content, encrypted from the buyer to one provider, and the result's
//! output encrypted back with the same scheme.
//!
//! NIP-90 names NIP-04 (AES-256-CBC, `<base64>?iv=<base64>`); NIP-44 v2
//! (versioned, authenticated, padded) is the successor both sides prefer.
//! A receiver tells them apart by the ciphertext's shape, so either is
//! accepted wherever one is.

use nostr_sdk::prelude::*;

/// An encryption scheme for NIP-90 parameters and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// NIP-44 v2 (the default).
    Nip44,
    /// NIP-04, as NIP-90 was first written.
    Nip04,
}

impl Encryption {
    /// The scheme that made `ciphertext`: NIP-04's `<base64>?iv=<base64>`,
    /// otherwise NIP-44.
    pub fn of(ciphertext: &str) -> Encryption {
        if ciphertext.contains("?iv=") {
            Encryption::Nip04
        } else {
            Encryption::Nip44
        }
    }

    /// The NIP's name, as messages give it.
    pub fn name(self) -> &'static str {
        match self {
            Encryption::Nip44 => "NIP-44",
            Encryption::Nip04 => "NIP-04",
        }
    }

    /// Encrypts `plain` from `secret` to `to`.
    ///
    /// # Errors
    /// A message naming the scheme when encryption fails.
    pub fn encrypt(self, secret: &SecretKey, to: &PublicKey, plain: &str) -> Result<String, String> {
        match self {
            Encryption::Nip44 => nip44::encrypt(secret, to, plain, nip44::Version::V2).map_err(|e| format!("encrypting (NIP-44): {e}")),
            Encryption::Nip04 => nip04::encrypt(secret, to, plain).map_err(|e| format!("encrypting (NIP-04): {e}")),
        }
    }

    /// Decrypts `ciphertext` sent between `secret`'s owner and `other`,
    /// whichever scheme made it; the plaintext and the scheme.
    ///
    /// # Errors
    /// A message naming the scheme when the ciphertext is malformed or was
    /// not encrypted for this pair of keys.
    pub fn decrypt(secret: &SecretKey, other: &PublicKey, ciphertext: &str) -> Result<(String, Encryption), String> {
        let scheme = Encryption::of(ciphertext);
        let plain = match scheme {
            Encryption::Nip44 => nip44::decrypt(secret, other, ciphertext).map_err(|e| e.to_string()),
            Encryption::Nip04 => nip04::decrypt(secret, other, ciphertext).map_err(|e| e.to_string()),
        }
        .map_err(|e| format!("cannot decrypt ({}): {e}", scheme.name()))?;
        Ok((plain, scheme))
    }
}

impl std::str::FromStr for Encryption {
    type Err = String;

    fn from_str(s: &str) -> Result<Encryption, String> {
        match s.to_ascii_lowercase().as_str() {
            "nip44" | "nip-44" => Ok(Encryption::Nip44),
            "nip04" | "nip-04" => Ok(Encryption::Nip04),
            other => Err(format!("`{other}`: the encryption is nip44 or nip04")),
        }
    }
}

/// Whether an event's tags mark its content as encrypted (NIP-90's `encrypted` tag).
pub fn is_encrypted(tags: &[Vec<String>]) -> bool {
    tags.iter().any(|t| t.first().map(String::as_str) == Some("encrypted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemes_round_trip_and_are_told_apart() {
        let (buyer, provider, stranger) = (Keys::generate(), Keys::generate(), Keys::generate());
        let plain = r#"[["i","plan","text","","plan"]]"#;
        for scheme in [Encryption::Nip44, Encryption::Nip04] {
            let c = scheme.encrypt(buyer.secret_key(), &provider.public_key(), plain).unwrap();
            assert_eq!(Encryption::of(&c), scheme);
            // Either side of the pair can read it; no one else can.
            assert_eq!(Encryption::decrypt(provider.secret_key(), &buyer.public_key(), &c).unwrap(), (plain.to_owned(), scheme));
            assert_eq!(Encryption::decrypt(buyer.secret_key(), &provider.public_key(), &c).unwrap(), (plain.to_owned(), scheme));
            let e = Encryption::decrypt(stranger.secret_key(), &buyer.public_key(), &c).unwrap_err();
            assert!(e.contains(scheme.name()), "{e}");
        }
        assert!(Encryption::decrypt(provider.secret_key(), &buyer.public_key(), "not base64 at all").is_err());
        assert_eq!("NIP04".parse::<Encryption>(), Ok(Encryption::Nip04));
        assert!("aes".parse::<Encryption>().is_err());
    }
}
