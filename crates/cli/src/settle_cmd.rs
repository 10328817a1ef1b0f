//! `zkaudit settle …`: the proof market's settlement of jobs, a step per
//! command (money in, accept, verify-before-fulfil, challenge, missed
//! deadline, balances). Each call goes to `zkaudit_app::settle` (steps on
//! a verified receipt, recorded in the ledger) or `zkaudit_settle`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkaudit_app::ledger::Ledger;
use zkaudit_app::settle::{Market, SettlementRecord};
use zkaudit_settle::settlement::{account_id, AccountKind, Job, Policy, Settlement};
use zkaudit_settle::{SqlLedger, SystemClock};
use zkaudit_zkvm::Expectations;

use crate::output::{out, outln, print_json};
use crate::plan_cmd::DataArgs;
use crate::zk_cmd::{expectations, RegistryArgs};

/// Where settlement keeps its accounts and records its steps.
#[derive(Args)]
pub struct MarketArgs {
    /// The settlement ledger: a SQLite file (created if missing) or a
    /// `postgres://` URL.
    #[arg(long, value_name = "PATH|URL")]
    db: String,
    /// The event ledger each step is recorded in (`zkaudit log init`).
    #[arg(long, value_name = "DIR")]
    ledger: PathBuf,
    /// The ledger number of the unit amounts are in (1: msat).
    #[arg(long, default_value_t = 1)]
    unit: u32,
    /// Optimistic mode's challenge window (s): holds last this long past
    /// the deadline, so a challenge can still refund.
    #[arg(long, default_value_t = zkaudit_settle::settlement::DEFAULT_CHALLENGE_WINDOW_S)]
    challenge_window: u32,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    policy: SettlePolicyArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The fee split and slashing rates, in basis points (1/10,000); the
/// defaults are the seed's.
#[derive(Args)]
pub struct SettlePolicyArgs {
    /// The prover's share of each fee.
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().prover_bps)]
    prover_share: u32,
    /// The treasury's share (it also takes the rounding remainder).
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().treasury_bps)]
    treasury_share: u32,
    /// The insurance pool's share.
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().insurance_bps)]
    insurance_share: u32,
    /// Collateral locked per job, as a share of the free stake, and lost
    /// on an invalid proof or a missed deadline.
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().invalid_proof_slash_bps)]
    slash_invalid: u32,
    /// The challenger's share of the collateral its challenge slashes.
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().challenger_bps)]
    challenger_share: u32,
    /// Share of the free stake lost for downtime past `--downtime-after`.
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().downtime_slash_bps)]
    slash_downtime: u32,
    /// Share of the free stake lost for a forged attestation (with a ban).
    #[arg(long, value_name = "BPS", default_value_t = Policy::default().forged_attestation_slash_bps)]
    slash_forged: u32,
}

impl SettlePolicyArgs {
    /// The policy these arguments give (checked by `Settlement::new`).
    pub(crate) fn policy(&self) -> Policy {
        Policy {
            prover_bps: self.prover_share,
            treasury_bps: self.treasury_share,
            insurance_bps: self.insurance_share,
            invalid_proof_slash_bps: self.slash_invalid,
            challenger_bps: self.challenger_share,
            downtime_slash_bps: self.slash_downtime,
            forged_attestation_slash_bps: self.slash_forged,
        }
    }
}

