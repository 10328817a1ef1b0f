//! The audit netlink protocol (linux/audit.h, linux/netlink.h): the
//! socket, `AUDIT_GET`/`AUDIT_SET` of `struct audit_status`, rules as
//! `struct audit_rule_data`, and the records the kernel sends. Everything
//! `unsafe` in this crate is here.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::time::Duration;

/// `NETLINK_AUDIT`.
const NETLINK_AUDIT: libc::c_int = 9;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;

/// `AUDIT_GET`.
pub const AUDIT_GET: u16 = 1000;
/// `AUDIT_SET`.
pub const AUDIT_SET: u16 = 1001;
/// `AUDIT_ADD_RULE`.
pub const AUDIT_ADD_RULE: u16 = 1011;
/// `AUDIT_DEL_RULE`.
pub const AUDIT_DEL_RULE: u16 = 1012;

/// `AUDIT_STATUS_*` mask bits of `AUDIT_SET`.
pub mod status_mask {
    /// `enabled`.
    pub const ENABLED: u32 = 0x1;
    /// `pid`.
    pub const PID: u32 = 0x4;
    /// `backlog_limit`.
    pub const BACKLOG_LIMIT: u32 = 0x10;
}

/// `struct audit_status` (the fields zkaudit reads and sets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// 0 off, 1 on, 2 on and locked.
    pub enabled: u32,
    /// Failure mode (0 silent, 1 printk, 2 panic).
    pub failure: u32,
    /// The pid that receives records (the audit daemon), 0 if none.
    pub pid: u32,
    /// Records the kernel queues before it drops (and counts them in `lost`).
    pub backlog_limit: u32,
    /// Records lost since boot (or since `lost` was last reset).
    pub lost: u32,
    /// Records queued now.
    pub backlog: u32,
}

/// One netlink message: its type and payload.
#[derive(Clone, Debug)]
pub struct Message {
    /// `nlmsg_type` (an `AUDIT_*` record type for records).
    pub kind: u16,
    /// The payload (text for records).
    pub payload: Vec<u8>,
}

/// An audit netlink socket.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// Messages received while waiting for an acknowledgement.
    queued: std::collections::VecDeque<Message>,
}

/// The length of a message whose header says `len`: the kernel writes an
/// audit record's `nlmsg_len` as the length of its text alone (types 1100
/// and up, a quirk auditd also works around), other messages' with the header.
fn message_len(kind: u16, len: usize) -> usize {
    if kind >= 1100 {
        NLMSG_HDRLEN + len
    } else {
        len.max(NLMSG_HDRLEN)
    }
}

/// The messages in one datagram: `(nlmsg_type, nlmsg_seq, payload)`.
fn split(data: &[u8]) -> Vec<(u16, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= data.len() {
        let len = u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let kind = u16::from_ne_bytes([data[at + 4], data[at + 5]]);
        let seq = u32::from_ne_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        let end = (at + message_len(kind, len)).min(data.len());
        out.push((kind, seq, data[at + NLMSG_HDRLEN..end].to_vec()));
        at = end.next_multiple_of(4);
    }
    out
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Socket {
    /// Opens and binds a `NETLINK_AUDIT` socket; receives time out after `timeout`.
    ///
    /// # Errors
    /// The kernel's (`EPROTONOSUPPORT` without audit support).
    pub fn open(timeout: Duration) -> io::Result<Socket> {
        // SAFETY: plain socket calls on a descriptor we then own.
        let fd = check(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_AUDIT) })?;
        // SAFETY: fd is new and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_nl is a valid "any" address.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: addr is a sockaddr_nl of the size given.
        check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), std::mem::size_of::<libc::sockaddr_nl>() as u32) })?;
        let tv = libc::timeval { tv_sec: timeout.as_secs() as libc::time_t, tv_usec: timeout.subsec_micros() as libc::suseconds_t };
        // SAFETY: tv is a timeval of the size given.
        check(unsafe {
            libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&raw const tv).cast(), std::mem::size_of::<libc::timeval>() as u32)
        })?;
        // A large receive buffer: bursts of records must not overflow it.
        let size: libc::c_int = 8 << 20;
        // SAFETY: size is a c_int.
        unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&raw const size).cast(), 4) };
        Ok(Socket { fd, seq: 0, buf: vec![0u8; 1 << 16], queued: Default::default() })
    }

    fn send(&mut self, kind: u16, payload: &[u8]) -> io::Result<u32> {
        self.seq += 1;
        let len = NLMSG_HDRLEN + payload.len();
        let mut msg = Vec::with_capacity(len.next_multiple_of(4));
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        msg.resize(len.next_multiple_of(4), 0);
        // SAFETY: sends our buffer; the kernel is the default destination.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.seq)
    }

    /// The next messages from the kernel; empty when the receive timed out.
    ///
    /// # Errors
    /// The kernel's, `ENOBUFS` included (the socket overflowed: records were lost).
    pub fn recv(&mut self) -> io::Result<Vec<Message>> {
        if !self.queued.is_empty() {
            return Ok(self.queued.drain(..).collect());
        }
        // SAFETY: receives into our buffer.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(Vec::new()),
                _ => Err(e),
            };
        }
        Ok(split(&self.buf[..n as usize]).into_iter().map(|(kind, _, payload)| Message { kind, payload }).collect())
    }

    /// Sends a request and waits for its acknowledgement (and, for
    /// `AUDIT_GET`, its answer, returned); records that arrive meanwhile
    /// are kept for [`Socket::recv`].
    fn request(&mut self, kind: u16, payload: &[u8], answer: Option<u16>) -> io::Result<Option<Vec<u8>>> {
        let seq = self.send(kind, payload)?;
        let (mut acked, mut got) = (false, None);
        for _ in 0..100 {
            // SAFETY: as in recv.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                    continue;
                }
                return Err(e);
            }
            for (k, s, body) in split(&self.buf[..n as usize]) {
                if k == NLMSG_ERROR && s == seq {
                    let err = body.get(..4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if err != 0 {
                        return Err(io::Error::from_raw_os_error(-err));
                    }
                    acked = true;
                } else if Some(k) == answer && s == seq {
                    got = Some(body);
                } else {
                    self.queued.push_back(Message { kind: k, payload: body });
                }
            }
            if acked && (answer.is_none() || got.is_some()) {
                return Ok(got);
            }
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel's audit subsystem"))
    }

    /// `AUDIT_GET`.
    ///
    /// # Errors
    /// The kernel's (`EPERM` without `CAP_AUDIT_CONTROL`).
    pub fn status(&mut self) -> io::Result<Status> {
        let b = self.request(AUDIT_GET, &[], Some(AUDIT_GET))?.unwrap_or_default();
        let u = |i: usize| b.get(4 * i..4 * i + 4).map_or(0, |w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        Ok(Status { enabled: u(1), failure: u(2), pid: u(3), backlog_limit: u(5), lost: u(6), backlog: u(7) })
    }

    /// `AUDIT_SET` of the fields in `mask` ([`status_mask`]).
    ///
    /// # Errors
    /// The kernel's.
    pub fn set(&mut self, mask: u32, s: &Status) -> io::Result<()> {
        let mut b = vec![0u8; 44];
        for (i, v) in [(0, mask), (1, s.enabled), (2, s.failure), (3, s.pid), (5, s.backlog_limit)] {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_ne_bytes());
        }
        self.request(AUDIT_SET, &b, None).map(drop)
    }

    /// Adds (`AUDIT_ADD_RULE`) or deletes (`AUDIT_DEL_RULE`) a rule.
    ///
    /// # Errors
    /// The kernel's (`EEXIST`: the same rule is there already; `ENOENT` on delete: it is not).
    pub fn rule(&mut self, kind: u16, r: &Rule) -> io::Result<()> {
        self.request(kind, &r.encode(), None).map(drop)
    }
}

