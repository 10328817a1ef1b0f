//! SQL shared by both backends: the schema, the WHERE clause of a
//! [`Query`], and the dictionaries of names and metadata key sets.
//!
//! Placeholders are written `$1`, `$2`, …: PostgreSQL's syntax, which SQLite
//! also accepts (as named parameters bound by position).

use std::collections::HashMap;

use crate::{digest_key, Error, Position, Query, Selector};

/// Version of [`SCHEMA`]; an index of another version is dropped and
/// rebuilt from the log when opened.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// The schema, with `{int}` for the 64-bit integer column type and
/// `{clustered}` for what makes a table stored in its primary key's order.
///
/// One narrow `events` row per event: types and layers are ids into
/// `names`, the set of top-level metadata keys an id into `keysets`, and
/// digests their [`digest_key`]s. `activity_hours` counts events per
/// hour (since the epoch), layer and type, kept with the rows, so that an
/// activity chart over a month reads hundreds of rows, not millions.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    leaf_index {int} PRIMARY KEY,
    ts_ns {int} NOT NULL,
    type_id {int} NOT NULL,
    layer_id {int} NOT NULL,
    input {int} NOT NULL,
    output {int} NOT NULL,
    keyset_id {int} NOT NULL,
    proof {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS parents (
    digest {int} NOT NULL,
    leaf_index {int} NOT NULL,
    PRIMARY KEY (digest, leaf_index)
){clustered};
CREATE TABLE IF NOT EXISTS names (
    id {int} PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS keysets (
    id {int} PRIMARY KEY,
    keys TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS keyset_keys (
    key TEXT NOT NULL,
    keyset_id {int} NOT NULL,
    PRIMARY KEY (key, keyset_id)
){clustered};
CREATE TABLE IF NOT EXISTS activity_hours (
    hour {int} NOT NULL,
    layer_id {int} NOT NULL,
    type_id {int} NOT NULL,
    n {int} NOT NULL,
    PRIMARY KEY (hour, layer_id, type_id)
){clustered};
CREATE TABLE IF NOT EXISTS position (
    id {int} PRIMARY KEY CHECK (id = 1),
    tree_size {int} NOT NULL,
    root_hash TEXT NOT NULL
);
";

/// The table holding [`SCHEMA_VERSION`], with `{int}` as in [`SCHEMA`].
/// PostgreSQL creates it before reading it (a failed read would abort the
/// transaction that checks it).
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (id {int} PRIMARY KEY CHECK (id = 1), version {int} NOT NULL);";

/// [`VERSION_TABLE`] for a database whose 64-bit integer type is `int`.
pub(crate) fn version_table(int: &str) -> String {
    VERSION_TABLE.replace("{int}", int)
}

/// The secondary indexes of `events`: (name, definition).
const SECONDARY: [(&str, &str); 7] = [
    ("events_ts", "events (ts_ns)"),
    ("events_type_ts", "events (type_id, ts_ns)"),
    ("events_layer_ts", "events (layer_id, ts_ns)"),
    ("events_input", "events (input)"),
    ("events_output", "events (output)"),
    ("events_keyset", "events (keyset_id)"),
    ("events_proof", "events (leaf_index) WHERE proof = 1"),
];

/// Creates the secondary indexes that are missing: all of them on a new
/// database, or those a bulk load dropped and did not get to recreate.
pub(crate) fn create_secondary() -> String {
    SECONDARY.iter().map(|(name, on)| format!("CREATE INDEX IF NOT EXISTS {name} ON {on};")).collect::<Vec<_>>().join("\n")
}

/// Drops the secondary indexes before a bulk load ([`create_secondary`]
/// builds them again after it, sorting once instead of inserting into
/// each index row by row).
pub(crate) fn drop_secondary() -> String {
    SECONDARY.iter().map(|(name, _)| format!("DROP INDEX IF EXISTS {name};")).collect::<Vec<_>>().join("\n")
}

/// Every table any schema version created, dropped by [`drop_all`].
const TABLES: [&str; 9] = ["events", "parents", "meta", "names", "keysets", "keyset_keys", "activity_hours", "position", "schema_version"];

/// The schema for a database whose 64-bit integer type is `int` and whose
/// clustered-table suffix is `clustered` (SQLite's ` WITHOUT ROWID`).
pub(crate) fn schema(int: &str, clustered: &str) -> String {
    format!(
        "{}\n{}\n{}\nINSERT INTO schema_version (id, version) VALUES (1, {SCHEMA_VERSION});",
        SCHEMA.replace("{int}", int).replace("{clustered}", clustered),
        version_table(int),
        create_secondary()
    )
}

/// Reads the schema version; fails on a database without the table.
pub(crate) const READ_VERSION: &str = "SELECT version FROM schema_version WHERE id = 1";

/// Drops every table of every schema version.
pub(crate) fn drop_all() -> String {
    TABLES.iter().map(|t| format!("DROP TABLE IF EXISTS {t};")).collect::<Vec<_>>().join("\n")
}

/// Empties the tables of events and the position. The dictionaries stay:
/// their ids are cached by every open connection.
pub(crate) const RESET: &str = "DELETE FROM events; DELETE FROM parents; DELETE FROM activity_hours; DELETE FROM position;";

/// One hour in ns: the width of `activity_hours`' buckets.
pub(crate) const HOUR_NS: i64 = 3_600_000_000_000;

/// Adds `$4` events to hour `$1`, layer `$2`, type `$3`.
pub(crate) const ADD_HOUR: &str = "INSERT INTO activity_hours (hour, layer_id, type_id, n) VALUES ($1, $2, $3, $4)
     ON CONFLICT (hour, layer_id, type_id) DO UPDATE SET n = activity_hours.n + excluded.n";

/// Events per hour, layer and type for hours `[$1, $2)`.
pub(crate) const HOURS: &str = "SELECT a.hour, l.name, t.name, a.n FROM activity_hours AS a
     JOIN names AS l ON l.id = a.layer_id JOIN names AS t ON t.id = a.type_id WHERE a.hour >= $1 AND a.hour < $2";

/// Events per (hour, layer id, type id) of rows being written.
pub(crate) fn hour_counts(rows: impl IntoIterator<Item = (i64, i64, i64)>) -> HashMap<(i64, i64, i64), i64> {
    let mut m = HashMap::new();
    for (ts, layer, kind) in rows {
        *m.entry((ts.div_euclid(HOUR_NS), layer, kind)).or_insert(0) += 1;
    }
    m
}

/// Reads the position row.
pub(crate) const POSITION: &str = "SELECT tree_size, root_hash FROM position WHERE id = 1";

/// Sets the position row: `$1` tree size, `$2` root hash (hex).
pub(crate) const SET_POSITION: &str = "INSERT INTO position (id, tree_size, root_hash) VALUES (1, $1, $2)
     ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, root_hash = excluded.root_hash";

/// Columns of `events`, in insertion order.
pub(crate) const EVENT_COLUMNS: &str = "leaf_index, ts_ns, type_id, layer_id, input, output, keyset_id, proof";

/// Inserts one parent link: `$1` digest key, `$2` leaf index (an event
/// naming one parent twice links it once).
pub(crate) const INSERT_PARENT: &str = "INSERT INTO parents (digest, leaf_index) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Finds a name's id: `$1` the name.
pub(crate) const FIND_NAME: &str = "SELECT id FROM names WHERE name = $1";
/// Adds a name under the next id and returns it: `$1` the name.
pub(crate) const ADD_NAME: &str = "INSERT INTO names (id, name) SELECT COALESCE(MAX(id), 0) + 1, CAST($1 AS TEXT) FROM names RETURNING id";
/// Finds a key set's id: `$1` its keys as a JSON array.
pub(crate) const FIND_KEYSET: &str = "SELECT id FROM keysets WHERE keys = $1";
/// Adds a key set under the next id and returns it: `$1` its keys as a JSON array.
pub(crate) const ADD_KEYSET: &str = "INSERT INTO keysets (id, keys) SELECT COALESCE(MAX(id), 0) + 1, CAST($1 AS TEXT) FROM keysets RETURNING id";
/// Files one key under a key set: `$1` the key, `$2` the key set's id.
pub(crate) const ADD_KEYSET_KEY: &str = "INSERT INTO keyset_keys (key, keyset_id) VALUES ($1, $2)";

/// A bound parameter.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// The ids of names and key sets seen by one connection. Ids are never
/// reused or deleted (not even by a reset), so a cached id stays right;
/// what a failed transaction added is forgotten ([`Dictionary::clear`]).
#[derive(Default)]
pub(crate) struct Dictionary {
    names: HashMap<String, i64>,
    keysets: HashMap<Vec<String>, i64>,
}

impl Dictionary {
    /// The id of `name`, from the cache or from `find_or_add(name)`.
    pub(crate) fn name(&mut self, name: &str, find_or_add: impl FnOnce(&str) -> Result<i64, Error>) -> Result<i64, Error> {
        if let Some(&id) = self.names.get(name) {
            return Ok(id);
        }
        let id = find_or_add(name)?;
        self.names.insert(name.to_owned(), id);
        Ok(id)
    }

    /// The id of the key set `keys`, from the cache or from
    /// `find_or_add(keys, keys as a JSON array)`.
    pub(crate) fn keyset(&mut self, keys: &[String], find_or_add: impl FnOnce(&[String], &str) -> Result<i64, Error>) -> Result<i64, Error> {
        if let Some(&id) = self.keysets.get(keys) {
            return Ok(id);
        }
        let text = serde_json::to_string(keys).map_err(|e| Error::Corrupt(e.to_string()))?;
        let id = find_or_add(keys, &text)?;
        self.keysets.insert(keys.to_vec(), id);
        Ok(id)
    }

    /// Forgets every cached id (after a rolled-back transaction).
    pub(crate) fn clear(&mut self) {
        self.names.clear();
        self.keysets.clear();
    }
}

/// `SELECT leaf_index` of the candidates of `q` below leaf index `below`,
/// ascending, with its limit.
pub(crate) fn candidates(q: &Query, below: u64) -> (String, Vec<Param>) {
    let (filter, params) = filter(q, below);
    let limit = q.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
    (format!("SELECT leaf_index FROM events WHERE {filter} ORDER BY leaf_index{limit}"), params)
}

/// `SELECT count(*)` of the candidates of `q` below `below`, ignoring its limit.
pub(crate) fn count(q: &Query, below: u64) -> (String, Vec<Param>) {
    let (filter, params) = filter(q, below);
    (format!("SELECT count(*) FROM events WHERE {filter}"), params)
}

/// Events per (time bucket, layer, type) with timestamps in
/// `[from_ns, to_ns)` below leaf index `below`: rows of (bucket number from
/// `from_ns`, layer name, type name, count). The buckets are `bucket_ns`
/// wide (> 0).
pub(crate) fn activity(from_ns: i64, to_ns: i64, bucket_ns: i64, below: u64) -> (String, Vec<Param>) {
    let text = "SELECT b, l.name, t.name, n FROM (\
        SELECT (ts_ns - $1) / $2 AS b, layer_id, type_id, count(*) AS n FROM events \
        WHERE ts_ns >= $1 AND ts_ns < $3 AND leaf_index < $4 GROUP BY 1, 2, 3) AS a \
        JOIN names AS l ON l.id = a.layer_id JOIN names AS t ON t.id = a.type_id ORDER BY 1, 2, 3";
    (
        text.to_owned(), // SQLite numbers `$N` parameters in the order they first appear.
        vec![Param::Int(from_ns), Param::Int(bucket_ns), Param::Int(to_ns), Param::Int(i64::try_from(below).unwrap_or(i64::MAX))],
    )
}

fn filter(q: &Query, below: u64) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let mut bind = |p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    // A malformed digest selects nothing (no digest has that key).
    let selector = match &q.selector {
        Selector::All => "TRUE".to_owned(),
        Selector::Index(i) => format!("leaf_index = {}", bind(Param::Int(i64::try_from(*i).unwrap_or(i64::MAX)))),
        Selector::Type(t) => format!("type_id = (SELECT id FROM names WHERE name = {})", bind(Param::Text(t.clone()))),
        Selector::Layer(l) => format!("layer_id = (SELECT id FROM names WHERE name = {})", bind(Param::Text(l.clone()))),
        Selector::Input(d) => digest_key(d).map_or_else(|| "FALSE".to_owned(), |k| format!("input = {}", bind(Param::Int(k)))),
        Selector::Output(d) => digest_key(d).map_or_else(|| "FALSE".to_owned(), |k| format!("output = {}", bind(Param::Int(k)))),
        Selector::Parent(d) => digest_key(d)
            .map_or_else(|| "FALSE".to_owned(), |k| format!("leaf_index IN (SELECT leaf_index FROM parents WHERE digest = {})", bind(Param::Int(k)))),
        Selector::WithProof => "proof = 1".to_owned(),
        Selector::MetaKey(k) => format!("keyset_id IN (SELECT keyset_id FROM keyset_keys WHERE key = {})", bind(Param::Text(k.clone()))),
    };
    let mut terms = vec![selector, format!("leaf_index < {}", bind(Param::Int(i64::try_from(below).unwrap_or(i64::MAX))))];
    if let Some(from) = q.from_ns {
        terms.push(format!("ts_ns >= {}", bind(Param::Int(from))));
    }
    if let Some(to) = q.to_ns {
        terms.push(format!("ts_ns < {}", bind(Param::Int(to))));
    }
    (terms.join(" AND "), params)
}

fn unsigned(v: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("negative {what} {v}")))
}

