//! The panels' data. Every number here is read from the ledger (through
//! its index, brought up to the checkpoint the answer names) or from the
//! job store, and every event a panel counts can be opened by its leaf
//! index ([`Dashboard::event`]) and verified in the browser.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zkaudit_app::ledger::Ledger;
use zkaudit_index::{ActivityCount, IndexedEvent, Query, Selector};
use zkaudit_jobs::Store;
use zkaudit_tlog::layout::{TileId, TILE_WIDTH};
use zkaudit_tlog::LogReader;

/// Buckets an activity chart aims for (at most).
const CHART_BUCKETS: i64 = 60;
/// Longest a PDF report may take to print.
const PDF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// One hour, ns.
const HOUR_NS: i64 = 3_600_000_000_000;
/// Events a panel lists at most (the counts are always complete).
const LIST_MAX: u64 = 200;
/// Events a lineage graph holds at most.
const LINEAGE_MAX: usize = 200;
use zkaudit_app::claim::PROOF_EVENT_TYPE;
use zkaudit_collect::shape::{empty_digest, GAP_TYPE};
use zkaudit_detect::FINDING_TYPE;

/// Why a panel could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ledger, its index or the auditor failed.
    #[error(transparent)]
    App(#[from] zkaudit_app::Error),
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] zkaudit_tlog::Error),
    /// The job store failed.
    #[error(transparent)]
    Jobs(#[from] zkaudit_jobs::Error),
    /// A compliance report could not be rendered.
    #[error("compliance report: {0}")]
    Report(String),
    /// No headless browser to print the PDF report with.
    #[error("the PDF report is printed by headless Chromium, and there is none at {0} (install Debian's chromium, or set ZKAUDIT_CHROMIUM)")]
    NoChromium(String),
    /// A request parameter is invalid: `field` names it.
    #[error("{field}: {message}")]
    BadRequest {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No event has this leaf index.
    #[error("leaf index {index} is not in the log (tree size {size})")]
    NoSuchEvent {
        /// The leaf index asked for.
        index: u64,
        /// The log's tree size.
        size: u64,
    },
}

impl Error {
    /// Whether the request, not the server, is at fault (HTTP 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Error::BadRequest { .. } | Error::NoSuchEvent { .. })
            || matches!(self, Error::App(zkaudit_app::Error::UnknownPack { .. }))
            || matches!(self, Error::App(zkaudit_app::Error::Index { source: zkaudit_index::Error::Range(_), .. }))
    }
}

type Result<T> = std::result::Result<T, Error>;

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A time window, `[from_ns, to_ns)` in ns since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start (inclusive), ns.
    pub from_ns: i64,
    /// End (exclusive), ns.
    pub to_ns: i64,
}

/// The log's verifier key, as the page shows and pins it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// The signed-note verifier key text (`<name>+<hex id>+<base64>`).
    pub vkey: String,
    /// Key name.
    pub name: String,
    /// Key ID, 8 hex digits.
    pub id: String,
}

/// A full check of the log: `zkaudit_integrity(log)` (every entry, tile
/// and the root recomputed, and the checkpoint's signature).
#[derive(Clone, Debug, Serialize)]
pub struct FullCheck {
    /// When it finished, ns since the epoch.
    pub checked_at_ns: i64,
    /// The tree size it checked.
    pub tree_size: u64,
    /// `true` if `zkaudit_integrity(log)` holds.
    pub holds: bool,
    /// The failure, if any.
    pub error: Option<String>,
    /// How long it took, ms.
    pub millis: u64,
}

/// The last consistency check between two checkpoints this server saw
/// (RFC 9162 §2.1.4).
#[derive(Clone, Debug, Serialize)]
pub struct ConsistencyCheck {
    /// When, ns since the epoch.
    pub checked_at_ns: i64,
    /// Older tree size.
    pub old_size: u64,
    /// Newer tree size.
    pub new_size: u64,
    /// Whether the proof verified.
    pub verified: bool,
    /// The failure, if any.
    pub error: Option<String>,
}

/// The log integrity panel.
#[derive(Clone, Debug, Serialize)]
pub struct Integrity {
    /// The log's origin (checkpoint's first line).
    pub origin: String,
    /// Tree size of the latest checkpoint.
    pub tree_size: u64,
    /// Its root hash, hex.
    pub root_hash: String,
    /// The signed checkpoint note, as served at `/checkpoint`.
    pub checkpoint: String,
    /// The key it is signed with.
    pub key: KeyInfo,
    /// Whether the checkpoint's signature verifies with the key
    /// (`zkaudit_integrity(checkpoint)`).
    pub checkpoint_verified: bool,
    /// The last consistency check, if the tree has grown since this
    /// server first looked.
    pub consistency: Option<ConsistencyCheck>,
    /// The last full check, if one was run ([`Dashboard::check_log`]).
    pub full_check: Option<FullCheck>,
    /// Time of the answer, ns since the epoch.
    pub now_ns: i64,
}

