//! The job store: jobs, blobs, receipts and tokens in one database.

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::db::{Db, Val};
use crate::model::{Job, JobSpec, Mode, NewJob, Phase, Scope, State, Token};
use crate::{now_ns, Error};

fn schema(blob: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, tenant TEXT NOT NULL, token_id TEXT NOT NULL, kind TEXT NOT NULL,
            mode TEXT NOT NULL, state TEXT NOT NULL, phase TEXT, spec TEXT NOT NULL,
            timeout_s BIGINT NOT NULL, attempts BIGINT NOT NULL, max_attempts BIGINT NOT NULL,
            cancel_requested BIGINT NOT NULL, worker TEXT, created_ns BIGINT NOT NULL,
            started_ns BIGINT, finished_ns BIGINT, heartbeat_ns BIGINT, cycles BIGINT,
            segments BIGINT, error TEXT, receipt_id TEXT, result TEXT, ledger_index BIGINT, proof_ref TEXT);
        CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_ns);
        CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, created_ns);
        CREATE TABLE IF NOT EXISTS blobs (
            tenant TEXT NOT NULL, id TEXT NOT NULL, bytes {blob} NOT NULL, created_ns BIGINT NOT NULL,
            PRIMARY KEY (tenant, id));
        CREATE TABLE IF NOT EXISTS job_blobs (job_id TEXT NOT NULL, tenant TEXT NOT NULL, blob_id TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS job_blobs_by_blob ON job_blobs (tenant, blob_id);
        CREATE TABLE IF NOT EXISTS receipts (
            tenant TEXT NOT NULL, id TEXT NOT NULL, job_id TEXT NOT NULL, bytes {blob} NOT NULL,
            created_ns BIGINT NOT NULL, PRIMARY KEY (tenant, id));
        CREATE TABLE IF NOT EXISTS appends (
            token_id TEXT NOT NULL, tenant TEXT NOT NULL, first_index BIGINT NOT NULL, count BIGINT NOT NULL,
            at_ns BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS idempotency (
            tenant TEXT NOT NULL, key TEXT NOT NULL, request_sha256 TEXT NOT NULL, tree_size_before BIGINT NOT NULL,
            response TEXT, created_ns BIGINT NOT NULL, PRIMARY KEY (tenant, key));
        CREATE TABLE IF NOT EXISTS tokens (
            id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL, tenant TEXT NOT NULL,
            created_ns BIGINT NOT NULL, revoked_ns BIGINT);"
    )
}

const JOB_COLUMNS: &str = "id, tenant, token_id, kind, mode, state, phase, spec, timeout_s, attempts, max_attempts, \
    cancel_requested, worker, created_ns, started_ns, finished_ns, heartbeat_ns, cycles, segments, error, receipt_id, result, ledger_index, proof_ref";

/// The outcome of [`Store::submit`].
#[derive(Debug)]
pub enum Submitted {
    /// Queued.
    Queued(Box<Job>),
    /// The queue already holds `queued` jobs, the capacity given.
    Full {
        /// Jobs waiting.
        queued: u64,
    },
}

/// What [`Store::recover`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Running jobs put back in the queue.
    pub requeued: u64,
    /// Running jobs failed because they had used every attempt.
    pub failed: u64,
    /// Running jobs whose cancel was pending: now cancelled.
    pub cancelled: u64,
}

/// Queue figures for health reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Jobs waiting.
    pub queued: u64,
    /// Jobs running.
    pub running: u64,
    /// Jobs finished with a result (kept until the store's cleanup).
    pub succeeded: u64,
    /// Jobs finished with an error, or out of attempts.
    pub failed: u64,
    /// Jobs killed after their time limit.
    pub timed_out: u64,
    /// Jobs cancelled by their owner or an admin.
    pub cancelled: u64,
    /// Mean wall time of the last (up to) 20 succeeded jobs, in seconds.
    pub recent_job_seconds: Option<f64>,
    /// Cycles per second over the last (up to) 20 succeeded proofs.
    pub recent_cycles_per_second: Option<f64>,
}

impl Stats {
    /// Seconds a job submitted now would wait: the mean of recent job
    /// times, times the jobs ahead of it per worker. `None` before any job
    /// has finished.
    pub fn estimated_wait_seconds(&self, workers: usize) -> Option<f64> {
        let per_job = self.recent_job_seconds?;
        Some(per_job * (self.queued + self.running) as f64 / workers.max(1) as f64)
    }
}

