//! `zkaudit quarantine guard`: the kernel refuses to execute any file whose
//! SHA-256 is held in the quarantine store, and each refusal is recorded.
//!
//! It uses fanotify permission events (fanotify(7)): a `FAN_CLASS_CONTENT`
//! group marks whole mounts for `FAN_OPEN_EXEC_PERM`, so every `execve`
//! (and every `mmap` of a shared library opened for execution) on them
//! waits for the guard's `FAN_ALLOW` or `FAN_DENY`. The guard hashes the
//! file through the descriptor the kernel hands it (no path race), keeps
//! the digest per (device, inode, size, mtime, ctime) so a file is hashed
//! once until it changes, and answers every event, allowing when it cannot
//! decide (a guard that failed closed would stop the machine). The held
//! digests are re-read from the store when its directory changes and at
//! least every second, so a release takes effect without a restart.
//!
//! Needs CAP_SYS_ADMIN and a kernel built with
//! `CONFIG_FANOTIFY_ACCESS_PERMISSIONS`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::fanotify::{EventFFlags, Fanotify, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response};
use sha2::{Digest as _, Sha256};

use zkaudit_collect::{Destination, Observation, OcsfClass, Sink, SinkError, SinkOptions};
use zkaudit_event::{Digest, Layer};

use crate::quarantine::{Entry, QuarantineError, Store};

/// The collector name in the guard's events.
pub const COLLECTOR: &str = "quarantine-guard";

/// Why the guard could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// `fanotify_init` failed.
    #[error("fanotify_init: {0} (the guard needs CAP_SYS_ADMIN and a kernel with fanotify permission events)")]
    Init(Errno),
    /// A mount could not be marked.
    #[error("marking the mount of {path} for FAN_OPEN_EXEC_PERM: {source}")]
    Mark {
        /// The path whose mount was to be marked.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Reading events or answering them failed.
    #[error("fanotify {what}: {errno}")]
    Events {
        /// `poll`, `read` or `write`.
        what: &'static str,
        /// The error.
        errno: Errno,
    },
    /// The quarantine store could not be read.
    #[error(transparent)]
    Store(#[from] QuarantineError),
    /// The event sink.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// One refused execution.
#[derive(Debug)]
pub struct Denial<'a> {
    /// The process that tried to execute the file.
    pub pid: i32,
    /// The file's path, as the kernel names the descriptor (`/proc/self/fd`).
    pub path: PathBuf,
    /// The quarantine entry its digest matched.
    pub entry: &'a Entry,
}

impl Denial<'_> {
    /// Its `exec_denied` event (OCSF Process Activity, Launch, failed):
    /// `input` is the file's SHA-256 and `parents` name the download event
    /// of the quarantined artifact.
    pub fn observation(&self) -> Observation {
        Observation::new("exec_denied", Layer::Computation, OcsfClass::ProcessActivity, 1, "exec_denied")
            .input(self.entry.sha256)
            .parent(self.entry.event)
            .outcome(false)
            .field("process.pid", i64::from(self.pid))
            .field("process.executable", self.path.display().to_string())
            .field("file.hash.sha256", hex::encode(self.entry.sha256.0))
            .field("zkaudit.download.purl", self.entry.purl.as_str())
            .field("zkaudit.quarantine.reasons_held", self.entry.reasons.clone())
    }
}

/// What a guard run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GuardReport {
    /// Executions allowed.
    pub allowed: u64,
    /// Executions denied.
    pub denied: u64,
    /// Files hashed (the rest came from the cache).
    pub hashed: u64,
    /// Events allowed because the file could not be read or hashed.
    pub undecided: u64,
    /// Denials whose event could not be handed to the sink.
    pub unrecorded: u64,
}

/// Digests of files by identity: device, inode, size, mtime and ctime (ns).
type FileKey = (u64, u64, u64, i64, i64);

/// A fanotify group watching mounts for executions, and what it knows.
pub struct Guard {
    fan: Fanotify,
    store: Store,
    held: HashMap<[u8; 32], Entry>,
    store_mtime: Option<SystemTime>,
    read_at: Instant,
    cache: HashMap<FileKey, [u8; 32]>,
    report: GuardReport,
}

impl Guard {
    /// Starts watching executions on the mounts holding `mounts` against
    /// the digests held in `store`.
    ///
    /// # Errors
    /// [`GuardError::Init`], [`GuardError::Mark`] (naming the path), or
    /// [`GuardError::Store`].
    pub fn new(store: Store, mounts: &[PathBuf]) -> Result<Guard, GuardError> {
        let fan =
            Fanotify::init(InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK, EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE)
                .map_err(GuardError::Init)?;
        for path in mounts {
            let mark = |p: &Path| -> std::io::Result<()> {
                let dir = File::open(p)?;
                fan.mark(MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_MOUNT, MaskFlags::FAN_OPEN_EXEC_PERM, dir.as_fd(), None::<&Path>)?;
                Ok(())
            };
            mark(path).map_err(|source| GuardError::Mark { path: path.clone(), source })?;
        }
        let mut g =
            Guard { fan, store, held: HashMap::new(), store_mtime: None, read_at: Instant::now(), cache: HashMap::new(), report: GuardReport::default() };
        g.reload(true)?;
        Ok(g)
    }

    /// How many digests are held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Re-reads the held digests if the store's directory changed, or a
    /// second has passed, or `force`.
    fn reload(&mut self, force: bool) -> Result<(), GuardError> {
        let mtime = std::fs::metadata(self.store.dir()).and_then(|m| m.modified()).ok();
        if !force && mtime == self.store_mtime && self.read_at.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        self.held = self.store.list()?.into_iter().filter(|e| e.released.is_none()).map(|e| (e.sha256.0, e)).collect();
        self.store_mtime = mtime;
        self.read_at = Instant::now();
        Ok(())
    }