/// `AUDIT_FILTER_EXIT`.
const AUDIT_FILTER_EXIT: u32 = 0x04;
/// `AUDIT_ALWAYS`.
const AUDIT_ALWAYS: u32 = 2;
/// `AUDIT_EQUAL` (field operator).
const AUDIT_EQUAL: u32 = 0x4000_0000;
/// Field `AUDIT_ARCH`.
pub const F_ARCH: u32 = 11;
/// Field `AUDIT_WATCH` (a file).
pub const F_WATCH: u32 = 105;
/// Field `AUDIT_PERM`.
pub const F_PERM: u32 = 106;
/// Field `AUDIT_DIR` (a directory tree).
pub const F_DIR: u32 = 107;
/// Field `AUDIT_FILTERKEY`.
pub const F_FILTERKEY: u32 = 210;

/// `AUDIT_PERM_*` bits.
pub mod perm {
    /// Write.
    pub const WRITE: u32 = 2;
    /// Read.
    pub const READ: u32 = 4;
    /// Attribute change.
    pub const ATTR: u32 = 8;
}

/// An exit-filter rule (`-a always,exit`), as `struct audit_rule_data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// System calls it applies to; empty means all (a watch).
    pub syscalls: Vec<u32>,
    /// `(field, value)` pairs with numeric values.
    pub numeric: Vec<(u32, u32)>,
    /// `(field, string)` pairs (`AUDIT_WATCH`, `AUDIT_DIR`, `AUDIT_FILTERKEY`).
    pub strings: Vec<(u32, String)>,
}

impl Rule {
    fn encode(&self) -> Vec<u8> {
        let mut mask = [0u32; 64];
        if self.syscalls.is_empty() {
            mask = [u32::MAX; 64];
        }
        for &nr in &self.syscalls {
            mask[(nr / 32) as usize] |= 1 << (nr % 32);
        }
        let (mut fields, mut values, mut flags) = (Vec::new(), Vec::new(), Vec::new());
        let mut buf = Vec::new();
        for &(f, v) in &self.numeric {
            fields.push(f);
            values.push(v);
            flags.push(AUDIT_EQUAL);
        }
        for (f, s) in &self.strings {
            fields.push(*f);
            values.push(s.len() as u32);
            flags.push(AUDIT_EQUAL);
            buf.extend_from_slice(s.as_bytes());
        }
        let mut out = Vec::with_capacity(1044 + buf.len());
        for w in [AUDIT_FILTER_EXIT, AUDIT_ALWAYS, fields.len() as u32] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        for w in mask {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        for list in [&fields, &values, &flags] {
            for i in 0..64 {
                out.extend_from_slice(&list.get(i).copied().unwrap_or(0).to_ne_bytes());
            }
        }
        out.extend_from_slice(&(buf.len() as u32).to_ne_bytes());
        out.extend_from_slice(&buf);
        out
    }
}
