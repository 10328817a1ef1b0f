//! `zkaudit bench settle`: settlement throughput (transfers per second, in
//! linked batches) and the latency from a verified receipt to the posted
//! payment, on SQLite or PostgreSQL.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use zkaudit_settle::settlement::{Job, Policy, Settlement};
use zkaudit_settle::{SqlLedger, SystemClock};

use crate::bench::{median, percentile};
use crate::output::{out, outln, print_json};

/// `zkaudit bench settle` arguments.
#[derive(Args)]
pub struct SettleArgs {
    /// The ledger: a `postgres://` URL (its tables are used as they are),
    /// or, by default, a scratch SQLite file in --dir.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Directory for the scratch SQLite ledger (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Jobs settled (each: accept = 2 transfers, pay = 5, one linked batch each).
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// Threads settling at once.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(a: SettleArgs) -> Result<()> {
    let scratch =
        tempfile::Builder::new().prefix("zkaudit-bench-settle-").tempdir_in(&a.dir).with_context(|| format!("a scratch directory in {}", a.dir.display()))?;
    let spec = a.db.clone().unwrap_or_else(|| scratch.path().join("settle.sqlite").display().to_string());
    let ledger = SqlLedger::open(&spec, Arc::new(SystemClock))?;
    let m = Arc::new(Settlement::new(ledger, Policy::default(), 1, 60)?);
    // A run of its own: names no earlier run used.
    let run = format!("{:x}", zkaudit_settle::Clock::now_ns(&SystemClock));
    let clients = a.clients.max(1);
    for c in 0..clients {
        m.deposit(&format!("{run}-buyer-{c}"), 1 << 60, &format!("{run}-deposit-{c}"))?;
        m.stake(&format!("{run}-prover-{c}"), 1 << 60, &format!("{run}-stake-{c}"))?;
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (m, run) = (Arc::clone(&m), run.clone());
            let n = a.jobs / clients + usize::from(c < a.jobs % clients);
            std::thread::spawn(move || -> Result<(Vec<Duration>, Vec<Duration>)> {
                let (mut accept, mut pay) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for k in 0..n {
                    let job = Job {
                        id: format!("{run}-{c}-{k}"),
                        buyer: format!("{run}-buyer-{c}"),
                        prover: format!("{run}-prover-{c}"),
                        price: 1_000_003,
                        deadline_s: 600,
                    };
                    let t = Instant::now();
                    m.accept(&job, 10_000)?;
                    accept.push(t.elapsed());
                    let t = Instant::now();
                    m.pay(&job, "bench")?;
                    pay.push(t.elapsed());
                }
                Ok((accept, pay))
            })
        })
        .collect();
    let (mut accept, mut pay) = (Vec::new(), Vec::new());
    for t in threads {
        let (a, p) = t.join().map_err(|_| anyhow::anyhow!("a settling thread panicked"))??;
        accept.extend(a);
        pay.extend(p);
    }
    let wall = started.elapsed();
    let transfers = a.jobs * 7;
    let rate = transfers as f64 / wall.as_secs_f64();
    pay.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let backend = if spec.starts_with("postgres") { "postgresql" } else { "sqlite" };
    if a.json {
        print_json(&json!({
            "backend": backend, "jobs": a.jobs, "clients": clients, "transfers": transfers, "seconds": wall.as_secs_f64(),
            "transfersPerSecond": rate, "acceptMedianMs": ms(median(accept)),
            "payMedianMs": ms(median(pay.clone())), "payP99Ms": ms(percentile(&pay, 0.99)),
        }));
    } else {
        outln!("{backend}: {} jobs by {clients} clients, {transfers} transfers in {:.2} s: {rate:.0} transfers/s", a.jobs, wall.as_secs_f64());
        outln!("accept (escrow + collateral lock, 1 linked batch): median {:.2} ms", ms(median(accept)));
        outln!("pay (post + 3-way split + release, 1 linked batch): median {:.2} ms, p99 {:.2} ms", ms(median(pay.clone())), ms(percentile(&pay, 0.99)));
    }
    Ok(())
}
