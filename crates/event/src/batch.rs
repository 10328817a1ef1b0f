//! Reading a batch of events from JSON Lines.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use crate::event::{EventObject, MAX_ENTRY_BYTES};

/// How many malformed lines one [`BatchError`] reports at most.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// One malformed line: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// Name of the input (a file path, or `-` for standard input).
    pub source: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column within the line, when the JSON parser knows it.
    pub column: Option<usize>,
    /// Dotted path of the offending field (`metadata.x`, `parents[2]`), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(c) = self.column {
            write!(f, ":{c}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A batch that was rejected as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// One or more lines are malformed; at most [`MAX_REPORTED_ERRORS`] are
    /// listed, and `total` counts them all.
    #[error("{} malformed event line(s):\n{}", .total, .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Malformed {
        /// The first malformed lines, in input order.
        errors: Vec<LineError>,
        /// Number of malformed lines in the batch.
        total: usize,
    },
    /// The input could not be read.
    #[error("reading {source_name}: {error}")]
    Io {
        /// Name of the input.
        source_name: String,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
}

/// Whether a line holds only whitespace (skipped, as blank lines are).
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses one line into its entry bytes, written to `out`. The common case goes through the
/// one-pass fast path (`fast.rs`); whatever it leaves is parsed by
/// serde_json into an [`Event`](crate::Event) straight from the bytes
/// (serde_json checks the UTF-8 of the strings it reads); a bad line is
/// parsed again, as text, for the field path of its error (invalid UTF-8
/// is a bad line like any other, not a failed read).
fn parse_line(source: &str, line_no: usize, line: &[u8], buffers: &mut crate::fast::Buffers, out: &mut Vec<u8>) -> Result<(), LineError> {
    let err = |column, field: Option<String>, message: String| LineError { source: source.to_owned(), line: line_no, column, field, message };
    if crate::fast::write_entry(line, buffers, out).is_none() {
        let event = match serde_json::from_slice::<EventObject>(line) {
            Ok(EventObject(event)) => event,
            Err(_) => {
                return Err(match std::str::from_utf8(line) {
                    Ok(text) => explain(source, line_no, text),
                    Err(e) => err(Some(e.valid_up_to() + 1), None, "invalid UTF-8".to_owned()),
                })
            }
        };
        *out = event.canonical_bytes().map_err(|e| err(None, None, e.to_string()))?;
    }
    if out.len() > MAX_ENTRY_BYTES {
        return Err(err(None, None, format!("canonical entry is {} bytes; the tlog-tiles limit is {MAX_ENTRY_BYTES}", out.len())));
    }
    Ok(())
}

/// Why `line` is not an event: the parser's message with the line, column
/// and field path of the error.
fn explain(source: &str, line_no: usize, line: &str) -> LineError {
    let err = |column, field: Option<String>, message: String| LineError { source: source.to_owned(), line: line_no, column, field, message };
    let mut de = serde_json::Deserializer::from_str(line);
    let parsed: Result<EventObject, _> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // `.` is the top level and `?` a position serde_path_to_error lost
        // track of (a syntax error between members): neither names a field.
        let field = (path != "." && path != "?").then_some(path);
        // serde_json appends " at line L column C"; keep only the message, the
        // column is reported separately.
        let msg = inner.to_string();
        let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_owned();
        let column = (inner.column() > 0).then_some(inner.column());
        err(column, missing_field(&msg, field.as_deref()).or(field), msg)
    });
    match parsed.and_then(|_| de.end().map_err(|e| err(Some(e.column()), None, "trailing characters after the event".into()))) {
        Err(e) => e,
        // Unreachable: the same parse failed without path tracking.
        Ok(()) => err(None, None, "not a valid event".into()),
    }
}

/// serde reports a missing field as "missing field `x`" at the parent path;
/// name the field itself (`proof.image_id` when the parent is `proof`).
fn missing_field(msg: &str, parent: Option<&str>) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    let name = rest.split('`').next()?;
    Some(parent.map_or_else(|| name.to_owned(), |p| format!("{p}.{name}")))
}

