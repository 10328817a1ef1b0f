//! `zkaudit attest verify`: TEE evidence (SGX or TDX DCAP quotes, SEV-SNP
//! reports) verified offline with its collateral, its measurement checked
//! against the program registry's approved list (`zkaudit_attest`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use zkaudit_attest::{judge, Policy};

use crate::output::{out, outln, print_json};
use crate::zk_cmd::RegistryArgs;

/// `zkaudit attest` subcommands.
#[derive(Subcommand)]
pub enum AttestCommand {
    /// Verify a quote or report offline: verdict, TCB status and measurement (exit 1 if refused).
    Verify(VerifyArgs),
}

/// `zkaudit attest verify` arguments.
#[derive(Args)]
pub struct VerifyArgs {
    /// The evidence: an SGX or TDX DCAP quote, or an SEV-SNP attestation
    /// report (binary, or hex text).
    evidence: PathBuf,
    /// Its collateral: DCAP's QuoteCollateralV3 JSON (from Intel's PCS or a
    /// PCCS) for a quote, the VCEK certificate (DER or PEM) for a report.
    #[arg(long, value_name = "FILE")]
    collateral: PathBuf,
    /// Check as of this time (RFC 3339, or seconds since the Unix epoch); default: now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Refuse a DCAP platform whose TCB status is not UpToDate.
    #[arg(long)]
    require_up_to_date: bool,
    /// Accept any measurement instead of the registry's approved ones.
    #[arg(long)]
    any_measurement: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Seconds since the Unix epoch of `--at`.
fn at_secs(at: Option<&str>) -> Result<u64> {
    let Some(at) = at else {
        return Ok(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).context("the clock is before 1970")?.as_secs());
    };
    if let Ok(secs) = at.parse::<u64>() {
        return Ok(secs);
    }
    let t = zkaudit_event::Timestamp::parse(at).map_err(|e| anyhow::anyhow!("--at: {e} (nor seconds since the Unix epoch)"))?;
    u64::try_from(t.unix_nanos().div_euclid(1_000_000_000)).with_context(|| format!("--at {at:?} is before 1970"))
}

/// Runs a `zkaudit attest` subcommand.
pub fn attest(cmd: AttestCommand) -> Result<ExitCode> {
    let AttestCommand::Verify(a) = cmd;
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (evidence, collateral) = (zkaudit_attest::evidence_bytes(&read(&a.evidence)?), read(&a.collateral)?);
    let approved = if a.any_measurement { None } else { Some(a.registry.load()?.approved_measurements()) };
    let policy = Policy { approved, require_up_to_date: a.require_up_to_date };
    let v = judge(&evidence, &collateral, at_secs(a.at.as_deref())?, &policy);
    if a.json {
        print_json(&v);
    } else {
        outln!("{}: {}", a.evidence.display(), if v.valid { "VALID" } else { "REFUSED" });
        if let Some(r) = &v.reason {
            outln!("reason:       {r}");
        }
        if let Some(t) = &v.attestation {
            outln!("TEE:          {}", t.tee.as_str());
            outln!("TCB status:   {}", t.tcb_status);
            if !t.advisory_ids.is_empty() {
                outln!("advisories:   {}", t.advisory_ids.join(", "));
            }
            outln!("measurement:  {}", t.measurement);
            if let Some(s) = &t.signer {
                outln!("signer:       {s}");
            }
            outln!("report data:  {}", t.report_data);
        }
    }
    Ok(if v.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
