//! Settling proof-market jobs (`zkaudit-settle`) on a verified receipt,
//! with every step recorded in the ledger as a `settlement` event, so an
//! auditor can reconstruct each payment and slash from the log alone (the
//! `settlement` compliance pack checks them).
//!
//! * verify-before-fulfil ([`Market::fulfil`]): the receipt is verified
//!   (registry, seal, journal against the request) and only then is the
//!   escrow posted and split; a receipt that fails is refunded and slashed;
//! * optimistic with challenge ([`Market::challenge`] within the window,
//!   [`Market::fulfil`] once it has passed): a challenger who
//!   shows a failing verification within the window has the job refunded
//!   and slashed, and takes a share of the collateral;
//! * a missed deadline ([`Market::missed_deadline`]): refund and slash.
//!
//! Each step's event carries the output digest SHA-256 of
//! `zkaudit-settle/<job>/<action>`, so a step repeated after a crash finds
//! its event instead of writing a second one.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zkaudit_event::{Digest, Event, Layer, Timestamp, EVENT_VERSION};
use zkaudit_index::{IndexedEvent, Query, Selector};
use zkaudit_settle::settlement::{Job, Penalty, SettleError, Settled, Settlement};
use zkaudit_zkvm::{Expectations, Registry};

use crate::ledger::Ledger;
use crate::Error;

/// The type of a settlement step's ledger event.
pub const SETTLEMENT_EVENT_TYPE: &str = "settlement";

/// The largest amount an event records (2^53 − 1): JSON numbers beyond it
/// are not exact in RFC 8785 canonical JSON (IEEE 754 doubles).
pub const MAX_RECORDED_AMOUNT: u128 = (1 << 53) - 1;

/// What a step did, as its `settlement` event's metadata: ECS names where
/// ECS has them (`event.action`, `event.outcome`, `event.reason`), else
/// `zkaudit.settlement.*`. Amounts are integers in the settlement
/// ledger's unit (e.g. msat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    /// `deposit`, `stake`, `withdraw`, `accept`, `pay`, `refund`,
    /// `challenge_rejected` or `slash` (stake taken outside a job).
    #[serde(rename = "event.action")]
    pub action: String,
    /// `success` (the step was taken) or `failure` (it was refused).
    #[serde(rename = "event.outcome")]
    pub outcome: String,
    /// Why, in words: the verification's verdict, the deadline, the challenge.
    #[serde(rename = "event.reason")]
    pub reason: String,
    /// The job (e.g. the NIP-90 request's event ID); for `deposit`,
    /// `stake` and `withdraw`, the payment's reference on the rail.
    #[serde(rename = "zkaudit.settlement.job")]
    pub job: String,
    /// The buyer's key.
    #[serde(rename = "zkaudit.settlement.buyer")]
    pub buyer: String,
    /// The prover's key.
    #[serde(rename = "zkaudit.settlement.prover")]
    pub prover: String,
    /// The job's price (for `deposit`, `stake` and `withdraw`, the amount
    /// paid in or out).
    #[serde(rename = "zkaudit.settlement.price")]
    pub price: u64,
    /// Seconds the prover had for a valid proof, from acceptance.
    #[serde(rename = "zkaudit.settlement.deadline_s")]
    pub deadline_s: u32,
    /// Collateral locked on acceptance.
    #[serde(rename = "zkaudit.settlement.collateral", default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<u64>,
    /// Why the job was paid or refunded: `valid_proof`, `invalid_proof`,
    /// `deadline_missed` or `challenge_upheld`; why stake was slashed
    /// outside a job: `downtime` or `forged_attestation`.
    #[serde(rename = "zkaudit.settlement.cause", default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// `valid` or `invalid`: the receipt's verification, where one was
    /// made; `forged` for attestation evidence whose own signature failed.
    #[serde(rename = "zkaudit.settlement.verdict", default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// SHA-256 of the receipt verified (64 hex).
    #[serde(rename = "zkaudit.settlement.receipt", default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// Paid to the prover, the treasury and the insurance pool.
    #[serde(rename = "zkaudit.settlement.split", default, skip_serializing_if = "Option::is_none")]
    pub split: Option<[u64; 3]>,
    /// Collateral the prover lost.
    #[serde(rename = "zkaudit.settlement.slashed", default)]
    pub slashed: u64,
    /// The challenger's key, when a challenge was upheld.
    #[serde(rename = "zkaudit.settlement.challenger", default, skip_serializing_if = "Option::is_none")]
    pub challenger: Option<String>,
    /// Of the slashed collateral, paid to the challenger.
    #[serde(rename = "zkaudit.settlement.challenger_reward", default)]
    pub challenger_reward: u64,
    /// The plan's hash (64 hex) the job's receipt must carry in its
    /// journal (`accept` of a job posted with its terms).
    #[serde(rename = "zkaudit.settlement.plan_hash", default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// The data root (64 hex) the job's receipt must carry (`accept`
    /// with terms).
    #[serde(rename = "zkaudit.settlement.data_root", default, skip_serializing_if = "Option::is_none")]
    pub data_root: Option<String>,
    /// SHA-256 (64 hex) of the job's spec (plan and data references) in
    /// the market's content-addressed store, where the prover fetches it.
    #[serde(rename = "zkaudit.settlement.spec", default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// The shares and slashing rates (basis points) the step applied
    /// (`accept`, `pay`, `refund`), so its amounts can be recomputed.
    #[serde(rename = "zkaudit.settlement.policy", default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<zkaudit_settle::settlement::Policy>,
}

