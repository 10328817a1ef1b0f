//! The sink every collector writes its events to.
//!
//! [`Sink::send`] hands an event to a background thread that cuts the
//! stream into batches (by count, bytes and a linger time) and writes each
//! batch to the [`Destination`]:
//!
//! * a local ledger: one group commit per batch through
//!   `zkaudit_app::ledger::Ledger` (the index follows);
//! * a server: the batch is first made durable in the [`Spool`], then sent
//!   as `POST {url}/v1/log/entries` (JSON Lines) with its own
//!   `Idempotency-Key`; it leaves the spool only when the server answers
//!   2xx. While the server is unreachable or answers 5xx, 429 or 409
//!   ("still appending") the batches wait in order and are retried with
//!   exponential backoff (100 ms doubling to 5 s). A 4xx that a retry cannot
//!   fix (bad token, malformed batch) stops the sink with that answer; the
//!   batch stays spooled.
//!
//! When the channel to the thread is full, [`Sink::send`] blocks: the
//! collector slows down rather than dropping events. When the spool is at
//! its size cap a batch is not kept: its events are lost, and a
//! `collector_gap` event (`spool_full`, with the count) is spooled as soon
//! as there is room.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use zkaudit_app::ledger::{IndexFollower, Ledger};
use zkaudit_event::{Digest, Event, Layer, MAX_ENTRY_BYTES};
use zkaudit_tlog::Appended;

use crate::shape::{digest_bytes, gap, GapReason};
use crate::spool::{Spool, SpoolError};

/// Where a sink's events go.
#[derive(Clone, Debug)]
pub enum Destination {
    /// A local ledger directory (made by `zkaudit log init`), with its
    /// index (`None`: the ledger's own `index.sqlite`).
    Ledger {
        /// The ledger directory.
        dir: PathBuf,
        /// Index spec: a SQLite path or a `postgres://` URL.
        index: Option<String>,
    },
    /// A zkaudit server, through a spool directory.
    Server {
        /// Base URL, e.g. `http://127.0.0.1:8080`.
        url: String,
        /// Bearer token with the `submit` scope.
        token: String,
        /// The spool directory.
        spool: PathBuf,
    },
}

/// Batching and delivery settings.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Name of the collector (`observer.type` of its gap events).
    pub collector: String,
    /// Layer of its gap events.
    pub layer: Layer,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Most bytes (entry bytes plus newlines) in one batch; keep under the
    /// server's body limit.
    pub max_batch_bytes: usize,
    /// Longest an event waits for its batch to fill.
    pub linger: Duration,
    /// Largest spool, in bytes, before batches are dropped (and a gap recorded).
    pub spool_cap_bytes: u64,
    /// How long [`Sink::finish`] keeps retrying a server before leaving
    /// the rest in the spool for the next run.
    pub drain_timeout: Duration,
    /// Events the channel to the batching thread holds before `send` blocks.
    pub channel_capacity: usize,
}

impl SinkOptions {
    /// Defaults for collector `collector` at `layer`: batches of up to
    /// 4,096 events or 4 MiB, 200 ms linger, a 1 GiB spool, 60 s drain.
    pub fn new(collector: &str, layer: Layer) -> Self {
        Self {
            collector: collector.to_owned(),
            layer,
            max_batch_events: 4096,
            max_batch_bytes: 4 << 20,
            linger: Duration::from_millis(200),
            spool_cap_bytes: 1 << 30,
            drain_timeout: Duration::from_secs(60),
            channel_capacity: 1 << 16,
        }
    }
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The local ledger failed; the batch was not appended.
    #[error(transparent)]
    Ledger(#[from] zkaudit_app::Error),
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The server refused a batch in a way a retry cannot fix; it stays in
    /// the spool.
    #[error("server refused batch {key} (kept in spool {spool}) with HTTP {status}: {body}")]
    Refused {
        /// The batch's idempotency key.
        key: String,
        /// The spool directory.
        spool: PathBuf,
        /// HTTP status.
        status: u16,
        /// The server's answer.
        body: String,
    },
    /// An event is larger than a ledger entry can be.
    #[error("event of type {kind} is {len} bytes; a ledger entry holds at most {MAX_ENTRY_BYTES}")]
    TooLarge {
        /// The event's type.
        kind: String,
        /// Its size in bytes.
        len: usize,
    },
    /// The event could not be encoded.
    #[error("encoding an event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The batching thread has stopped (after an error that `finish` reports).
    #[error("the sink has stopped; `finish` tells why")]
    Stopped,
}

/// What a sink did, from [`Sink::finish`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Events handed to the sink.
    pub events: u64,
    /// Events the destination acknowledged (gap events included).
    pub appended: u64,
    /// Batches the destination acknowledged.
    pub batches: u64,
    /// Deliveries that failed and were retried later.
    pub retries: u64,
    /// Events lost because the spool was full (each counted in a gap event).
    pub lost: u64,
    /// Batches still waiting in the spool (sent by the next run).
    pub left_in_spool: u64,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// Leaf index of the first event appended (local ledger, or as the server answered).
    pub first_index: Option<u64>,
    /// Tree size after the last acknowledged batch.
    pub tree_size: Option<u64>,
}

