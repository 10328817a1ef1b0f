//! The few raw system interfaces the tracer needs, each wrapped once:
//! starting the traced child, ptrace requests, waiting, reading a tracee's
//! memory, and looking at a tracee's socket through `pidfd_getfd`.
//! Everything `unsafe` in this crate is here.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use libc::{c_int, c_long, c_void, pid_t};

fn check(r: c_long) -> io::Result<c_long> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The stage at which starting the child failed (written to the error pipe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartStage {
    /// `PTRACE_TRACEME`.
    TraceMe,
    /// Installing the seccomp filter.
    Seccomp,
    /// `execve`.
    Exec,
    /// `chdir` to the working directory.
    Chdir,
}

/// Forks a child that asks to be traced, changes to directory `cwd` (if
/// given), stops itself so the tracer can set its options, installs the
/// seccomp `filter` and executes `path` with `argv` and the current
/// environment. Returns its pid and the read end
/// of a close-on-exec pipe: if starting fails, the child writes the stage
/// and `errno` there and exits 127 (see [`start_error`]).
///
/// # Errors
/// `pipe2` or `fork` failing.
pub fn spawn_traced(path: &CStr, argv: &[CString], cwd: Option<&CStr>, filter: &[libc::sock_filter]) -> io::Result<(pid_t, OwnedFd)> {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let prog =
        libc::sock_fprog { len: u16::try_from(filter.len()).map_err(|_| io::Error::other("seccomp filter too long"))?, filter: filter.as_ptr().cast_mut() };
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: both are fresh descriptors we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child only makes async-signal-safe calls on memory
    // prepared before the fork, then execs or exits.
    let pid = check(unsafe { libc::fork() }.into())? as pid_t;
    if pid == 0 {
        let fail = |stage: u8| -> ! {
            // SAFETY: async-signal-safe calls on a local buffer.
            unsafe {
                let e = *libc::__errno_location();
                let mut msg = [0u8; 5];
                msg[0] = stage;
                msg[1..].copy_from_slice(&e.to_le_bytes());
                libc::write(wr.as_raw_fd(), msg.as_ptr().cast(), 5);
                libc::_exit(127)
            }
        };
        // SAFETY: see above.
        unsafe {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                fail(0);
            }
            if let Some(dir) = cwd {
                if libc::chdir(dir.as_ptr()) == -1 {
                    fail(3);
                }
            }
            libc::kill(libc::getpid(), libc::SIGSTOP);
            if libc::geteuid() != 0 && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 {
                fail(1);
            }
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) == -1 {
                fail(1);
            }
            libc::execv(path.as_ptr(), ptrs.as_ptr());
            fail(2)
        }
    }
    drop(wr);
    Ok((pid, rd))
}

/// What the child wrote to the error pipe, once it has exited: `None` if
/// it started (the pipe closed on exec).
pub fn start_error(pipe: &OwnedFd) -> Option<(StartStage, io::Error)> {
    let mut msg = [0u8; 5];
    // SAFETY: reads at most 5 bytes into msg.
    let n = unsafe { libc::read(pipe.as_raw_fd(), msg.as_mut_ptr().cast(), 5) };
    if n != 5 {
        return None;
    }
    let stage = match msg[0] {
        0 => StartStage::TraceMe,
        1 => StartStage::Seccomp,
        3 => StartStage::Chdir,
        _ => StartStage::Exec,
    };
    Some((stage, io::Error::from_raw_os_error(i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]))))
}

fn ptrace(req: libc::c_uint, pid: pid_t, addr: usize, data: usize) -> io::Result<c_long> {
    // SAFETY: requests used here read or write only through `data` pointers
    // the callers own, sized for the request.
    check(unsafe { libc::ptrace(req, pid, addr as *mut c_void, data as *mut c_void) })
}

/// `PTRACE_SETOPTIONS`.
///
/// # Errors
/// The kernel's.
pub fn set_options(pid: pid_t, options: c_int) -> io::Result<()> {
    ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options as usize).map(drop)
}

/// Resumes `pid` (`PTRACE_CONT`), delivering `sig` (0: none). A tracee
/// that has vanished (ESRCH) is not an error: its death is reported by wait.
pub fn resume(pid: pid_t, sig: c_int) {
    let _ = ptrace(libc::PTRACE_CONT, pid, 0, sig as usize);
}

