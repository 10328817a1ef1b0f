//! Shared output helpers: JSON printing, progress bars.

use indicatif::{ProgressBar, ProgressStyle};

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
/// sees each acknowledgement as soon as it is made. Keys come out sorted,
/// whatever the type's field order.
pub fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_value(v) {
        Ok(v) => outln!("{v}"),
        Err(e) => {
            eprintln!("error: encoding the JSON output: {e}");
            std::process::exit(2);
        }
    }
}

/// A progress bar over `len` bytes of input (a spinner when the length is
/// unknown, 0), on standard error.
pub fn progress_bytes(len: u64, what: &str) -> ProgressBar {
    let pb = if len > 0 { ProgressBar::new(len) } else { ProgressBar::new_spinner() };
    styled(pb, what, "{spinner} {msg:12} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})")
}

/// A progress bar on stderr that hides itself when stderr is not a terminal.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    styled(ProgressBar::new(len), what, "{spinner} {msg:12} [{bar:40}] {human_pos}/{human_len} ({per_sec}, eta {eta})")
}

/// `pb` drawn with `template`, labelled `what`.
fn styled(pb: ProgressBar, what: &str, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}
