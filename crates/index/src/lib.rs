//! The secondary index of the zkaudit ledger.
//!
//! This crate owns the index database: per event only what selects it
//! ([`Row`]: leaf index, timestamp in nanoseconds, layer, type, 8-byte keys
//! of the input, output and parent digests, whether it has a proof, and its
//! set of top-level metadata keys), and the position (tree size and root
//! hash) of the log it was built from. Answers are read back from the log's
//! entry bundles ([`select`]), so the index stores no value twice and a
//! digest-key collision never changes an answer. Two backends sit behind
//! one trait, [`Backend`]: SQLite for the embedded default ([`Sqlite`]) and
//! PostgreSQL for scale-out ([`Postgres`]).
//!
//! The log stays the source of truth: [`sync`] only ever reads entries from
//! the tiles (via `zkaudit-tlog`) and refuses an index whose position does
//! not match the log's tree, and [`rebuild`] recreates the index from the
//! tiles alone. The index follows the log: appends do not wait for it, and
//! a query brings it up to the checkpoint it answers from.
//!
//! It must not write to the log, interpret events beyond their fields, or
//! answer audit questions; those belong to `zkaudit-tlog` and
//! `zkaudit-audit`.

#![forbid(unsafe_code)]

mod pg;
mod sql;
mod sqlite;

use std::borrow::Cow;
use std::collections::BTreeMap;

use zkaudit_event::{Digest, Event, Timestamp};
use zkaudit_tlog::LogReader;

pub use pg::Postgres;
pub use sqlite::Sqlite;

/// Events written per index transaction while syncing.
pub const SYNC_CHUNK: u64 = 50_000;

/// Fewest events a sync adds for it to be a bulk load ([`Backend::bulk_load`]).
pub const BULK_LOAD_MIN: u64 = 100_000;

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
    /// A window or bucket width that selects nothing or too much.
    #[error("activity: {0}")]
    Range(String),
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

/// One event as a query returns it ([`select`]): the fields of the entry at
/// `leaf_index`, decoded from the log's entry bundle (the index itself
/// keeps only a [`Row`]).
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
    /// Top-level metadata value `key` as RFC 8785 JSON text, if present.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Top-level metadata value `key` as text: a JSON string without its
    /// quotes and escapes, any other value as its JSON text.
    pub fn meta_text(&self, key: &str) -> Option<String> {
        self.meta(key).map(|v| match serde_json::from_str::<serde_json::Value>(v) {
            Ok(serde_json::Value::String(s)) => s,
            _ => v.to_owned(),
        })
    }

    /// Parses the entry bytes at `leaf_index` into a query's fields.
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
            .map(|(k, v)| Ok((k.clone(), zkaudit_event::jcs::to_string(v).map_err(|e| bad(e.to_string()))?)))
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

/// What the index stores about one event: only what selects it. The
/// event itself is read back from the log's entry bundles, so the index
/// holds no copy of any value an answer returns.
///
/// Digests are kept as [`digest_key`]s (their first 8 bytes): two digests
/// sharing a key are told apart by the entry, in [`select`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Leaf index in the log.
    pub leaf_index: u64,
    /// Timestamp as nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// Layer (`application`, `computation`, `network`, `physical`).
    pub layer: String,
    /// Event type.
    pub kind: String,
    /// [`digest_key`] of the input digest.
    pub input: i64,
    /// [`digest_key`] of the output digest.
    pub output: i64,
    /// [`digest_key`]s of the parent digests (lineage), in event order.
    pub parents: Vec<i64>,
    /// Whether the event carries a proof.
    pub proof: bool,
    /// Top-level metadata keys, sorted and distinct.
    pub keys: Vec<String>,
}

/// The part of an event [`Row::from_entry`] reads: strings borrowed from
/// the entry where it has no escapes, values that are not indexed skipped.
#[derive(serde::Deserialize)]
struct Skim<'a> {
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    layer: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    input: Cow<'a, str>,
    #[serde(borrow)]
    output: Cow<'a, str>,
    #[serde(default, borrow)]
    parents: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    proof: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    metadata: BTreeMap<Cow<'a, str>, serde::de::IgnoredAny>,
}

