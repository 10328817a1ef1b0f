//! The zkaudit proof server: an HTTP API (axum) over the job store, the
//! zkVM verifier and the ledger.
//!
//! This crate owns the HTTP surface: routing, request parsing and its
//! errors, bearer-token checks, the built-in `income-threshold` job, the
//! signed attestation document, Prometheus metrics, the OpenAPI document,
//! the SOC dashboard (page, assets and panel data), and serving the ledger (appends, checkpoint, proofs and the C2SP
//! tlog-tiles files). It also runs the in-process workers and the upkeep
//! (re-queueing jobs of dead workers, TTL cleanup).
//!
//! It must not implement any of what it serves: the use cases (append and
//! index, load a plan with its data, record a proof) are `zkaudit-app`,
//! jobs and workers `zkaudit-jobs`, receipts `zkaudit-zkvm`, the ledger
//! `zkaudit-tlog`, content-addressed storage `zkaudit-store`. Proving
//! happens in worker child processes; each proof they make is verified
//! again and recorded in the ledger exactly once, and, with `--store`, its
//! receipt is put in storage (retried until a store takes it).

#![forbid(unsafe_code)]

mod auth;
mod dashboard_api;
mod error;
mod jobs_api;
mod log_api;
mod market_api;
mod metrics;
mod provers_api;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use zkaudit_app::ledger::Ledger;
use zkaudit_jobs::Store;
use zkaudit_note::SigningKey;
use zkaudit_zkvm::Registry;

pub use error::ApiError;

/// The OpenAPI 3.1 document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The ledger directory (made by `zkaudit log init`); also holds the
    /// default job store and the attestation key.
    pub dir: PathBuf,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Job store: a SQLite path or a `postgres://` URL.
    pub db: String,
    /// In-process workers (0 when only remote `zkaudit worker`s prove).
    pub workers: usize,
    /// Queued jobs at most; beyond it, submissions get 429.
    pub queue_capacity: u64,
    /// Largest request body (bytes); larger ones get 413.
    pub max_body_bytes: usize,
    /// Time limit of a job attempt, and the most a request may ask for (s).
    pub job_timeout_s: u64,
    /// Attempts before a job whose worker keeps vanishing fails.
    pub max_attempts: u32,
    /// Delete finished jobs (and their blobs) this long after they finish.
    pub job_ttl: Option<Duration>,
    /// Delete receipts this long after they are made.
    pub receipt_ttl: Option<Duration>,
    /// Let requests without a token read the public ledger.
    pub anonymous_read: bool,
    /// The `zkaudit` executable that workers run jobs with.
    pub exe: PathBuf,
    /// Segment size of proofs, as a power of two (cycles).
    pub segment_po2: Option<u32>,
    /// Programs receipts are verified against.
    pub registry: Registry,
    /// Largest blob the Blossom server under `/blossom` accepts (bytes).
    pub blossom_max_bytes: u64,
    /// Where recorded proofs' receipts are also put (`--store`): each job's
    /// `proof_ref` is set once a store takes its receipt.
    pub proof_store: Option<Arc<zkaudit_store::ProofStore>>,
    /// The proof market's settlement database and prover-registry policy,
    /// for `/v1/provers` (`--settle-db`); `None` leaves it off (404).
    pub market: Option<MarketConfig>,
}

/// Where `/v1/provers` keeps its state.
#[derive(Clone, Debug)]
pub struct MarketConfig {
    /// The settlement ledger: a SQLite path or a `postgres://` URL.
    pub db: String,
    /// The ledger number of the unit amounts are in (1: msat).
    pub unit: u32,
    /// Minimum stake, verification period, unbonding, downtime.
    pub policy: zkaudit_settle::provers::RegistryPolicy,
    /// Fee shares and slashing rates.
    pub settlement: zkaudit_settle::settlement::Policy,
}

/// Everything handlers share.
pub struct AppState {
    config: Config,
    store: Arc<Store>,
    ledger: Ledger,
    registry: Registry,
    attestation_key: SigningKey,
    binary_sha256: String,
    tokens: Arc<zkaudit_jobs::TokenCache>,
    metrics: Arc<metrics::Metrics>,
    /// One recorder of finished proofs at a time (workers and upkeep both call it).
    recording: std::sync::Mutex<()>,
    /// The SOC dashboard's remembered checks.
    dashboard: zkaudit_dashboard::Dashboard,
    /// The Blossom server's blob directory.
    blossom: Arc<zkaudit_store::server::BlobServer>,
    /// Set when a proof was recorded, so the storer need not wait for its
    /// next round to put the receipt in storage.
    store_due: AtomicBool,
    /// The settlement accounts behind `/v1/provers`, when enabled.
    settlement: Option<zkaudit_settle::settlement::Settlement<zkaudit_settle::SqlLedger>>,
}

