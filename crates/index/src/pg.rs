//! The scale-out backend: PostgreSQL, same schema and answers as SQLite.

use postgres::types::ToSql;
use postgres::{Client, NoTls, Transaction};

use crate::sql::{self, Dictionary, Param};
use crate::{ActivityCount, Backend, Error, Position, Query, Row};

/// Advisory lock key held by the index's writers (and schema changes).
const WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(7268411)";

/// An index in a PostgreSQL database.
pub struct Postgres {
    client: Client,
    dictionary: Dictionary,
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host:port/db`, no TLS) and
    /// creates the schema if it is missing; an index of an older schema
    /// is emptied, to be rebuilt from the log.
    pub fn connect(url: &str) -> Result<Self, Error> {
        let mut client = Client::connect(url, NoTls)?;
        let mut tx = client.transaction()?;
        tx.execute(WRITE_LOCK, &[])?;
        tx.batch_execute(&sql::version_table("BIGINT"))?;
        let version: Option<i64> = tx.query_opt(sql::READ_VERSION, &[])?.map(|r| r.try_get(0)).transpose()?;
        if version != Some(sql::SCHEMA_VERSION) {
            tx.batch_execute(&sql::drop_all())?;
            tx.batch_execute(&sql::schema("BIGINT", ""))?;
        }
        tx.commit()?;
        Ok(Self { client, dictionary: Dictionary::default() })
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

/// Finds `text` with `find`, or adds it with `add`, calling `added` with
/// a new id (under the write lock: no other writer adds it in between).
fn find_or_add(
    tx: &mut Transaction<'_>,
    find: &str,
    add: &str,
    text: &str,
    added: impl FnOnce(&mut Transaction<'_>, i64) -> Result<(), Error>,
) -> Result<i64, Error> {
    if let Some(r) = tx.query_opt(find, &[&text])? {
        return Ok(r.try_get(0)?);
    }
    let id: i64 = tx.query_one(add, &[&text])?.try_get(0)?;
    added(tx, id)?;
    Ok(id)
}

fn write_rows(tx: &mut Transaction<'_>, dictionary: &mut Dictionary, rows: &[Row], done: u64) -> Result<(), Error> {
    // Column-wise arrays, so each table takes one statement per chunk.
    let rows: Vec<&Row> = rows.iter().filter(|r| r.leaf_index >= done).collect();
    let mut cols: [Vec<i64>; 8] = Default::default();
    let (mut parent_digest, mut parent_leaf) = (Vec::new(), Vec::new());
    let mut hours = Vec::new();
    for r in rows {
        let type_id = dictionary.name(&r.kind, |n| find_or_add(tx, sql::FIND_NAME, sql::ADD_NAME, n, |_, _| Ok(())))?;
        let layer_id = dictionary.name(&r.layer, |n| find_or_add(tx, sql::FIND_NAME, sql::ADD_NAME, n, |_, _| Ok(())))?;
        let keyset_id = dictionary.keyset(&r.keys, |keys, text| {
            find_or_add(tx, sql::FIND_KEYSET, sql::ADD_KEYSET, text, |tx, id| {
                for k in keys {
                    tx.execute(sql::ADD_KEYSET_KEY, &[k as &(dyn ToSql + Sync), &id])?;
                }
                Ok(())
            })
        })?;
        let leaf = r.leaf_index as i64;
        for (col, v) in cols.iter_mut().zip([leaf, r.timestamp_ns, type_id, layer_id, r.input, r.output, keyset_id, i64::from(r.proof)]) {
            col.push(v);
        }
        for d in &r.parents {
            parent_digest.push(*d);
            parent_leaf.push(leaf);
        }
        hours.push((r.timestamp_ns, layer_id, type_id));
    }
    let [c0, c1, c2, c3, c4, c5, c6, c7] = &cols;
    tx.execute(
        &format!(
            "INSERT INTO events ({}) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
             $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])",
            sql::EVENT_COLUMNS
        ),
        &[c0, c1, c2, c3, c4, c5, c6, c7],
    )?;
    tx.execute(
        "INSERT INTO parents (digest, leaf_index) SELECT * FROM UNNEST($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
        &[&parent_digest, &parent_leaf],
    )?;
    // One row per key: ON CONFLICT may not touch a row twice in a statement.
    let mut h: [Vec<i64>; 4] = Default::default();
    for ((hour, layer, kind), n) in sql::hour_counts(hours) {
        for (col, v) in h.iter_mut().zip([hour, layer, kind, n]) {
            col.push(v);
        }
    }
    let [h0, h1, h2, h3] = &h;
    tx.execute(
        "INSERT INTO activity_hours (hour, layer_id, type_id, n) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
         ON CONFLICT (hour, layer_id, type_id) DO UPDATE SET n = activity_hours.n + excluded.n",
        &[h0, h1, h2, h3],
    )?;
    Ok(())
}

impl Backend for Postgres {
    fn position(&mut self) -> Result<Option<Position>, Error> {
        let row = self.client.query_opt(sql::POSITION, &[])?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(sql::position(r.try_get(0)?, r.try_get::<_, &str>(1)?)?)),
        }
    }

    fn write(&mut self, rows: &[Row], to: Position) -> Result<(), Error> {
        let mut tx = self.client.transaction()?;
        // One writer at a time (held to the end of the transaction), then
        // skip what another has indexed meanwhile.
        tx.execute(WRITE_LOCK, &[])?;
        let done = tx.query_opt(sql::POSITION, &[])?.map(|r| r.try_get::<_, i64>(0)).transpose()?.map_or(0, |n| n as u64);
        if to.tree_size <= done {
            return Ok(());
        }
        let written = write_rows(&mut tx, &mut self.dictionary, rows, done)
            .and_then(|()| Ok(tx.execute(sql::SET_POSITION, &[&(to.tree_size as i64), &hex::encode(to.root_hash)])?))
            .and_then(|_| Ok(tx.commit()?));
        if written.is_err() {
            // Ids added in the rolled-back transaction do not exist.
            self.dictionary.clear();
        }
        written
    }

    fn reset(&mut self) -> Result<(), Error> {
        let mut tx = self.client.transaction()?;
        tx.batch_execute(sql::RESET)?;
        tx.commit()?;
        Ok(())
    }

    fn candidates(&mut self, q: &Query, below: u64) -> Result<Vec<u64>, Error> {
        let (text, params) = sql::candidates(q, below);
        self.client.query(&text, &refs(&params))?.iter().map(|r| sql::leaf_index(r.try_get(0)?)).collect()
    }

    fn count(&mut self, q: &Query, below: u64) -> Result<u64, Error> {
        let (text, params) = sql::count(q, below);
        let n: i64 = self.client.query_one(&text, &refs(&params))?.try_get(0)?;
        Ok(n as u64)
    }

    fn hours(&mut self, from_hour: i64, to_hour: i64) -> Result<Vec<(i64, String, String, u64)>, Error> {
        self.client
            .query(sql::HOURS, &[&from_hour, &to_hour])?
            .iter()
            .map(|r| {
                let n: i64 = r.try_get(3)?;
                Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative hourly count {n}")))?))
            })
            .collect()
    }

    fn time_span(&mut self) -> Result<Option<(i64, i64)>, Error> {
        let r = self.client.query_one(sql::TIME_SPAN, &[])?;
        Ok(r.try_get::<_, Option<i64>>(0)?.zip(r.try_get::<_, Option<i64>>(1)?))
    }

    fn activity(&mut self, from_ns: i64, to_ns: i64, bucket_ns: i64, below: u64) -> Result<Vec<ActivityCount>, Error> {
        let (text, params) = sql::activity(from_ns, to_ns, bucket_ns, below);
        self.client.query(&text, &refs(&params))?.iter().map(|r| sql::activity_count(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)).collect()
    }
}
