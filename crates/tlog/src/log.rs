//! Opening, creating and appending to a log directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use zkaudit_merkle::{empty_root, Hash};
use zkaudit_note::{Checkpoint, Note, SigningKey, VerifierKey};

use crate::dir::{read_signing_key, write_signing_key, LedgerDir};
use crate::durable::replace_atomically;
use crate::store::CHECKPOINT_FILE;
use crate::writer::{Leaves, Writer};
use crate::{Error, Result};

/// Entries merged into one group commit at most (whole requests are never split).
pub const MAX_GROUP_ENTRIES: usize = 1 << 16;

/// Acknowledgement of an appended batch; also its JSON shape (`zkaudit log
/// append --json`, `POST /v1/log/entries`):
/// `{first_index, count, tree_size, root_hash}`, the root as 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appended {
    /// Leaf index of the batch's first entry; the batch occupies
    /// `first_index .. first_index + count`.
    pub first_index: u64,
    /// Number of entries in the batch.
    pub count: u64,
    /// Tree size of the checkpoint that first covers the batch.
    pub tree_size: u64,
    /// Root hash of that checkpoint.
    #[serde(with = "crate::json::hex32")]
    pub root_hash: Hash,
}

/// Work for the sequencer.
enum Request {
    /// A batch, merged with others into one group commit.
    Batch { leaves: Leaves, reply: mpsc::Sender<Result<Appended>> },
    /// A streamed batch, committed on its own as its leaves arrive.
    Stream { blocks: mpsc::Receiver<Leaves>, complete: Arc<AtomicBool>, reply: mpsc::Sender<Result<Appended>> },
}

/// Blocks of leaves a stream may have queued for the sequencer.
const STREAM_QUEUE: usize = 4;

/// Creates a new, empty log in `dir` with a fresh Ed25519 key named
/// `origin`, and returns its verifier key.
///
/// Writes `private/log.key` (0600), `log.vkey`, and a signed checkpoint of
/// size 0. Errors if `dir` already holds a log or `origin` is not a valid
/// key name.
pub fn init(dir: &Path, origin: &str) -> Result<VerifierKey> {
    let key = SigningKey::generate(origin)?;
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let layout = LedgerDir::new(dir);
    let cp_path = layout.checkpoint();
    if cp_path.exists() {
        return Err(Error::AlreadyExists(dir.to_owned()));
    }
    layout.create_private_dir()?;
    write_signing_key(&layout.log_key(), &key)?;
    let vkey = key.verifier();
    replace_atomically(&layout.vkey(), format!("{vkey}\n").as_bytes())?;
    let note = Note::sign(&Checkpoint::new(origin, 0, empty_root()).to_text(), &key)?;
    replace_atomically(&cp_path, &note.to_bytes())?;
    Ok(vkey)
}

/// Reads the verifier key stored beside the log (`log.vkey`).
///
/// This key is only as trustworthy as the directory; auditors should pass
/// a key obtained independently.
pub fn read_vkey(dir: &Path) -> Result<VerifierKey> {
    let p = LedgerDir::new(dir).vkey();
    let s = std::fs::read_to_string(&p).map_err(Error::io(&p))?;
    Ok(VerifierKey::parse(&s)?)
}

/// A log opened for appending.
///
/// All appends from all threads go through one sequencer thread, which
/// merges concurrent batches into group commits; across processes, the
/// sequencers of each process take turns under an exclusive file lock. Leaf
/// indices are therefore dense, with no gaps or duplicates. `Log` is
/// `Send + Sync`: share it with an `Arc`.
pub struct Log {
    dir: PathBuf,
    verifier: VerifierKey,
    tx: Option<mpsc::Sender<Request>>,
    sequencer: Option<JoinHandle<()>>,
}