/// A final state reported by a worker.
#[derive(Clone, Debug)]
pub struct Finish {
    /// `succeeded`, `failed`, `timed_out` or `cancelled`.
    pub state: State,
    /// The error text for the last three.
    pub error: Option<String>,
    /// Total cycles, if known.
    pub cycles: Option<u64>,
    /// Segments, if known.
    pub segments: Option<u64>,
    /// The receipt's ID, if one was stored.
    pub receipt_id: Option<String>,
    /// The run's JSON result.
    pub result: Option<serde_json::Value>,
    /// The receipt came from the prover's receipt cache: nothing was
    /// proved for this job (see `ProveReport::cached`).
    pub cached: bool,
}

/// What [`Store::claim_idempotency_key`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Idempotent {
    /// The key is new: it is now pending, held by the caller.
    New,
    /// The key was used with a different request body.
    Mismatch,
    /// The same request under this key was answered with this response.
    Done(serde_json::Value),
    /// The same request under this key started when the log had
    /// `tree_size_before` entries, and no answer was stored: it is still
    /// running, or its process stopped before answering.
    Pending {
        /// The log's size when that request started.
        tree_size_before: u64,
    },
}

/// The persistent job store. `Send + Sync`; share it with an `Arc`.
pub struct Store {
    db: Db,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt { table: "jobs", what: what.into() }
}

fn parse<T: std::str::FromStr<Err = String>>(s: String, name: &str) -> Result<T, Error> {
    s.parse().map_err(|e: String| corrupt(format!("{name}: {e}")))
}

/// A `COUNT(*)` value: a non-negative integer, or the store is corrupt.
fn count_value(v: &Val, what: &str) -> Result<u64, Error> {
    v.int()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Error::Corrupt { table: "jobs", what: format!("{what}: count {v:?} is not a non-negative integer") })
}

fn job_from_row(row: Vec<Val>) -> Result<Job, Error> {
    let mut it = row.into_iter();
    let mut next = || it.next().unwrap_or(Val::Null);
    let text = |v: Val, name: &str| v.text().ok_or_else(|| corrupt(format!("{name} is not text")));
    let int = |v: Val, name: &str| v.int().ok_or_else(|| corrupt(format!("{name} is not an integer")));
    let id = text(next(), "id")?;
    let tenant = text(next(), "tenant")?;
    let token_id = text(next(), "token_id")?;
    let kind = text(next(), "kind")?;
    let mode: Mode = parse(text(next(), "mode")?, "mode")?;
    let state: State = parse(text(next(), "state")?, "state")?;
    let phase: Option<Phase> = next().text().map(|p| parse(p, "phase")).transpose()?;
    let spec: JobSpec = serde_json::from_str(&text(next(), "spec")?).map_err(|e| corrupt(format!("spec: {e}")))?;
    let timeout_s = int(next(), "timeout_s")? as u64;
    let attempts = int(next(), "attempts")? as u32;
    let max_attempts = int(next(), "max_attempts")? as u32;
    let cancel_requested = int(next(), "cancel_requested")? != 0;
    let worker = next().text();
    let created_ns = int(next(), "created_ns")?;
    let started_ns = next().int();
    let finished_ns = next().int();
    let heartbeat_ns = next().int();
    let cycles = next().int().map(|c| c as u64);
    let segments = next().int().map(|c| c as u64);
    let error = next().text();
    let receipt_id = next().text();
    let result = next().text().map(|r| serde_json::from_str(&r)).transpose().map_err(|e| corrupt(format!("result: {e}")))?;
    let ledger_index = next().int().map(|i| i as u64);
    let proof_ref = next().text();
    Ok(Job {
        id,
        tenant,
        token_id,
        kind,
        mode,
        state,
        phase,
        spec,
        timeout_s,
        attempts,
        max_attempts,
        cancel_requested,
        worker,
        created_ns,
        started_ns,
        finished_ns,
        heartbeat_ns,
        cycles,
        segments,
        error,
        receipt_id,
        result,
        ledger_index,
        proof_ref,
    })
}

