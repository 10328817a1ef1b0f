//! The accounting state machine, over the rows one batch touches: every
//! rule of creating accounts and transfers, two-phase transfers and their
//! expiry, and linked chains, in one place, whatever database keeps the
//! rows. The storage backends load what a batch names into a [`Book`],
//! run it here, and write back the [`Book::changes`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{Account, AccountFlags, CreateAccountResult as AR, CreateTransferResult as TR, PendingStatus, Transfer, TransferFlags};

/// The rows a batch reads and writes, and what it changed.
#[derive(Clone, Debug, Default)]
pub struct Book {
    /// Accounts by ID (those the batch names, and those of the pending
    /// transfers it resolves).
    pub accounts: HashMap<u128, Account>,
    /// Transfers by ID (those whose IDs the batch uses, and the pending
    /// transfers it resolves).
    pub transfers: HashMap<u128, Transfer>,
    /// Status of the pending transfers in `transfers`.
    pub pending: HashMap<u128, PendingStatus>,
    changes: Changes,
}

/// What a batch changed, for the backend to write.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Accounts whose balances changed (write them back).
    pub accounts: BTreeSet<u128>,
    /// Accounts created, in order.
    pub new_accounts: Vec<u128>,
    /// Transfers created, in order.
    pub new_transfers: Vec<u128>,
    /// Pending transfers whose status changed (new pending ones included).
    pub pending: BTreeMap<u128, PendingStatus>,
}