/// Runs `f` on the blocking pool (store, ledger and verifier calls block).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] zkaudit_app::Error),
    /// The job store could not be opened.
    #[error(transparent)]
    Store(#[from] zkaudit_jobs::Error),
    /// Files or sockets.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// The attestation key is unusable.
    #[error("attestation key: {0}")]
    Key(String),
    /// The Blossom blob directory is unusable.
    #[error("blossom: {0}")]
    Blossom(#[from] zkaudit_store::Error),
    /// The settlement database cannot be opened.
    #[error("settlement database: {0}")]
    Settle(String),
}

/// The API's routes, without the server around them.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let blossom = zkaudit_store::server::router(Arc::clone(&state.blossom));
    Router::new()
        .nest("/blossom", blossom)
        .route("/", get(dashboard_api::index))
        .route("/assets/{file}", get(dashboard_api::asset))
        .route("/v1/dashboard/integrity", get(dashboard_api::integrity))
        .route("/v1/dashboard/integrity/check", post(dashboard_api::check_log))
        .route("/v1/dashboard/activity", get(dashboard_api::activity))
        .route("/v1/dashboard/compliance", get(dashboard_api::compliance))
        .route("/v1/dashboard/proofs", get(dashboard_api::proofs))
        .route("/v1/dashboard/findings", get(dashboard_api::findings))
        .route("/v1/dashboard/events/{index}", get(dashboard_api::event))
        .route("/v1/dashboard/lineage", get(dashboard_api::lineage))
        .route("/v1/dashboard/report.html", get(dashboard_api::report_html))
        .route("/v1/dashboard/report.pdf", get(dashboard_api::report_pdf))
        .route("/v1/dashboard/stream", get(dashboard_api::stream))
        .route("/v1/health", get(status::health))
        .route("/v1/ready", get(status::ready))
        .route("/v1/attestation", get(status::attestation))
        .route("/v1/openapi.json", get(status::openapi))
        .route("/metrics", get(status::metrics))
        .route("/v1/jobs", post(jobs_api::submit).get(jobs_api::list))
        .route("/v1/jobs/{id}", get(jobs_api::get).delete(jobs_api::cancel))
        .route("/v1/blobs", post(jobs_api::upload))
        .route("/v1/prove/income-threshold", post(jobs_api::income_threshold))
        .route("/v1/receipts/{id}", get(jobs_api::receipt))
        .route("/v1/verify", post(jobs_api::verify))
        .route("/v1/verify/batch", post(jobs_api::verify_batch))
        .route("/v1/provers", get(provers_api::list).post(provers_api::register))
        .route("/v1/provers/select", post(provers_api::select))
        .route("/v1/provers/probe", post(provers_api::probe))
        .route("/v1/provers/{key}/attest", post(provers_api::attest))
        .route("/v1/provers/{key}/jobs", get(market_api::assigned))
        .route("/v1/market/jobs", post(market_api::post))
        .route("/v1/market/jobs/{id}", get(market_api::get))
        .route("/v1/market/jobs/{id}/receipt", post(market_api::deliver))
        .route("/v1/market/jobs/{id}/expire", post(market_api::expire))
        .route("/v1/market/deposits", post(market_api::deposit))
        .route("/v1/provers/{key}/unbond", post(provers_api::unbond))
        .route("/v1/provers/{key}/withdraw", post(provers_api::withdraw))
        .route("/v1/log/entries", post(log_api::append))
        .route("/v1/log/checkpoint", get(log_api::checkpoint))
        .route("/v1/log/proof/inclusion", get(log_api::inclusion))
        .route("/v1/log/proof/consistency", get(log_api::consistency))
        .route("/checkpoint", get(log_api::checkpoint_file))
        .route("/tile/{*path}", get(log_api::tile))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state.metrics), metrics::track))
        .with_state(state)
}

