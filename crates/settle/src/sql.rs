//! The accounting ledger kept in SQLite (embedded) or PostgreSQL (shared by
//! several processes): the rows a batch names are loaded into an
//! [`engine::Book`](crate::engine::Book), the batch runs there, and what it
//! changed is written back, all in one database transaction.
//!
//! Batches are serialised: SQLite by `BEGIN IMMEDIATE`, PostgreSQL by
//! locking the ledger's clock row (`SELECT … FOR UPDATE`), which also hands
//! out strictly increasing timestamps, as TigerBeetle's single leader does.
//! IDs are stored as 32 lowercase hex digits, amounts as decimal text (a
//! `u128` fits neither database's integers); the rest are `BIGINT`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::engine::Book;
use crate::model::{Account, AccountFlags, CreateAccountResult, CreateTransferResult, PendingStatus, Transfer, TransferFlags};
use crate::{Clock, Error, Ledger};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settle_clock (id BIGINT PRIMARY KEY, last_ns BIGINT NOT NULL);
INSERT INTO settle_clock (id, last_ns) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS settle_accounts (
    id TEXT PRIMARY KEY, debits_pending TEXT NOT NULL, debits_posted TEXT NOT NULL,
    credits_pending TEXT NOT NULL, credits_posted TEXT NOT NULL, user_data_128 TEXT NOT NULL,
    ledger BIGINT NOT NULL, code BIGINT NOT NULL, flags BIGINT NOT NULL, timestamp BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS settle_transfers (
    id TEXT PRIMARY KEY, debit_account_id TEXT NOT NULL, credit_account_id TEXT NOT NULL, amount TEXT NOT NULL,
    pending_id TEXT NOT NULL, user_data_128 TEXT NOT NULL, ledger BIGINT NOT NULL, code BIGINT NOT NULL,
    flags BIGINT NOT NULL, timeout BIGINT NOT NULL, timestamp BIGINT NOT NULL,
    status TEXT, expires_at BIGINT);
CREATE INDEX IF NOT EXISTS settle_transfers_due ON settle_transfers (status, expires_at);
CREATE INDEX IF NOT EXISTS settle_transfers_by_timestamp ON settle_transfers (timestamp);
";

const ACCOUNT_COLUMNS: &str = "id, debits_pending, debits_posted, credits_pending, credits_posted, user_data_128, ledger, code, flags, timestamp";
const TRANSFER_COLUMNS: &str =
    "id, debit_account_id, credit_account_id, amount, pending_id, user_data_128, ledger, code, flags, timeout, timestamp, status, expires_at";

/// One SQL parameter or column value.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    Int(i64),
    Text(String),
}

impl rusqlite::ToSql for V {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match self {
            V::Null => ToSqlOutput::Owned(Value::Null),
            V::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            V::Text(s) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes())),
        })
    }
}

impl postgres::types::ToSql for V {
    fn to_sql(&self, ty: &postgres::types::Type, out: &mut bytes::BytesMut) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            V::Null => Ok(postgres::types::IsNull::Yes),
            V::Int(i) => i.to_sql(ty, out),
            V::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <i64 as postgres::types::ToSql>::accepts(ty) || <String as postgres::types::ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

/// A database transaction the ledger's statements run in (`$1…$n`
/// placeholders, first used in increasing order).
trait Tx {
    fn query(&mut self, sql: &str, params: &[V]) -> Result<Vec<Vec<V>>, Error>;
    fn exec(&mut self, sql: &str, params: &[V]) -> Result<u64, Error>;
    /// The clause that locks the rows a `SELECT` reads until the end of
    /// the transaction (`FOR UPDATE`; SQLite locks the whole database).
    fn lock_clause(&self) -> &'static str;
}

struct Sqlite<'a>(rusqlite::Transaction<'a>);

