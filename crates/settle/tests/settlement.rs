//! Settling jobs on a real SQLite ledger: paid with the split, refunded
//! and slashed (with and without a challenger), a missed deadline, a buyer
//! who cannot pay, and every step repeated without paying twice.

use std::sync::Arc;

use zkaudit_settle::settlement::{account_id, AccountKind as K, Job, Penalty, Policy, SettleError, Settlement};
use zkaudit_settle::{Ledger, ManualClock, SqlLedger};

const S: u64 = 1_000_000_000;

fn market() -> (tempfile::TempDir, Arc<ManualClock>, Settlement<SqlLedger>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(1_000 * S));
    let l = SqlLedger::open(dir.path().join("s.sqlite").to_str().unwrap(), clock.clone()).unwrap();
    let m = Settlement::new(l, Policy::default(), 1, 60).unwrap();
    m.deposit("buyer", 10_000, "ln-1").unwrap();
    m.stake("prover", 100_000, "ln-2").unwrap();
    (dir, clock, m)
}

/// `credits_posted - debits_posted` of an account.
fn held(m: &Settlement<SqlLedger>, kind: K, owner: &str) -> i128 {
    m.ledger.lookup_accounts(&[account_id(kind, owner)]).unwrap().first().map_or(0, |a| a.net_credit())
}

fn job(id: &str, price: u128, deadline_s: u32) -> Job {
    Job { id: id.into(), buyer: "buyer".into(), prover: "prover".into(), price, deadline_s }
}

fn balanced(m: &Settlement<SqlLedger>) {
    let a = m.ledger.accounts().unwrap();
    assert_eq!(a.iter().map(|a| a.debits_posted).sum::<u128>(), a.iter().map(|a| a.credits_posted).sum::<u128>());
    assert_eq!(a.iter().map(|a| a.debits_pending).sum::<u128>(), a.iter().map(|a| a.credits_pending).sum::<u128>());
}

#[test]
fn a_valid_proof_is_paid_with_the_split() {
    let (_d, _c, m) = market();
    assert!(!m.deposit("buyer", 10_000, "ln-1").unwrap(), "a repeated deposit is found, not counted twice");
    assert_eq!(held(&m, K::Buyer, "buyer"), 10_000);
    let j = job("job-1", 1_001, 600);
    let collateral = m.collateral(&j).unwrap();
    assert_eq!(collateral, 10_000, "10% of the free stake");
    m.accept(&j, collateral).unwrap();
    let buyer = m.ledger.lookup_accounts(&[account_id(K::Buyer, "buyer")]).unwrap()[0];
    assert_eq!(buyer.debits_pending, 1_001, "held in escrow");
    let s = m.pay(&j, "receipt verified").unwrap();
    // 70% of 1001 is 700.7 and 10% is 100.1: rounded down; the treasury takes the remainder.
    assert_eq!((s.split, s.now), (Some((700, 201, 100)), true));
    assert_eq!(held(&m, K::Prover, "prover"), 700);
    assert_eq!(held(&m, K::Treasury, ""), 201);
    assert_eq!(held(&m, K::Insurance, ""), 100);
    assert_eq!(held(&m, K::Buyer, "buyer"), 10_000 - 1_001);
    assert_eq!(held(&m, K::Escrow, ""), 0);
    let stake = m.ledger.lookup_accounts(&[account_id(K::Stake, "prover")]).unwrap()[0];
    assert_eq!((stake.debits_pending, stake.debits_posted), (0, 0), "the collateral is released");
    // Repeating the payment pays nothing more; refunding a paid job is refused.
    assert!(!m.pay(&j, "again").unwrap().now);
    assert_eq!(held(&m, K::Prover, "prover"), 700);
    assert!(matches!(m.refund_and_slash(&j, "too late", None), Err(SettleError::Refused { .. })));
    balanced(&m);
}

