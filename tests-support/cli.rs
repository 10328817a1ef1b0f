//! Running the real `zkaudit` binary in CLI integration tests: commands
//! that must succeed, a fresh ledger, and auditor queries' bindings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The binary under test.
pub const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");

/// Runs `cmd`, failing the test (with its output) unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// A new ledger at `tmp/ledger`.
pub fn ledger(tmp: &Path) -> PathBuf {
    let dir = tmp.join("ledger");
    run(Command::new(ZKAUDIT).args(["log", "init"]).arg(&dir).args(["--origin", "test.example/cli"]));
    dir
}

/// The bindings of every answer to `goal` (`zkaudit query` exits 1 when
/// there are none).
pub fn query(dir: &Path, goal: &str) -> Vec<Value> {
    let out = Command::new(ZKAUDIT).arg("query").arg(dir).arg(goal).args(["--json", "--max-answers", "1000"]).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{goal}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["answers"].as_array().unwrap().iter().map(|a| a["bindings"].clone()).collect()
}