/// Events of one layer and type over the window.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Layer.
    pub layer: String,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events in the window.
    pub total: u64,
    /// Events per second over the window.
    pub per_second: f64,
    /// Events per bucket, one per bucket of [`Activity::bucket_ns`].
    pub counts: Vec<u64>,
    /// Start of the last bucket holding one of them, ns since the epoch.
    pub last_bucket_ns: Option<i64>,
}

/// One collector's blind spots over the window (`collector_gap` events).
#[derive(Clone, Debug, Serialize)]
pub struct CollectorHealth {
    /// The collector (`observer.type`).
    pub collector: String,
    /// Gap events.
    pub gaps: u64,
    /// Events or items lost, summed over its gaps (`zkaudit.gap.lost`).
    pub lost: u64,
    /// Gaps by reason (`event.action`: kernel_lost, buffer_full, …).
    pub reasons: BTreeMap<String, u64>,
    /// Timestamp of its last gap, ns.
    pub last_gap_ns: i64,
    /// Leaf indices of its gap events (at most 200).
    pub events: Vec<u64>,
}

/// The activity panel.
#[derive(Clone, Debug, Serialize)]
pub struct Activity {
    /// The window charted.
    pub window: Window,
    /// Bucket width, ns.
    pub bucket_ns: i64,
    /// Buckets in the window.
    pub buckets: u64,
    /// Events in the window.
    pub total: u64,
    /// One series per (layer, type), most events first.
    pub series: Vec<Series>,
    /// Collectors that recorded gaps in the window.
    pub gaps: Vec<CollectorHealth>,
    /// Start of the last bucket holding any event, ns.
    pub last_event_bucket_ns: Option<i64>,
    /// Tree size the answer is from.
    pub tree_size: u64,
}

/// One rule of a pack, as a tile shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleTile {
    /// Rule ID.
    pub id: String,
    /// What it requires.
    pub description: String,
    /// `pass`, `fail` or `no_evidence`.
    pub verdict: String,
    /// Events the verdict rests on.
    pub events: usize,
    /// Violations: leaf index and reason (the pack's term, e.g.
    /// `failover_ms(73,max(50))`), at most 200.
    pub violations: Vec<(u64, String)>,
    /// Leaf indices the verdict rests on (at most 200), for drill-down.
    pub evidence: Vec<u64>,
    /// What the rule measured: (name, value as Prolog text), e.g.
    /// (`max_failover_ms`, `73`).
    pub measures: Vec<(String, String)>,
}

/// One compliance pack's tile.
#[derive(Clone, Debug, Serialize)]
pub struct PackTile {
    /// Pack name (`--pack`).
    pub name: String,
    /// Its title.
    pub title: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the pack file, hex.
    pub sha256: String,
    /// Tree size it read (a log that grows while the packs run is read
    /// at the checkpoint each pack's engine opened).
    pub tree_size: u64,
    /// Parameters in force (name, Prolog text).
    pub params: Vec<(String, String)>,
    /// Rules passed, failed and without evidence.
    pub pass: usize,
    /// Rules failed.
    pub fail: usize,
    /// Rules with no evidence.
    pub no_evidence: usize,
    /// The rules.
    pub rules: Vec<RuleTile>,
}

/// The compliance panel: every built-in pack over the window.
#[derive(Clone, Debug, Serialize)]
pub struct Compliance {
    /// The window evaluated.
    pub window: Window,
    /// Tree size when the evaluation began (each pack names its own).
    pub tree_size: u64,
    /// One tile per pack.
    pub packs: Vec<PackTile>,
}

/// A recorded proof, as the proofs panel lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ProofRow {
    /// Leaf index of its `zk_proof` event.
    pub leaf_index: u64,
    /// Timestamp as written.
    pub timestamp: String,
    /// The plan's ID, if recorded.
    pub plan_id: Option<String>,
    /// Total cycles (RISC Zero).
    pub total_cycles: Option<u64>,
    /// Proving time, ms.
    pub prove_millis: Option<u64>,
    /// Image ID of the program proven.
    pub image_id: Option<String>,
}

/// The proofs panel.
#[derive(Clone, Debug, Serialize)]
pub struct Proofs {
    /// Jobs waiting in the store.
    pub queued: u64,
    /// Jobs running.
    pub running: u64,
    /// Jobs finished with a result (the store keeps jobs until its cleanup).
    pub succeeded: u64,
    /// Jobs failed.
    pub failed: u64,
    /// Jobs killed after their time limit.
    pub timed_out: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
    /// Mean wall time of recent succeeded jobs, s.
    pub recent_job_seconds: Option<f64>,
    /// Proving throughput over recent proofs, cycles/s.
    pub cycles_per_second: Option<f64>,
    /// Estimated wait of a job submitted now: jobs ahead × the recent
    /// mean ÷ workers, s (none without recent jobs).
    pub estimated_wait_seconds: Option<f64>,
    /// Proofs recorded in the ledger (`zk_proof` events), each verified
    /// before it was recorded.
    pub receipts_recorded: u64,
    /// The latest of them (at most 200).
    pub latest: Vec<ProofRow>,
    /// Tree size the answer is from.
    pub tree_size: u64,
}

