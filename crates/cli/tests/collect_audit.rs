//! `zkaudit collect audit` against the real kernel: it runs as the audit
//! daemon while `zkaudit record` traces the same commands, and both must
//! see the same execs (paths and argv); when SIGTERM stops it, the audit
//! settings and rules are as they were. Needs root (CAP_AUDIT_CONTROL).

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use zkaudit_linux_audit::netlink::Socket;

const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");

fn ledger(dir: &Path) -> PathBuf {
    let out = Command::new(ZKAUDIT).args(["log", "init"]).arg(dir).args(["--origin", "test.example/audit"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir.to_owned()
}

fn events(dir: &Path) -> Vec<Value> {
    let r = zkaudit_tlog::LogReader::open(dir).unwrap();
    (0..r.size()).map(|i| serde_json::from_slice(&r.entry(i).unwrap()).unwrap()).collect()
}

fn status() -> (u32, u32, u32) {
    let s = Socket::open(std::time::Duration::from_millis(200)).unwrap().status().expect("the audit netlink socket (needs root)");
    (s.enabled, s.backlog_limit, s.pid)
}

#[test]
fn collect_audit_sees_the_execs_record_sees_and_puts_everything_back() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (audit, rec) = (ledger(&tmp.path().join("audit")), ledger(&tmp.path().join("record")));
    let before = status();

    let mut collector = Command::new(ZKAUDIT)
        .args(["collect", "audit", "--ledger", audit.to_str().unwrap(), "--watch", work.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(collector.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("collecting: audit enabled=1 backlog_limit=8192"), "{line:?}");

    let script = "ls / > /dev/null; printf 'hi\\n' > f; cat f | tr a-z A-Z > g; \
                  python3 -c \"import socket; socket.socket().connect_ex(('127.0.0.1', 9))\"";
    let out = Command::new(ZKAUDIT).args(["record", "-q", "--ledger", rec.to_str().unwrap(), "--", "sh", "-c", script]).current_dir(&work).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(Command::new("kill").args(["-TERM", &collector.id().to_string()]).status().unwrap().success());
    let done = collector.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(status(), before, "enabled, backlog_limit and the daemon pid are back");

    // The same execs, path and argv, for every process the recorder traced.
    let exec = |e: &Value| -> (u64, String, Vec<String>) {
        let m = &e["metadata"];
        let args = m["process.args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
        (m["process.pid"].as_u64().unwrap(), m["process.executable"].as_str().unwrap().to_owned(), args)
    };
    let recorded: BTreeSet<_> = events(&rec).iter().filter(|e| e["type"] == "process_exec").map(exec).collect();
    let pids: BTreeSet<u64> = recorded.iter().map(|(p, _, _)| *p).collect();
    let a = events(&audit);
    let audited: BTreeSet<_> = a.iter().filter(|e| e["type"] == "process_exec").map(exec).filter(|(p, _, _)| pids.contains(p)).collect();
    assert!(recorded.len() >= 5, "{recorded:?}");
    assert_eq!(audited, recorded);
    // The connect, refused, seen by both; the watched directory's files.
    let connect = a.iter().find(|e| e["type"] == "network_connect" && e["metadata"]["destination.port"] == 9).expect("the connect to port 9");
    assert_eq!(connect["metadata"]["event.outcome"], "failure");
    assert_eq!(connect["metadata"]["ocsf.activity_id"], 4);
    let opened: BTreeSet<(String, String)> = a
        .iter()
        .filter(|e| e["type"] == "file_open")
        .map(|e| {
            (
                e["metadata"]["file.path"].as_str().unwrap().rsplit('/').next().unwrap().to_owned(),
                e["metadata"]["zkaudit.file.access"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [("f", "write"), ("f", "read"), ("g", "write")] {
        assert!(opened.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} in {opened:?}");
    }
    // Its own rules were removed: a second run finds none of them there.
    let again = Command::new(ZKAUDIT).args(["collect", "audit", "--ledger", audit.to_str().unwrap(), "--duration", "0.3", "--json"]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let o: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!((o["rules_added"].as_u64(), o["rules_preexisting"].as_u64()), (Some(1), Some(0)), "{o}");
    assert_eq!(status(), before);
}
