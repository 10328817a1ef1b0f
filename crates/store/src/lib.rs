//! Content-addressed storage for receipts (and any other blob): where a
//! proof lives once it leaves the prover, named by the SHA-256 of its bytes.
//!
//! It owns:
//!
//! * the Blossom protocol, both sides: the blob descriptor and the kind
//!   24242 authorization event ([`blossom`], BUD-01/02/06/11/12), a client
//!   ([`blossom::Client`]) and a self-hosted server over a directory
//!   ([`server`], mounted by `zkaudit serve` under `/blossom`);
//! * a client of the IPFS Kubo RPC API ([`kubo`]), the fallback store, which
//!   keeps the CID the daemon returns beside the SHA-256 (a CID is never
//!   derived from the digest: large files are chunked into a DAG);
//! * the local cache with its size cap, pins and TTL garbage collection
//!   ([`cache`]);
//! * [`ProofStore`]: the one entry point the CLI and the proof market use,
//!   which puts to the first reachable remote, fetches with a digest check
//!   before anything is returned, and caches what it fetched.
//!
//! It must not know what a receipt means (that is `zkaudit-zkvm`) or speak
//! Nostr beyond signing and checking the authorization event (that is
//! `zkaudit-dvm`). Every remote call has a timeout; a failure is an
//! [`Error`], never a hang.

#![forbid(unsafe_code)]

pub mod blossom;
pub mod cache;
pub mod keys;
pub mod kubo;
mod reference;
pub mod server;

use std::path::PathBuf;
use std::time::Duration;

pub use reference::{Backend, BlobRef, StoreUrl};

/// Timeout of one remote store call, unless the caller sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest blob a client reads back or a server accepts by default (bytes).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;

