//! The settlement of one proof-market job on an accounting [`Ledger`]:
//! escrow of the buyer's payment and a lock on the prover's collateral
//! when the job is accepted, then exactly one of: payment with the fee
//! split (a valid proof), or refund and slash (an invalid proof, a missed
//! deadline, an upheld challenge).
//!
//! Every account and transfer ID is derived from names (the buyer's and
//! prover's keys, the job's ID and the step), so repeating a step after a
//! crash or a network error finds the transfers it made (`exists`) instead
//! of paying twice. Each step is one linked batch: all of it or none.

use sha2::{Digest as _, Sha256};

use crate::model::{Account, AccountFlags, CreateTransferResult, PendingStatus, Transfer, TransferFlags};
use crate::{Error, Ledger};

/// What an account is for: its `code` in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Money entering and leaving the market (the payment rail's side).
    Rail = 1,
    /// A buyer's balance; cannot go below zero.
    Buyer = 2,
    /// Payments held for jobs in progress.
    Escrow = 3,
    /// A prover's earnings.
    Prover = 4,
    /// A prover's stake; cannot go below zero.
    Stake = 5,
    /// Collateral taken from provers by slashing.
    Slashed = 6,
    /// The protocol treasury (also takes the split's integer remainder).
    Treasury = 7,
    /// The insurance pool (also takes slashed collateral).
    Insurance = 8,
    /// Rewards paid to challengers who showed a proof was invalid.
    Challenger = 9,
}

impl AccountKind {
    /// Whether the account holds money it may not overspend.
    fn guarded(self) -> bool {
        matches!(self, AccountKind::Buyer | AccountKind::Stake)
    }
}

/// Why a transfer was made: its `code` in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Money paid in over the rail.
    Deposit = 1,
    /// Stake paid in over the rail.
    Stake = 2,
    /// Stake paid back out over the rail after unbonding.
    Withdraw = 3,
    /// The buyer's payment held in escrow until the job settles.
    Escrow = 10,
    /// The prover's collateral locked until the job settles.
    Lock = 11,
    /// The escrow posted (phase two).
    Capture = 12,
    /// A share of the fee.
    Split = 13,
    /// The escrow voided back to the buyer.
    Refund = 14,
    /// The collateral lock released.
    Release = 15,
    /// The collateral lock posted: the prover loses it.
    Slash = 16,
    /// Slashed collateral passed on (insurance pool, challenger).
    SlashShare = 17,
    /// Stake taken from a prover outside any job (downtime, a forged
    /// attestation), into the slashed account.
    Penalty = 18,
}

/// Shares, in basis points (1/10,000), and slashing rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// The prover's share of the fee (7,000: 70%).
    pub prover_bps: u32,
    /// The treasury's share (2,000: 20%).
    pub treasury_bps: u32,
    /// The insurance pool's share (1,000: 10%).
    pub insurance_bps: u32,
    /// Collateral locked per job, as a share of the prover's stake, and
    /// lost on an invalid proof or a missed deadline (1,000: 10%).
    pub invalid_proof_slash_bps: u32,
    /// The challenger's share of collateral slashed on its challenge (5,000: 50%).
    pub challenger_bps: u32,
    /// Share of a prover's free stake lost for being down longer than the
    /// registry allows (100: 1%).
    pub downtime_slash_bps: u32,
    /// Share of a prover's free stake lost for a forged attestation, which
    /// also bans it (10,000: 100%).
    pub forged_attestation_slash_bps: u32,
}

impl Default for Policy {
    /// The seed's defaults: 70/20/10, 10% of stake per invalid proof (half
    /// of it to a successful challenger), 1% for downtime over an hour,
    /// 100% for a forged attestation.
    fn default() -> Policy {
        Policy {
            prover_bps: 7_000,
            treasury_bps: 2_000,
            insurance_bps: 1_000,
            invalid_proof_slash_bps: 1_000,
            challenger_bps: 5_000,
            downtime_slash_bps: 100,
            forged_attestation_slash_bps: 10_000,
        }
    }
}

