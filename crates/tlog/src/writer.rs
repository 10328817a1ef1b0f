//! The sequencer's view of the log: the right edge of the tree and the
//! partial tiles, and the group commit that extends them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;

use zkaudit_merkle::{CompactRange, Hash, SubtreeSource};
use zkaudit_note::{Checkpoint, Note, SigningKey};

use crate::durable::{rename_durably, write_all_durably};
use crate::layout::{collect_stored_hash, hashes_at_level, partial_dirs_in, TileId, TILE_WIDTH};
use crate::store::{parse_hash_tile, read_tile_bytes, TileStore, CHECKPOINT_FILE};
use crate::{Error, Result};
use zkaudit_verify::bundle::{push_entry, split_bundle};

/// Bytes of tiles buffered before they are handed to the flusher
/// mid-batch. Files beyond the checkpoint are invisible, so flushing early
/// is safe.
const FLUSH_BYTES: usize = 8 << 20;

/// Flushes of [`FLUSH_BYTES`] queued for the flusher at most, which bounds
/// the memory a large batch holds.
const FLUSHES_IN_FLIGHT: usize = 4;

/// A block of entries ready to be sequenced, packed into one buffer in
/// the entry-bundle encoding of C2SP tlog-tiles (each entry as a
/// big-endian `u16` length and its bytes), with each entry's RFC 9162
/// §2.1.1 leaf hash, `SHA-256(0x00 ‖ entry)`, computed by
/// [`Leaves::push`] on whichever thread builds the block. One allocation
/// per block, not per entry, crosses to the sequencer, and a dropped
/// block's buffers are kept for the next ones.
#[derive(Clone, Debug)]
pub struct Leaves {
    encoded: Vec<u8>,
    hashes: Vec<Hash>,
}

/// The emptied buffers of dropped blocks, taken by [`Leaves::new`]. A
/// block is built on one thread and dropped on another (the
/// sequencer's), so through the allocator every block of a large append
/// was memory it had just returned to the kernel, and faulting its pages
/// in again took 5% of `log append`'s CPU (perf; `docs/benchmarks.md`,
/// issue 19). At most [`SPARE_BLOCKS`] are kept.
static SPARE: Mutex<Vec<Spare>> = Mutex::new(Vec::new());

/// Emptied blocks kept in [`SPARE`] at most: about as many as a streamed
/// append has in flight (parsing, queued, sequencing), each typically
/// 1 MiB of entries and 100 KiB of hashes.
const SPARE_BLOCKS: usize = 16;

/// A block's buffers, emptied.
struct Spare {
    encoded: Vec<u8>,
    hashes: Vec<Hash>,
}

impl Default for Leaves {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Leaves {
    fn drop(&mut self) {
        if self.encoded.capacity() == 0 {
            return;
        }
        let (mut encoded, mut hashes) = (mem::take(&mut self.encoded), mem::take(&mut self.hashes));
        encoded.clear();
        hashes.clear();
        if let Ok(mut spare) = SPARE.lock() {
            if spare.len() < SPARE_BLOCKS {
                spare.push(Spare { encoded, hashes });
            }
        }
    }
}

impl Leaves {
    /// An empty block, in the buffers of a dropped one where there is one.
    pub fn new() -> Self {
        match SPARE.lock().ok().and_then(|mut spare| spare.pop()) {
            Some(Spare { encoded, hashes }) => Leaves { encoded, hashes },
            None => Leaves { encoded: Vec::new(), hashes: Vec::new() },
        }
    }

    /// Hashes `entry` and adds it to the block.
    ///
    /// # Errors
    /// [`Error::EntryTooLarge`] (its position in the block; nothing
    /// added) for an entry over 65,535 bytes, the tlog-tiles limit.
    pub fn push(&mut self, entry: &[u8]) -> Result<()> {
        if entry.len() > usize::from(u16::MAX) {
            return Err(Error::EntryTooLarge { position: self.len(), len: entry.len() });
        }
        push_entry(&mut self.encoded, entry);
        self.hashes.push(zkaudit_merkle::leaf_hash(entry));
        Ok(())
    }

