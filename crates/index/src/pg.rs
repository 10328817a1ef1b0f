//! The scale-out backend: PostgreSQL, same schema and answers as SQLite.

use postgres::types::ToSql;
use postgres::{Client, NoTls};

use crate::sql::{self, Assembler, Param};
use crate::{Backend, Error, IndexedEvent, Position, Query};

/// An index in a PostgreSQL database.
pub struct Postgres {
    client: Client,
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host:port/db`, no TLS) and
    /// creates the schema if it is missing.
    pub fn connect(url: &str) -> Result<Self, Error> {
        let mut client = Client::connect(url, NoTls)?;
        client.batch_execute(&sql::schema("BIGINT"))?;
        Ok(Self { client })
    }
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => i as &(dyn ToSql + Sync),
            Param::Text(s) => s as &(dyn ToSql + Sync),
        })
        .collect()
}

impl Backend for Postgres {
    fn position(&mut self) -> Result<Option<Position>, Error> {
        let row = self.client.query_opt(sql::POSITION, &[])?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(sql::position(r.try_get(0)?, r.try_get::<_, &str>(1)?)?)),
        }
    }

    fn write(&mut self, events: &[IndexedEvent], to: Position) -> Result<(), Error> {
        let mut tx = self.client.transaction()?;
        // One writer at a time (held to the end of the transaction), then
        // skip what another has indexed meanwhile.
        tx.execute("SELECT pg_advisory_xact_lock(7268411)", &[])?;
        let done = tx.query_opt(sql::POSITION, &[])?.map(|r| r.try_get::<_, i64>(0)).transpose()?.map_or(0, |n| n as u64);
        if to.tree_size <= done {
            return Ok(());
        }
        let events: Vec<&IndexedEvent> = events.iter().filter(|e| e.leaf_index >= done).collect();
        // Column-wise arrays, so each table takes one statement per chunk.
        let rows: Vec<sql::EventRow> = events.iter().copied().map(sql::event_row).collect();
        macro_rules! col {
            ($i:tt) => {
                rows.iter().map(|r| r.$i.clone()).collect::<Vec<_>>()
            };
        }
        let (c0, c1, c2, c3, c4, c5) = (col!(0), col!(1), col!(2), col!(3), col!(4), col!(5));
        let (c6, c7, c8, c9, c10, c11) = (col!(6), col!(7), col!(8), col!(9), col!(10), col!(11));
        let (mut pl, mut pp, mut pd) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ml, mut mk, mut mv) = (Vec::new(), Vec::new(), Vec::new());
        for e in events {
            for (i, d) in e.parents.iter().enumerate() {
                pl.push(e.leaf_index as i64);
                pp.push(i as i64);
                pd.push(d.as_str());
            }
            for (k, v) in &e.metadata {
                ml.push(e.leaf_index as i64);
                mk.push(k.as_str());
                mv.push(v.as_str());
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO events ({}) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])",
                sql::EVENT_COLUMNS
            ),
            &[&c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7, &c8, &c9, &c10, &c11],
        )?;
        tx.execute("INSERT INTO parents (leaf_index, position, digest) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[])", &[&pl, &pp, &pd])?;
        tx.execute("INSERT INTO meta (leaf_index, key, value) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])", &[&ml, &mk, &mv])?;
        tx.execute(sql::SET_POSITION, &[&(to.tree_size as i64), &hex::encode(to.root_hash)])?;
        tx.commit()?;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        let mut tx = self.client.transaction()?;
        tx.batch_execute(sql::RESET)?;
        tx.commit()?;
        Ok(())
    }

    fn select(&mut self, q: &Query) -> Result<Vec<IndexedEvent>, Error> {
        let ([events, parents, meta], params) = sql::select(q);
        let p = refs(&params);
        // One snapshot for the three statements.
        let mut tx = self.client.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start()?;
        let mut a = Assembler::default();
        for r in tx.query(&events, &p)? {
            a.event((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
                r.try_get(8)?,
                r.try_get(9)?,
                r.try_get(10)?,
                r.try_get(11)?,
            ))?;
        }
        for r in tx.query(&parents, &p)? {
            a.parent(r.try_get(0)?, r.get(2))?;
        }
        for r in tx.query(&meta, &p)? {
            a.meta(r.try_get(0)?, r.try_get(1)?, r.get(2))?;
        }
        tx.commit()?;
        Ok(a.finish())
    }

    fn count(&mut self, q: &Query) -> Result<u64, Error> {
        let (text, params) = sql::count(q);
        let n: i64 = self.client.query_one(&text, &refs(&params))?.try_get(0)?;
        Ok(n as u64)
    }
}
