//! Appending to the ledger and keeping its index in step: the one
//! append-and-index use case, for `zkaudit log append`, recorded proofs and
//! `POST /v1/log/entries`, with idempotent retries for the latter.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use zkaudit_index::{Backend, IndexedEvent, Query};
use zkaudit_jobs::{Idempotent, Store};
use zkaudit_tlog::{Appended, LedgerDir, Log, LogReader};

use crate::Error;

/// The index of `dir` unless `spec` names another: a SQLite file path or
/// a `postgres://` URL.
pub fn index_spec(dir: &LedgerDir, spec: Option<&str>) -> String {
    spec.map_or_else(|| dir.index_sqlite().display().to_string(), str::to_owned)
}

/// Opens the index `spec` and brings it up to `reader`'s checkpoint,
/// calling `progress` with the entries added so far.
///
/// # Errors
/// [`Error::Index`].
pub fn synced_index(reader: &LogReader, spec: &str, progress: &mut dyn FnMut(u64)) -> Result<Box<dyn Backend>, Error> {
    let err = |source| Error::Index { spec: spec.to_owned(), source };
    let mut index = zkaudit_index::open(spec).map_err(err)?;
    zkaudit_index::sync(index.as_mut(), reader, progress).map_err(err)?;
    Ok(index)
}

/// Rebuilds the index `spec` of the ledger in `dir` from the tiles alone,
/// calling `progress(done, of)`.
///
/// # Errors
/// [`Error::Ledger`] or [`Error::Index`].
pub fn reindex(dir: &Path, spec: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<zkaudit_index::Synced, Error> {
    let reader = LogReader::open(dir).map_err(Error::ledger(dir))?;
    let err = |source| Error::Index { spec: spec.to_owned(), source };
    let mut index = zkaudit_index::open(spec).map_err(err)?;
    let size = reader.size();
    zkaudit_index::rebuild(index.as_mut(), &reader, &mut |n| progress(n, size)).map_err(err)
}

/// How many entries an index at `spec` lacks behind `reader` (for sizing
/// a progress bar); 0 if it cannot tell.
pub fn index_lag(reader: &LogReader, spec: &str) -> u64 {
    let at = zkaudit_index::open(spec).ok().and_then(|mut i| i.position().ok().flatten()).map_or(0, |p| p.tree_size);
    reader.size().saturating_sub(at)
}

/// A ledger opened for appending, with its index. Every append is
/// followed by an index update, so queries see what was acknowledged.
/// `Send + Sync`: the server shares one.
pub struct Ledger {
    dir: LedgerDir,
    log: Log,
    index_spec: String,
    /// The index, opened on first use; one sync at a time.
    index: Mutex<Option<Box<dyn Backend>>>,
    /// `(tenant, idempotency key)` of idempotent appends in progress.
    in_flight: Mutex<HashSet<(String, String)>>,
}

/// The outcome of [`Ledger::append_idempotent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotentAppend {
    /// Appended now.
    Appended(Appended),
    /// A retry of a request already answered: its first answer, nothing appended.
    Replayed(Appended),
    /// The key was used before with a different body; nothing appended.
    KeyReused,
    /// A request with this key is still being appended; nothing appended.
    InProgress,
}

impl Ledger {
    /// Opens the ledger in `dir` (which needs its private key) with the
    /// index `index` (default `DIR/index.sqlite`).
    ///
    /// # Errors
    /// [`Error::Ledger`] if `dir` is not a ledger or its key is unreadable.
    pub fn open(dir: &Path, index: Option<&str>) -> Result<Ledger, Error> {
        let layout = LedgerDir::new(dir);
        let log = Log::open(dir).map_err(Error::ledger(dir))?;
        Ok(Ledger { index_spec: index_spec(&layout, index), dir: layout, log, index: Mutex::default(), in_flight: Mutex::default() })
    }

    /// The directory's layout.
    pub fn dir(&self) -> &LedgerDir {
        &self.dir
    }

    /// The index this ledger keeps in step.
    pub fn index_spec(&self) -> &str {
        &self.index_spec
    }

    /// A reader at the latest checkpoint.
    ///
    /// # Errors
    /// [`Error::Ledger`].
    pub fn reader(&self) -> Result<LogReader, Error> {
        LogReader::open(self.dir.root()).map_err(Error::ledger(self.dir.root()))
    }

    /// Appends `entries` (canonical event bytes) as one atomic batch,
    /// acknowledged once durable under a signed checkpoint, then brings the
    /// index up to that checkpoint.
    ///
    /// # Errors
    /// [`Error::Ledger`] if nothing was appended; [`Error::IndexAfterAppend`]
    /// if the entries are appended (it holds their acknowledgement) but the
    /// index could not follow.
    pub fn append(&self, entries: Vec<Vec<u8>>) -> Result<Appended, Error> {
        let a = self.log.append(entries).map_err(Error::ledger(self.dir.root()))?;
        self.sync_index().map_err(|e| match e {
            Error::Index { spec, source } => Error::IndexAfterAppend { appended: Box::new(a), spec, source },
            other => other,
        })?;
        Ok(a)
    }

    /// Brings the index up to the latest checkpoint.
    ///
    /// # Errors
    /// [`Error::Index`], or [`Error::Ledger`] if the checkpoint is unreadable.
    pub fn sync_index(&self) -> Result<(), Error> {
        self.with_synced_index(|_| Ok(()))
    }

