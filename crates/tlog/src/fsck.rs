//! fsck: recompute the whole log from its entries and compare.

use std::path::Path;

use zkaudit_merkle::{leaf_hash, CompactRange, Hash, HASH_SIZE};
use zkaudit_note::{Checkpoint, Note, VerifierKey};

use crate::bundle::{split_bundle, BundleError};
use crate::layout::{bundle_for_entry, hashes_at_level, TileId, TILE_HEIGHT, TILE_WIDTH};
use crate::store::{read_optional, CHECKPOINT_FILE};
use crate::Error;

/// A verified log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsckReport {
    /// Tree size of the checkpoint.
    pub size: u64,
    /// Root hash, recomputed from the entries and equal to the checkpoint's.
    pub root: Hash,
    /// Number of tile and bundle files checked.
    pub files: u64,
}

/// The first problem fsck found.
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// The checkpoint is missing, malformed, or its signature is invalid.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An entry does not hash to what the log committed to.
    #[error("leaf index {index}: entry in {bundle} does not match the log (recomputed root differs from the checkpoint)")]
    BadLeaf {
        /// Leaf index of the first bad entry.
        index: u64,
        /// Entry bundle that holds it.
        bundle: String,
    },
    /// An entry bundle cannot be parsed at a given leaf.
    #[error("{path}: leaf index {index}: {reason}")]
    BadBundle {
        /// Bundle path.
        path: String,
        /// Leaf index where parsing failed.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tile or bundle file is missing, has the wrong length or wrong hashes.
    #[error("{path}: {reason}")]
    BadTile {
        /// Tile path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The entries are consistent with the tiles but not with the checkpoint.
    #[error("recomputed root {recomputed} does not match the checkpoint root {expected}")]
    RootMismatch {
        /// Hex root recomputed from the entries.
        recomputed: String,
        /// Hex root in the checkpoint.
        expected: String,
    },
    /// A file could not be read.
    #[error(transparent)]
    Io(#[from] Error),
}

/// State of the comparison as fsck streams the entries.
#[derive(Default)]
struct Findings {
    /// First leaf whose recomputed hash differs from `tile/0`: (index, bundle).
    leaf: Option<(u64, String)>,
    /// First tile that is missing, malformed or holds a wrong hash.
    tile: Option<(String, String)>,
    files: u64,
}

impl Findings {
    /// Compares the recomputed hashes of one tile with the file on disk.
    fn check_tile(&mut self, dir: &Path, id: TileId, computed: &[Hash]) -> Result<(), Error> {
        self.files += 1;
        let path = id.path();
        let Some(stored) = read_optional(&dir.join(&path))? else {
            self.tile.get_or_insert((path, "missing".into()));
            return Ok(());
        };
        if stored.len() != computed.len() * HASH_SIZE {
            let reason = format!("expected {} bytes, found {}", computed.len() * HASH_SIZE, stored.len());
            self.tile.get_or_insert((path, reason));
            return Ok(());
        }
        if let Some(pos) = stored.chunks_exact(HASH_SIZE).zip(computed).position(|(s, c)| s != c) {
            let pos = pos as u64;
            if id.level == Some(0) {
                let index = id.index * TILE_WIDTH + pos;
                self.leaf.get_or_insert((index, bundle_for_entry(index, u64::MAX).full_path()));
            }
            let reason = format!("hash {pos} differs from the one recomputed from the entries");
            self.tile.get_or_insert((path, reason));
        }
        Ok(())
    }
}

/// Verifies the log in `dir` against `key`: the checkpoint's signature, every
/// entry bundle, every hash tile (full and partial at the checkpoint's size),
/// and the root. Returns the first problem, naming the leaf index or path.
///
/// `progress(done)` is called with the number of entries checked so far.
pub fn verify(dir: &Path, key: &VerifierKey, mut progress: impl FnMut(u64)) -> Result<FsckReport, FsckError> {
    let cp_err = |e: &dyn std::fmt::Display| FsckError::Checkpoint(e.to_string());
    let cp_bytes = read_optional(&dir.join(CHECKPOINT_FILE))?.ok_or_else(|| cp_err(&"missing"))?;
    let note = Note::parse(&cp_bytes).map_err(|e| cp_err(&e))?;
    let cp = Checkpoint::parse(note.text()).map_err(|e| cp_err(&e))?;
    if key.name() != cp.origin {
        return Err(cp_err(&format_args!("origin {:?} does not match key name {:?}", cp.origin, key.name())));
    }
    note.verify(key).map_err(|e| cp_err(&e))?;

    let size = cp.size;
    let mut found = Findings::default();
    let mut range = CompactRange::new();
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    let mut index = 0u64;
    while index < size {
        let id = bundle_for_entry(index, size);
        let path = id.path();
        found.files += 1;
        let data = read_optional(&dir.join(&path))?.ok_or_else(|| FsckError::BadTile { path: path.clone(), reason: "missing".into() })?;
        let entries = split_bundle(&data, usize::from(id.width)).map_err(|e| {
            let (at, reason) = match e {
                BundleError::Truncated { entry } => (entry as u64, "bundle is truncated or has a bad length prefix here".to_owned()),
                BundleError::Trailing { extra } => (u64::from(id.width) - 1, format!("{extra} unexpected bytes after this last entry")),
            };
            FsckError::BadBundle { path: path.clone(), index: id.index * TILE_WIDTH + at, reason }
        })?;
        for e in entries {
            let mut completed: Vec<(u8, u64)> = Vec::new();
            range.append(leaf_hash(e), |height, idx, h| {
                if height % TILE_HEIGHT != 0 {
                    return;
                }
                let level = usize::from(height / TILE_HEIGHT);
                if levels.len() <= level {
                    levels.resize_with(level + 1, Vec::new);
                }
                levels[level].push(*h);
                if levels[level].len() as u64 == TILE_WIDTH {
                    completed.push((level as u8, idx / TILE_WIDTH));
                }
            });
            for (level, tile_index) in completed {
                let hashes = std::mem::take(&mut levels[usize::from(level)]);
                found.check_tile(dir, TileId::hashes(level, tile_index, TILE_WIDTH as u16), &hashes)?;
            }
            index += 1;
        }
        progress(index);
    }
    for (level, hashes) in levels.iter().enumerate() {
        if !hashes.is_empty() {
            let level = level as u8;
            let id = TileId::hashes(level, hashes_at_level(size, level) / TILE_WIDTH, hashes.len() as u16);
            found.check_tile(dir, id, hashes)?;
        }
    }
    let root = range.root();
    if root != cp.root {
        if let Some((index, bundle)) = found.leaf {
            return Err(FsckError::BadLeaf { index, bundle });
        }
        if let Some((path, reason)) = found.tile {
            return Err(FsckError::BadTile { path, reason });
        }
        return Err(FsckError::RootMismatch { recomputed: hex::encode(root), expected: hex::encode(cp.root) });
    }
    if let Some((path, reason)) = found.tile {
        return Err(FsckError::BadTile { path, reason });
    }
    Ok(FsckReport { size, root, files: found.files })
}
