//! Durable file writes: data, then fsync, then the directory entries.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{direct, Error, Result};

/// Most threads used to write and fsync the files of one batch in parallel.
const SYNC_THREADS: usize = 8;

/// Files in one call from which they are made durable together, by one
/// `syncfs(2)` of their file system, instead of an `fdatasync(2)` each.
/// Below it (the usual small commit: a bundle, a few tiles, the
/// checkpoint) per-file syncs wait for nothing but these files.
const SYNCFS_FILES: usize = 64;

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
/// all of them and their directory entries durable before returning: by an
/// `fdatasync(2)` per file, or for 64 files or more on one
/// file system, by one `syncfs(2)` of it.
///
/// The log writes its bundles and tiles with it, in place, not renamed:
/// they are only ever read at tree sizes that a later checkpoint covers,
/// and the checkpoint is replaced only after this function returns.
/// Missing directories are created.
///
/// # Errors
/// [`Error::Io`] naming the path that could not be created, written or
/// synced; some of the files may have been written.
pub fn write_all_durably(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for (path, _) in files {
        if let Some(parent) = path.parent() {
            create_dirs(parent, &mut dirs)?;
            dirs.insert(parent.to_owned());
        }
    }
    // Many files on one file system are synced together: one syncfs
    // writes them back in large requests, where an fdatasync each costs a
    // round trip to the device per file. The descriptor is opened before
    // anything is written because syncfs reports the writeback errors of
    // the file system since then (Linux >= 5.8). It also waits for other
    // writers' dirty data on that file system, which is why small
    // commits keep per-file syncs.
    let whole_fs = match dirs.first() {
        Some(first) if files.len() >= SYNCFS_FILES && one_file_system(&dirs)? => Some((first, File::open(first).map_err(Error::io(first))?)),
        _ => None,
    };
    // Each thread creates, writes and (unless syncfs follows) fsyncs its
    // share of the files, so that file creation (CPU-bound in the kernel)
    // runs on every core and overlaps with other threads' fsyncs;
    // concurrent fsyncs also share journal commits.
    let chunk = files.len().div_ceil(SYNC_THREADS).max(1);
    in_parallel(files.chunks(chunk), |(path, bytes)| {
        if whole_fs.is_some() && bytes.len() >= direct::MIN_BYTES && direct::write(path, bytes).map_err(Error::io(path))? {
            return Ok(());
        }
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(Error::io(path))?;
        f.write_all(bytes).and_then(|()| if whole_fs.is_some() { Ok(()) } else { f.sync_data() }).map_err(Error::io(path))
    })?;
    if let Some((dir, fd)) = whole_fs {
        // syncfs writes back the file system's metadata too, the new
        // directory entries included: no directory needs its own fsync.
        return rustix::fs::syncfs(&fd).map_err(|e| Error::io(dir)(e.into()));
    }
    // The directories' new entries: mostly already committed by the file
    // fsyncs above, which makes these cheap.
    let dirs: Vec<PathBuf> = dirs.into_iter().collect();
    in_parallel(dirs.chunks(1), |d| sync_dir(d))?;
    Ok(())
}

/// Whether the directories `dirs` all lie on one file system.
fn one_file_system(dirs: &BTreeSet<PathBuf>) -> Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let mut devices = dirs.iter().map(|d| std::fs::metadata(d).map(|m| m.dev()).map_err(Error::io(d)));
    let Some(first) = devices.next().transpose()? else { return Ok(false) };
    for dev in devices {
        if dev? != first {
            return Ok(false);
        }
    }
    Ok(true)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::{one_file_system, write_all_durably, SYNCFS_FILES};

    #[test]
    fn small_and_large_batches_are_written_whole() {
        let tmp = tempfile::tempdir().unwrap();
        for n in [3, SYNCFS_FILES + 5] {
            let files: Vec<(PathBuf, Vec<u8>)> =
                (0..n).map(|i| (tmp.path().join(format!("b{n}/d{}/f{i}", i % 3)), format!("file {i} of {n}").repeat(i + 1).into_bytes())).collect();
            write_all_durably(&files).unwrap();
            for (path, bytes) in &files {
                assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
            }
        }
    }

    #[test]
    fn syncfs_is_used_only_within_one_file_system() {
        let tmp = tempfile::tempdir().unwrap();
        let one: BTreeSet<PathBuf> = [tmp.path().to_owned(), tmp.path().parent().unwrap().to_owned()].into();
        assert!(one_file_system(&one).unwrap());
        // /proc is always a file system of its own.
        let two: BTreeSet<PathBuf> = [tmp.path().to_owned(), PathBuf::from("/proc")].into();
        assert!(!one_file_system(&two).unwrap());
        assert!(!one_file_system(&BTreeSet::new()).unwrap());
    }
}
