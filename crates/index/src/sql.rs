//! SQL shared by both backends: the schema, the WHERE clause of a
//! [`Query`], and assembling rows back into [`IndexedEvent`]s.
//!
//! Placeholders are written `$1`, `$2`, …: PostgreSQL's syntax, which SQLite
//! also accepts (as named parameters bound by position).

use std::collections::BTreeMap;

use crate::{Error, IndexedEvent, Position, ProofFields, Query, Selector};

/// The schema, with `{int}` for the 64-bit integer column type.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    leaf_index {int} PRIMARY KEY,
    ts_ns {int} NOT NULL,
    ts TEXT NOT NULL,
    precision_ns {int} NOT NULL,
    layer TEXT NOT NULL,
    type TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    proof_kind TEXT,
    receipt_digest TEXT,
    image_id TEXT,
    journal_digest TEXT
);
CREATE TABLE IF NOT EXISTS parents (
    leaf_index {int} NOT NULL,
    position {int} NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (leaf_index, position)
);
CREATE TABLE IF NOT EXISTS meta (
    leaf_index {int} NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (leaf_index, key)
);
CREATE TABLE IF NOT EXISTS position (
    id {int} PRIMARY KEY CHECK (id = 1),
    tree_size {int} NOT NULL,
    root_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ns);
CREATE INDEX IF NOT EXISTS events_type_ts ON events (type, ts_ns);
CREATE INDEX IF NOT EXISTS events_layer_ts ON events (layer, ts_ns);
CREATE INDEX IF NOT EXISTS events_input ON events (input);
CREATE INDEX IF NOT EXISTS events_output ON events (output);
CREATE INDEX IF NOT EXISTS parents_digest ON parents (digest);
CREATE INDEX IF NOT EXISTS meta_key ON meta (key, value);
";

/// The schema for a database whose 64-bit integer type is `int`.
pub(crate) fn schema(int: &str) -> String {
    SCHEMA.replace("{int}", int)
}

/// Empties every table.
pub(crate) const RESET: &str = "DELETE FROM events; DELETE FROM parents; DELETE FROM meta; DELETE FROM position;";

/// Reads the position row.
pub(crate) const POSITION: &str = "SELECT tree_size, root_hash FROM position WHERE id = 1";

/// Sets the position row: `$1` tree size, `$2` root hash (hex).
pub(crate) const SET_POSITION: &str = "INSERT INTO position (id, tree_size, root_hash) VALUES (1, $1, $2)
     ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, root_hash = excluded.root_hash";

/// A bound parameter.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// Columns of `events`, in the order of [`EventRow`].
pub(crate) const EVENT_COLUMNS: &str = "leaf_index, ts_ns, ts, precision_ns, layer, type, input, output, proof_kind, receipt_digest, image_id, journal_digest";

/// One `events` row as read from either backend.
pub(crate) type EventRow = (i64, i64, String, i64, String, String, String, String, Option<String>, Option<String>, Option<String>, Option<String>);

/// The three statements that answer `q` (events, their parents, their
/// metadata) and their shared parameters.
pub(crate) fn select(q: &Query) -> ([String; 3], Vec<Param>) {
    let (filter, params) = filter(q);
    let limit = q.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
    let chosen = format!("SELECT leaf_index FROM events WHERE {filter} ORDER BY leaf_index{limit}");
    (
        [
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE {filter} ORDER BY leaf_index{limit}"),
            format!("SELECT leaf_index, position, digest FROM parents WHERE leaf_index IN ({chosen}) ORDER BY leaf_index, position"),
            format!("SELECT leaf_index, key, value FROM meta WHERE leaf_index IN ({chosen}) ORDER BY leaf_index, key"),
        ],
        params,
    )
}

/// `SELECT count(*)` for `q`, ignoring its limit.
pub(crate) fn count(q: &Query) -> (String, Vec<Param>) {
    let (filter, params) = filter(q);
    (format!("SELECT count(*) FROM events WHERE {filter}"), params)
}

