//! Exhaustive tests of the RFC 9162 tree hashing, proofs and compact ranges.
//!
//! Three independent opinions are used as oracles:
//!
//! * published RFC 6962 test vectors (the 8-leaf tree of the
//!   certificate-transparency / transparency-dev reference tests),
//! * a naive, recursive reading of the RFC definitions written in this file,
//! * `tlog_tiles`, a port of Go's `golang.org/x/mod/sumdb/tlog`, which stores
//!   hashes in its own layout and builds proofs with its own recursion.
//!
//! Every tree size up to [`MAX_SIZE`] and every leaf index / size pair in it
//! is covered, and every valid proof is also mangled in several ways that a
//! verifier must refuse.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use zkaudit_merkle::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, range_root, root, root_from_inclusion_proof, verify_consistency, verify_inclusion,
    CompactRange, Hash, MemoryTree, OutOfRange, ProofError, SubtreeSource, VerifyError, LEAF_PREFIX, NODE_PREFIX,
};

/// Largest tree size for which every proof is generated and checked.
const MAX_SIZE: u64 = 300;

/// Largest tree size for the cross-check against `tlog_tiles`.
const CROSS_CHECK_SIZE: u64 = MAX_SIZE;

// ---------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------

/// The entry of leaf `i`: distinct for every index.
fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

/// Leaf hashes, roots and a tree over `MAX_SIZE + 1` leaves, so that every
/// size up to `MAX_SIZE` has a successor whose root is known.
struct Fixture {
    leaves: Vec<Hash>,
    tree: MemoryTree,
    /// `roots[n]` is the head of the tree of the first `n` leaves, computed
    /// by a `MemoryTree` that holds exactly those leaves.
    roots: Vec<Hash>,
}

impl Fixture {
    fn new() -> Self {
        let leaves: Vec<Hash> = (0..=MAX_SIZE).map(|i| leaf_hash(&entry(i))).collect();
        let tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
        let roots = (0..=leaves.len()).map(|n| MemoryTree::from_leaf_hashes(leaves[..n].iter().copied()).root()).collect();
        Self { leaves, tree, roots }
    }

    /// The tree seen as if it had only `size` leaves.
    fn prefix(&self, size: u64) -> Prefix<'_> {
        Prefix { tree: &self.tree, size }
    }

    fn root(&self, size: u64) -> Hash {
        self.roots[usize::try_from(size).unwrap()]
    }

    fn leaf(&self, index: u64) -> Hash {
        self.leaves[usize::try_from(index).unwrap()]
    }
}

/// A view of a bigger tree restricted to its first `size` leaves. It refuses
/// every subtree that is not complete within `size`, so a generator that
/// reads past the tree it proves fails loudly instead of silently picking up
/// a hash that happens to exist in the bigger tree.
struct Prefix<'a> {
    tree: &'a MemoryTree,
    size: u64,
}

impl SubtreeSource for Prefix<'_> {
    type Error = OutOfRange;

    fn subtree(&self, height: u8, index: u64) -> Result<Hash, OutOfRange> {
        let end = (u128::from(index) + 1) << height;
        if end > u128::from(self.size) {
            return Err(OutOfRange { height, index });
        }
        self.tree.subtree(height, index)
    }
}

