//! The secondary index of the zkaudit ledger.
//!
//! This crate owns the index database: one row per event with its leaf
//! index, timestamp in nanoseconds, layer, type, input and output digests,
//! proof fields, parents and top-level metadata values, and the position
//! (tree size and root hash) of the log it was built from. Two backends sit
//! behind one trait, [`Backend`]: SQLite for the embedded default
//! ([`Sqlite`]) and PostgreSQL for scale-out ([`Postgres`]).
//!
//! The log stays the source of truth: [`sync`] only ever reads entries from
//! the tiles (via `zkaudit-tlog`) and refuses an index whose position does
//! not match the log's tree, and [`rebuild`] recreates the index from the
//! tiles alone.
//!
//! It must not write to the log, interpret events beyond their fields, or
//! answer audit questions; those belong to `zkaudit-tlog` and
//! `zkaudit-audit`.

#![forbid(unsafe_code)]

mod pg;
mod sql;
mod sqlite;

use zkaudit_event::Event;
use zkaudit_tlog::LogReader;

pub use pg::Postgres;
pub use sqlite::Sqlite;

/// Events written per index transaction while syncing.
pub const SYNC_CHUNK: u64 = 10_000;

/// Errors from the index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQLite database failed.
    #[error("index database (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL database failed.
    #[error("index database (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] zkaudit_tlog::Error),
    /// A log entry is not a valid zkaudit event.
    #[error("leaf index {index}: the entry is not a zkaudit event: {reason}")]
    BadEntry {
        /// Leaf index of the entry.
        index: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The index covers more entries than the log's checkpoint.
    #[error("the index covers tree size {indexed} but the log's checkpoint has size {log}: it was built from another log; run `zkaudit log reindex`")]
    Ahead {
        /// Tree size the index covers.
        indexed: u64,
        /// Tree size of the log's checkpoint.
        log: u64,
    },
    /// The index was built from a log with a different tree.
    #[error(
        "the index was built from a different log: root hash at tree size {size} is {indexed} in the index but {log} in the log; run `zkaudit log reindex`"
    )]
    Diverged {
        /// Tree size compared.
        size: u64,
        /// Root hash recorded by the index (hex).
        indexed: String,
        /// Root hash of the log at that size (hex).
        log: String,
    },
    /// A stored value cannot be read back (a damaged index).
    #[error("the index database holds an invalid value: {0}; run `zkaudit log reindex`")]
    Corrupt(String),
}

/// Proof fields of an event (see `zkaudit_event::ProofRef`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofFields {
    /// Proof system and receipt kind, e.g. `risc0-composite`.
    pub kind: String,
    /// `sha256:<hex>` of the receipt bytes.
    pub receipt_digest: String,
    /// RISC Zero image ID, 64 lowercase hex digits.
    pub image_id: String,
    /// `sha256:<hex>` of the journal bytes.
    pub journal_digest: String,
}

/// One indexed event: what the index stores about the entry at `leaf_index`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexedEvent {
    /// Leaf index in the log.
    pub leaf_index: u64,
    /// Timestamp as nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// Timestamp exactly as written (RFC 3339).
    pub timestamp: String,
    /// Precision of the written timestamp, in ns (1 for nine fraction digits).
    pub precision_ns: u64,
    /// Layer (`application`, `computation`, `network`, `physical`).
    pub layer: String,
    /// Event type.
    pub kind: String,
    /// Input digest, `sha256:<hex>`.
    pub input: String,
    /// Output digest, `sha256:<hex>`.
    pub output: String,
    /// Parent digests (lineage), in event order.
    pub parents: Vec<String>,
    /// Proof fields, if the event carries a proof.
    pub proof: Option<ProofFields>,
    /// Top-level metadata as (key, RFC 8785 JSON text of the value), sorted by key.
    pub metadata: Vec<(String, String)>,
}

impl IndexedEvent {
    /// Parses the entry bytes at `leaf_index` into the indexed fields.
    ///
    /// Errors with [`Error::BadEntry`] if the bytes are not a valid event or
    /// the timestamp does not fit in i64 nanoseconds (years 1677–2262).
    pub fn from_entry(leaf_index: u64, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadEntry { index: leaf_index, reason };
        let e = Event::from_entry(bytes).map_err(|e| bad(e.to_string()))?;
        let timestamp_ns =
            i64::try_from(e.timestamp.unix_nanos()).map_err(|_| bad(format!("timestamp {} is outside the i64 nanosecond range", e.timestamp.as_str())))?;
        let metadata = e
            .metadata
            .iter()
            .map(|(k, v)| Ok((k.clone(), serde_json_canonicalizer::to_string(v).map_err(|e| bad(e.to_string()))?)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            leaf_index,
            timestamp_ns,
            timestamp: e.timestamp.as_str().to_owned(),
            precision_ns: e.timestamp.precision_ns(),
            layer: e.layer.as_str().to_owned(),
            kind: e.kind,
            input: e.input.to_string(),
            output: e.output.to_string(),
            parents: e.parents.unwrap_or_default().iter().map(ToString::to_string).collect(),
            proof: e.proof.map(|p| ProofFields {
                kind: p.kind,
                receipt_digest: p.receipt_digest.to_string(),
                image_id: p.image_id,
                journal_digest: p.journal_digest.to_string(),
            }),
            metadata,
        })
    }
}

