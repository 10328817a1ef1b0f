//! `zkaudit bench audit`: index build speed, lookup and query latency, and a
//! compliance pack run over a large log (default 10^6 events).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use zkaudit_audit::{Engine, Options};
use zkaudit_index::{Query, Selector, Sqlite};
use zkaudit_tlog::{Log, LogReader};

use crate::bench::median;
use crate::output::{out, outln, print_json, progress};

#[derive(Args)]
pub struct AuditArgs {
    /// Directory in which to create the scratch log (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Background events in the log; the telecoms example stream is added to them.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Runs of each timed lookup, query and pack (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Event types of the background load: none of them is read by the telecoms pack.
const TYPES: &[&str] = &[
    "rpc_call",
    "db_write",
    "db_read",
    "cache_miss",
    "login",
    "logout",
    "file_upload",
    "file_download",
    "config_read",
    "queue_publish",
    "queue_consume",
    "dns_lookup",
    "tls_handshake",
    "batch_job",
    "api_request",
    "metric_flush",
];
/// 2026-01-01T00:00:00Z in ns, and the 30-day span the background covers.
const T0_NS: i64 = 1_767_225_600_000_000_000;
const SPAN_NS: i64 = 30 * 86_400 * 1_000_000_000;

fn background_event(i: u64, n: u64) -> Result<Vec<u8>> {
    let ts = T0_NS + (i128::from(SPAN_NS) * i128::from(i) / i128::from(n.max(1))) as i64;
    let secs = ts.div_euclid(1_000_000_000);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs)?.replace_nanosecond(ts.rem_euclid(1_000_000_000) as u32)?;
    let ev = json!({
        "version": "1.0",
        "timestamp": dt.format(&time::format_description::well_known::Rfc3339)?,
        "layer": if i.is_multiple_of(3) { "network" } else { "application" },
        "type": TYPES[(i % TYPES.len() as u64) as usize],
        "input": format!("sha256:{:064x}", i),
        "output": format!("sha256:{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "metadata": { "host": format!("node-{}", i % 64), "seq": i },
    });
    Ok(zkaudit_event::Event::from_entry(ev.to_string().as_bytes())?.canonical_bytes()?)
}

fn timed<T>(repeat: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Duration, T)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        last = Some(f()?);
        times.push(t.elapsed());
    }
    Ok((median(times), last.context("no run")?))
}