/// `MTH(D[0:n])` straight from RFC 9162 §2.1.1, over leaf hashes.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n);
            reference_node(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// `SHA-256(0x01 ‖ left ‖ right)`, computed here rather than by the crate.
fn reference_node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The RFC's `k`: the largest power of two strictly smaller than `n >= 2`.
fn largest_power_of_two_below(n: usize) -> usize {
    assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Number of hashes in `PATH(m, D[0:n])` (RFC 9162 §2.1.3.1).
fn reference_path_len(m: u64, n: u64) -> usize {
    if n <= 1 {
        return 0;
    }
    let k = largest_power_of_two_below(n as usize) as u64;
    1 + if m < k { reference_path_len(m, k) } else { reference_path_len(m - k, n - k) }
}

/// Number of hashes in `PROOF(m, D[0:n])` (RFC 9162 §2.1.4.1).
fn reference_consistency_len(m: u64, n: u64) -> usize {
    fn subproof(m: u64, n: u64, whole: bool) -> usize {
        if m == n {
            return usize::from(!whole);
        }
        let k = largest_power_of_two_below(n as usize) as u64;
        1 + if m <= k { subproof(m, k, whole) } else { subproof(m - k, n - k, false) }
    }
    if m == 0 || m == n {
        0
    } else {
        subproof(m, n, true)
    }
}

/// `h` with bit `bit` (0..256) inverted.
fn flip(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

/// Decodes 64 hex digits.
fn hex(s: &str) -> Hash {
    assert_eq!(s.len(), 64, "{s}");
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn hexes(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|s| hex(s)).collect()
}

// ---------------------------------------------------------------------------
// Known answers
// ---------------------------------------------------------------------------

const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn hashing_known_answers() {
    assert_eq!(LEAF_PREFIX, 0x00);
    assert_eq!(NODE_PREFIX, 0x01);

    // The empty tree: SHA-256 of nothing, by every route.
    assert_eq!(empty_root(), hex(EMPTY_ROOT));
    assert_eq!(MemoryTree::new().root(), hex(EMPTY_ROOT));
    assert_eq!(CompactRange::new().root(), hex(EMPTY_ROOT));
    assert_eq!(root(&MemoryTree::new(), 0).unwrap(), hex(EMPTY_ROOT));

    // Leaf hash of the empty entry: SHA-256(0x00).
    assert_eq!(leaf_hash(b""), hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));

    // Leaf and node hashes against SHA-256 over the RFC's byte strings.
    for data in [&b"a"[..], b"entry 0", &[0u8; 100], &[0xff; 64]] {
        let expected: Hash = Sha256::digest([&[0x00][..], data].concat()).into();
        assert_eq!(leaf_hash(data), expected);
    }
    let (a, b) = (leaf_hash(b"left"), leaf_hash(b"right"));
    let expected: Hash = Sha256::digest([&[0x01][..], &a, &b].concat()).into();
    assert_eq!(node_hash(&a, &b), expected);
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a), "node hashing must be ordered");
    // Domain separation: a 64-byte entry made of two hashes is not a node.
    assert_ne!(leaf_hash(&[a, b].concat()), node_hash(&a, &b));
}

/// RFC 6962 reference tree: the eight leaves used by certificate-transparency,
/// Trillian and transparency-dev/merkle tests, with their published heads and
/// proofs.
const RFC6962_ENTRIES: [&str; 8] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

