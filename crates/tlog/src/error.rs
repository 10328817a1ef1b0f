//! Ledger errors.

use std::path::PathBuf;

use zkaudit_note::{CheckpointError, KeyError, NoteError};

/// Everything that can go wrong opening, reading or appending to a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `init` was pointed at a directory that already holds a log.
    #[error("{} already holds a log (found its checkpoint)", .0.display())]
    AlreadyExists(PathBuf),
    /// The directory has no checkpoint.
    #[error("{} is not a zkaudit log (no checkpoint); create one with `zkaudit log init`", .0.display())]
    NotALog(PathBuf),
    /// The checkpoint note is malformed.
    #[error("checkpoint: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint body is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A key file is malformed.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// The key does not belong to this log.
    #[error("key {key} does not match the log origin {origin:?}")]
    WrongKey {
        /// Key name.
        key: String,
        /// Log origin.
        origin: String,
    },
    /// An entry is longer than a tlog-tiles bundle can hold.
    #[error("entry {position} of the batch is {len} bytes; the tlog-tiles limit is 65535")]
    EntryTooLarge {
        /// Position within the submitted batch.
        position: usize,
        /// Entry length in bytes.
        len: usize,
    },
    /// A streamed append was dropped before it was finished; nothing of it
    /// was committed.
    #[error("the append was abandoned before its last entry; nothing of it was committed")]
    Abandoned,
    /// A leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Requested index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A tree size beyond the current checkpoint, or sizes in the wrong order.
    #[error("tree size {requested} is not available: {reason}")]
    BadSize {
        /// Requested size.
        requested: u64,
        /// Why.
        reason: String,
    },
    /// Stored data is inconsistent with the checkpoint.
    #[error("{path}: {reason}")]
    Corrupt {
        /// Path of the tile, bundle or checkpoint, relative to the log directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A request to a served log failed or was refused.
    #[error("{url}: {reason}")]
    Fetch {
        /// The URL requested.
        url: String,
        /// What went wrong (the transport error, or the status and body).
        reason: String,
    },
    /// A group commit failed; the batch was not appended.
    #[error("append failed, nothing from this batch was acknowledged: {0}")]
    CommitFailed(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn corrupt(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