/// Resumes `pid` to its next syscall stop (`PTRACE_SYSCALL`), here the
/// exit of the call it is in.
pub fn resume_to_exit(pid: pid_t) {
    let _ = ptrace(libc::PTRACE_SYSCALL, pid, 0, 0);
}

/// `PTRACE_GETEVENTMSG`.
///
/// # Errors
/// The kernel's (the tracee vanished).
pub fn event_msg(pid: pid_t) -> io::Result<u64> {
    let mut v: libc::c_ulong = 0;
    ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut v as *mut libc::c_ulong as usize)?;
    Ok(v)
}

/// A system call as the registers show it (x86_64 calling convention).
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// Call number (`orig_rax`).
    pub nr: i64,
    /// Arguments 1 to 6 (`rdi rsi rdx r10 r8 r9`).
    pub args: [u64; 6],
    /// Return value at exit (`rax`; `-errno` on failure).
    pub ret: i64,
}

/// `PTRACE_GETREGS`.
///
/// # Errors
/// The kernel's (the tracee vanished).
pub fn call(pid: pid_t) -> io::Result<Call> {
    let mut r = MaybeUninit::<libc::user_regs_struct>::zeroed();
    ptrace(libc::PTRACE_GETREGS, pid, 0, r.as_mut_ptr() as usize)?;
    // SAFETY: zero-initialised, then filled by the kernel.
    let r = unsafe { r.assume_init() };
    Ok(Call { nr: r.orig_rax as i64, args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9], ret: r.rax as i64 })
}

/// A wait status.
#[derive(Clone, Copy, Debug)]
pub enum Status {
    /// Exited with a code.
    Exited(c_int),
    /// Killed by a signal.
    Signaled(c_int),
    /// Stopped: the signal and the ptrace event (`status >> 16`).
    Stopped(c_int, c_int),
}

/// `waitpid(-1, __WALL | __WNOTHREAD)`: the next state change of a tracee
/// of this thread (the one that started the command; other threads' children,
/// and other tracers in this process, are left alone); `None` when no
/// tracee is left.
///
/// # Errors
/// Any error but `ECHILD` and `EINTR`.
pub fn wait_any() -> io::Result<Option<(pid_t, Status)>> {
    loop {
        let mut st: c_int = 0;
        // SAFETY: st is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL | libc::__WNOTHREAD) };
        if pid == -1 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(e),
            }
        }
        let s = if libc::WIFEXITED(st) {
            Status::Exited(libc::WEXITSTATUS(st))
        } else if libc::WIFSIGNALED(st) {
            Status::Signaled(libc::WTERMSIG(st))
        } else {
            Status::Stopped(libc::WSTOPSIG(st), st >> 16)
        };
        return Ok(Some((pid, s)));
    }
}

/// Reads tracee memory at `addr` into `buf`; returns the bytes read (short
/// at an unmapped page).
///
/// # Errors
/// The kernel's (bad address, tracee gone).
pub fn read_mem(pid: pid_t, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut c_void, iov_len: buf.len() };
    // SAFETY: one local iovec over buf; the remote side is checked by the kernel.
    check(unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) } as c_long).map(|n| n as usize)
}

/// A NUL-terminated string at `addr`, at most `max` bytes (longer is cut).
///
/// # Errors
/// As [`read_mem`], for the first byte.
pub fn read_cstr(pid: pid_t, addr: u64, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    let mut chunk = [0u8; 4096];
    while out.len() < max {
        // Never read across a page boundary in one go: the next page may be unmapped.
        let room = (4096 - (at % 4096) as usize).min(max - out.len());
        let n = match read_mem(pid, at, &mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        };
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    Ok(out)
}

/// A NULL-terminated array of pointers at `addr` (argv), at most `max`.
///
/// # Errors
/// As [`read_mem`].
pub fn read_ptrs(pid: pid_t, addr: u64, max: usize) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8];
    while out.len() < max {
        if read_mem(pid, addr + 8 * out.len() as u64, &mut buf)? != 8 {
            break;
        }
        let p = u64::from_le_bytes(buf);
        if p == 0 {
            break;
        }
        out.push(p);
    }
    Ok(out)
}

