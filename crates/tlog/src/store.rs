//! Reading tiles, bundles and the checkpoint from a log directory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use zkaudit_merkle::{node_hash, Hash, SubtreeSource, HASH_SIZE};

use crate::layout::{bundle_for_entry, tile_for_hash, TileId, TILE_HEIGHT, TILE_WIDTH};
use crate::{Error, Result};
use zkaudit_verify::bundle::{split_bundle, BundleError};

/// File name of the checkpoint inside the log directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";

/// Reads a file, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// The entries of bundle `id` in `data`: `id.width` of them, or, where a
/// full bundle stands in for a partial one (tlog-tiles allows serving it),
/// all 256, whose first `id.width` are the same entries.
pub(crate) fn bundle_entries(data: &[u8], id: TileId) -> std::result::Result<Vec<&[u8]>, BundleError> {
    split_bundle(data, usize::from(id.width)).or_else(|_| split_bundle(data, TILE_WIDTH as usize))
}

/// Bundles a scan reads ahead of the entries it hands out.
const READ_AHEAD: usize = 8;

/// The bundles that hold the entries `from..to` of a tree of `size`, each
/// with the entries wanted from it.
fn bundles_of(from: u64, to: u64, size: u64) -> Vec<(TileId, Range<u64>)> {
    let mut out = Vec::new();
    let mut index = from;
    while index < to {
        let id = bundle_for_entry(index, size);
        let end = to.min(id.index * TILE_WIDTH + u64::from(id.width));
        out.push((id, index..end));
        index = end;
    }
    out
}

/// Calls `f` for the entries `wanted` of bundle `id`, whose bytes are `data`.
fn each_entry(id: TileId, data: &[u8], wanted: Range<u64>, f: &mut impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    let entries = bundle_entries(data, id).map_err(|e| Error::corrupt(id.path(), e.to_string()))?;
    let base = id.index * TILE_WIDTH;
    wanted.into_iter().try_for_each(|i| f(i, entries[(i - base) as usize]))
}

/// Bundle `id` as a scan reads it: a full one directly into `buf` where
/// the file system allows, others (and full ones elsewhere) as
/// [`read_tile_bytes`] does. Returns the buffer and where in it the bytes
/// are.
fn read_scanned(dir: &Path, id: TileId, mut buf: Vec<u8>) -> Result<(Vec<u8>, Range<usize>)> {
    if id.is_full() {
        let path = dir.join(id.path());
        if let Some(at) = crate::direct::read(&path, &mut buf).map_err(Error::io(&path))? {
            return Ok((buf, at));
        }
    }
    let data = read_tile_bytes(dir, id)?;
    let len = data.len();
    Ok((data, 0..len))
}

/// Reads the bytes of a tile or bundle. A partial tile that is gone because
/// the full tile has since been written is served from the full tile's
/// prefix, as tlog-tiles clients do.
pub(crate) fn read_tile_bytes(dir: &Path, id: TileId) -> Result<Vec<u8>> {
    if let Some(b) = read_optional(&dir.join(id.path()))? {
        return Ok(b);
    }
    if !id.is_full() {
        if let Some(b) = read_optional(&dir.join(id.full_path()))? {
            return Ok(b);
        }
    }
    Err(Error::corrupt(id.path(), "missing"))
}

