//! The ledger directory: the one place that says which file lives where.
//!
//! A ledger directory made by `zkaudit log init` holds the log itself
//! (C2SP tlog-tiles under `tile/`, the signed `checkpoint`), its keys, and
//! the files that other components keep beside it. Those components read
//! and write their files through [`LedgerDir`], so the layout is decided
//! here once:
//!
//! | path | what | written by |
//! |---|---|---|
//! | `checkpoint`, `tile/…` | the log (C2SP tlog-tiles) | `zkaudit-tlog` |
//! | `log.vkey` | the log's verifier key (signed-note encoding) | `zkaudit-tlog` |
//! | `lock` | serialises appending processes | `zkaudit-tlog` |
//! | `private/log.key` | the log's signing key (0600, in a 0700 directory) | `zkaudit-tlog` |
//! | `private/attestation.key` | the proof server's attestation key (0600) | the server |
//! | `receipts/<hex>.bin` | receipts of recorded proofs, by SHA-256 | the prove use case |
//! | `index.sqlite` | the default secondary index | `zkaudit-index` |
//! | `jobs.sqlite` | the proof server's default job store | `zkaudit-jobs` |
//!
//! Secret key files are written only through [`write_secret`].

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;
use zkaudit_note::SigningKey;

use crate::durable::{replace_atomically, sync_dir};
use crate::store::CHECKPOINT_FILE;
use crate::{Error, Result};

/// Private key file, relative to the log directory (mode 0600, in a 0700 directory).
pub const KEY_FILE: &str = "private/log.key";
/// Verifier key file, relative to the log directory.
pub const VKEY_FILE: &str = "log.vkey";
/// Lock file that serialises appenders across processes.
pub const LOCK_FILE: &str = "lock";

/// The paths of one ledger directory. Cheap to clone; touches nothing until used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerDir {
    root: PathBuf,
}

impl LedgerDir {
    /// The ledger directory at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `checkpoint`: the signed checkpoint note.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(CHECKPOINT_FILE)
    }

    /// `private/`: secret keys (mode 0700).
    pub fn private_dir(&self) -> PathBuf {
        self.root.join("private")
    }

    /// `private/log.key`: the log's signing key.
    pub fn log_key(&self) -> PathBuf {
        self.root.join(KEY_FILE)
    }

    /// `log.vkey`: the log's verifier key.
    pub fn vkey(&self) -> PathBuf {
        self.root.join(VKEY_FILE)
    }

    /// `lock`: the appenders' lock file.
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// `private/attestation.key`: the proof server's attestation signing key.
    pub fn attestation_key(&self) -> PathBuf {
        self.private_dir().join("attestation.key")
    }

    /// `receipts/`: receipts of the proofs recorded in this ledger.
    pub fn receipts_dir(&self) -> PathBuf {
        self.root.join("receipts")
    }

    /// `receipts/<hex>.bin`: the receipt whose SHA-256 is `digest`, given as
    /// `sha256:<hex>` or bare hex (as proof events carry it).
    pub fn receipt(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.receipts_dir().join(format!("{hex}.bin"))
    }

    /// Keeps `receipt` as `receipts/<hex>.bin` for `digest` (see
    /// [`LedgerDir::receipt`]), durably: written to a temporary file,
    /// fsynced and renamed, so that a proof event is never appended
    /// before the receipt it names is on disk. Returns the path.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or file.
    pub fn store_receipt(&self, digest: &str, receipt: &[u8]) -> Result<PathBuf> {
        let dir = self.receipts_dir();
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let path = self.receipt(digest);
        replace_atomically(&path, receipt)?;
        Ok(path)
    }

    /// `index.sqlite`: the default secondary index.
    pub fn index_sqlite(&self) -> PathBuf {
        self.root.join("index.sqlite")
    }

    /// `jobs.sqlite`: the proof server's default job store.
    pub fn jobs_sqlite(&self) -> PathBuf {
        self.root.join("jobs.sqlite")
    }

    /// `private/llm-calls.sqlite`: the LLM gateway's default call store
    /// (commitment salts and call contents; never part of the log).
    pub fn llm_calls_sqlite(&self) -> PathBuf {
        self.private_dir().join("llm-calls.sqlite")
    }

    /// `quarantine/`: the registry gateway's quarantine store (artifacts
    /// its policy held back, by SHA-256, mode 0400; never part of the log).
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// `blossom/`: the blobs of the Blossom server `zkaudit serve` runs
    /// under `/blossom` (receipts and data by SHA-256; never part of the log).
    pub fn blossom_dir(&self) -> PathBuf {
        self.root.join("blossom")
    }

    /// Creates `private/` with mode 0700 if it is missing.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory.
    pub fn create_private_dir(&self) -> Result<PathBuf> {
        let private = self.private_dir();
        std::fs::DirBuilder::new().mode(0o700).recursive(true).create(&private).map_err(Error::io(&private))?;
        Ok(private)
    }
}

/// Writes a secret to a new file: created exclusively (an existing file is
/// an error, never overwritten) with mode 0600, followed by a newline,
/// fsynced together with its directory entry. The caller's bytes are not
/// copied; the one buffer made here is zeroized.
///
/// # Errors
/// [`Error::Io`] naming the file (`AlreadyExists` if it exists).
pub fn write_secret(path: &Path, secret: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(Error::io(path))?;
    let mut line = Zeroizing::new(Vec::with_capacity(secret.len() + 1));
    line.extend_from_slice(secret);
    line.push(b'\n');
    f.write_all(&line).and_then(|()| f.sync_all()).map_err(Error::io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `key` (its signed-note private encoding) to a new secret file
/// with [`write_secret`].
///
/// # Errors
/// As [`write_secret`].
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<()> {
    write_secret(path, key.to_secret_string().as_bytes())
}

/// Reads a signing key written by [`write_signing_key`]; the file's text is
/// zeroized after parsing.
///
/// # Errors
/// [`Error::Io`] naming the file, or the key's parse error.
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let secret = Zeroizing::new(std::fs::read_to_string(path).map_err(Error::io(path))?);
    Ok(SigningKey::parse(secret.trim())?)
}
