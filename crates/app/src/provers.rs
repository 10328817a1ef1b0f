//! The prover registry (`zkaudit provers`): who may prove for the market,
//! with what weight, and the seeded draw that picks one for a job.
//!
//! Its state lives in the ledger and the settlement accounts, nowhere else:
//! * registrations, attestations, unbonding requests, withdrawals,
//!   selections, bans and endpoint probes are `prover` events
//!   ([`ProverRecord`]), each written once (its output digest names the
//!   step); probes are recorded when a prover's reachability changes, so
//!   the event that first saw it down dates the outage;
//! * a prover's outcomes are counted from the `settlement` events of the
//!   jobs it settled (`pay` on a valid proof: succeeded; `refund` on an
//!   invalid proof or an upheld challenge: failed; on a missed deadline:
//!   timed out);
//! * its stake is its stake account's free balance in the settlement
//!   ledger; registering pays stake in over the rail and withdrawing pays
//!   it out, both recorded as `settlement` events too;
//! * penalties outside jobs are `settlement` `slash` steps: the policy's
//!   share of the free stake for an outage longer than
//!   [`RegistryPolicy::downtime_s`] (once per outage), and for a forged
//!   attestation ([`zkaudit_attest::AttestError::Forged`]), which also
//!   bans the prover.
//!
//! So anyone with the ledger can rebuild the registry as of any selection
//! and repeat the draw from its recorded seed. The rules (reputation,
//! verification period, weights, unbonding) are
//! [`zkaudit_settle::provers`]'.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zkaudit_event::Digest;
use zkaudit_index::{Query, Selector};
use zkaudit_settle::provers::{Outcomes, Prover, RegistryPolicy, Status};
use zkaudit_settle::settlement::Penalty;

use crate::settle::{amount, append_step, read_record, recorded_step, settle_error, Market, SettlementRecord, Terms, SETTLEMENT_EVENT_TYPE};
use crate::Error;

/// The type of the prover registry's ledger events.
pub const PROVER_EVENT_TYPE: &str = "prover";

/// What a registry step did, as its `prover` event's metadata (ECS names
/// where ECS has them, else `zkaudit.prover.*`). Amounts are integers in
/// the settlement ledger's unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProverRecord {
    /// `register`, `attest`, `unbond`, `withdraw`, `select`, `probe` or `ban`.
    #[serde(rename = "event.action")]
    pub action: String,
    /// Why, in words.
    #[serde(rename = "event.reason")]
    pub reason: String,
    /// The prover's key; for `select`, the prover selected.
    #[serde(rename = "zkaudit.prover.key")]
    pub key: String,
    /// Where the prover takes jobs (`register`).
    #[serde(rename = "zkaudit.prover.endpoint", default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `none`, or the TEE a verified attestation showed (`register`):
    /// `sgx`, `tdx` or `sev-snp`.
    #[serde(rename = "zkaudit.prover.tee", default, skip_serializing_if = "Option::is_none")]
    pub tee: Option<String>,
    /// The attested code measurement, hex (`register` with evidence).
    #[serde(rename = "zkaudit.prover.tee_measurement", default, skip_serializing_if = "Option::is_none")]
    pub tee_measurement: Option<String>,
    /// The attested platform's TCB status (`register` with evidence).
    #[serde(rename = "zkaudit.prover.tcb_status", default, skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// Stake paid in (`register`) or out (`withdraw`).
    #[serde(rename = "zkaudit.prover.amount", default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// Whether the prover's endpoint answered (`probe`).
    #[serde(rename = "zkaudit.prover.reachable", default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// The job a selection is for.
    #[serde(rename = "zkaudit.prover.job", default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The selection's seed, 64 hex digits.
    #[serde(rename = "zkaudit.prover.seed", default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// The draw, in decimal (it may exceed 2^53).
    #[serde(rename = "zkaudit.prover.draw", default, skip_serializing_if = "Option::is_none")]
    pub draw: Option<String>,
    /// The candidates' total weight, in decimal.
    #[serde(rename = "zkaudit.prover.total_weight", default, skip_serializing_if = "Option::is_none")]
    pub total_weight: Option<String>,
    /// How many provers had a weight above zero.
    #[serde(rename = "zkaudit.prover.candidates", default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<u64>,
    /// Whether the job required a TEE.
    #[serde(rename = "zkaudit.prover.require_tee", default, skip_serializing_if = "Option::is_none")]
    pub require_tee: Option<bool>,
    /// The registry policy the step applied, so the decision can be
    /// checked again.
    #[serde(rename = "zkaudit.prover.policy", default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRecord>,
}