/// What a receipt is checked against: the job's plan and data.
#[derive(Args)]
pub struct ReceiptArgs {
    /// The receipt file.
    #[arg(long, value_name = "FILE")]
    receipt: PathBuf,
    /// The plan the job asked for (its hash must be the journal's).
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

/// `zkaudit settle` subcommands.
#[derive(Subcommand)]
pub enum SettleCommand {
    /// Money paid in for a buyer over the payment rail (idempotent by --ref).
    Deposit {
        #[command(flatten)]
        market: MarketArgs,
        /// The buyer's key.
        buyer: String,
        /// Amount, in the unit.
        amount: u128,
        /// The payment's reference on the rail (e.g. a payment hash).
        #[arg(long = "ref")]
        rail_ref: String,
    },
    /// Stake paid in for a prover (idempotent by --ref).
    Stake {
        #[command(flatten)]
        market: MarketArgs,
        /// The prover's key.
        prover: String,
        /// Amount, in the unit.
        amount: u128,
        /// The payment's reference on the rail.
        #[arg(long = "ref")]
        rail_ref: String,
    },
    /// Accept a job: the price into escrow and the prover's collateral locked until the deadline.
    Accept {
        #[command(flatten)]
        market: MarketArgs,
        /// The job's ID (e.g. the NIP-90 request's event ID).
        job: String,
        /// The buyer's key.
        #[arg(long)]
        buyer: String,
        /// The prover's key.
        #[arg(long)]
        prover: String,
        /// The price, in the unit.
        #[arg(long)]
        price: u128,
        /// Seconds the prover has for a valid proof.
        #[arg(long)]
        deadline: u32,
    },
    /// Verify the job's receipt, then pay with the split (valid) or refund and slash (invalid).
    Fulfil {
        #[command(flatten)]
        market: MarketArgs,
        /// The job's ID.
        job: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
    /// Optimistic mode: a challenger says the job's receipt is invalid; upheld if it fails verification.
    Challenge {
        #[command(flatten)]
        market: MarketArgs,
        /// The job's ID.
        job: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
        /// The challenger's key (rewarded when the challenge is upheld).
        #[arg(long)]
        challenger: String,
    },
    /// No valid proof by the deadline: refund the buyer and slash the prover.
    MissedDeadline {
        #[command(flatten)]
        market: MarketArgs,
        /// The job's ID.
        job: String,
    },
    /// The balance of a buyer, a prover's earnings and stake, or the market's accounts.
    Balance {
        #[command(flatten)]
        market: MarketArgs,
        /// `buyer`, `prover`, `stake`, `escrow`, `treasury`, `insurance`, `slashed` or `challenger`.
        kind: String,
        /// The owner's key (none for the market's own accounts).
        owner: Option<String>,
    },
}

/// The settlement, the event ledger and the program registry `m` names.
pub(crate) fn open_market(m: &MarketArgs) -> Result<(Settlement<SqlLedger>, Ledger, zkaudit_zkvm::Registry)> {
    let settlement = open_accounts(&m.db, m.policy.policy(), m.unit, m.challenge_window)?;
    Ok((settlement, Ledger::open(&m.ledger, None)?, m.registry.load()?))
}

/// The settlement accounts in `db` (a SQLite file or a `postgres://`
/// URL), under `policy`, in ledger `unit`, with a challenge window of
/// `challenge_window_s`.
pub(crate) fn open_accounts(db: &str, policy: Policy, unit: u32, challenge_window_s: u32) -> Result<Settlement<SqlLedger>> {
    Ok(Settlement::new(SqlLedger::open(db, Arc::new(SystemClock))?, policy, unit, challenge_window_s)?)
}

impl ReceiptArgs {
    fn load(&self) -> Result<(Vec<u8>, Expectations)> {
        let bytes = std::fs::read(&self.receipt).with_context(|| format!("reading {}", self.receipt.display()))?;
        Ok((bytes, expectations(Some(&self.plan), &self.data, None)?))
    }
}

fn print(r: &SettlementRecord, json: bool) -> ExitCode {
    if json {
        print_json(r);
    } else {
        outln!("{} job {}: {} ({})", r.action, r.job, r.outcome, r.reason);
        if let Some([p, t, i]) = r.split {
            outln!("paid {}: prover {p}, treasury {t}, insurance {i}", r.price);
        }
        if r.slashed > 0 {
            outln!(
                "slashed {} from prover {}{}",
                r.slashed,
                r.prover,
                r.challenger.as_ref().map_or(String::new(), |c| format!(", {} to challenger {c}", r.challenger_reward))
            );
        }
    }
    if r.verdict.as_deref() == Some("invalid") {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn kind(name: &str) -> Result<AccountKind> {
    Ok(match name {
        "buyer" => AccountKind::Buyer,
        "prover" => AccountKind::Prover,
        "stake" => AccountKind::Stake,
        "escrow" => AccountKind::Escrow,
        "treasury" => AccountKind::Treasury,
        "insurance" => AccountKind::Insurance,
        "slashed" => AccountKind::Slashed,
        "challenger" => AccountKind::Challenger,
        other => anyhow::bail!("`{other}` is not an account kind (buyer, prover, stake, escrow, treasury, insurance, slashed, challenger)"),
    })
}

/// Runs a `zkaudit settle` subcommand. Exit 1 when the receipt failed
/// verification (the job was refunded and its prover slashed), as
/// `zkaudit verify` does; a rejected challenge exits 0.
pub fn settle(cmd: SettleCommand) -> Result<ExitCode> {
    match cmd {
        SettleCommand::Deposit { market, buyer, amount, rail_ref } => {
            let (s, l, reg) = open_market(&market)?;
            Ok(print(&Market { settlement: &s, ledger: &l, registry: &reg }.deposit(&buyer, amount, &rail_ref)?, market.json))
        }
        SettleCommand::Stake { market, prover, amount, rail_ref } => {
            let (s, l, reg) = open_market(&market)?;
            Ok(print(&Market { settlement: &s, ledger: &l, registry: &reg }.stake(&prover, amount, &rail_ref)?, market.json))
        }
        SettleCommand::Accept { market, job, buyer, prover, price, deadline } => {
            let (s, l, reg) = open_market(&market)?;
            let r = Market { settlement: &s, ledger: &l, registry: &reg }.accept(&Job { id: job, buyer, prover, price, deadline_s: deadline })?;
            Ok(print(&r, market.json))
        }
        SettleCommand::Fulfil { market, job, receipt } => {
            let (s, l, reg) = open_market(&market)?;
            let m = Market { settlement: &s, ledger: &l, registry: &reg };
            let (bytes, expect) = receipt.load()?;
            Ok(print(&m.fulfil(&m.job(&job)?, &bytes, &expect)?, market.json))
        }
        SettleCommand::Challenge { market, job, receipt, challenger } => {
            let (s, l, reg) = open_market(&market)?;
            let m = Market { settlement: &s, ledger: &l, registry: &reg };
            let (bytes, expect) = receipt.load()?;
            Ok(print(&m.challenge(&m.job(&job)?, &bytes, &expect, &challenger)?, market.json))
        }
        SettleCommand::MissedDeadline { market, job } => {
            let (s, l, reg) = open_market(&market)?;
            let m = Market { settlement: &s, ledger: &l, registry: &reg };
            let r = m.missed_deadline(&m.job(&job)?)?;
            Ok(print(&r, market.json))
        }
        SettleCommand::Balance { market, kind: k, owner } => {
            let (s, _, _) = open_market(&market)?;
            let id = account_id(kind(&k)?, owner.as_deref().unwrap_or(""));
            let a = zkaudit_settle::Ledger::lookup_accounts(&s.ledger, &[id])?;
            let a = a.first().copied().unwrap_or(zkaudit_settle::Account::new(id, market.unit, 0, 0));
            if market.json {
                print_json(&json!({
                    "account": format!("{id:032x}"), "kind": k, "owner": owner,
                    "debitsPending": a.debits_pending.to_string(), "debitsPosted": a.debits_posted.to_string(),
                    "creditsPending": a.credits_pending.to_string(), "creditsPosted": a.credits_posted.to_string(),
                    "net": a.net_credit().to_string(),
                }));
            } else {
                outln!(
                    "{k} {}: {} (posted credits {} − debits {}; pending debits {}, credits {})",
                    owner.unwrap_or_default(),
                    a.net_credit(),
                    a.credits_posted,
                    a.debits_posted,
                    a.debits_pending,
                    a.credits_pending
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
