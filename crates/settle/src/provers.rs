//! The prover registry's rules: reputation from outcomes, selection
//! weight from stake and reputation, a verification period before full
//! weight, unbonding before stake can leave, and the seeded weighted draw
//! that picks a prover for a job, reproducible by anyone who has the
//! registry's state and the seed.
//!
//! This module holds no state: the caller builds each [`Prover`] from what
//! it recorded (registrations, settled jobs, stake balances) and asks.
//!
//! Formulas (integers throughout, rounded down):
//! * reputation, in basis points: `10000 · (s + 1) / (s + 2f + t + 2)` for
//!   `s` jobs paid on a valid proof, `f` invalid proofs (counted twice: an
//!   invalid proof is an attempt to be paid for nothing) and `t` missed
//!   deadlines. A new prover starts at 5,000; 100 valid proofs and nothing
//!   else give 9,901.
//! * verification ramp, in basis points: `10000 · min(s + 1, P) / P` for a
//!   verification period of `P` valid proofs (the seed's 100); full weight
//!   once `s + 1 ≥ P`.
//! * weight: `stake · reputation · ramp / 10^8`, and 0 for a prover that
//!   is not active, is below the minimum stake, or lacks a TEE when the
//!   job requires one.
//! * draw: the first 16 bytes of SHA-256(`zkaudit-provers/select/1` ‖
//!   seed ‖ job ID), big-endian, modulo the total weight; provers are
//!   taken in key order and the one whose cumulative weight first exceeds
//!   the draw is selected.

use sha2::{Digest as _, Sha256};

/// Registry parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPolicy {
    /// The least stake (in the ledger's unit) a prover needs to be selected.
    pub min_stake: u128,
    /// Valid proofs before a prover has full selection weight (the seed: 100).
    pub verification_period: u32,
    /// Seconds from an unbonding request until the stake may be withdrawn;
    /// the prover is not selected meanwhile and can still be slashed.
    pub unbonding_s: u64,
    /// Seconds a prover's endpoint may stay unreachable before it is
    /// slashed for downtime (the seed: 1 h).
    pub downtime_s: u64,
}

impl Default for RegistryPolicy {
    /// A minimum stake of 1,000,000 units (1,000 sat in msat), the seed's
    /// 100-proof verification period, 7 days of unbonding and 1 h of
    /// tolerated downtime.
    fn default() -> RegistryPolicy {
        RegistryPolicy { min_stake: 1_000_000, verification_period: 100, unbonding_s: 7 * 86_400, downtime_s: 3_600 }
    }
}

/// Where a prover is in its life cycle.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", rename_all_fields = "camelCase", tag = "state")]
pub enum Status {
    /// Registered and selectable.
    Active,
    /// Asked to leave at `since_ns` (ns since the Unix epoch); not
    /// selectable; the stake may be withdrawn from `since_ns` plus the
    /// unbonding period.
    Unbonding {
        /// When the prover asked to leave.
        since_ns: u64,
    },
    /// Its stake was withdrawn; it must register again to serve.
    Withdrawn,
    /// Banned at `since_ns` for a forged attestation: never selected
    /// again, may not register again or withdraw.
    Banned {
        /// When it was banned.
        since_ns: u64,
    },
}

impl Status {
    /// `active`, `unbonding`, `withdrawn` or `banned`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Unbonding { .. } => "unbonding",
            Status::Withdrawn => "withdrawn",
            Status::Banned { .. } => "banned",
        }
    }
}

/// A prover's settled jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    /// Jobs paid on a valid proof.
    pub succeeded: u64,
    /// Jobs refunded on an invalid proof (at fulfilment or on a challenge).
    pub failed: u64,
    /// Jobs refunded because the deadline passed without a valid proof.
    pub timed_out: u64,
}

impl Outcomes {
    /// Reputation in basis points (see the module docs).
    pub fn reputation_bps(&self) -> u32 {
        let num = u128::from(self.succeeded) + 1;
        let den = u128::from(self.succeeded) + 2 * u128::from(self.failed) + u128::from(self.timed_out) + 2;
        // num < den, so the quotient is below 10,000.
        u32::try_from(10_000 * num / den).unwrap_or(10_000)
    }
}