fn filter(q: &Query) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let mut bind = |p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    let mut terms = vec![match &q.selector {
        Selector::All => "TRUE".to_owned(),
        Selector::Index(i) => format!("leaf_index = {}", bind(Param::Int(*i as i64))),
        Selector::Type(t) => format!("type = {}", bind(Param::Text(t.clone()))),
        Selector::Layer(l) => format!("layer = {}", bind(Param::Text(l.clone()))),
        Selector::Input(d) => format!("input = {}", bind(Param::Text(d.clone()))),
        Selector::Output(d) => format!("output = {}", bind(Param::Text(d.clone()))),
        Selector::Parent(d) => format!("leaf_index IN (SELECT leaf_index FROM parents WHERE digest = {})", bind(Param::Text(d.clone()))),
        Selector::WithProof => "proof_kind IS NOT NULL".to_owned(),
        Selector::MetaKey(k) => format!("leaf_index IN (SELECT leaf_index FROM meta WHERE key = {})", bind(Param::Text(k.clone()))),
    }];
    if let Some(from) = q.from_ns {
        terms.push(format!("ts_ns >= {}", bind(Param::Int(from))));
    }
    if let Some(to) = q.to_ns {
        terms.push(format!("ts_ns < {}", bind(Param::Int(to))));
    }
    (terms.join(" AND "), params)
}

/// Puts rows of the three [`select`] statements back together.
#[derive(Default)]
pub(crate) struct Assembler {
    events: BTreeMap<i64, IndexedEvent>,
}

fn unsigned(v: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("negative {what} {v}")))
}

impl Assembler {
    pub(crate) fn event(&mut self, r: EventRow) -> Result<(), Error> {
        let proof = match (r.8, r.9, r.10, r.11) {
            (Some(kind), Some(receipt_digest), Some(image_id), Some(journal_digest)) => Some(ProofFields { kind, receipt_digest, image_id, journal_digest }),
            (None, None, None, None) => None,
            _ => return Err(Error::Corrupt(format!("leaf index {}: partial proof fields", r.0))),
        };
        let e = IndexedEvent {
            leaf_index: unsigned(r.0, "leaf index")?,
            timestamp_ns: r.1,
            timestamp: r.2,
            precision_ns: unsigned(r.3, "precision")?,
            layer: r.4,
            kind: r.5,
            input: r.6,
            output: r.7,
            parents: Vec::new(),
            proof,
            metadata: Vec::new(),
        };
        self.events.insert(r.0, e);
        Ok(())
    }

    fn get(&mut self, leaf: i64) -> Result<&mut IndexedEvent, Error> {
        self.events.get_mut(&leaf).ok_or_else(|| Error::Corrupt(format!("a row for leaf index {leaf}, which has no event row")))
    }

    pub(crate) fn parent(&mut self, leaf: i64, digest: String) -> Result<(), Error> {
        self.get(leaf)?.parents.push(digest);
        Ok(())
    }

    pub(crate) fn meta(&mut self, leaf: i64, key: String, value: String) -> Result<(), Error> {
        self.get(leaf)?.metadata.push((key, value));
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<IndexedEvent> {
        self.events.into_values().collect()
    }
}

/// Decodes the position row.
pub(crate) fn position(tree_size: i64, root_hex: &str) -> Result<Position, Error> {
    let mut root_hash = [0u8; 32];
    hex::decode_to_slice(root_hex, &mut root_hash).map_err(|e| Error::Corrupt(format!("position root hash {root_hex:?}: {e}")))?;
    Ok(Position { tree_size: unsigned(tree_size, "tree size")?, root_hash })
}

/// The `events` row values of `e`.
pub(crate) fn event_row(e: &IndexedEvent) -> EventRow {
    let p = e.proof.as_ref();
    (
        e.leaf_index as i64,
        e.timestamp_ns,
        e.timestamp.clone(),
        e.precision_ns as i64,
        e.layer.clone(),
        e.kind.clone(),
        e.input.clone(),
        e.output.clone(),
        p.map(|p| p.kind.clone()),
        p.map(|p| p.receipt_digest.clone()),
        p.map(|p| p.image_id.clone()),
        p.map(|p| p.journal_digest.clone()),
    )
}