impl Log {
    /// Opens the log in `dir` for appending. Needs the private key.
    pub fn open(dir: &Path) -> Result<Log> {
        if !dir.join(CHECKPOINT_FILE).exists() {
            return Err(Error::NotALog(dir.to_owned()));
        }
        let layout = LedgerDir::new(dir);
        let key = read_signing_key(&layout.log_key())?;
        let lock_path = layout.lock();
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(Error::io(&lock_path))?;
        let verifier = key.verifier();
        let mut writer = Writer::new(dir, key, lock);
        let (tx, rx) = mpsc::channel::<Request>();
        let sequencer = std::thread::Builder::new().name("zkaudit-sequencer".into()).spawn(move || sequence(&mut writer, rx)).map_err(Error::io(dir))?;
        Ok(Log { dir: dir.to_owned(), verifier, tx: Some(tx), sequencer: Some(sequencer) })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Appends `entries` atomically and returns once they are durable and a
    /// signed checkpoint covering them is in place.
    ///
    /// Leaf hashes are computed on the calling thread. Errors with
    /// [`Error::EntryTooLarge`] (nothing appended) if any entry exceeds
    /// 65,535 bytes. An empty batch returns the current size without writing.
    pub fn append(&self, entries: Vec<Vec<u8>>) -> Result<Appended> {
        let mut leaves = Leaves::new();
        for e in &entries {
            leaves.push(e)?;
        }
        let (reply, rx) = mpsc::channel();
        self.send(Request::Batch { leaves, reply })?;
        rx.recv().map_err(|_| sequencer_gone())?
    }

    /// Starts one atomic append of any number of entries, fed in blocks
    /// with [`AppendStream::push`] and committed by
    /// [`AppendStream::finish`]; only a few blocks are held in memory at a
    /// time. The stream holds the sequencer and the log's file lock until
    /// it ends: other appends, of this process or another, wait for it (a
    /// thread holding a stream must not append otherwise).
    pub fn stream(&self) -> Result<AppendStream> {
        let (tx, blocks) = mpsc::sync_channel(STREAM_QUEUE);
        let (reply, rx) = mpsc::channel();
        let complete = Arc::new(AtomicBool::new(false));
        self.send(Request::Stream { blocks, complete: Arc::clone(&complete), reply })?;
        Ok(AppendStream { tx, complete, reply: rx, pushed: 0 })
    }

    fn send(&self, r: Request) -> Result<()> {
        self.tx.as_ref().ok_or_else(sequencer_gone)?.send(r).map_err(|_| sequencer_gone())
    }
}

fn sequencer_gone() -> Error {
    Error::CommitFailed("the sequencer has stopped".into())
}

/// One atomic append in progress (see [`Log::stream`]). Dropping it
/// without [`finish`](Self::finish) closes its channel with the append
/// not marked complete, which abandons it: nothing of it is committed.
pub struct AppendStream {
    tx: mpsc::SyncSender<Leaves>,
    complete: Arc<AtomicBool>,
    reply: mpsc::Receiver<Result<Appended>>,
    pushed: usize,
}

impl AppendStream {
    /// Adds `leaves` to the append, waiting while the sequencer is behind.
    /// If the commit has already failed, the leaves are dropped and
    /// [`finish`](Self::finish) says why.
    pub fn push(&mut self, leaves: Leaves) {
        self.pushed += leaves.len();
        let _ = self.tx.send(leaves);
    }

    /// Number of entries pushed so far.
    pub fn len(&self) -> usize {
        self.pushed
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Commits everything pushed as one batch and returns once it is
    /// durable under a signed checkpoint.
    ///
    /// # Errors
    /// Why the commit failed ([`Error::CommitFailed`] among others).
    pub fn finish(self) -> Result<Appended> {
        let AppendStream { tx, complete, reply, .. } = self;
        complete.store(true, Ordering::Release);
        drop(tx);
        reply.recv().map_err(|_| sequencer_gone())?
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.sequencer.take() {
            let _ = h.join();
        }
    }
}

/// The sequencer loop: take every waiting batch (whole batches, up to
/// [`MAX_GROUP_ENTRIES`] entries), commit them as one group, acknowledge
/// each; a stream is committed on its own.
fn sequence(writer: &mut Writer, rx: mpsc::Receiver<Request>) {
    let mut next = None;
    while let Some(first) = next.take().or_else(|| rx.recv().ok()) {
        let mut group = match first {
            Request::Stream { blocks, complete, reply } => {
                let committed = writer_commit(writer, blocks.iter(), || complete.load(Ordering::Acquire));
                let _ = reply.send(committed.map(|(c, count)| Appended { first_index: c.first_index, count, tree_size: c.tree_size, root_hash: c.root }));
                continue;
            }
            Request::Batch { leaves, reply } => vec![(leaves, reply)],
        };
        let mut n = group[0].0.len();
        while n < MAX_GROUP_ENTRIES {
            match rx.try_recv() {
                Ok(Request::Batch { leaves, reply }) => {
                    n += leaves.len();
                    group.push((leaves, reply));
                }
                Ok(stream) => {
                    next = Some(stream);
                    break;
                }
                Err(_) => break,
            }
        }
        let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let counts: Vec<u64> = batches.iter().map(|b| b.len() as u64).collect();
        match writer_commit(writer, batches.into_iter(), || true) {
            Ok((c, _)) => {
                let mut first_index = c.first_index;
                for (reply, count) in replies.into_iter().zip(counts) {
                    let _ = reply.send(Ok(Appended { first_index, count, tree_size: c.tree_size, root_hash: c.root }));
                    first_index += count;
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::CommitFailed(msg.clone())));
                }
            }
        }
    }
}

/// Commits the blocks of `leaves`, returning the commit and how many
/// leaves it took.
fn writer_commit(writer: &mut Writer, leaves: impl Iterator<Item = Leaves>, complete: impl FnOnce() -> bool) -> Result<(crate::writer::Committed, u64)> {
    let mut count = 0u64;
    let c = writer.commit(leaves.inspect(|b| count += b.len() as u64), complete)?;
    Ok((c, count))
}
