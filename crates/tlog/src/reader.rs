//! Read-only access: checkpoint, entries and proofs.

use std::path::{Path, PathBuf};

use zkaudit_merkle::{consistency_proof, inclusion_proof, leaf_hash, root, Hash, ProofError};
use zkaudit_note::{Checkpoint, Note, VerifierKey};

use crate::store::{TileStore, CHECKPOINT_FILE};
use crate::{Error, Result};

pub use zkaudit_verify::InclusionProof;

/// An RFC 9162 §2.1.4 consistency proof with the values it binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// Proof hashes.
    pub hashes: Vec<Hash>,
    /// Root hash of the older tree.
    pub old_root: Hash,
    /// Root hash of the newer tree.
    pub new_root: Hash,
}

fn proof_err(e: ProofError<Error>) -> Error {
    match e {
        ProofError::Source(e) => e,
        ProofError::InvalidRequest(r) => Error::BadSize { requested: 0, reason: r.to_owned() },
    }
}

/// A read-only view of a log as of its checkpoint when opened.
///
/// Reading never takes the append lock, so it works while other processes
/// append; it sees the tree at the checkpoint it read.
pub struct LogReader {
    dir: PathBuf,
    note_bytes: Vec<u8>,
    note: Note,
    checkpoint: Checkpoint,
    store: TileStore,
}

impl LogReader {
    /// Opens `dir` and parses its checkpoint (signature not yet checked;
    /// see [`LogReader::verify_signature`]).
    pub fn open(dir: &Path) -> Result<Self> {
        let p = dir.join(CHECKPOINT_FILE);
        let note_bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotALog(dir.to_owned())),
            Err(e) => return Err(Error::io(&p)(e)),
        };
        let note = Note::parse(&note_bytes)?;
        let checkpoint = Checkpoint::parse(note.text())?;
        let store = TileStore::new(dir, checkpoint.size);
        Ok(Self { dir: dir.to_owned(), note_bytes, note, checkpoint, store })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file exactly as stored (signed note).
    pub fn checkpoint_note(&self) -> &[u8] {
        &self.note_bytes
    }

    /// The parsed checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Checks the checkpoint's signature against `key` and that the key is
    /// named after the checkpoint's origin.
    pub fn verify_signature(&self, key: &VerifierKey) -> Result<()> {
        verify_checkpoint(&self.note, &self.checkpoint, key)
    }

    /// Tree size of the checkpoint.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// Entry bytes at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>> {
        self.store.entry(index)
    }

    /// Calls `f(index, entry)` for every entry in `from..to` (`to` ≤ the
    /// checkpoint's size) in order, reading each entry bundle once.
    pub fn for_each_entry(&self, from: u64, to: u64, f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        self.store.for_each_entry(from, to, f)
    }

    /// Calls `f(index, entry)` for each of `indices` (ascending, each below
    /// the checkpoint's size), reading each entry bundle once.
    pub fn entries_at(&self, indices: &[u64], f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        self.store.entries_at(indices, f)
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(Error::BadSize { requested: size, reason: format!("the checkpoint's tree size is {}", self.size()) });
        }
        Ok(())
    }

    /// Root hash of the tree of the first `size` entries (`size` ≤ checkpoint size).
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        root(&self.store, size).map_err(proof_err)
    }

    /// Inclusion proof for entry `index` in the tree of `tree_size` entries
    /// (default: the checkpoint's size).
    pub fn inclusion(&self, index: u64, tree_size: Option<u64>) -> Result<InclusionProof> {
        let tree_size = tree_size.unwrap_or(self.size());
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(Error::IndexOutOfRange { index, size: tree_size });
        }
        let hashes = inclusion_proof(&self.store, index, tree_size).map_err(proof_err)?;
        Ok(InclusionProof { leaf_index: index, tree_size, leaf_hash: leaf_hash(&self.entry(index)?), hashes, root_hash: self.root_at(tree_size)? })
    }

    /// Consistency proof from `old` entries to `new` entries (default: the
    /// checkpoint's size).
    pub fn consistency(&self, old: u64, new: Option<u64>) -> Result<ConsistencyProof> {
        let new = new.unwrap_or(self.size());
        self.check_size(new)?;
        if old > new {
            return Err(Error::BadSize { requested: old, reason: format!("old size must not exceed new size {new}") });
        }
        Ok(ConsistencyProof {
            old_size: old,
            new_size: new,
            hashes: consistency_proof(&self.store, old, new).map_err(proof_err)?,
            old_root: self.root_at(old)?,
            new_root: self.root_at(new)?,
        })
    }
}

/// Checks that `key` is named after `checkpoint`'s origin and signed
/// `note` (the signed note `checkpoint` was parsed from).
pub(crate) fn verify_checkpoint(note: &Note, checkpoint: &Checkpoint, key: &VerifierKey) -> Result<()> {
    if key.name() != checkpoint.origin {
        return Err(Error::WrongKey { key: key.to_string(), origin: checkpoint.origin.clone() });
    }
    Ok(note.verify(key)?)
}
