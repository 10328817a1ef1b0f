//! `zkaudit record -- CMD`: runs one command and records what it and all
//! its descendants do, as `strace -f` sees it, into a collector sink.
//!
//! The command runs under ptrace with a seccomp-bpf filter ([`seccomp`])
//! that stops it only on the calls of interest; everything else runs at
//! full speed. From those stops the tracer ([`tracer`]) records:
//!
//! * processes: `process_exec` (path, argv, cwd, uid, the executable's
//!   SHA-256), `process_fork` (only for a child that does something
//!   before it execs, or never execs), `process_exit` (exit code or
//!   signal, CPU time); OCSF Process Activity 1007;
//! * files: `file_read` (digest of the content when opened for reading),
//!   `file_write` (digest when the last descriptor closes), `file_rename`,
//!   `file_delete`, `file_chmod` (to executable); OCSF File System
//!   Activity 1001;
//! * network: `network_connect`, `network_bind`, `network_accept` with
//!   addresses and ports, and `network_close` with bytes sent and
//!   received (TCP); OCSF Network Activity 4001.
//!
//! Each process image gets a `process.entity_id` unique across reboots
//! (from the boot ID, pid, start time and the boot-clock time of the
//! exec). Lineage goes in `parents`: a process event names its parent
//! process's event; a written file's event names its process's event, the
//! executable's digest and the digests of everything that process had read.
//!
//! It owns the tracing and what the events say; it must not decide where
//! events go (the `zkaudit-collect` sink does) nor parse arguments. Linux
//! on x86_64 only (ptrace register layout and syscall numbers).

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("zkaudit-record traces Linux x86_64 processes only");

pub mod seccomp;
mod sys;
pub mod tracer;

pub use tracer::{record, resolve, CommandStatus, Program, RecordError, Stats};

use std::ffi::OsString;
use std::path::Path;

use zkaudit_collect::{Destination, Report, Sink, SinkOptions};
use zkaudit_event::Layer;

/// The outcome of [`run`].
#[derive(Debug)]
pub struct Recorded {
    /// How the command ended.
    pub status: CommandStatus,
    /// What the tracer saw.
    pub stats: Stats,
    /// What the sink delivered.
    pub sink: Report,
}

/// The `zkaudit record` use case: resolves `argv[0]`, opens the sink to
/// `dest`, runs the command (in `cwd`, or ours) under the tracer, and
/// flushes the sink. Bad input (no such command, not executable, not a
/// ledger) fails before anything is started or appended.
///
/// # Errors
/// [`RecordError`]; for a sink that failed mid-run, the sink's own error.
pub fn run(argv: &[OsString], cwd: Option<&Path>, dest: Destination) -> Result<Recorded, RecordError> {
    let mut program = resolve(argv)?;
    program.cwd = cwd.map(Path::to_owned);
    let mut sink = Sink::open(dest, SinkOptions::new(tracer::COLLECTOR, Layer::Computation))?;
    match record(&program, &mut sink) {
        Ok((status, stats)) => Ok(Recorded { status, stats, sink: sink.finish()? }),
        // The sink stopped: its own error says why.
        Err(RecordError::Sink(zkaudit_collect::SinkError::Stopped)) => {
            Err(sink.finish().err().map_or(RecordError::Sink(zkaudit_collect::SinkError::Stopped), RecordError::Sink))
        }
        Err(e) => Err(e),
    }
}

/// Ends this process as the command ended: the same exit code, or death
/// by the same signal.
pub fn exit_like(status: CommandStatus) -> ! {
    match status {
        CommandStatus::Exited(code) => std::process::exit(code),
        CommandStatus::Signaled(sig) => sys::die_by(sig),
    }
}