#[test]
fn an_invalid_proof_is_refunded_and_slashed_and_the_challenger_rewarded() {
    let (_d, _c, m) = market();
    let j = job("job-2", 2_000, 600);
    m.accept(&j, m.collateral(&j).unwrap()).unwrap();
    let s = m.refund_and_slash(&j, "seal does not verify", Some("challenger")).unwrap();
    assert_eq!((s.slashed, s.challenger_reward, s.now), (10_000, 5_000, true));
    assert_eq!(held(&m, K::Buyer, "buyer"), 10_000, "the buyer has it all back");
    assert_eq!(held(&m, K::Stake, "prover"), 90_000);
    assert_eq!(held(&m, K::Challenger, "challenger"), 5_000);
    assert_eq!(held(&m, K::Insurance, ""), 5_000);
    assert_eq!(held(&m, K::Slashed, ""), 0);
    assert!(!m.refund_and_slash(&j, "again", Some("challenger")).unwrap().now, "a repeated slash takes nothing more");
    assert_eq!(held(&m, K::Stake, "prover"), 90_000);
    assert!(matches!(m.pay(&j, "late proof"), Err(SettleError::Refused { .. })), "a refunded job cannot be paid");
    balanced(&m);
}

#[test]
fn a_missed_deadline_refunds_the_buyer_and_slashes_the_prover() {
    let (_d, clock, m) = market();
    let j = job("job-3", 500, 10);
    m.accept(&j, 1_234).unwrap();
    // Past the deadline and the challenge window: the escrow expires back
    // to the buyer by itself; the lock outlasts it, so the slash still happens.
    clock.advance(71 * S);
    m.ledger.expire_pending().unwrap();
    assert_eq!(m.ledger.lookup_accounts(&[account_id(K::Buyer, "buyer")]).unwrap()[0].debits_pending, 0);
    assert!(matches!(m.pay(&j, "too late"), Err(SettleError::Refused { .. })), "an expired escrow cannot be paid");
    let s = m.refund_and_slash(&j, "no valid proof by the deadline", None).unwrap();
    assert_eq!((s.slashed, s.challenger_reward), (1_234, 0));
    assert_eq!(held(&m, K::Buyer, "buyer"), 10_000);
    assert_eq!(held(&m, K::Stake, "prover"), 100_000 - 1_234);
    assert_eq!(held(&m, K::Insurance, ""), 1_234);
    balanced(&m);
}

#[test]
fn a_buyer_who_cannot_pay_holds_nothing() {
    let (_d, _c, m) = market();
    let e = m.accept(&job("job-4", 10_001, 600), 100).unwrap_err();
    assert!(e.to_string().contains("ExceedsCredits"), "{e}");
    let buyer = m.ledger.lookup_accounts(&[account_id(K::Buyer, "buyer")]).unwrap()[0];
    let stake = m.ledger.lookup_accounts(&[account_id(K::Stake, "prover")]).unwrap()[0];
    assert_eq!((buyer.debits_pending, stake.debits_pending), (0, 0), "the linked lock was not taken either");
    assert!(Settlement::new(m.ledger, Policy { prover_bps: 8_000, ..Policy::default() }, 1, 0).is_err(), "shares must add up to 100%");
}

#[test]
fn stake_slashed_outside_a_job_takes_the_rate_of_the_free_stake_once() {
    let (_d, _c, m) = market();
    // A job in progress locks 10,000 of the 100,000: the penalty leaves it alone.
    let j = job("job-p", 100, 600);
    m.accept(&j, m.collateral(&j).unwrap()).unwrap();
    assert_eq!(m.slash_stake("prover", Penalty::Downtime, "outage-1").unwrap(), (900, true), "1% of the 90,000 free");
    assert_eq!(m.slash_stake("prover", Penalty::Downtime, "outage-1").unwrap(), (900, false), "a repeat finds the first");
    assert_eq!(m.stake_balance("prover").unwrap(), (89_100, 10_000));
    assert_eq!(held(&m, K::Insurance, ""), 900);
    assert_eq!(held(&m, K::Slashed, ""), 0, "passed on to the insurance pool");
    // 100% of what is free; nothing left to take after it.
    assert_eq!(m.slash_stake("prover", Penalty::ForgedAttestation, "forged-1").unwrap(), (89_100, true));
    assert_eq!(m.slash_stake("prover", Penalty::ForgedAttestation, "forged-2").unwrap(), (0, false));
    assert_eq!(m.stake_balance("prover").unwrap(), (0, 10_000));
    balanced(&m);
}
