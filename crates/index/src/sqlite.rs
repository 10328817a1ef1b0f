//! The embedded backend: one SQLite file (by default `DIR/index.sqlite`).

use std::path::Path;

use rusqlite::types::ToSqlOutput;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior};

use crate::sql::{self, Dictionary, Param};
use crate::{ActivityCount, Backend, Error, Position, Query, Row};

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Int(i) => ToSqlOutput::from(*i),
            Param::Text(s) => ToSqlOutput::from(s.as_str()),
        })
    }
}

/// An index in a SQLite database file.
pub struct Sqlite {
    conn: Connection,
    dictionary: Dictionary,
}

impl Sqlite {
    /// Opens (creating if needed) the index database at `path`. An index
    /// of an older schema is emptied, to be rebuilt from the log.
    ///
    /// WAL mode with `synchronous = OFF`: the index is rebuilt from the log
    /// whenever it is behind, so it needs no durability of its own. A
    /// killed process loses nothing (the OS has the pages) and a
    /// transaction is never torn; after an OS crash or power loss the file
    /// may be damaged, which [`Error::Sqlite`] reports and
    /// `zkaudit log reindex` repairs.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        // 64 MiB of page cache: the digest indexes are written in random order.
        conn.pragma_update(None, "cache_size", -65_536)?;
        let version = |c: &Connection| c.query_row(sql::READ_VERSION, [], |r| r.get::<_, i64>(0)).optional().ok().flatten();
        if version(&conn) != Some(sql::SCHEMA_VERSION) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if version(&tx) != Some(sql::SCHEMA_VERSION) {
                tx.execute_batch(&sql::drop_all())?;
                tx.execute_batch(&sql::schema("INTEGER", " WITHOUT ROWID"))?;
            }
            tx.commit()?;
        }
        // A bulk load that was killed left its indexes dropped.
        conn.execute_batch(&sql::create_secondary())?;
        Ok(Self { conn, dictionary: Dictionary::default() })
    }
}

/// Finds `text` with `find`, or adds it with `add` (which returns the new
/// id), calling `added` with a new id. Runs under the write lock, so no
/// other writer adds the same text in between.
fn find_or_add(tx: &Transaction<'_>, find: &str, add: &str, text: &str, added: impl FnOnce(i64) -> Result<(), Error>) -> Result<i64, Error> {
    if let Some(id) = tx.prepare_cached(find)?.query_row([text], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    let id = tx.prepare_cached(add)?.query_row([text], |r| r.get(0))?;
    added(id)?;
    Ok(id)
}

fn write_rows(tx: &Transaction<'_>, dictionary: &mut Dictionary, rows: &[Row], done: u64) -> Result<(), Error> {
    let mut ev = tx.prepare_cached(&format!("INSERT INTO events ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", sql::EVENT_COLUMNS))?;
    let mut parent = tx.prepare_cached(sql::INSERT_PARENT)?;
    let mut hours = Vec::new();
    for r in rows.iter().filter(|r| r.leaf_index >= done) {
        let name = |n: &str| find_or_add(tx, sql::FIND_NAME, sql::ADD_NAME, n, |_| Ok(()));
        let type_id = dictionary.name(&r.kind, name)?;
        let layer_id = dictionary.name(&r.layer, name)?;
        let keyset_id = dictionary.keyset(&r.keys, |keys, text| {
            find_or_add(tx, sql::FIND_KEYSET, sql::ADD_KEYSET, text, |id| {
                let mut add = tx.prepare_cached(sql::ADD_KEYSET_KEY)?;
                for k in keys {
                    add.execute(params![k, id])?;
                }
                Ok(())
            })
        })?;
        let leaf = r.leaf_index as i64;
        ev.execute(params![leaf, r.timestamp_ns, type_id, layer_id, r.input, r.output, keyset_id, i64::from(r.proof)])?;
        for d in &r.parents {
            parent.execute(params![d, leaf])?;
        }
        hours.push((r.timestamp_ns, layer_id, type_id));
    }
    let mut add = tx.prepare_cached(sql::ADD_HOUR)?;
    for ((hour, layer, kind), n) in sql::hour_counts(hours) {
        add.execute(params![hour, layer, kind, n])?;
    }
    Ok(())
}

impl Backend for Sqlite {
    fn position(&mut self) -> Result<Option<Position>, Error> {
        let row: Option<(i64, String)> = self.conn.query_row(sql::POSITION, [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        row.map(|(size, root)| sql::position(size, &root)).transpose()
    }

    fn write(&mut self, rows: &[Row], to: Position) -> Result<(), Error> {
        // IMMEDIATE: take the write lock before reading the position.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done: Option<i64> = tx.query_row(sql::POSITION, [], |r| r.get(0)).optional()?;
        let done = done.map_or(0, |n| n as u64);
        if to.tree_size <= done {
            return Ok(());
        }
        let written = write_rows(&tx, &mut self.dictionary, rows, done)
            .and_then(|()| Ok(tx.execute(sql::SET_POSITION, params![to.tree_size as i64, hex::encode(to.root_hash)])?))
            .and_then(|_| Ok(tx.commit()?));
        if written.is_err() {
            // Ids added in the rolled-back transaction do not exist.
            self.dictionary.clear();
        }
        written
    }

    fn bulk_load(&mut self, starting: bool) -> Result<(), Error> {
        self.conn.execute_batch(&if starting { sql::drop_secondary() } else { sql::create_secondary() })?;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(sql::RESET)?;
        tx.commit()?;
        Ok(())
    }

    fn candidates(&mut self, q: &Query, below: u64) -> Result<Vec<u64>, Error> {
        let (text, params) = sql::candidates(q, below);
        let mut st = self.conn.prepare(&text)?;
        let mut rows = st.query(params_from_iter(&params))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(sql::leaf_index(r.get(0)?)?);
        }
        Ok(out)
    }

    fn count(&mut self, q: &Query, below: u64) -> Result<u64, Error> {
        let (text, params) = sql::count(q, below);
        let n: i64 = self.conn.query_row(&text, params_from_iter(&params), |r| r.get(0))?;
        Ok(n as u64)
    }

    fn hours(&mut self, from_hour: i64, to_hour: i64) -> Result<Vec<(i64, String, String, u64)>, Error> {
        let mut st = self.conn.prepare_cached(sql::HOURS)?;
        let rows =
            st.query_map(params![from_hour, to_hour], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?)))?;
        rows.map(|r| {
            let (h, l, t, n) = r?;
            Ok((h, l, t, u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative hourly count {n}")))?))
        })
        .collect()
    }

    fn time_span(&mut self) -> Result<Option<(i64, i64)>, Error> {
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn.query_row(sql::TIME_SPAN, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(lo.zip(hi))
    }

    fn activity(&mut self, from_ns: i64, to_ns: i64, bucket_ns: i64, below: u64) -> Result<Vec<ActivityCount>, Error> {
        let (text, params) = sql::activity(from_ns, to_ns, bucket_ns, below);
        let mut st = self.conn.prepare_cached(&text)?;
        let rows =
            st.query_map(params_from_iter(&params), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?)))?;
        rows.map(|r| {
            let (b, layer, kind, n) = r?;
            sql::activity_count(b, layer, kind, n)
        })
        .collect()
    }
}
