//! Shared output helpers: JSON printing, hex, progress bars.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Prints a JSON value on one line.
/// `print!` that treats a closed pipe (`zkaudit … | head`) as the end of
/// the output rather than a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        if let Err(e) = write!(o, $($t)*).and_then(|()| o.flush()) {
            $crate::output::stdout_failed(e);
        }
    }};
}

/// `println!` with the same closed-pipe handling as [`out!`].
macro_rules! outln {
    ($($t:tt)*) => {{
        out!($($t)*);
        out!("\n");
    }};
}

pub(crate) use {out, outln};

/// Ends the process after a failed write to stdout: quietly for a closed
/// pipe, with exit status 2 otherwise.
pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(2);
}

/// Prints a JSON value on one line and flushes, so that a reader of a pipe
/// sees each acknowledgement as soon as it is made.
pub fn print_json(v: &Value) {
    outln!("{v}");
}

/// A progress bar on stderr that hides itself when stderr is not a terminal.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{spinner} {msg:12} [{bar:40}] {human_pos}/{human_len} ({per_sec}, eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

/// For a child process run by a proof-server worker: exits (status 3) as
/// soon as standard input reaches its end, which happens when the worker
/// closes it or dies, so a prover never outlives its worker.
pub fn supervised() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin().lock();
        while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
}

/// Reports prover progress to a supervising worker as one JSON line on
/// stderr: `{"progress": "executing" | "proving" | "segment" | "compressing", …}`.
pub fn report_progress(p: &zkaudit_zkvm::Progress) {
    use zkaudit_zkvm::Progress;
    let v = match p {
        Progress::Executing => serde_json::json!({"progress": "executing"}),
        Progress::Executed { total_cycles, segments } => {
            serde_json::json!({"progress": "proving", "totalCycles": total_cycles, "segments": segments})
        }
        Progress::Segment { done, of } => serde_json::json!({"progress": "segment", "done": done, "of": of}),
        Progress::Compressing => serde_json::json!({"progress": "compressing"}),
    };
    eprintln!("{v}");
}