    /// Number of entries in the block.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the block holds no entry.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Moves the entries from position `at` on (all of them if `at` is
    /// past the end) into a new block.
    pub fn split_off(&mut self, at: usize) -> Leaves {
        if at >= self.len() {
            return Leaves::new();
        }
        let offset = self.entries().take(at).map(|(e, _)| e.len()).sum();
        Leaves { encoded: self.encoded.split_off(offset), hashes: self.hashes.split_off(at) }
    }

    /// Each entry in its bundle encoding (length prefix included) with
    /// its leaf hash, in order.
    fn entries(&self) -> impl Iterator<Item = (&[u8], Hash)> {
        let mut rest = self.encoded.as_slice();
        self.hashes.iter().map(move |&hash| {
            // `push` wrote a two-byte length before each entry.
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let (entry, tail) = rest.split_at(2 + len);
            rest = tail;
            (entry, hash)
        })
    }
}

/// In-memory state for the tree at the last checkpoint.
struct State {
    range: CompactRange,
    /// Encoded entries of the incomplete entry bundle.
    bundle: Vec<u8>,
    bundle_len: u64,
    /// Hashes of the incomplete tile at each level.
    levels: Vec<Vec<Hash>>,
}

impl State {
    /// Loads the state for `checkpoint` from the tiles on disk, and checks
    /// that the tiles reproduce the checkpoint's root.
    fn load(dir: &Path, cp: &Checkpoint) -> Result<State> {
        let size = cp.size;
        let store = TileStore::new(dir, size);
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for h in (0..64u8).rev() {
            if size >> h & 1 == 1 {
                nodes.push(store.subtree(h, start >> h)?);
                start += 1 << h;
            }
        }
        let range = CompactRange::from_parts(size, nodes).ok_or_else(|| Error::corrupt(CHECKPOINT_FILE, "inconsistent right edge"))?;
        if range.root() != cp.root {
            return Err(Error::corrupt(CHECKPOINT_FILE, "root hash does not match the stored tiles"));
        }
        let bundle_len = size % TILE_WIDTH;
        let mut bundle = Vec::new();
        if bundle_len > 0 {
            let id = TileId::entries(size / TILE_WIDTH, bundle_len as u16);
            bundle = read_tile_bytes(dir, id)?;
            split_bundle(&bundle, bundle_len as usize).map_err(|e| Error::corrupt(id.path(), e.to_string()))?;
        }
        let mut levels = Vec::new();
        for level in 0u8.. {
            let n = hashes_at_level(size, level);
            if n == 0 {
                break;
            }
            let w = n % TILE_WIDTH;
            levels.push(if w == 0 {
                Vec::new()
            } else {
                let id = TileId::hashes(level, n / TILE_WIDTH, w as u16);
                parse_hash_tile(id, &read_tile_bytes(dir, id)?)?
            });
        }
        Ok(State { range, bundle, bundle_len, levels })
    }
}

/// Owns appends to one log directory: a cross-process lock, the signing key
/// and the cached state of the last checkpoint it saw.
pub(crate) struct Writer {
    dir: PathBuf,
    key: SigningKey,
    lock: File,
    /// The checkpoint note the state belongs to; `None` forces a reload.
    seen: Option<(Vec<u8>, State)>,
    /// Removes redundant partial tiles off the append path (`None` once dropped).
    janitor: Option<(mpsc::Sender<Sweep>, JoinHandle<()>)>,
}

/// The `<N>.p` directories of tiles a commit completed, all under one
/// parent directory (`tile/0/x001`, say), to be removed: partial tiles of
/// full tiles are redundant, since clients fall back to the full tile.
///
/// Most of them never existed (a batch that fills whole tiles writes no
/// partials), so the parent is listed once instead of each name being
/// looked up: on ext4 every lookup of a missing name scans the directory,
/// and one lookup per completed tile (7,841 for 10^6 entries) kept
/// `log append` waiting for its janitor after the commit (0.46 s under
/// `perf trace`).
struct Sweep {
    parent: PathBuf,
    names: BTreeSet<OsString>,
}

impl Sweep {
    /// The sweeps that remove the partial versions of `completed` in `dir`.
    fn of(dir: &Path, completed: &[TileId]) -> Vec<Sweep> {
        let mut by_parent: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
        for id in completed {
            let (parent, name) = id.partial_dir_parts();
            by_parent.entry(dir.join(parent)).or_default().insert(name.into());
        }
        by_parent.into_iter().map(|(parent, names)| Sweep { parent, names }).collect()
    }

