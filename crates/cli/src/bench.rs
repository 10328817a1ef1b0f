//! `zkaudit bench …`: performance figures, printed (and as JSON with --json).
//!
//! Figures are medians and percentiles over the run; compare them only
//! with figures from the same machine and run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use rand::Rng;
use serde_json::json;
use zkaudit_merkle::verify_inclusion;
use zkaudit_tlog::{Log, LogReader};

use crate::output::{out, outln, print_json, progress};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Durable appends: events/s and per-batch latency percentiles, fsync on.
    Append(AppendArgs),
    /// `zkaudit log append` of a large JSON Lines file end to end (wall time,
    /// against a same-run disk baseline), the first query after it, and the
    /// index's build rate and bytes per event.
    LogAppend(crate::bench_log_append::LogAppendArgs),
    /// Inclusion-proof generation and verification time at several tree sizes.
    Proof(ProofArgs),
    /// zkVM cycles per input record of a plan, from execute-only runs over
    /// the data repeated 1, 2, 4, … times (marginal cost = the slope).
    Cycles(CyclesArgs),
    /// Index build speed, lookup and Prolog query latency, and a compliance
    /// pack run over a large log (10^6 events by default).
    Audit(crate::bench_audit::AuditArgs),
    /// `zkaudit record`'s overhead on a C build, a file-heavy script and an
    /// open loop (against the same workload unrecorded and under strace -f),
    /// and the events/s it sustains into a local ledger.
    Record(crate::bench_record::RecordArgs),
    /// Capture-file ingest (`zkaudit ingest pcap`) throughput in packets/s
    /// and MB/s on a synthetic capture (1 GiB by default), against tshark.
    Pcap(crate::bench_pcap::PcapArgs),
    /// The host collector's CPU time per sample and its share of one core
    /// at a 1 s interval.
    Host(crate::bench_host::HostArgs),
    /// Artifact downloads and metadata requests through the registry
    /// gateway against the same requests straight to a local upstream.
    Registry(crate::bench_registry::RegistryArgs),
    /// Settlement transfers per second in linked batches, and the latency
    /// from a verified receipt to the posted payment, on SQLite or PostgreSQL.
    Settle(crate::bench_settle::SettleArgs),
}

