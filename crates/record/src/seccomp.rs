//! The seccomp-bpf filter that makes the kernel stop a traced process only
//! on the system calls the recorder looks at (the technique of strace's
//! `--seccomp-bpf`): every other call runs at full speed.
//!
//! The program checks the architecture in `seccomp_data` (calls of another
//! ABI, such as 32-bit `int 0x80`, are allowed through unseen), then
//! returns `SECCOMP_RET_TRACE` for each listed call number, and for
//! `fcntl` only when its command duplicates a descriptor.

use libc::{sock_filter, SECCOMP_RET_ALLOW, SECCOMP_RET_TRACE};

/// `AUDIT_ARCH_X86_64` (linux/audit.h): EM_X86_64 | 64-bit | little-endian.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// The system calls that stop the tracee at entry (x86_64 numbers).
pub const TRACED: &[libc::c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_chmod,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    SYS_FCHMODAT2,
    libc::SYS_pipe,
    libc::SYS_pipe2,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_accept,
    libc::SYS_accept4,
];

/// `fchmodat2` (Linux 6.6), not yet in every libc.
pub const SYS_FCHMODAT2: libc::c_long = 452;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

// Offsets in struct seccomp_data.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// Low 32 bits of args[1] (little-endian).
const ARG1_LO: u32 = 16 + 8;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jeq(k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: JEQ_K, jt, jf, k }
}

/// The filter program.
pub fn program() -> Vec<sock_filter> {
    let n = TRACED.len();
    // Layout: 0 ld arch; 1 jeq arch; 2 ld nr; 3..3+n jeq nr → TRACE;
    // fcntl: jeq, ld arg1, jeq F_DUPFD, jeq F_DUPFD_CLOEXEC; ALLOW; TRACE.
    let fcntl_at = 3 + n;
    let allow_at = fcntl_at + 4;
    let trace_at = allow_at + 1;
    let to = |from: usize, target: usize| -> u8 { u8::try_from(target - from - 1).unwrap_or(u8::MAX) };
    let mut p = Vec::with_capacity(trace_at + 1);
    p.push(stmt(LD_W_ABS, ARCH));
    p.push(jeq(AUDIT_ARCH_X86_64, 0, to(1, allow_at)));
    p.push(stmt(LD_W_ABS, NR));
    for (i, nr) in TRACED.iter().enumerate() {
        let at = 3 + i;
        p.push(jeq(*nr as u32, to(at, trace_at), 0));
    }
    p.push(jeq(libc::SYS_fcntl as u32, 0, to(fcntl_at, allow_at)));
    p.push(stmt(LD_W_ABS, ARG1_LO));
    p.push(jeq(libc::F_DUPFD as u32, to(fcntl_at + 2, trace_at), 0));
    p.push(jeq(libc::F_DUPFD_CLOEXEC as u32, to(fcntl_at + 3, trace_at), to(fcntl_at + 3, allow_at)));
    p.push(stmt(RET_K, SECCOMP_RET_ALLOW));
    p.push(stmt(RET_K, SECCOMP_RET_TRACE));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program as the kernel would on `(arch, nr, arg1)`.
    fn eval(p: &[sock_filter], arch: u32, nr: u32, arg1: u32) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = &p[pc];
            match i.code {
                LD_W_ABS => {
                    a = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG1_LO => arg1,
                        k => panic!("load of offset {k}"),
                    }
                }
                JEQ_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                c => panic!("opcode {c}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn stops_on_listed_calls_and_duplicating_fcntl_only() {
        let p = program();
        assert!(p.len() < 256);
        for nr in TRACED {
            assert_eq!(eval(&p, AUDIT_ARCH_X86_64, *nr as u32, 0), SECCOMP_RET_TRACE, "syscall {nr}");
        }
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_mmap, libc::SYS_getpid] {
            assert_eq!(eval(&p, AUDIT_ARCH_X86_64, nr as u32, 0), SECCOMP_RET_ALLOW);
        }
        let fcntl = libc::SYS_fcntl as u32;
        assert_eq!(eval(&p, AUDIT_ARCH_X86_64, fcntl, libc::F_DUPFD as u32), SECCOMP_RET_TRACE);
        assert_eq!(eval(&p, AUDIT_ARCH_X86_64, fcntl, libc::F_DUPFD_CLOEXEC as u32), SECCOMP_RET_TRACE);
        assert_eq!(eval(&p, AUDIT_ARCH_X86_64, fcntl, libc::F_GETFL as u32), SECCOMP_RET_ALLOW);
        // Another ABI passes unseen.
        assert_eq!(eval(&p, 0x4000_0003, libc::SYS_execve as u32, 0), SECCOMP_RET_ALLOW);
    }
}
