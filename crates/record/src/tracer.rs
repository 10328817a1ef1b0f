//! The tracer: starts the command, follows every process and thread it
//! creates, and turns ptrace stops into events.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use libc::pid_t;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use zkaudit_collect::shape::{digest_bytes, digest_file, empty_digest, gap, GapReason};
use zkaudit_collect::{Observation, OcsfClass, Sink, SinkError};
use zkaudit_event::{Digest, Event, Layer};

use crate::seccomp;
use crate::sys::{self, Call, Status};

/// The name gap events give this collector (`observer.type`).
pub const COLLECTOR: &str = "zkaudit-record";

/// Most bytes of argv kept in a `process_exec` event; the rest is cut and
/// `zkaudit.args_truncated` is set.
pub const MAX_ARGS_BYTES: usize = 16 << 10;

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No command was given.
    #[error("no command given: zkaudit record [OPTIONS] -- CMD [ARGS...]")]
    NoCommand,
    /// The command is not a file on `PATH` (or at the path given).
    #[error("{0}: command not found")]
    NotFound(String),
    /// The command names something that cannot be executed.
    #[error("{path}: not executable ({why})")]
    NotExecutable {
        /// The path.
        path: PathBuf,
        /// Why (a directory, no execute permission).
        why: String,
    },
    /// Starting the traced child failed.
    #[error("starting {path} under ptrace: {stage}: {source}")]
    Start {
        /// The program.
        path: PathBuf,
        /// The step that failed.
        stage: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The sink failed; the command was stopped, since its events could
    /// no longer be kept.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// A command resolved to the file that will be executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The file executed (absolute, or as given when it contains a `/`).
    pub path: PathBuf,
    /// Its argv, `argv[0]` as given.
    pub argv: Vec<OsString>,
    /// Its working directory (`None`: ours).
    pub cwd: Option<PathBuf>,
}

