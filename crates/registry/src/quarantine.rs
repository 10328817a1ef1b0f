//! The quarantine store: artifacts the policy held back, kept by content.
//!
//! Layout of the directory (by default `quarantine/` in the ledger):
//! `<sha256 hex>` holds the bytes as fetched (mode 0400), and
//! `<sha256 hex>.json` the [`Entry`]: what it is, why it was held, the
//! `download` event that recorded it, and, once released, who released it
//! and why. Each file is written to a temporary name, fsynced and renamed,
//! so a crash leaves either the old state or the new, never half a file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zkaudit_collect::{Destination, Observation, OcsfClass, Sink, SinkOptions};
use zkaudit_event::{Digest, Layer};

use crate::package::Package;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An entry file is damaged.
    #[error("{path}: not a quarantine entry: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        why: String,
    },
    /// No artifact with that digest is quarantined.
    #[error("no quarantined artifact has digest {0}")]
    NotFound(String),
    /// The digest is not 64 hex characters (with or without `sha256:`).
    #[error("{0:?} is not a SHA-256 digest (64 hex characters, optionally sha256:)")]
    BadDigest(String),
}

/// Who released an artifact, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The admin token's ID.
    pub by: String,
    /// The reason given.
    pub reason: String,
    /// When, RFC 3339.
    pub at: String,
    /// The `quarantine_release` event.
    pub event: Digest,
}

/// One quarantined artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// SHA-256 of the bytes.
    pub sha256: Digest,
    /// The package.
    pub package: Package,
    /// Its purl.
    pub purl: String,
    /// The file name the client asked for.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Where it was fetched from.
    pub url: String,
    /// Why it was held, one sentence per rule that asked for quarantine.
    pub reasons: Vec<String>,
    /// The `download` event that recorded it.
    pub event: Digest,
    /// When, RFC 3339.
    pub at: String,
    /// Set once an admin has released it.
    pub released: Option<Release>,
}

/// The store at one directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// `sha256:<hex>` or `<hex>` as bare lowercase hex.
///
/// # Errors
/// [`QuarantineError::BadDigest`].
pub fn bare_hex(digest: &str) -> Result<String, QuarantineError> {
    let h = digest.strip_prefix("sha256:").unwrap_or(digest).to_ascii_lowercase();
    if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(h)
    } else {
        Err(QuarantineError::BadDigest(digest.to_owned()))
    }
}

