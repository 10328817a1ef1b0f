//! One SQL dialect over two databases: SQLite (one connection behind a
//! mutex; SQLite serialises writers anyway) and PostgreSQL (an r2d2 pool).
//!
//! Statements use `$1 … $n` placeholders, which both accept; parameters
//! must first appear in increasing order. Only `BIGINT`, `TEXT` and blob
//! columns are used, so a row is a list of [`Val`]. Sums and averages are
//! computed in Rust (PostgreSQL's `SUM(bigint)` is `numeric`).

use std::sync::Mutex;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::Error;

/// One SQL value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn text(self) -> Option<String> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn blob(self) -> Option<Vec<u8>> {
        match self {
            Val::Blob(b) => Some(b),
            _ => None,
        }
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Text(s.to_owned())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Text(s)
    }
}

impl From<i64> for Val {
    fn from(i: i64) -> Self {
        Val::Int(i)
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl ToSql for Val {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => i.to_sql(ty, out),
            Val::Text(s) => s.to_sql(ty, out),
            Val::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::TEXT | Type::VARCHAR | Type::BYTEA)
    }

    to_sql_checked!();
}

/// A job store's database connection(s).
pub(crate) enum Db {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(r2d2::Pool<PostgresConnectionManager<NoTls>>),
}

/// Serialises schema creation between processes sharing one PostgreSQL
/// database (`CREATE TABLE IF NOT EXISTS` races otherwise).
const SCHEMA_LOCK: i64 = 0x7a6b_6a6f_6273;

impl Db {
    /// Opens `spec`: a `postgres://` or `postgresql://` URL, or a SQLite
    /// file path. Creates the schema (`schema(blob type)`) if missing.
    pub(crate) fn open(spec: &str, schema: impl Fn(&str) -> String) -> Result<Db, Error> {
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            let config: postgres::Config = spec.parse().map_err(|e| Error::Config(format!("{spec}: {e}")))?;
            let pool = r2d2::Pool::builder()
                .max_size(16)
                .build(PostgresConnectionManager::new(config, NoTls))
                .map_err(|e| Error::Db(format!("connecting to PostgreSQL: {e}")))?;
            let mut c = pool.get().map_err(|e| Error::Db(e.to_string()))?;
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(&schema("BYTEA"))?;
            tx.commit()?;
            Ok(Db::Postgres(pool))
        } else {
            let conn = rusqlite::Connection::open(spec).map_err(|e| Error::Db(format!("{spec}: {e}")))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.execute_batch(&schema("BLOB"))?;
            Ok(Db::Sqlite(Mutex::new(conn)))
        }
    }

    /// Whether this is PostgreSQL (which has `FOR UPDATE SKIP LOCKED`).
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Runs a statement; returns the number of rows changed.
    pub(crate) fn exec(&self, sql: &str, params: &[Val]) -> Result<u64, Error> {
        match self {
            Db::Sqlite(m) => {
                let c = m.lock().map_err(|_| Error::Db("the SQLite connection was poisoned".into()))?;
                Ok(c.execute(sql, rusqlite::params_from_iter(params.iter().map(sqlite_param)))? as u64)
            }
            Db::Postgres(pool) => {
                let mut c = pool.get().map_err(|e| Error::Db(e.to_string()))?;
                Ok(c.execute(sql, &pg_params(params))?)
            }
        }
    }

    /// Runs a query; returns its rows.
    pub(crate) fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, Error> {
        match self {
            Db::Sqlite(m) => {
                let c = m.lock().map_err(|_| Error::Db("the SQLite connection was poisoned".into()))?;
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let rows = st.query_map(rusqlite::params_from_iter(params.iter().map(sqlite_param)), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Val::Null,
                                rusqlite::types::ValueRef::Integer(i) => Val::Int(i),
                                rusqlite::types::ValueRef::Real(f) => Val::Int(f as i64),
                                rusqlite::types::ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                                rusqlite::types::ValueRef::Blob(b) => Val::Blob(b.to_vec()),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Val>>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            }
            Db::Postgres(pool) => {
                let mut c = pool.get().map_err(|e| Error::Db(e.to_string()))?;
                let rows = c.query(sql, &pg_params(params))?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                let ty = r.columns()[i].type_().clone();
                                Ok(match ty {
                                    Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int),
                                    Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |v| Val::Int(v.into())),
                                    Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Blob),
                                    _ => r.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text),
                                })
                            })
                            .collect::<Result<Vec<Val>, Error>>()
                    })
                    .collect()
            }
        }
    }
}

fn sqlite_param(v: &Val) -> rusqlite::types::Value {
    match v {
        Val::Null => rusqlite::types::Value::Null,
        Val::Int(i) => rusqlite::types::Value::Integer(*i),
        Val::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Val::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

fn pg_params(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}
