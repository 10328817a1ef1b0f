//! `zkaudit record` as users run it: the real binary, a real ledger, a
//! real `zkaudit serve` on loopback that is killed mid-run and restarted,
//! and the gcc lineage example.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");

fn zk(args: &[&str], cwd: &Path) -> Output {
    Command::new(ZKAUDIT).args(args).current_dir(cwd).output().unwrap()
}

fn ledger(tmp: &Path) -> PathBuf {
    let dir = tmp.join("ledger");
    let out = Command::new(ZKAUDIT).args(["log", "init"]).arg(&dir).args(["--origin", "test.example/record"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn size(ledger: &Path) -> u64 {
    zkaudit_tlog::LogReader::open(ledger).unwrap().size()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_input_is_refused_before_anything_runs_or_is_appended() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ledger(tmp.path());
    let d = dir.to_str().unwrap();
    let marker = tmp.path().join("ran");
    let m = marker.to_str().unwrap();

    let out = zk(&["record", "--ledger", d, "--", "zkaudit-no-such-command", "x"], tmp.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zkaudit-no-such-command: command not found"), "{}", String::from_utf8_lossy(&out.stderr));

    let script = tmp.path().join("script.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {m}\n")).unwrap();
    let out = zk(&["record", "--ledger", d, "--", script.to_str().unwrap()], tmp.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("script.sh: not executable") && err.contains("no execute permission"), "{err}");

    let out = zk(&["record", "--ledger", tmp.path().join("nope").to_str().unwrap(), "--", "touch", m], tmp.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a zkaudit log"), "{}", String::from_utf8_lossy(&out.stderr));

    assert!(!marker.exists(), "no command ran");
    assert_eq!(size(&dir), 0, "nothing was appended");

    // The command's own exit status comes back, and so does death by a signal.
    let out = zk(&["record", "-q", "--ledger", d, "--", "sh", "-c", "echo out; echo err >&2; exit 3"], tmp.path());
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = zk(&["record", "-q", "--ledger", d, "--", "sh", "-c", "kill -TERM $$"], tmp.path());
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(out.status.signal(), Some(15));
    assert!(size(&dir) > 0);
}

/// A `zkaudit serve` on `addr` (`127.0.0.1:0` for any port).
fn serve(dir: &Path, addr: &str) -> (Child, String) {
    let mut child = Command::new(ZKAUDIT)
        .args(["serve", "--workers", "0", "--addr", addr, "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    (child, url)
}

fn spooled(spool: &Path) -> usize {
    std::fs::read_dir(spool).map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl")).count()).unwrap_or(0)
}

#[test]
fn a_killed_server_gets_every_event_exactly_once_from_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ledger(tmp.path());
    let out = zk(&["token", "create", dir.to_str().unwrap(), "--scope", "submit", "--tenant", "rec"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mut server, url) = serve(&dir, "127.0.0.1:0");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (spool, report) = (tmp.path().join("spool"), tmp.path().join("report.json"));
    // Phase one, then wait for `go` (the server is killed meanwhile), then phase two.
    let script = "echo one > a; cat a > b; while [ ! -e go ]; do sleep 0.05; done; echo two > c; cat c > d";
    let mut rec = Command::new(ZKAUDIT)
        .args(["record", "--server", &url, "--token", &token, "--spool", spool.to_str().unwrap(), "--report", report.to_str().unwrap()])
        .args(["--", "sh", "-c", script])
        .current_dir(&work)
        .spawn()
        .unwrap();
    wait_for("phase one to reach the server", || size(&dir) > 0);
    let delivered_before = size(&dir);
    server.kill().unwrap();
    server.wait().unwrap();
    std::fs::write(work.join("go"), "").unwrap();
    wait_for("phase two to be spooled", || spooled(&spool) > 0);
    assert_eq!(size(&dir), delivered_before, "nothing reached the dead server");
    let (mut server, _) = serve(&dir, url.trim_start_matches("http://"));
    let status = rec.wait().unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    assert!(status.success());

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let sent = r["sink"]["events"].as_u64().unwrap();
    assert!(r["sink"]["retries"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["sink"]["left_in_spool"], 0);
    assert_eq!(spooled(&spool), 0);
    // Exactly once: as many entries as events sent, all distinct, and
    // phase two's file writes among them.
    let reader = zkaudit_tlog::LogReader::open(&dir).unwrap();
    assert_eq!(reader.size(), sent);
    let entries: std::collections::HashSet<Vec<u8>> = (0..reader.size()).map(|i| reader.entry(i).unwrap()).collect();
    assert_eq!(entries.len() as u64, sent);
    let d_path = work.join("d").canonicalize().unwrap();
    let has_d = entries.iter().any(|e| {
        let v: Value = serde_json::from_slice(e).unwrap();
        v["type"] == "file_write" && v["metadata"]["file.path"] == d_path.to_str().unwrap()
    });
    assert!(has_d, "phase two's write of d was delivered");
}

#[test]
fn a_refused_token_stops_the_sink_and_keeps_the_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ledger(tmp.path());
    let (mut server, url) = serve(&dir, "127.0.0.1:0");
    let spool = tmp.path().join("spool");
    let out = zk(&["record", "--server", &url, "--token", "not-a-token", "--spool", spool.to_str().unwrap(), "--", "true"], tmp.path());
    server.kill().unwrap();
    let _ = server.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401") && err.contains("kept in spool"), "{err}");
    assert_eq!(spooled(&spool), 1);
    assert_eq!(size(&dir), 0);
}

#[test]
fn the_gcc_lineage_example_traces_hello_c_to_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gcc-lineage/run.sh");
    let out = Command::new("bash").arg(example).env("ZKAUDIT_BIN", ZKAUDIT).env("OUT", tmp.path()).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("as expected"));
}
