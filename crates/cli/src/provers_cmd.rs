//! `zkaudit provers …`: the proof market's prover registry
//! (`zkaudit_app::provers`): register with stake, list with reputation and
//! weight, select one for a job by a seeded draw, present fresh TEE
//! evidence (a forged one bans), probe endpoints (downtime is slashed),
//! unbond and withdraw.
//! Each step is one call into the registry; every change is a ledger
//! event.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use zkaudit_app::provers::{ProverRecord, ProverRegistry};
use zkaudit_app::settle::Market;
use zkaudit_settle::provers::RegistryPolicy;

use crate::output::{out, outln, print_json};
use crate::settle_cmd::{open_market, MarketArgs};

/// The registry's parameters.
#[derive(Args)]
pub struct PolicyArgs {
    /// The least stake a prover needs to be selected, in the unit.
    #[arg(long, default_value_t = RegistryPolicy::default().min_stake)]
    min_stake: u128,
    /// Valid proofs before a prover has full selection weight.
    #[arg(long, default_value_t = RegistryPolicy::default().verification_period)]
    verification_period: u32,
    /// Seconds from `unbond` until the stake may be withdrawn.
    #[arg(long, value_name = "SECONDS", default_value_t = RegistryPolicy::default().unbonding_s)]
    unbonding: u64,
    /// Seconds a prover's endpoint may stay unreachable before `probe`
    /// slashes it for downtime.
    #[arg(long, value_name = "SECONDS", default_value_t = RegistryPolicy::default().downtime_s)]
    downtime_after: u64,
}