/// A [`RegistryPolicy`] as a ledger event holds it (the minimum stake in
/// decimal: it may exceed 2^53).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRecord {
    /// The least stake to be selected, in the settlement unit.
    pub min_stake: String,
    /// Valid proofs before full weight.
    pub verification_period: u32,
    /// Seconds from unbonding to withdrawal.
    pub unbonding_s: u64,
    /// Seconds of unreachability before a downtime penalty.
    pub downtime_s: u64,
}

impl From<&RegistryPolicy> for PolicyRecord {
    fn from(p: &RegistryPolicy) -> PolicyRecord {
        PolicyRecord { min_stake: p.min_stake.to_string(), verification_period: p.verification_period, unbonding_s: p.unbonding_s, downtime_s: p.downtime_s }
    }
}

impl ProverRecord {
    fn new(action: &str, key: &str, reason: String, policy: &RegistryPolicy) -> ProverRecord {
        ProverRecord {
            action: action.to_owned(),
            reason,
            key: key.to_owned(),
            endpoint: None,
            tee: None,
            tee_measurement: None,
            tcb_status: None,
            amount: None,
            reachable: None,
            job: None,
            seed: None,
            draw: None,
            total_weight: None,
            candidates: None,
            require_tee: None,
            policy: Some(policy.into()),
        }
    }
}

/// A prover as `zkaudit provers list --json` and `GET /v1/provers` show
/// it: what was recorded, plus the figures derived under the policy.
/// Stake and weight are decimal strings (they may exceed 2^53).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProverView {
    /// The prover's key.
    pub key: String,
    /// Where it takes jobs.
    pub endpoint: String,
    /// `sgx`, `tdx`, `sev-snp`, or `None` without a verified attestation.
    pub tee: Option<String>,
    /// When it registered (ns since the Unix epoch).
    pub registered_ns: u64,
    /// Its life-cycle state.
    pub status: Status,
    /// Its free stake, in the settlement ledger's unit.
    pub stake: String,
    /// Its settled jobs.
    pub outcomes: Outcomes,
    /// Reputation, basis points.
    pub reputation_bps: u32,
    /// Verification ramp, basis points.
    pub ramp_bps: u32,
    /// Whether it has passed the verification period.
    pub verified: bool,
    /// Selection weight (0: never drawn).
    pub weight: String,
}

/// Seconds since the epoch by the system clock: when evidence is checked.
fn now_s() -> u64 {
    zkaudit_settle::Clock::now_ns(&zkaudit_settle::SystemClock) / 1_000_000_000
}

/// The output digest of registry step `name`: SHA-256 of `zkaudit-provers/<name>`.
fn step_key(name: &str) -> Digest {
    Digest(Sha256::digest(format!("zkaudit-provers/{name}").as_bytes()).into())
}

/// What one probe of a prover's endpoint found
/// ([`ProverRegistry::probe`]), as `zkaudit provers probe --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    /// The prover's key.
    pub key: String,
    /// The endpoint probed.
    pub endpoint: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Since when it has been unreachable (ns since the Unix epoch): the
    /// first probe that found it down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_since_ns: Option<u64>,
    /// Whether this probe changed its recorded reachability (a `probe`
    /// event was written).
    pub recorded: bool,
    /// The downtime penalty of this outage, once it has lasted longer than
    /// the policy allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slash: Option<SettlementRecord>,
}