/// How far an index goes: the tree size it covers and the log's root hash
/// at that size (RFC 9162 §2.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Number of entries indexed (`0..tree_size`).
    pub tree_size: u64,
    /// Root hash of the log's tree of `tree_size` entries.
    pub root_hash: [u8; 32],
}

/// Which events a [`Query`] selects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    /// Every event.
    All,
    /// The event at one leaf index.
    Index(u64),
    /// Events of one type.
    Type(String),
    /// Events of one layer.
    Layer(String),
    /// Events whose input digest is this (`sha256:<hex>`).
    Input(String),
    /// Events whose output digest is this.
    Output(String),
    /// Events that list this digest among their parents.
    Parent(String),
    /// Events whose metadata has this top-level key.
    MetaKey(String),
    /// Events that carry a proof.
    WithProof,
}

/// A lookup: a selector, an optional timestamp window and a row limit.
/// Results come in leaf-index order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Which events.
    pub selector: Selector,
    /// Only events with timestamp ≥ this many ns since the epoch.
    pub from_ns: Option<i64>,
    /// Only events with timestamp < this many ns since the epoch.
    pub to_ns: Option<i64>,
    /// At most this many events.
    pub limit: Option<u64>,
}

impl Query {
    /// A query for `selector` with no window and no limit.
    pub fn new(selector: Selector) -> Self {
        Self { selector, from_ns: None, to_ns: None, limit: None }
    }
}

/// An index database. Both backends keep the same schema and answer
/// [`Query`]s identically.
pub trait Backend: Send {
    /// The position the index has reached, or `None` if it is empty.
    fn position(&mut self) -> Result<Option<Position>, Error>;
    /// Adds `events` (which must continue from the position read before)
    /// and moves the position to `to`, in one transaction. Several
    /// processes may sync one index at once (each appender of a shared
    /// ledger does): the transaction holds the index's write lock, and the
    /// events another process has indexed since are skipped, not repeated.
    fn write(&mut self, events: &[IndexedEvent], to: Position) -> Result<(), Error>;
    /// Deletes every row, leaving an empty index.
    fn reset(&mut self) -> Result<(), Error>;
    /// The events `q` selects, in leaf-index order.
    fn select(&mut self, q: &Query) -> Result<Vec<IndexedEvent>, Error>;
    /// Number of events `q` selects (ignoring its limit).
    fn count(&mut self, q: &Query) -> Result<u64, Error>;
}

/// Opens the index named by `spec`: a `postgres://` or `postgresql://` URL,
/// or a SQLite file path (created if missing).
pub fn open(spec: &str) -> Result<Box<dyn Backend>, Error> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        Ok(Box::new(Postgres::connect(spec)?))
    } else {
        Ok(Box::new(Sqlite::open(std::path::Path::new(spec))?))
    }
}

/// What a [`sync`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synced {
    /// Entries added by this sync.
    pub added: u64,
    /// The index's position afterwards (the log's checkpoint).
    pub position: Position,
}

/// Brings the index up to the log's checkpoint, reading only the entries
/// it does not have yet, [`SYNC_CHUNK`] per transaction. `progress` gets
/// the number of entries added so far.
///
/// Refuses an index that is ahead of the log ([`Error::Ahead`]) or whose
/// recorded root hash differs from the log's at that size
/// ([`Error::Diverged`]); an entry that is not an event stops the sync at
/// [`Error::BadEntry`], with everything before it kept.
pub fn sync(index: &mut dyn Backend, log: &LogReader, progress: &mut dyn FnMut(u64)) -> Result<Synced, Error> {
    let size = log.size();
    let mut position = match index.position()? {
        None => Position { tree_size: 0, root_hash: log.root_at(0)? },
        Some(p) if p.tree_size > size => return Err(Error::Ahead { indexed: p.tree_size, log: size }),
        Some(p) => {
            let root = log.root_at(p.tree_size)?;
            if root != p.root_hash {
                return Err(Error::Diverged { size: p.tree_size, indexed: hex::encode(p.root_hash), log: hex::encode(root) });
            }
            p
        }
    };
    let start = position.tree_size;
    let mut at = start;
    while at < size {
        let end = size.min(at + SYNC_CHUNK);
        let mut rows = Vec::with_capacity((end - at) as usize);
        let mut bad = None;
        log.for_each_entry(at, end, |i, bytes| {
            if bad.is_none() {
                match IndexedEvent::from_entry(i, bytes) {
                    Ok(r) => rows.push(r),
                    Err(e) => bad = Some(e),
                }
            }
            Ok(())
        })?;
        // Keep everything before a bad entry, then report it.
        let stop = at + rows.len() as u64;
        if stop > at {
            position = Position { tree_size: stop, root_hash: log.root_at(stop)? };
            index.write(&rows, position)?;
        }
        if let Some(e) = bad {
            return Err(e);
        }
        at = end;
        progress(at - start);
    }
    Ok(Synced { added: size - start, position })
}

/// Empties the index and rebuilds it from the log's tiles alone.
pub fn rebuild(index: &mut dyn Backend, log: &LogReader, progress: &mut dyn FnMut(u64)) -> Result<Synced, Error> {
    index.reset()?;
    sync(index, log, progress)
}
