//! Appending to the ledger, with its index following behind: the one
//! append use case, for `zkaudit log append` (streamed JSON Lines),
//! recorded proofs, collectors and `POST /v1/log/entries` (with idempotent
//! retries); the index follower of long-running appenders; and queries
//! that first bring the index up to the checkpoint they answer from.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use zkaudit_index::{Backend, IndexedEvent, Query};
use zkaudit_jobs::{Idempotent, Store};
use zkaudit_tlog::{Appended, Leaves, LedgerDir, Log, LogReader};

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

/// Idle query connections a [`Ledger`] keeps open.
const IDLE_READERS: usize = 4;

/// A ledger opened for appending, with its index. Every append is
/// followed by an index update, so queries see what was acknowledged.
/// `Send + Sync`: the server shares one.
pub struct Ledger {
    dir: LedgerDir,
    log: Log,
    index_spec: String,
    /// The index connection that syncs, opened on first use; one sync at
    /// a time.
    index: Mutex<Option<Box<dyn Backend>>>,
    /// Idle index connections that answer queries once the index is
    /// synced, so that concurrent queries (the server's) do not wait for
    /// each other: at most [`IDLE_READERS`] are kept.
    readers: Mutex<Vec<Box<dyn Backend>>>,
    /// `(tenant, idempotency key)` of idempotent appends in progress.
    in_flight: Mutex<HashSet<(String, String)>>,
}

/// Brings an index up to its ledger's checkpoint from a background thread,
/// whenever the log has grown, so that appends never wait for the index
/// and queries find little left to catch up: for processes that append
/// for long (the server, collectors). Stops when dropped.
pub struct IndexFollower {
    stop: Arc<(Mutex<bool>, Condvar)>,
    last_error: Arc<Mutex<Option<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl IndexFollower {
    /// Follows the ledger in `dir` with the index `spec`, looking for new
    /// entries every `every`.
    ///
    /// # Errors
    /// [`Error::Ledger`] if the thread cannot be started.
    pub fn spawn(dir: &Path, spec: &str, every: Duration) -> Result<Self, Error> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let last_error = Arc::new(Mutex::new(None));
        let (stopping, errors) = (Arc::clone(&stop), Arc::clone(&last_error));
        let (root, spec) = (dir.to_owned(), spec.to_owned());
        let handle = std::thread::Builder::new()
            .name("zkaudit-indexer".into())
            .spawn(move || {
                let mut index: Option<Box<dyn Backend>> = None;
                let mut indexed = None;
                loop {
                    if let Ok(reader) = LogReader::open(&root) {
                        if Some(reader.size()) != indexed {
                            let backend = match index.take() {
                                Some(b) => Ok(b),
                                None => zkaudit_index::open(&spec),
                            };
                            let synced = backend.and_then(|mut b| zkaudit_index::sync(b.as_mut(), &reader, &mut |_| {}).map(|s| (b, s)));
                            let mut last = errors.lock().unwrap_or_else(PoisonError::into_inner);
                            match synced {
                                Ok((b, s)) => {
                                    index = Some(b);
                                    indexed = Some(s.position.tree_size);
                                    *last = None;
                                }
                                // Reopened next time: the connection may be what failed.
                                Err(e) => *last = Some(e.to_string()),
                            }
                        }
                    }
                    let (lock, wake) = &*stopping;
                    let stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    let (stopped, _) = wake.wait_timeout_while(stopped, every, |s| !*s).unwrap_or_else(PoisonError::into_inner);
                    if *stopped {
                        return;
                    }
                }
            })
            .map_err(|source| Error::Ledger { dir: dir.to_owned(), source: zkaudit_tlog::Error::Io { path: dir.to_owned(), source } })?;
        Ok(Self { stop, last_error, handle: Some(handle) })
    }

    /// The error of the follower's last attempt, if it failed (it retries).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for IndexFollower {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// How [`Ledger::append_jsonl`] cuts and parses its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonlBatches {
    /// Commit every this many events on their own (`None`: the whole input
    /// is one atomic commit). Must not be 0.
    pub size: Option<usize>,
    /// Parsing threads.
    pub threads: usize,
}

impl JsonlBatches {
    /// The whole input as one commit, parsed on one thread per core.
    pub fn whole() -> Self {
        Self { size: None, threads: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) }
    }
}