impl Store {
    /// Opens (creating the schema if needed) the store at `spec`: a
    /// `postgres://user@host:port/db` URL (no TLS), or a SQLite file path.
    ///
    /// # Errors
    /// [`Error::Config`] for an unparsable URL, [`Error::Db`] otherwise.
    pub fn open(spec: &str) -> Result<Store, Error> {
        let db = Db::open(spec, schema)?;
        // Stores made before proof events were recorded, or before
        // receipts went to content-addressed storage, lack these columns.
        for (column, ty) in [("ledger_index", "BIGINT"), ("proof_ref", "TEXT")] {
            if db.query(&format!("SELECT {column} FROM jobs LIMIT 0"), &[]).is_err() {
                db.exec(&format!("ALTER TABLE jobs ADD COLUMN {column} {ty}"), &[])?;
            }
        }
        Ok(Store { db })
    }

    /// Whether the store is PostgreSQL (shared by workers on several machines).
    pub fn is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    fn jobs(&self, where_: &str, params: &[Val]) -> Result<Vec<Job>, Error> {
        let rows = self.db.query(&format!("SELECT {JOB_COLUMNS} FROM jobs {where_}"), params)?;
        rows.into_iter().map(job_from_row).collect()
    }

    fn count(&self, sql: &str, params: &[Val]) -> Result<u64, Error> {
        let rows = self.db.query(sql, params)?;
        let n = rows.first().and_then(|r| r.first()).ok_or_else(|| Error::Db(format!("`{sql}` returned no row")))?;
        count_value(n, sql)
    }