/// The earliest and latest timestamps indexed (both NULL when empty).
/// One subquery per end: SQLite answers a lone `min` or `max` from the
/// `events_ts` index in O(log n), but both in one query scan every row
/// (118 ms over 10^6 events, on every dashboard request).
pub(crate) const TIME_SPAN: &str = "SELECT (SELECT min(ts_ns) FROM events), (SELECT max(ts_ns) FROM events)";

/// Decodes a row of [`activity`].
pub(crate) fn activity_count(bucket: i64, layer: String, kind: String, count: i64) -> Result<crate::ActivityCount, Error> {
    Ok(crate::ActivityCount { bucket: unsigned(bucket, "bucket")?, layer, kind, count: unsigned(count, "count")? })
}

/// Decodes a leaf index read from the index.
pub(crate) fn leaf_index(v: i64) -> Result<u64, Error> {
    unsigned(v, "leaf index")
}

/// Decodes the position row.
pub(crate) fn position(tree_size: i64, root_hex: &str) -> Result<Position, Error> {
    let mut root_hash = [0u8; 32];
    hex::decode_to_slice(root_hex, &mut root_hash).map_err(|e| Error::Corrupt(format!("position root hash {root_hex:?}: {e}")))?;
    Ok(Position { tree_size: unsigned(tree_size, "tree size")?, root_hash })
}
