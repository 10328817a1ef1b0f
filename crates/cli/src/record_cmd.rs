//! `zkaudit record -- CMD`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::sink_args::SinkArgs;

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