pub fn bench_audit(a: &AuditArgs) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("zkaudit-bench-").tempdir_in(&a.dir)?;
    let dir = tmp.path().join("log");
    zkaudit_tlog::init(&dir, "bench.zkaudit.invalid/audit")?;

    // The log: background events plus the telecoms evidence stream.
    let pb = if a.json { indicatif::ProgressBar::hidden() } else { progress(a.events, "appending") };
    let log = Log::open(&dir)?;
    let t = Instant::now();
    let mut i = 0;
    while i < a.events {
        let end = a.events.min(i + 50_000);
        log.append((i..end).map(|k| background_event(k, a.events)).collect::<Result<_>>()?)?;
        pb.set_position(end);
        i = end;
    }
    let path = "examples/events/telecoms.jsonl";
    let file = std::fs::File::open(path).with_context(|| format!("opening {path} (run from the repository root)"))?;
    let stream = zkaudit_event::parse_jsonl(std::io::BufReader::new(file), path)?;
    let extra = stream.len() as u64;
    log.append(stream)?;
    let append_s = t.elapsed().as_secs_f64();
    drop(log);
    pb.finish_and_clear();
    let total = a.events + extra;

    let report = |name: &str, value: f64, unit: &str, note: String| {
        if a.json {
            print_json(&json!({ "bench": name, "value": value, "unit": unit, "events": total, "note": note }));
        } else {
            outln!("{name:<36} {value:>12.3} {unit:<9} {note}");
        }
    };
    report("append (setup)", total as f64 / append_s, "events/s", format!("{total} events, durable batches of 50,000"));

    // Index build from the tiles.
    let reader = LogReader::open(&dir)?;
    let layout = zkaudit_tlog::LedgerDir::new(&dir);
    let index_path = layout.index_sqlite();
    let mut index = Sqlite::open(&index_path)?;
    let t = Instant::now();
    zkaudit_index::rebuild(&mut index, &reader, &mut |_| {})?;
    let build = t.elapsed();
    report("index build (SQLite)", total as f64 / build.as_secs_f64(), "events/s", format!("{:.2} s for {total} events", build.as_secs_f64()));
    let index_bytes = sqlite_bytes(&index_path);
    report("index size (SQLite)", index_bytes as f64 / total as f64, "bytes/ev", format!("{index_bytes} bytes in the database and its WAL"));

    // Index lookups.
    let hour = Query {
        selector: Selector::All,
        from_ns: Some(T0_NS + 86_400_000_000_000 * 10),
        to_ns: Some(T0_NS + 86_400_000_000_000 * 10 + 3_600_000_000_000),
        limit: None,
    };
    let lookups = [
        ("lookup by type (3 rows)", Query::new(Selector::Type("failover".into()))),
        ("lookup by type + 1 h range", Query { selector: Selector::Type("rpc_call".into()), ..hour.clone() }),
        ("lookup by 1 h time range", hour.clone()),
    ];
    for (name, q) in &lookups {
        let (d, rows) = timed(a.repeat, || Ok(zkaudit_index::select(&mut index, &reader, q)?))?;
        report(name, d.as_secs_f64() * 1e3, "ms", format!("median of {}, {} rows", a.repeat, rows.len()));
    }

    // Prolog queries end to end: a fresh engine per run (machine start-up,
    // loading facts on demand, answering).
    let vkey = zkaudit_tlog::read_vkey(&dir)?;
    let engine =
        |opts: Options| -> Result<Engine> { Ok(Engine::new(&layout, LogReader::open(&dir)?, Box::new(Sqlite::open(&index_path)?), vkey.clone(), None, opts)) };
    let (d, _) = timed(a.repeat, || engine(Options::default()))?;
    report("engine start-up (baseline)", d.as_secs_f64() * 1e3, "ms", "Scryer machine and prelude, no facts".into());
    let window = Options { from_ns: hour.from_ns, to_ns: hour.to_ns, ..Options::default() };
    let queries = [
        ("query event/6 by type", "event(I, T, L, failover, In, Out).", Options::default()),
        ("query failovers over 50 ms", "event(I, _, _, failover, _, _), meta(I, duration_ms, Ms), Ms > 50.", Options::default()),
        ("query event/6 in a 1 h window", "findall(I, event(I, _, _, _, _, _), L), length(L, N).", window),
    ];
    for (name, goal, opts) in queries {
        let (d, n) = timed(a.repeat, || {
            let mut e = engine(opts.clone())?;
            let out = e.query(goal)?;
            Ok((out.answers.len(), e.loaded_events()))
        })?;
        report(name, d.as_secs_f64() * 1e3, "ms", format!("median of {}, {} answers, {} events loaded", a.repeat, n.0, n.1));
    }

    // A compliance pack over the whole log.
    let (pack, file) = zkaudit_app::audit::load_pack("telecoms")?;
    let file = file.as_str();
    let (d, r) = timed(a.repeat, || {
        let mut e = engine(Options::default())?;
        let r = zkaudit_audit::pack::evaluate(&mut e, &pack, &[])?;
        zkaudit_audit::report::to_json(&r, file, e.reader(), None)?;
        Ok(r)
    })?;
    let verdicts: Vec<String> = r.rules.iter().map(|x| format!("{}={}", x.id, x.verdict.as_str())).collect();
    report("compliance pack telecoms", d.as_secs_f64() * 1e3, "ms", format!("median of {}, with evidence; {}", a.repeat, verdicts.join(" ")));
    Ok(())
}

/// Bytes of a SQLite database with its write-ahead log.
pub(crate) fn sqlite_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal"].iter().filter_map(|ext| std::fs::metadata(format!("{}{ext}", path.display())).ok()).map(|m| m.len()).sum()
}
