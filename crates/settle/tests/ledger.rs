//! The accounting ledger on real SQLite and a real PostgreSQL server:
//! TigerBeetle's rules case by case, then a randomized property test of
//! its invariants, cross-checked against balances recomputed from the
//! transfer log (an independent calculation, not the engine's).

#[path = "../../../tests-support/pg.rs"]
mod pg;

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zkaudit_settle::{
    Account, AccountFlags as AF, CreateAccountResult as AR, CreateTransferResult as TR, Ledger, ManualClock, PendingStatus, SqlLedger, Transfer,
    TransferFlags as TF,
};

const S: u64 = 1_000_000_000;
const LEDGER: u32 = 1;

fn sqlite() -> (tempfile::TempDir, Arc<ManualClock>, SqlLedger) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(1_000 * S));
    let l = SqlLedger::open(dir.path().join("settle.sqlite").to_str().unwrap(), clock.clone()).unwrap();
    (dir, clock, l)
}

fn balances(l: &dyn Ledger, id: u128) -> [u128; 4] {
    let a = l.lookup_accounts(&[id]).unwrap()[0];
    [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted]
}

/// Accounts 1 (a buyer holding 1000: its debits must not exceed its
/// credits), 2 (escrow), 3 (a prover), 9 (the funding source).
fn setup(l: &dyn Ledger) {
    let accounts = [
        Account::new(1, LEDGER, 10, AF::DEBITS_MUST_NOT_EXCEED_CREDITS),
        Account::new(2, LEDGER, 20, 0),
        Account::new(3, LEDGER, 30, 0),
        Account::new(9, LEDGER, 90, 0),
    ];
    assert_eq!(l.create_accounts(&accounts).unwrap(), [AR::Ok; 4]);
    assert_eq!(l.create_transfers(&[Transfer::new(100, 9, 1, 1000, LEDGER, 1)]).unwrap(), [TR::Ok]);
}