/// The 64-bit key under which the index files a digest: its first 8
/// bytes, big-endian, as a signed integer (both databases' integer type).
/// `None` if `digest` is not a valid digest (`sha256:` and 64 lowercase hex
/// digits, [`Digest::parse`]).
pub fn digest_key(digest: &str) -> Option<i64> {
    let d = Digest::parse(digest).ok()?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.0[..8]);
    Some(i64::from_be_bytes(b))
}

impl Row {
    /// Reads the indexed fields of the entry bytes at `leaf_index`.
    ///
    /// This reads only the fields it indexes: entries were validated as
    /// whole events when they were appended. Errors with
    /// [`Error::BadEntry`] if the bytes lack a field, a digest is
    /// malformed, or the timestamp is not RFC 3339 within the i64
    /// nanosecond range (years 1677–2262).
    pub fn from_entry(leaf_index: u64, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadEntry { index: leaf_index, reason };
        let e: Skim<'_> = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let ts = Timestamp::parse(&e.timestamp).map_err(bad)?;
        let timestamp_ns = i64::try_from(ts.unix_nanos()).map_err(|_| bad(format!("timestamp {} is outside the i64 nanosecond range", ts.as_str())))?;
        let key = |d: &str| digest_key(d).ok_or_else(|| bad(format!("{d:?} is not a sha256: digest")));
        // A BTreeMap's keys come sorted and distinct.
        let keys: Vec<String> = e.metadata.into_keys().map(Cow::into_owned).collect();
        Ok(Self {
            leaf_index,
            timestamp_ns,
            layer: e.layer.into_owned(),
            kind: e.kind.into_owned(),
            input: key(&e.input)?,
            output: key(&e.output)?,
            parents: e.parents.unwrap_or_default().iter().map(|p| key(p)).collect::<Result<_, _>>()?,
            proof: e.proof.is_some(),
            keys,
        })
    }
}

impl Query {
    /// Whether `e` is selected by this query's selector and window (the
    /// exact test behind the index's digest keys).
    pub fn matches(&self, e: &IndexedEvent) -> bool {
        let selected = match &self.selector {
            Selector::All => true,
            Selector::Index(i) => e.leaf_index == *i,
            Selector::Type(t) => e.kind == *t,
            Selector::Layer(l) => e.layer == *l,
            Selector::Input(d) => e.input == *d,
            Selector::Output(d) => e.output == *d,
            Selector::Parent(d) => e.parents.contains(d),
            Selector::MetaKey(k) => e.metadata.iter().any(|(key, _)| key == k),
            Selector::WithProof => e.proof.is_some(),
        };
        selected && self.from_ns.is_none_or(|f| e.timestamp_ns >= f) && self.to_ns.is_none_or(|t| e.timestamp_ns < t)
    }

    /// Whether the index can only narrow this query down to candidates
    /// (it selects by a digest key), so the entries decide.
    fn by_digest_key(&self) -> bool {
        matches!(self.selector, Selector::Input(_) | Selector::Output(_) | Selector::Parent(_))
    }
}

/// An index database. Both backends keep the same schema and give the
/// same answers.
pub trait Backend: Send {
    /// The position the index has reached, or `None` if it is empty.
    fn position(&mut self) -> Result<Option<Position>, Error>;
    /// Adds `rows` (which must continue from the position read before)
    /// and moves the position to `to`, in one transaction. Several
    /// processes may sync one index at once (each appender of a shared
    /// ledger does): the transaction holds the index's write lock, and the
    /// rows another process has indexed since are skipped, not repeated.
    fn write(&mut self, rows: &[Row], to: Position) -> Result<(), Error>;
    /// Called with `true` before a load at least as large as the index
    /// already is (and at least [`BULK_LOAD_MIN`] events), and with `false`
    /// after it: a backend may drop its secondary indexes meanwhile and
    /// build them once at the end, which is faster than inserting into
    /// them row by row. Queries stay exact meanwhile, only slower; a
    /// backend must rebuild indexes a killed load left dropped when it is
    /// next opened. The default does nothing.
    fn bulk_load(&mut self, starting: bool) -> Result<(), Error> {
        let _ = starting;
        Ok(())
    }
    /// Deletes every row, leaving an empty index.
    fn reset(&mut self) -> Result<(), Error>;
    /// Leaf indices below `below` of the events `q` may select, ascending:
    /// exactly those, except that a digest selector also returns events
    /// whose digest merely shares its [`digest_key`].
    fn candidates(&mut self, q: &Query, below: u64) -> Result<Vec<u64>, Error>;
    /// Number of [`candidates`](Self::candidates) of `q` below `below`,
    /// ignoring its limit.
    fn count(&mut self, q: &Query, below: u64) -> Result<u64, Error>;
    /// Events per time bucket, layer and type with timestamps in
    /// `[from_ns, to_ns)` and leaf indices below `below`, in bucket, layer
    /// and type order; buckets are `bucket_ns` wide, numbered from
    /// `from_ns`. Empty buckets are left out.
    fn activity(&mut self, from_ns: i64, to_ns: i64, bucket_ns: i64, below: u64) -> Result<Vec<ActivityCount>, Error>;
    /// Events per hour (since the epoch), layer and type for hours
    /// `[from_hour, to_hour)`, from the hourly counts kept with the rows:
    /// everything indexed, whatever checkpoint a caller reads.
    fn hours(&mut self, from_hour: i64, to_hour: i64) -> Result<Vec<(i64, String, String, u64)>, Error>;
    /// The earliest and latest timestamps indexed (ns since the epoch), or
    /// `None` for an empty index. Read from the timestamp index, so it may
    /// include events appended after the checkpoint a caller reads.
    fn time_span(&mut self) -> Result<Option<(i64, i64)>, Error>;
}

