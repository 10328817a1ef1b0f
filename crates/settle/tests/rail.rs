//! The payment-rail interface on its custodial adapter, on a real SQLite
//! ledger: money held against a payment hash moves to the payee only with
//! the matching preimage, goes back on cancel or expiry, and every call is
//! idempotent.

use std::sync::Arc;

use zkaudit_settle::rail::{Custodial, HoldState, PaymentHash, PaymentRail, Preimage, PreimageKeeper, RailError};
use zkaudit_settle::{Ledger, ManualClock, SqlLedger, Transfer};

const S: u64 = 1_000_000_000;

fn rail() -> (tempfile::TempDir, Arc<ManualClock>, Custodial<SqlLedger>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(1_000 * S));
    let ledger = SqlLedger::open(dir.path().join("rail.sqlite").to_str().unwrap(), clock.clone()).unwrap();
    let r = Custodial { ledger, unit: 1 };
    r.open_accounts(&["buyer", "prover", "world"]).unwrap();
    // The buyer's deposit, from an account allowed to go negative.
    let world = zkaudit_settle::Account::new(7, 1, 1, 0);
    r.ledger.create_accounts(&[world]).unwrap();
    let t = Transfer::new(1, 7, Custodial::<SqlLedger>::account_id("buyer"), 5_000, 1, 1);
    assert_eq!(r.ledger.create_transfers(&[t]).unwrap(), [zkaudit_settle::CreateTransferResult::Ok]);
    (dir, clock, r)
}

fn balance(r: &Custodial<SqlLedger>, owner: &str) -> (i128, u128) {
    let a = r.ledger.lookup_accounts(&[Custodial::<SqlLedger>::account_id(owner)]).unwrap()[0];
    (a.net_credit(), a.debits_pending)
}

#[test]
fn a_hold_is_released_only_by_its_preimage() {
    let (_d, _c, r) = rail();
    let secret = Preimage::random().unwrap();
    let hash = secret.hash();
    let reference = r.hold("buyer", "prover", 1_000, &hash, 600).unwrap();
    assert_eq!(r.hold("buyer", "prover", 1_000, &hash, 600).unwrap(), reference, "a repeated hold finds the first");
    assert_eq!(r.state(&hash).unwrap(), HoldState::Held);
    assert_eq!(balance(&r, "buyer"), (5_000, 1_000), "held, not yet paid");

    // A wrong preimage moves nothing.
    let wrong = Preimage([7; 32]);
    assert!(matches!(r.settle(&hash, &wrong), Err(RailError::WrongPreimage(_))));
    assert_eq!(r.state(&hash).unwrap(), HoldState::Held);
    assert_eq!(balance(&r, "prover"), (0, 0));

    r.settle(&hash, &secret).unwrap();
    r.settle(&hash, &secret).unwrap();
    assert_eq!(r.state(&hash).unwrap(), HoldState::Settled);
    assert_eq!(balance(&r, "buyer"), (4_000, 0));
    assert_eq!(balance(&r, "prover"), (1_000, 0));
    assert!(matches!(r.cancel(&hash), Err(RailError::NotHeld { state: HoldState::Settled, .. })), "a settled payment cannot come back");
    assert!(format!("{secret:?}") == "Preimage(…)", "the secret stays out of logs");
}

#[test]
fn a_cancelled_or_expired_hold_goes_back_to_the_payer() {
    let (_d, clock, r) = rail();
    let (a, b) = (Preimage::random().unwrap(), Preimage::random().unwrap());
    r.hold("buyer", "prover", 2_000, &a.hash(), 600).unwrap();
    r.hold("buyer", "prover", 2_000, &b.hash(), 60).unwrap();
    assert!(matches!(r.hold("buyer", "prover", 2_000, &PaymentHash([9; 32]), 60), Err(RailError::Refused(_))), "over the balance");
    r.cancel(&a.hash()).unwrap();
    assert_eq!(r.state(&a.hash()).unwrap(), HoldState::Cancelled);
    assert!(matches!(r.settle(&a.hash(), &a), Err(RailError::NotHeld { state: HoldState::Cancelled, .. })));
    clock.advance(61 * S);
    r.ledger.expire_pending().unwrap();
    assert_eq!(r.state(&b.hash()).unwrap(), HoldState::Cancelled);
    assert!(matches!(r.settle(&b.hash(), &b), Err(RailError::NotHeld { .. })), "too late");
    assert_eq!(balance(&r, "buyer"), (5_000, 0), "everything back");
    assert_eq!(balance(&r, "prover"), (0, 0));
    assert!(matches!(r.state(&PaymentHash([1; 32])), Err(RailError::Unknown(_))));
}

#[test]
fn the_verifier_reveals_the_preimage_only_for_a_verified_proof() {
    let (_d, _c, r) = rail();
    let keeper = PreimageKeeper::new([9; 32]);
    // Preimages are the keeper's alone, one per job, the same after a restart.
    assert_eq!(PreimageKeeper::new([9; 32]).preimage("job-1"), keeper.preimage("job-1"));
    assert_ne!(keeper.preimage("job-1"), keeper.preimage("job-2"));
    assert_ne!(PreimageKeeper::new([8; 32]).preimage("job-1"), keeper.preimage("job-1"));
    assert_eq!(format!("{keeper:?}"), "PreimageKeeper(…)");

    let (hash, _) = keeper.hold(&r, "job-1", "buyer", "prover", 700, 600).unwrap();
    assert_eq!(hash, keeper.payment_hash("job-1"));
    // Another verifier cannot release it.
    assert!(matches!(PreimageKeeper::new([8; 32]).conclude(&r, "job-1", true), Err(RailError::Unknown(_))), "its hash names no payment");
    assert!(matches!(r.settle(&hash, &PreimageKeeper::new([8; 32]).preimage("job-1")), Err(RailError::WrongPreimage(_))));
    assert_eq!(keeper.conclude(&r, "job-1", true).unwrap(), HoldState::Settled);
    assert_eq!(keeper.conclude(&r, "job-1", true).unwrap(), HoldState::Settled, "idempotent");
    assert_eq!(balance(&r, "prover"), (700, 0));

    // A proof that failed: the payment goes back, and cannot be settled after.
    keeper.hold(&r, "job-2", "buyer", "prover", 300, 600).unwrap();
    assert_eq!(keeper.conclude(&r, "job-2", false).unwrap(), HoldState::Cancelled);
    assert!(matches!(keeper.conclude(&r, "job-2", true), Err(RailError::NotHeld { state: HoldState::Cancelled, .. })));
    assert_eq!(balance(&r, "buyer"), (5_000 - 700, 0));
    assert_eq!(balance(&r, "prover"), (700, 0));
}