impl Policy {
    /// Checks that the fee shares add up to 10,000 and the rates are at most 10,000.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let sum = self.prover_bps + self.treasury_bps + self.insurance_bps;
        if sum != 10_000 {
            return Err(format!("the fee shares add up to {sum} basis points, not 10000"));
        }
        let rates = [self.invalid_proof_slash_bps, self.challenger_bps, self.downtime_slash_bps, self.forged_attestation_slash_bps];
        if rates.iter().any(|r| *r > 10_000) {
            return Err("a rate is over 10000 basis points".into());
        }
        Ok(())
    }

    /// The fee split of `price`: (prover, treasury, insurance), each
    /// rounded down; the treasury also takes the remainder, so the three
    /// add up to `price` exactly.
    pub fn split(&self, price: u128) -> (u128, u128, u128) {
        let (p, i) = (bps(price, self.prover_bps), bps(price, self.insurance_bps));
        (p, price - p - i, i)
    }
}

/// Why stake is taken from a prover outside any job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    /// Its endpoint stayed unreachable longer than the registry allows.
    Downtime,
    /// It presented a forged attestation (it is also banned).
    ForgedAttestation,
}

impl Penalty {
    /// `downtime` or `forged_attestation`: the cause recorded.
    pub fn cause(self) -> &'static str {
        match self {
            Penalty::Downtime => "downtime",
            Penalty::ForgedAttestation => "forged_attestation",
        }
    }
}

impl Policy {
    /// The share of the free stake `penalty` takes, basis points.
    pub fn penalty_bps(&self, penalty: Penalty) -> u32 {
        match penalty {
            Penalty::Downtime => self.downtime_slash_bps,
            Penalty::ForgedAttestation => self.forged_attestation_slash_bps,
        }
    }
}

/// A job as settlement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The job's ID (e.g. the Nostr request event ID).
    pub id: String,
    /// The buyer's key (hex).
    pub buyer: String,
    /// The prover's key (hex).
    pub prover: String,
    /// What the buyer pays (ledger units, e.g. msat).
    pub price: u128,
    /// Seconds until the job must have a valid proof; the escrow and lock
    /// expire (back to their owners) after it plus the challenge window.
    pub deadline_s: u32,
}

/// How a settled job ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    /// `paid` or `refunded`.
    pub outcome: &'static str,
    /// Why, in words (the verification's verdict, the deadline, the challenge).
    pub reason: String,
    /// Paid to the prover, the treasury and the insurance pool.
    pub split: Option<(u128, u128, u128)>,
    /// Collateral the prover lost.
    pub slashed: u128,
    /// Of it, paid to the challenger.
    pub challenger_reward: u128,
    /// Whether this call did it (false: an earlier call had, and this one
    /// found its transfers).
    pub now: bool,
}

/// Why settlement could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] Error),
    /// A step was refused (e.g. the buyer cannot pay, the job is settled already).
    #[error("{step}: {results:?}")]
    Refused {
        /// The step.
        step: String,
        /// Each transfer's result.
        results: Vec<CreateTransferResult>,
    },
    /// The policy is invalid.
    #[error("policy: {0}")]
    Policy(String),
}

/// The account of `kind` owned by `owner` (a key, or "" for the
/// market's own accounts): the first 16 bytes of SHA-256 of
/// `zkaudit-settle/account/<kind>/<owner>`.
pub fn account_id(kind: AccountKind, owner: &str) -> u128 {
    derive(&format!("zkaudit-settle/account/{}/{owner}", kind as u16))
}

/// The transfer of `step` for job `job` (`part` tells the split's shares apart).
pub fn transfer_id(job: &str, step: Step, part: u8) -> u128 {
    derive(&format!("zkaudit-settle/transfer/{job}/{}/{part}", step as u16))
}

/// `amount × rate / 10,000`, rounded down, without overflowing.
fn bps(amount: u128, rate: u32) -> u128 {
    amount / 10_000 * u128::from(rate) + amount % 10_000 * u128::from(rate) / 10_000
}