/// Loads or creates the attestation signing key, `DIR/private/attestation.key`.
fn attestation_key(dir: &zkaudit_tlog::LedgerDir, origin: &str) -> Result<SigningKey, StartError> {
    let path = dir.attestation_key();
    if path.exists() {
        return zkaudit_tlog::read_signing_key(&path).map_err(|e| StartError::Key(e.to_string()));
    }
    let key = SigningKey::generate(&format!("{origin}/attestation")).map_err(|e| StartError::Key(e.to_string()))?;
    dir.create_private_dir().map_err(|e| StartError::Key(e.to_string()))?;
    zkaudit_tlog::write_signing_key(&path, &key).map_err(|e| StartError::Key(e.to_string()))?;
    Ok(key)
}

impl AppState {
    /// Opens everything the API serves: the ledger with its index, the job
    /// store (recovering jobs a previous run left running), the attestation
    /// key, and the hash of `config.exe`. Starts no threads and listens on
    /// nothing, so a test can drive [`router`] directly. Blocks: call it off
    /// the async runtime (PostgreSQL's client runs one of its own).
    ///
    /// # Errors
    /// [`StartError`] if the ledger, store, key or executable is unusable.
    pub fn open(config: Config) -> Result<Arc<AppState>, StartError> {
        let ledger = Ledger::open(&config.dir, None)?;
        let origin = ledger.reader()?.checkpoint().origin.clone();
        let store = Store::open(&config.db)?;
        // A single-process server owns every running job: they are all
        // orphans now. With PostgreSQL, other workers may be alive: only
        // jobs without a recent heartbeat are.
        let stale_before = if store.is_shared() { zkaudit_jobs::now_ns() - STALE_AFTER.as_nanos() as i64 } else { i64::MAX };
        let r = store.recover(stale_before)?;
        if r != zkaudit_jobs::Recovered::default() {
            eprintln!("recovered jobs left running: {} re-queued, {} failed (retry limit), {} cancelled", r.requeued, r.failed, r.cancelled);
        }
        let exe_bytes = std::fs::read(&config.exe).map_err(|error| StartError::Io { what: format!("reading {}", config.exe.display()), error })?;
        let binary_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&exe_bytes));
        let blossom = zkaudit_store::server::BlobServer::open(zkaudit_store::server::Config {
            dir: ledger.dir().blossom_dir(),
            max_blob_bytes: config.blossom_max_bytes,
            mount: "/blossom".into(),
            public_url: None,
        })?;
        let settlement = match &config.market {
            Some(m) => {
                let ledger = zkaudit_settle::SqlLedger::open(&m.db, Arc::new(zkaudit_settle::SystemClock)).map_err(|e| StartError::Settle(e.to_string()))?;
                let window = zkaudit_settle::settlement::DEFAULT_CHALLENGE_WINDOW_S;
                Some(zkaudit_settle::settlement::Settlement::new(ledger, m.settlement, m.unit, window).map_err(|e| StartError::Settle(e.to_string()))?)
            }
            None => None,
        };
        let store = Arc::new(store);
        let state = Arc::new(AppState {
            settlement,
            attestation_key: attestation_key(ledger.dir(), &origin)?,
            registry: config.registry.clone(),
            tokens: Arc::new(zkaudit_jobs::TokenCache::new(Arc::clone(&store))),
            store,
            ledger,
            binary_sha256,
            metrics: Arc::new(metrics::Metrics::default()),
            recording: std::sync::Mutex::default(),
            dashboard: zkaudit_dashboard::Dashboard::new(),
            blossom,
            store_due: AtomicBool::new(true),
            config,
        });
        // Proofs finished while no server ran (remote workers) go in now.
        state.record_proofs();
        Ok(state)
    }

    /// Starts the thread that keeps the ledger's index following the
    /// appends, off their path ([`zkaudit_app::ledger::IndexFollower`]);
    /// it stops when dropped.
    ///
    /// # Errors
    /// [`StartError::Ledger`] if the thread cannot start.
    pub fn follow_index(&self) -> Result<zkaudit_app::ledger::IndexFollower, StartError> {
        Ok(zkaudit_app::ledger::IndexFollower::spawn(self.ledger.dir().root(), self.ledger.index_spec(), INDEX_EVERY)?)
    }

    /// Records the proof events of succeeded jobs not yet in the ledger.
    fn record_proofs(&self) {
        let _one = self.recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match zkaudit_app::proof::record_jobs(&self.store, &self.ledger, &self.registry) {
            Ok(r) => {
                if r.recorded + r.found > 0 {
                    self.store_due.store(true, Ordering::Relaxed);
                }
                self.metrics.proofs_recorded(r.recorded as u64, r.failed.len() as u64);
                for (job, e) in r.failed {
                    eprintln!("recording job {job}'s proof in the ledger: {e}");
                }
            }
            Err(e) => eprintln!("recording proofs in the ledger: {e}"),
        }
    }

    /// Puts recorded proofs' receipts in `proofs`; whether every one was taken.
    fn store_proofs(&self, proofs: &zkaudit_store::ProofStore) -> bool {
        match zkaudit_app::proof::store_jobs(&self.store, &self.ledger, proofs, STORE_BATCH) {
            Ok(r) => {
                self.metrics.proofs_stored(r.stored.len() as u64, r.failed.len() as u64);
                for (job, e) in &r.failed {
                    eprintln!("storing job {job}'s receipt: {e}");
                }
                r.failed.is_empty()
            }
            Err(e) => {
                eprintln!("storing receipts: {e}");
                false
            }
        }
    }
}