/// Events of one layer and type in one time bucket ([`activity`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ActivityCount {
    /// Bucket number: the bucket starts at `from_ns + bucket · bucket_ns`.
    pub bucket: u64,
    /// Layer (`application`, `computation`, `network`, `physical`).
    pub layer: String,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events in the bucket.
    pub count: u64,
}

/// Events per `bucket_ns`-wide time bucket, layer and type in
/// `[from_ns, to_ns)`, as of `log`'s checkpoint (the index must be synced
/// to it). At most 10,000 buckets: a finer `bucket_ns` is an error.
///
/// When `from_ns` falls on a whole hour (since the epoch), `bucket_ns` is
/// a whole number of hours and the index stands at `log`'s checkpoint,
/// the whole hours are read from the hourly counts the index keeps
/// (hundreds of rows for a month, whatever the number of events); else
/// the events themselves are counted.
///
/// # Errors
/// [`Error::Range`] for an empty window, a bucket ≤ 0 or too many
/// buckets; database errors.
pub fn activity(index: &mut dyn Backend, log: &LogReader, from_ns: i64, to_ns: i64, bucket_ns: i64) -> Result<Vec<ActivityCount>, Error> {
    if to_ns <= from_ns || bucket_ns <= 0 {
        return Err(Error::Range(format!("window [{from_ns}, {to_ns}) ns with buckets of {bucket_ns} ns")));
    }
    let buckets = (i128::from(to_ns) - i128::from(from_ns) + i128::from(bucket_ns) - 1) / i128::from(bucket_ns);
    if buckets > MAX_BUCKETS {
        return Err(Error::Range(format!("{buckets} buckets of {bucket_ns} ns; at most {MAX_BUCKETS}")));
    }
    let hour = sql::HOUR_NS;
    let at_checkpoint = index.position()?.is_some_and(|p| p.tree_size == log.size());
    if !(at_checkpoint && bucket_ns % hour == 0 && from_ns.rem_euclid(hour) == 0 && to_ns - from_ns >= hour) {
        return index.activity(from_ns, to_ns, bucket_ns, log.size());
    }
    // Whole hours from the hourly counts; the last, partial hour (if any)
    // from the events, as one bucket of its own.
    let whole_end = from_ns + (to_ns - from_ns) / hour * hour;
    let bucket_of = |start_ns: i64| u64::try_from((start_ns - from_ns) / bucket_ns).unwrap_or(0);
    let mut sums: BTreeMap<(u64, String, String), u64> = BTreeMap::new();
    for (h, layer, kind, n) in index.hours(from_ns / hour, whole_end / hour)? {
        *sums.entry((bucket_of(h * hour), layer, kind)).or_default() += n;
    }
    if whole_end < to_ns {
        for c in index.activity(whole_end, to_ns, hour, log.size())? {
            *sums.entry((bucket_of(whole_end), c.layer, c.kind)).or_default() += c.count;
        }
    }
    Ok(sums.into_iter().map(|((bucket, layer, kind), count)| ActivityCount { bucket, layer, kind, count }).collect())
}

