//! `zkaudit record -- CMD`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
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

/// `zkaudit record` arguments.
#[derive(Args)]
pub struct RecordArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// Write a JSON report (command status, tracer and sink counters) to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print nothing of our own unless something fails.
    #[arg(long, short)]
    quiet: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// `zkaudit record`: exits as the command did.
pub fn record(a: RecordArgs) -> Result<ExitCode> {
    let r = zkaudit_record::run(&a.command, None, a.sink.destination()?)?;
    let status = match r.status {
        zkaudit_record::CommandStatus::Exited(c) => json!({"exit_code": c}),
        zkaudit_record::CommandStatus::Signaled(s) => json!({"signal": s}),
    };
    if let Some(path) = &a.report {
        let report = json!({"command": status, "tracer": r.stats, "sink": r.sink});
        std::fs::write(path, format!("{report}\n")).map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))?;
    }
    if !a.quiet || r.sink.left_in_spool > 0 || r.sink.lost > 0 {
        let mut line =
            format!("zkaudit record: {} events ({} processes, {} gaps), {} appended", r.sink.events, r.stats.processes, r.stats.gaps, r.sink.appended);
        if let (Some(first), Some(size)) = (r.sink.first_index, r.sink.tree_size) {
            line += &format!(" from leaf {first}, tree size {size}");
        }
        if r.sink.left_in_spool > 0 {
            line += &format!("; {} batches still spooled (the next run sends them): {}", r.sink.left_in_spool, r.sink.last_error.as_deref().unwrap_or(""));
        }
        if r.sink.lost > 0 {
            line += &format!("; {} events lost at the spool cap (recorded as a gap)", r.sink.lost);
        }
        eprintln!("{line}");
    }
    zkaudit_record::exit_like(r.status)
}