/// Reads JSON Lines (one event per line; blank lines are skipped) and returns
/// each event's entry bytes (RFC 8785 canonical JSON), in input order.
///
/// The batch is all or nothing: if any line is malformed, the error lists
/// the first [`MAX_REPORTED_ERRORS`] bad lines with line, column and field.
/// `source` names the input in errors.
pub fn parse_jsonl<R: BufRead>(reader: R, source: &str) -> Result<Vec<Vec<u8>>, BatchError> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut total = 0;
    let (mut buffers, mut entry) = (crate::fast::Buffers::default(), Vec::new());
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|error| BatchError::Io { source_name: source.to_owned(), error })?;
        if is_blank(&line) {
            continue;
        }
        match parse_line(source, i + 1, &line, &mut buffers, &mut entry) {
            Ok(()) if errors.is_empty() => entries.push(entry.clone()),
            Ok(()) => {}
            Err(e) => {
                total += 1;
                if errors.len() < MAX_REPORTED_ERRORS {
                    errors.push(e);
                }
            }
        }
    }
    if total > 0 {
        return Err(BatchError::Malformed { errors, total });
    }
    Ok(entries)
}

/// Bytes of input handed to a parsing thread at a time (whole lines; a
/// longer line makes a longer block).
const BLOCK_BYTES: usize = 1 << 20;

/// A block of whole lines: its order in the input, and its bytes.
struct Block {
    seq: u64,
    bytes: Vec<u8>,
}

/// What a parsing thread made of one block. Its errors number lines from
/// the block's first (1); the input's order makes them absolute.
struct Parsed<B> {
    seq: u64,
    bytes: usize,
    /// Newlines in the block.
    lines: usize,
    entries: B,
    count: usize,
    errors: Vec<LineError>,
    bad: usize,
}