/// How long a probe waits for a prover's endpoint unless told (s).
pub const DEFAULT_PROBE_TIMEOUT_S: u64 = 10;

/// Checks that `endpoint` answers an HTTP GET within `timeout`: any
/// response below 500 counts (a prover's API may want a token). The
/// probe [`ProverRegistry::probe`] uses by default.
///
/// # Errors
/// Why it is not reachable: the connection or the 5xx status.
pub fn http_probe(endpoint: &str, timeout: std::time::Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
    let status = agent.get(endpoint).call().map_err(|e| e.to_string())?.status();
    if status.is_server_error() {
        return Err(format!("HTTP {status}"));
    }
    Ok(())
}

/// A job a buyer posts to the market ([`ProverRegistry::post`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The job's ID (unique per job; posting it again answers with the
    /// first assignment).
    pub id: String,
    /// The buyer's key (names its balance).
    pub buyer: String,
    /// What the buyer pays, in the settlement unit.
    pub price: u128,
    /// Seconds the prover has for a valid proof, from acceptance.
    pub deadline_s: u32,
    /// Draw only provers with a verified TEE attestation.
    pub require_tee: bool,
    /// What the receipt must show, and where the spec is.
    pub terms: Terms,
}

/// A job and the prover drawn for it, as `POST /v1/market/jobs`,
/// `GET /v1/market/jobs/{id}` and `GET /v1/provers/{key}/jobs` show it:
/// the recorded steps themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The job's ID.
    pub job: String,
    /// The prover drawn for it.
    pub prover: String,
    /// Where that prover takes jobs.
    pub endpoint: String,
    /// The draw (`prover` event `select`).
    pub selection: ProverRecord,
    /// The job's acceptance (`settlement` event `accept`: escrow, collateral,
    /// terms), if it was accepted.
    pub accepted: Option<SettlementRecord>,
    /// How it was settled (`pay` or `refund`), if it was.
    pub outcome: Option<SettlementRecord>,
}

/// For each probed prover, when its reachability was last recorded (ns)
/// and whether it was reachable.
type LastProbes = std::collections::BTreeMap<String, (u64, bool)>;

/// The registry over a market's settlement ledger and event ledger.
pub struct ProverRegistry<'a, L: zkaudit_settle::Ledger> {
    /// Stake moves through the market's settlement, recorded in its ledger.
    pub market: &'a Market<'a, L>,
    /// Minimum stake, verification period, unbonding.
    pub policy: RegistryPolicy,
}