/// One anomaly finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Leaf index of the finding event.
    pub leaf_index: u64,
    /// Timestamp as written.
    pub timestamp: String,
    /// Severity (OCSF `severity`), or `unknown`.
    pub severity: String,
    /// What was found (`message`), if given.
    pub title: Option<String>,
    /// Leaf indices of the events it rests on (`zkaudit.finding.events`).
    pub evidence: Vec<u64>,
}

/// The findings panel.
#[derive(Clone, Debug, Serialize)]
pub struct Findings {
    /// The window.
    pub window: Window,
    /// Findings per severity.
    pub by_severity: BTreeMap<String, u64>,
    /// The findings (at most 200, latest first).
    pub findings: Vec<Finding>,
    /// Findings in the window.
    pub total: u64,
    /// Findings in the whole ledger: 0 means none was ever recorded
    /// (`zkaudit detect` has not run here, or found nothing).
    pub ever: u64,
}

/// Where an entry lies in the tiles, for the browser to fetch it itself.
#[derive(Clone, Debug, Serialize)]
pub struct BundleRef {
    /// Path of the entry bundle (C2SP tlog-tiles), e.g. `tile/entries/000.p/7`.
    pub path: String,
    /// Entries in the bundle.
    pub count: u64,
    /// The entry's position in the bundle.
    pub position: u64,
}

/// One event with what the browser needs to verify it.
#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    /// Leaf index.
    pub leaf_index: u64,
    /// The entry (canonical JSON, RFC 8785), as the server read it.
    pub entry: String,
    /// Tree size of the checkpoint the proof is for.
    pub tree_size: u64,
    /// The checkpoint note the proof is for.
    pub checkpoint: String,
    /// Root hash at `tree_size`, hex.
    pub root_hash: String,
    /// Leaf hash as the server computed it, hex (the browser recomputes it
    /// from the bundle and does not use this).
    pub leaf_hash: String,
    /// Audit path, hex, deepest sibling first (RFC 9162 §2.1.3).
    pub hashes: Vec<String>,
    /// Where the browser fetches the entry's bytes from.
    pub bundle: BundleRef,
}

/// A node of a lineage graph: an event or a digest.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    /// An event.
    Event {
        /// Leaf index.
        leaf_index: u64,
        /// Event type.
        #[serde(rename = "type")]
        event_type: String,
        /// Layer.
        layer: String,
        /// Timestamp as written.
        timestamp: String,
        /// What it is about: an executable, a path, a URL or a package.
        label: String,
    },
    /// A content digest.
    Digest {
        /// `sha256:<hex>`.
        digest: String,
    },
}

/// An edge of a lineage graph, between node numbers: a digest an event
/// read (`input`, `parent`) or wrote (`output`).
#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    /// Source node.
    pub from: usize,
    /// Target node.
    pub to: usize,
    /// `input`, `output` or `parent`.
    pub role: &'static str,
}

/// The lineage of a digest: the events that made it, read it or name it
/// as a parent, and one step further each way.
#[derive(Clone, Debug, Serialize)]
pub struct Lineage {
    /// The digest asked about.
    pub digest: String,
    /// Nodes (node 0 is the digest).
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Whether the graph was cut at its size limit.
    pub truncated: bool,
}

/// The dashboard's state across requests: the checks it remembers, and the
/// last answer of each panel that reads the ledger's events, kept while the
/// checkpoint and the window stay the same.
#[derive(Default)]
pub struct Dashboard {
    last_seen: Mutex<Option<(u64, [u8; 32])>>,
    consistency: Mutex<Option<ConsistencyCheck>>,
    full_check: Mutex<Option<FullCheck>>,
    activity: Memo<Activity>,
    compliance: Memo<Compliance>,
    findings: Memo<Findings>,
    /// When a panel was last requested, ns since the Unix epoch (0: never).
    viewed_ns: AtomicI64,
    /// The checkpoint [`Dashboard::warm`] last filled the panels at.
    warmed: Mutex<Option<(u64, [u8; 32])>>,
}

/// How long after the last panel request [`Dashboard::warm`] keeps the
/// panels filled as the log grows: 10 minutes.
const WARM_WHILE_VIEWED_NS: i64 = 600_000_000_000;

/// One panel's last answer, with the checkpoint (tree size, root) and the
/// window it answers for. The lock is held while computing, so concurrent
/// requests for the same panel share one computation.
struct Memo<T>(Mutex<Option<(MemoKey, T)>>);

