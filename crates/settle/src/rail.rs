//! The interface to a payment rail that moves money conditionally, and one
//! adapter of it.
//!
//! Conditional payments on real rails are hash-locked: a Lightning hold
//! invoice (BOLT 11's `payment_hash`, settled with its preimage: LND's
//! `invoicesrpc` `AddHoldInvoice` / `SettleInvoice` / `CancelInvoice`) or a
//! Cashu token locked by an HTLC (NUT-14's hash lock, redeemed with the
//! preimage, refunded after its lock time). The verifier makes the
//! preimage, hands only its hash to the buyer, and reveals the preimage
//! (settling the payment to the prover) only after the receipt verified;
//! on a failed verification or a missed deadline it cancels instead, and
//! the buyer's money goes back. [`PaymentRail`] is that interface; a
//! Lightning or Cashu adapter implements it against a node or a mint.
//!
//! [`PreimageKeeper`] is the verifier's side: it derives each job's
//! preimage from its own secret (so it keeps no per-job state and loses
//! none in a crash), hands out only the payment hash when the payment is
//! held, and after the verdict either reveals the preimage (a proof that
//! verified) or cancels.
//!
//! [`Custodial`] implements it on the accounting ledger itself, for a
//! market that keeps its users' balances (money deposited beforehand over
//! some rail): the hold is a pending transfer whose ID is derived from the
//! payment hash, posted only with the matching preimage.

use sha2::{Digest as _, Sha256};

use crate::model::{Account, AccountFlags, CreateTransferResult, PendingStatus, Transfer, TransferFlags};
use crate::settlement::derive_id;
use crate::{Error, Ledger};

/// SHA-256 of a [`Preimage`]: what a conditional payment is locked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PaymentHash(pub [u8; 32]);

/// The 32-byte secret that releases a conditional payment. Its `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Preimage(pub [u8; 32]);

impl std::fmt::Debug for Preimage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Preimage(…)")
    }
}

impl Preimage {
    /// A fresh preimage from the operating system's random source.
    ///
    /// # Errors
    /// A message when the random source fails.
    pub fn random() -> Result<Preimage, String> {
        let mut b = [0u8; 32];
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut b).map_err(|e| format!("random source: {e}"))?;
        Ok(Preimage(b))
    }

    /// Its payment hash (SHA-256).
    pub fn hash(&self) -> PaymentHash {
        PaymentHash(Sha256::digest(self.0).into())
    }
}

/// Where a conditional payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldState {
    /// Paid by the payer and locked: neither side can take it yet.
    Held,
    /// Released to the payee with the preimage.
    Settled,
    /// Returned to the payer (cancelled, or expired).
    Cancelled,
}

/// Why a rail call failed.
#[derive(Debug, thiserror::Error)]
pub enum RailError {
    /// The rail (node, mint, database) failed or could not be reached.
    #[error("payment rail: {0}")]
    Unavailable(String),
    /// No conditional payment is locked to this hash.
    #[error("payment rail: no payment is locked to hash {0}")]
    Unknown(String),
    /// The preimage does not hash to the payment's hash (nothing moved).
    #[error("payment rail: the preimage does not open the payment locked to {0}")]
    WrongPreimage(String),
    /// The payment is not held any more.
    #[error("payment rail: the payment locked to {hash} is {state:?}, not held")]
    NotHeld {
        /// The payment hash (hex).
        hash: String,
        /// Where it stands.
        state: HoldState,
    },
    /// The rail refused the payment (e.g. the payer's balance is too low).
    #[error("payment rail: refused: {0}")]
    Refused(String),
}

/// A rail that moves money conditionally, released by a preimage. Every
/// call is idempotent for the same hash (a retry after a lost answer finds
/// what the first call did).
pub trait PaymentRail {
    /// Locks `amount` (the rail's unit, e.g. msat) from `payer` for
    /// `payee` to `hash`, returned to the payer after `expiry_s` seconds
    /// unless settled (a hold invoice paid by the buyer; an HTLC-locked
    /// token). Returns the rail's reference (an invoice, a token ID).
    ///
    /// # Errors
    /// [`RailError::Refused`] when the payer cannot pay; [`RailError::Unavailable`].
    fn hold(&self, payer: &str, payee: &str, amount: u128, hash: &PaymentHash, expiry_s: u32) -> Result<String, RailError>;