impl SettlementRecord {
    /// The job an `accept` record accepted.
    fn job(&self) -> Job {
        Job { id: self.job.clone(), buyer: self.buyer.clone(), prover: self.prover.clone(), price: u128::from(self.price), deadline_s: self.deadline_s }
    }
}

/// What a job's receipt must show, and where the job's spec is: recorded
/// with its `accept` step ([`Market::accept_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: [u8; 32],
    /// The RFC 9162 root over the input records.
    pub data_root: [u8; 32],
    /// SHA-256 of the job's spec in the market's store, if it is there.
    pub spec: Option<Digest>,
}

/// A settlement ledger, the event ledger its steps are recorded in, and
/// the registry receipts are verified against.
pub struct Market<'a, L: zkaudit_settle::Ledger> {
    /// Accounts, policy and unit.
    pub settlement: &'a Settlement<L>,
    /// Where each step is recorded.
    pub ledger: &'a Ledger,
    /// Approved programs.
    pub registry: &'a Registry,
}

pub(crate) fn amount(v: u128) -> Result<u64, Error> {
    if v > MAX_RECORDED_AMOUNT {
        return Err(Error::Settle(format!("amount {v} is over 2^53 - 1, which a ledger event cannot hold exactly")));
    }
    u64::try_from(v).map_err(|_| Error::Settle(format!("amount {v} does not fit")))
}

/// The output digest of job `job`'s step `action`: SHA-256 of
/// `zkaudit-settle/<job>/<action>`.
fn step_key(job: &str, action: &str) -> Digest {
    Digest(Sha256::digest(format!("zkaudit-settle/{job}/{action}").as_bytes()).into())
}

/// An event's metadata read back as the record `T` it was written from.
///
/// # Errors
/// [`Error::Settle`] naming the event and the field that does not fit.
pub(crate) fn read_record<T: serde::de::DeserializeOwned>(e: &IndexedEvent) -> Result<T, Error> {
    let mut m = serde_json::Map::new();
    for (k, v) in &e.metadata {
        let v = serde_json::from_str(v).map_err(|err| Error::Settle(format!("event {}: metadata {k}: {err}", e.leaf_index)))?;
        m.insert(k.clone(), v);
    }
    serde_json::from_value(serde_json::Value::Object(m)).map_err(|err| Error::Settle(format!("event {}: not a {} record: {err}", e.leaf_index, e.kind)))
}