/// Heads of the reference tree for sizes 0..=8.
const RFC6962_ROOTS: [&str; 9] = [
    EMPTY_ROOT,
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn rfc6962_tree() -> MemoryTree {
    MemoryTree::from_leaf_hashes(RFC6962_ENTRIES.iter().map(|e| {
        let bytes: Vec<u8> = (0..e.len()).step_by(2).map(|i| u8::from_str_radix(&e[i..i + 2], 16).unwrap()).collect();
        leaf_hash(&bytes)
    }))
}

#[test]
fn rfc6962_reference_roots() {
    let tree = rfc6962_tree();
    for (n, expected) in RFC6962_ROOTS.iter().enumerate() {
        assert_eq!(root(&tree, n as u64).unwrap(), hex(expected), "root of size {n}");
    }
    assert_eq!(tree.root(), hex(RFC6962_ROOTS[8]));
}

#[test]
fn rfc6962_reference_inclusion_proofs() {
    let tree = rfc6962_tree();
    // (index, size, audit path), 0-based indices.
    let vectors: [(u64, u64, &[&str]); 12] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            1,
            8,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            2,
            8,
            &[
                "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            3,
            8,
            &[
                "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            4,
            8,
            &[
                "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            6,
            8,
            &[
                "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            7,
            8,
            &[
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (4, 5, &["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    ];
    for (index, size, expected) in vectors {
        let proof = inclusion_proof(&tree, index, size).unwrap();
        assert_eq!(proof, hexes(expected), "inclusion proof ({index}, {size})");
        let leaf = tree.subtree(0, index).unwrap();
        let head = hex(RFC6962_ROOTS[size as usize]);
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &head), Ok(()));
    }
}

#[test]
fn rfc6962_reference_consistency_proofs() {
    let tree = rfc6962_tree();
    // (old size, new size, proof).
    let vectors: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 5, &["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (4, 8, &["6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    ];
    for (old, new, expected) in vectors {
        let proof = consistency_proof(&tree, old, new).unwrap();
        assert_eq!(proof, hexes(expected), "consistency proof ({old}, {new})");
        let (old_root, new_root) = (hex(RFC6962_ROOTS[old as usize]), hex(RFC6962_ROOTS[new as usize]));
        assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));
    }
}

// ---------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------

#[test]
fn roots_at_every_older_size() {
    let fx = Fixture::new();
    for n in 0..=MAX_SIZE {
        let expected = reference_root(&fx.leaves[..n as usize]);
        assert_eq!(fx.root(n), expected, "MemoryTree of {n} leaves disagrees with the RFC recursion");
        assert_eq!(root(&fx.tree, n).unwrap(), expected, "root at older size {n} from the full tree");
        assert_eq!(root(&fx.prefix(n), n).unwrap(), expected, "root of size {n} reads past leaf {n}");
    }
    assert_eq!(fx.tree.size(), MAX_SIZE + 1);
    assert_eq!(fx.tree.root(), reference_root(&fx.leaves));
}

#[test]
fn range_roots_of_aligned_ranges() {
    let fx = Fixture::new();
    let total = MAX_SIZE as usize;
    for len in 1..=total {
        let align = len.next_power_of_two();
        for start in (0..=total - len).step_by(align) {
            let got = range_root(&fx.prefix(MAX_SIZE), start as u64, (start + len) as u64).unwrap();
            assert_eq!(got, reference_root(&fx.leaves[start..start + len]), "range [{start}, {})", start + len);
        }
    }
    assert!(matches!(range_root(&fx.tree, 5, 5), Err(ProofError::InvalidRequest(_))));
    assert!(matches!(range_root(&fx.tree, 6, 5), Err(ProofError::InvalidRequest(_))));
}

#[test]
fn memory_tree_refuses_incomplete_subtrees() {
    let tree = MemoryTree::from_leaf_hashes((0..5).map(|i| leaf_hash(&entry(i))));
    assert!(tree.subtree(0, 4).is_ok());
    assert!(tree.subtree(2, 0).is_ok());
    assert_eq!(tree.subtree(0, 5), Err(OutOfRange { height: 0, index: 5 }));
    assert_eq!(tree.subtree(1, 2), Err(OutOfRange { height: 1, index: 2 }));
    assert_eq!(tree.subtree(3, 0), Err(OutOfRange { height: 3, index: 0 }));
    assert_eq!(tree.subtree(0, u64::MAX), Err(OutOfRange { height: 0, index: u64::MAX }));
    // Roots and proofs beyond the tree surface the source's error.
    assert!(matches!(root(&tree, 6), Err(ProofError::Source(_))));
    assert!(matches!(inclusion_proof(&tree, 0, 6), Err(ProofError::Source(_))));
    assert!(matches!(consistency_proof(&tree, 2, 6), Err(ProofError::Source(_))));
}

// ---------------------------------------------------------------------------
// Inclusion proofs
// ---------------------------------------------------------------------------

#[test]
fn inclusion_proofs_verify_for_every_size_and_index() {
    let fx = Fixture::new();
    let mut count = 0;
    for n in 1..=MAX_SIZE {
        for i in 0..n {
            let proof = inclusion_proof(&fx.prefix(n), i, n).unwrap_or_else(|e| panic!("inclusion_proof({i}, {n}) reads outside the tree: {e:?}"));
            assert_eq!(proof.len(), reference_path_len(i, n), "proof length for ({i}, {n})");
            assert_eq!(verify_inclusion(&fx.leaf(i), i, n, &proof, &fx.root(n)), Ok(()), "inclusion ({i}, {n})");
            assert_eq!(root_from_inclusion_proof(&fx.leaf(i), i, n, &proof), Ok(fx.root(n)));
            count += 1;
        }
    }
    assert_eq!(count, MAX_SIZE * (MAX_SIZE + 1) / 2);
}

#[test]
fn tampered_inclusion_proofs_fail() {
    let fx = Fixture::new();
    let other_leaf = leaf_hash(b"not an entry of this tree");
    for n in 1..=MAX_SIZE {
        let head = fx.root(n);
        for i in 0..n {
            let leaf = fx.leaf(i);
            let proof = inclusion_proof(&fx.prefix(n), i, n).unwrap();

            // One flipped bit in each proof hash (the bit moves around); in
            // small trees, every bit.
            for k in 0..proof.len() {
                let bits: Vec<usize> = if n <= 24 { (0..256).collect() } else { vec![(i as usize * 31 + n as usize * 7 + k * 13) % 256] };
                for bit in bits {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k], bit);
                    assert_eq!(verify_inclusion(&leaf, i, n, &bad, &head), Err(VerifyError::RootMismatch), "({i}, {n}) with bit {bit} of hash {k} flipped");
                }
            }

            // Wrong leaf hash.
            assert_eq!(verify_inclusion(&other_leaf, i, n, &proof, &head), Err(VerifyError::RootMismatch));
            assert_eq!(verify_inclusion(&flip(&leaf, (i % 256) as usize), i, n, &proof, &head), Err(VerifyError::RootMismatch));
            if n > 1 {
                let neighbour = fx.leaf(if i + 1 < n { i + 1 } else { i - 1 });
                assert!(verify_inclusion(&neighbour, i, n, &proof, &head).is_err(), "({i}, {n}) neighbour leaf");
            }

            // Wrong root.
            assert_eq!(verify_inclusion(&leaf, i, n, &proof, &fx.root(n + 1)), Err(VerifyError::RootMismatch));
            assert_eq!(verify_inclusion(&leaf, i, n, &proof, &flip(&head, 0)), Err(VerifyError::RootMismatch));

            // Wrong index: the leaf is not at any other position. Small trees
            // try every other index, bigger ones the likely mistakes.
            let wrong_indices: Vec<u64> = if n <= 64 {
                (0..n).filter(|&j| j != i).collect()
            } else {
                [i + 1, i ^ 1, i.wrapping_sub(1), 0, n - 1, n / 2].into_iter().filter(|&j| j < n && j != i).collect()
            };
            for j in wrong_indices {
                assert!(verify_inclusion(&leaf, j, n, &proof, &head).is_err(), "({i}, {n}) claimed at index {j}");
            }
            assert_eq!(verify_inclusion(&leaf, n, n, &proof, &head), Err(VerifyError::IndexOutOfRange { index: n, size: n }));
            assert_eq!(verify_inclusion(&leaf, u64::MAX, n, &proof, &head), Err(VerifyError::IndexOutOfRange { index: u64::MAX, size: n }));

            // Wrong size, checked against the genuine head of that size.
            let mut wrong_sizes = vec![n + 1, 2 * n];
            if n - 1 > i {
                wrong_sizes.push(n - 1);
            }
            for s in wrong_sizes {
                if s <= MAX_SIZE + 1 {
                    assert!(verify_inclusion(&leaf, i, s, &proof, &fx.root(s)).is_err(), "({i}, {n}) claimed in size {s}");
                }
            }
            assert_eq!(verify_inclusion(&leaf, i, 0, &proof, &head), Err(VerifyError::IndexOutOfRange { index: i, size: 0 }));

            // Truncated and extended proofs.
            if !proof.is_empty() {
                let len = proof.len();
                assert_eq!(verify_inclusion(&leaf, i, n, &proof[..len - 1], &head), Err(VerifyError::WrongLength(len - 1)));
                assert_eq!(verify_inclusion(&leaf, i, n, &proof[1..], &head), Err(VerifyError::WrongLength(len - 1)));
            }
            for extra in [[0u8; 32], head] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert_eq!(verify_inclusion(&leaf, i, n, &longer, &head), Err(VerifyError::WrongLength(proof.len() + 1)));
                longer.pop();
                longer.insert(0, extra);
                assert_eq!(verify_inclusion(&leaf, i, n, &longer, &head), Err(VerifyError::WrongLength(proof.len() + 1)));
            }

            // Reordered proof hashes.
            if proof.len() >= 2 {
                let mut swapped = proof.clone();
                swapped.swap(0, 1);
                assert_eq!(verify_inclusion(&leaf, i, n, &swapped, &head), Err(VerifyError::RootMismatch));
            }
        }
    }
}

#[test]
fn invalid_inclusion_requests() {
    let fx = Fixture::new();
    for (index, size) in [(0, 0), (5, 5), (6, 5), (u64::MAX, 5)] {
        assert!(matches!(inclusion_proof(&fx.tree, index, size), Err(ProofError::InvalidRequest(_))), "inclusion_proof({index}, {size})");
    }
    let leaf = fx.leaf(0);
    assert_eq!(root_from_inclusion_proof(&leaf, 0, 0, &[]), Err(VerifyError::IndexOutOfRange { index: 0, size: 0 }));
    // A single-leaf tree has an empty proof and the leaf as its head.
    assert_eq!(root_from_inclusion_proof(&leaf, 0, 1, &[]), Ok(leaf));
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[leaf], &leaf), Err(VerifyError::WrongLength(1)));
}