/// Descriptor `fd` of process `pid` (a thread-group leader: descriptors
/// belong to the process), duplicated into this process (`pidfd_open` +
/// `pidfd_getfd`, Linux 5.6).
///
/// # Errors
/// The kernel's (the fd is closed, the tracee gone).
pub fn dup_from(pid: pid_t, fd: c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscalls returning new descriptors we then own.
    let pidfd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })? as c_int;
    // SAFETY: pidfd is ours.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: as above.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })? as c_int;
    // SAFETY: fd is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What this process can see of a socket it holds a duplicate of.
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketView {
    /// `SO_PROTOCOL` is TCP (else UDP or other).
    pub tcp: bool,
    /// `SO_PROTOCOL` is UDP.
    pub udp: bool,
    /// `getsockname`.
    pub local: Option<SocketAddr>,
    /// `getpeername`.
    pub peer: Option<SocketAddr>,
    /// TCP only: `(bytes sent, bytes received)` from `TCP_INFO` (see `tcp_bytes`).
    pub bytes: Option<(u64, u64)>,
}

fn sockaddr_of(fd: &OwnedFd, peer: bool) -> Option<SocketAddr> {
    let mut ss = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss and len describe a sockaddr_storage we own.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), ss.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), ss.as_mut_ptr().cast(), &mut len)
        }
    };
    if r != 0 {
        return None;
    }
    // SAFETY: the kernel wrote `len` bytes of it (zeroed before).
    let bytes = unsafe { std::slice::from_raw_parts(ss.as_ptr().cast::<u8>(), (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>())) };
    zkaudit_collect::shape::parse_sockaddr(bytes)
}

fn sockopt<T>(fd: &OwnedFd, level: c_int, name: c_int) -> Option<T> {
    let mut v = MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: v has room for T; the kernel writes at most len bytes.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, v.as_mut_ptr().cast(), &mut len) };
    // SAFETY: zeroed, then (partly) written by the kernel; T is plain data.
    (r == 0).then(|| unsafe { v.assume_init() })
}

/// `(tcpi_bytes_sent, tcpi_bytes_received)` of a TCP socket: payload bytes
/// sent (retransmissions included) and received (the peer's FIN not counted). Read from the raw
/// `struct tcp_info` (linux/tcp.h; append-only ABI), where they sit at
/// byte offsets 200 (Linux 4.19) and 128 (Linux 4.1); libc's struct stops
/// before the first.
fn tcp_bytes(fd: &OwnedFd) -> Option<(u64, u64)> {
    let mut raw = [0u8; 256];
    let mut len = raw.len() as libc::socklen_t;
    // SAFETY: raw has room for len bytes.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, raw.as_mut_ptr().cast(), &mut len) };
    if r != 0 || (len as usize) < 208 {
        return None;
    }
    let u64_at = |o: usize| raw[o..o + 8].try_into().ok().map(u64::from_ne_bytes);
    // bytes_received counts the peer's FIN as one byte: take it out once
    // the FIN has arrived (TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING).
    let fin = u64::from(matches!(raw[0], 6 | 8 | 9 | 11));
    Some((u64_at(200)?, u64_at(128)?.saturating_sub(fin)))
}

/// Looks at a socket duplicated by [`dup_from`].
pub fn socket_view(fd: &OwnedFd) -> SocketView {
    let proto: c_int = sockopt(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(0);
    let tcp = proto == libc::IPPROTO_TCP;
    let bytes = if tcp { tcp_bytes(fd) } else { None };
    SocketView { tcp, udp: proto == libc::IPPROTO_UDP, local: sockaddr_of(fd, false), peer: sockaddr_of(fd, true), bytes }
}

/// `CLOCK_BOOTTIME` in nanoseconds.
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), for `/proc/PID/stat` times.
pub fn clock_ticks() -> u64 {
    // SAFETY: plain query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Ignores SIGINT and SIGQUIT in this process (the traced command gets
/// them from the terminal and decides; the recorder must outlive it).
pub fn ignore_terminal_signals() {
    // SAFETY: setting dispositions to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
}

/// Ends this process by signal `sig` (default action), as the traced
/// command ended, so that the caller sees the command's own status.
pub fn die_by(sig: c_int) -> ! {
    // SAFETY: restoring the default action and raising the signal.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, set.as_ptr(), std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
    }
    // Signals whose default is not to terminate (or core dumps disabled
    // and still alive): fall back to the shell convention.
    std::process::exit(128 + sig)
}

/// The name of signal `sig` on Linux x86_64 (`SIGKILL`), or its number
/// for real-time signals.
pub fn signal_name(sig: c_int) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP",
        "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    match usize::try_from(sig).ok().and_then(|i| i.checked_sub(1)).and_then(|i| NAMES.get(i)) {
        Some(n) => format!("SIG{n}"),
        None => sig.to_string(),
    }
}