fn derive(name: &str) -> u128 {
    derive_id(&[name.as_bytes()])
}

/// An account or transfer ID derived from `parts`: the first 16 bytes of
/// SHA-256 of their concatenation, big-endian; 0 and `u128::MAX` are not
/// IDs, so they are clamped away.
pub(crate) fn derive_id(parts: &[&[u8]]) -> u128 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b).clamp(1, u128::MAX - 1)
}

/// A pending transfer's amount and status.
type Hold = (u128, PendingStatus);

/// The challenge window of optimistic settlement unless configured (s).
pub const DEFAULT_CHALLENGE_WINDOW_S: u32 = 3600;

/// How long a collateral lock outlasts its job's escrow (s).
pub const LOCK_GRACE_S: u32 = 86_400;

/// Settles jobs on `ledger` under `policy`, in ledger `unit` (e.g. 1 for msat).
pub struct Settlement<L: Ledger> {
    /// The accounting ledger.
    pub ledger: L,
    /// Shares and slashing rates.
    pub policy: Policy,
    /// The TigerBeetle `ledger` number all accounts share (the unit).
    pub unit: u32,
    /// The challenge window of optimistic settlement (s).
    pub challenge_window_s: u32,
}

impl<L: Ledger> Settlement<L> {
    /// A settlement over `ledger`.
    ///
    /// # Errors
    /// [`SettleError::Policy`] when the policy is invalid.
    pub fn new(ledger: L, policy: Policy, unit: u32, challenge_window_s: u32) -> Result<Self, SettleError> {
        policy.validate().map_err(SettleError::Policy)?;
        Ok(Settlement { ledger, policy, unit, challenge_window_s })
    }

    fn account(&self, kind: AccountKind, owner: &str) -> Account {
        let flags = if kind.guarded() { AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS } else { 0 };
        Account::new(account_id(kind, owner), self.unit, kind as u16, flags)
    }

    /// Creates the accounts named (idempotent).
    fn ensure(&self, accounts: &[(AccountKind, &str)]) -> Result<(), SettleError> {
        let batch: Vec<Account> = accounts.iter().map(|(k, o)| self.account(*k, o)).collect();
        let results = self.ledger.create_accounts(&batch)?;
        if let Some((a, r)) = batch.iter().zip(&results).find(|(_, r)| !r.is_done()) {
            return Err(SettleError::Refused { step: format!("creating account {:032x} ({r:?})", a.id), results: Vec::new() });
        }
        Ok(())
    }

    fn transfer(&self, id: u128, from: (AccountKind, &str), to: (AccountKind, &str), amount: u128, step: Step) -> Transfer {
        Transfer::new(id, account_id(from.0, from.1), account_id(to.0, to.1), amount, self.unit, step as u16)
    }

    /// Runs one linked batch; whether it happened now (`Ok`) or before
    /// (every transfer `exists`, or the first and the rest failed only for
    /// being linked to it).
    fn batch(&self, step: &str, mut batch: Vec<Transfer>) -> Result<bool, SettleError> {
        let n = batch.len();
        for t in batch.iter_mut().take(n.saturating_sub(1)) {
            t.flags.0 |= TransferFlags::LINKED;
        }
        let results = self.ledger.create_transfers(&batch)?;
        if results.iter().all(|r| *r == CreateTransferResult::Ok) {
            return Ok(true);
        }
        // A repeated step: its first transfer exists (the chain then stops).
        if results.first() == Some(&CreateTransferResult::Exists) {
            let found = self.ledger.lookup_transfers(&batch.iter().map(|t| t.id).collect::<Vec<_>>())?;
            if found.len() == n {
                return Ok(false);
            }
        }
        Err(SettleError::Refused { step: step.to_owned(), results })
    }