// ---------------------------------------------------------------------------
// Consistency proofs
// ---------------------------------------------------------------------------

/// Checks `proof` for `(m, n)` against the claim `(m2, n2)` with the genuine
/// heads of those sizes: it must be refused unless it is exactly the honest
/// proof for that claim (only possible for the empty proof of a trivial claim).
fn assert_consistency_claim(fx: &Fixture, proof: &[Hash], (m, n): (u64, u64), (m2, n2): (u64, u64)) {
    let result = verify_consistency(m2, n2, &fx.root(m2), &fx.root(n2), proof);
    let honest = consistency_proof(&fx.prefix(n2), m2, n2).unwrap();
    if honest == proof {
        assert!(proof.is_empty(), "two different size pairs ({m}, {n}) and ({m2}, {n2}) share a proof");
        assert_eq!(result, Ok(()));
    } else {
        assert!(result.is_err(), "proof for ({m}, {n}) accepted for ({m2}, {n2})");
    }
}

#[test]
fn consistency_proofs_verify_for_all_size_pairs() {
    let fx = Fixture::new();
    let mut count = 0;
    for n in 0..=MAX_SIZE {
        for m in 0..=n {
            let proof = consistency_proof(&fx.prefix(n), m, n).unwrap_or_else(|e| panic!("consistency_proof({m}, {n}) reads outside the tree: {e:?}"));
            assert_eq!(proof.len(), reference_consistency_len(m, n), "proof length for ({m}, {n})");
            assert_eq!(verify_consistency(m, n, &fx.root(m), &fx.root(n), &proof), Ok(()), "consistency ({m}, {n})");
            count += 1;
        }
    }
    assert_eq!(count, (MAX_SIZE + 1) * (MAX_SIZE + 2) / 2);
}

