//! The embedded backend: one SQLite file (by default `DIR/index.sqlite`).

use std::path::Path;

use rusqlite::types::ToSqlOutput;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql};

use crate::sql::{self, Assembler, Param};
use crate::{Backend, Error, IndexedEvent, Position, Query};

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
}

impl Sqlite {
    /// Opens (creating if needed) the index database at `path`.
    ///
    /// WAL mode with `synchronous = NORMAL`: a crash may lose the last
    /// transactions, never tear one, and the next [`crate::sync`] redoes them
    /// from the log.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(&sql::schema("INTEGER"))?;
        Ok(Self { conn })
    }
}

impl Backend for Sqlite {
    fn position(&mut self) -> Result<Option<Position>, Error> {
        let row: Option<(i64, String)> = self.conn.query_row(sql::POSITION, [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        row.map(|(size, root)| sql::position(size, &root)).transpose()
    }

    fn write(&mut self, events: &[IndexedEvent], to: Position) -> Result<(), Error> {
        // IMMEDIATE: take the write lock before reading the position.
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: Option<i64> = tx.query_row(sql::POSITION, [], |r| r.get(0)).optional()?;
        let done = done.map_or(0, |n| n as u64);
        if to.tree_size <= done {
            return Ok(());
        }
        let events = events.iter().filter(|e| e.leaf_index >= done);
        {
            let mut ev =
                tx.prepare_cached(&format!("INSERT INTO events ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", sql::EVENT_COLUMNS))?;
            let mut parent = tx.prepare_cached("INSERT INTO parents (leaf_index, position, digest) VALUES ($1, $2, $3)")?;
            let mut meta = tx.prepare_cached("INSERT INTO meta (leaf_index, key, value) VALUES ($1, $2, $3)")?;
            for e in events {
                let r = sql::event_row(e);
                ev.execute(params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11])?;
                for (i, d) in e.parents.iter().enumerate() {
                    parent.execute(params![r.0, i as i64, d])?;
                }
                for (k, v) in &e.metadata {
                    meta.execute(params![r.0, k, v])?;
                }
            }
        }
        tx.execute(sql::SET_POSITION, params![to.tree_size as i64, hex::encode(to.root_hash)])?;
        tx.commit()?;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(sql::RESET)?;
        tx.commit()?;
        Ok(())
    }

    fn select(&mut self, q: &Query) -> Result<Vec<IndexedEvent>, Error> {
        let ([events, parents, meta], params) = sql::select(q);
        let tx = self.conn.transaction()?;
        let mut a = Assembler::default();
        {
            let mut st = tx.prepare(&events)?;
            let mut rows = st.query(params_from_iter(&params))?;
            while let Some(r) = rows.next()? {
                a.event((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))?;
            }
            let mut st = tx.prepare(&parents)?;
            let mut rows = st.query(params_from_iter(&params))?;
            while let Some(r) = rows.next()? {
                a.parent(r.get(0)?, r.get(2)?)?;
            }
            let mut st = tx.prepare(&meta)?;
            let mut rows = st.query(params_from_iter(&params))?;
            while let Some(r) = rows.next()? {
                a.meta(r.get(0)?, r.get(1)?, r.get(2)?)?;
            }
        }
        tx.commit()?;
        Ok(a.finish())
    }

    fn count(&mut self, q: &Query) -> Result<u64, Error> {
        let (text, params) = sql::count(q);
        let n: i64 = self.conn.query_row(&text, params_from_iter(&params), |r| r.get(0))?;
        Ok(n as u64)
    }
}
