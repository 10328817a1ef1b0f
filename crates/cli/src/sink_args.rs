//! Where a collector's events go: the `--ledger` / `--server` arguments
//! every collector and ingest command shares, and how a serving collector
//! (the gateways) waits to be stopped.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use zkaudit_collect::Destination;

/// Where a collector's events go: a local ledger or a server.
#[derive(Args)]
pub struct SinkArgs {
    /// Append to this local ledger (made by `zkaudit log init`).
    #[arg(long, value_name = "DIR", conflicts_with = "server", required_unless_present = "server")]
    ledger: Option<PathBuf>,
    /// The ledger's index (SQLite path or postgres:// URL; default DIR/index.sqlite).
    #[arg(long, value_name = "SPEC", requires = "ledger")]
    index: Option<String>,
    /// Send to this zkaudit server (POST /v1/log/entries, through a durable spool).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Bearer token with the submit scope.
    #[arg(long, env = "ZKAUDIT_TOKEN", hide_env_values = true, requires = "server")]
    token: Option<String>,
    /// Spool directory for batches the server has not acknowledged yet
    /// (default: ~/.local/state/zkaudit/spool/<hash of the URL>).
    #[arg(long, value_name = "DIR", requires = "server")]
    spool: Option<PathBuf>,
}

impl SinkArgs {
    /// The destination these arguments name.
    pub fn destination(self) -> Result<Destination> {
        Ok(match (self.ledger, self.server) {
            (Some(dir), _) => Destination::Ledger { dir, index: self.index },
            (None, Some(url)) => {
                let Some(token) = self.token else { bail!("--server needs --token (or ZKAUDIT_TOKEN) with the submit scope") };
                let spool = self.spool.unwrap_or_else(|| zkaudit_collect::spool::default_dir(&url));
                Destination::Server { url, token, spool }
            }
            (None, None) => bail!("give --ledger DIR or --server URL"),
        })
    }
}

/// Resolves on SIGINT or SIGTERM: how a gateway waits to be stopped.
///
/// # Errors
/// If the signal handler cannot be installed.
pub async fn until_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
