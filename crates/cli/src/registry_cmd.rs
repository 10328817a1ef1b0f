//! `zkaudit registry-gateway` and `zkaudit quarantine …`: the package
//! registry gateway, and managing what it held back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use zkaudit_collect::Destination;
use zkaudit_registry::quarantine::{Admin, Store};
use zkaudit_registry::upstream::Upstreams;

use crate::output::{out, outln, print_json};
use crate::sink_args::{until_signal, SinkArgs};

/// `zkaudit registry-gateway` arguments.
#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4873")]
    listen: SocketAddr,
    /// npm registry to forward to (default: `npm config get registry`).
    #[arg(long, value_name = "URL")]
    upstream_npm: Option<String>,
    /// PyPI simple-API base to forward to (default: pip's configured
    /// index-url, else pip's built-in default).
    #[arg(long, value_name = "URL")]
    upstream_pypi: Option<String>,
    /// Sparse cargo index to forward to, without `sparse+` (default: a
    /// sparse replacement of crates.io in $CARGO_HOME/config.toml).
    #[arg(long, value_name = "URL")]
    upstream_cargo: Option<String>,
    /// Policy file (TOML: tables on, provenance, age, deny); without one,
    /// the defaults (quarantine digest mismatches, malicious packages and
    /// the deny list; warn on the rest).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// A directory of OSV advisories (JSON, as osv.dev exports them) to check against.
    #[arg(long, value_name = "DIR")]
    osv: Option<PathBuf>,
    /// A Sigstore trusted root (`trusted_root.json`, as `cosign
    /// --trusted-root` takes) to verify provenance bundles against
    /// (default: the public-good root embedded in this build).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// Where a long-running registry process (the gateway, the guard) keeps
/// its quarantine store and records its events, and how it reports.
#[derive(Args)]
pub struct RunArgs {
    /// The quarantine store (default DIR/quarantine with --ledger; needed with --server).
    #[arg(long, value_name = "DIR")]
    quarantine: Option<PathBuf>,
    #[command(flatten)]
    sink: SinkArgs,
    /// Print the run's report as one JSON object when it stops.
    #[arg(long)]
    json: bool,
}

impl RunArgs {
    /// The quarantine store's directory (given, or the ledger's own), the
    /// events' destination, and whether to report as JSON.
    fn resolve(self) -> Result<(PathBuf, Destination, bool)> {
        let dest = self.sink.destination()?;
        let dir = match (self.quarantine, &dest) {
            (Some(d), _) => d,
            (None, Destination::Ledger { dir, .. }) => zkaudit_tlog::LedgerDir::new(dir).quarantine_dir(),
            (None, Destination::Server { .. }) => bail!("with --server, give --quarantine DIR"),
        };
        Ok((dir, dest, self.json))
    }
}

