//! The local blob cache: what was put or fetched, kept by SHA-256 under a
//! size cap, with pins and TTL garbage collection.
//!
//! On disk, in the cache directory: `<sha256>` holds the bytes (its
//! modification time is the last use) and `<sha256>.json` the [`Entry`].
//! A cached blob is checked against its SHA-256 on every read; one that no
//! longer matches is removed and reported as absent, so it is fetched again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{is_sha256_hex, sha256_hex, BlobRef, Error};

/// Environment variable naming the cache directory.
pub const DIR_ENV: &str = "ZKAUDIT_STORE_CACHE";

/// The default cache directory: `$ZKAUDIT_STORE_CACHE`, else
/// `$XDG_CACHE_HOME/zkaudit/store`, else `~/.cache/zkaudit/store`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(DIR_ENV) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("zkaudit").join("store")
}

/// What the cache knows about one blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The blob's reference (SHA-256, size, URL, CID).
    #[serde(flatten)]
    pub blob: BlobRef,
    /// Pinned blobs are never collected.
    pub pinned: bool,
    /// Last use, seconds since the Unix epoch.
    pub last_used: u64,
}

/// What a collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// Blobs removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Blobs kept.
    pub kept: u64,
    /// Bytes kept.
    pub kept_bytes: u64,
}

