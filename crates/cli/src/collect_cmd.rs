//! `zkaudit collect …`: system-wide collectors (audit, host metrics, live network).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::output::{out, outln, print_json};
use crate::sink_args::SinkArgs;

/// `zkaudit collect` subcommands.
#[derive(Subcommand)]
pub enum CollectCommand {
    /// Read the Linux audit netlink socket (as the audit daemon) and record
    /// every exec and connect, and access to watched paths, until SIGTERM,
    /// SIGINT or --duration; the audit rules and settings are put back.
    Audit(AuditArgs),
    /// Sample /proc and /sys (CPU, load, memory, pressure, disk, network,
    /// file systems, temperatures, RAPL energy) every interval into
    /// physical-layer events, until --count samples or SIGTERM/SIGINT.
    Host(HostArgs),
    /// Capture packets from an interface (libpcap, optional BPF filter) and
    /// record flows, DNS, TLS and HTTP as `zkaudit ingest pcap` does, with
    /// kernel drops as gap events, until --duration or SIGTERM/SIGINT.
    Net(NetArgs),
}

/// `zkaudit collect net` arguments.
#[derive(Args)]
pub struct NetArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// Interface to capture on (`lo`, `eth0`, `any`).
    #[arg(long, short = 'i')]
    interface: String,
    /// BPF filter, in tcpdump's syntax (e.g. 'tcp port 443 or udp port 53').
    #[arg(long, short = 'f')]
    filter: Option<String>,
    /// Bytes kept of each packet.
    #[arg(long, default_value_t = 262_144)]
    snaplen: i32,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Print the outcome as one JSON object at the end.
    #[arg(long)]
    json: bool,
}

/// `zkaudit collect host` arguments.
#[derive(Args)]
pub struct HostArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Stop after this many samples.
    #[arg(long)]
    count: Option<u64>,
    /// Read proc/ and sys/ under this directory instead of / (a captured tree).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Print the outcome as one JSON object at the end.
    #[arg(long)]
    json: bool,
}

/// `zkaudit collect audit` arguments.
#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// Watch this file or directory tree for reads, writes and attribute changes (repeatable).
    #[arg(long, value_name = "PATH")]
    watch: Vec<PathBuf>,
    /// Raise the kernel's backlog_limit to this many records while collecting.
    #[arg(long, default_value_t = 8192)]
    backlog_limit: u32,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Print the outcome as one JSON object at the end.
    #[arg(long)]
    json: bool,
}

/// `zkaudit collect …`.
pub fn run(c: CollectCommand) -> Result<ExitCode> {
    match c {
        CollectCommand::Audit(a) => audit(a),
        CollectCommand::Host(a) => host(a),
        CollectCommand::Net(a) => net(a),
    }
}

/// A flag that SIGTERM and SIGINT set, so a collector can flush and stop.
fn stop_flag() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

fn net(a: NetArgs) -> Result<ExitCode> {
    let stop = stop_flag()?;
    let opts = zkaudit_net::live::LiveOptions {
        interface: a.interface,
        filter: a.filter,
        duration: a.duration.map(std::time::Duration::from_secs_f64),
        snaplen: a.snaplen,
    };
    let o = zkaudit_net::live::capture(&opts, a.sink.destination()?, &stop)?;
    if a.json {
        print_json(&o);
    } else {
        eprintln!(
            "collect net: {} packets, {} flows, {} dropped by the kernel, {} by the interface (recorded as gaps); {} events appended",
            o.packets, o.flows, o.kernel_dropped, o.interface_dropped, o.sink.appended
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn host(a: HostArgs) -> Result<ExitCode> {
    if !(a.interval > 0.0 && a.interval.is_finite()) {
        anyhow::bail!("--interval must be a positive number of seconds, not {}", a.interval);
    }
    let stop = stop_flag()?;
    let opts = zkaudit_host::Options { root: a.root, interval: std::time::Duration::from_secs_f64(a.interval), count: a.count };
    let o = zkaudit_host::run(&opts, a.sink.destination()?, &stop, &mut |_| {})?;
    if a.json {
        print_json(&o);
    } else {
        let mut line = format!("collect host: {} samples, {} metric events, {} appended", o.samples, o.metric_events, o.sink.appended);
        if !o.unavailable.is_empty() {
            line += &format!("; no sensor readings from {} (said once, as sensor_unavailable)", o.unavailable.join(", "));
        }
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(a: AuditArgs) -> Result<ExitCode> {
    let opts = zkaudit_linux_audit::Options { watch: a.watch, backlog_limit: a.backlog_limit, duration: a.duration.map(std::time::Duration::from_secs_f64) };
    let stop = stop_flag()?;
    let json = a.json;
    let o = zkaudit_linux_audit::run(&opts, a.sink.destination()?, &stop, &mut |s| {
        if !json {
            outln!("collecting: audit enabled={} backlog_limit={} pid={} (SIGTERM or Ctrl-C stops and restores)", s.enabled, s.backlog_limit, s.pid);
        }
    })?;
    if json {
        print_json(&o);
    } else {
        eprintln!(
            "collect audit: {} records, {} events, {} appended, {} lost by the kernel; rules added {} (removed), already there {}; status (enabled, backlog_limit, pid) {:?} -> {:?}",
            o.records, o.events, o.sink.appended, o.lost, o.rules_added, o.rules_preexisting, o.status_before, o.status_after
        );
    }
    Ok(ExitCode::SUCCESS)
}