    /// The file's SHA-256, from the cache or read through `fd`.
    fn digest(&mut self, fd: BorrowedFd<'_>) -> std::io::Result<[u8; 32]> {
        let mut f = File::from(fd.try_clone_to_owned()?);
        let m = f.metadata()?;
        let key = (m.dev(), m.ino(), m.size(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.ctime() * 1_000_000_000 + m.ctime_nsec());
        if let Some(d) = self.cache.get(&key) {
            return Ok(*d);
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match f.read(&mut buf)? {
                0 => break,
                n => h.update(&buf[..n]),
            }
        }
        let d: [u8; 32] = h.finalize().into();
        self.report.hashed += 1;
        self.cache.insert(key, d);
        Ok(d)
    }

    /// Answers execution requests until `stop` is set (checked at least
    /// every 200 ms), calling `on_deny` for each refusal after the kernel
    /// has been answered; [`Guard::report`] counts what it did.
    ///
    /// # Errors
    /// [`GuardError::Events`] if the group itself fails; the store failing
    /// to re-read keeps the digests read last.
    pub fn run(&mut self, stop: &AtomicBool, mut on_deny: impl FnMut(&Denial<'_>)) -> Result<(), GuardError> {
        while !stop.load(Ordering::Relaxed) {
            let ready = {
                let mut fds = [PollFd::new(self.fan.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(200u16)) {
                    Ok(n) => n > 0,
                    Err(Errno::EINTR) => false,
                    Err(errno) => return Err(GuardError::Events { what: "poll", errno }),
                }
            };
            if !ready {
                continue;
            }
            if let Err(e) = self.reload(false) {
                eprintln!("quarantine guard: re-reading the store: {e}; keeping the {} digests read last", self.held.len());
            }
            let events = match self.fan.read_events() {
                Ok(ev) => ev,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(errno) => return Err(GuardError::Events { what: "read", errno }),
            };
            for ev in &events {
                let Some(fd) = ev.fd() else { continue };
                if !ev.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM) {
                    continue;
                }
                let held = match self.digest(fd) {
                    Ok(d) => self.held.get(&d).cloned(),
                    Err(e) => {
                        eprintln!("quarantine guard: pid {}: reading the file: {e}; allowed", ev.pid());
                        self.report.undecided += 1;
                        None
                    }
                };
                let answer = if held.is_some() { Response::FAN_DENY } else { Response::FAN_ALLOW };
                self.fan.write_response(FanotifyResponse::new(fd, answer)).map_err(|errno| GuardError::Events { what: "write", errno })?;
                match held {
                    Some(entry) => {
                        self.report.denied += 1;
                        let path = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd))).unwrap_or_default();
                        on_deny(&Denial { pid: ev.pid(), path, entry: &entry });
                    }
                    None => self.report.allowed += 1,
                }
            }
        }
        Ok(())
    }

    /// What it did so far.
    pub fn report(&self) -> &GuardReport {
        &self.report
    }
}

/// Guards the mounts holding `mounts` against the digests held in `store`
/// until `stop` is set, recording each refusal as an `exec_denied` event
/// at `dest`. `ready` is called with the number of digests held once the
/// marks are in place.
///
/// # Errors
/// [`GuardError`]; denials recorded before a failure stay recorded.
///
/// The guarded window is recorded too: a `quarantine_guard_start` event
/// (the mounts, how many digests were held) once the marks are in place,
/// and a `quarantine_guard_stop` event (the counts; `parents`: the start)
/// when it ends, so an auditor sees when executions were not guarded.
pub fn run(
    store: Store,
    mounts: &[PathBuf],
    dest: Destination,
    stop: &AtomicBool,
    ready: impl FnOnce(usize),
) -> Result<(GuardReport, zkaudit_collect::Report), GuardError> {
    let mut sink = Sink::open(dest, SinkOptions::new(COLLECTOR, Layer::Computation))?;
    let mut guard = Guard::new(store, mounts)?;
    let paths: Vec<String> = mounts.iter().map(|m| m.display().to_string()).collect();
    let started = Observation::new("quarantine_guard_start", Layer::Computation, OcsfClass::ProcessActivity, 99, "guard_started")
        .field("zkaudit.guard.mounts", paths)
        .field("zkaudit.guard.held", guard.held() as u64)
        .outcome(true);
    let start_event = sink.send(&started.into_event())?;
    ready(guard.held());
    let mut unrecorded = 0;
    let result = guard.run(stop, |d| {
        let sent: Result<Digest, SinkError> = sink.send(&d.observation().into_event());
        if let Err(e) = sent {
            eprintln!("quarantine guard: recording the denial of {} (pid {}): {e}", d.path.display(), d.pid);
            unrecorded += 1;
        }
    });
    let mut report = guard.report().clone();
    report.unrecorded = unrecorded;
    let stopped = Observation::new("quarantine_guard_stop", Layer::Computation, OcsfClass::ProcessActivity, 99, "guard_stopped")
        .parent(start_event)
        .field("zkaudit.guard.allowed", report.allowed)
        .field("zkaudit.guard.denied", report.denied)
        .field("zkaudit.guard.undecided", report.undecided)
        .outcome(result.is_ok());
    let stopped = sink.send(&stopped.into_event());
    let sink_report = sink.finish()?;
    result?;
    stopped?;
    Ok((report, sink_report))
}
