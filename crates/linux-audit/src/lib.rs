//! `zkaudit collect audit`: a system-wide collector that reads the Linux
//! audit netlink socket directly (no auditd, no auditctl).
//!
//! While it runs it is the audit daemon: it enables auditing, raises
//! `backlog_limit` (64 by default on Debian's kernel), installs its own
//! exit rules under one key (`-a always,exit -F arch=b64 -S execve -S
//! execveat -S connect`, and a watch per `--watch` path for reads, writes
//! and attribute changes), joins the records of each event (SYSCALL,
//! EXECVE, PATH, CWD, SOCKADDR, PROCTITLE, up to the EOE record) into one
//! zkaudit event, as laurel does, and sends it to a collector sink. The
//! kernel's `lost` counter is polled every second; any rise becomes a
//! `collector_gap` event (`kernel_lost`), and so does an overflow of its
//! socket (`buffer_full`). When it stops (at the end of `--duration`, or on
//! SIGTERM or SIGINT) it deletes the rules it added and puts `enabled`,
//! `backlog_limit` and the daemon pid back as they were; rules that were
//! there before it started are left alone.
//!
//! It owns the audit protocol and what its events say; where events go is
//! the `zkaudit-collect` sink's business.

pub mod netlink;
pub mod records;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use zkaudit_collect::shape::{digest_file, empty_digest, gap, parse_sockaddr, GapReason};
use zkaudit_collect::{Destination, Observation, OcsfClass, Report, Sink, SinkError, SinkOptions};
use zkaudit_event::{Digest, Layer, Timestamp};

use netlink::{perm, status_mask, Rule, Socket, Status};
use records::Record;

/// The collector's name (`observer.type` of its gap events).
pub const COLLECTOR: &str = "zkaudit-collect-audit";
/// The rule key (`-k`) of the rules it installs.
pub const KEY: &str = "zkaudit";

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const SYS_OPEN: u64 = 2;
const SYS_CONNECT: u64 = 42;
const SYS_EXECVE: u64 = 59;
const SYS_CREAT: u64 = 85;
const SYS_OPENAT: u64 = 257;
const SYS_EXECVEAT: u64 = 322;