    /// Where the payment locked to `hash` stands.
    ///
    /// # Errors
    /// [`RailError::Unknown`], [`RailError::Unavailable`].
    fn state(&self, hash: &PaymentHash) -> Result<HoldState, RailError>;

    /// Releases the payment locked to `hash` to its payee by revealing
    /// `preimage`.
    ///
    /// # Errors
    /// [`RailError::WrongPreimage`] when it does not hash to `hash`
    /// (nothing moves), [`RailError::NotHeld`] when the payment was
    /// cancelled or expired, [`RailError::Unknown`], [`RailError::Unavailable`].
    fn settle(&self, hash: &PaymentHash, preimage: &Preimage) -> Result<(), RailError>;

    /// Returns the payment locked to `hash` to its payer.
    ///
    /// # Errors
    /// [`RailError::NotHeld`] when it was settled, [`RailError::Unknown`],
    /// [`RailError::Unavailable`].
    fn cancel(&self, hash: &PaymentHash) -> Result<(), RailError>;
}

/// The verifier's preimages: for job `j`, HMAC-SHA-256(secret,
/// `zkaudit-settle/preimage/1/` ‖ `j`) (RFC 2104). Only the holder of the
/// secret can release a payment; anyone can be given the hash. Its `Debug`
/// does not show the secret.
pub struct PreimageKeeper {
    secret: [u8; 32],
}

impl std::fmt::Debug for PreimageKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreimageKeeper(…)")
    }
}

impl PreimageKeeper {
    /// A keeper of `secret` (32 random bytes, kept like a signing key).
    pub fn new(secret: [u8; 32]) -> PreimageKeeper {
        PreimageKeeper { secret }
    }

    /// The preimage of `job`'s payment.
    pub fn preimage(&self, job: &str) -> Preimage {
        use hmac::Mac as _;
        // HMAC takes a key of any length, so `new_from_slice` cannot fail here.
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"zkaudit-settle/preimage/1/");
        mac.update(job.as_bytes());
        Preimage(mac.finalize().into_bytes().into())
    }

    /// The hash `job`'s payment is locked to.
    pub fn payment_hash(&self, job: &str) -> PaymentHash {
        self.preimage(job).hash()
    }

    /// Locks `amount` from `payer` for `payee` on `rail` to `job`'s
    /// payment hash, for `expiry_s` seconds; returns the hash and the
    /// rail's reference. Idempotent, as the rail is.
    ///
    /// # Errors
    /// As for [`PaymentRail::hold`].
    pub fn hold(&self, rail: &dyn PaymentRail, job: &str, payer: &str, payee: &str, amount: u128, expiry_s: u32) -> Result<(PaymentHash, String), RailError> {
        let hash = self.payment_hash(job);
        let reference = rail.hold(payer, payee, amount, &hash, expiry_s)?;
        Ok((hash, reference))
    }

    /// Ends `job`'s payment after the verdict: the preimage is revealed to
    /// the rail (the payee is paid) only when `verified`; otherwise the
    /// payment is cancelled back to the payer. Returns where it stands,
    /// and is idempotent (a payment already settled or cancelled the same
    /// way is found so).
    ///
    /// # Errors
    /// [`RailError::NotHeld`] when the payment ended the other way (or
    /// expired before a valid proof came), and the rail's errors.
    pub fn conclude(&self, rail: &dyn PaymentRail, job: &str, verified: bool) -> Result<HoldState, RailError> {
        let preimage = self.preimage(job);
        let hash = preimage.hash();
        if verified {
            rail.settle(&hash, &preimage)?;
        } else {
            rail.cancel(&hash)?;
        }
        rail.state(&hash)
    }
}

/// [`PaymentRail`] on the accounting ledger: accounts are the payers' and
/// payees' balances (account `code` 20, debits must not exceed credits for
/// payers), a hold is a pending transfer from payer to payee with the ID
/// and `user_data_128` derived from the payment hash.
pub struct Custodial<L: Ledger> {
    /// The accounting ledger.
    pub ledger: L,
    /// The ledger number (unit) of every account.
    pub unit: u32,
}

/// The `code` of a custodial balance.
pub const CUSTODIAL_ACCOUNT_CODE: u16 = 20;
/// The `code` of a hold and of its settlement.
pub const HOLD_TRANSFER_CODE: u16 = 30;