/// Tells the server when an in-process worker finishes a job, so its proof
/// is recorded at once rather than at the next upkeep.
struct Finished(Arc<AppState>);

impl zkaudit_jobs::worker::Observer for Finished {
    fn finished(&self, job: &zkaudit_jobs::Job, f: &zkaudit_jobs::Finish, seconds: f64) {
        zkaudit_jobs::worker::Observer::finished(self.0.metrics.as_ref(), job, f, seconds);
        if f.receipt_id.is_some() {
            self.0.record_proofs();
        }
    }
}

/// A started server: its address, and a handle to stop it.
pub struct Running {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shutdown: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    serve: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Keeps the index following the appends, off their path.
    indexer: zkaudit_app::ledger::IndexFollower,
}

impl Running {
    /// Serves until ctrl-c / SIGTERM, then stops the workers (their jobs are
    /// re-queued on the next start).
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn until_signal(self) -> std::io::Result<()> {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        self.stop().await
    }

    /// Stops serving and joins the workers.
    ///
    /// The HTTP side stops first; the worker and upkeep threads, which hold
    /// the job store too, stop after it, so the store is closed on one of
    /// them and never on the async runtime (where PostgreSQL's blocking
    /// client must not be dropped).
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let r = self.serve.await.map_err(std::io::Error::other)?;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let indexer = self.indexer;
        let _ = tokio::task::spawn_blocking(move || drop(indexer)).await;
        r
    }
}

/// How often the index follower looks for new entries.
const INDEX_EVERY: Duration = Duration::from_millis(200);

/// How long a worker may go without a heartbeat before its job is
/// re-queued (only matters with workers on other machines).
const STALE_AFTER: Duration = Duration::from_secs(30);

/// Opens the ledger and job store, recovers jobs left running by a previous
/// run, starts the workers and upkeep, and starts listening.
///
/// # Errors
/// [`StartError`] if the ledger, store, key or address is unusable.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let opened = tokio::task::spawn_blocking(move || AppState::open(config));
    let state = opened.await.map_err(|e| StartError::Io { what: "opening the ledger and job store".into(), error: std::io::Error::other(e) })??;
    let store = Arc::clone(&state.store);
    let listener = tokio::net::TcpListener::bind(state.config.addr)
        .await
        .map_err(|error| StartError::Io { what: format!("listening on {}", state.config.addr), error })?;
    let addr = listener.local_addr().map_err(|error| StartError::Io { what: "local address".into(), error })?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..state.config.workers {
        let cfg = zkaudit_jobs::worker::Config::local(i, state.config.exe.clone(), Duration::from_millis(250), state.config.segment_po2);
        let (store, stop, observer) = (Arc::clone(&store), Arc::clone(&stop), Finished(Arc::clone(&state)));
        let t = std::thread::Builder::new()
            .name(format!("zkaudit-worker-{i}"))
            .spawn(move || {
                if let Err(e) = zkaudit_jobs::worker::run(&store, &cfg, &stop, &observer) {
                    eprintln!("worker {}: {e}", cfg.name);
                }
            })
            .map_err(|error| StartError::Io { what: "starting a worker".into(), error })?;
        threads.push(t);
    }
    threads.push(upkeep(Arc::clone(&state), Arc::clone(&stop)).map_err(|error| StartError::Io { what: "starting upkeep".into(), error })?);
    threads.push(warmer(Arc::clone(&state), Arc::clone(&stop)).map_err(|error| StartError::Io { what: "starting the dashboard warmer".into(), error })?);
    if let Some(proofs) = state.config.proof_store.clone() {
        // Not joined on stop: a round waiting on a slow store must not hold
        // up shutdown, and a put it leaves unmarked is repeated (idempotent,
        // by SHA-256) after the next start.
        storer(Arc::clone(&state), proofs, Arc::clone(&stop)).map_err(|error| StartError::Io { what: "starting the storer".into(), error })?;
    }
    let indexer = state.follow_index()?;
    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    let app = router(Arc::clone(&state));
    let serve = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.changed().await;
            })
            .await
    });
    Ok(Running { addr, stop, shutdown, threads, serve, indexer })
}

