//! Shared output helpers: JSON printing, hex, progress bars.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Prints a JSON value on one line.
/// Prints a JSON value on one line and flushes, so that a reader of a pipe
/// sees each acknowledgement as soon as it is made.
pub fn print_json(v: &Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}").and_then(|()| out.flush());
}

/// Lowercase hex of a list of hashes.
pub fn hex_list(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
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