/// What a [`Memo`]'s answer is for: tree size, root hash, window.
type MemoKey = (u64, [u8; 32], Window);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T: Clone> Memo<T> {
    /// The answer for `window` at `log`'s checkpoint: the kept one, or
    /// `compute`'s, which is kept. The answer may reflect a later
    /// checkpoint than the key (the log grows meanwhile), never an earlier.
    fn get(&self, log: &LogReader, window: Window, compute: impl FnOnce() -> Result<T>) -> Result<T> {
        let key = (log.size(), log.checkpoint().root, window);
        let mut slot = lock(&self.0);
        if let Some((k, answer)) = slot.as_ref() {
            if *k == key {
                return Ok(answer.clone());
            }
        }
        let answer = compute()?;
        *slot = Some((key, answer.clone()));
        Ok(answer)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn meta_u64(e: &IndexedEvent, key: &str) -> Option<u64> {
    e.meta(key).and_then(|v| v.parse().ok())
}

impl Dashboard {
    /// A dashboard that has checked nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The window `[from_ns, to_ns)`; where one end is not given, the
    /// ledger's: from the whole hour before its earliest event to just
    /// after its latest (the last hour for an empty ledger).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for an empty window.
    pub fn window(&self, ledger: &Ledger, from_ns: Option<i64>, to_ns: Option<i64>) -> Result<Window> {
        let (from_ns, to_ns) = match (from_ns, to_ns) {
            (Some(f), Some(t)) => (f, t),
            (f, t) => {
                let (lo, hi) = match ledger.time_span()? {
                    // From the whole hour before the earliest event, so
                    // hourly buckets line up with the index's hourly counts.
                    Some((lo, hi)) => (lo.div_euclid(HOUR_NS) * HOUR_NS, hi.saturating_add(1)),
                    None => (now_ns() - 3_600_000_000_000, now_ns()),
                };
                (f.unwrap_or(lo), t.unwrap_or(hi))
            }
        };
        if to_ns <= from_ns {
            return Err(Error::BadRequest { field: "to", message: format!("the window [{from_ns}, {to_ns}) ns is empty") });
        }
        Ok(Window { from_ns, to_ns })
    }

    fn viewed(&self) {
        self.viewed_ns.store(now_ns(), Ordering::Relaxed);
    }

    /// Fills the activity, compliance and findings panels for the default
    /// window ([`Dashboard::window`] with neither end given) when the
    /// checkpoint has changed since the last fill, so that the page's next
    /// refresh finds them computed. Only while the dashboard is being
    /// looked at (a panel requested in the last 10 minutes): a server whose
    /// dashboard nobody opens spends nothing on it. Returns whether it
    /// filled them. A server calls it from a thread of its own.
    ///
    /// # Errors
    /// As the panels'.
    pub fn warm(&self, ledger: &Ledger) -> Result<bool> {
        let r = ledger.reader()?;
        let now = (r.size(), r.checkpoint().root);
        let mut warmed = lock(&self.warmed);
        let watched = now_ns().saturating_sub(self.viewed_ns.load(Ordering::Relaxed)) < WARM_WHILE_VIEWED_NS;
        if *warmed == Some(now) || !watched {
            return Ok(false);
        }
        let window = self.window(ledger, None, None)?;
        self.activity.get(&r, window, || self.compute_activity(ledger, window))?;
        self.findings.get(&r, window, || self.compute_findings(ledger, window))?;
        self.compliance.get(&r, window, || self.compute_compliance(ledger, now.0, window))?;
        *warmed = Some(now);
        Ok(true)
    }

    /// The log integrity panel. Also checks consistency (RFC 9162 §2.1.4)
    /// from the last checkpoint this dashboard saw to the latest, when the
    /// tree has grown.
    ///
    /// # Errors
    /// [`Error::Log`] if the log or its key cannot be read.
    pub fn integrity(&self, ledger: &Ledger) -> Result<Integrity> {
        let r = ledger.reader()?;
        let vkey = zkaudit_tlog::read_vkey(ledger.dir().root())?;
        let cp = r.checkpoint().clone();
        let checkpoint_verified = r.verify_signature(&vkey).is_ok();
        self.check_consistency(&r);
        Ok(Integrity {
            origin: cp.origin.clone(),
            tree_size: cp.size,
            root_hash: hex::encode(cp.root),
            checkpoint: String::from_utf8_lossy(r.checkpoint_note()).into_owned(),
            key: KeyInfo { vkey: vkey.to_string(), name: vkey.name().to_owned(), id: format!("{:08x}", vkey.id()) },
            checkpoint_verified,
            consistency: lock(&self.consistency).clone(),
            full_check: lock(&self.full_check).clone(),
            now_ns: now_ns(),
        })
    }

    fn check_consistency(&self, r: &LogReader) {
        let now = (r.size(), r.checkpoint().root);
        let mut last = lock(&self.last_seen);
        let Some((old, old_root)) = *last else {
            *last = Some(now);
            return;
        };
        if old == now.0 && old_root == now.1 {
            return;
        }
        let result = if now.0 < old {
            Err(format!("the log shrank from tree size {old} to {}", now.0))
        } else {
            // The old root is the one this dashboard saw, not the server's
            // recomputation: a rewritten history fails here.
            r.consistency(old, None)
                .map_err(|e| e.to_string())
                .and_then(|p| zkaudit_merkle::verify_consistency(p.old_size, p.new_size, &old_root, &now.1, &p.hashes).map_err(|e| e.to_string()))
        };
        *lock(&self.consistency) =
            Some(ConsistencyCheck { checked_at_ns: now_ns(), old_size: old, new_size: now.0, verified: result.is_ok(), error: result.err() });
        *last = Some(now);
    }

    /// Runs `zkaudit_integrity(log)` through the auditor (every entry,
    /// tile and the root recomputed, and the signature checked) and keeps
    /// the result for the integrity panel. Takes time proportional to the
    /// log's size.
    ///
    /// # Errors
    /// [`Error::App`] if the auditor cannot be opened (a failed check is a
    /// result, not an error).
    pub fn check_log(&self, ledger: &Ledger) -> Result<FullCheck> {
        let started = std::time::Instant::now();
        let mut engine = zkaudit_app::audit::engine(
            &zkaudit_app::audit::Source { dir: ledger.dir().root(), index: Some(ledger.index_spec()), vkey: None },
            zkaudit_audit::Options { timeout: std::time::Duration::from_secs(3600), ..Default::default() },
            &mut |_, _| {},
        )?;
        let tree_size = engine.reader().size();
        let (holds, error) = match engine.query("zkaudit_integrity(log)") {
            Ok(o) if !o.answers.is_empty() => (true, None),
            Ok(_) => (false, Some(engine_integrity_error(ledger))),
            Err(e) => (false, Some(e.to_string())),
        };
        let check = FullCheck { checked_at_ns: now_ns(), tree_size, holds, error, millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX) };
        *lock(&self.full_check) = Some(check.clone());
        Ok(check)
    }

    /// The activity panel over `window`: events per bucket by layer and
    /// type (about 60 buckets), and the collectors' gaps.
    ///
    /// # Errors
    /// [`Error::App`].
    pub fn activity(&self, ledger: &Ledger, window: Window) -> Result<Activity> {
        self.viewed();
        self.activity.get(&ledger.reader()?, window, || self.compute_activity(ledger, window))
    }

    fn compute_activity(&self, ledger: &Ledger, window: Window) -> Result<Activity> {
        let span = i128::from(window.to_ns) - i128::from(window.from_ns);
        let mut bucket_ns = i64::try_from((span + i128::from(CHART_BUCKETS) - 1) / i128::from(CHART_BUCKETS)).unwrap_or(i64::MAX).max(1);
        if bucket_ns > HOUR_NS {
            // Whole hours: the index answers them from its hourly counts.
            bucket_ns = (bucket_ns / HOUR_NS + i64::from(bucket_ns % HOUR_NS != 0)).saturating_mul(HOUR_NS);
        }
        let buckets = u64::try_from((span + i128::from(bucket_ns) - 1) / i128::from(bucket_ns)).unwrap_or(0);
        let counts = ledger.activity(window.from_ns, window.to_ns, bucket_ns)?;
        let tree_size = ledger.reader()?.size();
        let mut by: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        let mut last_any = None;
        for ActivityCount { bucket, layer, kind, count } in counts {
            let v = by.entry((layer, kind)).or_insert_with(|| vec![0; usize::try_from(buckets).unwrap_or(0)]);
            if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| v.get_mut(b)) {
                *slot += count;
            }
            last_any = last_any.max(Some(bucket));
        }
        let start = |b: u64| window.from_ns.saturating_add(i64::try_from(b).unwrap_or(i64::MAX).saturating_mul(bucket_ns));
        let seconds = span as f64 / 1e9;
        let mut series: Vec<Series> = by
            .into_iter()
            .map(|((layer, kind), counts)| {
                let total = counts.iter().sum::<u64>();
                let last = counts.iter().rposition(|&c| c > 0).map(|b| start(b as u64));
                Series { layer, kind, total, per_second: total as f64 / seconds, counts, last_bucket_ns: last }
            })
            .collect();
        series.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| (&a.layer, &a.kind).cmp(&(&b.layer, &b.kind))));
        let total = series.iter().map(|s| s.total).sum();
        let gaps = self.gaps(ledger, window)?;
        Ok(Activity { window, bucket_ns, buckets, total, series, gaps, last_event_bucket_ns: last_any.map(start), tree_size })
    }

    fn gaps(&self, ledger: &Ledger, window: Window) -> Result<Vec<CollectorHealth>> {
        let q = Query { from_ns: Some(window.from_ns), to_ns: Some(window.to_ns), ..Query::new(Selector::Type(GAP_TYPE.into())) };
        let mut out: BTreeMap<String, CollectorHealth> = BTreeMap::new();
        for e in ledger.select(&q)? {
            let collector = e.meta_text("observer.type").unwrap_or_else(|| "unknown".into());
            let h = out.entry(collector.clone()).or_insert_with(|| CollectorHealth {
                collector,
                gaps: 0,
                lost: 0,
                reasons: BTreeMap::new(),
                last_gap_ns: e.timestamp_ns,
                events: Vec::new(),
            });
            h.gaps += 1;
            h.lost += meta_u64(&e, "zkaudit.gap.lost").unwrap_or(0);
            *h.reasons.entry(e.meta_text("event.action").unwrap_or_else(|| "unknown".into())).or_default() += 1;
            h.last_gap_ns = h.last_gap_ns.max(e.timestamp_ns);
            if (h.events.len() as u64) < LIST_MAX {
                h.events.push(e.leaf_index);
            }
        }
        Ok(out.into_values().collect())
    }

    /// The compliance panel: every built-in pack evaluated over `window`.
    ///
    /// # Errors
    /// [`Error::App`] if the auditor cannot be opened or a pack fails.
    pub fn compliance(&self, ledger: &Ledger, window: Window) -> Result<Compliance> {
        self.viewed();
        let now = ledger.reader()?;
        self.compliance.get(&now, window, || self.compute_compliance(ledger, now.size(), window))
    }

    fn compute_compliance(&self, ledger: &Ledger, tree_size: u64, window: Window) -> Result<Compliance> {
        let mut packs = Vec::new();
        for p in zkaudit_app::audit::PACKS {
            let (pack, _) = zkaudit_app::audit::load_pack(p.name)?;
            // A fresh engine per pack, as `zkaudit compliance` runs one:
            // packs define the same predicates.
            let mut engine = self.engine(ledger, window)?;
            let r = zkaudit_app::audit::run_pack(&mut engine, &pack, &[])?;
            let count = |v: &str| r.rules.iter().filter(|x| x.verdict.as_str() == v).count();
            packs.push(PackTile {
                tree_size: engine.reader().size(),
                name: p.name.to_owned(),
                title: r.title.clone(),
                version: r.version.clone(),
                sha256: r.sha256.clone(),
                params: r.params.clone(),
                pass: count("pass"),
                fail: count("fail"),
                no_evidence: count("no_evidence"),
                rules: r
                    .rules
                    .iter()
                    .map(|x| RuleTile {
                        id: x.id.clone(),
                        description: x.description.clone(),
                        verdict: x.verdict.as_str().to_owned(),
                        events: x.events.len(),
                        violations: x.violations.iter().take(LIST_MAX as usize).map(|v| (v.leaf_index, v.reason.clone())).collect(),
                        evidence: x.events.iter().take(LIST_MAX as usize).copied().collect(),
                        measures: x.measures.clone(),
                    })
                    .collect(),
            });
        }
        Ok(Compliance { window, tree_size, packs })
    }

    fn engine(&self, ledger: &Ledger, window: Window) -> Result<zkaudit_audit::Engine> {
        let opts = zkaudit_audit::Options { from_ns: Some(window.from_ns), to_ns: Some(window.to_ns), ..Default::default() };
        let src = zkaudit_app::audit::Source { dir: ledger.dir().root(), index: Some(ledger.index_spec()), vkey: None };
        Ok(zkaudit_app::audit::engine(&src, opts, &mut |_, _| {})?)
    }

    /// The compliance report of `pack` (a built-in pack's name) over
    /// `window`, as `zkaudit compliance --html` writes it: a printable
    /// page with every event's entry and inclusion proof.
    ///
    /// # Errors
    /// [`Error::App`] for an unknown pack or a failing auditor.
    pub fn report_html(&self, ledger: &Ledger, pack: &str, window: Window) -> Result<String> {
        let (file, name) = zkaudit_app::audit::load_pack(pack)?;
        let mut engine = self.engine(ledger, window)?;
        let report = zkaudit_app::audit::run_pack(&mut engine, &file, &[])?;
        let (from, to) = (rfc3339(window.from_ns), rfc3339(window.to_ns));
        let v = zkaudit_audit::report::to_json(&report, &name, engine.reader(), Some((&from, &to))).map_err(|e| Error::Report(e.to_string()))?;
        Ok(zkaudit_audit::report::to_html(&v))
    }

    /// [`Dashboard::report_html`] printed to PDF (A4, the report's print
    /// stylesheet) by headless Chromium: `ZKAUDIT_CHROMIUM`, else
    /// `/usr/bin/chromium`. Gives up after 60 s.
    ///
    /// # Errors
    /// [`Error::NoChromium`] without a browser; [`Error::Report`] if it
    /// fails or times out; as [`Dashboard::report_html`].
    pub fn report_pdf(&self, ledger: &Ledger, pack: &str, window: Window) -> Result<Vec<u8>> {
        let chromium = std::env::var("ZKAUDIT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !std::path::Path::new(&chromium).is_file() {
            return Err(Error::NoChromium(chromium));
        }
        let html = self.report_html(ledger, pack, window)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| Error::Report(format!("{what}: {e}"));
        let tmp = tempfile::tempdir().map_err(|e| fail("a temporary directory", &e))?;
        let (page, pdf) = (tmp.path().join("report.html"), tmp.path().join("report.pdf"));
        std::fs::write(&page, html).map_err(|e| fail("writing the report", &e))?;
        let mut child = std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", tmp.path().join("profile").display()))
            .arg("--no-pdf-header-footer")
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("file://{}", page.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| fail(&format!("starting {chromium}"), &e))?;
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait().map_err(|e| fail("waiting for chromium", &e))? {
                Some(s) => break s,
                None if started.elapsed() > PDF_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Report(format!("chromium did not print the report within {} s", PDF_TIMEOUT.as_secs())));
                }
                None => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        };
        let bytes = std::fs::read(&pdf).map_err(|e| fail(&format!("chromium ({status}) wrote no PDF"), &e))?;
        if !bytes.starts_with(b"%PDF-") {
            return Err(Error::Report(format!("chromium ({status}) wrote something that is not a PDF")));
        }
        Ok(bytes)
    }

    /// The proofs panel: jobs by state, throughput, the estimated wait for
    /// `workers` workers, and the proofs recorded in the ledger.
    ///
    /// # Errors
    /// [`Error::Jobs`], [`Error::App`].
    pub fn proofs(&self, ledger: &Ledger, store: &Store, workers: usize) -> Result<Proofs> {
        let s = store.stats()?;
        let q = Query::new(Selector::Type(PROOF_EVENT_TYPE.into()));
        let receipts_recorded = ledger.count(&q)?;
        let first = receipts_recorded.saturating_sub(LIST_MAX);
        let mut latest: Vec<ProofRow> = ledger
            .select(&q)?
            .into_iter()
            .skip(usize::try_from(first).unwrap_or(0))
            .map(|e| ProofRow {
                leaf_index: e.leaf_index,
                timestamp: e.timestamp.clone(),
                plan_id: e.meta_text("planId"),
                total_cycles: meta_u64(&e, "totalCycles"),
                prove_millis: meta_u64(&e, "proveMillis"),
                image_id: e.proof.as_ref().map(|p| p.image_id.clone()),
            })
            .collect();
        latest.reverse();
        let estimated_wait_seconds = s.estimated_wait_seconds(workers);
        Ok(Proofs {
            queued: s.queued,
            running: s.running,
            succeeded: s.succeeded,
            failed: s.failed,
            timed_out: s.timed_out,
            cancelled: s.cancelled,
            recent_job_seconds: s.recent_job_seconds,
            cycles_per_second: s.recent_cycles_per_second,
            estimated_wait_seconds,
            receipts_recorded,
            latest,
            tree_size: ledger.reader()?.size(),
        })
    }

    /// The findings panel: `finding` events (OCSF Detection Finding 2004)
    /// in `window`, by severity, with the events each rests on.
    ///
    /// # Errors
    /// [`Error::App`].
    pub fn findings(&self, ledger: &Ledger, window: Window) -> Result<Findings> {
        self.viewed();
        self.findings.get(&ledger.reader()?, window, || self.compute_findings(ledger, window))
    }

    fn compute_findings(&self, ledger: &Ledger, window: Window) -> Result<Findings> {
        let all = Query::new(Selector::Type(FINDING_TYPE.into()));
        let ever = ledger.count(&all)?;
        let events = ledger.select(&Query { from_ns: Some(window.from_ns), to_ns: Some(window.to_ns), ..all })?;
        let mut by_severity = BTreeMap::new();
        for e in &events {
            *by_severity.entry(severity(e)).or_default() += 1;
        }
        let total = events.len() as u64;
        let mut findings = Vec::new();
        for e in events.iter().rev().take(LIST_MAX as usize) {
            let evidence = e.meta("zkaudit.finding.events").and_then(|v| serde_json::from_str::<Vec<u64>>(v).ok()).unwrap_or_default();
            findings.push(Finding { leaf_index: e.leaf_index, timestamp: e.timestamp.clone(), severity: severity(e), title: e.meta_text("message"), evidence });
        }
        Ok(Findings { window, by_severity, findings, total, ever })
    }

    /// Event `index` with its inclusion proof at the latest checkpoint and
    /// where its bytes lie in the tiles.
    ///
    /// # Errors
    /// [`Error::NoSuchEvent`] past the tree size; [`Error::Log`].
    pub fn event(&self, ledger: &Ledger, index: u64) -> Result<EventView> {
        let r = ledger.reader()?;
        let size = r.size();
        if index >= size {
            return Err(Error::NoSuchEvent { index, size });
        }
        let p = r.inclusion(index, None)?;
        let entry = r.entry(index)?;
        let bundle_index = index / TILE_WIDTH;
        let count = (size - bundle_index * TILE_WIDTH).min(TILE_WIDTH);
        let tile = TileId::entries(bundle_index, u16::try_from(count).unwrap_or(u16::MAX));
        Ok(EventView {
            leaf_index: index,
            entry: String::from_utf8_lossy(&entry).into_owned(),
            tree_size: p.tree_size,
            checkpoint: String::from_utf8_lossy(r.checkpoint_note()).into_owned(),
            root_hash: hex::encode(p.root_hash),
            leaf_hash: hex::encode(p.leaf_hash),
            hashes: p.hashes.iter().map(hex::encode).collect(),
            bundle: BundleRef { path: tile.path(), count, position: index % TILE_WIDTH },
        })
    }

    /// The lineage of `digest` (`sha256:<hex>`): the events that output it,
    /// take it as input or list it as a parent, and for each of those the
    /// events one step further, up to 200 events.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a malformed digest; [`Error::App`].
    pub fn lineage(&self, ledger: &Ledger, digest: &str) -> Result<Lineage> {
        zkaudit_event::Digest::parse(digest).map_err(|e| Error::BadRequest { field: "digest", message: e.to_string() })?;
        let mut g = Graph { empty: empty_digest().to_string(), nodes: Vec::new(), edges: Vec::new(), events: BTreeMap::new(), digests: BTreeMap::new() };
        g.digest(digest);
        let mut frontier = vec![digest.to_owned()];
        let mut seen_digests = BTreeSet::from([digest.to_owned()]);
        for _depth in 0..2 {
            let mut next = Vec::new();
            for d in &frontier {
                for sel in [Selector::Output(d.clone()), Selector::Input(d.clone()), Selector::Parent(d.clone())] {
                    for e in ledger.select(&Query { limit: Some(LIST_MAX), ..Query::new(sel) })? {
                        if g.truncated(LINEAGE_MAX) {
                            break;
                        }
                        if g.add_event(&e) {
                            for linked in std::iter::once(&e.input).chain(std::iter::once(&e.output)).chain(e.parents.iter()) {
                                if seen_digests.insert(linked.clone()) {
                                    next.push(linked.clone());
                                }
                            }
                        }
                    }
                }
            }
            frontier = next;
        }
        Ok(Lineage { digest: digest.to_owned(), truncated: g.truncated(LINEAGE_MAX), nodes: g.nodes, edges: g.edges })
    }
}