fn rules(l: &dyn Ledger, clock: &ManualClock) {
    setup(l);
    // Accounts: idempotent by ID; a different field is named.
    assert_eq!(l.create_accounts(&[Account::new(2, LEDGER, 20, 0)]).unwrap(), [AR::Exists]);
    assert_eq!(l.create_accounts(&[Account::new(2, LEDGER, 21, 0)]).unwrap(), [AR::ExistsWithDifferentCode]);
    assert_eq!(l.create_accounts(&[Account::new(0, LEDGER, 1, 0)]).unwrap(), [AR::IdMustNotBeZero]);
    assert_eq!(
        l.create_accounts(&[Account::new(5, LEDGER, 1, AF::DEBITS_MUST_NOT_EXCEED_CREDITS | AF::CREDITS_MUST_NOT_EXCEED_DEBITS)]).unwrap(),
        [AR::FlagsAreMutuallyExclusive]
    );

    // A single-phase transfer, and its replay (nothing changes).
    assert_eq!(l.create_transfers(&[Transfer::new(101, 1, 3, 100, LEDGER, 2)]).unwrap(), [TR::Ok]);
    assert_eq!(l.create_transfers(&[Transfer::new(101, 1, 3, 100, LEDGER, 2)]).unwrap(), [TR::Exists]);
    assert_eq!(l.create_transfers(&[Transfer::new(101, 1, 3, 101, LEDGER, 2)]).unwrap(), [TR::ExistsWithDifferentAmount]);
    assert_eq!(balances(l, 1), [0, 100, 0, 1000]);
    // The buyer cannot pay out more than it holds, pending included.
    assert_eq!(l.create_transfers(&[Transfer::new(102, 1, 3, 901, LEDGER, 2)]).unwrap(), [TR::ExceedsCredits]);
    assert_eq!(l.create_transfers(&[Transfer::new(103, 1, 2, 0, LEDGER, 2)]).unwrap(), [TR::AmountMustNotBeZero]);
    assert_eq!(l.create_transfers(&[Transfer::new(104, 1, 77, 5, LEDGER, 2)]).unwrap(), [TR::CreditAccountNotFound]);
    assert_eq!(l.create_transfers(&[Transfer::new(105, 1, 1, 5, LEDGER, 2)]).unwrap(), [TR::AccountsMustBeDifferent]);

    // Two-phase: reserve 500 for 60 s, post 300 of it (the rest returns).
    let mut hold = Transfer::new(200, 1, 2, 500, LEDGER, 3).with_flags(TF::PENDING);
    hold.timeout = 60;
    assert_eq!(l.create_transfers(&[hold]).unwrap(), [TR::Ok]);
    assert_eq!(balances(l, 1), [500, 100, 0, 1000]);
    assert_eq!(l.create_transfers(&[Transfer::new(106, 1, 3, 401, LEDGER, 2)]).unwrap(), [TR::ExceedsCredits], "the reservation counts");
    let post =
        |id: u128, pending: u128, amount: u128| Transfer { pending_id: pending, ..Transfer::new(id, 0, 0, amount, 0, 0).with_flags(TF::POST_PENDING_TRANSFER) };
    let void = |id: u128, pending: u128| Transfer { pending_id: pending, ..Transfer::new(id, 0, 0, 0, 0, 0).with_flags(TF::VOID_PENDING_TRANSFER) };
    assert_eq!(l.create_transfers(&[post(201, 200, 501)]).unwrap(), [TR::ExceedsPendingTransferAmount]);
    assert_eq!(l.create_transfers(&[post(201, 200, 300)]).unwrap(), [TR::Ok]);
    assert_eq!(balances(l, 1), [0, 400, 0, 1000]);
    assert_eq!(balances(l, 2), [0, 0, 0, 300]);
    assert_eq!(l.create_transfers(&[void(202, 200)]).unwrap(), [TR::PendingTransferAlreadyPosted]);
    assert_eq!(l.create_transfers(&[post(201, 200, 300)]).unwrap(), [TR::Exists], "a post is idempotent too");
    let (t, _) = l.lookup_transfers(&[201]).unwrap()[0];
    assert_eq!((t.debit_account_id, t.credit_account_id, t.amount), (1, 2, 300), "a post is stored with its pending transfer's accounts");

    // Void, and expiry at the timeout, decided by the ledger's clock.
    let mut hold2 = Transfer::new(300, 1, 2, 200, LEDGER, 3).with_flags(TF::PENDING);
    hold2.timeout = 10;
    let mut hold3 = Transfer { id: 301, ..hold2 };
    hold3.timeout = 10;
    assert_eq!(l.create_transfers(&[hold2, hold3]).unwrap(), [TR::Ok, TR::Ok]);
    assert_eq!(l.create_transfers(&[void(302, 300)]).unwrap(), [TR::Ok]);
    assert_eq!(balances(l, 1), [200, 400, 0, 1000]);
    clock.advance(11 * S);
    assert_eq!(l.expire_pending().unwrap(), [301]);
    assert_eq!(balances(l, 1), [0, 400, 0, 1000]);
    assert_eq!(l.create_transfers(&[post(303, 301, u128::MAX)]).unwrap(), [TR::PendingTransferExpired]);
    assert_eq!(
        l.lookup_transfers(&[300, 301]).unwrap().iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Some(PendingStatus::Voided), Some(PendingStatus::Expired)]
    );
    // A pending transfer due but not swept expires before the next batch.
    let mut hold4 = Transfer::new(400, 1, 2, 50, LEDGER, 3).with_flags(TF::PENDING);
    hold4.timeout = 1;
    assert_eq!(l.create_transfers(&[hold4]).unwrap(), [TR::Ok]);
    clock.advance(2 * S);
    assert_eq!(l.create_transfers(&[post(401, 400, 50)]).unwrap(), [TR::PendingTransferExpired]);
    assert_eq!(balances(l, 1), [0, 400, 0, 1000]);

    // Linked: all or nothing. The second fails, so the first is undone.
    let a = Transfer::new(500, 1, 2, 10, LEDGER, 4).with_flags(TF::LINKED);
    let b = Transfer::new(501, 1, 3, 10_000, LEDGER, 4);
    let c = Transfer::new(502, 1, 3, 1, LEDGER, 4);
    assert_eq!(l.create_transfers(&[a, b, c]).unwrap(), [TR::LinkedEventFailed, TR::ExceedsCredits, TR::Ok]);
    assert!(l.lookup_transfers(&[500, 501]).unwrap().is_empty());
    assert_eq!(balances(l, 1), [0, 401, 0, 1000]);
    // An open chain fails whole.
    assert_eq!(l.create_transfers(&[Transfer { id: 503, ..a }]).unwrap(), [TR::LinkedEventChainOpen]);
    // A chain that holds: both happen.
    let split = [Transfer::new(504, 2, 3, 210, LEDGER, 5).with_flags(TF::LINKED), Transfer::new(505, 2, 9, 90, LEDGER, 5)];
    assert_eq!(l.create_transfers(&split).unwrap(), [TR::Ok, TR::Ok]);
    assert_eq!(balances(l, 2), [0, 300, 0, 300]);
    // Replaying the chain changes nothing.
    assert_eq!(l.create_transfers(&split).unwrap(), [TR::Exists, TR::LinkedEventFailed]);
    assert_eq!(balances(l, 2), [0, 300, 0, 300]);
    check_invariants(l);
}