/// Resolves `argv[0]` as `execvp` would (through `PATH` unless it contains
/// a `/`), checking that it is an executable file.
///
/// # Errors
/// [`RecordError::NoCommand`], [`RecordError::NotFound`],
/// [`RecordError::NotExecutable`].
pub fn resolve(argv: &[OsString]) -> Result<Program, RecordError> {
    let first = argv.first().ok_or(RecordError::NoCommand)?;
    let check = |p: &Path| -> Result<(), RecordError> {
        let m = std::fs::metadata(p).map_err(|_| RecordError::NotFound(p.display().to_string()))?;
        if m.is_dir() {
            return Err(RecordError::NotExecutable { path: p.to_owned(), why: "it is a directory".into() });
        }
        if !m.is_file() || m.mode() & 0o111 == 0 {
            return Err(RecordError::NotExecutable { path: p.to_owned(), why: format!("mode {:o} has no execute permission", m.mode() & 0o7777) });
        }
        Ok(())
    };
    if first.as_bytes().contains(&b'/') {
        let p = PathBuf::from(first);
        check(&p)?;
        return Ok(Program { path: p, argv: argv.to_vec(), cwd: None });
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut not_executable = None;
    for dir in std::env::split_paths(&path) {
        let p = dir.join(first);
        match check(&p) {
            Ok(()) => return Ok(Program { path: p, argv: argv.to_vec(), cwd: None }),
            Err(e @ RecordError::NotExecutable { .. }) => {
                not_executable.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    Err(not_executable.unwrap_or_else(|| RecordError::NotFound(first.to_string_lossy().into_owned())))
}

/// How the traced command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

/// Counters of one recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Seccomp stops handled (traced system calls).
    pub stops: u64,
    /// Events sent to the sink.
    pub events: u64,
    /// Processes seen (the command and its descendants).
    pub processes: u64,
    /// Gap events recorded (something could not be read).
    pub gaps: u64,
}

/// Runs `program` under the tracer, sending events to `sink`, and returns
/// how it ended. Its stdin, stdout and stderr are this process's.
///
/// # Errors
/// [`RecordError::Start`] (nothing was recorded), [`RecordError::Sink`]
/// (recording stopped; the command's processes are killed as the tracer
/// exits, `PTRACE_O_EXITKILL`).
pub fn record(program: &Program, sink: &mut Sink) -> Result<(CommandStatus, Stats), RecordError> {
    let start_err = |stage: &'static str| {
        let path = program.path.clone();
        move |source| RecordError::Start { path, stage, source }
    };
    let path = CString::new(program.path.as_os_str().as_bytes()).map_err(|e| start_err("path")(std::io::Error::other(e)))?;
    let argv: Vec<CString> =
        program.argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>().map_err(|e| start_err("argv")(std::io::Error::other(e)))?;
    let cwd = match &program.cwd {
        Some(d) => Some(CString::new(d.as_os_str().as_bytes()).map_err(|e| start_err("cwd")(std::io::Error::other(e)))?),
        None => None,
    };
    let filter = seccomp::program();
    let (root, pipe) = sys::spawn_traced(&path, &argv, cwd.as_deref(), &filter).map_err(start_err("fork"))?;
    sys::ignore_terminal_signals();
    // The child stops itself (SIGSTOP) so that the options are set before
    // its seccomp filter can stop it.
    match sys::wait_any().map_err(start_err("wait"))? {
        Some((pid, Status::Stopped(libc::SIGSTOP, 0))) if pid == root => {}
        Some((_, other)) => return Err(start_err("first stop")(std::io::Error::other(format!("unexpected state {other:?}")))),
        None => return Err(start_err("first stop")(std::io::Error::other("the child vanished"))),
    }
    let options = libc::PTRACE_O_EXITKILL
        | libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEEXIT
        | libc::PTRACE_O_TRACESECCOMP;
    sys::set_options(root, options).map_err(start_err("PTRACE_SETOPTIONS"))?;
    let mut t = Tracer::new(sink, root);
    sys::resume(root, 0);
    let status = t.run().map_err(RecordError::Sink)?;
    if !t.started {
        if let Some((stage, source)) = sys::start_error(&pipe) {
            let stage = match stage {
                sys::StartStage::TraceMe => "PTRACE_TRACEME",
                sys::StartStage::Seccomp => "installing the seccomp filter",
                sys::StartStage::Exec => "execve",
                sys::StartStage::Chdir => "changing to the working directory",
            };
            return Err(RecordError::Start { path: program.path.clone(), stage, source });
        }
    }
    Ok((status, t.stats))
}

/// A file's identity and version, for the digest cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileKey {
    fn of(m: &std::fs::Metadata) -> Self {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    fn same_file(&self, o: &FileKey) -> bool {
        self.dev == o.dev && self.ino == o.ino
    }
}

/// A file open for writing.
#[derive(Clone, Debug)]
struct Written {
    path: String,
    /// The file as it was when this process got the descriptor.
    at_open: FileKey,
    /// Digest of the content then.
    before: Digest,
    /// Opened with `O_TRUNC` or empty: its content is this process's.
    fresh: bool,
}

/// An IPv4 or IPv6 socket this process opened.
#[derive(Clone, Debug)]
struct Socket {
    ino: u64,
    flow: Digest,
    opened_by: Digest,
    inbound: bool,
    fields: Vec<(&'static str, Value)>,
    /// This process created it (a copy inherited through fork does not
    /// report the close).
    owner: bool,
}

#[derive(Clone, Debug)]
enum Tracked {
    Written(Written),
    Socket(Socket),
    /// One end of a pipe made inside the recorded tree.
    Pipe {
        ino: u64,
        writer: bool,
    },
}

impl Tracked {
    fn same(&self, o: &Tracked) -> bool {
        match (self, o) {
            (Tracked::Written(a), Tracked::Written(b)) => a.at_open.same_file(&b.at_open),
            (Tracked::Socket(a), Tracked::Socket(b)) => a.ino == b.ino,
            (Tracked::Pipe { ino: a, writer: wa }, Tracked::Pipe { ino: b, writer: wb }) => a == b && wa == wb,
            _ => false,
        }
    }
}

/// One process image (a fork, or an exec).
#[derive(Clone, Debug)]
struct Entity {
    entity_id: String,
    pid: pid_t,
    executable: String,
    exe_digest: Digest,
    parent: Option<usize>,
    /// Its launch event's digest, once sent.
    event: Option<Digest>,
    /// When it was forked (for a lazily sent `process_fork`).
    forked_at: zkaudit_event::Timestamp,
}

/// A thread group (a process).
#[derive(Debug)]
struct Proc {
    entity: usize,
    reads: Vec<Digest>,
    read_set: HashSet<Digest>,
    fds: HashMap<i32, Tracked>,
    threads: u32,
    cpu_ns: Option<(u64, u64)>,
    finalized: bool,
}

/// What a thread is in the middle of, between its seccomp stop and the
/// call's exit.
#[derive(Debug)]
enum Pending {
    Exec { argv: Vec<String>, truncated: bool },
    Open { path: String, flags: i32 },
    Dup { old: i32 },
    Rename { from: String, to: String },
    Unlink { path: String, digest: Digest, size: u64 },
    Chmod { path: String, mode: u32 },
    Pipe { fds: u64 },
    Connect { fd: i32, remote: SocketAddr },
    Bind { fd: i32, local: SocketAddr },
    Accept,
}

#[derive(Debug)]
struct Thread {
    tgid: pid_t,
    /// Its first stop (SIGSTOP after attach) has been seen.
    started: bool,
    pending: Option<Pending>,
}

struct Tracer<'s> {
    sink: &'s mut Sink,
    boot_id: String,
    ticks: u64,
    root: pid_t,
    threads: HashMap<pid_t, Thread>,
    procs: HashMap<pid_t, Proc>,
    early_stops: HashSet<pid_t>,
    entities: Vec<Entity>,
    hashes: HashMap<FileKey, Digest>,
    /// Pipe inode → the digests the processes that wrote to it and have
    /// finished had read (and their executables): lineage through pipes.
    pipe_sources: HashMap<u64, Vec<Digest>>,
    stats: Stats,
    /// The command's first exec happened.
    started: bool,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn readlink(p: &str) -> Option<String> {
    std::fs::read_link(p).ok().map(|l| lossy(l.as_os_str().as_bytes()))
}

fn is_pseudo(path: &str) -> bool {
    ["/proc/", "/sys/", "/dev/"].iter().any(|p| path.starts_with(p))
}

impl<'s> Tracer<'s> {
    fn new(sink: &'s mut Sink, root: pid_t) -> Self {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_owned()).unwrap_or_default();
        let mut t = Tracer {
            sink,
            boot_id,
            ticks: sys::clock_ticks(),
            root,
            threads: HashMap::new(),
            procs: HashMap::new(),
            early_stops: HashSet::new(),
            entities: Vec::new(),
            hashes: HashMap::new(),
            pipe_sources: HashMap::new(),
            stats: Stats::default(),
            started: false,
        };
        // Until it execs, the child is our fork: an entity never sent.
        let placeholder = t.new_entity(root, None, String::new(), empty_digest());
        t.threads.insert(root, Thread { tgid: root, started: true, pending: None });
        t.procs.insert(root, Proc::new(placeholder));
        t.stats.processes = 1;
        t
    }

    fn new_entity(&mut self, pid: pid_t, parent: Option<usize>, executable: String, exe_digest: Digest) -> usize {
        let start = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| stat_field(&s, 22)).unwrap_or(0);
        let seed = format!("{}:{pid}:{start}:{}", self.boot_id, sys::boottime_ns());
        let entity_id = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
        self.entities.push(Entity { entity_id, pid, executable, exe_digest, parent, event: None, forked_at: zkaudit_event::Timestamp::now() });
        self.entities.len() - 1
    }

    fn send(&mut self, e: &Event) -> Result<Digest, SinkError> {
        self.stats.events += 1;
        self.sink.send(e)
    }

    fn gap(&mut self, detail: String) -> Result<(), SinkError> {
        self.stats.gaps += 1;
        let g = gap(COLLECTOR, Layer::Computation, GapReason::Unreadable, 1, &detail);
        self.send(&g).map(drop)
    }

    /// The launch event of entity `i`, sent now if it was a fork not yet sent.
    fn ensure(&mut self, i: usize) -> Result<Digest, SinkError> {
        if let Some(d) = self.entities[i].event {
            return Ok(d);
        }
        let parent = match self.entities[i].parent {
            Some(p) => Some(self.ensure(p)?),
            None => None,
        };
        let e = self.entities[i].clone();
        let mut o = Observation::new("process_fork", Layer::Computation, OcsfClass::ProcessActivity, 1, "fork")
            .at(e.forked_at.clone())
            .input(e.exe_digest)
            .output(e.exe_digest)
            .outcome(true);
        o = self.process_fields(o, i, true);
        if let Some(p) = parent {
            o = o.parent(p);
        }
        let d = self.send(&o.into_event())?;
        self.entities[i].event = Some(d);
        Ok(d)
    }

    /// The `process.*` fields of entity `i`: all of them on a process
    /// event; on a file or network event only those that name the process
    /// (the rest is on its process event, its first parent).
    fn process_fields(&self, o: Observation, i: usize, full: bool) -> Observation {
        let e = &self.entities[i];
        let name = e.executable.rsplit('/').next().unwrap_or_default().to_owned();
        let mut o = o.field("process.entity_id", e.entity_id.clone()).field("process.pid", e.pid).field("process.name", name);
        if !full {
            return o;
        }
        o = o.field("process.executable", e.executable.clone()).field("process.hash.sha256", hex::encode(e.exe_digest.0));
        if let Some(p) = e.parent.map(|p| &self.entities[p]) {
            o = o.field("process.parent.pid", p.pid).field("process.parent.entity_id", p.entity_id.clone());
        }
        o
    }

    fn run(&mut self) -> Result<CommandStatus, SinkError> {
        let mut status = CommandStatus::Exited(127);
        loop {
            let (tid, st) = match sys::wait_any() {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    self.gap(format!("waitpid failed, tracing stopped: {e}"))?;
                    break;
                }
            };
            match st {
                Status::Exited(code) => {
                    self.reaped(tid, CommandStatus::Exited(code))?;
                    if tid == self.root {
                        status = CommandStatus::Exited(code);
                    }
                }
                Status::Signaled(sig) => {
                    self.reaped(tid, CommandStatus::Signaled(sig))?;
                    if tid == self.root {
                        status = CommandStatus::Signaled(sig);
                    }
                }
                Status::Stopped(sig, event) => self.stopped(tid, sig, event)?,
            }
        }
        Ok(status)
    }

    fn stopped(&mut self, tid: pid_t, sig: i32, event: i32) -> Result<(), SinkError> {
        if sig == (libc::SIGTRAP | 0x80) {
            self.syscall_exit(tid)?;
            sys::resume(tid, 0);
            return Ok(());
        }
        if sig == libc::SIGTRAP && event != 0 {
            match event {
                libc::PTRACE_EVENT_SECCOMP => {
                    self.stats.stops += 1;
                    if self.syscall_entry(tid)? {
                        sys::resume_to_exit(tid);
                    } else {
                        sys::resume(tid, 0);
                    }
                }
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                    if let Ok(child) = sys::event_msg(tid) {
                        self.spawned(tid, child as pid_t)?;
                    }
                    sys::resume(tid, 0);
                }
                libc::PTRACE_EVENT_EXEC => {
                    let former = sys::event_msg(tid).map_or(tid, |f| f as pid_t);
                    self.exec(tid, former)?;
                    sys::resume(tid, 0);
                }
                libc::PTRACE_EVENT_EXIT => {
                    self.exiting(tid)?;
                    sys::resume(tid, 0);
                }
                _ => sys::resume(tid, 0),
            }
            return Ok(());
        }
        if sig == libc::SIGSTOP {
            match self.threads.get_mut(&tid) {
                None => {
                    // Its parent's fork event has not been seen yet.
                    self.early_stops.insert(tid);
                    return Ok(());
                }
                Some(t) if !t.started => {
                    t.started = true;
                    sys::resume(tid, 0);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        // A signal for the tracee: deliver it.
        sys::resume(tid, sig);
        Ok(())
    }

    fn tgid(&self, tid: pid_t) -> pid_t {
        self.threads.get(&tid).map_or(tid, |t| t.tgid)
    }

    fn spawned(&mut self, parent_tid: pid_t, child: pid_t) -> Result<(), SinkError> {
        let ptgid = self.tgid(parent_tid);
        let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
        let tgid = status.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse::<pid_t>().ok()).unwrap_or(child);
        let started = self.early_stops.remove(&child);
        self.threads.insert(child, Thread { tgid, started, pending: None });
        if tgid != child {
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.threads += 1;
            }
        } else if let Some(parent) = self.procs.get(&ptgid) {
            let pe = parent.entity;
            let (exe, digest) = (self.entities[pe].executable.clone(), self.entities[pe].exe_digest);
            let mut fds = HashMap::new();
            for (fd, t) in &parent.fds {
                let t = match t {
                    Tracked::Written(w) => {
                        // The child's writes are the ones after this point.
                        let now = std::fs::metadata(format!("/proc/{child}/fd/{fd}")).map(|m| FileKey::of(&m)).unwrap_or(w.at_open);
                        Tracked::Written(Written { at_open: now, fresh: false, ..w.clone() })
                    }
                    Tracked::Socket(s) => Tracked::Socket(Socket { owner: false, ..s.clone() }),
                    Tracked::Pipe { .. } => t.clone(),
                };
                fds.insert(*fd, t);
            }
            let (reads, read_set) = (parent.reads.clone(), parent.read_set.clone());
            let entity = self.new_entity(child, Some(pe), exe, digest);
            let mut p = Proc::new(entity);
            (p.fds, p.reads, p.read_set) = (fds, reads, read_set);
            self.procs.insert(child, p);
            self.stats.processes += 1;
        }
        if started {
            sys::resume(child, 0);
        }
        Ok(())
    }

    /// Handles a seccomp stop; true if the call's exit must be seen too.
    fn syscall_entry(&mut self, tid: pid_t) -> Result<bool, SinkError> {
        let c = match sys::call(tid) {
            Ok(c) => c,
            Err(_) => return Ok(false),
        };
        let a = c.args;
        let fd = |x: u64| x as i32;
        let pending = match c.nr {
            libc::SYS_execve => self.exec_args(tid, libc::AT_FDCWD, a[0], a[1])?,
            libc::SYS_execveat => self.exec_args(tid, fd(a[0]), a[1], a[2])?,
            libc::SYS_pipe | libc::SYS_pipe2 => Some(Pending::Pipe { fds: a[0] }),
            libc::SYS_open => self.open_args(tid, libc::AT_FDCWD, a[0], a[1] as i32)?,
            libc::SYS_creat => self.open_args(tid, libc::AT_FDCWD, a[0], libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC)?,
            libc::SYS_openat => self.open_args(tid, fd(a[0]), a[1], a[2] as i32)?,
            libc::SYS_openat2 => {
                let mut how = [0u8; 8];
                match sys::read_mem(tid, a[2], &mut how) {
                    Ok(8) => self.open_args(tid, fd(a[0]), a[1], u64::from_le_bytes(how) as i32)?,
                    _ => None,
                }
            }
            libc::SYS_close => {
                self.close(tid, fd(a[0]))?;
                None
            }
            libc::SYS_close_range => {
                // CLOSE_RANGE_CLOEXEC only marks them; exec closes them.
                if a[2] & 4 == 0 {
                    let tgid = self.tgid(tid);
                    let fds: Vec<i32> = self
                        .procs
                        .get(&tgid)
                        .map(|p| p.fds.keys().copied().filter(|&f| (f as u64) >= a[0] && (f as u64) <= a[1]).collect())
                        .unwrap_or_default();
                    for f in fds {
                        self.close(tid, f)?;
                    }
                }
                None
            }
            libc::SYS_dup | libc::SYS_fcntl => self.is_tracked(tid, fd(a[0])).then_some(Pending::Dup { old: fd(a[0]) }),
            libc::SYS_dup2 | libc::SYS_dup3 => {
                if a[0] != a[1] {
                    // dup2 closes the target first.
                    self.close(tid, fd(a[1]))?;
                }
                self.is_tracked(tid, fd(a[0])).then_some(Pending::Dup { old: fd(a[0]) })
            }
            libc::SYS_rename => self.rename_args(tid, libc::AT_FDCWD, a[0], libc::AT_FDCWD, a[1])?,
            libc::SYS_renameat | libc::SYS_renameat2 => self.rename_args(tid, fd(a[0]), a[1], fd(a[2]), a[3])?,
            libc::SYS_unlink => self.unlink_args(tid, libc::AT_FDCWD, a[0], 0)?,
            libc::SYS_unlinkat => self.unlink_args(tid, fd(a[0]), a[1], a[2] as i32)?,
            libc::SYS_chmod => self.chmod_args(tid, libc::AT_FDCWD, Some(a[0]), a[1] as u32)?,
            libc::SYS_fchmodat | seccomp::SYS_FCHMODAT2 => self.chmod_args(tid, fd(a[0]), Some(a[1]), a[2] as u32)?,
            libc::SYS_fchmod => self.chmod_args(tid, fd(a[0]), None, a[1] as u32)?,
            libc::SYS_connect => self.sockaddr_arg(tid, a[1], a[2])?.map(|remote| Pending::Connect { fd: fd(a[0]), remote }),
            libc::SYS_bind => self.sockaddr_arg(tid, a[1], a[2])?.map(|local| Pending::Bind { fd: fd(a[0]), local }),
            libc::SYS_accept | libc::SYS_accept4 => Some(Pending::Accept),
            _ => None,
        };
        let wants_exit = pending.is_some();
        if let Some(t) = self.threads.get_mut(&tid) {
            t.pending = pending;
        }
        Ok(wants_exit)
    }

    fn syscall_exit(&mut self, tid: pid_t) -> Result<(), SinkError> {
        let Some(p) = self.threads.get_mut(&tid).and_then(|t| t.pending.take()) else { return Ok(()) };
        let Ok(Call { ret, .. }) = sys::call(tid) else { return Ok(()) };
        let tgid = self.tgid(tid);
        match p {
            // A successful exec is handled at its exec event.
            Pending::Exec { .. } => {}
            Pending::Open { path, flags } if ret >= 0 => self.opened(tid, tgid, ret as i32, path, flags)?,
            Pending::Pipe { fds } if ret == 0 => {
                let mut b = [0u8; 8];
                if let Ok(8) = sys::read_mem(tid, fds, &mut b) {
                    let (r, w) = (i32::from_ne_bytes([b[0], b[1], b[2], b[3]]), i32::from_ne_bytes([b[4], b[5], b[6], b[7]]));
                    if let Ok(m) = std::fs::metadata(format!("/proc/{tgid}/fd/{r}")) {
                        if let Some(p) = self.procs.get_mut(&tgid) {
                            p.fds.insert(r, Tracked::Pipe { ino: m.ino(), writer: false });
                            p.fds.insert(w, Tracked::Pipe { ino: m.ino(), writer: true });
                        }
                    }
                }
            }
            Pending::Dup { old } if ret >= 0 => {
                if let Some(proc) = self.procs.get_mut(&tgid) {
                    if let Some(t) = proc.fds.get(&old).cloned() {
                        proc.fds.insert(ret as i32, t);
                    }
                }
            }
            Pending::Rename { from, to } if ret == 0 => {
                if let Some((digest, size)) = self.digest_path(&to, &to)? {
                    let o = file_observation("file_rename", 5, "rename", to, digest, size).field("zkaudit.file.original_path", from);
                    self.process_event(tgid, o, false)?;
                }
            }
            Pending::Unlink { path, digest, size } if ret == 0 => {
                let o = file_observation("file_delete", 4, "delete", path, digest, size);
                self.process_event(tgid, o, false)?;
            }
            Pending::Chmod { path, mode } if ret == 0 => {
                if let Some((digest, size)) = self.digest_path(&path, &path)? {
                    let o = file_observation("file_chmod", 6, "chmod", path, digest, size).field("file.mode", format!("{:o}", mode & 0o7777));
                    self.process_event(tgid, o, false)?;
                }
            }
            Pending::Connect { fd, remote } => {
                // Non-blocking connects answer EINPROGRESS and finish later.
                let outcome = match ret {
                    0 => Some(true),
                    r if r == -i64::from(libc::EINPROGRESS) => None,
                    _ => Some(false),
                };
                let errno = (ret < 0).then(|| -ret);
                self.socket_opened(tgid, fd, "connect", Some(remote), outcome, errno)?;
            }
            Pending::Bind { fd, local } => {
                let errno = (ret < 0).then(|| -ret);
                self.socket_opened(tgid, fd, "bind", Some(local), Some(ret == 0), errno)?;
            }
            Pending::Accept if ret >= 0 => self.socket_opened(tgid, ret as i32, "accept", None, Some(true), None)?,
            _ => {}
        }
        Ok(())
    }

    fn path_at(&self, tid: pid_t, dirfd: i32, addr: u64) -> Result<Option<String>, SinkError> {
        let raw = match sys::read_cstr(tid, addr, libc::PATH_MAX as usize) {
            Ok(b) => b,
            Err(_) => return Ok(None),
        };
        let p = lossy(&raw);
        if p.starts_with('/') {
            return Ok(Some(p));
        }
        let base = if dirfd == libc::AT_FDCWD { readlink(&format!("/proc/{tid}/cwd")) } else { readlink(&format!("/proc/{tid}/fd/{dirfd}")) };
        let joined = match base {
            Some(b) if p.is_empty() => b,
            Some(b) => format!("{}/{}", b.trim_end_matches('/'), p.trim_start_matches("./")),
            None => p,
        };
        // `a/../b` is only `b` if `a` is not a symbolic link: ask the file system.
        if joined.contains("/../") || joined.contains("/./") {
            if let Ok(c) = std::fs::canonicalize(&joined) {
                return Ok(Some(lossy(c.as_os_str().as_bytes())));
            }
        }
        Ok(Some(joined))
    }

    fn exec_args(&mut self, tid: pid_t, dirfd: i32, path: u64, argv_addr: u64) -> Result<Option<Pending>, SinkError> {
        // A PATH search tries many files that are not there: let those
        // fail without reading argv or stopping again at the exit.
        if let Some(p) = self.path_at(tid, dirfd, path)? {
            if std::fs::metadata(&p).map_or(true, |m| !m.is_file() || m.mode() & 0o111 == 0) {
                return Ok(None);
            }
        }
        let ptrs = match sys::read_ptrs(tid, argv_addr, 1 << 16) {
            Ok(p) => p,
            Err(e) => {
                self.gap(format!("pid {tid}: reading execve argv: {e}"))?;
                return Ok(None);
            }
        };
        let (mut argv, mut used, mut truncated) = (Vec::with_capacity(ptrs.len()), 0usize, false);
        for p in ptrs {
            if used >= MAX_ARGS_BYTES {
                truncated = true;
                break;
            }
            let a = sys::read_cstr(tid, p, MAX_ARGS_BYTES - used).map(|b| lossy(&b)).unwrap_or_default();
            used += a.len() + 1;
            argv.push(a);
        }
        Ok(Some(Pending::Exec { argv, truncated }))
    }

    fn open_args(&mut self, tid: pid_t, dirfd: i32, addr: u64, flags: i32) -> Result<Option<Pending>, SinkError> {
        if flags & libc::O_PATH != 0 || (flags & libc::O_ACCMODE == libc::O_RDONLY && flags & libc::O_DIRECTORY != 0) {
            return Ok(None);
        }
        let Some(path) = self.path_at(tid, dirfd, addr)?.filter(|p| !is_pseudo(p)) else { return Ok(None) };
        if flags & libc::O_CREAT == 0 {
            // An open of something that is not a regular file (most often
            // a header or library searched for where it is not) records
            // nothing: let it go on without a stop at its exit.
            let Some(m) = std::fs::metadata(&path).ok().filter(std::fs::Metadata::is_file) else { return Ok(None) };
            // A world-readable file opened for reading: the open will find
            // it and may read it, so record the read now and save the
            // stop at the exit (the content is the same either way).
            if flags & libc::O_ACCMODE == libc::O_RDONLY && m.mode() & 0o004 != 0 {
                let tgid = self.tgid(tid);
                if let Some((digest, size)) = self.digest_meta(&path, &path, &m)? {
                    self.record_read(tgid, path, digest, size)?;
                }
                return Ok(None);
            }
        }
        Ok(Some(Pending::Open { path, flags }))
    }

    fn rename_args(&mut self, tid: pid_t, d1: i32, a1: u64, d2: i32, a2: u64) -> Result<Option<Pending>, SinkError> {
        Ok(match (self.path_at(tid, d1, a1)?, self.path_at(tid, d2, a2)?) {
            (Some(from), Some(to)) => Some(Pending::Rename { from, to }),
            _ => None,
        })
    }

    fn unlink_args(&mut self, tid: pid_t, dirfd: i32, addr: u64, flags: i32) -> Result<Option<Pending>, SinkError> {
        if flags & libc::AT_REMOVEDIR != 0 {
            return Ok(None);
        }
        let Some(path) = self.path_at(tid, dirfd, addr)? else { return Ok(None) };
        // Its content is gone after the call: take the digest now.
        Ok(self.digest_path(&path, &path)?.map(|(digest, size)| Pending::Unlink { path, digest, size }))
    }

    fn chmod_args(&mut self, tid: pid_t, dirfd: i32, addr: Option<u64>, mode: u32) -> Result<Option<Pending>, SinkError> {
        if mode & 0o111 == 0 {
            return Ok(None);
        }
        let path = match addr {
            Some(a) => self.path_at(tid, dirfd, a)?,
            None => readlink(&format!("/proc/{tid}/fd/{dirfd}")),
        };
        Ok(path.map(|path| Pending::Chmod { path, mode }))
    }

    fn sockaddr_arg(&mut self, tid: pid_t, addr: u64, len: u64) -> Result<Option<SocketAddr>, SinkError> {
        let mut b = [0u8; 128];
        let n = (len as usize).min(b.len());
        Ok(match sys::read_mem(tid, addr, &mut b[..n]) {
            Ok(k) => zkaudit_collect::shape::parse_sockaddr(&b[..k]),
            Err(_) => None,
        })
    }

    fn is_tracked(&self, tid: pid_t, fd: i32) -> bool {
        self.procs.get(&self.tgid(tid)).is_some_and(|p| p.fds.contains_key(&fd))
    }

    /// The digest and size of the regular file at `open` (a path or a
    /// `/proc/PID/fd/N` link), cached by identity and version; `None` if it
    /// is not a regular file. `name` is what a gap event calls it.
    fn digest_path(&mut self, open: &str, name: &str) -> Result<Option<(Digest, u64)>, SinkError> {
        let m = match std::fs::metadata(open) {
            Ok(m) if m.is_file() => m,
            _ => return Ok(None),
        };
        self.digest_meta(open, name, &m)
    }

    fn digest_meta(&mut self, open: &str, name: &str, m: &std::fs::Metadata) -> Result<Option<(Digest, u64)>, SinkError> {
        let key = FileKey::of(m);
        if key.size == 0 {
            return Ok(Some((empty_digest(), 0)));
        }
        if let Some(d) = self.hashes.get(&key) {
            return Ok(Some((*d, key.size)));
        }
        match digest_file(Path::new(open)) {
            Ok((d, n)) => {
                self.hashes.insert(key, d);
                Ok(Some((d, n)))
            }
            Err(e) => {
                self.gap(format!("{name}: reading it for its digest: {e}"))?;
                Ok(None)
            }
        }
    }

    fn opened(&mut self, tid: pid_t, tgid: pid_t, fd: i32, path: String, flags: i32) -> Result<(), SinkError> {
        let link = format!("/proc/{tid}/fd/{fd}");
        let m = match std::fs::metadata(&link) {
            Ok(m) if m.is_file() => m,
            _ => return Ok(()),
        };
        let acc = flags & libc::O_ACCMODE;
        let truncating = flags & libc::O_TRUNC != 0;
        let before = if truncating { Some((empty_digest(), 0)) } else { self.digest_meta(&link, &path, &m)? };
        let Some((digest, size)) = before else { return Ok(()) };
        if acc == libc::O_RDONLY || (acc == libc::O_RDWR && !truncating && size > 0) {
            self.record_read(tgid, path.clone(), digest, size)?;
        }
        if acc != libc::O_RDONLY {
            let w = Written { path, at_open: FileKey::of(&m), before: digest, fresh: truncating || size == 0 };
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.fds.insert(fd, Tracked::Written(w));
            }
        }
        Ok(())
    }

    /// Records that process `tgid` read `path` holding `digest` (`size` bytes).
    fn record_read(&mut self, tgid: pid_t, path: String, digest: Digest, size: u64) -> Result<(), SinkError> {
        let o = file_observation("file_read", 2, "read", path, digest, size).field("file.hash.sha256", hex::encode(digest.0));
        self.process_event(tgid, o, false)?;
        // Reading nothing carries nothing: the empty digest would only tie
        // unrelated processes together in lineage.
        if let Some(p) = self.procs.get_mut(&tgid).filter(|_| size > 0) {
            if p.read_set.insert(digest) {
                p.reads.push(digest);
            }
        }
        Ok(())
    }

    /// Sends an event of process `tgid` with its `process.*` fields and its
    /// process event as parent; with `lineage` also its executable and what
    /// it had read (for a written file).
    fn process_event(&mut self, tgid: pid_t, o: Observation, lineage: bool) -> Result<Digest, SinkError> {
        let Some(i) = self.procs.get(&tgid).map(|p| p.entity) else { return self.send(&o.into_event()) };
        let pd = self.ensure(i)?;
        let mut o = self.process_fields(o, i, false).parent(pd);
        if lineage {
            let reading: Vec<u64> = self
                .procs
                .get(&tgid)
                .map(|p| p.fds.values().filter_map(|t| if let Tracked::Pipe { ino, writer: false } = t { Some(*ino) } else { None }).collect())
                .unwrap_or_default();
            for ino in reading {
                self.absorb_pipe(tgid, ino);
            }
            o = o.parent(self.entities[i].exe_digest);
            if let Some(p) = self.procs.get(&tgid) {
                o = o.parents(p.reads.iter().copied());
            }
        }
        self.send(&o.into_event())
    }

    /// Descriptor `fd` of `tid` is being closed (or the process is ending):
    /// if it was the last one on a written file or an owned socket, record it.
    fn close(&mut self, tid: pid_t, fd: i32) -> Result<(), SinkError> {
        let tgid = self.tgid(tid);
        let Some(p) = self.procs.get_mut(&tgid) else { return Ok(()) };
        let Some(t) = p.fds.remove(&fd) else { return Ok(()) };
        if p.fds.values().any(|o| o.same(&t)) {
            return Ok(());
        }
        self.finish_fd(tid, tgid, fd, t)
    }

    /// Process `tgid` is done writing to pipe `ino`: what it read (and its
    /// executable) may flow on to whoever reads the pipe.
    fn carry_into_pipe(&mut self, tgid: pid_t, ino: u64) {
        let Some(p) = self.procs.get(&tgid) else { return };
        let to = self.pipe_sources.entry(ino).or_default();
        for d in std::iter::once(&self.entities[p.entity].exe_digest).chain(&p.reads) {
            if !to.contains(d) {
                to.push(*d);
            }
        }
    }

    /// Process `tgid` reads pipe `ino`: what its finished writers carried
    /// counts as read.
    fn absorb_pipe(&mut self, tgid: pid_t, ino: u64) {
        let (Some(from), Some(p)) = (self.pipe_sources.get(&ino), self.procs.get_mut(&tgid)) else { return };
        for d in from {
            if p.read_set.insert(*d) {
                p.reads.push(*d);
            }
        }
    }

    fn finish_fd(&mut self, tid: pid_t, tgid: pid_t, fd: i32, t: Tracked) -> Result<(), SinkError> {
        match t {
            Tracked::Written(w) => {
                // Through the descriptor if it is still open, else by path.
                let link = format!("/proc/{tid}/fd/{fd}");
                let open = match std::fs::metadata(&link) {
                    Ok(m) if FileKey::of(&m).same_file(&w.at_open) => link,
                    _ => w.path.clone(),
                };
                let m = match std::fs::metadata(&open) {
                    Ok(m) if m.is_file() && FileKey::of(&m).same_file(&w.at_open) => m,
                    _ => return self.gap(format!("pid {tgid}: {} was written, but was gone or replaced before its digest could be taken", w.path)),
                };
                if !w.fresh && FileKey::of(&m) == w.at_open {
                    return Ok(());
                }
                let Some((digest, size)) = self.digest_meta(&open, &w.path, &m)? else { return Ok(()) };
                // The event is about the bytes written; what they derive
                // from (the content before, for an append; the process's
                // reads and executable) goes in parents.
                let mut o = file_observation("file_write", 3, "write", w.path, digest, size).field("file.hash.sha256", hex::encode(digest.0));
                if !w.fresh && w.before != empty_digest() {
                    o = o.parent(w.before).field("zkaudit.file.previous_sha256", hex::encode(w.before.0));
                }
                self.process_event(tgid, o, true).map(drop)
            }
            Tracked::Socket(s) if s.owner => {
                let mut o =
                    Observation::new("network_close", Layer::Network, OcsfClass::NetworkActivity, 2, "close").input(s.flow).output(s.flow).parent(s.opened_by);
                for (k, v) in s.fields {
                    o = o.field(k, v);
                }
                if let Some((sent, received)) = sys::dup_from(tgid, fd).ok().map(|f| sys::socket_view(&f)).and_then(|v| v.bytes) {
                    // ECS: source.bytes flow from source to destination.
                    let (src, dst) = if s.inbound { (received, sent) } else { (sent, received) };
                    o = o.field("source.bytes", src).field("destination.bytes", dst).field("network.bytes", sent + received);
                }
                self.process_event(tgid, o.outcome(true), false).map(drop)
            }
            Tracked::Socket(_) => Ok(()),
            // Closing the write end of a pipe, what went into it is known;
            // closing the read end, what came out of it.
            Tracked::Pipe { ino, writer: true } => {
                self.carry_into_pipe(tgid, ino);
                Ok(())
            }
            Tracked::Pipe { ino, writer: false } => {
                self.absorb_pipe(tgid, ino);
                Ok(())
            }
        }
    }

    fn socket_opened(
        &mut self,
        tgid: pid_t,
        fd: i32,
        action: &'static str,
        addr: Option<SocketAddr>,
        outcome: Option<bool>,
        errno: Option<i64>,
    ) -> Result<(), SinkError> {
        let sock: Option<OwnedFd> = sys::dup_from(tgid, fd).ok();
        let view = sock.as_ref().map(sys::socket_view).unwrap_or_default();
        let ino = sock.as_ref().and_then(|f| std::fs::metadata(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(f))).ok()).map_or(0, |m| m.ino());
        let inbound = action == "accept";
        let (local, remote) = match action {
            "connect" => (view.local, addr.or(view.peer)),
            // After bind, getsockname has the port a bind to port 0 got.
            "bind" => (view.local.or(addr), None),
            _ => (view.local, view.peer),
        };
        let transport = if view.tcp {
            "tcp"
        } else if view.udp {
            "udp"
        } else {
            "unknown"
        };
        // ECS: source is the side that opened the connection.
        let (src, dst) = if inbound { (remote, local) } else { (local, remote) };
        let mut fields: Vec<(&'static str, Value)> = vec![("network.transport", transport.into())];
        let family = local.or(remote).map(|a| if a.is_ipv4() { "ipv4" } else { "ipv6" });
        if let Some(f) = family {
            fields.push(("network.type", f.into()));
        }
        if action != "bind" {
            fields.push(("network.direction", if inbound { "ingress" } else { "egress" }.into()));
        }
        if let Some(s) = src {
            fields.push(("source.ip", s.ip().to_string().into()));
            fields.push(("source.port", s.port().into()));
        }
        if let Some(d) = dst {
            fields.push(("destination.ip", d.ip().to_string().into()));
            fields.push(("destination.port", d.port().into()));
        }
        let flow = digest_bytes(&serde_json::to_vec(&json!(fields.iter().map(|(k, v)| [json!(k), v.clone()]).collect::<Vec<_>>())).unwrap_or_default());
        let (activity, kind) = match action {
            "bind" => (7, "network_bind"),
            "accept" => (1, "network_accept"),
            _ if outcome == Some(false) => (4, "network_connect"),
            _ => (1, "network_connect"),
        };
        let mut o = Observation::new(kind, Layer::Network, OcsfClass::NetworkActivity, activity, action).input(flow).output(flow);
        for (k, v) in &fields {
            o = o.field(k, v.clone());
        }
        o = match outcome {
            Some(ok) => o.outcome(ok),
            None => o.field("event.outcome", "unknown"),
        };
        if let Some(e) = errno {
            o = o.field("error.code", std::io::Error::from_raw_os_error(e as i32).to_string());
        }
        let d = self.process_event(tgid, o, false)?;
        if outcome != Some(false) {
            let s = Socket { ino, flow, opened_by: d, inbound, fields, owner: true };
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.fds.insert(fd, Tracked::Socket(s));
            }
        }
        Ok(())
    }

    fn exec(&mut self, tid: pid_t, former: pid_t) -> Result<(), SinkError> {
        let pending = self.threads.get_mut(&former).and_then(|t| t.pending.take());
        if former != tid {
            // A non-leader thread exec'd: it now has the leader's pid.
            self.threads.remove(&former);
        }
        let tgid = tid;
        if let Some(t) = self.threads.get_mut(&tid) {
            t.pending = None;
        }
        // Descriptors marked close-on-exec are gone now.
        let gone: Vec<(i32, Tracked)> = self
            .procs
            .get(&tgid)
            .map(|p| p.fds.iter().filter(|(fd, _)| std::fs::symlink_metadata(format!("/proc/{tid}/fd/{fd}")).is_err()).map(|(f, t)| (*f, t.clone())).collect())
            .unwrap_or_default();
        for (fd, t) in gone {
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.fds.remove(&fd);
            }
            self.finish_fd(tid, tgid, fd, t)?;
        }
        // argv as the new image runs with it (ECS process.args): for a
        // script the kernel puts the interpreter in front. Where that
        // differs from the argv execve was given (what strace prints), the
        // latter goes in zkaudit.execve.args.
        let running = cmdline(tid);
        let (argv, truncated, given) = match (pending, running) {
            (Some(Pending::Exec { argv, truncated }), Some(run)) if run != argv && !truncated => (run, false, Some(argv)),
            (Some(Pending::Exec { argv, truncated }), _) => (argv, truncated, None),
            (_, run) => (run.unwrap_or_default(), false, None),
        };
        let exe_link = format!("/proc/{tid}/exe");
        let executable = readlink(&exe_link).unwrap_or_default();
        let exe_digest = match self.digest_path(&exe_link, &executable)? {
            Some((d, _)) => d,
            None => empty_digest(),
        };
        let Some(old) = self.procs.get(&tgid).map(|p| p.entity) else { return Ok(()) };
        // The parent process's event: the image before, or (for a fork
        // that exec'd before doing anything) the forking process's.
        let parent = if self.entities[old].event.is_none() { self.entities[old].parent } else { Some(old) };
        let parent_digest = match parent {
            Some(p) => Some(self.ensure(p)?),
            None => None,
        };
        let entity = self.new_entity(tgid, parent, executable, exe_digest);
        let cwd = readlink(&format!("/proc/{tid}/cwd")).unwrap_or_default();
        let uid = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:").and_then(|v| v.split_whitespace().next().map(str::to_owned))))
            .and_then(|u| u.parse::<u32>().ok());
        let mut o = Observation::new("process_exec", Layer::Computation, OcsfClass::ProcessActivity, 1, "exec")
            .input(exe_digest)
            .output(exe_digest)
            .field("process.args_count", argv.len())
            .field("process.args", argv)
            .field("process.working_directory", cwd)
            .outcome(true);
        o = self.process_fields(o, entity, true);
        if let Some(u) = uid {
            o = o.field("process.user.id", u.to_string());
        }
        if truncated {
            o = o.field("zkaudit.args_truncated", true);
        }
        if let Some(g) = given {
            o = o.field("zkaudit.execve.args", g);
        }
        if let Some(d) = parent_digest {
            o = o.parent(d);
        }
        let d = self.send(&o.into_event())?;
        self.entities[entity].event = Some(d);
        if let Some(p) = self.procs.get_mut(&tgid) {
            p.entity = entity;
            p.reads.clear();
            p.read_set.clear();
        }
        self.started = true;
        Ok(())
    }

    /// `PTRACE_EVENT_EXIT`: the thread is about to exit, its descriptors and
    /// /proc entry still there. The last thread of a process finishes its
    /// open files and sockets and reads its CPU time.
    fn exiting(&mut self, tid: pid_t) -> Result<(), SinkError> {
        let tgid = self.tgid(tid);
        let Some(p) = self.procs.get_mut(&tgid) else { return Ok(()) };
        p.threads = p.threads.saturating_sub(1);
        if p.threads > 0 {
            return Ok(());
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) {
            let ns = |f: usize| stat_field(&stat, f).map(|t| t * 1_000_000_000 / self.ticks);
            if let (Some(u), Some(s)) = (ns(14), ns(15)) {
                if let Some(p) = self.procs.get_mut(&tgid) {
                    p.cpu_ns = Some((u, s));
                }
            }
        }
        self.finish_all(tid, tgid)
    }

    fn finish_all(&mut self, tid: pid_t, tgid: pid_t) -> Result<(), SinkError> {
        let Some(p) = self.procs.get_mut(&tgid) else { return Ok(()) };
        if p.finalized {
            return Ok(());
        }
        p.finalized = true;
        let mut fds: Vec<(i32, Tracked)> = p.fds.drain().collect();
        fds.sort_by_key(|(fd, _)| *fd);
        let mut done: Vec<Tracked> = Vec::new();
        for (fd, t) in fds {
            if done.iter().any(|d| d.same(&t)) {
                continue;
            }
            done.push(t.clone());
            self.finish_fd(tid, tgid, fd, t)?;
        }
        Ok(())
    }

    fn reaped(&mut self, tid: pid_t, how: CommandStatus) -> Result<(), SinkError> {
        let Some(th) = self.threads.remove(&tid) else { return Ok(()) };
        if th.tgid != tid {
            return Ok(());
        }
        // Killed without an exit stop (SIGKILL): finish by path.
        self.finish_all(tid, tid)?;
        let Some(p) = self.procs.remove(&tid) else { return Ok(()) };
        if self.entities[p.entity].executable.is_empty() && !self.started {
            // The command never started: nothing to record.
            return Ok(());
        }
        let exe = self.entities[p.entity].exe_digest;
        let mut o = Observation::new("process_exit", Layer::Computation, OcsfClass::ProcessActivity, 2, "exit").input(exe).output(exe);
        o = match how {
            CommandStatus::Exited(code) => o.field("process.exit_code", code).outcome(code == 0),
            CommandStatus::Signaled(sig) => o.field("zkaudit.process.signal", sys::signal_name(sig)).field("zkaudit.process.signal_number", sig).outcome(false),
        };
        if let Some((u, s)) = p.cpu_ns {
            o = o.field("zkaudit.process.cpu.user_ns", u).field("zkaudit.process.cpu.system_ns", s);
        }
        let pd = self.ensure(p.entity)?;
        o = self.process_fields(o, p.entity, true).parent(pd);
        self.send(&o.into_event()).map(drop)
    }
}

