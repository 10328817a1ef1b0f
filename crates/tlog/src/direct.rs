//! Bulk file I/O around the page cache (`O_DIRECT`), for the entry bundles
//! of large commits and for scans of whole bundles.
//!
//! A large append writes hundreds of megabytes that are read again, if
//! ever, by one scan (the index catching up). Through the page cache each
//! byte is copied twice and every page is newly allocated; on virtual
//! machines whose host reclaims the guest's free memory, touching a fresh
//! page costs more than the device write itself (`docs/benchmarks.md`,
//! issue 19). Direct I/O moves the bytes between an aligned buffer and the
//! device. Where a file system refuses `O_DIRECT` (`EINVAL`; tmpfs before
//! Linux 6.6, for one), both functions say so and the caller uses ordinary
//! I/O.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Alignment of direct I/O buffers, offsets and lengths, in bytes (the
/// largest logical block size in common use).
const BLOCK: usize = 4096;

/// Files from this many bytes are written directly by a bulk commit;
/// smaller ones (most hash tiles, the checkpoint) go through the cache.
pub(crate) const MIN_BYTES: usize = 32 << 10;

/// Whether `e` is a file system refusing direct I/O (`EINVAL`: no
/// `O_DIRECT` at all, or a block size above [`BLOCK`]), which the callers
/// answer with ordinary I/O rather than an error.
fn refused(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

/// `open(2)` with `O_DIRECT`; `None` where the file system refuses it.
fn open(options: &mut OpenOptions, path: &Path) -> std::io::Result<Option<File>> {
    match options.custom_flags(rustix::fs::OFlags::DIRECT.bits().cast_signed()).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if refused(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `len` bytes from a [`BLOCK`]-aligned offset of `buf`, which grows
/// to hold them (rounded up to whole blocks).
fn aligned(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    let padded = len.next_multiple_of(BLOCK);
    if buf.len() < padded + BLOCK {
        buf.resize(padded + BLOCK, 0);
    }
    let at = buf.as_ptr().align_offset(BLOCK);
    &mut buf[at..at + padded]
}

/// Creates or truncates `path` and writes `bytes` to it directly: whole
/// blocks from an aligned copy, the last one padded, then the file cut to
/// its length. Not synced (the caller syncs the batch). `Ok(false)` where
/// the file system refuses `O_DIRECT`, at the open or at the first write:
/// the caller then writes the file the ordinary way, truncating it.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let Some(mut f) = open(OpenOptions::new().write(true).create(true).truncate(true), path)? else { return Ok(false) };
    // Only the alignment and the padding are zeroed, not the whole buffer;
    // the capacity is never exceeded, so the buffer does not move.
    let padded = bytes.len().next_multiple_of(BLOCK);
    let mut buf: Vec<u8> = Vec::with_capacity(padded + BLOCK);
    let at = buf.as_ptr().align_offset(BLOCK);
    buf.resize(at, 0);
    buf.extend_from_slice(bytes);
    buf.resize(at + padded, 0);
    match f.write_all(&buf[at..]) {
        Err(e) if refused(&e) => return Ok(false),
        written => written?,
    }
    f.set_len(bytes.len() as u64)?;
    Ok(true)
}

/// Reads all of `path` directly into `buf`, returning where in `buf` its
/// bytes are; `Ok(None)` where the file is missing or the file system
/// refuses `O_DIRECT`, at the open or at a read (the caller reads it the
/// ordinary way, which reports a missing file as it should).
///
/// # Errors
/// Reading fails, or the file is shorter than its size said.
pub(crate) fn read(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<Option<Range<usize>>> {
    let mut f = match open(OpenOptions::new().read(true), path) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = usize::try_from(f.metadata()?.len()).map_err(std::io::Error::other)?;
    let block = aligned(buf, len);
    let mut filled = 0;
    // Every read but the last returns whole blocks; a short one is the end.
    while filled < block.len() {
        let n = match f.read(&mut block[filled..]) {
            Err(e) if refused(&e) => return Ok(None),
            read => read?,
        };
        filled += n;
        if n == 0 || filled % BLOCK != 0 {
            break;
        }
    }
    if filled < len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("{filled} bytes of {len}")));
    }
    let at = buf.as_ptr().align_offset(BLOCK);
    Ok(Some(at..at + len))
}

#[cfg(test)]
mod tests {
    /// Direct writes and reads round-trip files of every size around the
    /// block boundaries, replacing longer content; on a file system that
    /// refuses `O_DIRECT` both say so and touch nothing.
    #[test]
    fn direct_io_round_trips_or_declines() {
        let tmp = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        for len in [0, 1, 4095, 4096, 4097, 70_001, 3 * 4096] {
            let path = tmp.path().join(format!("f{len}"));
            std::fs::write(&path, vec![7u8; 20_000]).unwrap();
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            if !super::write(&path, &bytes).unwrap() {
                // No O_DIRECT here: nothing was touched, reads decline too.
                assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 20_000]);
                assert_eq!(super::read(&path, &mut buf).unwrap(), None);
                continue;
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{len} bytes written directly");
            let range = super::read(&path, &mut buf).unwrap().unwrap();
            assert_eq!(&buf[range], &bytes[..], "{len} bytes read directly");
        }
        assert_eq!(super::read(&tmp.path().join("missing"), &mut buf).unwrap(), None);
    }
}
