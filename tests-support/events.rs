//! The example event streams, appended to a real log by integration tests.

use std::path::{Path, PathBuf};

use zkaudit_tlog::Log;

/// The repository root (the including crate sits at `crates/NAME`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Appends the lines of `examples/events/NAME.jsonl` to the log in `dir`.
pub fn append_stream(dir: &Path, name: &str) {
    let file = std::fs::File::open(root().join(format!("examples/events/{name}.jsonl"))).unwrap();
    let entries = zkaudit_event::parse_jsonl(std::io::BufReader::new(file), name).unwrap();
    Log::open(dir).unwrap().append(entries).unwrap();
}