#[test]
fn tigerbeetle_rules_on_sqlite() {
    let (_d, clock, l) = sqlite();
    rules(&l, &clock);
}

#[test]
fn tigerbeetle_rules_on_postgresql() {
    let server = pg::PgServer::start();
    let clock = Arc::new(ManualClock::at(1_000 * S));
    let l = SqlLedger::open(&server.url, clock.clone()).unwrap();
    rules(&l, &clock);
}

/// Money is neither created nor destroyed, no flagged account breaks its
/// limit, and every account's balances equal those recomputed from the
/// transfer log.
fn check_invariants(l: &dyn Ledger) {
    let accounts = l.accounts().unwrap();
    let sum = |f: fn(&Account) -> u128| accounts.iter().map(f).sum::<u128>();
    assert_eq!(sum(|a| a.debits_posted), sum(|a| a.credits_posted), "posted debits and credits balance");
    assert_eq!(sum(|a| a.debits_pending), sum(|a| a.credits_pending), "pending debits and credits balance");
    for a in &accounts {
        if a.flags.has(AF::DEBITS_MUST_NOT_EXCEED_CREDITS) {
            assert!(a.debits_pending + a.debits_posted <= a.credits_posted, "account {} overdrawn: {a:?}", a.id);
        }
    }
    // Recompute from the log: posted single-phase transfers and posts move
    // posted balances; pending transfers still pending reserve.
    let mut want: HashMap<u128, [u128; 4]> = accounts.iter().map(|a| (a.id, [0; 4])).collect();
    for (t, status) in l.transfers().unwrap() {
        let (posted, pending) = if t.flags.has(TF::PENDING) {
            (false, status == Some(PendingStatus::Pending))
        } else if t.flags.has(TF::VOID_PENDING_TRANSFER) {
            (false, false)
        } else {
            (true, false)
        };
        if posted || pending {
            let i = usize::from(posted);
            want.get_mut(&t.debit_account_id).unwrap()[i] += t.amount;
            want.get_mut(&t.credit_account_id).unwrap()[2 + i] += t.amount;
        }
    }
    for a in &accounts {
        assert_eq!([a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted], want[&a.id], "account {} against its transfers", a.id);
    }
}

