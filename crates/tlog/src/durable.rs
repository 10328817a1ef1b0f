//! Durable file writes: data, then fsync, then the directory entries.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Most threads used to write and fsync the files of one batch in parallel.
const SYNC_THREADS: usize = 8;

/// Creates `dir` and any missing parents, recording in `to_sync` every
/// directory whose entries changed.
fn create_dirs(dir: &Path, to_sync: &mut BTreeSet<PathBuf>) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent, to_sync)?;
        to_sync.insert(parent.to_owned());
    }
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(dir)(e)),
    }
}

/// Fsyncs a directory so that entries created in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

/// Writes each `(path, bytes)` (replacing any previous content) and makes
/// all of them and their directory entries durable before returning.
///
/// Files are written in place, not renamed: they are only ever read at
/// tree sizes that a later checkpoint covers, and the checkpoint is
/// replaced only after this function returns.
pub(crate) fn write_all_durably(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for (path, _) in files {
        if let Some(parent) = path.parent() {
            create_dirs(parent, &mut dirs)?;
            dirs.insert(parent.to_owned());
        }
    }
    // Each thread creates, writes and fsyncs its share of the files, so that
    // file creation (CPU-bound in the kernel) runs on every core and
    // overlaps with other threads' fsyncs; concurrent fsyncs also share
    // journal commits.
    let chunk = files.len().div_ceil(SYNC_THREADS).max(1);
    in_parallel(files.chunks(chunk), |(path, bytes)| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(Error::io(path))?;
        f.write_all(bytes).and_then(|()| f.sync_data()).map_err(Error::io(path))
    })?;
    // The directories' new entries: mostly already committed by the file
    // fsyncs above, which makes these cheap.
    let dirs: Vec<PathBuf> = dirs.into_iter().collect();
    in_parallel(dirs.chunks(1), |d| sync_dir(d))?;
    Ok(())
}

/// Runs `op` on every item, one scoped thread per chunk; returns the first error.
fn in_parallel<'a, T: Sync + 'a>(chunks: impl Iterator<Item = &'a [T]>, op: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
    let op = &op;
    std::thread::scope(|s| {
        let workers: Vec<_> = chunks.map(|part| s.spawn(move || part.iter().try_for_each(op))).collect();
        workers.into_iter().try_for_each(|w| w.join().unwrap_or_else(|_| Err(Error::CommitFailed("fsync thread panicked".into()))))
    })
}

/// Renames a durable file over `to` and fsyncs the directory, making the
/// replacement atomic and durable.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(Error::io(to))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// Atomically replaces `path` with `bytes`: write a temporary file, fsync
/// it, rename it over `path`, fsync the directory.
pub(crate) fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write_all_durably(&[(tmp.clone(), bytes.to_vec())])?;
    rename_durably(&tmp, path)
}