    /// Enqueues `new` unless `capacity` jobs are already queued. The blobs its
    /// data names must exist for its tenant (the caller checks with
    /// [`Store::has_blob`]). On PostgreSQL, concurrent submitters may
    /// overshoot the capacity by their number.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn submit(&self, new: &NewJob, capacity: Option<u64>) -> Result<Submitted, Error> {
        if let Some(cap) = capacity {
            let queued = self.count("SELECT COUNT(*) FROM jobs WHERE state = 'queued'", &[])?;
            if queued >= cap {
                return Ok(Submitted::Full { queued });
            }
        }
        let id = random_hex(16);
        let spec = serde_json::to_string(&new.spec).map_err(|e| Error::Db(e.to_string()))?;
        let now = now_ns();
        for d in &new.spec.data {
            self.db.exec(
                "INSERT INTO job_blobs (job_id, tenant, blob_id) VALUES ($1, $2, $3)",
                &[id.as_str().into(), new.tenant.as_str().into(), d.blob.as_str().into()],
            )?;
        }
        self.db.exec(
            "INSERT INTO jobs (id, tenant, token_id, kind, mode, state, spec, timeout_s, attempts, max_attempts,
             cancel_requested, created_ns) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, 0, $8, 0, $9)",
            &[
                id.as_str().into(),
                new.tenant.as_str().into(),
                new.token_id.as_str().into(),
                new.kind.as_str().into(),
                new.mode.as_str().into(),
                spec.into(),
                Val::Int(new.timeout_s as i64),
                Val::Int(i64::from(new.max_attempts)),
                Val::Int(now),
            ],
        )?;
        let job = self.get(&id)?.ok_or_else(|| Error::Db("a job vanished right after its insert".into()))?;
        Ok(Submitted::Queued(Box::new(job)))
    }

    /// The job `id`, if it exists.
    ///
    /// # Errors
    /// [`Error::Db`], or [`Error::Corrupt`] for an unreadable row.
    pub fn get(&self, id: &str) -> Result<Option<Job>, Error> {
        Ok(self.jobs("WHERE id = $1", &[id.into()])?.pop())
    }

    /// Jobs newest first, at most `limit`; only `tenant`'s if given, only in
    /// `state` if given.
    ///
    /// # Errors
    /// [`Error::Db`], or [`Error::Corrupt`] for an unreadable row.
    pub fn list(&self, tenant: Option<&str>, state: Option<State>, limit: u32) -> Result<Vec<Job>, Error> {
        self.jobs(
            "WHERE (CAST($1 AS TEXT) IS NULL OR tenant = $1) AND (CAST($2 AS TEXT) IS NULL OR state = $2) ORDER BY created_ns DESC, id LIMIT $3",
            &[tenant.into(), state.map(State::as_str).into(), Val::Int(i64::from(limit))],
        )
    }

    /// Cancels job `id`: a queued job at once; a running one is flagged and
    /// its worker kills the prover at its next heartbeat. A job in a final
    /// state is left as it is. Returns the job after the change.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn cancel(&self, id: &str) -> Result<Option<Job>, Error> {
        let now = now_ns();
        self.db.exec(
            "UPDATE jobs SET state = 'cancelled', finished_ns = $1, error = 'cancelled before it started'
             WHERE id = $2 AND state = 'queued'",
            &[Val::Int(now), id.into()],
        )?;
        self.db.exec("UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND state = 'running'", &[id.into()])?;
        self.get(id)
    }

    /// Claims the oldest queued job for `worker`: it becomes `running`
    /// (phase `executing`) with one more attempt. On PostgreSQL the row is
    /// taken with `FOR UPDATE SKIP LOCKED`, so concurrent workers never
    /// claim the same job.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn claim(&self, worker: &str) -> Result<Option<Job>, Error> {
        let lock = if self.db.is_postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
        let now = now_ns();
        let rows = self.db.query(
            &format!(
                "UPDATE jobs SET state = 'running', phase = 'executing', worker = $1, started_ns = $2,
                 heartbeat_ns = $2, attempts = attempts + 1
                 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_ns, id LIMIT 1{lock})
                 RETURNING {JOB_COLUMNS}"
            ),
            &[worker.into(), Val::Int(now)],
        )?;
        rows.into_iter().next().map(job_from_row).transpose()
    }

    /// Records progress of `id` held by `worker`. Returns `Some(cancel
    /// requested)`, or `None` if the job is no longer this worker's (it was
    /// re-queued after a missed heartbeat).
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn heartbeat(&self, id: &str, worker: &str, phase: Phase, cycles: Option<u64>, segments: Option<u64>) -> Result<Option<bool>, Error> {
        let rows = self.db.query(
            "UPDATE jobs SET heartbeat_ns = $1, phase = $2, cycles = COALESCE($3, cycles), segments = COALESCE($4, segments)
             WHERE id = $5 AND worker = $6 AND state = 'running' RETURNING cancel_requested",
            &[Val::Int(now_ns()), phase.as_str().into(), cycles.map(|c| c as i64).into(), segments.map(|s| s as i64).into(), id.into(), worker.into()],
        )?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Val::int).map(|c| c != 0))
    }

    /// Moves `id` held by `worker` to its final state. Returns false (and
    /// changes nothing) if the job is no longer this worker's.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn finish(&self, id: &str, worker: &str, f: &Finish) -> Result<bool, Error> {
        let result = f.result.as_ref().map(serde_json::Value::to_string);
        let n = self.db.exec(
            "UPDATE jobs SET state = $1, phase = NULL, finished_ns = $2, error = $3, cycles = COALESCE($4, cycles),
             segments = COALESCE($5, segments), receipt_id = $6, result = $7
             WHERE id = $8 AND worker = $9 AND state = 'running'",
            &[
                f.state.as_str().into(),
                Val::Int(now_ns()),
                f.error.clone().into(),
                f.cycles.map(|c| c as i64).into(),
                f.segments.map(|s| s as i64).into(),
                f.receipt_id.clone().into(),
                result.into(),
                id.into(),
                worker.into(),
            ],
        )?;
        Ok(n == 1)
    }

    /// Recovers running jobs whose worker has not sent a heartbeat since
    /// `stale_before_ns` (all running jobs, when a single-process server
    /// restarts): a pending cancel completes, a job with attempts left is
    /// re-queued, the others fail with "retry limit reached".
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn recover(&self, stale_before_ns: i64) -> Result<Recovered, Error> {
        let now = Val::Int(now_ns());
        let stale = Val::Int(stale_before_ns);
        let cancelled = self.db.exec(
            "UPDATE jobs SET state = 'cancelled', phase = NULL, finished_ns = $1, error = 'cancelled; its worker stopped'
             WHERE state = 'running' AND heartbeat_ns < $2 AND cancel_requested = 1",
            &[now.clone(), stale.clone()],
        )?;
        let failed = self.db.exec(
            "UPDATE jobs SET state = 'failed', phase = NULL, finished_ns = $1,
             error = 'retry limit reached: its worker stopped during every attempt'
             WHERE state = 'running' AND heartbeat_ns < $2 AND attempts >= max_attempts",
            &[now, stale.clone()],
        )?;
        let requeued = self.db.exec(
            "UPDATE jobs SET state = 'queued', phase = NULL, worker = NULL
             WHERE state = 'running' AND heartbeat_ns < $1",
            &[stale],
        )?;
        Ok(Recovered { requeued, failed, cancelled })
    }

    /// Queue length, running jobs and recent speed.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn stats(&self) -> Result<Stats, Error> {
        let rows = self.db.query("SELECT state, COUNT(*) FROM jobs GROUP BY state", &[])?;
        let mut s = Stats::default();
        for r in rows {
            let mut r = r.into_iter();
            let state = r.next().and_then(Val::text).ok_or_else(|| corrupt("a job without a state"))?;
            let n = count_value(&r.next().unwrap_or(Val::Null), "the job counts")?;
            let slot = match parse::<State>(state, "state")? {
                State::Queued => &mut s.queued,
                State::Running => &mut s.running,
                State::Succeeded => &mut s.succeeded,
                State::Failed => &mut s.failed,
                State::TimedOut => &mut s.timed_out,
                State::Cancelled => &mut s.cancelled,
            };
            *slot = n;
        }
        let recent = self.db.query(
            "SELECT finished_ns - started_ns, cycles, mode FROM jobs WHERE state = 'succeeded'
             ORDER BY finished_ns DESC LIMIT 20",
            &[],
        )?;
        let secs: Vec<f64> = recent.iter().filter_map(|r| r[0].int()).map(|ns| ns as f64 / 1e9).collect();
        if !secs.is_empty() {
            s.recent_job_seconds = Some(secs.iter().sum::<f64>() / secs.len() as f64);
        }
        let (mut cycles, mut t) = (0f64, 0f64);
        for r in &recent {
            if let (Some(ns), Some(c), Val::Text(m)) = (r[0].int(), r[1].int(), &r[2]) {
                if m == Mode::Prove.as_str() {
                    cycles += c as f64;
                    t += ns as f64 / 1e9;
                }
            }
        }
        if t > 0.0 {
            s.recent_cycles_per_second = Some(cycles / t);
        }
        Ok(s)
    }

    /// Stores `bytes` for `tenant`; returns its ID, the SHA-256 (64 hex).
    /// Storing the same bytes again is a no-op.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn put_blob(&self, tenant: &str, bytes: &[u8]) -> Result<String, Error> {
        let id = sha256_hex(bytes);
        self.db.exec(
            "INSERT INTO blobs (tenant, id, bytes, created_ns) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[tenant.into(), id.as_str().into(), Val::Blob(bytes.to_vec()), Val::Int(now_ns())],
        )?;
        Ok(id)
    }

    /// Whether `tenant` has a blob `id`.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn has_blob(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        Ok(self.count("SELECT COUNT(*) FROM blobs WHERE tenant = $1 AND id = $2", &[tenant.into(), id.into()])? > 0)
    }

    /// The bytes of `tenant`'s blob `id`.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn blob(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, Error> {
        let rows = self.db.query("SELECT bytes FROM blobs WHERE tenant = $1 AND id = $2", &[tenant.into(), id.into()])?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).and_then(Val::blob))
    }

    /// Stores a receipt made by job `job_id` for `tenant`; `id` is its SHA-256.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn put_receipt(&self, tenant: &str, id: &str, job_id: &str, bytes: &[u8]) -> Result<(), Error> {
        self.db.exec(
            "INSERT INTO receipts (tenant, id, job_id, bytes, created_ns) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[tenant.into(), id.into(), job_id.into(), Val::Blob(bytes.to_vec()), Val::Int(now_ns())],
        )?;
        Ok(())
    }

    /// The receipt `id`: `tenant`'s, or anyone's when `tenant` is `None`.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn receipt(&self, tenant: Option<&str>, id: &str) -> Result<Option<Vec<u8>>, Error> {
        let rows =
            self.db.query("SELECT bytes FROM receipts WHERE (CAST($1 AS TEXT) IS NULL OR tenant = $1) AND id = $2 LIMIT 1", &[tenant.into(), id.into()])?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).and_then(Val::blob))
    }

    /// Deletes jobs that reached a final state before `jobs_before_ns`
    /// (with their blob links), receipts created before `receipts_before_ns`,
    /// and blobs older than `jobs_before_ns` that no queued or running job
    /// needs. Returns `(jobs, receipts, blobs)` deleted.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn cleanup(&self, jobs_before_ns: Option<i64>, receipts_before_ns: Option<i64>) -> Result<(u64, u64, u64), Error> {
        let (mut jobs, mut receipts, mut blobs) = (0, 0, 0);
        if let Some(t) = jobs_before_ns {
            let done = "state NOT IN ('queued', 'running') AND finished_ns < $1";
            self.db.exec(&format!("DELETE FROM job_blobs WHERE job_id IN (SELECT id FROM jobs WHERE {done})"), &[Val::Int(t)])?;
            jobs = self.db.exec(&format!("DELETE FROM jobs WHERE {done}"), &[Val::Int(t)])?;
            self.db.exec("DELETE FROM idempotency WHERE created_ns < $1 AND response IS NOT NULL", &[Val::Int(t)])?;
            blobs = self.db.exec(
                "DELETE FROM blobs WHERE created_ns < $1 AND NOT EXISTS
                 (SELECT 1 FROM job_blobs l WHERE l.tenant = blobs.tenant AND l.blob_id = blobs.id)",
                &[Val::Int(t)],
            )?;
        }
        if let Some(t) = receipts_before_ns {
            receipts = self.db.exec("DELETE FROM receipts WHERE created_ns < $1", &[Val::Int(t)])?;
        }
        Ok((jobs, receipts, blobs))
    }

    /// Records that token `token_id` of `tenant` appended `count` ledger
    /// entries from leaf index `first_index`.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn record_append(&self, token_id: &str, tenant: &str, first_index: u64, count: u64) -> Result<(), Error> {
        self.db.exec(
            "INSERT INTO appends (token_id, tenant, first_index, count, at_ns) VALUES ($1, $2, $3, $4, $5)",
            &[token_id.into(), tenant.into(), Val::Int(first_index as i64), Val::Int(count as i64), Val::Int(now_ns())],
        )?;
        Ok(())
    }

    /// Succeeded proof jobs whose proof event is not yet in the ledger
    /// (`ledger_index` unset), oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Db`], or [`Error::Corrupt`] for an unreadable row.
    pub fn unrecorded_proofs(&self, limit: u32) -> Result<Vec<Job>, Error> {
        self.jobs(
            "WHERE state = 'succeeded' AND mode = 'prove' AND receipt_id IS NOT NULL AND ledger_index IS NULL
             ORDER BY finished_ns, id LIMIT $1",
            &[Val::Int(i64::from(limit))],
        )
    }

    /// Records that job `id`'s proof event is the ledger's entry `index`.
    /// Only the first call for a job takes effect; returns whether this one did.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn set_recorded(&self, id: &str, index: u64) -> Result<bool, Error> {
        Ok(self.db.exec("UPDATE jobs SET ledger_index = $1 WHERE id = $2 AND ledger_index IS NULL", &[Val::Int(index as i64), id.into()])? == 1)
    }

    /// Recorded proof jobs (`ledger_index` set) whose receipt is not yet in
    /// content-addressed storage (`proof_ref` unset), oldest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// [`Error::Db`], or [`Error::Corrupt`] for an unreadable row.
    pub fn unstored_proofs(&self, limit: u32) -> Result<Vec<Job>, Error> {
        self.jobs(
            "WHERE ledger_index IS NOT NULL AND proof_ref IS NULL AND receipt_id IS NOT NULL
             ORDER BY finished_ns, id LIMIT $1",
            &[Val::Int(i64::from(limit))],
        )
    }

    /// Records that job `id`'s receipt is stored at `reference` (a Blossom
    /// URL or `ipfs://<CID>`). Only the first call for a job takes effect;
    /// returns whether this one did.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn set_stored(&self, id: &str, reference: &str) -> Result<bool, Error> {
        Ok(self.db.exec("UPDATE jobs SET proof_ref = $1 WHERE id = $2 AND proof_ref IS NULL", &[reference.into(), id.into()])? == 1)
    }

    /// Claims idempotency key `key` of `tenant` for a request whose body
    /// has SHA-256 `request_sha256`, made when the log had `tree_size`
    /// entries. If the key is new, it is stored as pending and
    /// [`Idempotent::New`] is returned; otherwise what was stored.
    ///
    /// # Errors
    /// [`Error::Db`], or [`Error::Corrupt`] for an unreadable row.
    pub fn claim_idempotency_key(&self, tenant: &str, key: &str, request_sha256: &str, tree_size: u64) -> Result<Idempotent, Error> {
        let n = self.db.exec(
            "INSERT INTO idempotency (tenant, key, request_sha256, tree_size_before, created_ns) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
            &[tenant.into(), key.into(), request_sha256.into(), Val::Int(tree_size as i64), Val::Int(now_ns())],
        )?;
        if n == 1 {
            return Ok(Idempotent::New);
        }
        let rows =
            self.db.query("SELECT request_sha256, tree_size_before, response FROM idempotency WHERE tenant = $1 AND key = $2", &[tenant.into(), key.into()])?;
        let bad = |w: &str| Error::Corrupt { table: "idempotency", what: w.to_owned() };
        let mut r = rows.into_iter().next().ok_or_else(|| bad("a key vanished after its insert conflicted"))?.into_iter();
        let stored = r.next().and_then(Val::text).ok_or_else(|| bad("request_sha256"))?;
        let before = r.next().and_then(|v| v.int()).and_then(|i| u64::try_from(i).ok()).ok_or_else(|| bad("tree_size_before"))?;
        let response = r.next().and_then(Val::text);
        Ok(if stored != request_sha256 {
            Idempotent::Mismatch
        } else {
            match response {
                Some(text) => Idempotent::Done(serde_json::from_str(&text).map_err(|e| bad(&format!("response: {e}")))?),
                None => Idempotent::Pending { tree_size_before: before },
            }
        })
    }

    /// Stores the response of the request that claimed `key`.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn complete_idempotency_key(&self, tenant: &str, key: &str, response: &serde_json::Value) -> Result<(), Error> {
        self.db.exec("UPDATE idempotency SET response = $1 WHERE tenant = $2 AND key = $3", &[response.to_string().into(), tenant.into(), key.into()])?;
        Ok(())
    }

    /// Forgets a pending key whose request failed before changing anything,
    /// so that a retry runs it again.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn release_idempotency_key(&self, tenant: &str, key: &str) -> Result<(), Error> {
        self.db.exec("DELETE FROM idempotency WHERE tenant = $1 AND key = $2 AND response IS NULL", &[tenant.into(), key.into()])?;
        Ok(())
    }

    /// Creates a token for `tenant` with `scope`; returns it and its secret,
    /// `zkaudit_<64 hex>`. Only the secret's SHA-256 is stored: the secret
    /// cannot be shown again.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn create_token(&self, scope: Scope, tenant: &str) -> Result<(Token, String), Error> {
        let secret = format!("zkaudit_{}", random_hex(32));
        let token = Token { id: random_hex(8), scope, tenant: tenant.to_owned(), created_ns: now_ns() };
        self.db.exec(
            "INSERT INTO tokens (id, hash, scope, tenant, created_ns) VALUES ($1, $2, $3, $4, $5)",
            &[token.id.as_str().into(), sha256_hex(secret.as_bytes()).into(), scope.as_str().into(), tenant.into(), Val::Int(token.created_ns)],
        )?;
        Ok((token, secret))
    }

    /// The unrevoked token whose secret is `secret`.
    ///
    /// # Errors
    /// [`Error::Db`], or [`Error::Corrupt`] for an unknown stored scope.
    pub fn token(&self, secret: &str) -> Result<Option<Token>, Error> {
        let rows = self
            .db
            .query("SELECT id, scope, tenant, created_ns FROM tokens WHERE hash = $1 AND revoked_ns IS NULL", &[sha256_hex(secret.as_bytes()).into()])?;
        let Some(r) = rows.into_iter().next() else { return Ok(None) };
        let mut r = r.into_iter();
        let bad = |w: &str| Error::Corrupt { table: "tokens", what: w.to_owned() };
        let id = r.next().and_then(Val::text).ok_or_else(|| bad("id"))?;
        let scope = r.next().and_then(Val::text).ok_or_else(|| bad("scope"))?.parse().map_err(|e: String| bad(&e))?;
        let tenant = r.next().and_then(Val::text).ok_or_else(|| bad("tenant"))?;
        let created_ns = r.next().and_then(|v| v.int()).ok_or_else(|| bad("created_ns"))?;
        Ok(Some(Token { id, scope, tenant, created_ns }))
    }

    /// Revokes token `id`; returns whether it existed and was live.
    ///
    /// # Errors
    /// [`Error::Db`].
    pub fn revoke_token(&self, id: &str) -> Result<bool, Error> {
        Ok(self.db.exec("UPDATE tokens SET revoked_ns = $1 WHERE id = $2 AND revoked_ns IS NULL", &[Val::Int(now_ns()), id.into()])? == 1)
    }
}