/// A running sink; call [`Sink::finish`] to flush and stop it.
pub struct Sink {
    tx: Option<SyncSender<Queued>>,
    worker: Option<JoinHandle<Result<Report, SinkError>>>,
    events: u64,
}

impl Sink {
    /// Opens `dest` (checking that a ledger is a ledger, or taking the
    /// spool's lock, and sending what an earlier run left in it) and starts
    /// the batching thread.
    ///
    /// # Errors
    /// [`SinkError::Ledger`] or [`SinkError::Spool`].
    pub fn open(dest: Destination, opts: SinkOptions) -> Result<Sink, SinkError> {
        let target: Box<dyn Target> = match dest {
            Destination::Ledger { dir, index } => {
                let ledger = Ledger::open(&dir, index.as_deref())?;
                let indexer = IndexFollower::spawn(&dir, ledger.index_spec(), INDEX_EVERY)?;
                Box::new(LedgerTarget { ledger, report: Report::default(), _indexer: indexer })
            }
            Destination::Server { url, token, spool } => Box::new(ServerTarget::new(url, token, Spool::open(&spool)?, &opts)),
        };
        let (tx, rx) = mpsc::sync_channel(opts.channel_capacity);
        let worker = std::thread::Builder::new()
            .name("zkaudit-sink".into())
            .spawn(move || batcher(target, rx, opts))
            .map_err(|source| SinkError::Spool(SpoolError::Io { path: PathBuf::from("<thread>"), source }))?;
        Ok(Sink { tx: Some(tx), worker: Some(worker), events: 0 })
    }

