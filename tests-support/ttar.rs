//! node_exporter's captured host: its `/proc` and, unpacked from the ttar
//! archive, its `/sys`; shared by the host collector's tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/data/host/node-exporter-fixtures` (the including crate sits
/// at `crates/NAME`).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/host/node-exporter-fixtures")
}

/// A temporary root holding the fixtures' `proc/` and, with `sys`, the
/// unpacked `sys/`.
pub fn fixture_tree(sys: bool) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    if sys {
        untar(&fixtures().join("sys.ttar"), tmp.path());
    }
    let status = Command::new("cp").arg("-r").arg(fixtures().join("proc")).arg(tmp.path().join("proc")).status().unwrap();
    assert!(status.success());
    tmp
}

/// Unpacks a ttar archive (Prometheus' text tar: `Directory:`, `Path:` +
/// `Lines: N` + N lines, `SymlinkTo:`, `Mode:`, `# ttar - - -` separators)
/// under `into`.
fn untar(archive: &Path, into: &Path) {
    let text = std::fs::read_to_string(archive).unwrap();
    let mut lines = text.lines();
    let mut path: Option<PathBuf> = None;
    while let Some(line) = lines.next() {
        if let Some(d) = line.strip_prefix("Directory: ") {
            std::fs::create_dir_all(into.join(d)).unwrap();
        } else if let Some(p) = line.strip_prefix("Path: ") {
            path = Some(into.join(p));
        } else if let Some(n) = line.strip_prefix("Lines: ") {
            let n: usize = n.parse().unwrap();
            let body: Vec<&str> = (0..n).map(|_| lines.next().unwrap()).collect();
            let mut content = body.join("\n");
            if n > 0 {
                content.push('\n');
            }
            let content = content.replace("NULLBYTE", "\0").replace("EOF\n", "");
            let p = path.take().unwrap();
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        } else if let Some(t) = line.strip_prefix("SymlinkTo: ") {
            let p = path.take().unwrap();
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(t, p).unwrap();
        }
    }
}