impl Tx for Sqlite<'_> {
    fn query(&mut self, sql: &str, params: &[V]) -> Result<Vec<Vec<V>>, Error> {
        let mut st = self.0.prepare_cached(sql).map_err(Error::sqlite)?;
        let n = st.column_count();
        let rows = st
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => V::Null,
                            rusqlite::types::ValueRef::Integer(i) => V::Int(i),
                            rusqlite::types::ValueRef::Text(t) => V::Text(String::from_utf8_lossy(t).into_owned()),
                            other => V::Text(format!("{other:?}")),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<V>>>()
            })
            .map_err(Error::sqlite)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Error::sqlite)
    }

    fn exec(&mut self, sql: &str, params: &[V]) -> Result<u64, Error> {
        Ok(self.0.execute(sql, rusqlite::params_from_iter(params.iter())).map_err(Error::sqlite)? as u64)
    }

    fn lock_clause(&self) -> &'static str {
        ""
    }
}

struct Postgres<'a>(postgres::Transaction<'a>);

impl Tx for Postgres<'_> {
    fn query(&mut self, sql: &str, params: &[V]) -> Result<Vec<Vec<V>>, Error> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
        let rows = self.0.query(sql, &refs).map_err(Error::postgres)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        Ok(if *r.columns()[i].type_() == postgres::types::Type::INT8 {
                            r.try_get::<_, Option<i64>>(i).map_err(Error::postgres)?.map_or(V::Null, V::Int)
                        } else {
                            r.try_get::<_, Option<String>>(i).map_err(Error::postgres)?.map_or(V::Null, V::Text)
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn exec(&mut self, sql: &str, params: &[V]) -> Result<u64, Error> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
        self.0.execute(sql, &refs).map_err(Error::postgres)
    }

    fn lock_clause(&self) -> &'static str {
        " FOR UPDATE"
    }
}

enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(r2d2::Pool<PostgresConnectionManager<NoTls>>),
}

/// The accounting ledger in SQLite or PostgreSQL ([`Ledger`]).
pub struct SqlLedger {
    backend: Backend,
    clock: Arc<dyn Clock>,
    spec: String,
}