impl Proc {
    fn new(entity: usize) -> Self {
        Proc { entity, reads: Vec::new(), read_set: HashSet::new(), fds: HashMap::new(), threads: 1, cpu_ns: None, finalized: false }
    }
}

/// A successful File System Activity (OCSF 1001) event of type `kind`
/// about `path`, whose content was `digest` (`size` bytes), as both
/// `input` and `output`.
fn file_observation(kind: &str, activity: u32, action: &str, path: String, digest: Digest, size: u64) -> Observation {
    Observation::new(kind, Layer::Computation, OcsfClass::FileSystemActivity, activity, action)
        .input(digest)
        .output(digest)
        .field("file.path", path)
        .field("file.size", size)
        .outcome(true)
}

/// The argv in `/proc/PID/cmdline` (NUL-separated, NUL-terminated).
fn cmdline(pid: pid_t) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    Some(if raw.is_empty() { Vec::new() } else { raw.split(|&b| b == 0).map(lossy).collect() })
}

/// Field `n` (1-based, as in proc(5)) of a `/proc/PID/stat` line, counting
/// past the parenthesised command name.
fn stat_field(stat: &str, n: usize) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(n.checked_sub(3)?)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_past_the_command_name() {
        let s = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 555 0 0";
        assert_eq!(stat_field(s, 4), Some(1));
        assert_eq!(stat_field(s, 14), Some(7));
        assert_eq!(stat_field(s, 15), Some(3));
        assert_eq!(stat_field(s, 22), Some(555));
    }

    #[test]
    fn resolve_reports_missing_and_non_executable_commands() {
        assert!(matches!(resolve(&[]), Err(RecordError::NoCommand)));
        assert!(matches!(resolve(&["zkaudit-no-such-command".into()]), Err(RecordError::NotFound(_))));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("script");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        assert!(matches!(resolve(&[f.clone().into()]), Err(RecordError::NotExecutable { .. })));
        assert!(matches!(resolve(&[d.path().into()]), Err(RecordError::NotExecutable { .. })));
        let p = resolve(&["sh".into(), "-c".into()]).unwrap();
        assert!(p.path.is_absolute() && p.path.ends_with("sh"));
    }
}
