//! Nostr key files: one line holding the secret key as `nsec1…` (NIP-19)
//! or 64 hex digits, mode 0600. The same key signs Blossom authorization
//! events and the proof market's Nostr events.

use std::path::Path;

use nostr::nips::nip19::ToBech32;
use nostr::Keys;

use crate::Error;

/// Reads the key in `path`.
///
/// # Errors
/// [`Error::Io`] reading it; [`Error::Nostr`] naming the file when its
/// content is not a secret key.
pub fn load(path: &Path) -> Result<Keys, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    Keys::parse(text.trim()).map_err(|e| Error::Nostr(format!("{}: not a Nostr secret key (nsec1… or 64 hex digits): {e}", path.display())))
}

/// Makes a new key and writes it to `path` as `nsec1…` with mode 0600,
/// refusing to overwrite an existing file. Returns the keys.
///
/// # Errors
/// [`Error::Io`] when the file exists or cannot be written.
pub fn generate(path: &Path) -> Result<Keys, Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let keys = Keys::generate();
    let nsec = keys.secret_key().to_bech32().map_err(|e| Error::Nostr(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(Error::io(path))?;
    f.write_all(format!("{nsec}\n").as_bytes()).map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))?;
    Ok(keys)
}

/// The public key of `keys` as `npub1…` (NIP-19).
pub fn npub(keys: &Keys) -> String {
    keys.public_key().to_bech32().unwrap_or_else(|_| keys.public_key().to_hex())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("k");
        let k = super::generate(&p).unwrap();
        assert_eq!(super::load(&p).unwrap().public_key(), k.public_key());
        assert!(super::generate(&p).is_err(), "never overwrites a key");
        std::fs::write(&p, "not a key").unwrap();
        assert!(super::load(&p).unwrap_err().to_string().contains("not a Nostr secret key"));
    }
}
