//! fsck: recompute the whole log from its entries and compare.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::Path;

use zkaudit_merkle::{leaf_hash, CompactRange, Hash, HASH_SIZE};
use zkaudit_note::{Checkpoint, Note, VerifierKey};

use crate::layout::{bundle_for_entry, collect_stored_hash, hashes_at_level, partial_dirs_in, TileId, TILE_WIDTH};
use crate::store::{parse_hash_tile, read_optional, CHECKPOINT_FILE};
use crate::Error;
use zkaudit_verify::bundle::{split_bundle_prefix, BundleError};

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
struct Findings {
    /// Tree size being verified.
    size: u64,
    /// First leaf whose recomputed hash differs from `tile/0`: (index, bundle).
    leaf: Option<(u64, String)>,
    /// First tile that is missing, malformed or holds a wrong hash.
    tile: Option<(String, String)>,
    files: u64,
    /// The `<N>.p` names in each tile directory, listed once (see
    /// [`TileId::partial_dir_parts`]).
    partial_dirs: HashMap<String, HashSet<OsString>>,
}

impl Findings {
    fn tile_problem(&mut self, path: String, reason: String) {
        self.tile.get_or_insert((path, reason));
    }

    /// Compares the recomputed hashes of one tile with the file on disk, and
    /// with every older partial version of it that is still stored.
    fn check_tile(&mut self, dir: &Path, id: TileId, computed: &[Hash]) -> Result<(), Error> {
        self.files += 1;
        let path = id.path();
        let Some(stored) = read_optional(&dir.join(&path))? else {
            self.tile_problem(path, "missing".into());
            return Ok(());
        };
        if stored.len() != computed.len() * HASH_SIZE {
            self.tile_problem(path, format!("expected {} bytes, found {}", computed.len() * HASH_SIZE, stored.len()));
            return Ok(());
        }
        if let Some(pos) = stored.chunks_exact(HASH_SIZE).zip(computed).position(|(s, c)| s != c) {
            let pos = pos as u64;
            if id.level == Some(0) {
                let index = id.index * TILE_WIDTH + pos;
                self.leaf.get_or_insert((index, bundle_for_entry(index, self.size).path()));
            }
            self.tile_problem(path, format!("hash {pos} differs from the one recomputed from the entries"));
        }
        let computed_bytes = computed.concat();
        self.check_partials(dir, id, |w| computed_bytes.get(..w * HASH_SIZE))
    }

    /// Checks the older partial versions `<N>.p/<W>` kept beside a tile or
    /// bundle. `expected(w)` gives the bytes a version of width `w` must hold,
    /// or `None` when `w` is beyond the checkpoint (left by an interrupted
    /// append, and never served).
    fn check_partials<'a>(&mut self, dir: &Path, id: TileId, expected: impl Fn(usize) -> Option<&'a [u8]>) -> Result<(), Error> {
        let (parent, name) = id.partial_dir_parts();
        let listed = self.partial_dirs.entry(parent).or_insert_with_key(|parent| partial_dirs_in(&dir.join(parent)));
        if !listed.contains(OsStr::new(&name)) {
            return Ok(());
        }
        let pdir = dir.join(id.partial_dir());
        let Ok(listing) = std::fs::read_dir(&pdir) else {
            return Ok(());
        };
        let mut widths: Vec<u16> = listing
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u16>().ok())
            .filter(|&w| w > 0 && u64::from(w) < TILE_WIDTH && w != id.width)
            .collect();
        widths.sort_unstable();
        for w in widths {
            let Some(want) = expected(usize::from(w)) else { continue };
            let p = TileId { width: w, ..id };
            self.files += 1;
            match read_optional(&dir.join(p.path()))? {
                Some(got) if got == want => {}
                Some(_) => self.tile_problem(p.path(), "differs from the recomputed prefix of the tile".into()),
                None => {}
            }
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
    let mut found = Findings { size, leaf: None, tile: None, files: 0, partial_dirs: HashMap::new() };
    let mut range = CompactRange::new();
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    let mut index = 0u64;
    while index < size {
        let id = bundle_for_entry(index, size);
        let path = id.path();
        found.files += 1;
        let data = read_optional(&dir.join(&path))?.ok_or_else(|| FsckError::BadTile { path: path.clone(), reason: "missing".into() })?;
        let base = id.index * TILE_WIDTH;
        let (entries, bad) = split_bundle_prefix(&data, usize::from(id.width));
        if let Some(e) = bad {
            // The entry whose length prefix was damaged is the first one that
            // no longer matches its leaf hash in tile/0.
            let tile0 = TileId::hashes(0, id.index, id.width);
            let stored = read_optional(&dir.join(tile0.path()))?.and_then(|b| parse_hash_tile(tile0, &b).ok()).unwrap_or_default();
            if let Some(k) = entries.iter().zip(&stored).position(|(e, s)| leaf_hash(e) != *s) {
                return Err(FsckError::BadLeaf { index: base + k as u64, bundle: path });
            }
            let (at, reason) = match e {
                BundleError::Truncated { entry } => (entry as u64, "bundle is truncated or has a bad length prefix here".to_owned()),
                BundleError::Trailing { extra } => (u64::from(id.width) - 1, format!("{extra} unexpected bytes after this last entry")),
            };
            return Err(FsckError::BadBundle { path, index: base + at, reason });
        }
        let mut ends = Vec::with_capacity(entries.len());
        let mut end = 0;
        for e in &entries {
            end += 2 + e.len();
            ends.push(end);
        }
        found.check_partials(dir, id, |w| ends.get(w - 1).and_then(|&e| data.get(..e)))?;
        for e in entries {
            let mut completed: Vec<(usize, u64)> = Vec::new();
            range.append(leaf_hash(e), |height, idx, h| {
                if let Some(level) = collect_stored_hash(&mut levels, height, h) {
                    completed.push((level, idx / TILE_WIDTH));
                }
            });
            for (level, tile_index) in completed {
                let hashes = std::mem::take(&mut levels[level]);
                found.check_tile(dir, TileId::hashes(level as u8, tile_index, TILE_WIDTH as u16), &hashes)?;
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