#[test]
fn tampered_consistency_proofs_fail() {
    let fx = Fixture::new();
    for n in 0..=MAX_SIZE {
        for m in 0..=n {
            let proof = consistency_proof(&fx.prefix(n), m, n).unwrap();
            let (old_root, new_root) = (fx.root(m), fx.root(n));

            // One flipped bit in each proof hash; in small trees, every bit.
            for k in 0..proof.len() {
                let bits: Vec<usize> = if n <= 24 { (0..256).collect() } else { vec![(m as usize * 17 + n as usize * 5 + k * 29) % 256] };
                for bit in bits {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k], bit);
                    assert_eq!(
                        verify_consistency(m, n, &old_root, &new_root, &bad),
                        Err(VerifyError::RootMismatch),
                        "({m}, {n}) with bit {bit} of hash {k} flipped"
                    );
                }
            }

            // Tampered heads.
            assert!(verify_consistency(m, n, &flip(&old_root, 3), &new_root, &proof).is_err(), "({m}, {n}) old head");
            if m > 0 {
                // With m == 0 the new head is not constrained at all.
                assert!(verify_consistency(m, n, &old_root, &flip(&new_root, 200), &proof).is_err(), "({m}, {n}) new head");
            }

            // Swapped heads.
            if m < n {
                assert!(verify_consistency(m, n, &new_root, &old_root, &proof).is_err(), "({m}, {n}) swapped heads");
            }

            // Wrong sizes, with the genuine heads of the claimed sizes.
            for m2 in [m.wrapping_sub(1), m + 1, m / 2] {
                if m2 <= n && m2 != m {
                    assert_consistency_claim(&fx, &proof, (m, n), (m2, n));
                }
            }
            for n2 in [n.wrapping_sub(1), n + 1, 2 * n] {
                if m <= n2 && n2 != n && n2 <= MAX_SIZE + 1 {
                    assert_consistency_claim(&fx, &proof, (m, n), (m, n2));
                }
            }
            if m < n {
                assert_eq!(verify_consistency(n, m, &new_root, &old_root, &proof), Err(VerifyError::SizeOrder { old: n, new: m }));
            }

            // Truncated and extended proofs.
            if !proof.is_empty() {
                let len = proof.len();
                assert!(verify_consistency(m, n, &old_root, &new_root, &proof[..len - 1]).is_err(), "({m}, {n}) truncated");
                assert!(verify_consistency(m, n, &old_root, &new_root, &proof[1..]).is_err(), "({m}, {n}) first dropped");
                assert_eq!(verify_consistency(m, n, &old_root, &new_root, &[]), Err(VerifyError::WrongLength(0)));
            }
            for extra in [[0u8; 32], old_root] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(verify_consistency(m, n, &old_root, &new_root, &longer).is_err(), "({m}, {n}) extended");
                longer.pop();
                longer.insert(0, extra);
                assert!(verify_consistency(m, n, &old_root, &new_root, &longer).is_err(), "({m}, {n}) prefixed");
            }
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let fx = Fixture::new();
    let (r0, r4, r5) = (fx.root(0), fx.root(4), fx.root(5));
    // old == new: empty proof, equal heads.
    assert_eq!(verify_consistency(4, 4, &r4, &r4, &[]), Ok(()));
    assert_eq!(verify_consistency(4, 4, &r4, &r5, &[]), Err(VerifyError::RootMismatch));
    assert_eq!(verify_consistency(4, 4, &r4, &r4, &[r4]), Err(VerifyError::WrongLength(1)));
    // old == 0: empty proof, the empty head; any new head.
    assert_eq!(verify_consistency(0, 5, &r0, &r5, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 0, &r0, &r0, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 5, &r4, &r5, &[]), Err(VerifyError::RootMismatch));
    assert_eq!(verify_consistency(0, 5, &r0, &r5, &[r0]), Err(VerifyError::WrongLength(1)));
    // old > new.
    assert_eq!(verify_consistency(5, 4, &r5, &r4, &[]), Err(VerifyError::SizeOrder { old: 5, new: 4 }));
    assert!(matches!(consistency_proof(&fx.tree, 5, 4), Err(ProofError::InvalidRequest(_))));
    assert_eq!(consistency_proof(&fx.tree, 0, 5).unwrap(), Vec::<Hash>::new());
    assert_eq!(consistency_proof(&fx.tree, 5, 5).unwrap(), Vec::<Hash>::new());
    // A fork: a size-5 tree whose leaf 2 was rewritten is not an extension of
    // the honest size-3 tree.
    let mut forked = fx.leaves[..5].to_vec();
    forked[2] = leaf_hash(b"rewritten history");
    let forked_tree = MemoryTree::from_leaf_hashes(forked);
    let forked_proof = consistency_proof(&forked_tree, 3, 5).unwrap();
    assert!(verify_consistency(3, 5, &fx.root(3), &forked_tree.root(), &forked_proof).is_err());
    let honest_proof = consistency_proof(&fx.tree, 3, 5).unwrap();
    assert!(verify_consistency(3, 5, &fx.root(3), &forked_tree.root(), &honest_proof).is_err());
}