/// Receipts stored a round at most.
const STORE_BATCH: u32 = 16;

/// How often the storer looks for recorded proofs to store, and its first
/// wait after a failed round.
const STORE_EVERY: Duration = Duration::from_secs(5);

/// The longest the storer waits between rounds while stores keep failing.
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// How long the storer waits after `failures` failed rounds in a row:
/// [`STORE_EVERY`] doubled per failure, at most [`STORE_BACKOFF_MAX`].
fn store_backoff(failures: u32) -> Duration {
    STORE_EVERY.saturating_mul(1 << failures.min(16)).min(STORE_BACKOFF_MAX)
}

/// Puts recorded proofs' receipts in content-addressed storage
/// (`zkaudit serve --store`) on a thread of its own, so a slow or
/// unreachable store holds up neither the workers nor the upkeep. A round
/// runs as soon as a proof is recorded, else every [`STORE_EVERY`]; while
/// rounds fail, the wait doubles up to [`STORE_BACKOFF_MAX`] (a store that
/// is down is retried, not hammered). A receipt no store took stays in the
/// ledger (`receipts/`), its job without a `proof_ref`, until one does.
fn storer(state: Arc<AppState>, proofs: Arc<zkaudit_store::ProofStore>, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("zkaudit-storer".into()).spawn(move || {
        let mut failures = 0u32;
        let mut next = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let now = std::time::Instant::now();
            // A newly recorded proof is stored at once, unless stores are failing.
            if now < next && !(failures == 0 && state.store_due.load(Ordering::Relaxed)) {
                continue;
            }
            state.store_due.store(false, Ordering::Relaxed);
            failures = if state.store_proofs(&proofs) { 0 } else { failures.saturating_add(1) };
            next = std::time::Instant::now() + if failures == 0 { STORE_EVERY } else { store_backoff(failures - 1) };
        }
    })
}

/// Keeps the dashboard's panels computed as the log grows
/// ([`zkaudit_dashboard::Dashboard::warm`]), checking every second.
fn warmer(state: Arc<AppState>, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("zkaudit-dashboard".into()).spawn(move || {
        let mut last_error = None;
        while !stop.load(Ordering::Relaxed) {
            // A failure is the panels' own, which their requests report;
            // it is logged once, not every second.
            match state.dashboard.warm(&state.ledger) {
                Err(e) if last_error.as_ref() != Some(&e.to_string()) => {
                    eprintln!("dashboard: {e}");
                    last_error = Some(e.to_string());
                }
                Err(_) => {}
                Ok(_) => last_error = None,
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

/// Every few seconds: re-queue jobs of workers that stopped sending
/// heartbeats (workers on other machines), record the proofs they made,
/// and apply the TTLs.
fn upkeep(state: Arc<AppState>, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("zkaudit-upkeep".into()).spawn(move || {
        let mut tick = 0u64;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(500));
            tick += 1;
            if !tick.is_multiple_of(10) {
                continue;
            }
            let now = zkaudit_jobs::now_ns();
            if state.store.is_shared() {
                if let Err(e) = state.store.recover(now - STALE_AFTER.as_nanos() as i64) {
                    eprintln!("upkeep: {e}");
                }
            }
            state.record_proofs();
            let before = |ttl: Option<Duration>| ttl.map(|t| now - t.as_nanos() as i64);
            if let Err(e) = state.store.cleanup(before(state.config.job_ttl), before(state.config.receipt_ttl)) {
                eprintln!("upkeep: {e}");
            }
        }
    })
}