    /// Money paid in for `buyer` over the payment rail (`rail_ref` names
    /// the payment, e.g. a Lightning payment hash, and makes it idempotent).
    ///
    /// # Errors
    /// [`SettleError`] when the ledger fails or refuses.
    pub fn deposit(&self, buyer: &str, amount: u128, rail_ref: &str) -> Result<bool, SettleError> {
        self.ensure(&[(AccountKind::Rail, ""), (AccountKind::Buyer, buyer)])?;
        let t = self.transfer(transfer_id(rail_ref, Step::Deposit, 0), (AccountKind::Rail, ""), (AccountKind::Buyer, buyer), amount, Step::Deposit);
        self.batch("deposit", vec![t])
    }

    /// Stake paid in for `prover` over the payment rail.
    ///
    /// # Errors
    /// [`SettleError`] when the ledger fails or refuses.
    pub fn stake(&self, prover: &str, amount: u128, rail_ref: &str) -> Result<bool, SettleError> {
        self.ensure(&[(AccountKind::Rail, ""), (AccountKind::Stake, prover)])?;
        let t = self.transfer(transfer_id(rail_ref, Step::Stake, 0), (AccountKind::Rail, ""), (AccountKind::Stake, prover), amount, Step::Stake);
        self.batch("stake", vec![t])
    }

    /// The collateral `job` locks: what it locked already when it was
    /// accepted before, else [`Policy::invalid_proof_slash_bps`] of the
    /// prover's stake not already locked.
    ///
    /// # Errors
    /// [`SettleError::Ledger`].
    pub fn collateral(&self, job: &Job) -> Result<u128, SettleError> {
        if let Some((amount, _)) = self.holds(job)?.1 {
            return Ok(amount);
        }
        Ok(bps(self.free_stake(&job.prover)?, self.policy.invalid_proof_slash_bps))
    }

    /// `prover`'s stake not locked by jobs in progress: posted credits
    /// less posted and pending debits (0 for a prover that never staked).
    ///
    /// # Errors
    /// [`SettleError::Ledger`].
    pub fn free_stake(&self, prover: &str) -> Result<u128, SettleError> {
        Ok(self.stake_balance(prover)?.0)
    }

    /// `prover`'s stake as `(free, locked)`: free as for
    /// [`Settlement::free_stake`], locked the collateral held by jobs in
    /// progress (pending debits).
    ///
    /// # Errors
    /// [`SettleError::Ledger`].
    pub fn stake_balance(&self, prover: &str) -> Result<(u128, u128), SettleError> {
        let stake = self.ledger.lookup_accounts(&[account_id(AccountKind::Stake, prover)])?;
        Ok(stake.first().map_or((0, 0), |a| (a.credits_posted.saturating_sub(a.debits_posted + a.debits_pending), a.debits_pending)))
    }

    /// Pays `amount` of `prover`'s stake back out over the payment rail
    /// (`rail_ref` names the payout and makes it idempotent). Whether it
    /// was paid now (`true`) or before (`false`).
    ///
    /// # Errors
    /// [`SettleError::Refused`] when the stake not locked by jobs in
    /// progress is less than `amount`.
    pub fn withdraw_stake(&self, prover: &str, amount: u128, rail_ref: &str) -> Result<bool, SettleError> {
        self.ensure(&[(AccountKind::Rail, ""), (AccountKind::Stake, prover)])?;
        let t = self.transfer(transfer_id(rail_ref, Step::Withdraw, 0), (AccountKind::Stake, prover), (AccountKind::Rail, ""), amount, Step::Withdraw);
        self.batch("withdraw", vec![t])
    }

    /// Whether `job`'s deadline has passed at `now_ns` (ns since the
    /// epoch): its escrow was made more than `deadline_s` before. False
    /// for a job never accepted.
    ///
    /// # Errors
    /// [`SettleError::Ledger`].
    pub fn deadline_passed(&self, job: &Job, now_ns: u64) -> Result<bool, SettleError> {
        let found = self.ledger.lookup_transfers(&[transfer_id(&job.id, Step::Escrow, 0)])?;
        Ok(found.first().is_some_and(|(t, _)| t.timestamp.saturating_add(u64::from(job.deadline_s) * 1_000_000_000) <= now_ns))
    }