/// Random batches of every kind of event, some linked, some invalid, some
/// replays, with the clock moving; the invariants hold after each, and at
/// the end every reservation resolves.
fn random_ops(l: &dyn Ledger, clock: &ManualClock, seed: u64, rounds: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_accounts = 6u128;
    let accounts: Vec<Account> = (1..=n_accounts)
        .map(|id| Account::new(id, LEDGER, 1, if id <= 3 { AF::DEBITS_MUST_NOT_EXCEED_CREDITS } else { 0 }))
        .chain([Account::new(99, LEDGER, 9, 0)])
        .collect();
    assert!(l.create_accounts(&accounts).unwrap().iter().all(|r| r.is_done()));
    let fund: Vec<Transfer> = (1..=3).map(|id| Transfer::new(1000 + id, 99, id, 10_000, LEDGER, 1)).collect();
    assert!(l.create_transfers(&fund).unwrap().iter().all(|r| r.is_done()));
    let mut next_id = 10_000u128;
    let mut pendings: Vec<u128> = Vec::new();
    let mut sent: Vec<Vec<Transfer>> = Vec::new();
    for _ in 0..rounds {
        let mut batch = Vec::new();
        for _ in 0..rng.random_range(1..6) {
            next_id += 1;
            let (dr, cr) = (rng.random_range(1..=n_accounts), rng.random_range(1..=n_accounts));
            let amount = rng.random_range(0..3_000u128);
            let mut t = match rng.random_range(0..10) {
                0..=3 => Transfer::new(next_id, dr, cr, amount, LEDGER, 2),
                4..=6 => {
                    let mut t = Transfer::new(next_id, dr, cr, amount, LEDGER, 3).with_flags(TF::PENDING);
                    t.timeout = rng.random_range(1..30);
                    pendings.push(next_id);
                    t
                }
                7 | 8 if !pendings.is_empty() => {
                    let p = pendings[rng.random_range(0..pendings.len())];
                    let flag = if rng.random_bool(0.6) { TF::POST_PENDING_TRANSFER } else { TF::VOID_PENDING_TRANSFER };
                    let amount = if flag == TF::POST_PENDING_TRANSFER { [u128::MAX, amount][rng.random_range(0..2)] } else { 0 };
                    Transfer { pending_id: p, ..Transfer::new(next_id, 0, 0, amount, 0, 0).with_flags(flag) }
                }
                _ => Transfer::new(next_id, dr, cr, amount, LEDGER + rng.random_range(0..2), 2),
            };
            if rng.random_bool(0.3) {
                t.flags.0 |= TF::LINKED;
            }
            batch.push(t);
        }
        let results = l.create_transfers(&batch).unwrap();
        assert_eq!(results.len(), batch.len());
        // A linked chain takes effect whole or not at all.
        let mut start = 0;
        for (i, t) in batch.iter().enumerate() {
            if !t.flags.has(TF::LINKED) || i + 1 == batch.len() {
                let chain = &results[start..=i];
                assert!(chain.iter().all(|r| *r == TR::Ok) || chain.iter().all(|r| *r != TR::Ok), "chain {chain:?}");
                start = i + 1;
            }
        }
        // What was created, each on its own: replaying it must find it.
        sent.push(batch.iter().zip(&results).filter(|(_, r)| **r == TR::Ok).map(|(t, _)| Transfer { flags: TF(t.flags.0 & !TF::LINKED), ..*t }).collect());
        if rng.random_bool(0.2) {
            let old = &sent[rng.random_range(0..sent.len())];
            let (before, log) = (l.accounts().unwrap(), l.transfers().unwrap());
            assert_eq!(l.create_transfers(old).unwrap(), vec![TR::Exists; old.len()], "a replay finds every transfer it made");
            let after = l.transfers().unwrap();
            assert_eq!(after.len(), log.len(), "a replay creates nothing");
            // A batch first expires what is due, so the replay may release
            // reservations, and do nothing else.
            let mut want: HashMap<u128, Account> = before.into_iter().map(|a| (a.id, a)).collect();
            for ((t, was), (t2, now)) in log.iter().zip(&after) {
                assert_eq!(t, t2, "a replay changes no transfer");
                if was != now {
                    assert_eq!((*was, *now), (Some(PendingStatus::Pending), Some(PendingStatus::Expired)));
                    want.get_mut(&t.debit_account_id).unwrap().debits_pending -= t.amount;
                    want.get_mut(&t.credit_account_id).unwrap().credits_pending -= t.amount;
                }
            }
            for a in l.accounts().unwrap() {
                assert_eq!(a, want[&a.id], "a replay changes no balance but by expiry");
            }
        }
        clock.advance(rng.random_range(0..5) * S);
        check_invariants(l);
    }
    // Every reservation resolves: after the longest timeout, nothing is pending.
    clock.advance(60 * S);
    l.expire_pending().unwrap();
    check_invariants(l);
    assert!(l.accounts().unwrap().iter().all(|a| a.debits_pending == 0 && a.credits_pending == 0), "reservations left after every timeout");
    assert!(l.transfers().unwrap().iter().all(|(_, s)| *s != Some(PendingStatus::Pending)));
}