impl Book {
    /// What has changed since the book was loaded.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Releases every pending transfer whose timeout has passed at `now`
    /// (ns): its reserved amounts leave the accounts' pending balances and
    /// its status becomes expired. Deterministic: the same rows and `now`
    /// give the same result. Returns the IDs expired.
    pub fn expire(&mut self, now: u64) -> Vec<u128> {
        let mut due: Vec<u128> = self
            .pending
            .iter()
            .filter(|&(id, s)| *s == PendingStatus::Pending && self.transfers.get(id).and_then(Transfer::expires_at).is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable();
        for id in &due {
            if let Some(t) = self.transfers.get(id).copied() {
                self.release(&t);
                self.set_status(*id, PendingStatus::Expired);
            }
        }
        due
    }

    /// Creates `batch` (TigerBeetle's `create_accounts`): one result per
    /// account, in order; account `i` gets timestamp `timestamp + i`.
    pub fn create_accounts(&mut self, batch: &[Account], timestamp: u64) -> Vec<AR> {
        chains(
            batch.len(),
            |i| batch[i].flags.has(AccountFlags::LINKED),
            self,
            AR::LinkedEventFailed,
            AR::LinkedEventChainOpen,
            |book, i| book.create_account(&batch[i], timestamp + i as u64),
        )
    }

    /// Creates `batch` (TigerBeetle's `create_transfers`): one result per
    /// transfer, in order; transfer `i` gets timestamp `timestamp + i`.
    pub fn create_transfers(&mut self, batch: &[Transfer], timestamp: u64) -> Vec<TR> {
        chains(
            batch.len(),
            |i| batch[i].flags.has(TransferFlags::LINKED),
            self,
            TR::LinkedEventFailed,
            TR::LinkedEventChainOpen,
            |book, i| book.create_transfer(&batch[i], timestamp + i as u64),
        )
    }

    fn create_account(&mut self, a: &Account, timestamp: u64) -> AR {
        if a.timestamp != 0 {
            return AR::TimestampMustBeZero;
        }
        if a.flags.0 & !AccountFlags::KNOWN != 0 {
            return AR::ReservedFlag;
        }
        if a.id == 0 {
            return AR::IdMustNotBeZero;
        }
        if a.id == u128::MAX {
            return AR::IdMustNotBeIntMax;
        }
        if a.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) && a.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) {
            return AR::FlagsAreMutuallyExclusive;
        }
        if a.debits_pending != 0 || a.debits_posted != 0 || a.credits_pending != 0 || a.credits_posted != 0 {
            return AR::BalancesMustBeZero;
        }
        if a.ledger == 0 {
            return AR::LedgerMustNotBeZero;
        }
        if a.code == 0 {
            return AR::CodeMustNotBeZero;
        }
        if let Some(e) = self.accounts.get(&a.id) {
            // The linked flag only shapes a batch; it is not compared.
            let flags = |f: AccountFlags| f.0 & !AccountFlags::LINKED;
            return if flags(e.flags) != flags(a.flags) {
                AR::ExistsWithDifferentFlags
            } else if e.user_data_128 != a.user_data_128 {
                AR::ExistsWithDifferentUserData128
            } else if e.ledger != a.ledger {
                AR::ExistsWithDifferentLedger
            } else if e.code != a.code {
                AR::ExistsWithDifferentCode
            } else {
                AR::Exists
            };
        }
        self.accounts.insert(a.id, Account { timestamp, ..*a });
        self.changes.new_accounts.push(a.id);
        AR::Ok
    }

    fn create_transfer(&mut self, t: &Transfer, timestamp: u64) -> TR {
        let f = t.flags;
        if t.timestamp != 0 {
            return TR::TimestampMustBeZero;
        }
        if f.0 & !TransferFlags::KNOWN != 0 {
            return TR::ReservedFlag;
        }
        if t.id == 0 {
            return TR::IdMustNotBeZero;
        }
        if t.id == u128::MAX {
            return TR::IdMustNotBeIntMax;
        }
        let phases = [TransferFlags::PENDING, TransferFlags::POST_PENDING_TRANSFER, TransferFlags::VOID_PENDING_TRANSFER];
        if phases.iter().filter(|&&b| f.has(b)).count() > 1 {
            return TR::FlagsAreMutuallyExclusive;
        }
        let resolves = f.has(TransferFlags::POST_PENDING_TRANSFER) || f.has(TransferFlags::VOID_PENDING_TRANSFER);
        if resolves {
            if t.pending_id == 0 {
                return TR::PendingIdMustNotBeZero;
            }
            if t.pending_id == t.id {
                return TR::PendingIdMustBeDifferent;
            }
            if t.timeout != 0 {
                return TR::TimeoutReservedForPendingTransfer;
            }
            if let Some(r) = self.exists(t) {
                return r;
            }
            return self.resolve(t, timestamp);
        }
        if t.pending_id != 0 {
            return TR::PendingIdMustBeZero;
        }
        if t.debit_account_id == 0 {
            return TR::DebitAccountIdMustNotBeZero;
        }
        if t.credit_account_id == 0 {
            return TR::CreditAccountIdMustNotBeZero;
        }
        if t.debit_account_id == t.credit_account_id {
            return TR::AccountsMustBeDifferent;
        }
        if !f.has(TransferFlags::PENDING) && t.timeout != 0 {
            return TR::TimeoutReservedForPendingTransfer;
        }
        if t.ledger == 0 {
            return TR::LedgerMustNotBeZero;
        }
        if t.code == 0 {
            return TR::CodeMustNotBeZero;
        }
        if let Some(r) = self.exists(t) {
            return r;
        }
        let (Some(dr), Some(cr)) = (self.accounts.get(&t.debit_account_id).copied(), self.accounts.get(&t.credit_account_id).copied()) else {
            return if self.accounts.contains_key(&t.debit_account_id) { TR::CreditAccountNotFound } else { TR::DebitAccountNotFound };
        };
        if dr.ledger != cr.ledger {
            return TR::AccountsMustHaveTheSameLedger;
        }
        if t.ledger != dr.ledger {
            return TR::TransferMustHaveTheSameLedgerAsAccounts;
        }
        if t.amount == 0 {
            return TR::AmountMustNotBeZero;
        }
        let pending = f.has(TransferFlags::PENDING);
        if let Some(r) = check_limits(&dr, &cr, t.amount) {
            return r;
        }
        let stored = Transfer { timestamp, ..*t };
        self.apply(&stored, pending);
        self.transfers.insert(t.id, stored);
        self.changes.new_transfers.push(t.id);
        if pending {
            self.set_status(t.id, PendingStatus::Pending);
        }
        TR::Ok
    }

    /// The result for a transfer whose ID is taken: `Exists` when it is the
    /// same transfer (an idempotent retry), else the first field that differs.
    fn exists(&self, t: &Transfer) -> Option<TR> {
        let e = self.transfers.get(&t.id)?;
        let linked = |f: TransferFlags| f.0 & !TransferFlags::LINKED;
        // A post or void may leave accounts, ledger and code to its pending
        // transfer (0), post "all of it" (u128::MAX) and void without an
        // amount (0): compare what was given.
        let given = |v: u128, stored: u128| v == 0 || v == stored;
        let resolves = t.flags.has(TransferFlags::POST_PENDING_TRANSFER) || t.flags.has(TransferFlags::VOID_PENDING_TRANSFER);
        Some(if linked(e.flags) != linked(t.flags) {
            TR::ExistsWithDifferentFlags
        } else if !(if resolves { given(t.debit_account_id, e.debit_account_id) } else { t.debit_account_id == e.debit_account_id }) {
            TR::ExistsWithDifferentDebitAccountId
        } else if !(if resolves { given(t.credit_account_id, e.credit_account_id) } else { t.credit_account_id == e.credit_account_id }) {
            TR::ExistsWithDifferentCreditAccountId
        } else if !(t.amount == e.amount || (resolves && t.amount == u128::MAX) || (t.flags.has(TransferFlags::VOID_PENDING_TRANSFER) && t.amount == 0)) {
            TR::ExistsWithDifferentAmount
        } else if t.pending_id != e.pending_id {
            TR::ExistsWithDifferentPendingId
        } else if t.user_data_128 != e.user_data_128 {
            TR::ExistsWithDifferentUserData128
        } else if t.timeout != e.timeout {
            TR::ExistsWithDifferentTimeout
        } else if !(if resolves { t.code == 0 || t.code == e.code } else { t.code == e.code }) {
            TR::ExistsWithDifferentCode
        } else if !(if resolves { t.ledger == 0 || t.ledger == e.ledger } else { t.ledger == e.ledger }) {
            TR::ExistsWithDifferentLedger
        } else {
            TR::Exists
        })
    }

    /// Posts or voids the pending transfer `t.pending_id`.
    fn resolve(&mut self, t: &Transfer, timestamp: u64) -> TR {
        let Some(p) = self.transfers.get(&t.pending_id).copied() else {
            return TR::PendingTransferNotFound;
        };
        if !p.flags.has(TransferFlags::PENDING) {
            return TR::PendingTransferNotPending;
        }
        if t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id {
            return TR::PendingTransferHasDifferentDebitAccountId;
        }
        if t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id {
            return TR::PendingTransferHasDifferentCreditAccountId;
        }
        if t.ledger != 0 && t.ledger != p.ledger {
            return TR::PendingTransferHasDifferentLedger;
        }
        if t.code != 0 && t.code != p.code {
            return TR::PendingTransferHasDifferentCode;
        }
        let post = t.flags.has(TransferFlags::POST_PENDING_TRANSFER);
        let amount = if t.amount == u128::MAX { p.amount } else { t.amount };
        if post && amount > p.amount {
            return TR::ExceedsPendingTransferAmount;
        }
        if !post && t.amount != 0 && amount != p.amount {
            return TR::PendingTransferHasDifferentAmount;
        }
        match self.pending.get(&p.id).copied().unwrap_or(PendingStatus::Pending) {
            PendingStatus::Pending => {}
            PendingStatus::Posted => return TR::PendingTransferAlreadyPosted,
            PendingStatus::Voided => return TR::PendingTransferAlreadyVoided,
            PendingStatus::Expired => return TR::PendingTransferExpired,
        }
        if p.expires_at().is_some_and(|at| at <= timestamp) {
            // Due but not yet swept: expire it now, and refuse.
            self.release(&p);
            self.set_status(p.id, PendingStatus::Expired);
            return TR::PendingTransferExpired;
        }
        let (Some(_), Some(_)) = (self.accounts.get(&p.debit_account_id), self.accounts.get(&p.credit_account_id)) else {
            return TR::PendingTransferNotFound;
        };
        self.release(&p);
        if post && amount > 0 {
            let posted = Transfer { amount, ..p };
            self.apply(&posted, false);
        }
        let stored = Transfer {
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            ledger: p.ledger,
            code: p.code,
            amount: if post { amount } else { p.amount },
            timestamp,
            ..*t
        };
        self.transfers.insert(t.id, stored);
        self.changes.new_transfers.push(t.id);
        self.set_status(p.id, if post { PendingStatus::Posted } else { PendingStatus::Voided });
        TR::Ok
    }

    /// Adds `t`'s amount to its accounts: to the pending balances for a
    /// pending transfer, else to the posted ones. The caller has checked
    /// the limits and overflow.
    fn apply(&mut self, t: &Transfer, pending: bool) {
        for (id, debit) in [(t.debit_account_id, true), (t.credit_account_id, false)] {
            if let Some(a) = self.accounts.get_mut(&id) {
                let field = match (debit, pending) {
                    (true, true) => &mut a.debits_pending,
                    (true, false) => &mut a.debits_posted,
                    (false, true) => &mut a.credits_pending,
                    (false, false) => &mut a.credits_posted,
                };
                *field = field.saturating_add(t.amount);
                self.changes.accounts.insert(id);
            }
        }
    }

    /// Takes pending transfer `p`'s reservation off its accounts.
    fn release(&mut self, p: &Transfer) {
        for (id, debit) in [(p.debit_account_id, true), (p.credit_account_id, false)] {
            if let Some(a) = self.accounts.get_mut(&id) {
                let field = if debit { &mut a.debits_pending } else { &mut a.credits_pending };
                *field = field.saturating_sub(p.amount);
                self.changes.accounts.insert(id);
            }
        }
    }

    fn set_status(&mut self, id: u128, s: PendingStatus) {
        self.pending.insert(id, s);
        self.changes.pending.insert(id, s);
    }
}