    /// Accepts `job`: the buyer's payment goes into escrow and the prover's
    /// collateral is locked, both pending until the deadline plus the
    /// challenge window, in one linked batch. Returns the collateral locked.
    ///
    /// # Errors
    /// [`SettleError::Refused`] when the buyer cannot pay or the prover's
    /// stake cannot cover the collateral (nothing is held then).
    pub fn accept(&self, job: &Job, collateral: u128) -> Result<u128, SettleError> {
        self.ensure(&[
            (AccountKind::Buyer, &job.buyer),
            (AccountKind::Escrow, ""),
            (AccountKind::Stake, &job.prover),
            (AccountKind::Slashed, ""),
            (AccountKind::Prover, &job.prover),
            (AccountKind::Treasury, ""),
            (AccountKind::Insurance, ""),
        ])?;
        // The escrow goes back to the buyer by itself if the job is never
        // settled; the lock outlasts it by a day, so a missed deadline can
        // still be slashed after the buyer has been refunded.
        let timeout = job.deadline_s.saturating_add(self.challenge_window_s);
        let mut escrow =
            self.transfer(transfer_id(&job.id, Step::Escrow, 0), (AccountKind::Buyer, &job.buyer), (AccountKind::Escrow, ""), job.price, Step::Escrow);
        escrow.flags.0 |= TransferFlags::PENDING;
        escrow.timeout = timeout;
        let mut batch = vec![escrow];
        if collateral > 0 {
            let mut lock =
                self.transfer(transfer_id(&job.id, Step::Lock, 0), (AccountKind::Stake, &job.prover), (AccountKind::Slashed, ""), collateral, Step::Lock);
            lock.flags.0 |= TransferFlags::PENDING;
            lock.timeout = timeout.saturating_add(LOCK_GRACE_S);
            batch.push(lock);
        }
        self.batch("accept", batch)?;
        Ok(collateral)
    }