    /// The indexed events `query` selects, with the index first brought up
    /// to the latest checkpoint (on the ledger's one index connection).
    ///
    /// # Errors
    /// As [`sync_index`](Self::sync_index).
    pub fn select(&self, query: &Query) -> Result<Vec<IndexedEvent>, Error> {
        self.with_synced_index(|index| index.select(query))
    }

    /// Runs `f` on the index once it is synced to the latest checkpoint.
    fn with_synced_index<T>(&self, f: impl FnOnce(&mut dyn Backend) -> Result<T, zkaudit_index::Error>) -> Result<T, Error> {
        let reader = self.reader()?;
        let err = |source| Error::Index { spec: self.index_spec.clone(), source };
        let mut slot = self.index.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = match slot.as_mut() {
            Some(index) => index,
            None => slot.insert(zkaudit_index::open(&self.index_spec).map_err(err)?),
        };
        match zkaudit_index::sync(index.as_mut(), &reader, &mut |_| {}).and_then(|_| f(index.as_mut())) {
            Ok(t) => Ok(t),
            Err(e) => {
                // Reopen next time: the connection may be what failed.
                *slot = None;
                Err(err(e))
            }
        }
    }

    /// Appends `entries` at most once per idempotency `key` of `tenant`
    /// (the HTTP `Idempotency-Key`): a retry with the same key and the same
    /// `request` bytes gets the first answer and appends nothing; the same
    /// key with other bytes is refused. If the process that first took the
    /// key stopped between appending and answering, the retry finds the
    /// batch in the log (from the size the log had then) instead of
    /// appending it twice. A second request with a key whose first is
    /// still running in this process gets [`IdempotentAppend::InProgress`].
    ///
    /// # Errors
    /// As [`Ledger::append`] (with [`Error::IndexAfterAppend`] the answer is
    /// stored, so a retry replays it), and [`Error::Store`].
    pub fn append_idempotent(&self, store: &Store, tenant: &str, key: &str, request: &[u8], entries: Vec<Vec<u8>>) -> Result<IdempotentAppend, Error> {
        let id = (tenant.to_owned(), key.to_owned());
        {
            let mut running = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !running.insert(id.clone()) {
                return Ok(IdempotentAppend::InProgress);
            }
        }
        let r = self.append_once(store, tenant, key, request, entries);
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        r
    }

    fn append_once(&self, store: &Store, tenant: &str, key: &str, request: &[u8], entries: Vec<Vec<u8>>) -> Result<IdempotentAppend, Error> {
        let digest = hex::encode(Sha256::digest(request));
        let size = self.reader()?.size();
        let found = match store.claim_idempotency_key(tenant, key, &digest, size)? {
            Idempotent::Mismatch => return Ok(IdempotentAppend::KeyReused),
            Idempotent::Done(v) => {
                let first: Appended =
                    serde_json::from_value(v).map_err(|e| Error::Job { job: format!("idempotency key {key}"), reason: format!("stored answer: {e}") })?;
                return Ok(IdempotentAppend::Replayed(first));
            }
            Idempotent::New => None,
            // Not running in this process (we hold the key), so the process
            // that took it stopped: the batch may or may not be in the log.
            Idempotent::Pending { tree_size_before } => self.find_batch(tree_size_before, &entries)?,
        };
        let (ack, fresh, lagging) = match found {
            Some(ack) => (ack, false, None),
            None => match self.append(entries) {
                Ok(a) => (a, true, None),
                Err(e) => match e.durable_append() {
                    // Durable: the answer is stored below like any other.
                    Some(a) => (a, true, Some(e)),
                    None => {
                        if matches!(e, Error::Ledger { .. }) {
                            // Nothing was appended: let a retry try again.
                            store.release_idempotency_key(tenant, key)?;
                        }
                        return Err(e);
                    }
                },
            },
        };
        let v = serde_json::to_value(ack).map_err(|e| Error::Job { job: format!("idempotency key {key}"), reason: e.to_string() })?;
        store.complete_idempotency_key(tenant, key, &v)?;
        if let Some(e) = lagging {
            return Err(e);
        }
        Ok(if fresh { IdempotentAppend::Appended(ack) } else { IdempotentAppend::Replayed(ack) })
    }

    /// Looks for `entries` as one contiguous run in the log at or after
    /// leaf index `from`; returns its acknowledgement as of the current
    /// checkpoint.
    fn find_batch(&self, from: u64, entries: &[Vec<u8>]) -> Result<Option<Appended>, Error> {
        let reader = self.reader()?;
        let n = entries.len() as u64;
        let Some(first) = entries.first() else { return Ok(None) };
        let mut i = from;
        while i + n <= reader.size() {
            if reader.entry(i).map_err(Error::ledger(self.dir.root()))? == *first {
                let mut all = true;
                for (k, e) in entries.iter().enumerate().skip(1) {
                    if reader.entry(i + k as u64).map_err(Error::ledger(self.dir.root()))? != *e {
                        all = false;
                        break;
                    }
                }
                if all {
                    let cp = reader.checkpoint();
                    return Ok(Some(Appended { first_index: i, count: n, tree_size: cp.size, root_hash: cp.root }));
                }
            }
            i += 1;
        }
        Ok(None)
    }
}
