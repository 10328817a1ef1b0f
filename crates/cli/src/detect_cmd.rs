//! `zkaudit detect`: anomaly findings over a ledger (local, or a server's),
//! recorded in it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use zkaudit_detect::{Params, Rules};

use crate::output::{out, outln, print_json};
use crate::sink_args::SinkArgs;

/// `zkaudit detect` arguments.
///
/// The ledger read is the one findings are recorded in: `--ledger DIR`, or
/// `--server URL` whose log is read by tlog-tiles and checked against
/// `--vkey` (the token needs the submit scope, which includes read).
#[derive(Args)]
pub struct DetectArgs {
    #[command(flatten)]
    ledger: SinkArgs,
    /// The log's verifier key (text or a file such as DIR/log.vkey): needed
    /// with --server to check its signed checkpoint; with --ledger, checks it too.
    #[arg(long, value_name = "KEY|FILE")]
    vkey: Option<String>,
    /// Threshold rules (TOML, Wazuh-style frequency + timeframe or field bounds).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Only events at or after this RFC 3339 time.
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Only events before this RFC 3339 time.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Seconds from each host's first event during which first-seen detections learn.
    #[arg(long, value_name = "S", default_value_t = Params::default().first_seen.learning_s)]
    learning: u64,
    /// Rate buckets, in seconds.
    #[arg(long, value_name = "S", default_value_t = Params::default().rate.bucket_s)]
    rate_bucket: u64,
    /// Robust z-score at or above which a rate or host metric is anomalous.
    #[arg(long, value_name = "Z", default_value_t = Params::default().rate.z)]
    z: f64,
    /// Report what would be found; record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object (the findings, counts and parameters).
    #[arg(long)]
    json: bool,
}

fn ns(flag: &str, t: &Option<String>) -> Result<Option<i64>> {
    t.as_deref()
        .map(|t| {
            let ts = zkaudit_event::Timestamp::parse(t).map_err(|e| anyhow!("--{flag}: {e}"))?;
            i64::try_from(ts.unix_nanos()).map_err(|_| anyhow!("--{flag} {t} is outside the supported range"))
        })
        .transpose()
}

/// Runs the detectors; exit 0 whatever they find.
pub fn detect(a: DetectArgs) -> Result<ExitCode> {
    let mut params = Params::default();
    params.first_seen.learning_s = a.learning;
    params.rate.bucket_s = a.rate_bucket.max(1);
    params.rate.z = a.z;
    params.host.z = a.z;
    let rules = a.rules.as_deref().map(Rules::load).transpose()?.unwrap_or_default();
    let vkey = a.vkey.as_deref().map(crate::log_cmd::load_vkey).transpose()?;
    let (from, to) = (ns("from", &a.from)?, ns("to", &a.to)?);
    let r = zkaudit_detect::run(&a.ledger.destination()?, vkey.as_ref(), from, to, &params, &rules, a.dry_run)?;
    if a.json {
        print_json(&r);
    } else {
        for f in &r.findings {
            outln!("{:<8} {:<20} {:<12} {}", f.severity.caption().to_uppercase(), f.rule, f.detector.as_str(), f.message);
        }
        let verb = if a.dry_run { "would record" } else { "recorded" };
        outln!(
            "{} findings over {} events (tree size {}): {verb} {}, {} already in the ledger",
            r.findings.len(),
            r.events_read,
            r.tree_size,
            if a.dry_run { r.findings.len() - r.already_recorded } else { r.recorded },
            r.already_recorded
        );
    }
    Ok(ExitCode::SUCCESS)
}