/// Most buckets [`activity`] returns.
const MAX_BUCKETS: i128 = 10_000;

/// The events `q` selects from the log `log` as of its checkpoint, in
/// leaf-index order: the index names them, the entry bundles give them.
///
/// The index must have been synced to at least `log`'s size for the
/// answer to be complete (see [`sync`]). Errors with [`Error::BadEntry`]
/// if a selected entry is not a valid event.
pub fn select(index: &mut dyn Backend, log: &LogReader, q: &Query) -> Result<Vec<IndexedEvent>, Error> {
    let ids = index.candidates(q, log.size())?;
    let mut out = Vec::with_capacity(ids.len());
    let mut bad = None;
    log.entries_at(&ids, |i, bytes| {
        match IndexedEvent::from_entry(i, bytes) {
            Ok(e) if q.matches(&e) => out.push(e),
            Ok(_) => {}
            Err(e) => bad = bad.take().or(Some(e)),
        }
        Ok(())
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    if out.len() < ids.len() && q.limit.is_some() {
        // Key collisions took the place of matches under the limit.
        let mut all = select(index, log, &Query { limit: None, ..q.clone() })?;
        all.truncate(q.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)));
        return Ok(all);
    }
    Ok(out)
}

/// Number of events `q` selects from `log` (ignoring its limit).
///
/// # Errors
/// As [`select`].
pub fn count(index: &mut dyn Backend, log: &LogReader, q: &Query) -> Result<u64, Error> {
    if q.by_digest_key() {
        return Ok(select(index, log, &Query { limit: None, ..q.clone() })?.len() as u64);
    }
    index.count(q, log.size())
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
/// it does not have yet, [`SYNC_CHUNK`] per transaction. Entries are read
/// and parsed on the calling thread while another writes the previous
/// chunk. `progress` gets the number of entries added so far.
///
/// Refuses an index that is ahead of the log ([`Error::Ahead`]) or whose
/// recorded root hash differs from the log's at that size
/// ([`Error::Diverged`]); an entry that is not an event stops the sync at
/// [`Error::BadEntry`], with everything before it kept.
pub fn sync(index: &mut dyn Backend, log: &LogReader, progress: &mut dyn FnMut(u64)) -> Result<Synced, Error> {
    let size = log.size();
    let position = match index.position()? {
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
    if start == size {
        return Ok(Synced { added: 0, position });
    }
    let bulk = size - start >= BULK_LOAD_MIN.max(start);
    if bulk {
        index.bulk_load(true)?;
    }
    let synced = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Row>, Position)>(1);
        let index = &mut *index;
        let writer = s.spawn(move || rx.iter().try_for_each(|(rows, to)| index.write(&rows, to)));
        let read = read_chunks(log, position, size, &tx, progress);
        drop(tx);
        let written = writer.join().unwrap_or_else(|_| Err(Error::Corrupt("the index writer thread panicked".into())));
        // A write error explains a read that stopped because the writer did.
        written?;
        read
    });
    if bulk {
        index.bulk_load(false)?;
    }
    synced
}

/// Reads and parses the entries from `position` to `size` in chunks,
/// sending each to the writer; stops at the first bad entry, after sending
/// what came before it.
fn read_chunks(
    log: &LogReader,
    mut position: Position,
    size: u64,
    tx: &std::sync::mpsc::SyncSender<(Vec<Row>, Position)>,
    progress: &mut dyn FnMut(u64),
) -> Result<Synced, Error> {
    let start = position.tree_size;
    let mut at = start;
    while at < size {
        let end = size.min(at + SYNC_CHUNK);
        let mut rows = Vec::with_capacity((end - at) as usize);
        let mut bad = None;
        log.for_each_entry(at, end, |i, bytes| {
            if bad.is_none() {
                match Row::from_entry(i, bytes) {
                    Ok(r) => rows.push(r),
                    Err(e) => bad = Some(e),
                }
            }
            Ok(())
        })?;
        // Keep everything before a bad entry, then report it.
        let stop = at + rows.len() as u64;
        if stop > at {
            let to = Position { tree_size: stop, root_hash: log.root_at(stop)? };
            if tx.send((rows, to)).is_err() {
                // The writer failed; it reports why.
                return Err(Error::Corrupt("the index writer stopped".into()));
            }
            position = to;
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