/// Reads JSON Lines like [`parse_jsonl`], streaming, on `threads` parsing
/// threads: each line is parsed into its entry bytes (RFC 8785 canonical
/// JSON), which `push` adds to the block `B` being built on the parsing
/// thread (about 1 MiB of input each; a refusal of `push` is that line's
/// error); `sink` then receives the blocks in input order, each with its
/// number of entries and the input bytes consumed so far. Only a few
/// blocks are in memory at once, whatever the input's size.
///
/// After the first malformed line `sink` is not called again, but the rest
/// of the input is still read so that the error lists the first
/// [`MAX_REPORTED_ERRORS`] bad lines and counts them all. `sink` returns
/// `false` to stop reading (the caller keeps its own reason); the count of
/// entries passed to `sink` is returned.
///
/// # Errors
/// [`BatchError::Malformed`] or [`BatchError::Io`].
pub fn parse_jsonl_parallel<R, B, P, E, S>(mut reader: R, source: &str, threads: usize, push: P, mut sink: S) -> Result<u64, BatchError>
where
    R: std::io::Read + Send,
    B: Default + Send,
    P: Fn(&mut B, &[u8]) -> Result<(), E> + Sync,
    E: fmt::Display,
    S: FnMut(B, usize, u64) -> bool,
{
    let threads = threads.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<Block>(threads * 2);
    let work_rx = Mutex::new(work_rx);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::sync_channel::<Parsed<B>>(threads * 2);
        let stop = &stop;
        // Parsed blocks' buffers go back to the reader, so that reading
        // fills memory already mapped instead of faulting in fresh pages.
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
        let reading = s.spawn(move || read_blocks(&mut reader, work_tx, &spare_rx, stop));
        let (work_rx, push) = (&work_rx, &push);
        for _ in 0..threads {
            let (done_tx, spare_tx) = (done_tx.clone(), spare_tx.clone());
            s.spawn(move || {
                // The lock is held only to take a block, not while parsing it.
                let next = || work_rx.lock().ok().and_then(|rx| rx.recv().ok());
                while let Some(block) = next() {
                    let parsed = parse_block(&block, source, push);
                    let _ = spare_tx.send(block.bytes);
                    if done_tx.send(parsed).is_err() {
                        break;
                    }
                }
            });
        }
        drop(spare_tx);
        drop(done_tx);

        let (mut next, mut waiting, mut consumed, mut count, mut lines_before) = (0u64, BTreeMap::new(), 0u64, 0u64, 0usize);
        let (mut errors, mut total) = (Vec::new(), 0usize);
        for parsed in done_rx.iter() {
            waiting.insert(parsed.seq, parsed);
            while let Some(p) = waiting.remove(&next) {
                next += 1;
                consumed += p.bytes as u64;
                total += p.bad;
                errors.extend(p.errors.into_iter().take(MAX_REPORTED_ERRORS - errors.len()).map(|e| LineError { line: lines_before + e.line, ..e }));
                lines_before += p.lines;
                if total == 0 && !stop.load(Ordering::Relaxed) {
                    count += p.count as u64;
                    if !sink(p.entries, p.count, consumed) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        let read = reading.join().unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked")));
        read.map_err(|error| BatchError::Io { source_name: source.to_owned(), error })?;
        if total > 0 {
            return Err(BatchError::Malformed { errors, total });
        }
        Ok(count)
    })
}

/// Splits the input into blocks of whole lines, numbering them, in buffers
/// taken from `spare` where it has one; stops early when `stop` is set.
fn read_blocks(reader: &mut impl std::io::Read, work: mpsc::SyncSender<Block>, spare: &mpsc::Receiver<Vec<u8>>, stop: &AtomicBool) -> std::io::Result<()> {
    use std::io::Read as _;
    let (mut seq, mut carry) = (0u64, Vec::new());
    loop {
        // A line longer than a block keeps growing in its own buffer.
        let mut buf = if carry.len() >= BLOCK_BYTES {
            std::mem::take(&mut carry)
        } else {
            let mut b = spare.try_recv().unwrap_or_default();
            b.clear();
            b.append(&mut carry);
            b
        };
        buf.reserve(BLOCK_BYTES);
        let n = reader.by_ref().take(BLOCK_BYTES as u64).read_to_end(&mut buf)?;
        if n == 0 && buf.is_empty() {
            return Ok(());
        }
        // Whole lines only: the tail after the last newline waits for more
        // input (or is the last line, at the end).
        if n > 0 {
            match memchr::memrchr(b'\n', &buf) {
                Some(end) => {
                    carry.extend_from_slice(&buf[end + 1..]);
                    buf.truncate(end + 1);
                }
                None => {
                    carry = buf;
                    continue;
                }
            }
        }
        if stop.load(Ordering::Relaxed) || work.send(Block { seq, bytes: buf }).is_err() {
            return Ok(());
        }
        seq += 1;
        if n == 0 {
            return Ok(());
        }
    }
}

fn parse_block<B: Default, E: fmt::Display>(block: &Block, source: &str, push: &impl Fn(&mut B, &[u8]) -> Result<(), E>) -> Parsed<B> {
    let mut p = Parsed { seq: block.seq, bytes: block.bytes.len(), lines: 0, entries: B::default(), count: 0, errors: Vec::new(), bad: 0 };
    let mut start = 0;
    let mut next_line = 1;
    let bytes = &block.bytes;
    let (mut buffers, mut entry) = (crate::fast::Buffers::default(), Vec::new());
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let (line, line_no) = (&bytes[start..end], next_line);
        p.lines += usize::from(end < bytes.len());
        start = end + 1;
        next_line += 1;
        if is_blank(line) {
            continue;
        }
        let pushed = parse_line(source, line_no, line, &mut buffers, &mut entry).and_then(|()| {
            if p.bad > 0 {
                return Ok(());
            }
            push(&mut p.entries, &entry).map_err(|e| LineError {
                source: source.to_owned(),
                line: line_no,
                column: None,
                field: None,
                message: e.to_string(),
            })?;
            p.count += 1;
            Ok(())
        });
        match pushed {
            Ok(()) => {}
            Err(e) => {
                p.bad += 1;
                if p.errors.len() < MAX_REPORTED_ERRORS {
                    p.errors.push(e);
                }
            }
        }
    }
    p
}