/// What an input had committed before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedBefore {
    /// Batches committed.
    pub batches: usize,
    /// Events in them.
    pub events: u64,
    /// Tree size after the last of them.
    pub tree_size: Option<u64>,
}

impl std::fmt::Display for CommittedBefore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tree_size {
            Some(t) => write!(f, "{} earlier batch(es) of this input, {} events, were committed, up to tree size {t}", self.batches, self.events),
            None => f.write_str("nothing from this input was appended"),
        }
    }
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
        Ok(Ledger { index_spec: index_spec(&layout, index), dir: layout, log, index: Mutex::default(), readers: Mutex::default(), in_flight: Mutex::default() })
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
    /// acknowledged once durable under a signed checkpoint. The index is
    /// not waited for: it follows behind, and every query brings it up to
    /// the checkpoint it answers from.
    ///
    /// # Errors
    /// [`Error::Ledger`] if nothing was appended.
    pub fn append(&self, entries: Vec<Vec<u8>>) -> Result<Appended, Error> {
        self.log.append(entries).map_err(Error::ledger(self.dir.root()))
    }

    /// Appends the events of a JSON Lines input (`source` names it in
    /// errors), parsed and hashed on `batch.threads` threads while the
    /// sequencer writes, streaming: memory stays bounded whatever the
    /// input's size.
    ///
    /// Without `batch.size` the whole input is one atomic commit: a
    /// malformed line leaves the log as it was. With it, every
    /// `batch.size` events are committed on their own and reported to
    /// `committed` as they are; a malformed line stops the input, and the
    /// error says what was committed before it. `progress` hears the input
    /// bytes consumed so far. Returns the acknowledgement of the whole
    /// input (its first index, event count, and the last checkpoint).
    ///
    /// # Errors
    /// [`Error::Input`] (with what was committed) or [`Error::Ledger`].
    pub fn append_jsonl(
        &self,
        input: impl std::io::Read + Send,
        source: &str,
        batch: JsonlBatches,
        committed: &mut dyn FnMut(&Appended),
        progress: &mut dyn FnMut(u64),
    ) -> Result<Appended, Error> {
        let ledger_err = |source| Error::Ledger { dir: self.dir.root().to_owned(), source };
        let mut acks: Vec<Appended> = Vec::new();
        let mut stream = None;
        let mut failed = None;
        let parsed = zkaudit_event::parse_jsonl_parallel(input, source, batch.threads, Leaves::push, |mut leaves, _, bytes| {
            progress(bytes);
            let mut step = || -> Result<(), zkaudit_tlog::Error> {
                while !leaves.is_empty() {
                    let s = match &mut stream {
                        Some(s) => s,
                        None => stream.insert(self.log.stream()?),
                    };
                    let room = batch.size.map_or(leaves.len(), |b| b - s.len()).min(leaves.len());
                    let rest = leaves.split_off(room);
                    s.push(std::mem::replace(&mut leaves, rest));
                    if batch.size.is_some_and(|b| s.len() >= b) {
                        let a = stream.take().map(zkaudit_tlog::AppendStream::finish).transpose()?;
                        if let Some(a) = a {
                            committed(&a);
                            acks.push(a);
                        }
                    }
                }
                Ok(())
            };
            match step() {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        });
        if let Some(e) = failed {
            return Err(ledger_err(e));
        }
        if let Err(error) = parsed {
            // Dropping an unfinished stream abandons it.
            drop(stream);
            let committed = CommittedBefore { batches: acks.len(), events: acks.iter().map(|a| a.count).sum(), tree_size: acks.last().map(|a| a.tree_size) };
            return Err(Error::Input { error, committed });
        }
        let last = match (stream, acks.last()) {
            (Some(s), _) => {
                let a = s.finish().map_err(ledger_err)?;
                committed(&a);
                acks.push(a);
                a
            }
            (None, Some(a)) => *a,
            (None, None) => {
                // An empty input: nothing to commit.
                let reader = self.reader()?;
                let cp = reader.checkpoint();
                return Ok(Appended { first_index: cp.size, count: 0, tree_size: cp.size, root_hash: cp.root });
            }
        };
        let first_index = acks.first().map_or(last.first_index, |a| a.first_index);
        Ok(Appended { first_index, count: acks.iter().map(|a| a.count).sum(), ..last })
    }

    /// Brings the index up to the latest checkpoint.
    ///
    /// # Errors
    /// [`Error::Index`], or [`Error::Ledger`] if the checkpoint is unreadable.
    pub fn sync_index(&self) -> Result<(), Error> {
        self.with_synced_index(|_, _| Ok(()))
    }

    /// The indexed events `query` selects as of the latest checkpoint, with
    /// the index first brought up to it (on the ledger's one index
    /// connection).
    ///
    /// # Errors
    /// As [`sync_index`](Self::sync_index).
    pub fn select(&self, query: &Query) -> Result<Vec<IndexedEvent>, Error> {
        self.with_synced_index(|index, reader| zkaudit_index::select(index, reader, query))
    }

    /// Events per time bucket, layer and type in `[from_ns, to_ns)` as of
    /// the latest checkpoint ([`zkaudit_index::activity`]), with the index
    /// first brought up to it.
    ///
    /// # Errors
    /// As [`sync_index`](Self::sync_index); [`Error::Index`] with
    /// `zkaudit_index::Error::Range` for a window or bucket it refuses.
    pub fn activity(&self, from_ns: i64, to_ns: i64, bucket_ns: i64) -> Result<Vec<zkaudit_index::ActivityCount>, Error> {
        self.with_synced_index(|index, reader| zkaudit_index::activity(index, reader, from_ns, to_ns, bucket_ns))
    }

    /// The earliest and latest event timestamps (ns since the epoch), with
    /// the index first brought up to the latest checkpoint; `None` for an
    /// empty ledger.
    ///
    /// # Errors
    /// As [`sync_index`](Self::sync_index).
    pub fn time_span(&self) -> Result<Option<(i64, i64)>, Error> {
        self.with_synced_index(|index, _| index.time_span())
    }

    /// Number of events `query` selects as of the latest checkpoint
    /// (ignoring its limit), with the index first brought up to it.
    ///
    /// # Errors
    /// As [`sync_index`](Self::sync_index).
    pub fn count(&self, query: &Query) -> Result<u64, Error> {
        self.with_synced_index(|index, reader| zkaudit_index::count(index, reader, query))
    }

    /// Runs `f` on the index once it is synced to the latest checkpoint,
    /// with a reader at that checkpoint: the sync on the one syncing
    /// connection, `f` on an idle query connection (opened if none is), so
    /// that queries run side by side.
    fn with_synced_index<T>(&self, f: impl FnOnce(&mut dyn Backend, &LogReader) -> Result<T, zkaudit_index::Error>) -> Result<T, Error> {
        let reader = self.reader()?;
        let err = |source| Error::Index { spec: self.index_spec.clone(), source };
        {
            let mut slot = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            let index = match slot.as_mut() {
                Some(index) => index,
                None => slot.insert(zkaudit_index::open(&self.index_spec).map_err(err)?),
            };
            if let Err(e) = zkaudit_index::sync(index.as_mut(), &reader, &mut |_| {}) {
                // Reopen next time: the connection may be what failed.
                *slot = None;
                return Err(err(e));
            }
        }
        let idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match idle {
            Some(c) => c,
            None => zkaudit_index::open(&self.index_spec).map_err(err)?,
        };
        // A connection whose query failed is dropped: it may be what failed.
        let answer = f(conn.as_mut(), &reader).map_err(err)?;
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        Ok(answer)
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
    /// As [`Ledger::append`], and [`Error::Store`].
    pub fn append_idempotent(&self, store: &Store, tenant: &str, key: &str, request: &[u8], entries: Vec<Vec<u8>>) -> Result<IdempotentAppend, Error> {
        let id = (tenant.to_owned(), key.to_owned());
        {
            let mut running = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            if !running.insert(id.clone()) {
                return Ok(IdempotentAppend::InProgress);
            }
        }
        let r = self.append_once(store, tenant, key, request, entries);
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
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
        let (ack, fresh) = match found {
            Some(ack) => (ack, false),
            None => match self.append(entries) {
                Ok(a) => (a, true),
                Err(e) => {
                    // Nothing was appended: let a retry try again.
                    store.release_idempotency_key(tenant, key)?;
                    return Err(e);
                }
            },
        };
        let v = serde_json::to_value(ack).map_err(|e| Error::Job { job: format!("idempotency key {key}"), reason: e.to_string() })?;
        store.complete_idempotency_key(tenant, key, &v)?;
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