    /// Queues `event`; blocks while the queue is full. Returns the event's
    /// digest (SHA-256 of its entry bytes), the name later events give it
    /// in `parents`.
    ///
    /// # Errors
    /// [`SinkError::TooLarge`] (nothing queued), [`SinkError::Stopped`] if
    /// the sink has failed.
    pub fn send(&mut self, event: &Event) -> Result<Digest, SinkError> {
        let bytes = event.canonical_bytes()?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(SinkError::TooLarge { kind: event.kind.clone(), len: bytes.len() });
        }
        let digest = digest_bytes(&bytes);
        self.tx.as_ref().ok_or(SinkError::Stopped)?.send(Queued { bytes, durable: None }).map_err(|_| SinkError::Stopped)?;
        self.events += 1;
        Ok(digest)
    }

    /// Like [`Sink::send`], and calls `durable` once the batch holding the
    /// event is durable: appended to the local ledger, or written to the
    /// spool (and perhaps already delivered) for a server. For callers
    /// that must not act on an event before it is kept, such as a gateway
    /// that serves what it recorded. `durable` gets the error instead if
    /// the batch failed; it is dropped uncalled if the sink stops first.
    ///
    /// # Errors
    /// As [`Sink::send`].
    pub fn send_then(&mut self, event: &Event, durable: impl FnOnce(Result<(), String>) + Send + 'static) -> Result<Digest, SinkError> {
        let bytes = event.canonical_bytes()?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(SinkError::TooLarge { kind: event.kind.clone(), len: bytes.len() });
        }
        let digest = digest_bytes(&bytes);
        let q = Queued { bytes, durable: Some(Box::new(durable)) };
        self.tx.as_ref().ok_or(SinkError::Stopped)?.send(q).map_err(|_| SinkError::Stopped)?;
        self.events += 1;
        Ok(digest)
    }

    /// Flushes the last batch, waits for delivery (up to the drain
    /// timeout for a server) and stops.
    ///
    /// # Errors
    /// The error that stopped the sink, if one did.
    pub fn finish(mut self) -> Result<Report, SinkError> {
        self.tx = None;
        let worker = self.worker.take().ok_or(SinkError::Stopped)?;
        let mut report = worker.join().map_err(|_| SinkError::Stopped)??;
        report.events = self.events;
        Ok(report)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// A destination as the batching thread sees it.
trait Target: Send {
    /// Takes one batch of entry bytes.
    fn write(&mut self, batch: Vec<Vec<u8>>) -> Result<(), SinkError>;
    /// When it next wants [`Target::poll`] called, if ever.
    fn wake_at(&self) -> Option<Instant>;
    /// Retries delivery if one is due.
    fn poll(&mut self) -> Result<(), SinkError>;
    /// Delivers what it can within `timeout` and reports.
    fn finish(self: Box<Self>, timeout: Duration) -> Result<Report, SinkError>;
}

/// One event on its way to the batching thread, and whom to tell once it is durable.
struct Queued {
    bytes: Vec<u8>,
    durable: Option<Durable>,
}

/// A [`Sink::send_then`] callback.
type Durable = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Writes `batch` and tells its callbacks how that went.
fn flush(target: &mut dyn Target, batch: &mut Vec<Vec<u8>>, waiting: &mut Vec<Durable>) -> Result<(), SinkError> {
    let result = target.write(std::mem::take(batch));
    let told = result.as_ref().map(|_| ()).map_err(ToString::to_string);
    for d in waiting.drain(..) {
        d(told.clone());
    }
    result
}

fn batcher(mut target: Box<dyn Target>, rx: Receiver<Queued>, o: SinkOptions) -> Result<Report, SinkError> {
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut waiting: Vec<Durable> = Vec::new();
    let mut bytes = 0usize;
    let mut started: Option<Instant> = None;
    loop {
        let deadline = match (started, target.wake_at()) {
            (Some(s), Some(w)) => Some(w.min(s + o.linger)),
            (Some(s), None) => Some(s + o.linger),
            (None, w) => w,
        };
        let got = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(q) => {
                started.get_or_insert_with(Instant::now);
                bytes += q.bytes.len() + 1;
                batch.push(q.bytes);
                waiting.extend(q.durable);
                if batch.len() >= o.max_batch_events || bytes >= o.max_batch_bytes {
                    flush(target.as_mut(), &mut batch, &mut waiting)?;
                    (bytes, started) = (0, None);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if started.is_some_and(|s| s.elapsed() >= o.linger) {
                    flush(target.as_mut(), &mut batch, &mut waiting)?;
                    (bytes, started) = (0, None);
                }
                target.poll()?;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if !batch.is_empty() {
        flush(target.as_mut(), &mut batch, &mut waiting)?;
    }
    target.finish(o.drain_timeout)
}

fn note_ack(report: &mut Report, a: &Appended) {
    report.first_index.get_or_insert(a.first_index);
    report.tree_size = Some(report.tree_size.map_or(a.tree_size, |t| t.max(a.tree_size)));
    report.appended += a.count;
    report.batches += 1;
}

/// How often a local ledger's index follower looks for new entries.
const INDEX_EVERY: Duration = Duration::from_secs(1);

struct LedgerTarget {
    ledger: Ledger,
    report: Report,
    /// Keeps the index following the appends, off their path.
    _indexer: IndexFollower,
}

impl Target for LedgerTarget {
    fn write(&mut self, batch: Vec<Vec<u8>>) -> Result<(), SinkError> {
        let a = self.ledger.append(batch)?;
        note_ack(&mut self.report, &a);
        Ok(())
    }

    fn wake_at(&self) -> Option<Instant> {
        None
    }

    fn poll(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(self: Box<Self>, _: Duration) -> Result<Report, SinkError> {
        Ok(self.report)
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct ServerTarget {
    endpoint: String,
    auth: String,
    spool: Spool,
    agent: ureq::Agent,
    run: String,
    next: u64,
    cap: u64,
    /// Events dropped at the cap and not yet reported in a gap event.
    unreported_loss: u64,
    collector: String,
    layer: Layer,
    retry_at: Option<Instant>,
    backoff: Duration,
    report: Report,
}

impl ServerTarget {
    fn new(url: String, token: String, spool: Spool, o: &SinkOptions) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
        ServerTarget {
            endpoint: format!("{}/v1/log/entries", url.trim_end_matches('/')),
            auth: format!("Bearer {token}"),
            spool,
            agent,
            run: hex::encode(rand::random::<[u8; 12]>()),
            next: 0,
            cap: o.spool_cap_bytes,
            unreported_loss: 0,
            collector: o.collector.clone(),
            layer: o.layer,
            // Deliver what an earlier run left at once.
            retry_at: Some(Instant::now()),
            backoff: BACKOFF_MIN,
            report: Report::default(),
        }
    }

    fn spool_batch(&mut self, body: &[u8]) -> Result<(), SinkError> {
        let key = format!("zkaudit-{}-{}", self.run, self.next);
        self.next += 1;
        self.spool.push(&key, body)?;
        Ok(())
    }

    /// Spools a gap event for the events dropped at the cap since the last one.
    fn spool_gap(&mut self) -> Result<(), SinkError> {
        if self.unreported_loss == 0 {
            return Ok(());
        }
        let detail = format!("the spool {} reached its cap of {} bytes; batches were dropped", self.spool.dir().display(), self.cap);
        let mut line = gap(&self.collector, self.layer, GapReason::SpoolFull, self.unreported_loss, &detail).canonical_bytes()?;
        line.push(b'\n');
        self.spool_batch(&line)?;
        self.unreported_loss = 0;
        Ok(())
    }

    /// Sends spooled batches in order until one fails (then backs off).
    fn deliver(&mut self) -> Result<(), SinkError> {
        for b in self.spool.pending()? {
            let body = std::fs::read(&b.path).map_err(|source| SpoolError::Io { path: b.path.clone(), source })?;
            let sent = self
                .agent
                .post(&self.endpoint)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/x-ndjson")
                .header("Idempotency-Key", &b.key)
                .send(&body[..]);
            let failure = match sent {
                Ok(mut r) => {
                    let status = r.status().as_u16();
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    match status {
                        200..=299 => match serde_json::from_str::<Appended>(&text) {
                            Ok(a) => {
                                self.spool.remove(&b)?;
                                note_ack(&mut self.report, &a);
                                self.backoff = BACKOFF_MIN;
                                continue;
                            }
                            Err(e) => format!("HTTP {status} with an unreadable acknowledgement ({e}): {text}"),
                        },
                        // Retryable: overloaded, still appending this key, or down.
                        409 if text.contains("still being appended") => format!("HTTP {status}: {text}"),
                        429 | 500..=599 => format!("HTTP {status}: {text}"),
                        _ => return Err(SinkError::Refused { key: b.key, spool: self.spool.dir().to_owned(), status, body: text }),
                    }
                }
                Err(e) => e.to_string(),
            };
            self.report.retries += 1;
            self.report.last_error = Some(failure);
            self.retry_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            return Ok(());
        }
        self.retry_at = None;
        Ok(())
    }
}

impl Target for ServerTarget {
    fn write(&mut self, batch: Vec<Vec<u8>>) -> Result<(), SinkError> {
        let n = batch.len() as u64;
        let mut body = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum());
        for e in batch {
            body.extend_from_slice(&e);
            body.push(b'\n');
        }
        let used = self.spool.bytes()?;
        if used < self.cap {
            self.spool_gap()?;
        }
        if used + body.len() as u64 > self.cap {
            self.unreported_loss += n;
            self.report.lost += n;
        } else {
            self.spool_batch(&body)?;
        }
        if self.retry_at.is_none() {
            self.deliver()?;
        }
        Ok(())
    }

    fn wake_at(&self) -> Option<Instant> {
        self.retry_at
    }

    fn poll(&mut self) -> Result<(), SinkError> {
        if self.retry_at.is_some_and(|t| t <= Instant::now()) {
            self.deliver()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, timeout: Duration) -> Result<Report, SinkError> {
        let end = Instant::now() + timeout;
        // Room or not: the loss itself must be on record.
        self.spool_gap()?;
        loop {
            self.deliver()?;
            match self.retry_at {
                None => break,
                Some(t) if t < end => std::thread::sleep(t.saturating_duration_since(Instant::now())),
                Some(_) => break,
            }
        }
        self.report.left_in_spool = self.spool.pending()?.len() as u64;
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::shape::Observation;
    use crate::OcsfClass;

    #[test]
    fn send_then_is_told_only_once_the_event_is_in_the_ledger() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        zkaudit_tlog::init(&dir, "test.example/sink").unwrap();
        let mut opts = SinkOptions::new("test", Layer::Application);
        opts.linger = Duration::from_millis(50);
        let mut sink = Sink::open(Destination::Ledger { dir: dir.clone(), index: None }, opts).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..3u64 {
            let (tx, dir) = (tx.clone(), dir.clone());
            let e = Observation::new("probe", Layer::Application, OcsfClass::ApiActivity, 1, "probe").field("n", i).into_event();
            sink.send_then(&e, move |r| {
                // Durable means a fresh reader already sees it.
                let size = zkaudit_tlog::LogReader::open(&dir).map(|l| l.size()).unwrap_or(0);
                tx.send((i, r, size)).unwrap();
            })
            .unwrap();
        }
        drop(tx);
        let told: Vec<_> = rx.iter().collect();
        assert_eq!(told.len(), 3);
        assert!(told.iter().all(|(i, r, size)| r.is_ok() && *size > *i), "{told:?}");
        assert_eq!(sink.finish().unwrap().appended, 3);
        assert_eq!(zkaudit_tlog::LogReader::open(&dir).unwrap().size(), 3);
    }
}