#[derive(Args)]
pub struct CyclesArgs {
    /// Plan file.
    plan: PathBuf,
    #[command(flatten)]
    data: crate::plan_cmd::DataArgs,
    /// How many times to repeat the input records, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    repeat: Vec<usize>,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AppendArgs {
    /// Directory in which to create the scratch log (removed afterwards).
    /// It must be on the file system you want to measure.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Batch sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    batch_sizes: Vec<usize>,
    /// Concurrent appending threads.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Maximum events appended per batch size.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Maximum seconds spent per batch size.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Approximate size of each event's canonical JSON, in bytes.
    #[arg(long, default_value_t = 300)]
    event_bytes: usize,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ProofArgs {
    /// Directory in which to create the scratch log (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Tree sizes to measure, comma-separated, ascending.
    #[arg(long, value_delimiter = ',', default_value = "1000,1000000,10000000")]
    sizes: Vec<u64>,
    /// Proofs generated and verified per size.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Bytes per entry of the scratch log.
    #[arg(long, default_value_t = 64)]
    entry_bytes: usize,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCommand) -> Result<std::process::ExitCode> {
    match cmd {
        BenchCommand::Append(a) => bench_append(&a)?,
        BenchCommand::LogAppend(a) => crate::bench_log_append::run(a)?,
        BenchCommand::Proof(a) => bench_proof(&a)?,
        BenchCommand::Cycles(a) => bench_cycles(&a)?,
        BenchCommand::Audit(a) => crate::bench_audit::bench_audit(&a)?,
        BenchCommand::Record(a) => crate::bench_record::bench_record(&a)?,
        BenchCommand::Pcap(a) => crate::bench_pcap::run(a)?,
        BenchCommand::Host(a) => crate::bench_host::run(a)?,
        BenchCommand::Registry(a) => crate::bench_registry::run(a)?,
        BenchCommand::Settle(a) => crate::bench_settle::run(a)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn scratch_log(parent: &Path) -> Result<tempfile::TempDir> {
    let tmp = tempfile::Builder::new()
        .prefix("zkaudit-bench-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a scratch directory in {}", parent.display()))?;
    zkaudit_tlog::init(tmp.path(), "bench.zkaudit.invalid/log")?;
    Ok(tmp)
}

/// Canonical bytes of a realistic event of about `target` bytes.
fn sample_event(i: u64, target: usize) -> Result<Vec<u8>> {
    let mut meta = serde_json::Map::new();
    meta.insert("seq".into(), json!(i));
    meta.insert("pad".into(), json!(""));
    let mut ev = json!({
        "version": "1.0",
        "timestamp": format!("2026-11-21T10:{:02}:{:02}.{:09}Z", (i / 60) % 60, i % 60, i % 1_000_000_000),
        "layer": "network",
        "type": "rpc",
        "input": format!("sha256:{:064x}", i),
        "output": format!("sha256:{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "metadata": meta,
    });
    let base = serde_json::to_vec(&ev)?.len();
    ev["metadata"]["pad"] = json!("x".repeat(target.saturating_sub(base)));
    let line = serde_json::to_string(&ev)?;
    let mut entries = zkaudit_event::parse_jsonl(line.as_bytes(), "bench")?;
    entries.pop().context("sample event did not parse")
}

/// Baseline from the same run: sequential write of `mib` MiB followed by one
/// fdatasync, in MB/s (10^6 bytes per second). This is the most a durable
/// log on this file system could write.
fn disk_baseline(dir: &Path, mib: usize) -> Result<f64> {
    use std::io::Write;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let chunk = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut f = tmp.as_file();
    for _ in 0..mib {
        f.write_all(&chunk)?;
    }
    f.sync_data()?;
    Ok((mib << 20) as f64 / t.elapsed().as_secs_f64() / 1e6)
}

/// The median of `v` (the upper one of an even count; zero when empty).
pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_append(a: &AppendArgs) -> Result<()> {
    let pool: Vec<Vec<u8>> = (0..4096).map(|i| sample_event(i, a.event_bytes)).collect::<Result<_>>()?;
    let avg = pool.iter().map(Vec::len).sum::<usize>() / pool.len();

    // Ingest cost (parse + validate + RFC 8785), on one thread, for reference.
    let text: String = (0..50_000u64).map(|i| String::from_utf8_lossy(&pool[(i % 4096) as usize]).into_owned() + "\n").collect();
    let t = Instant::now();
    let parsed = zkaudit_event::parse_jsonl(text.as_bytes(), "bench")?.len();
    let ingest_rate = parsed as f64 / t.elapsed().as_secs_f64();
    let disk = disk_baseline(&a.dir, 256)?;
    if !a.json {
        outln!("events: ~{avg} bytes canonical JSON; clients: {}; fsync: on; dir: {}", a.clients, a.dir.display());
        outln!("ingest (parse + validate + RFC 8785, 1 thread): {ingest_rate:.0} events/s");
        outln!("baseline: sequential write + fdatasync of 256 MiB: {disk:.0} MB/s");
        outln!(
            "{:>6} {:>10} {:>12} {:>10} {:>10} {:>10} {:>8} {:>8} {:>7}",
            "batch",
            "events",
            "events/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "secs",
            "MB/s",
            "%disk"
        );
    }
    // Scratch logs are removed only at exit: mass deletion slows inode
    // allocation on ext4 for minutes and would distort the next run.
    let mut scratch = Vec::new();
    for &batch in &a.batch_sizes {
        let tmp = scratch_log(&a.dir)?;
        let log = Arc::new(Log::open(tmp.path())?);
        let remaining = Arc::new(AtomicU64::new(a.events));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
        let pb = progress(a.events, &format!("batch {batch}"));
        let start = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..a.clients)
                .map(|c| {
                    let (log, remaining, latencies, pool, pb) = (log.clone(), remaining.clone(), latencies.clone(), &pool, pb.clone());
                    s.spawn(move || -> Result<()> {
                        let mut mine = Vec::new();
                        let mut next = c * 7919;
                        while Instant::now() < deadline {
                            let take = remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(batch as u64));
                            if take.is_err() {
                                break;
                            }
                            let entries: Vec<Vec<u8>> = (0..batch).map(|k| pool[(next + k) % pool.len()].clone()).collect();
                            next += batch;
                            let t = Instant::now();
                            log.append(entries)?;
                            mine.push(t.elapsed());
                            pb.inc(batch as u64);
                        }
                        latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.extend(mine);
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join().map_err(|_| anyhow::anyhow!("bench client panicked"))??;
            }
            Ok(())
        })?;
        let elapsed = start.elapsed();
        pb.finish_and_clear();
        let mut lat = std::mem::take(&mut *latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        lat.sort();
        let events = lat.len() as u64 * batch as u64;
        let rate = events as f64 / elapsed.as_secs_f64();
        // Bytes made durable per event: the length-prefixed entry and its
        // leaf hash in a level-0 tile (higher tiles add under 1%).
        let mbps = rate * (avg + 2 + 32) as f64 / 1e6;
        let (p50, p99, max) = (percentile(&lat, 0.5), percentile(&lat, 0.99), lat.last().copied().unwrap_or_default());
        drop(log);
        let size = LogReader::open(tmp.path())?.size();
        anyhow::ensure!(size == events, "log holds {size} entries but {events} were acknowledged");
        if a.json {
            print_json(&json!({
                "bench": "append", "batch_size": batch, "clients": a.clients, "event_bytes": avg,
                "events": events, "seconds": elapsed.as_secs_f64(), "events_per_sec": rate,
                "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max), "ingest_events_per_sec": ingest_rate,
                "mb_per_sec": mbps, "disk_baseline_mb_per_sec": disk,
            }));
        } else {
            outln!(
                "{batch:>6} {events:>10} {rate:>12.0} {:>10.3} {:>10.3} {:>10.3} {:>8.2} {mbps:>8.1} {:>6.0}%",
                ms(p50),
                ms(p99),
                ms(max),
                elapsed.as_secs_f64(),
                100.0 * mbps / disk
            );
        }
        scratch.push(tmp);
    }
    Ok(())
}

fn bench_proof(a: &ProofArgs) -> Result<()> {
    let tmp = scratch_log(&a.dir)?;
    let log = Log::open(tmp.path())?;
    let mut rng = rand::rng();
    if !a.json {
        outln!("{:>10} {:>8} {:>14} {:>14} {:>10}", "tree_size", "hashes", "prove µs p50", "verify µs p50", "build s");
    }
    let mut size = 0u64;
    for &target in &a.sizes {
        let t = Instant::now();
        let pb = progress(target.saturating_sub(size), &format!("build {target}"));
        while size < target {
            let n = (target - size).min(1 << 16);
            let entries: Vec<Vec<u8>> = (size..size + n)
                .map(|i| {
                    let mut e = format!("entry {i:020} ").into_bytes();
                    e.resize(a.entry_bytes, b'.');
                    e
                })
                .collect();
            size = log.append(entries)?.tree_size;
            pb.inc(n);
        }
        pb.finish_and_clear();
        let build = t.elapsed();
        let (mut prove, mut verify) = (Vec::new(), Vec::new());
        let mut hashes = 0;
        for _ in 0..a.samples {
            let index = rng.random_range(0..size);
            let t = Instant::now();
            // A fresh reader each time: what one CLI or HTTP request pays.
            let p = LogReader::open(tmp.path())?.inclusion(index, None)?;
            prove.push(t.elapsed());
            let t = Instant::now();
            verify_inclusion(&p.leaf_hash, p.leaf_index, p.tree_size, &p.hashes, &p.root_hash).context("proof did not verify")?;
            verify.push(t.elapsed());
            hashes = p.hashes.len();
        }
        prove.sort();
        verify.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let (p50, v50) = (percentile(&prove, 0.5), percentile(&verify, 0.5));
        if a.json {
            print_json(&json!({
                "bench": "proof", "tree_size": size, "proof_hashes": hashes, "samples": a.samples,
                "prove_us_p50": us(p50), "prove_us_p99": us(percentile(&prove, 0.99)),
                "verify_us_p50": us(v50), "verify_us_p99": us(percentile(&verify, 0.99)), "build_seconds": build.as_secs_f64(),
            }));
        } else {
            outln!("{size:>10} {hashes:>8} {:>14.1} {:>14.2} {:>10.1}", us(p50), us(v50), build.as_secs_f64());
        }
    }
    Ok(())
}

fn bench_cycles(a: &CyclesArgs) -> Result<()> {
    let base = crate::plan_cmd::load(&a.plan, &a.data)?;
    if !a.json {
        outln!("plan {} (plan hash {})", a.plan.display(), hex::encode(base.file.hash));
        outln!(
            "{:>6} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9}",
            "repeat",
            "records",
            "user cyc",
            "paging cyc",
            "user/rec",
            "total cyc",
            "total/rec",
            "segments"
        );
    }
    let mut first: Option<(usize, u64)> = None;
    for &k in &a.repeat {
        let l = base.repeated(k);
        let report = zkaudit_app::proof::run(&l, true).with_context(|| format!("repeat {k}"))?;
        let e = report.zkvm.context("the zkVM run gave no cycle counts")?;
        let records = l.records();
        // Paging is part of the per-record cost: records and tables live in
        // memory that must be paged in and out.
        let work = e.user_cycles + e.paging_cycles;
        if a.json {
            let mut v = serde_json::to_value(e)?;
            v["repeat"] = serde_json::json!(k);
            v["records"] = serde_json::json!(records);
            print_json(&v);
        } else {
            outln!(
                "{k:>6} {records:>9} {:>12} {:>12} {:>12.1} {:>12} {:>12.1} {:>9}",
                e.user_cycles,
                e.paging_cycles,
                e.user_cycles as f64 / records as f64,
                e.total_cycles,
                e.total_cycles as f64 / records as f64,
                e.segments
            );
        }
        match first {
            None => first = Some((records, work)),
            Some((r0, c0)) if !a.json && records > r0 => {
                let marginal = (work as f64 - c0 as f64) / (records - r0) as f64;
                outln!(
                    "{:>6} marginal user+paging cycles per record from {r0} to {records} records: {marginal:.1}; fixed (the intercept): {:.0}",
                    "",
                    c0 as f64 - marginal * r0 as f64
                );
            }
            _ => {}
        }
    }
    Ok(())
}