/// One registered prover, as the caller recorded it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prover {
    /// The prover's key (hex), which names its stake account.
    pub key: String,
    /// Where it takes jobs (a URL).
    pub endpoint: String,
    /// The TEE its attestation showed (`sgx`, `tdx`, `sev-snp`), or `None`
    /// for a prover registered without one.
    pub tee: Option<String>,
    /// When it registered (ns since the Unix epoch).
    pub registered_ns: u64,
    /// Its life-cycle state.
    pub status: Status,
    /// Its stake's free balance (posted credits less posted and pending
    /// debits), in the ledger's unit.
    pub stake: u128,
    /// Its settled jobs.
    pub outcomes: Outcomes,
}

impl Prover {
    /// Verification ramp in basis points (see the module docs).
    pub fn ramp_bps(&self, policy: &RegistryPolicy) -> u32 {
        let period = u64::from(policy.verification_period.max(1));
        u32::try_from(10_000 * (self.outcomes.succeeded + 1).min(period) / period).unwrap_or(10_000)
    }

    /// Whether it has passed the verification period.
    pub fn verified(&self, policy: &RegistryPolicy) -> bool {
        self.outcomes.succeeded >= u64::from(policy.verification_period)
    }

    /// Selection weight (see the module docs); 0 means never selected.
    pub fn weight(&self, policy: &RegistryPolicy, require_tee: bool) -> u128 {
        if self.status != Status::Active || self.stake < policy.min_stake || (require_tee && self.tee.is_none()) {
            return 0;
        }
        let factor = u128::from(self.outcomes.reputation_bps()) * u128::from(self.ramp_bps(policy));
        self.stake.saturating_mul(factor) / 100_000_000
    }

    /// When its stake may be withdrawn (ns), if it is unbonding.
    pub fn withdrawable_from_ns(&self, policy: &RegistryPolicy) -> Option<u64> {
        match self.status {
            Status::Unbonding { since_ns } => Some(since_ns.saturating_add(policy.unbonding_s.saturating_mul(1_000_000_000))),
            _ => None,
        }
    }
}

/// The outcome of a draw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    /// The selected prover's key.
    pub prover: String,
    /// The draw, in `0..total_weight`.
    pub draw: u128,
    /// The sum of the candidates' weights.
    pub total_weight: u128,
    /// Provers with a weight above zero.
    pub candidates: usize,
}