    fn resolve(&self, job: &Job, step: Step, pending: Step, post: bool) -> Transfer {
        let flag = if post { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
        let amount = if post { u128::MAX } else { 0 };
        Transfer { pending_id: transfer_id(&job.id, pending, 0), ..Transfer::new(transfer_id(&job.id, step, 0), 0, 0, amount, 0, 0).with_flags(flag) }
    }

    /// Pays for `job` after its proof verified: the escrow is posted and
    /// split (prover, treasury with the remainder, insurance pool), and
    /// the collateral lock released, in one linked batch.
    ///
    /// # Errors
    /// [`SettleError::Refused`] when the job was refunded already or its
    /// holds expired (then nothing is paid).
    pub fn pay(&self, job: &Job, reason: &str) -> Result<Settled, SettleError> {
        let (p, t, i) = self.policy.split(job.price);
        let mut batch = vec![self.resolve(job, Step::Capture, Step::Escrow, true)];
        for (part, (kind, owner, amount)) in
            [(AccountKind::Prover, job.prover.as_str(), p), (AccountKind::Treasury, "", t), (AccountKind::Insurance, "", i)].into_iter().enumerate()
        {
            if amount > 0 {
                batch.push(self.transfer(transfer_id(&job.id, Step::Split, part as u8), (AccountKind::Escrow, ""), (kind, owner), amount, Step::Split));
            }
        }
        if self.holds(job)?.1.is_some_and(|(_, s)| s != PendingStatus::Expired) {
            batch.push(self.resolve(job, Step::Release, Step::Lock, false));
        }
        let now = self.batch("pay", batch)?;
        Ok(Settled { outcome: "paid", reason: reason.to_owned(), split: Some((p, t, i)), slashed: 0, challenger_reward: 0, now })
    }

    /// Refunds `job` and slashes its prover: the escrow is voided back to
    /// the buyer, the collateral lock posted (the prover loses it) and
    /// passed on: to `challenger` its share when a challenge showed the
    /// proof invalid, the rest to the insurance pool. One linked batch.
    ///
    /// # Errors
    /// [`SettleError::Refused`] when the job was paid already.
    pub fn refund_and_slash(&self, job: &Job, reason: &str, challenger: Option<&str>) -> Result<Settled, SettleError> {
        let (escrow, lock) = self.holds(job)?;
        let mut batch = Vec::new();
        // An escrow that expired is back with the buyer already.
        if escrow.is_some_and(|(_, s)| s != PendingStatus::Expired) {
            batch.push(self.resolve(job, Step::Refund, Step::Escrow, false));
        }
        let collateral = match lock {
            Some((amount, s)) if s != PendingStatus::Expired => amount,
            _ => 0,
        };
        let reward = if challenger.is_some() { bps(collateral, self.policy.challenger_bps) } else { 0 };
        if collateral > 0 {
            batch.push(self.resolve(job, Step::Slash, Step::Lock, true));
            if let (Some(c), true) = (challenger, reward > 0) {
                self.ensure(&[(AccountKind::Challenger, c)])?;
                batch.push(self.transfer(
                    transfer_id(&job.id, Step::SlashShare, 0),
                    (AccountKind::Slashed, ""),
                    (AccountKind::Challenger, c),
                    reward,
                    Step::SlashShare,
                ));
            }
            if collateral > reward {
                batch.push(self.transfer(
                    transfer_id(&job.id, Step::SlashShare, 1),
                    (AccountKind::Slashed, ""),
                    (AccountKind::Insurance, ""),
                    collateral - reward,
                    Step::SlashShare,
                ));
            }
        }
        if batch.is_empty() {
            return Err(SettleError::Refused {
                step: format!("refund and slash job {}: it holds nothing (never accepted, or its holds expired)", job.id),
                results: Vec::new(),
            });
        }
        let now = self.batch("refund and slash", batch)?;
        Ok(Settled { outcome: "refunded", reason: reason.to_owned(), split: None, slashed: collateral, challenger_reward: reward, now })
    }

    /// Slashes the [`Policy::penalty_bps`] of `penalty` of `prover`'s free
    /// stake outside any job: a stake transfer to the slashed account passed on to the
    /// insurance pool, in one linked batch. `reference` names the penalty
    /// (e.g. the outage or the forged evidence) and makes it idempotent:
    /// a repeat finds the first penalty and answers with its amount.
    /// Returns `(amount, now)`; collateral locked by jobs in progress is
    /// not touched (it settles with its jobs).
    ///
    /// # Errors
    /// [`SettleError::Ledger`]; [`SettleError::Refused`] when the stake
    /// moved between the read and the transfer (repeat the call).
    pub fn slash_stake(&self, prover: &str, penalty: Penalty, reference: &str) -> Result<(u128, bool), SettleError> {
        let (taken, passed) = (transfer_id(reference, Step::Penalty, 0), transfer_id(reference, Step::SlashShare, 0));
        if let Some((t, _)) = self.ledger.lookup_transfers(&[taken])?.first() {
            return Ok((t.amount, false));
        }
        let amount = bps(self.free_stake(prover)?, self.policy.penalty_bps(penalty));
        if amount == 0 {
            return Ok((0, false));
        }
        self.ensure(&[(AccountKind::Stake, prover), (AccountKind::Slashed, ""), (AccountKind::Insurance, "")])?;
        let batch = vec![
            self.transfer(taken, (AccountKind::Stake, prover), (AccountKind::Slashed, ""), amount, Step::Penalty),
            self.transfer(passed, (AccountKind::Slashed, ""), (AccountKind::Insurance, ""), amount, Step::SlashShare),
        ];
        let now = self.batch("slash stake", batch)?;
        Ok((amount, now))
    }

    /// The status of `job`'s escrow, and the amount and status of its
    /// collateral lock, where they exist.
    fn holds(&self, job: &Job) -> Result<(Option<Hold>, Option<Hold>), SettleError> {
        let (e, l) = (transfer_id(&job.id, Step::Escrow, 0), transfer_id(&job.id, Step::Lock, 0));
        let found = self.ledger.lookup_transfers(&[e, l])?;
        let get = |id: u128| found.iter().find(|(t, _)| t.id == id).and_then(|(t, s)| s.map(|s| (t.amount, s)));
        Ok((get(e), get(l)))
    }
}
