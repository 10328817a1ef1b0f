//! The durable spool: batches waiting to be acknowledged by a server.
//!
//! One directory, one file per batch, named
//! `<sequence, 16 digits>.<idempotency key>.jsonl`, holding the batch's
//! JSON Lines exactly as they are sent. A batch is written to a temporary
//! file, fsynced and renamed into place (then the directory is fsynced)
//! before anything tries to send it, and removed only once the server has
//! acknowledged it; the key travels with it, so a resend after a crash or
//! an outage is recognised by the server and appended once. Batches are
//! sent in sequence order. A `lock` file keeps two collectors out of one
//! spool.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another collector holds the spool.
    #[error("spool {0} is in use by another collector (its lock is held); give this one its own --spool directory")]
    Busy(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_owned(), source }
}

/// One spooled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    /// Order of the batch in the spool.
    pub seq: u64,
    /// Its `Idempotency-Key`.
    pub key: String,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A spool directory, locked for this process while open.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
    next_seq: u64,
}

impl Spool {
    /// Opens (creating) the spool at `dir` and locks it.
    ///
    /// # Errors
    /// [`SpoolError::Busy`] if another process holds it; [`SpoolError::Io`].
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("lock");
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Busy(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(SpoolError::Io { path: lock_path, source: e }),
        }
        let mut spool = Spool { dir: dir.to_owned(), _lock: lock, next_seq: 0 };
        spool.next_seq = spool.pending()?.last().map_or(0, |b| b.seq + 1);
        Ok(spool)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The batches waiting, oldest first. Leftover temporary files (of a
    /// write a crash cut short, never acknowledged to anyone) are removed.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn pending(&self) -> Result<Vec<Spooled>, SpoolError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(".tmp-") {
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                continue;
            }
            let Some(stem) = name.strip_suffix(".jsonl") else { continue };
            let Some((seq, key)) = stem.split_once('.') else { continue };
            let Ok(seq) = seq.parse::<u64>() else { continue };
            let bytes = entry.metadata().map_err(io_err(&entry.path()))?.len();
            out.push(Spooled { seq, key: key.to_owned(), path: entry.path(), bytes });
        }
        out.sort_by_key(|b| b.seq);
        Ok(out)
    }

    /// Total bytes waiting.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn bytes(&self) -> Result<u64, SpoolError> {
        Ok(self.pending()?.iter().map(|b| b.bytes).sum())
    }

    /// Writes `body` durably as the next batch, under idempotency key
    /// `key` (`[A-Za-z0-9_-]`, no dots).
    ///
    /// # Errors
    /// [`SpoolError::Io`]; nothing is left half-written under a batch name.
    pub fn push(&mut self, key: &str, body: &[u8]) -> Result<Spooled, SpoolError> {
        let seq = self.next_seq;
        let path = self.dir.join(format!("{seq:016}.{key}.jsonl"));
        let tmp = self.dir.join(format!(".tmp-{seq:016}"));
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(body).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err(&self.dir))?;
        self.next_seq += 1;
        Ok(Spooled { seq, key: key.to_owned(), path, bytes: body.len() as u64 })
    }

    /// Removes an acknowledged batch.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn remove(&self, b: &Spooled) -> Result<(), SpoolError> {
        fs::remove_file(&b.path).map_err(io_err(&b.path))
    }
}

/// The default spool for a server at `url`:
/// `$XDG_STATE_HOME/zkaudit/spool/<first 16 hex digits of SHA-256(url)>`
/// (`~/.local/state` when `XDG_STATE_HOME` is unset, `/var/tmp` without a
/// home), so that collectors sending to different servers never share one.
pub fn default_dir(url: &str) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    base.join("zkaudit/spool").join(&hex::encode(Sha256::digest(url.trim_end_matches('/').as_bytes()))[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_reopening_in_order_and_the_lock_excludes_a_second_user() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path()).unwrap();
        assert!(matches!(Spool::open(d.path()), Err(SpoolError::Busy(_))));
        let a = s.push("run1-0", b"{\"a\":1}\n").unwrap();
        let b = s.push("run1-1", b"{\"b\":2}\n").unwrap();
        std::fs::write(d.path().join(".tmp-0000000000000009"), b"half").unwrap();
        drop(s);
        let mut s = Spool::open(d.path()).unwrap();
        assert_eq!(s.pending().unwrap(), vec![a.clone(), b.clone()]);
        assert!(!d.path().join(".tmp-0000000000000009").exists());
        let c = s.push("run2-0", b"x").unwrap();
        assert_eq!(c.seq, 2);
        s.remove(&a).unwrap();
        assert_eq!(s.pending().unwrap().iter().map(|b| b.key.as_str()).collect::<Vec<_>>(), ["run1-1", "run2-0"]);
        assert_eq!(s.bytes().unwrap(), b.bytes + 1);
    }
}
