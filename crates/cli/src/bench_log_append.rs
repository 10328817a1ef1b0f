//! `zkaudit bench log-append`: `zkaudit log append` of a large JSON Lines
//! file as a user runs it (the binary, wall time), against same-run
//! baselines (the log's own files written and synced again without the
//! work of an append, and as many bytes in one file, through the page
//! cache and with `O_DIRECT`); then the first query, which brings the
//! index up to the log, the index's build rate and size, and the parser's
//! rate on one and on every core.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Args;
use serde_json::json;

use crate::bench::median;
use crate::output::{out, outln, print_json};

#[derive(Args)]
pub struct LogAppendArgs {
    /// Directory for the input file and scratch logs (removed afterwards).
    /// It must be on the file system you want to measure.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Events in the input.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Approximate size of each event's canonical JSON, in bytes.
    #[arg(long, default_value_t = 300)]
    event_bytes: usize,
    /// Runs (medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Event types of the input, cycled.
const TYPES: [&str; 8] = ["rpc_call", "db_write", "db_read", "login", "file_upload", "dns_lookup", "api_request", "metric_flush"];

/// One input line: an event of about `target` bytes as canonical JSON
/// (keys written out of order, as a producer might).
fn line(i: u64, target: usize) -> String {
    let head = format!(
        r#"{{"type":"{}","version":"1.0","timestamp":"2026-11-21T{:02}:{:02}:{:02}.{:09}Z","layer":"{}","input":"sha256:{:064x}","output":"sha256:{:064x}","metadata":{{"seq":{i},"host":"node-{}","pad":""#,
        TYPES[(i % 8) as usize],
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60,
        i % 1_000_000_000,
        if i.is_multiple_of(3) { "network" } else { "application" },
        i,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i % 64,
    );
    let pad = target.saturating_sub(head.len() + 4);
    format!("{head}{}\"}}}}\n", "x".repeat(pad))
}

/// Runs this binary with `args` and returns its wall time. The file
/// system of `quiet` is synced first, so that no writeback of earlier
/// steps (the generated input, the last run's index) falls into the run.
fn run_timed(quiet: &Path, args: &[&std::ffi::OsStr]) -> Result<Duration> {
    let exe = std::env::current_exe().context("finding the zkaudit binary")?;
    let fd = std::fs::File::open(quiet).with_context(|| format!("opening {}", quiet.display()))?;
    rustix::fs::syncfs(&fd).with_context(|| format!("syncing the file system of {}", quiet.display()))?;
    let t = Instant::now();
    let out = Command::new(&exe).args(args).output().with_context(|| format!("running {}", exe.display()))?;
    let d = t.elapsed();
    ensure!(out.status.success(), "zkaudit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(d)
}

/// Seconds to write `bytes` sequentially to one new file in 1 MiB writes
/// and fdatasync it: the least a durable append of that much data can take
/// on this file system. With `direct`, the writes bypass the page cache
/// (`O_DIRECT`, from a 4 KiB-aligned buffer, the last write padded to a
/// whole block): what the device itself takes, without the cost of
/// filling the page cache (which on some virtual machines exceeds the
/// device's).
fn disk_seconds(dir: &Path, bytes: u64, direct: bool) -> Result<f64> {
    use std::os::unix::fs::OpenOptionsExt as _;
    const BLOCK: usize = 4096;
    let path = dir.join(if direct { "disk-baseline-direct" } else { "disk-baseline" });
    let flags = if direct { rustix::fs::OFlags::DIRECT.bits().cast_signed() } else { 0 };
    let mut buf = vec![0x5au8; (1 << 20) + BLOCK];
    let at = buf.as_ptr().align_offset(BLOCK);
    let chunk = &mut buf[at..at + (1 << 20)];
    let t = Instant::now();
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(flags).open(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let n = if direct { n.next_multiple_of(BLOCK) } else { n };
        f.write_all(&chunk[..n]).with_context(|| format!("writing {}", path.display()))?;
        left = left.saturating_sub(n as u64);
    }
    f.sync_data()?;
    let d = t.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(d)
}

/// Seconds to write files of the sizes in `files` at the same relative
/// paths under `into`, made durable as the log makes its own
/// ([`zkaudit_tlog::write_all_durably`]), with no parsing, hashing or
/// sequencing: what the tlog-tiles layout's files alone cost here.
fn files_seconds(into: &Path, files: &[(PathBuf, u64)]) -> Result<f64> {
    let batch = files.iter().map(|(rel, len)| Ok((into.join(rel), vec![0x5a; usize::try_from(*len)?]))).collect::<Result<Vec<_>>>()?;
    let t = Instant::now();
    zkaudit_tlog::write_all_durably(&batch)?;
    Ok(t.elapsed().as_secs_f64())
}

fn parse_rate(input: &Path, threads: usize) -> Result<f64> {
    let t = Instant::now();
    let n = zkaudit_event::parse_jsonl_parallel(std::fs::File::open(input)?, "bench", threads, zkaudit_tlog::Leaves::push, |_, _, _| true)?;
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

pub fn run(a: LogAppendArgs) -> Result<()> {
    // Scratch logs are removed only at exit: mass deletion slows inode
    // allocation on ext4 for minutes and would distort the next run.
    let scratch = tempfile::Builder::new().prefix("zkaudit-bench-").tempdir_in(&a.dir)?;
    let input = scratch.path().join("events.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..a.events {
            w.write_all(line(i, a.event_bytes).as_bytes())?;
        }
        w.flush()?;
    }
    let input_bytes = std::fs::metadata(&input)?.len();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let n = a.events as f64;
    let mut directs = Vec::new();
    let (mut appends, mut disks, mut firsts, mut seconds, mut builds, mut parse1, mut parse_all) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut log_bytes, mut index_bytes, mut log_files_count) = (0u64, 0u64, 0usize);
    let mut layouts = Vec::new();
    for rep in 0..a.reps.max(1) {
        let dir = scratch.path().join(format!("log{rep}"));
        zkaudit_tlog::init(&dir, "bench.zkaudit.invalid/log-append")?;
        let d = run_timed(scratch.path(), &["log".as_ref(), "append".as_ref(), dir.as_os_str(), input.as_os_str()])?;
        appends.push(d);
        let size = zkaudit_tlog::LogReader::open(&dir)?.size();
        ensure!(size == a.events, "the log holds {size} entries, not {}", a.events);
        let files = log_files(&dir, Path::new(""))?;
        (log_bytes, log_files_count) = (files.iter().map(|f| f.1).sum(), files.len());
        // The baselines: the log's files written again without the work of
        // an append, and as many bytes written to one file and synced,
        // through the page cache and past it.
        layouts.push(Duration::from_secs_f64(files_seconds(&scratch.path().join(format!("files{rep}")), &files)?));
        disks.push(Duration::from_secs_f64(disk_seconds(scratch.path(), log_bytes, false)?));
        directs.push(Duration::from_secs_f64(disk_seconds(scratch.path(), log_bytes, true)?));
        let goal = "event(0, T, L, Ty, I, O).";
        firsts.push(run_timed(scratch.path(), &["query".as_ref(), dir.as_os_str(), goal.as_ref()])?);
        seconds.push(run_timed(scratch.path(), &["query".as_ref(), dir.as_os_str(), goal.as_ref()])?);
        let index_path = zkaudit_tlog::LedgerDir::new(&dir).index_sqlite();
        index_bytes = crate::bench_audit::sqlite_bytes(&index_path);
        // The index build alone, in this process, into a fresh file.
        let fresh = scratch.path().join(format!("rebuild{rep}.sqlite"));
        let mut index = zkaudit_index::Sqlite::open(&fresh)?;
        let t = Instant::now();
        zkaudit_index::rebuild(&mut index, &zkaudit_tlog::LogReader::open(&dir)?, &mut |_| {})?;
        builds.push(t.elapsed());
        parse1.push(Duration::from_secs_f64(1.0 / parse_rate(&input, 1)?));
        parse_all.push(Duration::from_secs_f64(1.0 / parse_rate(&input, cores)?));
    }
    let (append, disk, direct, first, second, build, layout) =
        (median(appends), median(disks), median(directs), median(firsts), median(seconds), median(builds), median(layouts));
    let rate = |d: Duration| n / d.as_secs_f64();
    let inv = |d: Duration| 1.0 / d.as_secs_f64();
    // The target is set by the faster way of writing one file.
    let target = 1e6f64.min(0.9 * rate(disk.min(direct)));
    if a.json {
        print_json(&json!({
            "bench": "log-append", "events": a.events, "input_bytes": input_bytes, "log_bytes": log_bytes, "reps": a.reps,
            "append_s": append.as_secs_f64(), "append_events_per_s": rate(append),
            "disk_baseline_s": disk.as_secs_f64(), "disk_baseline_events_per_s": rate(disk),
            "disk_direct_baseline_s": direct.as_secs_f64(), "disk_direct_baseline_events_per_s": rate(direct), "target_events_per_s": target,
            "log_files": log_files_count, "log_files_baseline_s": layout.as_secs_f64(), "log_files_baseline_events_per_s": rate(layout),
            "first_query_s": first.as_secs_f64(), "append_then_first_query_s": (append + first).as_secs_f64(), "synced_query_s": second.as_secs_f64(),
            "index_build_events_per_s": rate(build), "index_bytes": index_bytes, "index_bytes_per_event": index_bytes as f64 / n,
            "parse_events_per_s_1_thread": inv(median(parse1)), "parse_events_per_s_all": inv(median(parse_all)), "cores": cores,
        }));
        return Ok(());
    }
    outln!("{} events, {:.0} bytes per input line, {} runs (medians); dir {}", a.events, input_bytes as f64 / n, a.reps, a.dir.display());
    outln!("zkaudit log append (wall)            {:>8.2} s  {:>12.0} events/s", append.as_secs_f64(), rate(append));
    outln!("disk baseline ({:.0} MB, write+sync)  {:>8.2} s  {:>12.0} events/s", log_bytes as f64 / 1e6, disk.as_secs_f64(), rate(disk));
    outln!(
        "the same, O_DIRECT                  {:>8.2} s  {:>12.0} events/s  (target: {:.0} events/s, {:.0}% reached)",
        direct.as_secs_f64(),
        rate(direct),
        target,
        100.0 * rate(append) / target
    );
    outln!("the log's {log_files_count} files, write+sync {:>8.2} s  {:>12.0} events/s", layout.as_secs_f64(), rate(layout));
    outln!("first query (index catches up)      {:>8.2} s", first.as_secs_f64());
    outln!("append, then first query answers    {:>8.2} s", (append + first).as_secs_f64());
    outln!("query on a synced index             {:>8.2} s", second.as_secs_f64());
    outln!("index build (SQLite, in process)    {:>8.2} s  {:>12.0} events/s", build.as_secs_f64(), rate(build));
    outln!("index size                          {:>8.1} MB  {:>11.1} bytes/event", index_bytes as f64 / 1e6, index_bytes as f64 / n);
    outln!("parse + RFC 8785 + leaf hash, 1 thread  {:>12.0} events/s", inv(median(parse1)));
    outln!("parse + RFC 8785 + leaf hash, {cores} threads {:>12.0} events/s", inv(median(parse_all)));
    Ok(())
}

/// The files under `dir` (recursively): each one's path relative to
/// `dir` (under `rel`) and its size in bytes.
fn log_files(dir: &Path, rel: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        let path = rel.join(e.file_name());
        if m.is_dir() {
            files.extend(log_files(&e.path(), &path)?);
        } else {
            files.push((path, m.len()));
        }
    }
    Ok(files)
}