/// Why `zkaudit_integrity(log)` failed, for the panel: fsck's first error.
fn engine_integrity_error(ledger: &Ledger) -> String {
    match zkaudit_tlog::read_vkey(ledger.dir().root()) {
        Err(e) => e.to_string(),
        Ok(key) => match zkaudit_tlog::fsck::verify(ledger.dir().root(), &key, |_| {}) {
            Err(e) => e.to_string(),
            Ok(_) => "zkaudit_integrity(log) does not hold".to_owned(),
        },
    }
}

fn severity(e: &IndexedEvent) -> String {
    e.meta_text("ocsf.severity").unwrap_or_else(|| "unknown".into()).to_lowercase()
}

/// RFC 3339 text of `ns` since the epoch (UTC, nanoseconds).
fn rfc3339(ns: i64) -> String {
    zkaudit_event::Timestamp::from_unix_nanos(i128::from(ns)).map_or_else(|| ns.to_string(), |t| t.as_str().to_owned())
}

/// A lineage graph under construction.
struct Graph {
    /// The digest of no bytes (`sha256:…`): an event with no input or
    /// output links nothing.
    empty: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    events: BTreeMap<u64, usize>,
    digests: BTreeMap<String, usize>,
}

impl Graph {
    fn digest(&mut self, d: &str) -> usize {
        if let Some(&n) = self.digests.get(d) {
            return n;
        }
        self.nodes.push(Node::Digest { digest: d.to_owned() });
        self.digests.insert(d.to_owned(), self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    fn truncated(&self, max: usize) -> bool {
        self.events.len() >= max
    }

    /// Adds `e` and its edges; `false` if it was there already.
    fn add_event(&mut self, e: &IndexedEvent) -> bool {
        if self.events.contains_key(&e.leaf_index) {
            return false;
        }
        let label = ["process.executable", "file.path", "url.full", "zkaudit.download.purl", "gen_ai.request.model", "message"]
            .iter()
            .find_map(|k| e.meta_text(k))
            .unwrap_or_default();
        self.nodes.push(Node::Event { leaf_index: e.leaf_index, event_type: e.kind.clone(), layer: e.layer.clone(), timestamp: e.timestamp.clone(), label });
        let n = self.nodes.len() - 1;
        self.events.insert(e.leaf_index, n);
        if e.input != self.empty {
            let d = self.digest(&e.input);
            self.edges.push(Edge { from: d, to: n, role: "input" });
        }
        for p in &e.parents {
            let d = self.digest(p);
            self.edges.push(Edge { from: d, to: n, role: "parent" });
        }
        if e.output != self.empty {
            let d = self.digest(&e.output);
            self.edges.push(Edge { from: n, to: d, role: "output" });
        }
        true
    }
}