/// The record of the `kind` event whose output digest is `key`, if any.
pub(crate) fn recorded_step<T: serde::de::DeserializeOwned>(ledger: &Ledger, kind: &str, key: Digest) -> Result<Option<T>, Error> {
    match ledger.select(&Query::new(Selector::Output(key.to_string())))?.into_iter().find(|e| e.kind == kind) {
        Some(e) => read_record(&e).map(Some),
        None => Ok(None),
    }
}

/// Appends an application-layer `kind` event with `r` as its metadata,
/// `input` as its input digest (the empty digest when `None`) and `key`
/// as its output digest (which makes the step findable, and so written
/// once).
pub(crate) fn append_step<T: Serialize>(ledger: &Ledger, kind: &str, input: Option<Digest>, key: Digest, r: &T) -> Result<(), Error> {
    let metadata = match serde_json::to_value(r).map_err(|e| Error::Settle(e.to_string()))? {
        serde_json::Value::Object(m) => m,
        other => return Err(Error::Settle(format!("a {kind} record is not an object: {other}"))),
    };
    let event = Event {
        version: EVENT_VERSION.to_owned(),
        timestamp: Timestamp::now(),
        layer: Layer::Application,
        kind: kind.to_owned(),
        input: input.unwrap_or_else(|| Digest(Sha256::digest(b"").into())),
        output: key,
        metadata,
        proof: None,
        parents: None,
    };
    let bytes = event.canonical_bytes().map_err(|e| Error::Settle(e.to_string()))?;
    ledger.append(vec![bytes])?;
    Ok(())
}

pub(crate) fn settle_error(e: SettleError) -> Error {
    Error::Settle(e.to_string())
}