fn hex32(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl<L: Ledger> Custodial<L> {
    /// The balance account of `owner`.
    pub fn account_id(owner: &str) -> u128 {
        derive_id(&[b"zkaudit-settle/custodial/", owner.as_bytes()])
    }

    fn hold_id(hash: &PaymentHash) -> u128 {
        derive_id(&[b"zkaudit-settle/hold/", &hash.0])
    }

    fn resolve_id(hash: &PaymentHash) -> u128 {
        derive_id(&[b"zkaudit-settle/hold-resolved/", &hash.0])
    }

    fn db(e: Error) -> RailError {
        RailError::Unavailable(e.to_string())
    }

    /// Opens the balance accounts of `owners` (idempotent).
    ///
    /// # Errors
    /// [`RailError::Unavailable`] when the ledger fails or refuses.
    pub fn open_accounts(&self, owners: &[&str]) -> Result<(), RailError> {
        let batch: Vec<Account> =
            owners.iter().map(|o| Account::new(Self::account_id(o), self.unit, CUSTODIAL_ACCOUNT_CODE, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)).collect();
        let results = self.ledger.create_accounts(&batch).map_err(Self::db)?;
        match results.iter().find(|r| !r.is_done()) {
            Some(r) => Err(RailError::Unavailable(format!("opening an account: {r:?}"))),
            None => Ok(()),
        }
    }

    fn hold_of(&self, hash: &PaymentHash) -> Result<(Transfer, HoldState), RailError> {
        let found = self.ledger.lookup_transfers(&[Self::hold_id(hash)]).map_err(Self::db)?;
        let (t, status) = found.first().copied().ok_or_else(|| RailError::Unknown(hex32(&hash.0)))?;
        let state = match status {
            Some(PendingStatus::Pending) => HoldState::Held,
            Some(PendingStatus::Posted) => HoldState::Settled,
            Some(PendingStatus::Voided | PendingStatus::Expired) | None => HoldState::Cancelled,
        };
        Ok((t, state))
    }

    fn resolve(&self, hash: &PaymentHash, post: bool) -> Result<(), RailError> {
        let (hold, state) = self.hold_of(hash)?;
        let wanted = if post { HoldState::Settled } else { HoldState::Cancelled };
        if state == wanted {
            return Ok(());
        }
        if state != HoldState::Held {
            return Err(RailError::NotHeld { hash: hex32(&hash.0), state });
        }
        let flag = if post { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
        let t = Transfer { pending_id: hold.id, ..Transfer::new(Self::resolve_id(hash), 0, 0, if post { u128::MAX } else { 0 }, 0, 0).with_flags(flag) };
        match self.ledger.create_transfers(&[t]).map_err(Self::db)?.first() {
            Some(CreateTransferResult::Ok | CreateTransferResult::Exists) => Ok(()),
            // Expired between the lookup and now.
            Some(CreateTransferResult::PendingTransferExpired) => Err(RailError::NotHeld { hash: hex32(&hash.0), state: HoldState::Cancelled }),
            other => Err(RailError::Unavailable(format!("resolving the hold: {other:?}"))),
        }
    }
}

impl<L: Ledger> PaymentRail for Custodial<L> {
    fn hold(&self, payer: &str, payee: &str, amount: u128, hash: &PaymentHash, expiry_s: u32) -> Result<String, RailError> {
        let id = Self::hold_id(hash);
        let mut t =
            Transfer::new(id, Self::account_id(payer), Self::account_id(payee), amount, self.unit, HOLD_TRANSFER_CODE).with_flags(TransferFlags::PENDING);
        t.timeout = expiry_s;
        t.user_data_128 = u128::from_be_bytes(hash.0[..16].try_into().map_err(|_| RailError::Unavailable("hash".into()))?);
        match self.ledger.create_transfers(&[t]).map_err(Self::db)?.first() {
            Some(CreateTransferResult::Ok | CreateTransferResult::Exists) => Ok(format!("{id:032x}")),
            Some(r) => Err(RailError::Refused(format!("{r:?}"))),
            None => Err(RailError::Unavailable("no result".into())),
        }
    }

    fn state(&self, hash: &PaymentHash) -> Result<HoldState, RailError> {
        self.hold_of(hash).map(|(_, s)| s)
    }

    fn settle(&self, hash: &PaymentHash, preimage: &Preimage) -> Result<(), RailError> {
        if preimage.hash() != *hash {
            return Err(RailError::WrongPreimage(hex32(&hash.0)));
        }
        self.resolve(hash, true)
    }

    fn cancel(&self, hash: &PaymentHash) -> Result<(), RailError> {
        self.resolve(hash, false)
    }
}
