//! Accounts, transfers and the results of creating them, with TigerBeetle's
//! field names and meanings (docs.tigerbeetle.com, "Reference": Account,
//! Transfer, `create_accounts`, `create_transfers`).

use serde::{Deserialize, Serialize};

/// Account flags (a bit set, as TigerBeetle's `AccountFlags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountFlags(pub u16);

impl AccountFlags {
    /// The account is created only with the next one in the batch (all or nothing).
    pub const LINKED: u16 = 1 << 0;
    /// `debits_pending + debits_posted` may never exceed `credits_posted`
    /// (an asset the account holds: it cannot pay out more than it has).
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: u16 = 1 << 1;
    /// `credits_pending + credits_posted` may never exceed `debits_posted`.
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: u16 = 1 << 2;
    /// Every bit TigerBeetle defines that this ledger implements.
    pub const KNOWN: u16 = Self::LINKED | Self::DEBITS_MUST_NOT_EXCEED_CREDITS | Self::CREDITS_MUST_NOT_EXCEED_DEBITS;

    /// Whether `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// Transfer flags (a bit set, as TigerBeetle's `TransferFlags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransferFlags(pub u16);

impl TransferFlags {
    /// The transfer succeeds only with the next one in the batch (all or nothing).
    pub const LINKED: u16 = 1 << 0;
    /// Phase one of a two-phase transfer: the amount is reserved
    /// (`debits_pending`/`credits_pending`) until posted, voided or expired.
    pub const PENDING: u16 = 1 << 1;
    /// Phase two: post the pending transfer `pending_id` (its amount, or less).
    pub const POST_PENDING_TRANSFER: u16 = 1 << 2;
    /// Phase two: void the pending transfer `pending_id`, releasing its amount.
    pub const VOID_PENDING_TRANSFER: u16 = 1 << 3;
    /// Every bit TigerBeetle defines that this ledger implements (balancing
    /// transfers and closing accounts are not).
    pub const KNOWN: u16 = Self::LINKED | Self::PENDING | Self::POST_PENDING_TRANSFER | Self::VOID_PENDING_TRANSFER;

    /// Whether `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// An account: four balances, never a single "balance" (TigerBeetle's
/// double-entry model). Amounts are integers in the ledger's unit (msat,
/// or a currency's minor unit), never floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Unique, neither 0 nor `u128::MAX`.
    pub id: u128,
    /// Amounts reserved by pending transfers debiting the account.
    pub debits_pending: u128,
    /// Amounts of posted transfers debiting the account.
    pub debits_posted: u128,
    /// Amounts reserved by pending transfers crediting the account.
    pub credits_pending: u128,
    /// Amounts of posted transfers crediting the account.
    pub credits_posted: u128,
    /// Free for the application (e.g. the job or prover it belongs to).
    pub user_data_128: u128,
    /// Partitions accounts by unit: transfers only move amounts within one ledger.
    pub ledger: u32,
    /// What kind of account (the application's chart of accounts; not 0).
    pub code: u16,
    /// [`AccountFlags`].
    pub flags: AccountFlags,
    /// When it was created (ns since the Unix epoch), set by the ledger;
    /// 0 when creating.
    pub timestamp: u64,
}

impl Account {
    /// An account to create: the balances are zero and the ledger sets
    /// the timestamp.
    pub fn new(id: u128, ledger: u32, code: u16, flags: u16) -> Account {
        Account {
            id,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            user_data_128: 0,
            ledger,
            code,
            flags: AccountFlags(flags),
            timestamp: 0,
        }
    }