    /// Removes what exists of the directories. A failed or unfinished
    /// removal loses nothing: the files are only garbage.
    fn run(self) {
        let present = partial_dirs_in(&self.parent);
        for name in self.names.iter().filter(|name| present.contains(*name)) {
            let _ = std::fs::remove_dir_all(self.parent.join(name));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.janitor.take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// Result of one group commit: the checkpoint that covers it.
pub(crate) struct Committed {
    pub first_index: u64,
    pub tree_size: u64,
    pub root: Hash,
}

impl Writer {
    pub fn new(dir: &Path, key: SigningKey, lock: File) -> Self {
        let (tx, rx) = mpsc::channel::<Sweep>();
        // Unlinking is slow on some file systems (synchronous discard,
        // inode bookkeeping), so it is kept off the append path.
        let janitor = std::thread::Builder::new().name("zkaudit-janitor".into()).spawn(move || rx.into_iter().for_each(Sweep::run)).ok().map(|h| (tx, h));
        Self { dir: dir.to_owned(), key, lock, seen: None, janitor }
    }

    /// Appends the blocks of `leaves` as one atomic batch: tiles and bundles are written
    /// and fsynced, then the checkpoint is replaced, unless `complete()`
    /// says after the last leaf that the batch was abandoned
    /// ([`Error::Abandoned`], nothing committed). Holds the log's file lock
    /// throughout, so processes sharing the directory are serialised.
    pub fn commit(&mut self, leaves: impl Iterator<Item = Leaves>, complete: impl FnOnce() -> bool) -> Result<Committed> {
        self.lock.lock().map_err(Error::io(self.dir.join(crate::LOCK_FILE)))?;
        let res = self.commit_locked(leaves, complete);
        if res.is_err() {
            // Whatever was written is beyond the checkpoint; reload next time.
            self.seen = None;
        }
        let unlocked = self.lock.unlock().map_err(Error::io(self.dir.join(crate::LOCK_FILE)));
        let c = res?;
        unlocked?;
        Ok(c)
    }

    fn commit_locked(&mut self, leaves: impl Iterator<Item = Leaves>, complete: impl FnOnce() -> bool) -> Result<Committed> {
        let cp_path = self.dir.join(CHECKPOINT_FILE);
        let cp_bytes = std::fs::read(&cp_path).map_err(Error::io(&cp_path))?;
        let mut state = match self.seen.take() {
            Some((bytes, state)) if bytes == cp_bytes => state,
            _ => {
                // Another process appended, or first use: trust only what the
                // current checkpoint covers.
                let note = Note::parse(&cp_bytes)?;
                note.verify(&self.key.verifier())?;
                State::load(&self.dir, &Checkpoint::parse(note.text())?)?
            }
        };
        let first_index = state.range.size();
        let mut completed: Vec<TileId> = Vec::new();
        // Full bundles and tiles are written mid-batch by a flusher thread
        // while sequencing goes on (files beyond the checkpoint are
        // invisible); the right edge and the checkpoint wait for it below.
        let mut files = std::thread::scope(|s| -> Result<Vec<(PathBuf, Vec<u8>)>> {
            let (tx, rx) = mpsc::sync_channel::<Vec<(PathBuf, Vec<u8>)>>(FLUSHES_IN_FLIGHT);
            let flusher = s.spawn(move || rx.iter().try_for_each(|files| write_all_durably(&files)));
            let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
            let mut pending_bytes = 0usize;
            'blocks: for block in leaves {
                for (encoded, hash) in block.entries() {
                    let index = state.range.size();
                    state.bundle.extend_from_slice(encoded);
                    state.bundle_len += 1;
                    if state.bundle_len == TILE_WIDTH {
                        let id = TileId::entries(index / TILE_WIDTH, TILE_WIDTH as u16);
                        pending_bytes += state.bundle.len();
                        // The next bundle is likely as long: sized once,
                        // it is not copied over as it grows.
                        let next = Vec::with_capacity(state.bundle.len() + state.bundle.len() / 8);
                        files.push((self.dir.join(id.path()), mem::replace(&mut state.bundle, next)));
                        completed.push(id);
                        state.bundle_len = 0;
                    }
                    let levels = &mut state.levels;
                    state.range.append(hash, |height, idx, h| {
                        if let Some(level) = collect_stored_hash(levels, height, h) {
                            let id = TileId::hashes(level as u8, idx / TILE_WIDTH, TILE_WIDTH as u16);
                            let bytes = mem::take(&mut levels[level]).concat();
                            pending_bytes += bytes.len();
                            files.push((self.dir.join(id.path()), bytes));
                            completed.push(id);
                        }
                    });
                    if pending_bytes >= FLUSH_BYTES {
                        pending_bytes = 0;
                        // A closed channel means the flusher failed; its error
                        // is returned below.
                        if tx.send(mem::take(&mut files)).is_err() {
                            break 'blocks;
                        }
                    }
                }
            }
            drop(tx);
            flusher.join().unwrap_or_else(|_| Err(Error::CommitFailed("the flushing thread panicked".into())))?;
            Ok(files)
        })?;
        if !complete() {
            return Err(Error::Abandoned);
        }
        // The right edge: the partial bundle and each level's partial tile,
        // where this batch changed them.
        let size = state.range.size();
        if size != first_index && state.bundle_len > 0 {
            let id = TileId::entries(size / TILE_WIDTH, state.bundle_len as u16);
            files.push((self.dir.join(id.path()), state.bundle.clone()));
        }
        for (level, hashes) in state.levels.iter().enumerate() {
            let n = hashes_at_level(size, level as u8);
            if n != hashes_at_level(first_index, level as u8) && !hashes.is_empty() {
                let id = TileId::hashes(level as u8, n / TILE_WIDTH, hashes.len() as u16);
                files.push((self.dir.join(id.path()), hashes.concat()));
            }
        }
        let root = state.range.root();
        let note_bytes = Note::sign(&Checkpoint::new(self.key.name(), size, root).to_text(), &self.key)?.to_bytes();
        // The new checkpoint goes to a temporary file that is synced together
        // with the tiles; only once all of them are durable is it renamed
        // over the checkpoint.
        let cp_tmp = cp_path.with_extension("tmp");
        files.push((cp_tmp.clone(), note_bytes.clone()));
        write_all_durably(&files)?;
        rename_durably(&cp_tmp, &cp_path)?;
        self.seen = Some((note_bytes, state));
        for sweep in Sweep::of(&self.dir, &completed) {
            match &self.janitor {
                Some((tx, _)) => {
                    let _ = tx.send(sweep);
                }
                None => sweep.run(),
            }
        }
        Ok(Committed { first_index, tree_size: size, root })
    }
}

#[cfg(test)]
mod tests {
    /// A commit that completes tiles removes their `<N>.p` directories,
    /// with whatever an interrupted append left in them, and nothing else.
    #[test]
    fn completed_tiles_lose_their_partials() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        crate::init(dir, "test.zkaudit.invalid/log").unwrap();
        let log = crate::Log::open(dir).unwrap();
        let append = |from: u64, to: u64| log.append((from..to).map(|i| format!("{{\"entry\":{i}}}").into_bytes()).collect()).unwrap();
        append(0, 10);
        append(10, 40);
        assert!(dir.join("tile/entries/000.p/10").is_file() && dir.join("tile/0/000.p/40").is_file());
        // Beyond the checkpoint, as if a later append had been interrupted.
        let stray = dir.join("tile/entries/001.p/200");
        std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
        std::fs::write(&stray, b"never covered by a checkpoint").unwrap();
        append(40, 300);
        append(300, 600);
        drop(log);
        for gone in ["tile/entries/000.p", "tile/0/000.p", "tile/entries/001.p", "tile/0/001.p"] {
            assert!(!dir.join(gone).exists(), "{gone} should have been removed");
        }
        for kept in ["tile/entries/000", "tile/entries/001", "tile/entries/002.p/88", "tile/0/002.p/88", "tile/1/000.p/1", "tile/1/000.p/2"] {
            assert!(dir.join(kept).is_file(), "{kept} should exist");
        }
        crate::fsck::verify(dir, &crate::read_vkey(dir).unwrap(), |_| {}).unwrap();
    }
}