impl<L: zkaudit_settle::Ledger> ProverRegistry<'_, L> {
    fn events<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Result<Vec<(u64, T)>, Error> {
        self.market
            .ledger
            .select(&Query::new(Selector::Type(kind.to_owned())))?
            .iter()
            .map(|e| {
                let ts = u64::try_from(e.timestamp_ns).map_err(|_| Error::Settle(format!("event {}: a {kind} event dated before 1970", e.leaf_index)))?;
                Ok((ts, read_record(e)?))
            })
            .collect()
    }

    /// Every prover ever registered, in key order, as of now.
    ///
    /// # Errors
    /// [`Error::Ledger`] or [`Error::Index`] reading events;
    /// [`Error::Settle`] for an event that is not a registry record or a
    /// settlement ledger that fails.
    pub fn provers(&self) -> Result<Vec<Prover>, Error> {
        Ok(self.scan()?.0)
    }

    /// The provers, and for each probed one when its reachability was
    /// last recorded and what it was.
    fn scan(&self) -> Result<(Vec<Prover>, LastProbes), Error> {
        let mut by_key = std::collections::BTreeMap::<String, Prover>::new();
        let mut probes = std::collections::BTreeMap::new();
        for (ts, r) in self.events::<ProverRecord>(PROVER_EVENT_TYPE)? {
            match r.action.as_str() {
                "register" => {
                    let endpoint = r.endpoint.ok_or_else(|| Error::Settle(format!("a register event of prover {} has no endpoint", r.key)))?;
                    let p = Prover {
                        key: r.key.clone(),
                        endpoint,
                        tee: r.tee.filter(|t| t != "none"),
                        registered_ns: ts,
                        status: Status::Active,
                        stake: 0,
                        // Counted below from the settlement events, all of them.
                        outcomes: Outcomes::default(),
                    };
                    by_key.insert(r.key, p);
                }
                "unbond" => {
                    if let Some(p) = by_key.get_mut(&r.key) {
                        p.status = Status::Unbonding { since_ns: ts };
                    }
                }
                "withdraw" => {
                    if let Some(p) = by_key.get_mut(&r.key) {
                        p.status = Status::Withdrawn;
                    }
                }
                "attest" => {
                    if let Some(p) = by_key.get_mut(&r.key) {
                        p.tee = r.tee.filter(|t| t != "none");
                    }
                }
                "ban" => {
                    if let Some(p) = by_key.get_mut(&r.key) {
                        p.status = Status::Banned { since_ns: ts };
                    }
                }
                "probe" => {
                    let up = r.reachable.ok_or_else(|| Error::Settle(format!("a probe event of prover {} does not say if it was reachable", r.key)))?;
                    probes.insert(r.key, (ts, up));
                }
                _ => {}
            }
        }
        for (_, s) in self.events::<SettlementRecord>(SETTLEMENT_EVENT_TYPE)? {
            let Some(p) = by_key.get_mut(&s.prover) else { continue };
            let o: &mut Outcomes = &mut p.outcomes;
            match (s.action.as_str(), s.cause.as_deref()) {
                ("pay", Some("valid_proof")) => o.succeeded += 1,
                ("refund", Some("invalid_proof" | "challenge_upheld")) => o.failed += 1,
                ("refund", Some("deadline_missed")) => o.timed_out += 1,
                _ => {}
            }
        }
        for p in by_key.values_mut() {
            p.stake = self.market.settlement.free_stake(&p.key).map_err(settle_error)?;
        }
        Ok((by_key.into_values().collect(), probes))
    }

    /// [`ProverRegistry::provers`] with the derived figures.
    ///
    /// # Errors
    /// As for [`ProverRegistry::provers`].
    pub fn views(&self) -> Result<Vec<ProverView>, Error> {
        Ok(self
            .provers()?
            .into_iter()
            .map(|p| ProverView {
                reputation_bps: p.outcomes.reputation_bps(),
                ramp_bps: p.ramp_bps(&self.policy),
                verified: p.verified(&self.policy),
                weight: p.weight(&self.policy, false).to_string(),
                stake: p.stake.to_string(),
                key: p.key,
                endpoint: p.endpoint,
                tee: p.tee,
                registered_ns: p.registered_ns,
                status: p.status,
                outcomes: p.outcomes,
            })
            .collect())
    }

    /// The prover `key`, if it ever registered.
    ///
    /// # Errors
    /// As for [`ProverRegistry::provers`].
    pub fn prover(&self, key: &str) -> Result<Option<Prover>, Error> {
        Ok(self.provers()?.into_iter().find(|p| p.key == key))
    }

    /// Registers `key`, taking jobs at `endpoint`, with `stake` paid in
    /// over the rail (`rail_ref` names the payment and makes the step
    /// idempotent: repeating it answers with the first record).
    ///
    /// With `evidence` (a TEE quote or report and its collateral), the
    /// evidence must verify now, and its measurement be approved by the
    /// market's program registry ([`zkaudit_attest::verify`]); the TEE,
    /// measurement and TCB status are recorded, and the evidence's SHA-256
    /// is the event's input digest. Without, the prover is `tee: none`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when `key` is registered already (and not
    /// withdrawn); [`Error::Settle`] when the endpoint is not a URL, the
    /// evidence is refused (with the reason), or its free stake with this
    /// payment stays below the minimum. Nothing is paid in then.
    pub fn register(&self, key: &str, endpoint: &str, stake: u128, rail_ref: &str, evidence: Option<(&[u8], &[u8])>) -> Result<ProverRecord, Error> {
        let step = step_key(&format!("register/{rail_ref}"));
        if let Some(first) = recorded_step(self.market.ledger, PROVER_EVENT_TYPE, step)? {
            return Ok(first);
        }
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(Error::Settle(format!("prover key {key:?}: must be non-empty, without spaces")));
        }
        if !endpoint.split_once("://").is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty()) || endpoint.chars().any(char::is_whitespace) {
            return Err(Error::Settle(format!("endpoint {endpoint:?} is not a URL")));
        }
        if let Some(p) = self.prover(key)? {
            if matches!(p.status, Status::Banned { .. }) {
                return Err(Error::Conflict(format!("prover {key} is banned and may not register again")));
            }
            if p.status != Status::Withdrawn {
                return Err(Error::Conflict(format!("prover {key} is registered already ({:?})", p.status)));
            }
        }
        let free = self.market.settlement.free_stake(key).map_err(settle_error)?;
        if free.saturating_add(stake) < self.policy.min_stake {
            return Err(Error::Settle(format!("a stake of {} is below the minimum of {}", free.saturating_add(stake), self.policy.min_stake)));
        }
        let attested = match evidence {
            Some((quote, collateral)) => {
                let a = zkaudit_attest::verify(quote, collateral, now_s(), &self.attestation_policy())
                    .map_err(|e| Error::Settle(format!("prover {key}: attestation refused: {e}")))?;
                Some((a, Digest(Sha256::digest(quote).into())))
            }
            None => None,
        };
        self.market.stake(key, stake, rail_ref)?;
        let mut r = match &attested {
            Some((a, _)) => {
                let mut r = ProverRecord::new(
                    "register",
                    key,
                    format!("registered with a stake of {stake} and a verified {} attestation", a.tee.as_str()),
                    &self.policy,
                );
                r.tee = Some(a.tee.as_str().to_owned());
                r.tee_measurement = Some(a.measurement.clone());
                r.tcb_status = Some(a.tcb_status.clone());
                r
            }
            None => {
                let mut r = ProverRecord::new("register", key, format!("registered with a stake of {stake}, without a TEE attestation"), &self.policy);
                r.tee = Some("none".into());
                r
            }
        };
        r.endpoint = Some(endpoint.to_owned());
        r.amount = Some(amount(stake)?);
        append_step(self.market.ledger, PROVER_EVENT_TYPE, attested.map(|(_, d)| d), step, &r)?;
        Ok(r)
    }

    /// What a prover's TEE evidence must show: a measurement the market's
    /// program registry approves.
    fn attestation_policy(&self) -> zkaudit_attest::Policy {
        zkaudit_attest::Policy { approved: Some(self.market.registry.approved_measurements()), require_up_to_date: false }
    }

    fn registered(&self, key: &str) -> Result<Prover, Error> {
        self.prover(key)?.ok_or_else(|| Error::Conflict(format!("prover {key} is not registered")))
    }

    /// Starts `key`'s unbonding: it is not selected from now on, and may
    /// withdraw its stake once the unbonding period has passed.
    /// Repeating it answers with the first record.
    ///
    /// # Errors
    /// [`Error::Conflict`] when `key` is not registered or not active.
    pub fn unbond(&self, key: &str) -> Result<ProverRecord, Error> {
        let p = self.registered(key)?;
        let step = step_key(&format!("unbond/{key}/{}", p.registered_ns));
        if let Some(first) = recorded_step(self.market.ledger, PROVER_EVENT_TYPE, step)? {
            return Ok(first);
        }
        if p.status != Status::Active {
            return Err(Error::Conflict(format!("prover {key} is not active ({:?})", p.status)));
        }
        let r = ProverRecord::new("unbond", key, format!("unbonding: stake withdrawable after {} s", self.policy.unbonding_s), &self.policy);
        append_step(self.market.ledger, PROVER_EVENT_TYPE, None, step, &r)?;
        Ok(r)
    }

    /// Pays `key`'s free stake back out over the rail, once its unbonding
    /// period has passed at `now_ns` (ns since the epoch). Repeating it
    /// answers with the first record.
    ///
    /// # Errors
    /// [`Error::Conflict`] when `key` is not unbonding, the period has not
    /// passed, or jobs in progress still lock part of its stake.
    pub fn withdraw(&self, key: &str, now_ns: u64) -> Result<ProverRecord, Error> {
        let p = self.registered(key)?;
        // Names both the step and the payout on the rail.
        let name = format!("withdraw/{key}/{}", p.registered_ns);
        let step = step_key(&name);
        if let Some(first) = recorded_step(self.market.ledger, PROVER_EVENT_TYPE, step)? {
            return Ok(first);
        }
        let Some(from) = p.withdrawable_from_ns(&self.policy) else {
            return Err(Error::Conflict(format!("prover {key} is not unbonding ({:?}): run `unbond` first", p.status)));
        };
        if now_ns < from {
            return Err(Error::Conflict(format!("prover {key}: the unbonding period ends in {} s", (from - now_ns).div_ceil(1_000_000_000))));
        }
        let (free, locked) = self.market.settlement.stake_balance(key).map_err(settle_error)?;
        if locked > 0 {
            return Err(Error::Conflict(format!("prover {key}: {locked} of its stake is still locked by jobs in progress")));
        }
        self.market.withdraw_stake(key, free, &name)?;
        let mut r = ProverRecord::new("withdraw", key, format!("stake of {free} paid out after unbonding"), &self.policy);
        r.amount = Some(amount(free)?);
        append_step(self.market.ledger, PROVER_EVENT_TYPE, None, step, &r)?;
        Ok(r)
    }

    /// Selects the prover for `job` by the seeded weighted draw
    /// ([`zkaudit_settle::provers::select`]) over the registry as it is
    /// now, and records the selection with its seed. Repeating it for the
    /// same job answers with the first selection.
    ///
    /// # Errors
    /// [`Error::Conflict`] when no prover can be selected (none active
    /// with the minimum stake, or none with a TEE when one is required).
    pub fn select(&self, job: &str, seed: &[u8; 32], require_tee: bool) -> Result<ProverRecord, Error> {
        let step = step_key(&format!("select/{job}"));
        if let Some(first) = recorded_step(self.market.ledger, PROVER_EVENT_TYPE, step)? {
            return Ok(first);
        }
        let provers = self.provers()?;
        let Some(s) = zkaudit_settle::provers::select(&provers, &self.policy, seed, job, require_tee) else {
            let tee = if require_tee { " and a TEE" } else { "" };
            return Err(Error::Conflict(format!(
                "no prover can be selected for job {job}: {} registered, none active with a stake of at least {}{tee}",
                provers.len(),
                self.policy.min_stake
            )));
        };
        let mut r = ProverRecord::new(
            "select",
            &s.prover,
            format!("drew {} of total weight {} among {} candidate(s)", s.draw, s.total_weight, s.candidates),
            &self.policy,
        );
        r.job = Some(job.to_owned());
        r.seed = Some(hex::encode(seed));
        r.draw = Some(s.draw.to_string());
        r.total_weight = Some(s.total_weight.to_string());
        r.candidates = Some(s.candidates as u64);
        r.require_tee = Some(require_tee);
        append_step(self.market.ledger, PROVER_EVENT_TYPE, None, step, &r)?;
        Ok(r)
    }

    /// A registered prover presents fresh TEE evidence (`quote` and its
    /// `collateral`), verified now against the market's approved
    /// measurements:
    /// * it verifies: an `attest` event records the TEE, measurement and
    ///   TCB status (the prover's `tee` from now on);
    /// * it is forged ([`zkaudit_attest::AttestError::Forged`]): the
    ///   policy's share of the free stake is slashed
    ///   ([`Penalty::ForgedAttestation`]) and a `ban` event bars the
    ///   prover for good; the `ban` record is returned.
    ///
    /// The evidence's SHA-256 is the events' input digest, and names the
    /// step: presenting the same evidence again answers with the first
    /// record.
    ///
    /// # Errors
    /// [`Error::Conflict`] when `key` is not registered, withdrawn or
    /// banned; [`Error::Settle`] when the evidence is refused for another
    /// reason (expired or mismatched collateral, an unapproved
    /// measurement, not evidence at all): nothing is recorded then.
    pub fn attest(&self, key: &str, quote: &[u8], collateral: &[u8]) -> Result<ProverRecord, Error> {
        let evidence = Digest(Sha256::digest(quote).into());
        let step = step_key(&format!("attest/{key}/{evidence}"));
        if let Some(first) = recorded_step(self.market.ledger, PROVER_EVENT_TYPE, step)? {
            return Ok(first);
        }
        let p = self.registered(key)?;
        if matches!(p.status, Status::Withdrawn | Status::Banned { .. }) {
            return Err(Error::Conflict(format!("prover {key} is {}", p.status.name())));
        }
        match zkaudit_attest::verify(quote, collateral, now_s(), &self.attestation_policy()) {
            Ok(a) => {
                let mut r = ProverRecord::new("attest", key, format!("a verified {} attestation, TCB {}", a.tee.as_str(), a.tcb_status), &self.policy);
                r.tee = Some(a.tee.as_str().to_owned());
                r.tee_measurement = Some(a.measurement);
                r.tcb_status = Some(a.tcb_status);
                append_step(self.market.ledger, PROVER_EVENT_TYPE, Some(evidence), step, &r)?;
                Ok(r)
            }
            Err(e @ zkaudit_attest::AttestError::Forged { .. }) => {
                let reason = format!("forged attestation: {e}");
                self.market.penalize(key, Penalty::ForgedAttestation, &format!("forged/{key}/{evidence}"), &reason, Some(evidence))?;
                let r = ProverRecord::new("ban", key, reason, &self.policy);
                append_step(self.market.ledger, PROVER_EVENT_TYPE, Some(evidence), step, &r)?;
                Ok(r)
            }
            Err(e) => Err(Error::Settle(format!("prover {key}: attestation refused: {e}"))),
        }
    }

    /// Probes the endpoint of every active or unbonding prover with
    /// `check` (e.g. [`http_probe`]) at `now_ns` (ns since the epoch).
    /// A change in reachability is recorded as a `probe` event; a prover
    /// down since a recorded probe more than [`RegistryPolicy::downtime_s`]
    /// ago is slashed the policy's downtime share of its free stake
    /// ([`Penalty::Downtime`]), once per outage (the outage's start names
    /// the penalty).
    ///
    /// # Errors
    /// As for [`ProverRegistry::provers`], and [`Error::Ledger`] when a
    /// probe or penalty cannot be recorded.
    pub fn probe(&self, now_ns: u64, check: impl Fn(&str) -> Result<(), String>) -> Result<Vec<ProbeResult>, Error> {
        let (provers, probes) = self.scan()?;
        let mut results = Vec::new();
        for p in provers.iter().filter(|p| matches!(p.status, Status::Active | Status::Unbonding { .. })) {
            let found = check(&p.endpoint);
            let reachable = found.is_ok();
            let last = probes.get(&p.key).copied();
            let recorded = last.map(|(_, up)| up) != Some(reachable);
            if recorded {
                let reason = match &found {
                    Ok(()) => format!("{} answered", p.endpoint),
                    Err(e) => format!("{} unreachable: {e}", p.endpoint),
                };
                let mut r = ProverRecord::new("probe", &p.key, reason, &self.policy);
                r.endpoint = Some(p.endpoint.clone());
                r.reachable = Some(reachable);
                append_step(self.market.ledger, PROVER_EVENT_TYPE, None, step_key(&format!("probe/{}/{now_ns}", p.key)), &r)?;
            }
            let down_since_ns = match last {
                _ if reachable => None,
                Some((since, false)) => Some(since),
                _ => Some(now_ns),
            };
            let slash = match down_since_ns {
                Some(since) if now_ns.saturating_sub(since) > self.policy.downtime_s.saturating_mul(1_000_000_000) => {
                    let reason = format!("unreachable for {} s, over the {} s allowed", (now_ns - since) / 1_000_000_000, self.policy.downtime_s);
                    Some(self.market.penalize(&p.key, Penalty::Downtime, &format!("downtime/{}/{since}", p.key), &reason, None)?)
                }
                _ => None,
            };
            results.push(ProbeResult { key: p.key.clone(), endpoint: p.endpoint.clone(), reachable, error: found.err(), down_since_ns, recorded, slash });
        }
        Ok(results)
    }

    /// Posts `offer` to the market: its prover is drawn from `seed`
    /// ([`ProverRegistry::select`]) and the job accepted for it with its
    /// terms ([`Market::accept_with`]: the buyer's payment into escrow,
    /// the prover's collateral locked), both recorded. Posting the same
    /// job again answers with its first assignment.
    ///
    /// # Errors
    /// [`Error::Conflict`] when no prover can be drawn; [`Error::Settle`]
    /// when the buyer cannot pay (the draw stays recorded; nothing is
    /// held).
    pub fn post(&self, offer: &Offer, seed: &[u8; 32]) -> Result<Assignment, Error> {
        if offer.id.is_empty() || offer.id.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(Error::Settle(format!("job ID {:?}: must be non-empty, without spaces or slashes", offer.id)));
        }
        let selection = self.select(&offer.id, seed, offer.require_tee)?;
        let job = zkaudit_settle::settlement::Job {
            id: offer.id.clone(),
            buyer: offer.buyer.clone(),
            prover: selection.key.clone(),
            price: offer.price,
            deadline_s: offer.deadline_s,
        };
        self.market.accept_with(&job, Some(&offer.terms))?;
        self.assignment(&offer.id)?.ok_or_else(|| Error::Settle(format!("job {}: its draw was not found after it was recorded", offer.id)))
    }

    /// Job `id`'s assignment, if a prover was drawn for it.
    ///
    /// # Errors
    /// As for [`ProverRegistry::provers`].
    pub fn assignment(&self, id: &str) -> Result<Option<Assignment>, Error> {
        match recorded_step::<ProverRecord>(self.market.ledger, PROVER_EVENT_TYPE, step_key(&format!("select/{id}")))? {
            Some(selection) => {
                let endpoint = self.endpoint(&selection.key)?;
                self.assignment_of(selection, endpoint).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Where the registered prover `key` takes jobs.
    fn endpoint(&self, key: &str) -> Result<String, Error> {
        self.prover(key)?.map(|p| p.endpoint).ok_or_else(|| Error::Settle(format!("prover {key} was drawn but never registered")))
    }

    fn assignment_of(&self, selection: ProverRecord, endpoint: String) -> Result<Assignment, Error> {
        let job = selection.job.clone().ok_or_else(|| Error::Settle(format!("a select event of prover {} names no job", selection.key)))?;
        Ok(Assignment { prover: selection.key.clone(), endpoint, accepted: self.market.accepted(&job)?, outcome: self.market.outcome(&job)?, job, selection })
    }

    /// The jobs drawn for prover `key`, oldest first, with where each stands.
    ///
    /// # Errors
    /// As for [`ProverRegistry::provers`].
    pub fn assigned(&self, key: &str) -> Result<Vec<Assignment>, Error> {
        let selections: Vec<ProverRecord> =
            self.events::<ProverRecord>(PROVER_EVENT_TYPE)?.into_iter().map(|(_, r)| r).filter(|r| r.action == "select" && r.key == key).collect();
        if selections.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint = self.endpoint(key)?;
        selections.into_iter().map(|r| self.assignment_of(r, endpoint.clone())).collect()
    }
}