/// `zkaudit provers` subcommands.
#[derive(Subcommand)]
pub enum ProversCommand {
    /// Register a prover with stake paid in over the rail (idempotent by --ref).
    Register {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The prover's key (names its stake account).
        key: String,
        /// Where it takes jobs (a URL).
        #[arg(long)]
        endpoint: String,
        /// Stake paid in, in the unit.
        #[arg(long)]
        stake: u128,
        /// The stake payment's reference on the rail (e.g. a payment hash).
        #[arg(long = "ref")]
        rail_ref: String,
        /// TEE evidence (an SGX or TDX DCAP quote, or an SEV-SNP report),
        /// verified now against the registry's approved measurements.
        #[arg(long, value_name = "FILE", requires = "collateral")]
        quote: Option<PathBuf>,
        /// The evidence's collateral (DCAP JSON, or the VCEK certificate).
        #[arg(long, value_name = "FILE", requires = "quote")]
        collateral: Option<PathBuf>,
    },
    /// Every registered prover: status, stake, outcomes, reputation and selection weight.
    List {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Select the prover for a job: a weighted draw reproducible from the seed, recorded.
    Select {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The job's ID.
        job: String,
        /// 32 bytes of public randomness, 64 hex digits (e.g. a beacon's
        /// value for a round after the job was posted).
        #[arg(long)]
        seed: String,
        /// Only provers registered with a verified TEE attestation.
        #[arg(long)]
        require_tee: bool,
    },
    /// A registered prover presents fresh TEE evidence: recorded when it
    /// verifies; a forged one slashes the stake and bans the prover (exit 1).
    Attest {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The prover's key.
        key: String,
        /// The evidence (an SGX or TDX DCAP quote, or an SEV-SNP report).
        #[arg(long, value_name = "FILE")]
        quote: PathBuf,
        /// Its collateral (DCAP JSON, or the VCEK certificate).
        #[arg(long, value_name = "FILE")]
        collateral: PathBuf,
    },
    /// Probe every active or unbonding prover's endpoint (HTTP GET);
    /// record changes, slash outages longer than --downtime-after.
    Probe {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Seconds to wait for each endpoint.
        #[arg(long, value_name = "SECONDS", default_value_t = zkaudit_app::provers::DEFAULT_PROBE_TIMEOUT_S)]
        timeout: u64,
    },
    /// Start unbonding: no more jobs; the stake may be withdrawn after the unbonding period.
    Unbond {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The prover's key.
        key: String,
    },
    /// Pay the stake back out once the unbonding period has passed.
    Withdraw {
        #[command(flatten)]
        market: MarketArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The prover's key.
        key: String,
    },
}

impl PolicyArgs {
    /// The policy these arguments give.
    pub(crate) fn policy(&self) -> RegistryPolicy {
        RegistryPolicy {
            min_stake: self.min_stake,
            verification_period: self.verification_period,
            unbonding_s: self.unbonding,
            downtime_s: self.downtime_after,
        }
    }
}

fn print(r: &ProverRecord, json: bool) -> ExitCode {
    if json {
        print_json(r);
    } else {
        let job = r.job.as_ref().map_or(String::new(), |j| format!(" for job {j}"));
        outln!("{} {}{job}: {}", r.action, r.key, r.reason);
    }
    ExitCode::SUCCESS
}

/// Runs a `zkaudit provers` subcommand.
pub fn provers(cmd: ProversCommand) -> Result<ExitCode> {
    let (market, policy) = match &cmd {
        ProversCommand::Register { market, policy, .. }
        | ProversCommand::List { market, policy }
        | ProversCommand::Select { market, policy, .. }
        | ProversCommand::Attest { market, policy, .. }
        | ProversCommand::Probe { market, policy, .. }
        | ProversCommand::Unbond { market, policy, .. }
        | ProversCommand::Withdraw { market, policy, .. } => (market, policy.policy()),
    };
    let (s, l, reg) = open_market(market)?;
    let m = Market { settlement: &s, ledger: &l, registry: &reg };
    let registry = ProverRegistry { market: &m, policy };
    let json = market.json;
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    match &cmd {
        ProversCommand::Register { key, endpoint, stake, rail_ref, quote, collateral, .. } => {
            let evidence = match (quote, collateral) {
                (Some(q), Some(c)) => Some((zkaudit_attest::evidence_bytes(&read(q)?), read(c)?)),
                _ => None,
            };
            let evidence = evidence.as_ref().map(|(q, c)| (q.as_slice(), c.as_slice()));
            Ok(print(&registry.register(key, endpoint, *stake, rail_ref, evidence)?, json))
        }
        ProversCommand::Select { job, seed, require_tee, .. } => {
            let bytes = hex::decode(seed).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()).context("--seed must be 64 hex digits (32 bytes)")?;
            Ok(print(&registry.select(job, &bytes, *require_tee)?, json))
        }
        ProversCommand::Attest { key, quote, collateral, .. } => {
            let r = registry.attest(key, &zkaudit_attest::evidence_bytes(&read(quote)?), &read(collateral)?)?;
            print(&r, json);
            Ok(if r.action == "ban" { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        ProversCommand::Probe { timeout, .. } => {
            let now = zkaudit_settle::Clock::now_ns(&zkaudit_settle::SystemClock);
            let timeout = std::time::Duration::from_secs(*timeout);
            let results = registry.probe(now, |endpoint| zkaudit_app::provers::http_probe(endpoint, timeout))?;
            if json {
                print_json(&results);
            } else {
                for r in &results {
                    let state = match (&r.error, r.down_since_ns) {
                        (None, _) => "up".to_owned(),
                        (Some(e), Some(since)) => format!("down for {} s ({e})", now.saturating_sub(since) / 1_000_000_000),
                        (Some(e), None) => format!("down ({e})"),
                    };
                    let slash = r.slash.as_ref().map_or(String::new(), |s| format!("; slashed {} for downtime", s.slashed));
                    outln!("{} {}: {state}{slash}", r.key, r.endpoint);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ProversCommand::Unbond { key, .. } => Ok(print(&registry.unbond(key)?, json)),
        ProversCommand::Withdraw { key, .. } => {
            let now = zkaudit_settle::Clock::now_ns(&zkaudit_settle::SystemClock);
            Ok(print(&registry.withdraw(key, now)?, json))
        }
        ProversCommand::List { .. } => {
            let provers = registry.views()?;
            if json {
                print_json(&provers);
            } else {
                outln!(
                    "{:<20} {:>10} {:>12} {:>8} {:>6} {:>9} {:>7} {:<10} endpoint",
                    "key",
                    "stake",
                    "ok/bad/late",
                    "rep bps",
                    "ramp",
                    "weight",
                    "tee",
                    "status"
                );
                for p in &provers {
                    let status = p.status.name();
                    let o = p.outcomes;
                    outln!(
                        "{:<20} {:>10} {:>12} {:>8} {:>6} {:>9} {:>7} {:<10} {}",
                        p.key,
                        p.stake,
                        format!("{}/{}/{}", o.succeeded, o.failed, o.timed_out),
                        p.reputation_bps,
                        p.ramp_bps,
                        p.weight,
                        p.tee.as_deref().unwrap_or("none"),
                        status,
                        p.endpoint
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
