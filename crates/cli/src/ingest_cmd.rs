//! `zkaudit ingest …`: turn recorded artifacts (capture files, git history) into events.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::output::{print_json, progress};
use crate::sink_args::SinkArgs;

/// `zkaudit ingest` subcommands.
#[derive(Subcommand)]
pub enum IngestCommand {
    /// Read pcap / pcapng files (optionally gzipped) and record their flows
    /// (Zeek conn.log fields, Community ID), DNS, TLS and HTTP transactions.
    Pcap(PcapArgs),
    /// Record a git repository's commits reachable from HEAD (one event
    /// per commit, parents first); a re-run into the same ledger records
    /// only new commits.
    Git(GitArgs),
}

/// `zkaudit ingest git` arguments.
#[derive(Args)]
pub struct GitArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// Only commits after this revision (a commit ID, tag or branch).
    #[arg(long, value_name = "REV")]
    since: Option<String>,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
    /// The repository (its work tree or .git directory).
    #[arg(value_name = "REPO")]
    repo: PathBuf,
}

/// `zkaudit ingest pcap` arguments.
#[derive(Args)]
pub struct PcapArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// Community ID seed, if your sensors use one other than 0.
    #[arg(long, default_value_t = 0)]
    community_id_seed: u16,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
    /// Capture files, ingested in order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// `zkaudit ingest …`.
pub fn run(c: IngestCommand) -> Result<ExitCode> {
    match c {
        IngestCommand::Pcap(a) => pcap(a),
        IngestCommand::Git(a) => git(a),
    }
}

fn git(a: GitArgs) -> Result<ExitCode> {
    let pb = progress(0, "commits");
    let o = zkaudit_git::ingest(&a.repo, a.since.as_deref(), a.sink.destination()?, &mut |done, of| {
        pb.set_length(of);
        pb.set_position(done);
    })?;
    pb.finish_and_clear();
    if a.json {
        print_json(&o);
    } else {
        eprintln!("zkaudit ingest git: {} commits, {} recorded now, {} already in the ledger; {} appended", o.commits, o.ingested, o.already, o.sink.appended);
    }
    Ok(ExitCode::SUCCESS)
}

/// Exits 1 when a file could not be read to its end (its error is printed;
/// what was read before it is recorded, with a gap event).
fn pcap(a: PcapArgs) -> Result<ExitCode> {
    let pb = progress(a.files.len() as u64, "captures");
    let r = zkaudit_net::ingest::ingest_files(&a.files, a.sink.destination()?, a.community_id_seed, &mut |_| pb.inc(1))?;
    pb.finish_and_clear();
    if a.json {
        print_json(&r);
    } else {
        for f in &r.files {
            eprintln!(
                "{}: {} packets, {} flows, {} DNS, {} TLS, {} HTTP{}",
                f.file.display(),
                f.packets,
                f.flows,
                f.dns,
                f.tls,
                f.http,
                if f.malformed + f.not_ip > 0 { format!(" ({} not IP, {} malformed)", f.not_ip, f.malformed) } else { String::new() }
            );
        }
        for f in &r.files {
            if let Some(e) = &f.error {
                eprintln!("error: {e} (the packets before it were recorded, with a collector_gap event)");
            }
        }
        let mut line = format!("zkaudit ingest pcap: {} events, {} appended", r.sink.events, r.sink.appended);
        if let (Some(first), Some(size)) = (r.sink.first_index, r.sink.tree_size) {
            line += &format!(" from leaf {first}, tree size {size}");
        }
        if r.sink.left_in_spool > 0 {
            line += &format!("; {} batches still spooled (the next run sends them)", r.sink.left_in_spool);
        }
        eprintln!("{line}");
    }
    Ok(if r.refused() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
