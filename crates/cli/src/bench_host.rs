//! `zkaudit bench host`: what the host collector costs.
//!
//! * `sample`: CPU time of one `Sampler::sample` (read every source, parse,
//!   build the events), from this thread's CPU-time clock
//!   (`CLOCK_THREAD_CPUTIME_ID`), median over the samples;
//! * `collect`: CPU time per sample of the whole collector (`collect host`
//!   at a 1 s interval into a fresh local ledger: sampling, the sink
//!   thread, a group commit per sample and the index), from the process's
//!   user + system time (`/proc/self/stat`, all threads) from the first
//!   sample to the last, divided by the samples between.
//!
//! The share of one core at a 1 s interval is the CPU time per sample
//! divided by 1 s.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::output::{out, outln, print_json};

/// `zkaudit bench host` arguments.
#[derive(Args)]
pub struct HostArgs {
    /// Samples taken back to back for `sample`.
    #[arg(long, default_value_t = 300)]
    samples: u64,
    /// Samples at a 1 s interval for `collect` (it takes that many seconds).
    #[arg(long, default_value_t = 30)]
    collect_samples: u64,
    /// Scratch directory for the ledger (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

/// This thread's CPU time so far, ns.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// This process's user + system time so far (all threads), ns.
fn process_cpu_ns() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, in clock ticks (USER_HZ = 100).
    let rest = s.rsplit_once(") ").map(|(_, r)| r).context("/proc/self/stat: no command name")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> { f.get(i).and_then(|v| v.parse().ok()).context("/proc/self/stat: short line") };
    Ok((ticks(11)? + ticks(12)?) * 10_000_000)
}

/// Runs the benchmark.
pub fn run(a: HostArgs) -> Result<()> {
    let mut sampler = zkaudit_host::Sampler::new(PathBuf::from("/"));
    sampler.sample();
    let mut per = Vec::with_capacity(a.samples as usize);
    for _ in 0..a.samples {
        let t0 = thread_cpu_ns();
        let events = sampler.sample();
        for e in &events {
            e.canonical_bytes()?;
        }
        per.push(thread_cpu_ns() - t0);
    }
    per.sort_unstable();
    let sample_ns = per[per.len() / 2];

    let scratch = tempfile::Builder::new().prefix("zkaudit-bench-host").tempdir_in(&a.dir)?;
    let ledger = scratch.path().join("ledger");
    zkaudit_tlog::init(&ledger, "bench.zkaudit.test/host")?;
    let opts = zkaudit_host::Options { root: PathBuf::from("/"), interval: Duration::from_secs(1), count: Some(a.collect_samples) };
    // Steady state: from the first sample to the last (opening the ledger
    // and the final flush left out).
    let (mut first, mut last) = (0u64, 0u64);
    let o = zkaudit_host::run(&opts, zkaudit_collect::Destination::Ledger { dir: ledger, index: None }, &AtomicBool::new(false), &mut |n| {
        let now = process_cpu_ns().unwrap_or(0);
        if n == 1 {
            first = now;
        }
        last = now;
    })?;
    let collect_ns = last.saturating_sub(first) / o.samples.saturating_sub(1).max(1);
    for (what, ns, n) in [("sample", sample_ns, a.samples), ("collect", collect_ns, o.samples)] {
        let row = json!({"measure": what, "samples": n, "cpu_ms_per_sample": ns as f64 / 1e6, "share_of_core_at_1s_percent": ns as f64 / 1e9 * 100.0});
        if a.json {
            print_json(&row);
        } else {
            outln!("{what:8} {:8.3} ms CPU per sample  {:6.3} % of one core at a 1 s interval  ({} samples)", ns as f64 / 1e6, ns as f64 / 1e7, n);
        }
    }
    Ok(())
}
