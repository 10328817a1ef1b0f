//! `zkaudit serve`, `zkaudit worker` and `zkaudit token …`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkaudit_jobs::{Scope, Store};

use crate::output::{out, outln, print_json};
use crate::store_cmd::StoreOpts;
use crate::zk_cmd::RegistryArgs;

/// The job store of `dir` unless `--db` names another.
fn store_spec(dir: &Path, db: Option<&str>) -> String {
    db.map_or_else(|| zkaudit_tlog::LedgerDir::new(dir).jobs_sqlite().display().to_string(), str::to_owned)
}

/// `zkaudit serve` arguments.
#[derive(Args)]
pub struct ServeArgs {
    /// The ledger directory (from `zkaudit log init`); also holds the default job store.
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// In-process prover workers (0: only `zkaudit worker`s on the --db prove).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Queued jobs at most; beyond it submissions get 429 and /v1/ready 503.
    #[arg(long, default_value_t = 64)]
    queue_capacity: u64,
    /// Job store: a `postgres://user@host:port/db` URL; default DIR/jobs.sqlite.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Largest request body in bytes (larger ones get 413).
    #[arg(long, default_value_t = 32 << 20)]
    max_body_bytes: usize,
    /// Time limit of one job attempt, and the most a request may ask for (s).
    #[arg(long, default_value_t = 3600)]
    job_timeout: u64,
    /// Attempts before a job whose worker keeps stopping fails.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Delete finished jobs and their data this many seconds after they finish.
    #[arg(long, value_name = "SECONDS")]
    job_ttl: Option<u64>,
    /// Delete receipts this many seconds after they are made.
    #[arg(long, value_name = "SECONDS")]
    receipt_ttl: Option<u64>,
    /// Largest blob the Blossom server under /blossom accepts (bytes; larger get 413).
    #[arg(long, default_value_t = zkaudit_store::DEFAULT_MAX_BLOB_BYTES)]
    blossom_max_bytes: u64,
    /// Let requests without a token read the ledger (checkpoint, proofs, tiles).
    #[arg(long)]
    anonymous_read: bool,
    /// Segment size of proofs as a power of two (cycles); by default chosen per
    /// job to pad it to the fewest total cycles.
    #[arg(long, value_parser = clap::value_parser!(u32).range(13..=22))]
    segment_po2: Option<u32>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Where recorded proofs' receipts are also put (each job's `proof_ref`
    /// says where; retried with backoff while no store takes them).
    #[command(flatten)]
    store: StoreOpts,
    /// The proof market's settlement database (a SQLite file or a
    /// `postgres://` URL): serves the prover registry at /v1/provers,
    /// recorded in this server's ledger.
    #[arg(long, value_name = "PATH|URL")]
    settle_db: Option<String>,
    /// The ledger number of the settlement unit (1: msat).
    #[arg(long, default_value_t = 1, requires = "settle_db")]
    settle_unit: u32,
    #[command(flatten)]
    provers: crate::provers_cmd::PolicyArgs,
    #[command(flatten)]
    settle_policy: crate::settle_cmd::SettlePolicyArgs,
}

/// `zkaudit worker` arguments.
#[derive(Args)]
pub struct WorkerArgs {
    /// The shared job store (`postgres://user@host:port/db`).
    #[arg(long, value_name = "URL")]
    db: String,
    /// Jobs run in parallel by this process.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Segment size of proofs as a power of two (cycles); by default chosen per
    /// job to pad it to the fewest total cycles.
    #[arg(long, value_parser = clap::value_parser!(u32).range(13..=22))]
    segment_po2: Option<u32>,
}

/// Token commands.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token; prints it once (only its SHA-256 is stored).
    Create {
        /// The server's directory (its job store holds the tokens).
        dir: PathBuf,
        /// read, submit or admin (each includes the ones before it).
        #[arg(long)]
        scope: Scope,
        /// Tenant: tokens of one tenant see each other's jobs, no one else's.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Job store URL, when the server runs with --db.
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its ID.
    Revoke {
        /// The server's directory.
        dir: PathBuf,
        /// The token ID (16 hex) printed by `token create`.
        id: String,
        /// Job store URL, when the server runs with --db.
        #[arg(long, value_name = "URL")]
        db: Option<String>,
    },
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().context("finding this executable (workers run jobs with it)")
}

/// `zkaudit serve`.
pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let config = zkaudit_server::Config {
        db: store_spec(&a.dir, a.db.as_deref()),
        dir: a.dir,
        addr: a.addr,
        workers: a.workers,
        queue_capacity: a.queue_capacity,
        max_body_bytes: a.max_body_bytes,
        job_timeout_s: a.job_timeout,
        max_attempts: a.max_attempts,
        job_ttl: a.job_ttl.map(Duration::from_secs),
        receipt_ttl: a.receipt_ttl.map(Duration::from_secs),
        anonymous_read: a.anonymous_read,
        exe: exe()?,
        segment_po2: a.segment_po2,
        registry: a.registry.load()?,
        blossom_max_bytes: a.blossom_max_bytes,
        proof_store: a.store.open_for_put()?.map(Arc::new),
        market: a.settle_db.map(|db| zkaudit_server::MarketConfig {
            db,
            unit: a.settle_unit,
            policy: a.provers.policy(),
            settlement: a.settle_policy.policy(),
        }),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let running = zkaudit_server::start(config).await?;
        // Scripts and tests read the address from this line.
        outln!("listening on http://{}", running.addr);
        running.until_signal().await.context("serving")?;
        eprintln!("stopped; running jobs will be re-queued on the next start");
        Ok(ExitCode::SUCCESS)
    })
}

/// `zkaudit worker`: claims jobs from a shared PostgreSQL job store.
pub fn worker(a: WorkerArgs) -> Result<ExitCode> {
    if !a.db.starts_with("postgres://") && !a.db.starts_with("postgresql://") {
        bail!("--db must be a postgres:// URL: workers on other machines share the server's PostgreSQL job store");
    }
    let store = Arc::new(Store::open(&a.db)?);
    let stop = Arc::new(AtomicBool::new(false));
    let exe = exe()?;
    let threads: Vec<_> = (0..a.workers.max(1))
        .map(|i| {
            let cfg = zkaudit_jobs::worker::Config::local(i, exe.clone(), Duration::from_millis(500), a.segment_po2);
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || zkaudit_jobs::worker::run(&store, &cfg, &stop, &zkaudit_jobs::worker::NoObserver))
        })
        .collect();
    eprintln!("worker: {} thread(s) claiming jobs from the shared store", threads.len());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("worker: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zkaudit token …`.
pub fn token(cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create { dir, scope, tenant, db, json } => {
            if tenant.is_empty() {
                bail!("--tenant must not be empty");
            }
            let store = Store::open(&store_spec(&dir, db.as_deref()))?;
            let (t, secret) = store.create_token(scope, &tenant)?;
            if json {
                print_json(&json!({"token": secret, "id": t.id, "scope": t.scope, "tenant": t.tenant}));
            } else {
                outln!("{secret}");
                eprintln!("token {} (scope {}, tenant {}): shown once; only its SHA-256 is stored", t.id, t.scope, t.tenant);
            }
        }
        TokenCommand::Revoke { dir, id, db } => {
            let store = Store::open(&store_spec(&dir, db.as_deref()))?;
            if !store.revoke_token(&id)? {
                bail!("no live token with ID {id}");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