    /// `credits_posted - debits_posted` (what the account holds, for an
    /// account whose debits must not exceed its credits); negative when
    /// debits exceed credits.
    pub fn net_credit(&self) -> i128 {
        self.credits_posted as i128 - self.debits_posted as i128
    }
}

/// A transfer: immutable once created, idempotent by `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Unique, neither 0 nor `u128::MAX`.
    pub id: u128,
    /// The account debited.
    pub debit_account_id: u128,
    /// The account credited.
    pub credit_account_id: u128,
    /// The amount moved (reserved, for a pending transfer). For a post,
    /// at most the pending amount (`u128::MAX` posts all of it); for a
    /// void, 0 or the pending amount.
    pub amount: u128,
    /// For a post or void: the pending transfer it resolves.
    pub pending_id: u128,
    /// Free for the application (e.g. the job it pays for).
    pub user_data_128: u128,
    /// The accounts' ledger.
    pub ledger: u32,
    /// Why the transfer happened (the application's reason code; not 0).
    pub code: u16,
    /// [`TransferFlags`].
    pub flags: TransferFlags,
    /// For a pending transfer: seconds until it expires (0: never).
    pub timeout: u32,
    /// When it was created (ns since the Unix epoch), set by the ledger; 0 when creating.
    pub timestamp: u64,
}

impl Transfer {
    /// A single-phase transfer of `amount` from `debit` to `credit`.
    pub fn new(id: u128, debit: u128, credit: u128, amount: u128, ledger: u32, code: u16) -> Transfer {
        Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            pending_id: 0,
            user_data_128: 0,
            ledger,
            code,
            flags: TransferFlags(0),
            timeout: 0,
            timestamp: 0,
        }
    }

    /// The same transfer with `flags` added.
    pub fn with_flags(mut self, flags: u16) -> Transfer {
        self.flags.0 |= flags;
        self
    }

    /// When a pending transfer created at `timestamp` expires (ns), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        (self.flags.has(TransferFlags::PENDING) && self.timeout > 0).then(|| self.timestamp.saturating_add(u64::from(self.timeout) * 1_000_000_000))
    }
}

/// Where a pending transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    /// Reserved, not yet resolved.
    Pending,
    /// Posted by a later transfer.
    Posted,
    /// Voided by a later transfer.
    Voided,
    /// Its timeout passed first; the reservation was released.
    Expired,
}

impl PendingStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingStatus::Pending => "pending",
            PendingStatus::Posted => "posted",
            PendingStatus::Voided => "voided",
            PendingStatus::Expired => "expired",
        }
    }

    /// Parses [`PendingStatus::as_str`]'s names.
    pub fn parse(s: &str) -> Option<PendingStatus> {
        Some(match s {
            "pending" => PendingStatus::Pending,
            "posted" => PendingStatus::Posted,
            "voided" => PendingStatus::Voided,
            "expired" => PendingStatus::Expired,
            _ => return None,
        })
    }
}

/// The outcome of one account in `create_accounts` (TigerBeetle's
/// `CreateAccountResult`, the subset this ledger can produce).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateAccountResult {
    /// Created.
    Ok,
    /// Not created: another event of its linked chain failed.
    LinkedEventFailed,
    /// The last event of the batch has the `linked` flag: the chain is open.
    LinkedEventChainOpen,
    /// A flag outside [`AccountFlags::KNOWN`] is set.
    ReservedFlag,
    /// `id` is 0.
    IdMustNotBeZero,
    /// `id` is `u128::MAX`.
    IdMustNotBeIntMax,
    /// Both `debits_must_not_exceed_credits` and `credits_must_not_exceed_debits`.
    FlagsAreMutuallyExclusive,
    /// A balance field is not 0.
    BalancesMustBeZero,
    /// `timestamp` is not 0 (the ledger sets it).
    TimestampMustBeZero,
    /// `ledger` is 0.
    LedgerMustNotBeZero,
    /// `code` is 0.
    CodeMustNotBeZero,
    /// The ID exists with other flags.
    ExistsWithDifferentFlags,
    /// The ID exists with another `user_data_128`.
    ExistsWithDifferentUserData128,
    /// The ID exists with another ledger.
    ExistsWithDifferentLedger,
    /// The ID exists with another code.
    ExistsWithDifferentCode,
    /// The same account exists already (an idempotent retry: nothing changes).
    Exists,
}