impl<L: zkaudit_settle::Ledger> Market<'_, L> {
    /// The recorded step `action` of job `job`, if any.
    fn recorded(&self, job: &str, action: &str) -> Result<Option<SettlementRecord>, Error> {
        let key = step_key(job, action);
        recorded_step(self.ledger, SETTLEMENT_EVENT_TYPE, key)
    }

    /// The job `id` as it was accepted (from its recorded `accept` step).
    ///
    /// # Errors
    /// [`Error::Settle`] when the job was never accepted here.
    pub fn job(&self, id: &str) -> Result<Job, Error> {
        Ok(self.accept_record(id)?.job())
    }

    /// The recorded `accept` step of job `id`.
    fn accept_record(&self, id: &str) -> Result<SettlementRecord, Error> {
        self.accepted(id)?.ok_or_else(|| Error::Settle(format!("job {id} was never accepted (no accept step in the ledger)")))
    }

    fn record(&self, job: &Job, r: SettlementRecord, receipt: Option<Digest>) -> Result<SettlementRecord, Error> {
        // A repeated step answers with what was recorded the first time.
        if let Some(first) = self.recorded(&job.id, &r.action)? {
            return Ok(first);
        }
        append_step(self.ledger, SETTLEMENT_EVENT_TYPE, receipt, step_key(&job.id, &r.action), &r)?;
        Ok(r)
    }

    fn base(&self, job: &Job, action: &str, reason: &str) -> Result<SettlementRecord, Error> {
        Ok(SettlementRecord {
            action: action.to_owned(),
            outcome: "success".into(),
            reason: reason.to_owned(),
            job: job.id.clone(),
            buyer: job.buyer.clone(),
            prover: job.prover.clone(),
            price: amount(job.price)?,
            deadline_s: job.deadline_s,
            collateral: None,
            cause: None,
            verdict: None,
            receipt: None,
            split: None,
            slashed: 0,
            challenger: None,
            challenger_reward: 0,
            plan_hash: None,
            data_root: None,
            spec: None,
            policy: None,
        })
    }

    fn settled(&self, job: &Job, s: &Settled, cause: &str, verdict: Option<(&str, Digest)>, challenger: Option<&str>) -> Result<SettlementRecord, Error> {
        let action = if s.outcome == "paid" { "pay" } else { "refund" };
        let mut r = self.base(job, action, &s.reason)?;
        r.cause = Some(cause.to_owned());
        r.split = s.split.map(|(p, t, i)| Ok::<_, Error>([amount(p)?, amount(t)?, amount(i)?])).transpose()?;
        r.slashed = amount(s.slashed)?;
        r.challenger_reward = amount(s.challenger_reward)?;
        r.challenger = challenger.map(str::to_owned);
        r.policy = Some(self.settlement.policy);
        r.verdict = verdict.map(|(v, _)| v.to_owned());
        r.receipt = verdict.map(|(_, d)| hex::encode(d.0));
        self.record(job, r, verdict.map(|(_, d)| d))
    }

    /// Money paid in for `buyer` over the payment rail (`rail_ref` names
    /// the payment and makes the step idempotent), recorded.
    ///
    /// # Errors
    /// [`Error::Settle`] when the settlement ledger fails or refuses;
    /// [`Error::Ledger`] as for [`Market::accept`].
    pub fn deposit(&self, buyer: &str, amount: u128, rail_ref: &str) -> Result<SettlementRecord, Error> {
        self.settlement.deposit(buyer, amount, rail_ref).map_err(settle_error)?;
        let job = Job { id: rail_ref.to_owned(), buyer: buyer.to_owned(), prover: String::new(), price: amount, deadline_s: 0 };
        let r = self.base(&job, "deposit", "paid in over the payment rail")?;
        self.record(&job, r, None)
    }

    /// Stake paid in for `prover` over the payment rail, recorded.
    ///
    /// # Errors
    /// As for [`Market::deposit`].
    pub fn stake(&self, prover: &str, amount: u128, rail_ref: &str) -> Result<SettlementRecord, Error> {
        self.settlement.stake(prover, amount, rail_ref).map_err(settle_error)?;
        let job = Job { id: rail_ref.to_owned(), buyer: String::new(), prover: prover.to_owned(), price: amount, deadline_s: 0 };
        let r = self.base(&job, "stake", "staked over the payment rail")?;
        self.record(&job, r, None)
    }

    /// `amount` of `prover`'s stake paid back out over the payment rail
    /// (`rail_ref` names the payout and makes the step idempotent),
    /// recorded.
    ///
    /// # Errors
    /// [`Error::Settle`] when the stake not locked by jobs is less than
    /// `amount`; [`Error::Ledger`] as for [`Market::accept`].
    pub fn withdraw_stake(&self, prover: &str, amount: u128, rail_ref: &str) -> Result<SettlementRecord, Error> {
        self.settlement.withdraw_stake(prover, amount, rail_ref).map_err(settle_error)?;
        let job = Job { id: rail_ref.to_owned(), buyer: String::new(), prover: prover.to_owned(), price: amount, deadline_s: 0 };
        let r = self.base(&job, "withdraw", "stake paid back out over the payment rail")?;
        self.record(&job, r, None)
    }

    /// Slashes `prover`'s free stake for `penalty` outside any job
    /// ([`Settlement::slash_stake`]) and records it as a `slash` step:
    /// `reference` names the penalty (the outage, the evidence) and makes
    /// it idempotent, `reason` says why, `evidence` (e.g. the forged
    /// evidence's SHA-256) is the event's input digest. The record's
    /// `price` and `slashed` are the amount taken.
    ///
    /// # Errors
    /// As for [`Market::withdraw_stake`].
    pub fn penalize(&self, prover: &str, penalty: Penalty, reference: &str, reason: &str, evidence: Option<Digest>) -> Result<SettlementRecord, Error> {
        // The first decision stands: a penalty recorded as 0 (no free stake
        // then) must not take money later that no event would show.
        if let Some(first) = self.recorded(reference, "slash")? {
            return Ok(first);
        }
        let (taken, _) = self.settlement.slash_stake(prover, penalty, reference).map_err(settle_error)?;
        let job = Job { id: reference.to_owned(), buyer: String::new(), prover: prover.to_owned(), price: taken, deadline_s: 0 };
        let mut r = self.base(&job, "slash", reason)?;
        r.cause = Some(penalty.cause().to_owned());
        r.slashed = amount(taken)?;
        r.policy = Some(self.settlement.policy);
        if penalty == Penalty::ForgedAttestation {
            r.verdict = Some("forged".into());
        }
        self.record(&job, r, evidence)
    }

    /// Accepts `job`: the buyer's payment into escrow and the prover's
    /// collateral ([`Settlement::collateral`]) locked, then recorded.
    ///
    /// # Errors
    /// [`Error::Settle`] when the buyer cannot pay or the ledger fails
    /// (nothing is held or recorded then); [`Error::Ledger`] when the
    /// event cannot be appended (the holds stand; repeating the call
    /// records it).
    pub fn accept(&self, job: &Job) -> Result<SettlementRecord, Error> {
        self.accept_with(job, None)
    }

    /// [`Market::accept`], recording the job's `terms` when given: what
    /// its receipt must show, and where its spec is. A job accepted with
    /// terms can be settled from the ledger alone ([`Market::deliver`]).
    ///
    /// # Errors
    /// As for [`Market::accept`].
    pub fn accept_with(&self, job: &Job, terms: Option<&Terms>) -> Result<SettlementRecord, Error> {
        let collateral = self.settlement.collateral(job).map_err(settle_error)?;
        self.settlement.accept(job, collateral).map_err(settle_error)?;
        let mut r = self.base(job, "accept", "payment held in escrow, collateral locked")?;
        r.collateral = Some(amount(collateral)?);
        r.policy = Some(self.settlement.policy);
        if let Some(t) = terms {
            r.plan_hash = Some(hex::encode(t.plan_hash));
            r.data_root = Some(hex::encode(t.data_root));
            r.spec = t.spec.map(|d| hex::encode(d.0));
        }
        self.record(job, r, None)
    }

    /// The recorded `accept` step of job `id`, if it was accepted.
    ///
    /// # Errors
    /// [`Error::Ledger`], [`Error::Index`] or [`Error::Settle`] reading it.
    pub fn accepted(&self, id: &str) -> Result<Option<SettlementRecord>, Error> {
        self.recorded(id, "accept")
    }

    /// How job `id` was settled (its `pay` or `refund` step), if it was.
    ///
    /// # Errors
    /// As for [`Market::accepted`].
    pub fn outcome(&self, id: &str) -> Result<Option<SettlementRecord>, Error> {
        Ok(match self.recorded(id, "pay")? {
            Some(r) => Some(r),
            None => self.recorded(id, "refund")?,
        })
    }

    /// A job that arrives with its result (a NIP-90 job, whose buyer pays
    /// after the result): accepted with its terms
    /// ([`Market::accept_with`]) and at once delivered
    /// ([`Market::deliver`]): paid on a valid receipt, refunded and the
    /// prover slashed on an invalid one. Repeating it answers with the
    /// first settlement.
    ///
    /// # Errors
    /// As for [`Market::accept`] and [`Market::deliver`].
    pub fn settle_on_delivery(&self, job: &Job, terms: &Terms, receipt: &[u8]) -> Result<SettlementRecord, Error> {
        if self.outcome(&job.id)?.is_none() {
            self.accept_with(job, Some(terms))?;
        }
        self.deliver(&job.id, receipt)
    }

    /// Verify-before-fulfil ([`Market::fulfil`]) of job `id` against the
    /// terms recorded when it was accepted ([`Market::accept_with`]): the
    /// receipt must carry that plan hash and data root.
    ///
    /// Delivering the receipt a settled job was settled on answers with
    /// that settlement.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the job was settled already on another
    /// receipt (or none); [`Error::Settle`] when it was never accepted, or
    /// accepted without terms; otherwise as for [`Market::fulfil`].
    pub fn deliver(&self, id: &str, receipt: &[u8]) -> Result<SettlementRecord, Error> {
        if let Some(done) = self.outcome(id)? {
            // The same receipt again (an answer lost on the way) finds its settlement.
            if done.receipt.as_deref() == Some(hex::encode(Sha256::digest(receipt)).as_str()) {
                return Ok(done);
            }
            return Err(Error::Conflict(format!("job {id} was settled already ({}: {})", done.action, done.reason)));
        }
        let r = self.accept_record(id)?;
        let hash = |v: &Option<String>, what: &str| {
            v.as_deref()
                .and_then(zkaudit_plan::value::parse_hex32)
                .ok_or_else(|| Error::Settle(format!("job {id} was accepted without its {what}: settle it with `zkaudit settle fulfil --plan --data`")))
        };
        let expect = Expectations { plan_hash: Some(hash(&r.plan_hash, "plan hash")?), data_root: Some(hash(&r.data_root, "data root")?), output: None };
        self.fulfil(&r.job(), receipt, &expect)
    }

    /// Verify-before-fulfil: verifies `receipt` (registry, seal, journal
    /// against `expect`); a valid one has the escrow posted and split, an
    /// invalid one has it voided back to the buyer and the collateral
    /// slashed. Either way the step is recorded with the verdict.
    ///
    /// # Errors
    /// [`Error::Settle`] when the job was settled the other way already,
    /// or its holds expired; [`Error::Ledger`] as for [`Market::accept`].
    pub fn fulfil(&self, job: &Job, receipt: &[u8], expect: &Expectations) -> Result<SettlementRecord, Error> {
        let digest = Digest(Sha256::digest(receipt).into());
        match zkaudit_zkvm::verify(receipt, self.registry, expect) {
            Ok(v) => {
                let reason = format!("receipt verified: program version {} (image ID {}), {} segment(s)", v.program.version, v.program.image_id, v.segments);
                let s = self.settlement.pay(job, &reason).map_err(settle_error)?;
                self.settled(job, &s, "valid_proof", Some(("valid", digest)), None)
            }
            Err(e) => {
                let s = self.settlement.refund_and_slash(job, &format!("invalid proof: {e}"), None).map_err(settle_error)?;
                self.settled(job, &s, "invalid_proof", Some(("invalid", digest)), None)
            }
        }
    }

    /// No valid proof by the deadline: the escrow back to the buyer and
    /// the collateral slashed, recorded.
    ///
    /// # Errors
    /// [`Error::Settle`] when the deadline has not passed yet (by the
    /// system clock); otherwise as for [`Market::fulfil`].
    pub fn missed_deadline(&self, job: &Job) -> Result<SettlementRecord, Error> {
        if !self.settlement.deadline_passed(job, zkaudit_settle::Clock::now_ns(&zkaudit_settle::SystemClock)).map_err(settle_error)? {
            return Err(Error::Settle(format!("job {}: its deadline of {} s from acceptance has not passed", job.id, job.deadline_s)));
        }
        let s = self.settlement.refund_and_slash(job, &format!("deadline missed: no valid proof within {} s", job.deadline_s), None).map_err(settle_error)?;
        self.settled(job, &s, "deadline_missed", None, None)
    }

    /// Optimistic mode: `challenger` says the receipt the job was accepted
    /// on is invalid. It is verified again: when it fails, the job is
    /// refunded and slashed and the challenger rewarded; when it holds,
    /// the challenge is rejected (recorded, nothing moves).
    ///
    /// # Errors
    /// As for [`Market::fulfil`].
    pub fn challenge(&self, job: &Job, receipt: &[u8], expect: &Expectations, challenger: &str) -> Result<SettlementRecord, Error> {
        let digest = Digest(Sha256::digest(receipt).into());
        match zkaudit_zkvm::verify(receipt, self.registry, expect) {
            Ok(_) => {
                let mut r = self.base(job, "challenge_rejected", &format!("challenge by {challenger} rejected: the receipt verifies"))?;
                r.outcome = "failure".into();
                r.verdict = Some("valid".into());
                r.receipt = Some(hex::encode(digest.0));
                r.challenger = Some(challenger.to_owned());
                self.record(job, r, Some(digest))
            }
            Err(e) => {
                let s = self.settlement.refund_and_slash(job, &format!("challenge upheld: {e}"), Some(challenger)).map_err(settle_error)?;
                self.settled(job, &s, "challenge_upheld", Some(("invalid", digest)), Some(challenger))
            }
        }
    }
}