/// The draw for `job` under `seed`: SHA-256(`zkaudit-provers/select/1` ‖
/// seed ‖ job), its first 16 bytes big-endian.
pub fn draw_value(seed: &[u8; 32], job: &str) -> u128 {
    let mut h = Sha256::new();
    h.update(b"zkaudit-provers/select/1");
    h.update(seed);
    h.update(job.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

/// Picks the prover for `job` among `provers`, weighted by
/// [`Prover::weight`], reproducibly from `seed` (see the module docs).
/// `None` when no prover has a weight above zero.
pub fn select(provers: &[Prover], policy: &RegistryPolicy, seed: &[u8; 32], job: &str, require_tee: bool) -> Option<Selection> {
    let mut weighted: Vec<(&str, u128)> = provers.iter().map(|p| (p.key.as_str(), p.weight(policy, require_tee))).filter(|(_, w)| *w > 0).collect();
    weighted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let total = weighted.iter().fold(0u128, |t, (_, w)| t.saturating_add(*w));
    if total == 0 {
        return None;
    }
    let draw = draw_value(seed, job) % total;
    let mut cumulative = 0u128;
    for (key, w) in &weighted {
        cumulative = cumulative.saturating_add(*w);
        if draw < cumulative {
            return Some(Selection { prover: (*key).to_owned(), draw, total_weight: total, candidates: weighted.len() });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prover(key: &str, stake: u128, succeeded: u64) -> Prover {
        Prover {
            key: key.into(),
            endpoint: format!("https://{key}.example"),
            tee: None,
            registered_ns: 0,
            status: Status::Active,
            stake,
            outcomes: Outcomes { succeeded, failed: 0, timed_out: 0 },
        }
    }

    #[test]
    fn reputation_follows_the_documented_formula() {
        let r = |s, f, t| Outcomes { succeeded: s, failed: f, timed_out: t }.reputation_bps();
        assert_eq!(r(0, 0, 0), 5_000);
        assert_eq!(r(100, 0, 0), 9_901);
        assert_eq!(r(98, 1, 0), 9_705); // 99 / 102
        assert_eq!(r(98, 0, 2), 9_705); // two timeouts weigh as one invalid proof
        assert_eq!(r(0, 3, 0), 1_250);
        assert!(r(u64::MAX, 0, 0) < 10_000);
    }

    #[test]
    fn weight_needs_activity_minimum_stake_and_the_tee_asked_for() {
        let policy = RegistryPolicy::default();
        let p = prover("aa", 2_000_000, 99);
        // 100 valid proofs' worth of ramp (99 + 1), reputation 100/101.
        assert_eq!(p.ramp_bps(&policy), 10_000);
        assert_eq!(p.weight(&policy, false), 2_000_000 * 9_900 * 10_000 / 100_000_000);
        assert!(!p.verified(&policy));
        assert_eq!(p.weight(&policy, true), 0, "no TEE");
        assert_eq!(Prover { tee: Some("sgx".into()), ..p.clone() }.weight(&policy, true), p.weight(&policy, false));
        assert_eq!(Prover { stake: 999_999, ..p.clone() }.weight(&policy, false), 0);
        assert_eq!(Prover { status: Status::Unbonding { since_ns: 1 }, ..p.clone() }.weight(&policy, false), 0);
        assert_eq!(Prover { status: Status::Banned { since_ns: 1 }, ..p.clone() }.weight(&policy, false), 0);
        // A new prover has a tenth of a percent of ramp per valid proof.
        let new = prover("bb", 2_000_000, 0);
        assert_eq!(new.ramp_bps(&policy), 100);
        assert_eq!(new.weight(&policy, false), 2_000_000 * 5_000 * 100 / 100_000_000);
    }

    #[test]
    fn selection_is_reproducible_and_proportional_to_weight() {
        let policy = RegistryPolicy::default();
        let provers = vec![prover("cc", 3_000_000, 500), prover("aa", 1_000_000, 500), prover("bb", 1_000_000, 0)];
        let seed = [7u8; 32];
        let a = select(&provers, &policy, &seed, "job-1", false).unwrap();
        let mut reversed = provers.clone();
        reversed.reverse();
        assert_eq!(select(&reversed, &policy, &seed, "job-1", false).unwrap(), a, "the order given does not matter");
        assert_eq!(a.candidates, 3);

        let mut counts = std::collections::BTreeMap::new();
        for i in 0..20_000 {
            *counts.entry(select(&provers, &policy, &seed, &format!("job-{i}"), false).unwrap().prover).or_insert(0u32) += 1;
        }
        // Weights: cc 3x aa; bb is at 1% ramp and reputation 1/2.
        let (aa, bb, cc) = (counts["aa"], counts.get("bb").copied().unwrap_or(0), counts["cc"]);
        assert!((2.7..3.3).contains(&(f64::from(cc) / f64::from(aa))), "{counts:?}");
        assert!(bb < 60, "{counts:?}");
        assert!(select(&[], &policy, &seed, "job", false).is_none());
        assert!(select(&provers, &policy, &seed, "job", true).is_none(), "no prover has a TEE");
    }

    #[test]
    fn unbonding_ends_after_the_period() {
        let policy = RegistryPolicy { unbonding_s: 60, ..RegistryPolicy::default() };
        let p = Prover { status: Status::Unbonding { since_ns: 5 }, ..prover("aa", 1, 0) };
        assert_eq!(p.withdrawable_from_ns(&policy), Some(60_000_000_005));
        assert_eq!(prover("aa", 1, 0).withdrawable_from_ns(&policy), None);
    }
}