#[test]
fn invariants_hold_under_random_batches_on_sqlite() {
    for seed in 0..4 {
        let (_d, clock, l) = sqlite();
        random_ops(&l, &clock, seed, 150);
    }
}

#[test]
fn invariants_hold_under_random_batches_on_postgresql() {
    let server = pg::PgServer::start();
    for seed in 0..2 {
        let clock = Arc::new(ManualClock::at(1_000 * S));
        // A database per seed, so each run starts empty.
        let db = format!("settle{seed}");
        let mut c = postgres::Client::connect(&server.url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
        let url = server.url.replace("/postgres", &format!("/{db}"));
        let l = SqlLedger::open(&url, clock.clone()).unwrap();
        random_ops(&l, &clock, seed, 100);
    }
}

/// 32 threads move money between the same accounts at once on PostgreSQL;
/// every transfer that succeeded is in the balances, exactly.
#[test]
fn concurrent_batches_reconcile_on_postgresql() {
    let server = pg::PgServer::start();
    let clock = Arc::new(ManualClock::at(1_000 * S));
    let l = Arc::new(SqlLedger::open(&server.url, clock).unwrap());
    let accounts: Vec<Account> =
        (1..=4).map(|id| Account::new(id, LEDGER, 1, AF::DEBITS_MUST_NOT_EXCEED_CREDITS)).chain([Account::new(99, LEDGER, 9, 0)]).collect();
    l.create_accounts(&accounts).unwrap();
    l.create_transfers(&(1..=4).map(|id| Transfer::new(1000 + id, 99, id, 1_000, LEDGER, 1)).collect::<Vec<_>>()).unwrap();
    let threads: Vec<_> = (0..32u128)
        .map(|n| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                let mut ok = 0u128;
                for k in 0..20u128 {
                    let id = 100_000 + n * 100 + k;
                    let t = Transfer::new(id, 1 + (n + k) % 4, 1 + (n + k + 1) % 4, 7, LEDGER, 2);
                    if l.create_transfers(&[t]).unwrap() == [TR::Ok] {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let ok: u128 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(ok > 0);
    check_invariants(l.as_ref());
    let moved: u128 = l.transfers().unwrap().iter().filter(|(t, _)| t.code == 2).map(|(t, _)| t.amount).sum();
    assert_eq!(moved, ok * 7, "every acknowledged transfer, and nothing else, is in the log");
    let total: u128 = l.accounts().unwrap().iter().filter(|a| a.id != 99).map(|a| a.credits_posted - a.debits_posted).sum();
    assert_eq!(total, 4_000, "money only moved between the four accounts");
}