/// The result, if any, of a transfer of `amount` from `dr` to `cr`
/// (pending or posted: a reservation counts against the limit too)
/// breaking a balance limit or overflowing a balance.
fn check_limits(dr: &Account, cr: &Account, amount: u128) -> Option<TR> {
    let debits = dr.debits_pending.checked_add(dr.debits_posted).and_then(|d| d.checked_add(amount));
    let credits = cr.credits_pending.checked_add(cr.credits_posted).and_then(|c| c.checked_add(amount));
    let (Some(debits), Some(credits)) = (debits, credits) else {
        return Some(if debits.is_none() { TR::OverflowsDebits } else { TR::OverflowsCredits });
    };
    if dr.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits > dr.credits_posted {
        return Some(TR::ExceedsCredits);
    }
    if cr.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits > cr.debits_posted {
        return Some(TR::ExceedsDebits);
    }
    None
}

/// Runs `n` events through `one`, honouring linked chains: the events of a
/// chain (each `linked` but the last) take effect together or not at all;
/// when one fails, the book returns to where the chain began and every
/// other event of the chain gets `failed`. A chain still open at the end of
/// the batch fails whole, its last event with `open`.
fn chains<R: Copy + OkValue>(
    n: usize,
    linked: impl Fn(usize) -> bool,
    book: &mut Book,
    failed: R,
    open: R,
    mut one: impl FnMut(&mut Book, usize) -> R,
) -> Vec<R> {
    let mut results = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let mut end = i;
        while end < n && linked(end) {
            end += 1;
        }
        if end == i {
            results.push(one(book, i));
            i += 1;
            continue;
        }
        // Events i..=end form a chain (end == n: open at the end of the batch).
        let last = end.min(n - 1);
        let saved = book.clone();
        let mut chain = Vec::with_capacity(last - i + 1);
        let mut broke = end == n;
        for j in i..=last {
            if broke {
                break;
            }
            let r = one(book, j);
            chain.push(r);
            broke = !r.is_ok_value();
        }
        if broke {
            *book = saved;
            let bad = chain.iter().position(|r| !r.is_ok_value());
            for (k, j) in (i..=last).enumerate() {
                results.push(match bad {
                    Some(b) if b == k => chain[b],
                    _ if end == n && j == last => open,
                    _ => failed,
                });
            }
        } else {
            results.extend(chain);
        }
        i = last + 1;
    }
    results
}

/// The `Ok` of a result type, for [`chains`].
trait OkValue {
    fn is_ok_value(&self) -> bool;
}

impl OkValue for AR {
    fn is_ok_value(&self) -> bool {
        *self == AR::Ok
    }
}

impl OkValue for TR {
    fn is_ok_value(&self) -> bool {
        *self == TR::Ok
    }
}