/// Why a store operation failed. Each names the store and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--store` URL is not `blossom+http(s)://…` or `ipfs+http(s)://…`.
    #[error("store URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob reference is malformed (not a SHA-256, not a CID, not a URL).
    #[error("blob reference `{reference}`: {reason}")]
    Ref {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be reached or the call timed out.
    #[error("{store}: {reason}")]
    Unreachable {
        /// The store's URL.
        store: String,
        /// The transport error.
        reason: String,
    },
    /// The store answered with an error status.
    #[error("{store}: HTTP {status}: {reason}")]
    Status {
        /// The store's URL.
        store: String,
        /// The HTTP status.
        status: u16,
        /// The server's `X-Reason` header or body.
        reason: String,
    },
    /// The store answered 200 with something that is not what was asked for.
    #[error("{store}: {reason}")]
    Protocol {
        /// The store's URL.
        store: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// Fetched bytes do not hash to the SHA-256 they were fetched by.
    #[error("{source_url}: the blob's SHA-256 is {got}, not the {expected} it was fetched by (tampered or wrong blob; not used)")]
    Digest {
        /// Where the bytes came from.
        source_url: String,
        /// The SHA-256 asked for.
        expected: String,
        /// The SHA-256 of what came back.
        got: String,
    },
    /// A blob is larger than allowed.
    #[error("{what}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The blob is in none of the stores asked.
    #[error("blob {sha256} not found ({tried})")]
    NotFound {
        /// The SHA-256.
        sha256: String,
        /// What was tried, and what each said.
        tried: String,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The Nostr key or event could not be made.
    #[error("nostr: {0}")]
    Nostr(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// Whether `s` is 64 lowercase hex digits (a SHA-256 as Blossom writes it).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks that `bytes` hash to `expected` (from `source_url`).
///
/// # Errors
/// [`Error::Digest`] when they do not.
pub fn check_digest(bytes: &[u8], expected: &str, source_url: &str) -> Result<(), Error> {
    let got = sha256_hex(bytes);
    if got != expected {
        return Err(Error::Digest { source_url: source_url.to_owned(), expected: expected.to_owned(), got });
    }
    Ok(())
}

/// One remote store, as named by a `--store` URL.
pub enum Remote {
    /// A Blossom server.
    Blossom(blossom::Client),
    /// An IPFS node's Kubo RPC API.
    Ipfs(kubo::Client),
}

impl Remote {
    /// A client for `url` with `keys` for Blossom's authorization events
    /// and `timeout` per call.
    pub fn new(url: &StoreUrl, keys: Option<nostr::Keys>, timeout: Duration) -> Remote {
        match url.backend {
            Backend::Blossom => Remote::Blossom(blossom::Client::new(&url.base, keys, timeout)),
            Backend::Ipfs => Remote::Ipfs(kubo::Client::new(&url.base, timeout)),
        }
    }

    /// The store's URL as given.
    pub fn url(&self) -> String {
        match self {
            Remote::Blossom(c) => format!("blossom+{}", c.base()),
            Remote::Ipfs(c) => format!("ipfs+{}", c.base()),
        }
    }

    fn put(&self, bytes: &[u8], content_type: &str) -> Result<BlobRef, Error> {
        match self {
            Remote::Blossom(c) => c.upload(bytes, content_type).map(|d| BlobRef::from_descriptor(&d)),
            Remote::Ipfs(c) => {
                let cid = c.add(bytes)?;
                Ok(BlobRef { sha256: sha256_hex(bytes), size: bytes.len() as u64, url: Some(format!("ipfs://{cid}")), cid: Some(cid) })
            }
        }
    }

    fn get(&self, r: &BlobRef, limit: u64) -> Result<Vec<u8>, Error> {
        match self {
            Remote::Blossom(c) => c.get(&r.sha256, limit),
            Remote::Ipfs(c) => {
                let cid = r.cid.as_deref().ok_or_else(|| Error::NotFound {
                    sha256: r.sha256.clone(),
                    tried: format!("{}: no CID is known for it, and a CID is never derived from a SHA-256", self.url()),
                })?;
                let bytes = c.cat(cid, limit)?;
                check_digest(&bytes, &r.sha256, &format!("ipfs://{cid}"))?;
                Ok(bytes)
            }
        }
    }
}

/// The proof store: a local cache in front of remotes tried in order
/// (Blossom first, IPFS as fallback, as configured).
pub struct ProofStore {
    /// The remotes, in the order they are tried.
    pub remotes: Vec<Remote>,
    /// The local cache.
    pub cache: cache::Cache,
    /// Largest blob fetched (bytes).
    pub max_blob_bytes: u64,
    /// Timeout of each remote call.
    pub timeout: Duration,
}

impl std::fmt::Debug for ProofStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remotes: Vec<String> = self.remotes.iter().map(Remote::url).collect();
        f.debug_struct("ProofStore")
            .field("remotes", &remotes)
            .field("max_blob_bytes", &self.max_blob_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a blob went, from [`ProofStore::put`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct Put {
    /// The blob's reference (SHA-256, size, URL, CID).
    #[serde(flatten)]
    pub blob: BlobRef,
    /// The store that took it.
    pub store: String,
    /// Stores tried before it, with their errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

impl ProofStore {
    /// Puts `bytes` in the first remote that takes them (each failure is
    /// kept in [`Put::failed`]) and in the local cache, pinned when `pin`.
    ///
    /// # Errors
    /// [`Error::Unreachable`] naming every remote's failure when none took
    /// it; [`Error::Io`] writing the cache.
    pub fn put(&self, bytes: &[u8], content_type: &str, pin: bool) -> Result<Put, Error> {
        let mut failed = Vec::new();
        for r in &self.remotes {
            match r.put(bytes, content_type) {
                Ok(blob) => {
                    self.cache.insert(bytes, &blob)?;
                    if pin {
                        self.pin(&blob)?;
                    }
                    return Ok(Put { blob, store: r.url(), failed });
                }
                Err(e) => failed.push(e.to_string()),
            }
        }
        if self.remotes.is_empty() {
            return Err(Error::Url { url: String::new(), reason: "no store configured (give --store URL)".into() });
        }
        Err(Error::Unreachable { store: "every store".into(), reason: failed.join("; ") })
    }

    /// The bytes of `blob`: from the cache when there (digest checked), else
    /// from its URL's store or each remote in turn, checked against its
    /// SHA-256 before anything is returned or cached.
    ///
    /// # Errors
    /// [`Error::Digest`] for tampered bytes (from whichever store gave
    /// them: a digest failure is final, not a reason to try the next);
    /// [`Error::NotFound`] when no store has it.
    pub fn get(&self, blob: &BlobRef) -> Result<Vec<u8>, Error> {
        if let Some(bytes) = self.cache.get(&blob.sha256)? {
            return Ok(bytes);
        }
        let mut tried = Vec::new();
        let direct = blob.url.as_deref().and_then(|u| if u.starts_with("ipfs://") { None } else { blossom::Client::for_blob_url(u, self.timeout) });
        if let Some(c) = &direct {
            match c.get(&blob.sha256, self.max_blob_bytes) {
                Ok(bytes) => {
                    self.cache.insert(&bytes, blob)?;
                    return Ok(bytes);
                }
                Err(e @ Error::Digest { .. }) => return Err(e),
                Err(e) => tried.push(e.to_string()),
            }
        }
        for r in &self.remotes {
            // The server the blob's URL named was asked already.
            if let (Some(c), Remote::Blossom(rc)) = (&direct, r) {
                if c.base() == rc.base() {
                    continue;
                }
            }
            match r.get(blob, self.max_blob_bytes) {
                Ok(bytes) => {
                    self.cache.insert(&bytes, blob)?;
                    return Ok(bytes);
                }
                Err(e @ Error::Digest { .. }) => return Err(e),
                Err(e) => tried.push(e.to_string()),
            }
        }
        Err(Error::NotFound { sha256: blob.sha256.clone(), tried: if tried.is_empty() { "no store configured".into() } else { tried.join("; ") } })
    }

    /// Pins `blob` in the cache (exempt from GC; fetched first when not
    /// cached) and on IPFS remotes when its CID is known.
    ///
    /// # Errors
    /// [`Error::Io`], or a remote's pin failure.
    pub fn pin(&self, blob: &BlobRef) -> Result<(), Error> {
        if self.cache.entry(&blob.sha256)?.is_none() {
            self.get(blob)?;
        }
        self.cache.set_pinned(&blob.sha256, true)?;
        if let Some(cid) = &blob.cid {
            for r in &self.remotes {
                if let Remote::Ipfs(c) = r {
                    c.pin_add(cid)?;
                }
            }
        }
        Ok(())
    }

    /// Unpins `blob` in the cache and on IPFS remotes that know its CID.
    ///
    /// # Errors
    /// [`Error::Io`], or a remote's unpin failure.
    pub fn unpin(&self, blob: &BlobRef) -> Result<(), Error> {
        let known = self.cache.entry(&blob.sha256)?;
        if known.is_some() {
            self.cache.set_pinned(&blob.sha256, false)?;
        }
        if let Some(cid) = blob.cid.as_ref().or(known.as_ref().and_then(|e| e.blob.cid.as_ref())) {
            for r in &self.remotes {
                if let Remote::Ipfs(c) = r {
                    c.pin_rm(cid)?;
                }
            }
        }
        Ok(())
    }
}
