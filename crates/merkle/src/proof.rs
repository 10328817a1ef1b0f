//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4).

use alloc::vec::Vec;

use crate::{empty_root, node_hash, Hash, SubtreeSource};

/// Failure to generate a proof or a root.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E> {
    /// The requested index or sizes do not describe a valid proof.
    #[error("invalid proof request: {0}")]
    InvalidRequest(&'static str),
    /// The hash source failed.
    #[error(transparent)]
    Source(E),
}

/// A proof that does not verify, with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// Old size is larger than new size.
    #[error("old size {old} is larger than new size {new}")]
    SizeOrder {
        /// The old tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for the index and sizes.
    #[error("proof has the wrong number of hashes ({0})")]
    WrongLength(usize),
    /// The recomputed root differs from the expected one.
    #[error("recomputed root does not match the expected root")]
    RootMismatch,
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Merkle tree hash `MTH(D[start:end])` of a range of leaves (RFC 9162 §2.1.1).
///
/// `start` must be aligned as in the RFC recursion: a multiple of the
/// smallest power of two that is `>= end - start`. Every range met while
/// building proofs has that shape. Complete aligned ranges are read from
/// `src` directly; others are split at the largest power of two.
pub fn range_root<S: SubtreeSource>(src: &S, start: u64, end: u64) -> Result<Hash, ProofError<S::Error>> {
    if end <= start {
        return Err(ProofError::InvalidRequest("empty range"));
    }
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let h = n.trailing_zeros() as u8;
        return src.subtree(h, start >> h).map_err(ProofError::Source);
    }
    let k = split_point(n);
    let left = range_root(src, start, start + k)?;
    let right = range_root(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// Merkle tree head of the first `size` leaves (RFC 9162 §2.1.1).
pub fn root<S: SubtreeSource>(src: &S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_root(src, 0, size)
}

/// Inclusion proof for leaf `index` in the tree of `size` leaves: the
/// audit path `PATH(index, D[0:size])` of RFC 9162 §2.1.3.1, deepest hash first.
///
/// Errors with [`ProofError::InvalidRequest`] unless `index < size`.
pub fn inclusion_proof<S: SubtreeSource>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::InvalidRequest("leaf index must be below tree size"));
    }
    let mut out = Vec::with_capacity(64);
    path(src, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<S: SubtreeSource>(src: &S, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), ProofError<S::Error>> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(range_root(src, start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(range_root(src, start, start + k)?);
    }
    Ok(())
}

/// Consistency proof between tree sizes `old` and `new`:
/// `PROOF(old, D[0:new])` of RFC 9162 §2.1.4.1.
///
/// The proof is empty when `old == 0` or `old == new`. Errors with
/// [`ProofError::InvalidRequest`] when `old > new`.
pub fn consistency_proof<S: SubtreeSource>(src: &S, old: u64, new: u64) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old > new {
        return Err(ProofError::InvalidRequest("old size must not exceed new size"));
    }
    let mut out = Vec::with_capacity(64);
    if old > 0 && old < new {
        subproof(src, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<S: SubtreeSource>(src: &S, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) -> Result<(), ProofError<S::Error>> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(range_root(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, start + k, whole, out)?;
        out.push(range_root(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(range_root(src, start, start + k)?);
    }
    Ok(())
}

/// Recomputes the root implied by an inclusion proof (RFC 9162 §2.1.3.2).
///
/// Errors when `index >= size` or when the proof length does not fit the
/// index and size.
pub fn root_from_inclusion_proof(leaf: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(VerifyError::WrongLength(proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyError::WrongLength(proof.len()));
    }
    Ok(r)
}

/// Verifies an inclusion proof of `leaf` at `index` in the tree of `size`
/// leaves with head `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), VerifyError> {
    if root_from_inclusion_proof(leaf, index, size, proof)? == *root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}

/// Verifies a consistency proof that the tree of `old` leaves with head
/// `old_root` is a prefix of the tree of `new` leaves with head `new_root`
/// (RFC 9162 §2.1.4.2).
///
/// Edge cases the RFC leaves open are decided as follows: `old == new`
/// requires an empty proof and equal roots; `old == 0` requires an empty
/// proof and `old_root` equal to the empty-tree root.
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> Result<(), VerifyError> {
    if old > new {
        return Err(VerifyError::SizeOrder { old, new });
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(VerifyError::WrongLength(proof.len()));
        }
        let expected = if old == 0 { empty_root() } else { *new_root };
        return if *old_root == expected { Ok(()) } else { Err(VerifyError::RootMismatch) };
    }
    if proof.is_empty() {
        return Err(VerifyError::WrongLength(0));
    }
    // Step 2: a power-of-two old tree is itself the first node of the path.
    let (first, rest) = if old.is_power_of_two() { (old_root, proof) } else { (&proof[0], &proof[1..]) };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(VerifyError::WrongLength(proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyError::WrongLength(proof.len()));
    }
    if fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}