/// Decodes a hash tile of `id.width` hashes.
pub(crate) fn parse_hash_tile(id: TileId, data: &[u8]) -> Result<Vec<Hash>> {
    let want = usize::from(id.width) * HASH_SIZE;
    // A full tile may stand in for a partial one: use its prefix.
    let data = if data.len() == TILE_WIDTH as usize * HASH_SIZE && !id.is_full() { &data[..want] } else { data };
    if data.len() != want {
        return Err(Error::corrupt(id.path(), format!("expected {want} bytes ({} hashes), found {}", id.width, data.len())));
    }
    Ok(data.chunks_exact(HASH_SIZE).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

/// Root of a perfect tree over `hashes` (length a power of two).
pub(crate) fn perfect_root(hashes: &[Hash]) -> Hash {
    if hashes.len() == 1 {
        return hashes[0];
    }
    let (l, r) = hashes.split_at(hashes.len() / 2);
    node_hash(&perfect_root(l), &perfect_root(r))
}

/// Read access to the tiles of a log as of one tree size, with a small
/// per-reader tile cache. Implements [`SubtreeSource`] for proofs.
pub struct TileStore {
    dir: PathBuf,
    size: u64,
    cache: RefCell<HashMap<TileId, Rc<Vec<Hash>>>>,
}

impl TileStore {
    /// A reader for the tree of `size` leaves stored in `dir`. `size` must
    /// not exceed the size of the checkpoint on disk.
    pub fn new(dir: &Path, size: u64) -> Self {
        Self { dir: dir.to_owned(), size, cache: RefCell::default() }
    }

    /// Tree size this reader serves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of one hash tile.
    pub fn tile(&self, id: TileId) -> Result<Rc<Vec<Hash>>> {
        if let Some(t) = self.cache.borrow().get(&id) {
            return Ok(t.clone());
        }
        let t = Rc::new(parse_hash_tile(id, &read_tile_bytes(&self.dir, id)?)?);
        self.cache.borrow_mut().insert(id, t.clone());
        Ok(t)
    }

    /// Entry `index` (its bytes, without the length prefix).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>> {
        if index >= self.size {
            return Err(Error::IndexOutOfRange { index, size: self.size });
        }
        let mut out = Vec::new();
        self.for_each_entry(index, index + 1, |_, e| {
            out = e.to_vec();
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f(index, entry)` for every entry in `from..to` in order,
    /// reading each entry bundle once. In a scan of at least a bundle's
    /// worth of entries, a second thread reads the bundles ahead, full ones
    /// around the page cache as large commits write them (`direct.rs`).
    /// Errors if `to` exceeds the tree size, if a bundle is missing or
    /// malformed, or with `f`'s first error.
    pub fn for_each_entry(&self, from: u64, to: u64, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        if to > self.size {
            return Err(Error::IndexOutOfRange { index: to - 1, size: self.size });
        }
        let bundles = bundles_of(from, to, self.size);
        if to.saturating_sub(from) < TILE_WIDTH {
            return bundles.into_iter().try_for_each(|(id, wanted)| each_entry(id, &read_tile_bytes(&self.dir, id)?, wanted, &mut f));
        }
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(TileId, Range<u64>, Vec<u8>, Range<usize>)>>(READ_AHEAD);
            // Buffers the scan is done with go back to the reader, which
            // zeroed a fresh one for every bundle.
            let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let dir = &self.dir;
            s.spawn(move || {
                for (id, wanted) in bundles {
                    let buf = spare_rx.try_recv().unwrap_or_default();
                    let read = read_scanned(dir, id, buf).map(|(buf, at)| (id, wanted, buf, at));
                    let failed = read.is_err();
                    // A closed channel: the scan stopped early.
                    if tx.send(read).is_err() || failed {
                        break;
                    }
                }
            });
            // Returning drops the receiver, which stops the reader.
            rx.into_iter().try_for_each(|read| {
                let (id, wanted, buf, at) = read?;
                each_entry(id, &buf[at], wanted, &mut f)?;
                // A stopped reader no longer takes buffers back.
                let _ = spare_tx.send(buf);
                Ok(())
            })
        })
    }

    /// Calls `f(index, entry)` for each of `indices` (ascending, each below
    /// the tree size), reading each entry bundle once. Errors as
    /// [`TileStore::for_each_entry`].
    pub fn entries_at(&self, indices: &[u64], mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let mut rest = indices;
        while let Some(&first) = rest.first() {
            // The run of indices that share `first`'s bundle.
            let bundle_end = (first / TILE_WIDTH + 1) * TILE_WIDTH;
            let n = rest.iter().take_while(|&&i| i < bundle_end).count();
            let (run, tail) = rest.split_at(n);
            let last = run[n - 1];
            let mut want = run.iter().peekable();
            self.for_each_entry(first, last + 1, |i, e| {
                if want.next_if_eq(&&i).is_some() {
                    f(i, e)?;
                }
                Ok(())
            })?;
            rest = tail;
        }
        Ok(())
    }
}

impl SubtreeSource for TileStore {
    type Error = Error;

    fn subtree(&self, height: u8, index: u64) -> Result<Hash> {
        let level = height / TILE_HEIGHT;
        let rest = height % TILE_HEIGHT;
        let first = index << rest;
        let count = 1usize << rest;
        let id = tile_for_hash(level, first, self.size);
        let tile = self.tile(id)?;
        let off = (first % TILE_WIDTH) as usize;
        let hashes = tile.get(off..off + count).ok_or_else(|| Error::corrupt(id.path(), format!("too short for subtree at height {height} index {index}")))?;
        Ok(perfect_root(hashes))
    }
}
