//! `zkaudit-verify` for the browser: a WebAssembly module with a C ABI and
//! no JavaScript glue of its own (the dashboard's `verify.js` calls it).
//!
//! It owns only the marshalling between JavaScript and
//! [`zkaudit_verify`]: the checks themselves are that crate's, the same code
//! the CLI runs. It must not decide which key is trusted; the page passes
//! it the key the user pinned (or the server's, and says so).
//!
//! Calling convention: the page writes its inputs into buffers from
//! [`zk_alloc`], calls [`zk_verify_entry`], reads the answer (UTF-8 text at
//! [`zk_result_ptr`], [`zk_result_len`] bytes) and frees what it allocated
//! with [`zk_free`]. The answer's first line is `ok` or `fail`; see
//! [`zk_verify_entry`] for the rest.

use std::cell::RefCell;

use zkaudit_merkle::{leaf_hash, Hash};
use zkaudit_note::VerifierKey;
use zkaudit_verify::bundle::split_bundle;
use zkaudit_verify::{check_inclusion, InclusionProof};

thread_local! {
    static RESULT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Allocates `len` bytes (at least 1) for the page to write an input into.
#[no_mangle]
pub extern "C" fn zk_alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len.max(1));
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// Frees a buffer from [`zk_alloc`] of the same `len`.
///
/// # Safety
/// `ptr` must come from `zk_alloc(len)` and not be freed twice.
#[no_mangle]
pub unsafe extern "C" fn zk_free(ptr: *mut u8, len: usize) {
    // SAFETY: the caller passes a pointer and capacity from `zk_alloc`.
    drop(unsafe { Vec::from_raw_parts(ptr, 0, len.max(1)) });
}

/// Where the last answer starts.
#[no_mangle]
pub extern "C" fn zk_result_ptr() -> *const u8 {
    RESULT.with(|r| r.borrow().as_ptr())
}

/// Length of the last answer in bytes.
#[no_mangle]
pub extern "C" fn zk_result_len() -> usize {
    RESULT.with(|r| r.borrow().len())
}

/// # Safety
/// `(ptr, len)` must be a live buffer from `zk_alloc` the page wrote.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: see the function's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Verifies the entry at `leaf_index` as the page fetched it: entry number
/// `position` of an entry bundle of `count` entries (the tile file's bytes,
/// C2SP tlog-tiles), against the signed checkpoint `note`, which must
/// verify with `vkey` (signed-note verifier key text), through the audit
/// path `hashes` (`32·k` bytes, deepest sibling first) to the root `root`
/// (32 bytes) of a tree of `tree_size` leaves (RFC 9162 §2.1.3.2). The
/// leaf hash is computed here from the entry; nothing the server says
/// about it is trusted.
///
/// Returns 1 when it verifies, else 0. The answer (see the crate docs) is
/// `ok`, then the tree size, the origin, the key name, the key ID (8 hex
/// digits), the root (64 hex digits) and the leaf hash, one per line, then
/// the entry's bytes; or `fail`, then the reason.
///
/// # Safety
/// Each `(ptr, len)` must be a live buffer from [`zk_alloc`].
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn zk_verify_entry(
    note: *const u8,
    note_len: usize,
    vkey: *const u8,
    vkey_len: usize,
    bundle: *const u8,
    bundle_len: usize,
    count: u32,
    position: u32,
    leaf_index: u64,
    tree_size: u64,
    root: *const u8,
    hashes: *const u8,
    hashes_len: usize,
) -> u32 {
    // SAFETY: the page passes buffers it allocated with `zk_alloc` and wrote.
    let (note, vkey, bundle, root, hashes) =
        unsafe { (slice(note, note_len), slice(vkey, vkey_len), slice(bundle, bundle_len), slice(root, 32), slice(hashes, hashes_len)) };
    let answer = verify(note, vkey, bundle, count as usize, position as usize, leaf_index, tree_size, root, hashes);
    let ok = answer.is_ok();
    let text = answer.unwrap_or_else(|e| format!("fail\n{e}").into_bytes());
    RESULT.with(|r| *r.borrow_mut() = text);
    u32::from(ok)
}

#[allow(clippy::too_many_arguments)]
fn verify(note: &[u8], vkey: &[u8], bundle: &[u8], count: usize, position: usize, leaf_index: u64, tree_size: u64, root: &[u8], hashes: &[u8]) -> Result<Vec<u8>, String> {
    let vkey = std::str::from_utf8(vkey).map_err(|_| "the verifier key is not UTF-8".to_owned())?;
    let vkey = VerifierKey::parse(vkey).map_err(|e| format!("verifier key: {e}"))?;
    let entries = split_bundle(bundle, count).map_err(|e| format!("entry bundle: {e}"))?;
    let entry = *entries.get(position).ok_or_else(|| format!("entry bundle: no entry {position} among {count}"))?;
    let root: Hash = root.try_into().map_err(|_| "root hash: not 32 bytes".to_owned())?;
    if hashes.len() % 32 != 0 {
        return Err(format!("proof: the audit path is {} bytes, not a multiple of 32", hashes.len()));
    }
    let hashes: Vec<Hash> = hashes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
    let leaf = leaf_hash(entry);
    let proof = InclusionProof { leaf_index, tree_size, leaf_hash: leaf, hashes, root_hash: root };
    // The proof's leaf hash is the entry's own (above): no entry to compare.
    let ok = check_inclusion(&proof, note, &vkey, None).map_err(|e| e.to_string())?;
    let mut out = format!("ok\n{}\n{}\n{}\n{:08x}\n{}\n{}\n", ok.tree_size, ok.origin, ok.key_name, ok.key_id, hex::encode(ok.root), hex::encode(leaf)).into_bytes();
    out.extend_from_slice(entry);
    Ok(out)
}