// ---------------------------------------------------------------------------
// Cross-check against tlog_tiles (a port of Go's sumdb/tlog)
// ---------------------------------------------------------------------------

/// Go-layout stored hashes (see `tlog_tiles::stored_hash_index`).
struct GoStorage(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for GoStorage {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        if indexes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(tlog_tiles::Error::IndexesOutOfOrder);
        }
        indexes.iter().map(|&i| self.0.get(usize::try_from(i).unwrap()).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

fn go(h: &Hash) -> tlog_tiles::Hash {
    tlog_tiles::Hash(*h)
}

fn go_vec(hs: &[Hash]) -> Vec<tlog_tiles::Hash> {
    hs.iter().map(go).collect()
}

/// Stores the first `n` fixture entries the way Go's tlog does, checking that
/// each record's stored hashes are exactly the subtrees our compact range
/// reports when the same leaf is appended.
fn go_storage(n: u64) -> GoStorage {
    let mut store = GoStorage(Vec::new());
    let mut range = CompactRange::new();
    for i in 0..n {
        assert_eq!(tlog_tiles::stored_hash_index(0, i), store.0.len() as u64);
        let data = entry(i);
        assert_eq!(tlog_tiles::record_hash(&data).0, leaf_hash(&data), "record hash {i}");
        let stored = tlog_tiles::stored_hashes(i, &data, &store).unwrap();
        let mut visited = Vec::new();
        range.append(leaf_hash(&data), |height, index, h| visited.push((height, index, *h)));
        assert_eq!(visited.len(), stored.len(), "subtrees completed by leaf {i}");
        for (k, ((height, index, h), s)) in visited.iter().zip(&stored).enumerate() {
            assert_eq!(*height as usize, k);
            assert_eq!(tlog_tiles::stored_hash_index(*height, *index), store.0.len() as u64 + k as u64);
            assert_eq!(h, &s.0, "stored hash {k} of leaf {i}");
        }
        store.0.extend(stored);
    }
    assert_eq!(store.0.len() as u64, tlog_tiles::stored_hash_count(n));
    store
}

#[test]
fn cross_check_roots_and_inclusion_with_go_tlog() {
    let fx = Fixture::new();
    let store = go_storage(CROSS_CHECK_SIZE);
    assert_eq!(tlog_tiles::tree_hash(0, &store).unwrap().0, empty_root());
    for n in 1..=CROSS_CHECK_SIZE {
        let head = fx.root(n);
        assert_eq!(tlog_tiles::tree_hash(n, &store).unwrap().0, head, "tree hash {n}");
        for i in 0..n {
            let ours = inclusion_proof(&fx.prefix(n), i, n).unwrap();
            let theirs = tlog_tiles::prove_record(n, i, &store).unwrap();
            assert_eq!(go_vec(&ours), theirs, "record proof ({i}, {n})");
            let ours_go = go_vec(&ours);
            assert!(tlog_tiles::check_record(&ours_go, n, go(&head), i, go(&fx.leaf(i))).is_ok(), "check_record ({i}, {n})");
            // And Go's verifier refuses the mistakes ours refuses.
            if let Some(first) = ours.first() {
                let mut bad = ours_go.clone();
                bad[0] = go(&flip(first, 100));
                assert!(tlog_tiles::check_record(&bad, n, go(&head), i, go(&fx.leaf(i))).is_err());
            }
        }
    }
}

#[test]
fn cross_check_consistency_with_go_tlog() {
    let fx = Fixture::new();
    let store = go_storage(CROSS_CHECK_SIZE);
    for n in 1..=CROSS_CHECK_SIZE {
        // Go refuses an old size of 0; ours gives the empty proof.
        assert!(tlog_tiles::prove_tree(n, 0, &store).is_err());
        assert_eq!(consistency_proof(&fx.prefix(n), 0, n).unwrap(), Vec::<Hash>::new());
        for m in 1..=n {
            let ours = consistency_proof(&fx.prefix(n), m, n).unwrap();
            let theirs = tlog_tiles::prove_tree(n, m, &store).unwrap();
            assert_eq!(go_vec(&ours), theirs, "tree proof ({m}, {n})");
            let ours_go = go_vec(&ours);
            assert!(tlog_tiles::check_tree(&ours_go, n, go(&fx.root(n)), m, go(&fx.root(m))).is_ok(), "check_tree ({m}, {n})");
            // Go's proofs verify with ours too (the same bytes, but through
            // our verifier's independent arithmetic).
            let theirs_ours: Vec<Hash> = theirs.iter().map(|h| h.0).collect();
            assert_eq!(verify_consistency(m, n, &fx.root(m), &fx.root(n), &theirs_ours), Ok(()));
        }
    }
}

// ---------------------------------------------------------------------------
// Compact ranges
// ---------------------------------------------------------------------------

#[test]
fn compact_range_matches_memory_tree_at_every_size() {
    let fx = Fixture::new();
    let mut range = CompactRange::new();
    let mut seen = BTreeSet::new();
    for i in 0..=MAX_SIZE {
        let mut visited = Vec::new();
        range.append(fx.leaf(i), |height, index, h| visited.push((height, index, *h)));
        let size = i + 1;

        // Leaf first, then each newly completed parent, bottom up.
        let completed = i.trailing_ones() as u8;
        let expected: Vec<(u8, u64)> = (0..=completed).map(|h| (h, i >> h)).collect();
        let got: Vec<(u8, u64)> = visited.iter().map(|&(h, idx, _)| (h, idx)).collect();
        assert_eq!(got, expected, "subtrees completed by leaf {i}");
        for &(height, index, h) in &visited {
            assert_eq!(Ok(h), fx.tree.subtree(height, index), "hash of subtree ({height}, {index})");
            assert!(seen.insert((height, index)), "subtree ({height}, {index}) reported twice");
        }

        assert_eq!(range.size(), size);
        assert_eq!(range.root(), fx.root(size), "compact range root at size {size}");

        // The right edge: one complete subtree per set bit, highest first.
        let mut start = 0;
        let mut expected_nodes = Vec::new();
        for height in (0..64u8).rev() {
            if size >> height & 1 == 1 {
                expected_nodes.push(fx.tree.subtree(height, start >> height).unwrap());
                start += 1 << height;
            }
        }
        assert_eq!(range.nodes(), &expected_nodes[..], "right edge at size {size}");
    }

    // Every complete subtree of the final tree was reported exactly once.
    let size = MAX_SIZE + 1;
    let all: BTreeSet<(u8, u64)> = (0..9u8).flat_map(|h| (0..size >> h).map(move |idx| (h, idx))).collect();
    assert_eq!(seen, all);
}

#[test]
fn compact_range_from_parts() {
    let fx = Fixture::new();
    let mut full = CompactRange::new();
    for i in 0..=MAX_SIZE {
        let parts = CompactRange::from_parts(full.size(), full.nodes().to_vec()).unwrap();
        assert_eq!(parts, full);
        // A resumed range carries on exactly like the original.
        let mut resumed = parts;
        resumed.append(fx.leaf(i), |_, _, _| {});
        full.append(fx.leaf(i), |_, _, _| {});
        assert_eq!(resumed, full);
        assert_eq!(resumed.root(), fx.root(i + 1));
    }
    let nodes = full.nodes().to_vec();
    // `from_parts` wants exactly one node per set bit of the size.
    for size in 0..2 * MAX_SIZE {
        let ok = size.count_ones() as usize == nodes.len();
        assert_eq!(CompactRange::from_parts(size, nodes.clone()).is_some(), ok, "size {size}");
    }
    assert_eq!(CompactRange::from_parts(full.size(), nodes[1..].to_vec()), None);
    assert_eq!(CompactRange::from_parts(0, vec![]), Some(CompactRange::new()));
    assert_eq!(CompactRange::from_parts(0, vec![[0; 32]]), None);
}