impl Store {
    /// The store at `dir` (created on first use, mode 0700).
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> QuarantineError + '_ {
        move |source| QuarantineError::Io { path: path.to_path_buf(), source }
    }

    fn write_file(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), QuarantineError> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(Self::io(&self.dir))?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(Self::io(&tmp))?;
        f.write_all(bytes).map_err(Self::io(&tmp))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(Self::io(&tmp))?;
        f.sync_all().map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Self::io(&self.dir))
    }

    /// Keeps `bytes` (mode 0400) and `entry`. An artifact already held is
    /// kept as it is and only its entry is replaced.
    ///
    /// # Errors
    /// [`QuarantineError::Io`].
    pub fn put(&self, entry: &Entry, bytes: &[u8]) -> Result<(), QuarantineError> {
        let hex = hex::encode(entry.sha256.0);
        if !self.dir.join(&hex).exists() {
            self.write_file(&hex, bytes, 0o400)?;
        }
        self.put_entry(entry)
    }

    fn put_entry(&self, entry: &Entry) -> Result<(), QuarantineError> {
        let hex = hex::encode(entry.sha256.0);
        let json = serde_json::to_vec_pretty(entry).map_err(|e| QuarantineError::Corrupt { path: self.dir.join(&hex), why: e.to_string() })?;
        self.write_file(&format!("{hex}.json"), &json, 0o600)
    }

    /// The entry for `digest`, if it is held.
    ///
    /// # Errors
    /// [`QuarantineError`] if the digest is malformed or the entry unreadable.
    pub fn get(&self, digest: &str) -> Result<Option<Entry>, QuarantineError> {
        let path = self.dir.join(format!("{}.json", bare_hex(digest)?));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(QuarantineError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| QuarantineError::Corrupt { path, why: e.to_string() })
    }

    /// Every entry, oldest first.
    ///
    /// # Errors
    /// [`QuarantineError`] if the directory or an entry is unreadable.
    pub fn list(&self) -> Result<Vec<Entry>, QuarantineError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(QuarantineError::Io { path: self.dir.clone(), source }),
        };
        let mut out = Vec::new();
        for f in rd {
            let f = f.map_err(Self::io(&self.dir))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if let Some(hex) = name.strip_suffix(".json").filter(|h| !h.starts_with('.')) {
                if let Some(e) = self.get(hex)? {
                    out.push(e);
                }
            }
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.sha256.cmp(&b.sha256)));
        Ok(out)
    }

    /// The held bytes of `digest`.
    ///
    /// # Errors
    /// [`QuarantineError::NotFound`] or an I/O error.
    pub fn bytes(&self, digest: &str) -> Result<Vec<u8>, QuarantineError> {
        let path = self.dir.join(bare_hex(digest)?);
        std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => QuarantineError::NotFound(digest.to_owned()),
            _ => QuarantineError::Io { path, source },
        })
    }

    /// Marks `digest` released: the gateway serves it from now on.
    ///
    /// # Errors
    /// [`QuarantineError::NotFound`] if it is not held.
    pub fn release(&self, digest: &str, release: Release) -> Result<Entry, QuarantineError> {
        let mut e = self.get(digest)?.ok_or_else(|| QuarantineError::NotFound(digest.to_owned()))?;
        e.released = Some(release);
        self.put_entry(&e)?;
        Ok(e)
    }

    /// Deletes `digest`'s bytes and entry for good.
    ///
    /// # Errors
    /// [`QuarantineError::NotFound`] if it is not held.
    pub fn purge(&self, digest: &str) -> Result<Entry, QuarantineError> {
        let e = self.get(digest)?.ok_or_else(|| QuarantineError::NotFound(digest.to_owned()))?;
        let hex = bare_hex(digest)?;
        for name in [hex.clone(), format!("{hex}.json")] {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(QuarantineError::Io { path, source }),
            }
        }
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Self::io(&self.dir))?;
        Ok(e)
    }
}

/// Why an admin operation on the store was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store.
    #[error(transparent)]
    Store(#[from] QuarantineError),
    /// The token store could not be read.
    #[error("token store: {0}")]
    Tokens(#[from] zkaudit_jobs::Error),
    /// The token is unknown, revoked or not of the admin scope.
    #[error("{0}")]
    Forbidden(String),
    /// A release needs a reason.
    #[error("a release needs a reason (--reason)")]
    NoReason,
    /// The event could not be recorded, so nothing was changed.
    #[error("recording the {kind} event failed, nothing was changed: {why}")]
    Record {
        /// The event type.
        kind: &'static str,
        /// The sink's error.
        why: String,
    },
}

/// Who may release or purge: an admin token's secret, checked against a
/// job store (`zkaudit token create DIR --scope admin` makes one).
pub struct Admin<'a> {
    /// The job store that holds the tokens.
    pub tokens: &'a zkaudit_jobs::Store,
    /// The token's secret.
    pub secret: &'a str,
}

impl Admin<'_> {
    fn check(&self) -> Result<zkaudit_jobs::Token, AdminError> {
        match self.tokens.token(self.secret)? {
            Some(t) if t.scope.allows(zkaudit_jobs::Scope::Admin) => Ok(t),
            Some(t) => Err(AdminError::Forbidden(format!("token {} has the {} scope; releasing and purging need admin", t.id, t.scope))),
            None => Err(AdminError::Forbidden("the token is unknown or revoked".into())),
        }
    }
}