/// A cache directory with its cap.
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Cache {
    /// Opens (creating) the cache at `dir`, holding at most `max_bytes` of
    /// unpinned blobs.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be made.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Cache, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        Ok(Cache { dir: dir.to_owned(), max_bytes })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bytes_path(&self, sha: &str) -> PathBuf {
        self.dir.join(sha)
    }

    fn entry_path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}.json"))
    }

    /// The entry for `sha256`, if cached.
    ///
    /// # Errors
    /// [`Error::Io`] reading it.
    pub fn entry(&self, sha256: &str) -> Result<Option<Entry>, Error> {
        let p = self.entry_path(sha256);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Io { path: p, source: std::io::Error::other(e) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path: p, source: e }),
        }
    }

    fn write_entry(&self, e: &Entry) -> Result<(), Error> {
        let p = self.entry_path(&e.blob.sha256);
        let json = serde_json::to_vec_pretty(e).map_err(|err| Error::Io { path: p.clone(), source: std::io::Error::other(err) })?;
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(Error::io(&p))
    }

    /// Caches `bytes` as `blob` (merging what is already known of it: its
    /// URL, CID and pin), then collects down to the cap.
    ///
    /// # Errors
    /// [`Error::Digest`] if `bytes` are not `blob`; [`Error::Io`].
    pub fn insert(&self, bytes: &[u8], blob: &BlobRef) -> Result<(), Error> {
        crate::check_digest(bytes, &blob.sha256, "the cache insert")?;
        let path = self.bytes_path(&blob.sha256);
        if !path.exists() {
            let tmp = self.dir.join(format!("{}.tmp", blob.sha256));
            std::fs::write(&tmp, bytes).map_err(Error::io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        }
        let old = self.entry(&blob.sha256)?;
        let mut e = Entry { blob: blob.clone(), pinned: false, last_used: secs(SystemTime::now()) };
        e.blob.size = bytes.len() as u64;
        if let Some(old) = old {
            e.pinned = old.pinned;
            e.blob.url = e.blob.url.or(old.blob.url);
            e.blob.cid = e.blob.cid.or(old.blob.cid);
        }
        self.write_entry(&e)?;
        self.collect(None)?;
        Ok(())
    }

    /// The cached bytes of `sha256`, checked against it; a mismatching
    /// file is removed and `None` returned.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.bytes_path(sha256);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        if sha256_hex(&bytes) != sha256 {
            self.remove(sha256)?;
            return Ok(None);
        }
        if let Some(mut e) = self.entry(sha256)? {
            e.last_used = secs(SystemTime::now());
            self.write_entry(&e)?;
        }
        Ok(Some(bytes))
    }

    /// Marks `sha256` pinned or not.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it is not cached; [`Error::Io`].
    pub fn set_pinned(&self, sha256: &str, pinned: bool) -> Result<(), Error> {
        let mut e =
            self.entry(sha256)?.ok_or_else(|| Error::NotFound { sha256: sha256.to_owned(), tried: format!("not in the cache {}", self.dir.display()) })?;
        e.pinned = pinned;
        self.write_entry(&e)
    }

    fn remove(&self, sha256: &str) -> Result<(), Error> {
        for p in [self.bytes_path(sha256), self.entry_path(sha256)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Io { path: p, source: e }),
            }
        }
        Ok(())
    }

    /// Every cached blob, most recently used first.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn list(&self) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        for d in std::fs::read_dir(&self.dir).map_err(Error::io(&self.dir))? {
            let d = d.map_err(Error::io(&self.dir))?;
            let name = d.file_name().to_string_lossy().into_owned();
            if let Some(sha) = name.strip_suffix(".json").filter(|s| is_sha256_hex(s)) {
                if let Some(e) = self.entry(sha)? {
                    out.push(e);
                }
            }
        }
        out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.blob.sha256.cmp(&b.blob.sha256)));
        Ok(out)
    }

    /// Removes unpinned blobs unused for longer than `ttl` (when given),
    /// then the least recently used unpinned ones until the unpinned total
    /// is within the cap.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn collect(&self, ttl: Option<Duration>) -> Result<GcReport, Error> {
        let now = secs(SystemTime::now());
        let mut r = GcReport::default();
        let mut unpinned_bytes: u64 = 0;
        let mut survivors = Vec::new();
        for e in self.list()? {
            let stale = ttl.is_some_and(|t| now.saturating_sub(e.last_used) > t.as_secs());
            if !e.pinned && stale {
                self.remove(&e.blob.sha256)?;
                r.removed += 1;
                r.freed_bytes += e.blob.size;
                continue;
            }
            if !e.pinned {
                unpinned_bytes += e.blob.size;
            }
            survivors.push(e);
        }
        // Least recently used last in `survivors`: evict from the back.
        while unpinned_bytes > self.max_bytes {
            let Some(pos) = survivors.iter().rposition(|e| !e.pinned) else { break };
            let e = survivors.remove(pos);
            self.remove(&e.blob.sha256)?;
            unpinned_bytes -= e.blob.size;
            r.removed += 1;
            r.freed_bytes += e.blob.size;
        }
        r.kept = survivors.len() as u64;
        r.kept_bytes = survivors.iter().map(|e| e.blob.size).sum();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(c: &Cache, bytes: &[u8]) -> BlobRef {
        let b = BlobRef { sha256: sha256_hex(bytes), size: bytes.len() as u64, url: None, cid: None };
        c.insert(bytes, &b).unwrap();
        b
    }

    #[test]
    fn cap_pins_ttl_and_tampering() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Cache::open(tmp.path(), 25).unwrap();
        let a = put(&c, &[1u8; 10]);
        c.set_pinned(&a.sha256, true).unwrap();
        let b = put(&c, &[2u8; 10]);
        // Make `b` older than `d` so it goes first at the cap.
        let mut e = c.entry(&b.sha256).unwrap().unwrap();
        e.last_used -= 100;
        c.write_entry(&e).unwrap();
        let d = put(&c, &[3u8; 10]);
        let _ = put(&c, &[4u8; 10]);
        // 30 unpinned bytes over a 25-byte cap: the oldest unpinned (b) went.
        assert!(c.get(&b.sha256).unwrap().is_none());
        assert_eq!(c.get(&a.sha256).unwrap().unwrap(), vec![1u8; 10]);
        assert!(c.get(&d.sha256).unwrap().is_some());
        // TTL 0 after a pause: everything unpinned goes, the pin stays.
        let mut e = c.entry(&d.sha256).unwrap().unwrap();
        e.last_used -= 10;
        c.write_entry(&e).unwrap();
        let r = c.collect(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(r.removed, 1);
        assert!(c.get(&a.sha256).unwrap().is_some());
        // A tampered file is dropped, not returned.
        std::fs::write(c.bytes_path(&a.sha256), [9u8; 10]).unwrap();
        assert!(c.get(&a.sha256).unwrap().is_none());
        assert!(c.entry(&a.sha256).unwrap().is_none());
        // Wrong bytes are never inserted under another digest.
        assert!(matches!(c.insert(b"x", &b), Err(Error::Digest { .. })));
    }
}