/// Why collecting failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit socket failed.
    #[error("audit netlink ({what}): {source}")]
    Netlink {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process is the audit daemon.
    #[error("process {0} (auditd?) owns the audit netlink socket; stop it first, or let it collect")]
    Busy(u32),
    /// The audit configuration is locked until reboot.
    #[error("the audit configuration is locked (enabled=2, auditctl -e 2); nothing can be changed until reboot")]
    Locked,
    /// A `--watch` path does not exist.
    #[error("--watch {0}: no such file or directory")]
    Watch(PathBuf),
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

fn nl(what: &'static str) -> impl FnOnce(std::io::Error) -> AuditError {
    move |source| AuditError::Netlink { what, source }
}

/// What to collect.
#[derive(Clone, Debug)]
pub struct Options {
    /// Paths to watch (a file, or a directory tree).
    pub watch: Vec<PathBuf>,
    /// `backlog_limit` to raise the kernel's to (never lowered).
    pub backlog_limit: u32,
    /// Stop after this long (`None`: at SIGTERM or SIGINT).
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Audit records read.
    pub records: u64,
    /// Events sent (gap events included).
    pub events: u64,
    /// Records the kernel reported lost while it ran.
    pub lost: u64,
    /// Rules it installed (and removed at the end).
    pub rules_added: u64,
    /// Of its rules, those that were already there (left in place).
    pub rules_preexisting: u64,
    /// The status as found, and as left.
    pub status_before: (u32, u32, u32),
    /// `(enabled, backlog_limit, pid)` when it stopped.
    pub status_after: (u32, u32, u32),
    /// What the sink delivered.
    pub sink: Report,
}

/// The audit settings to put back, and the rules to take out.
struct Restore {
    before: Status,
    added: Vec<Rule>,
}

impl Restore {
    fn undo(&mut self, sock: &mut Socket) -> Result<(), AuditError> {
        let mut first = None;
        for r in self.added.drain(..) {
            if let Err(e) = sock.rule(netlink::AUDIT_DEL_RULE, &r) {
                first.get_or_insert(AuditError::Netlink { what: "deleting a rule", source: e });
            }
        }
        let mask = status_mask::ENABLED | status_mask::BACKLOG_LIMIT | status_mask::PID;
        if let Err(e) = sock.set(mask, &self.before) {
            first.get_or_insert(AuditError::Netlink { what: "restoring the status", source: e });
        }
        first.map_or(Ok(()), Err)
    }
}

/// The rules for `opts`.
pub fn rules(opts: &Options) -> Result<Vec<Rule>, AuditError> {
    let key = (netlink::F_FILTERKEY, KEY.to_owned());
    let mut out = vec![Rule {
        syscalls: vec![SYS_EXECVE as u32, SYS_EXECVEAT as u32, SYS_CONNECT as u32],
        numeric: vec![(netlink::F_ARCH, AUDIT_ARCH_X86_64)],
        strings: vec![key.clone()],
    }];
    for p in &opts.watch {
        let m = std::fs::metadata(p).map_err(|_| AuditError::Watch(p.clone()))?;
        let p = std::fs::canonicalize(p).map_err(|_| AuditError::Watch(p.clone()))?;
        let field = if m.is_dir() { netlink::F_DIR } else { netlink::F_WATCH };
        out.push(Rule {
            syscalls: Vec::new(),
            numeric: vec![(netlink::F_PERM, perm::READ | perm::WRITE | perm::ATTR)],
            strings: vec![(field, p.display().to_string()), key.clone()],
        });
    }
    Ok(out)
}

/// Collects until `stop` is set (or the duration ends), sending events to
/// `dest`; prints nothing. `ready` is called once the rules are in.
///
/// # Errors
/// [`AuditError`]; the audit settings are put back in every case where
/// they were changed.
pub fn run(opts: &Options, dest: Destination, stop: &AtomicBool, ready: &mut dyn FnMut(&Status)) -> Result<Outcome, AuditError> {
    let mut sock = Socket::open(Duration::from_millis(200)).map_err(nl("opening the socket"))?;
    let before = sock.status().map_err(nl("AUDIT_GET"))?;
    if before.enabled == 2 {
        return Err(AuditError::Locked);
    }
    let me = std::process::id();
    if before.pid != 0 && before.pid != me && Path::new(&format!("/proc/{}", before.pid)).exists() {
        return Err(AuditError::Busy(before.pid));
    }
    let wanted = rules(opts)?;
    let mut sink = Sink::open(dest, SinkOptions::new(COLLECTOR, Layer::Computation))?;
    let mut restore = Restore { before, added: Vec::new() };
    let mut out = Outcome { status_before: (before.enabled, before.backlog_limit, before.pid), ..Outcome::default() };
    let mut state = Joined::default();
    let result = collect(&mut sock, opts, &wanted, &mut restore, &mut sink, &mut out, &mut state, stop, ready);
    let undone = restore.undo(&mut sock);
    // Records of events that were under way when the rules went.
    if result.is_ok() {
        let _ = drain(&mut sock, &mut sink, &mut out, &mut state, Duration::from_millis(300));
    }
    let after = sock.status().map_err(nl("AUDIT_GET"))?;
    out.status_after = (after.enabled, after.backlog_limit, after.pid);
    result?;
    undone?;
    out.sink = sink.finish()?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn collect(
    sock: &mut Socket,
    opts: &Options,
    wanted: &[Rule],
    restore: &mut Restore,
    sink: &mut Sink,
    out: &mut Outcome,
    state: &mut Joined,
    stop: &AtomicBool,
    ready: &mut dyn FnMut(&Status),
) -> Result<(), AuditError> {
    let b = restore.before;
    let set = Status { enabled: 1, pid: std::process::id(), backlog_limit: b.backlog_limit.max(opts.backlog_limit), ..b };
    sock.set(status_mask::ENABLED | status_mask::BACKLOG_LIMIT | status_mask::PID, &set).map_err(nl("AUDIT_SET"))?;
    for r in wanted {
        match sock.rule(netlink::AUDIT_ADD_RULE, r) {
            Ok(()) => {
                restore.added.push(r.clone());
                out.rules_added += 1;
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => out.rules_preexisting += 1,
            Err(e) => return Err(AuditError::Netlink { what: "adding a rule", source: e }),
        }
    }
    let now = sock.status().map_err(nl("AUDIT_GET"))?;
    ready(&now);
    let mut lost_seen = now.lost;
    let end = opts.duration.map(|d| Instant::now() + d);
    let mut polled = Instant::now();
    while !stop.load(Ordering::SeqCst) && end.is_none_or(|e| Instant::now() < e) {
        receive(sock, sink, out, state)?;
        if polled.elapsed() >= Duration::from_secs(1) {
            polled = Instant::now();
            let s = sock.status().map_err(nl("AUDIT_GET"))?;
            if s.lost > lost_seen {
                let n = u64::from(s.lost - lost_seen);
                out.lost += n;
                let detail = format!("the kernel dropped {n} audit records (lost counter {} -> {}, backlog_limit {})", lost_seen, s.lost, s.backlog_limit);
                sink.send(&gap(COLLECTOR, Layer::Computation, GapReason::KernelLost, n, &detail))?;
                out.events += 1;
            }
            lost_seen = s.lost;
            let cutoff = Timestamp::now().unix_nanos() - 5_000_000_000;
            for ev in state.joiner.stale(cutoff) {
                emit(&ev, sink, out, state)?;
            }
        }
    }
    Ok(())
}

fn drain(sock: &mut Socket, sink: &mut Sink, out: &mut Outcome, state: &mut Joined, for_: Duration) -> Result<(), AuditError> {
    let end = Instant::now() + for_;
    while Instant::now() < end {
        receive(sock, sink, out, state)?;
    }
    for ev in state.joiner.stale(i128::MAX) {
        emit(&ev, sink, out, state)?;
    }
    Ok(())
}

#[derive(Default)]
struct Joined {
    joiner: records::Joiner,
    /// Executable digests by (path, size, mtime).
    digests: HashMap<(String, u64, i64), Digest>,
    boot_id: Option<String>,
}

fn receive(sock: &mut Socket, sink: &mut Sink, out: &mut Outcome, st: &mut Joined) -> Result<(), AuditError> {
    let msgs = match sock.recv() {
        Ok(m) => m,
        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
            let g = gap(COLLECTOR, Layer::Computation, GapReason::BufferFull, 1, "the audit netlink socket overflowed; records were dropped (count unknown)");
            sink.send(&g)?;
            out.events += 1;
            return Ok(());
        }
        Err(e) => return Err(AuditError::Netlink { what: "receiving", source: e }),
    };
    for m in msgs {
        if !(1300..1400).contains(&m.kind) {
            continue;
        }
        let Some(r) = records::parse(m.kind, &m.payload) else { continue };
        out.records += 1;
        if let Some(ev) = st.joiner.push(r) {
            emit(&ev, sink, out, st)?;
        }
    }
    Ok(())
}

/// Turns one joined event into a zkaudit event, if it is one of ours.
fn emit(ev: &[Record], sink: &mut Sink, out: &mut Outcome, st: &mut Joined) -> Result<(), AuditError> {
    let Some(sc) = ev.iter().find(|r| r.kind == records::SYSCALL) else { return Ok(()) };
    if sc.text("key").as_deref() != Some(KEY) {
        return Ok(());
    }
    let pid = sc.num("pid").unwrap_or(0);
    // Our own sink's connections would feed back into the log.
    if pid == u64::from(std::process::id()) {
        return Ok(());
    }
    let nr = sc.num("syscall").unwrap_or(u64::MAX);
    let ok = sc.get("success") == Some("yes");
    let find = |k: u16| ev.iter().find(|r| r.kind == k);
    let t = stamp(sc.time_ns);
    let exe = sc.text("exe").unwrap_or_default();
    let cwd = find(records::CWD).and_then(|r| r.text("cwd")).unwrap_or_default();
    let base = |o: Observation| {
        let mut o = o
            .at(t.clone())
            .field("event.id", format!("{}:{}", sc.time_ns / 1_000_000, sc.serial))
            .field("process.pid", pid)
            .field("process.parent.pid", sc.num("ppid").unwrap_or(0))
            .field("process.executable", exe.clone())
            .field("process.name", sc.text("comm").unwrap_or_default())
            .field("tags", Value::from(vec![KEY]));
        if let Some(u) = sc.num("uid") {
            o = o.field("process.user.id", u.to_string());
        }
        if let Some(u) = sc.num("auid").filter(|&a| a != u64::from(u32::MAX)) {
            o = o.field("user.audit.id", u.to_string());
        }
        o
    };
    let o = match nr {
        SYS_EXECVE | SYS_EXECVEAT if ok => {
            let (argv, cut) = find(records::EXECVE).map(records::argv).unwrap_or_default();
            let digest = exe_digest(&exe, st);
            let boot =
                st.boot_id.get_or_insert_with(|| std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_owned()).unwrap_or_default());
            let entity = hex::encode(&Sha256::digest(format!("{boot}:{pid}:{}:{}", sc.time_ns, sc.serial).as_bytes())[..16]);
            let mut o = base(Observation::new("process_exec", Layer::Computation, OcsfClass::ProcessActivity, 1, "exec"))
                .input(digest)
                .output(digest)
                .field("process.entity_id", entity)
                .field("process.hash.sha256", hex::encode(digest.0))
                .field("process.args_count", argv.len())
                .field("process.args", argv)
                .field("process.working_directory", cwd)
                .outcome(true);
            if cut {
                o = o.field("zkaudit.args_truncated", true);
            }
            o
        }
        SYS_CONNECT => {
            let Some(addr) = find(records::SOCKADDR).and_then(|r| r.get("saddr")).and_then(|h| hex::decode(h).ok()).and_then(|b| parse_sockaddr(&b)) else {
                return Ok(());
            };
            let exit = sc.get("exit").and_then(|e| e.parse::<i64>().ok()).unwrap_or(0);
            let mut o =
                base(Observation::new("network_connect", Layer::Network, OcsfClass::NetworkActivity, if ok || exit == -115 { 1 } else { 4 }, "connect"))
                    .field("destination.ip", addr.ip().to_string())
                    .field("destination.port", addr.port())
                    .field("network.type", if addr.is_ipv4() { "ipv4" } else { "ipv6" })
                    .field("network.direction", "egress");
            o = if exit == -115 { o.field("event.outcome", "unknown") } else { o.outcome(ok) };
            o
        }
        SYS_EXECVE | SYS_EXECVEAT => return Ok(()),
        _ => {
            // A watched path.
            let Some(path) = ev.iter().filter(|r| r.kind == records::PATH && r.get("nametype") != Some("PARENT")).find_map(|r| r.text("name")) else {
                return Ok(());
            };
            let path = if path.starts_with('/') || cwd.is_empty() { path } else { format!("{}/{}", cwd.trim_end_matches('/'), path) };
            let flags = match nr {
                SYS_OPEN => sc.num("a1"),
                SYS_OPENAT => sc.num("a2"),
                SYS_CREAT => Some(0o1101),
                _ => None,
            };
            let digest = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => digest_file(Path::new(&path)).map(|(d, _)| d).unwrap_or_else(|_| empty_digest()),
                _ => empty_digest(),
            };
            let mut o = match flags {
                Some(f) => {
                    let write = f & (libc::O_ACCMODE as u64) != 0;
                    base(Observation::new("file_open", Layer::Computation, OcsfClass::FileSystemActivity, 14, "open"))
                        .field("zkaudit.file.access", if write { "write" } else { "read" })
                }
                None => base(Observation::new("file_activity", Layer::Computation, OcsfClass::FileSystemActivity, 99, "syscall")),
            };
            o = o.input(digest).output(digest).field("file.path", path).field("zkaudit.syscall", nr).outcome(ok);
            o
        }
    };
    sink.send(&o.into_event())?;
    out.events += 1;
    Ok(())
}

/// An audit time (ms precision) as an RFC 3339 timestamp with 3 fraction digits.
fn stamp(ns: i128) -> Timestamp {
    Timestamp::from_unix_nanos(ns).and_then(|t| Timestamp::parse(&format!("{}Z", &t.as_str()[..23])).ok()).unwrap_or_else(Timestamp::now)
}

fn exe_digest(exe: &str, st: &mut Joined) -> Digest {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(m) = std::fs::metadata(exe) else { return empty_digest() };
    let key = (exe.to_owned(), m.size(), m.mtime());
    if let Some(d) = st.digests.get(&key) {
        return *d;
    }
    let d = digest_file(Path::new(exe)).map(|(d, _)| d).unwrap_or_else(|_| empty_digest());
    st.digests.insert(key, d);
    d
}