impl SqlLedger {
    /// Opens (creating the tables if needed) the ledger at `spec`: a
    /// `postgres://user@host:port/db` URL (no TLS), or a SQLite file path.
    /// Timestamps come from `clock`, made strictly increasing.
    ///
    /// # Errors
    /// [`Error::Db`] when the database cannot be opened or set up.
    pub fn open(spec: &str, clock: Arc<dyn Clock>) -> Result<SqlLedger, Error> {
        let backend = if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            let config: postgres::Config = spec.parse().map_err(|e| Error::Db(format!("{spec}: {e}")))?;
            let pool = r2d2::Pool::builder().max_size(8).build(PostgresConnectionManager::new(config, NoTls)).map_err(|e| Error::Db(format!("{spec}: {e}")))?;
            let mut c = pool.get().map_err(|e| Error::Db(format!("{spec}: {e}")))?;
            c.batch_execute(SCHEMA).map_err(Error::postgres)?;
            Backend::Postgres(pool)
        } else {
            let c = rusqlite::Connection::open(spec).map_err(|e| Error::Db(format!("{spec}: {e}")))?;
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;").map_err(Error::sqlite)?;
            c.execute_batch(SCHEMA).map_err(Error::sqlite)?;
            Backend::Sqlite(Mutex::new(c))
        };
        Ok(SqlLedger { backend, clock, spec: spec.to_owned() })
    }

    /// The database this ledger is in, as given to [`SqlLedger::open`].
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`. On
    /// PostgreSQL a serialisation failure or deadlock is retried.
    fn transaction<T>(&self, f: impl Fn(&mut dyn Tx) -> Result<T, Error>) -> Result<T, Error> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut c = c.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(Error::sqlite)?;
                let mut tx = Sqlite(tx);
                let r = f(&mut tx)?;
                tx.0.commit().map_err(Error::sqlite)?;
                Ok(r)
            }
            Backend::Postgres(pool) => {
                let mut c = pool.get().map_err(|e| Error::Db(format!("{}: {e}", self.spec)))?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let mut tx = Postgres(c.transaction().map_err(Error::postgres)?);
                    let r = match f(&mut tx) {
                        Ok(r) => tx.0.commit().map_err(Error::postgres).map(|()| r),
                        Err(e) => Err(e),
                    };
                    match r {
                        Err(Error::Retry(_)) if attempt < 10 => continue,
                        Err(Error::Retry(m)) => return Err(Error::Db(m)),
                        other => return other,
                    }
                }
            }
        }
    }

    /// The batch's first timestamp: the clock's reading, or one past the
    /// last timestamp handed out, whichever is later; `n` are reserved.
    fn timestamps(&self, tx: &mut dyn Tx, n: usize) -> Result<u64, Error> {
        let lock = tx.lock_clause();
        let rows = tx.query(&format!("SELECT last_ns FROM settle_clock WHERE id = 1{lock}"), &[])?;
        let last = rows.first().and_then(|r| int(r.first())).ok_or_else(|| Error::Corrupt("the clock row is missing".into()))?;
        let base = self.clock.now_ns().max(last.saturating_add(1));
        let end = base.saturating_add(n.max(1) as u64 - 1);
        tx.exec("UPDATE settle_clock SET last_ns = $1 WHERE id = 1", &[V::Int(i64::try_from(end).map_err(|_| Error::Corrupt("clock past 2262".into()))?)])?;
        Ok(base)
    }
}

fn hex(id: u128) -> V {
    V::Text(format!("{id:032x}"))
}

fn dec(v: u128) -> V {
    V::Text(v.to_string())
}

fn int(v: Option<&V>) -> Option<u64> {
    match v {
        Some(V::Int(i)) => u64::try_from(*i).ok(),
        _ => None,
    }
}

fn in_list(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn parse_u128(v: Option<&V>, radix: u32, what: &str) -> Result<u128, Error> {
    match v {
        Some(V::Text(s)) => u128::from_str_radix(s, radix).map_err(|e| Error::Corrupt(format!("{what} `{s}`: {e}"))),
        other => Err(Error::Corrupt(format!("{what}: {other:?}"))),
    }
}

fn small<T: TryFrom<u64>>(v: Option<&V>, what: &str) -> Result<T, Error> {
    int(v).and_then(|i| T::try_from(i).ok()).ok_or_else(|| Error::Corrupt(format!("{what}: {v:?}")))
}

fn account_row(r: &[V]) -> Result<Account, Error> {
    Ok(Account {
        id: parse_u128(r.first(), 16, "account id")?,
        debits_pending: parse_u128(r.get(1), 10, "debits_pending")?,
        debits_posted: parse_u128(r.get(2), 10, "debits_posted")?,
        credits_pending: parse_u128(r.get(3), 10, "credits_pending")?,
        credits_posted: parse_u128(r.get(4), 10, "credits_posted")?,
        user_data_128: parse_u128(r.get(5), 16, "user_data_128")?,
        ledger: small(r.get(6), "ledger")?,
        code: small(r.get(7), "code")?,
        flags: AccountFlags(small(r.get(8), "flags")?),
        timestamp: small(r.get(9), "timestamp")?,
    })
}

fn transfer_row(r: &[V]) -> Result<(Transfer, Option<PendingStatus>), Error> {
    let t = Transfer {
        id: parse_u128(r.first(), 16, "transfer id")?,
        debit_account_id: parse_u128(r.get(1), 16, "debit_account_id")?,
        credit_account_id: parse_u128(r.get(2), 16, "credit_account_id")?,
        amount: parse_u128(r.get(3), 10, "amount")?,
        pending_id: parse_u128(r.get(4), 16, "pending_id")?,
        user_data_128: parse_u128(r.get(5), 16, "user_data_128")?,
        ledger: small(r.get(6), "ledger")?,
        code: small(r.get(7), "code")?,
        flags: TransferFlags(small(r.get(8), "flags")?),
        timeout: small(r.get(9), "timeout")?,
        timestamp: small(r.get(10), "timestamp")?,
    };
    let status = match r.get(11) {
        Some(V::Text(s)) => Some(PendingStatus::parse(s).ok_or_else(|| Error::Corrupt(format!("transfer status `{s}`")))?),
        _ => None,
    };
    Ok((t, status))
}

fn i64_of(v: u64, what: &str) -> Result<V, Error> {
    i64::try_from(v).map(V::Int).map_err(|_| Error::Corrupt(format!("{what} {v} does not fit a BIGINT")))
}

/// Loads accounts `ids` into `book`.
fn load_accounts(tx: &mut dyn Tx, book: &mut Book, ids: &BTreeSet<u128>) -> Result<(), Error> {
    let ids: Vec<u128> = ids.iter().copied().filter(|id| !book.accounts.contains_key(id)).collect();
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM settle_accounts WHERE id IN ({})", in_list(1, chunk.len()));
        for r in tx.query(&sql, &chunk.iter().map(|&i| hex(i)).collect::<Vec<_>>())? {
            let a = account_row(&r)?;
            book.accounts.insert(a.id, a);
        }
    }
    Ok(())
}

/// Loads the transfers of `sql` (selecting [`TRANSFER_COLUMNS`]) into
/// `book`, keeping those it holds already (they may have changed there:
/// an expiry swept before the batch's own transfers are loaded).
fn load_transfers(tx: &mut dyn Tx, book: &mut Book, sql: &str, params: &[V]) -> Result<(), Error> {
    for r in tx.query(sql, params)? {
        let (t, status) = transfer_row(&r)?;
        if book.transfers.contains_key(&t.id) {
            continue;
        }
        if let Some(s) = status {
            book.pending.insert(t.id, s);
        }
        book.transfers.insert(t.id, t);
    }
    Ok(())
}

/// Loads the pending transfers due at `now` and their accounts.
fn load_due(tx: &mut dyn Tx, book: &mut Book, now: u64) -> Result<(), Error> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM settle_transfers WHERE status = 'pending' AND expires_at <= $1");
    load_transfers(tx, book, &sql, &[i64_of(now, "time")?])?;
    let ids = book.transfers.values().flat_map(|t| [t.debit_account_id, t.credit_account_id]).collect();
    load_accounts(tx, book, &ids)
}

/// Writes back what `book` changed.
fn write(tx: &mut dyn Tx, book: &Book) -> Result<(), Error> {
    let ch = book.changes();
    let new_accounts: BTreeSet<u128> = ch.new_accounts.iter().copied().collect();
    for id in &ch.new_accounts {
        let a = book.accounts.get(id).ok_or_else(|| Error::Corrupt(format!("account {id:032x} vanished from its batch")))?;
        tx.exec(
            &format!("INSERT INTO settle_accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
            &[
                hex(a.id),
                dec(a.debits_pending),
                dec(a.debits_posted),
                dec(a.credits_pending),
                dec(a.credits_posted),
                hex(a.user_data_128),
                V::Int(i64::from(a.ledger)),
                V::Int(i64::from(a.code)),
                V::Int(i64::from(a.flags.0)),
                i64_of(a.timestamp, "timestamp")?,
            ],
        )?;
    }
    for id in ch.accounts.iter().filter(|id| !new_accounts.contains(id)) {
        let a = book.accounts.get(id).ok_or_else(|| Error::Corrupt(format!("account {id:032x} vanished from its batch")))?;
        tx.exec(
            "UPDATE settle_accounts SET debits_pending = $1, debits_posted = $2, credits_pending = $3, credits_posted = $4 WHERE id = $5",
            &[dec(a.debits_pending), dec(a.debits_posted), dec(a.credits_pending), dec(a.credits_posted), hex(a.id)],
        )?;
    }
    let new_transfers: BTreeSet<u128> = ch.new_transfers.iter().copied().collect();
    for id in &ch.new_transfers {
        let t = book.transfers.get(id).ok_or_else(|| Error::Corrupt(format!("transfer {id:032x} vanished from its batch")))?;
        let status = book.pending.get(id).map_or(V::Null, |s| V::Text(s.as_str().into()));
        let expires = t.expires_at().map(|at| i64_of(at, "expiry")).transpose()?.unwrap_or(V::Null);
        tx.exec(
            &format!("INSERT INTO settle_transfers ({TRANSFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
            &[
                hex(t.id),
                hex(t.debit_account_id),
                hex(t.credit_account_id),
                dec(t.amount),
                hex(t.pending_id),
                hex(t.user_data_128),
                V::Int(i64::from(t.ledger)),
                V::Int(i64::from(t.code)),
                V::Int(i64::from(t.flags.0)),
                V::Int(i64::from(t.timeout)),
                i64_of(t.timestamp, "timestamp")?,
                status,
                expires,
            ],
        )?;
    }
    for (id, s) in ch.pending.iter().filter(|(id, _)| !new_transfers.contains(id)) {
        tx.exec("UPDATE settle_transfers SET status = $1 WHERE id = $2", &[V::Text(s.as_str().into()), hex(*id)])?;
    }
    Ok(())
}

impl Ledger for SqlLedger {
    fn create_accounts(&self, batch: &[Account]) -> Result<Vec<CreateAccountResult>, Error> {
        self.transaction(|tx| {
            let base = self.timestamps(tx, batch.len())?;
            let mut book = Book::default();
            load_accounts(tx, &mut book, &batch.iter().map(|a| a.id).collect())?;
            let results = book.create_accounts(batch, base);
            write(tx, &book)?;
            Ok(results)
        })
    }

    fn create_transfers(&self, batch: &[Transfer]) -> Result<Vec<CreateTransferResult>, Error> {
        self.transaction(|tx| {
            let base = self.timestamps(tx, batch.len())?;
            let mut book = Book::default();
            load_due(tx, &mut book, base)?;
            book.expire(base);
            let ids: Vec<u128> = batch.iter().flat_map(|t| [t.id, t.pending_id]).filter(|&i| i != 0).collect::<BTreeSet<_>>().into_iter().collect();
            for chunk in ids.chunks(500) {
                let sql = format!("SELECT {TRANSFER_COLUMNS} FROM settle_transfers WHERE id IN ({})", in_list(1, chunk.len()));
                load_transfers(tx, &mut book, &sql, &chunk.iter().map(|&i| hex(i)).collect::<Vec<_>>())?;
            }
            let accounts = batch
                .iter()
                .flat_map(|t| [t.debit_account_id, t.credit_account_id])
                .chain(book.transfers.values().flat_map(|t| [t.debit_account_id, t.credit_account_id]))
                .collect();
            load_accounts(tx, &mut book, &accounts)?;
            let results = book.create_transfers(batch, base);
            write(tx, &book)?;
            Ok(results)
        })
    }

    fn expire_pending(&self) -> Result<Vec<u128>, Error> {
        self.transaction(|tx| {
            let now = self.timestamps(tx, 1)?;
            let mut book = Book::default();
            load_due(tx, &mut book, now)?;
            let expired = book.expire(now);
            write(tx, &book)?;
            Ok(expired)
        })
    }

    fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, Error> {
        self.transaction(|tx| {
            let mut book = Book::default();
            load_accounts(tx, &mut book, &ids.iter().copied().collect())?;
            Ok(ids.iter().filter_map(|id| book.accounts.get(id).copied()).collect())
        })
    }

    fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<(Transfer, Option<PendingStatus>)>, Error> {
        self.transaction(|tx| {
            let mut book = Book::default();
            let uniq: Vec<u128> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
            for chunk in uniq.chunks(500) {
                let sql = format!("SELECT {TRANSFER_COLUMNS} FROM settle_transfers WHERE id IN ({})", in_list(1, chunk.len()));
                load_transfers(tx, &mut book, &sql, &chunk.iter().map(|&i| hex(i)).collect::<Vec<_>>())?;
            }
            Ok(ids.iter().filter_map(|id| book.transfers.get(id).map(|t| (*t, book.pending.get(id).copied()))).collect())
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, Error> {
        self.transaction(|tx| tx.query(&format!("SELECT {ACCOUNT_COLUMNS} FROM settle_accounts ORDER BY id"), &[])?.iter().map(|r| account_row(r)).collect())
    }

    fn transfers(&self) -> Result<Vec<(Transfer, Option<PendingStatus>)>, Error> {
        self.transaction(|tx| {
            tx.query(&format!("SELECT {TRANSFER_COLUMNS} FROM settle_transfers ORDER BY timestamp"), &[])?.iter().map(|r| transfer_row(r)).collect()
        })
    }
}