/// `zkaudit registry-gateway`: serves until SIGTERM or SIGINT.
pub fn gateway(a: GatewayArgs) -> Result<ExitCode> {
    let (quarantine_dir, destination, json) = a.run.resolve()?;
    let mut upstreams = Upstreams { npm: a.upstream_npm, pypi: a.upstream_pypi, cargo: a.upstream_cargo };
    for (eco, why) in upstreams.discover() {
        eprintln!("registry-gateway: /{eco}/ is off: {why}");
    }
    let config = zkaudit_registry::Config {
        listen: a.listen,
        upstreams,
        quarantine_dir,
        destination,
        policy_file: a.policy,
        osv_dir: a.osv,
        trusted_root: a.trusted_root,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(async {
        let running = zkaudit_registry::start(config).await?;
        // Scripts and tests read the address from this line.
        outln!("listening on http://{}", running.addr);
        for eco in zkaudit_registry::package::Ecosystem::ALL {
            if let Some(u) = running.upstreams.get(eco) {
                eprintln!("registry-gateway: /{eco}/ → {u}");
            }
        }
        until_signal().await?;
        eprintln!("registry-gateway: stopping; recording the downloads in flight");
        anyhow::Ok(running.stop().await?)
    })?;
    if json {
        print_json(&report);
    } else {
        eprintln!(
            "registry-gateway: {} downloads recorded ({} served, {} quarantined), {} failed upstream; {} events appended, {} batches left in the spool",
            report.downloads, report.served, report.quarantined, report.failed, report.sink.appended, report.sink.left_in_spool
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the store is and who acts on it.
#[derive(Args)]
pub struct StoreArgs {
    /// The ledger whose quarantine store (DIR/quarantine) and token store to use.
    #[arg(long, value_name = "DIR", required_unless_present = "quarantine")]
    ledger: Option<PathBuf>,
    /// The quarantine store directory.
    #[arg(long, value_name = "DIR")]
    quarantine: Option<PathBuf>,
}

impl StoreArgs {
    fn store(&self) -> Result<Store> {
        match (&self.quarantine, &self.ledger) {
            (Some(q), _) => Ok(Store::new(q)),
            (None, Some(l)) => Ok(Store::new(zkaudit_tlog::LedgerDir::new(l).quarantine_dir())),
            (None, None) => bail!("give --ledger DIR or --quarantine DIR"),
        }
    }
}

/// Who releases or purges, and where that is recorded.
#[derive(Args)]
pub struct AdminArgs {
    /// An admin token (`zkaudit token create DIR --scope admin`).
    #[arg(long, env = "ZKAUDIT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// The job store holding the tokens (default DIR/jobs.sqlite of --ledger).
    #[arg(long, value_name = "SPEC")]
    tokens: Option<String>,
    /// Why (recorded in the event).
    #[arg(long)]
    reason: String,
    /// Record to this ledger (default: --ledger).
    #[arg(long = "record-ledger", value_name = "DIR")]
    record_ledger: Option<PathBuf>,
}

/// `zkaudit quarantine` subcommands.
#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// List the quarantined artifacts.
    List {
        #[command(flatten)]
        at: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one artifact's entry (why it was held, its download event).
    Show {
        #[command(flatten)]
        at: StoreArgs,
        /// Its SHA-256 (`sha256:<hex>` or hex).
        digest: String,
    },
    /// Release an artifact: the gateway serves it from now on. Needs an
    /// admin token and a reason; recorded as a `quarantine_release` event.
    Release {
        #[command(flatten)]
        at: StoreArgs,
        #[command(flatten)]
        admin: AdminArgs,
        /// Its SHA-256.
        digest: String,
    },
    /// Have the kernel refuse to execute any file whose SHA-256 is
    /// quarantined (fanotify FAN_OPEN_EXEC_PERM; needs root). Each refusal
    /// is recorded as an `exec_denied` event whose parents name the
    /// download event. Runs until SIGTERM or SIGINT.
    Guard {
        /// Guard the mount holding PATH (repeatable; default /).
        #[arg(long = "mount", value_name = "PATH")]
        mounts: Vec<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Delete an artifact from the store for good. Needs an admin token;
    /// recorded as a `quarantine_purge` event.
    Purge {
        #[command(flatten)]
        at: StoreArgs,
        #[command(flatten)]
        admin: AdminArgs,
        /// Its SHA-256.
        digest: String,
    },
}

/// The token store and the ledger an admin operation records to.
fn admin_context(at: &StoreArgs, admin: &AdminArgs) -> Result<(zkaudit_jobs::Store, Destination)> {
    let ledger = admin.record_ledger.clone().or_else(|| at.ledger.clone());
    let Some(ledger) = ledger else { bail!("give --ledger DIR (or --record-ledger DIR): releases and purges are recorded") };
    let spec = admin.tokens.clone().unwrap_or_else(|| zkaudit_tlog::LedgerDir::new(&ledger).jobs_sqlite().display().to_string());
    let tokens = zkaudit_jobs::Store::open(&spec).with_context(|| format!("token store {spec}"))?;
    Ok((tokens, Destination::Ledger { dir: ledger, index: None }))
}

/// `zkaudit quarantine …`.
pub fn quarantine(c: QuarantineCommand) -> Result<ExitCode> {
    match c {
        QuarantineCommand::List { at, json } => {
            let entries = at.store()?.list()?;
            if json {
                print_json(&entries);
            } else if entries.is_empty() {
                outln!("nothing is quarantined");
            } else {
                for e in entries {
                    let state = if e.released.is_some() { "released" } else { "held" };
                    outln!("{}  {state:8}  {}  {}  {}", e.sha256, e.purl, e.at, e.reasons.join("; "));
                }
            }
        }
        QuarantineCommand::Show { at, digest } => {
            let store = at.store()?;
            let Some(e) = store.get(&digest)? else { bail!("no quarantined artifact has digest {digest} in {}", store.dir().display()) };
            print_json(&e);
        }
        QuarantineCommand::Release { at, admin, digest } => {
            let (tokens, dest) = admin_context(&at, &admin)?;
            let e = at.store()?.release_as(&Admin { tokens: &tokens, secret: &admin.admin_token }, dest, &digest, &admin.reason)?;
            let r = e.released.as_ref().map(|r| r.event.to_string()).unwrap_or_default();
            outln!("released {} ({}); recorded as {r}", e.purl, e.sha256);
        }
        QuarantineCommand::Guard { mounts, run } => return guard(mounts, run),
        QuarantineCommand::Purge { at, admin, digest } => {
            let (tokens, dest) = admin_context(&at, &admin)?;
            let e = at.store()?.purge_as(&Admin { tokens: &tokens, secret: &admin.admin_token }, dest, &digest, &admin.reason)?;
            outln!("purged {} ({}) from the quarantine store", e.purl, e.sha256);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zkaudit quarantine guard`: the guard on a blocking thread, until a
/// signal stops it or it fails (then the command fails with its error, so
/// a guard that stopped guarding does not linger).
fn guard(mounts: Vec<PathBuf>, run: RunArgs) -> Result<ExitCode> {
    let (dir, dest, json) = run.resolve()?;
    let store = Store::new(dir);
    let mounts = if mounts.is_empty() { vec![PathBuf::from("/")] } else { mounts };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let mut worker = {
        let stop = std::sync::Arc::clone(&stop);
        let mounts = mounts.clone();
        rt.spawn_blocking(move || {
            zkaudit_registry::guard::run(store, &mounts, dest, &stop, |held| {
                let _ = ready_tx.send(held);
            })
        })
    };
    let panicked = |_| anyhow::anyhow!("the guard thread panicked");
    let Ok(held) = ready_rx.recv() else {
        // The guard ended before it was ready: its error says why.
        let err = rt.block_on(worker).map_err(panicked)?.err();
        return Err(err.map_or_else(|| anyhow::anyhow!("the guard stopped before it started"), anyhow::Error::from));
    };
    let list: Vec<String> = mounts.iter().map(|m| m.display().to_string()).collect();
    // Scripts and tests read this line to know the marks are in place.
    outln!("guarding executions on the mounts of {} against {held} quarantined digests", list.join(", "));
    let joined = rt.block_on(async {
        tokio::select! {
            ended = &mut worker => anyhow::Ok(ended),
            signal = until_signal() => {
                signal?;
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                anyhow::Ok(worker.await)
            }
        }
    })?;
    let (report, sink) = joined.map_err(panicked)??;
    if json {
        print_json(&serde_json::json!({"guard": report, "events_appended": sink.appended, "left_in_spool": sink.left_in_spool}));
    } else {
        eprintln!(
            "quarantine guard: {} executions allowed, {} denied ({} unrecorded), {} files hashed, {} undecided; {} events appended, {} batches left in the spool",
            report.allowed, report.denied, report.unrecorded, report.hashed, report.undecided, sink.appended, sink.left_in_spool
        );
    }
    Ok(ExitCode::SUCCESS)
}