/// The outcome of one transfer in `create_transfers` (TigerBeetle's
/// `CreateTransferResult`, the subset this ledger can produce).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateTransferResult {
    /// Created.
    Ok,
    /// Not created: another event of its linked chain failed.
    LinkedEventFailed,
    /// The last event of the batch has the `linked` flag: the chain is open.
    LinkedEventChainOpen,
    /// `timestamp` is not 0 (the ledger sets it).
    TimestampMustBeZero,
    /// A flag outside [`TransferFlags::KNOWN`] is set.
    ReservedFlag,
    /// `id` is 0.
    IdMustNotBeZero,
    /// `id` is `u128::MAX`.
    IdMustNotBeIntMax,
    /// More than one of `pending`, `post_pending_transfer`, `void_pending_transfer`.
    FlagsAreMutuallyExclusive,
    /// `debit_account_id` is 0 (single-phase and pending transfers).
    DebitAccountIdMustNotBeZero,
    /// `credit_account_id` is 0.
    CreditAccountIdMustNotBeZero,
    /// Debit and credit are the same account.
    AccountsMustBeDifferent,
    /// `pending_id` is set on a transfer that resolves nothing.
    PendingIdMustBeZero,
    /// A post or void without `pending_id`.
    PendingIdMustNotBeZero,
    /// `pending_id` is the transfer's own ID.
    PendingIdMustBeDifferent,
    /// `timeout` is set on a transfer that is not pending.
    TimeoutReservedForPendingTransfer,
    /// `ledger` is 0.
    LedgerMustNotBeZero,
    /// `code` is 0.
    CodeMustNotBeZero,
    /// The debit account does not exist.
    DebitAccountNotFound,
    /// The credit account does not exist.
    CreditAccountNotFound,
    /// The accounts are on different ledgers.
    AccountsMustHaveTheSameLedger,
    /// The transfer's ledger is not its accounts'.
    TransferMustHaveTheSameLedgerAsAccounts,
    /// `pending_id` names no transfer.
    PendingTransferNotFound,
    /// `pending_id` names a transfer that is not pending.
    PendingTransferNotPending,
    /// The post or void names other accounts than the pending transfer.
    PendingTransferHasDifferentDebitAccountId,
    /// The post or void names another credit account than the pending transfer.
    PendingTransferHasDifferentCreditAccountId,
    /// The post or void names another ledger than the pending transfer.
    PendingTransferHasDifferentLedger,
    /// The post or void has another code than the pending transfer.
    PendingTransferHasDifferentCode,
    /// A post of more than the pending amount.
    ExceedsPendingTransferAmount,
    /// A void of an amount other than 0 or the pending amount.
    PendingTransferHasDifferentAmount,
    /// The pending transfer was posted already.
    PendingTransferAlreadyPosted,
    /// The pending transfer was voided already.
    PendingTransferAlreadyVoided,
    /// The pending transfer expired.
    PendingTransferExpired,
    /// The ID exists with other flags.
    ExistsWithDifferentFlags,
    /// The ID exists with another debit account.
    ExistsWithDifferentDebitAccountId,
    /// The ID exists with another credit account.
    ExistsWithDifferentCreditAccountId,
    /// The ID exists with another amount.
    ExistsWithDifferentAmount,
    /// The ID exists with another `pending_id`.
    ExistsWithDifferentPendingId,
    /// The ID exists with another `user_data_128`.
    ExistsWithDifferentUserData128,
    /// The ID exists with another timeout.
    ExistsWithDifferentTimeout,
    /// The ID exists with another code.
    ExistsWithDifferentCode,
    /// The ID exists with another ledger.
    ExistsWithDifferentLedger,
    /// The same transfer exists already (an idempotent retry: nothing changes).
    Exists,
    /// An amount would overflow a balance (u128).
    OverflowsDebits,
    /// An amount would overflow a balance (u128).
    OverflowsCredits,
    /// The debit account's debits would exceed its credits (its flag forbids it).
    ExceedsCredits,
    /// The credit account's credits would exceed its debits (its flag forbids it).
    ExceedsDebits,
    /// A single-phase or pending transfer of 0.
    AmountMustNotBeZero,
}

impl CreateTransferResult {
    /// Whether the transfer is in the ledger after the call (created now,
    /// or an idempotent retry of one that was).
    pub fn is_done(self) -> bool {
        matches!(self, CreateTransferResult::Ok | CreateTransferResult::Exists)
    }
}

impl CreateAccountResult {
    /// Whether the account is in the ledger after the call.
    pub fn is_done(self) -> bool {
        matches!(self, CreateAccountResult::Ok | CreateAccountResult::Exists)
    }
}