/// Records one admin event about `entry` (its `parents` name the download
/// event) and returns its digest once the destination has it.
fn record_admin(
    dest: Destination,
    kind: &'static str,
    action: &str,
    activity: u32,
    entry: &Entry,
    token: &zkaudit_jobs::Token,
    reason: &str,
) -> Result<Digest, AdminError> {
    let o = Observation::new(kind, Layer::Application, OcsfClass::ApiActivity, activity, action)
        .input(entry.sha256)
        .parent(entry.event)
        .outcome(true)
        .field("user.id", token.id.as_str())
        .field("zkaudit.download.purl", entry.purl.as_str())
        .field("file.name", entry.file.as_str())
        .field("file.hash.sha256", hex::encode(entry.sha256.0))
        .field("zkaudit.quarantine.reason", reason)
        .field("zkaudit.quarantine.reasons_held", entry.reasons.clone());
    let fail = |why: String| AdminError::Record { kind, why };
    let mut sink = Sink::open(dest, SinkOptions::new(crate::gateway::COLLECTOR, Layer::Application)).map_err(|e| fail(e.to_string()))?;
    let digest = sink.send(&o.into_event()).map_err(|e| fail(e.to_string()))?;
    let report = sink.finish().map_err(|e| fail(e.to_string()))?;
    if report.appended == 0 && report.left_in_spool == 0 {
        return Err(fail(report.last_error.unwrap_or_else(|| "the destination acknowledged nothing".into())));
    }
    Ok(digest)
}

impl Store {
    /// Releases `digest` on `admin`'s authority: records a
    /// `quarantine_release` event (who, why; `parents`: the download
    /// event), then marks the entry, so the gateway serves it from then on.
    ///
    /// # Errors
    /// [`AdminError`]; nothing is changed unless the event was recorded.
    pub fn release_as(&self, admin: &Admin<'_>, dest: Destination, digest: &str, reason: &str) -> Result<Entry, AdminError> {
        let token = admin.check()?;
        if reason.trim().is_empty() {
            return Err(AdminError::NoReason);
        }
        let entry = self.get(digest)?.ok_or_else(|| QuarantineError::NotFound(digest.to_owned()))?;
        let event = record_admin(dest, "quarantine_release", "quarantine_released", 3, &entry, &token, reason)?;
        let at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        Ok(self.release(digest, Release { by: token.id, reason: reason.to_owned(), at, event })?)
    }

    /// Purges `digest` on `admin`'s authority: records a
    /// `quarantine_purge` event, then deletes the bytes and the entry.
    ///
    /// # Errors
    /// [`AdminError`]; nothing is deleted unless the event was recorded.
    pub fn purge_as(&self, admin: &Admin<'_>, dest: Destination, digest: &str, reason: &str) -> Result<Entry, AdminError> {
        let token = admin.check()?;
        let entry = self.get(digest)?.ok_or_else(|| QuarantineError::NotFound(digest.to_owned()))?;
        record_admin(dest, "quarantine_purge", "quarantine_purged", 4, &entry, &token, reason)?;
        Ok(self.purge(digest)?)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::package::Ecosystem;

    #[test]
    fn put_list_release_purge() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path().join("q"));
        let hex = "ab".repeat(32);
        let pkg = Package { ecosystem: Ecosystem::Npm, name: "x".into(), version: "1.0.0".into() };
        let e = Entry {
            sha256: Digest([0xab; 32]),
            purl: pkg.purl(),
            package: pkg,
            file: "x-1.0.0.tgz".into(),
            size: 3,
            url: "http://127.0.0.1/x".into(),
            reasons: vec!["denied".into()],
            event: Digest([0xcd; 32]),
            at: "2026-01-01T00:00:00Z".into(),
            released: None,
        };
        s.put(&e, b"abc").unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("q").join(&hex)).unwrap().mode() & 0o777, 0o400);
        assert_eq!(s.list().unwrap(), vec![e.clone()]);
        assert_eq!(s.bytes(&hex).unwrap(), b"abc");
        let r = Release { by: "tok".into(), reason: "reviewed".into(), at: "2026-01-02T00:00:00Z".into(), event: Digest([0; 32]) };
        assert_eq!(s.release(&e.sha256.to_string(), r.clone()).unwrap().released, Some(r));
        s.purge(&hex).unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(matches!(s.purge(&hex), Err(QuarantineError::NotFound(_))));
        assert!(matches!(s.get("../etc"), Err(QuarantineError::BadDigest(_))));
    }
}
