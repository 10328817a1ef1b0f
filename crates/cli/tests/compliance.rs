//! `zkaudit compliance` and `zkaudit query` through the real binary, over
//! the example evidence streams in examples/events/: exact verdicts and
//! exact violating events for every rule of every pack.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_zkaudit");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(root()).output().unwrap()
}

/// A fresh log holding one example stream; returns (tempdir, log dir).
fn log_with(stream: &str) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log").display().to_string();
    assert!(run(&["log", "init", &dir, "--origin", "compliance.test/log"]).status.success());
    let out = run(&["log", "append", &dir, &format!("examples/events/{stream}.jsonl")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, dir)
}

/// Runs a pack with --json; returns (exit code, report).
fn report(dir: &str, pack: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["compliance", dir, "--pack", pack, "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

/// (rule, verdict, [(leaf index, reason)]).
type RuleVerdict = (String, String, Vec<(u64, String)>);

/// One [`RuleVerdict`] per rule of a report.
fn verdicts(v: &Value) -> Vec<RuleVerdict> {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let vs =
                r["violations"].as_array().unwrap().iter().map(|x| (x["leaf_index"].as_u64().unwrap(), x["reason"].as_str().unwrap().to_owned())).collect();
            (r["id"].as_str().unwrap().to_owned(), r["verdict"].as_str().unwrap().to_owned(), vs)
        })
        .collect()
}

fn v(rule: &str, verdict: &str, violations: &[(u64, &str)]) -> RuleVerdict {
    (rule.into(), verdict.into(), violations.iter().map(|(i, r)| (*i, (*r).to_owned())).collect())
}

/// Checks the report's evidence: every named event has an inclusion proof
/// against the report's checkpoint, and the pack hash is the file's.
fn check_evidence(rep: &Value, pack: &str) {
    let text = std::fs::read(root().join(format!("packs/{pack}.pl"))).unwrap();
    assert_eq!(rep["pack"]["sha256"], hex::encode(Sha256::digest(&text)));
    assert_eq!(rep["pack"]["version"], "1.0.0");
    assert_eq!(rep["engine"]["prelude_sha256"].as_str().unwrap().len(), 64);
    let size = rep["checkpoint"]["tree_size"].as_u64().unwrap();
    let root_hash = rep["checkpoint"]["root_hash"].as_str().unwrap();
    let mut named: Vec<u64> =
        rep["rules"].as_array().unwrap().iter().flat_map(|r| r["events"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap())).collect();
    named.sort_unstable();
    named.dedup();
    let proven: Vec<u64> = rep["evidence"].as_array().unwrap().iter().map(|e| e["leaf_index"].as_u64().unwrap()).collect();
    assert_eq!(named, proven);
    for e in rep["evidence"].as_array().unwrap() {
        let p = &e["inclusion_proof"];
        assert_eq!((p["tree_size"].as_u64().unwrap(), p["root_hash"].as_str().unwrap()), (size, root_hash));
    }
}

#[test]
fn telecoms() {
    let (_t, dir) = log_with("telecoms");
    let (code, rep) = report(&dir, "telecoms", &[]);
    assert_eq!(code, 1, "a failing rule exits 1");
    let got = verdicts(&rep);
    assert_eq!(got[0].0, "uptime");
    assert_eq!(got[0].1, "fail");
    assert_eq!(got[0].2.len(), 1);
    assert_eq!(got[0].2[0].0, 42, "the gateway's outage");
    assert!(got[0].2[0].1.starts_with("uptime('sip-gateway-2',99.986") && got[0].2[0].1.ends_with(",min(99.999),outage_ms(340000))"), "{:?}", got[0]);
    assert_eq!(got[1], v("redundancy", "fail", &[(5, "spare_units('sip-gateway-2',1,min(2))")]));
    assert_eq!(got[2], v("failover", "fail", &[(54, "failover_ms(73,max(50))")]));
    // What each rule measured (the numbers of a SOC view).
    let measures: Vec<&serde_json::Value> = rep["rules"].as_array().unwrap().iter().map(|r| &r["measures"]).collect();
    assert!(measures[0][0]["value"].as_str().unwrap().starts_with("99.986"), "{measures:?}");
    assert_eq!(measures[1], &serde_json::json!([{"name": "min_spare_units", "value": "1"}]));
    assert_eq!(measures[2], &serde_json::json!([{"name": "max_failover_ms", "value": "73"}]));
    check_evidence(&rep, "telecoms");

    // Thresholds are parameters.
    let (code, rep) = report(&dir, "telecoms", &["--param", "max_failover_ms=80", "--param", "min_spare_units=1", "--param", "min_uptime_percent=99.98"]);
    assert_eq!(code, 0);
    assert!(verdicts(&rep).iter().all(|r| r.1 == "pass"), "{rep}");
    assert_eq!(rep["params"]["max_failover_ms"], "80");
    // A window before the gateway's outage and the 73 ms failover: the router's
    // 12 s outage over the 16 days measured is still within five nines.
    let (_, rep) = report(&dir, "telecoms", &["--to", "2026-01-18T00:00:00Z"]);
    let got = verdicts(&rep);
    assert_eq!((got[0].1.as_str(), got[2].1.as_str()), ("pass", "pass"));
    assert_eq!(rep["rules"][2]["events"], serde_json::json!([12, 31]), "the failovers the pass rests on");
    // An unknown parameter is an error naming the known ones.
    let out = run(&["compliance", &dir, "--pack", "telecoms", "--param", "max_failover=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_failover_ms"));
}

#[test]
fn trading() {
    let (_t, dir) = log_with("trading");
    let (_, rep) = report(&dir, "trading", &[]);
    assert_eq!(
        verdicts(&rep),
        [
            v("latency", "fail", &[(5, "latency_ns(1450000,max(1000000))")]),
            v("timestamp_precision", "fail", &[(7, "precision_ns(1000000,max(1000),'2026-03-02T14:30:21.001Z')")]),
            v("segregation", "fail", &[(11, "wall(trading,research)"), (13, "tenant(acme,globex)")]),
        ]
    );
    check_evidence(&rep, "trading");
}

#[test]
fn gmp() {
    let (_t, dir) = log_with("gmp");
    let (_, rep) = report(&dir, "gmp", &[]);
    assert_eq!(
        verdicts(&rep),
        [
            v("batch_records", "fail", &[(6, "incomplete([operator])"), (7, "incomplete([output])")]),
            v("validation", "fail", &[(1, "missing(validation_report,'MES-2')")]),
            v("change_control", "fail", &[(11, "implemented_before_approval('CR-312')")]),
        ]
    );
    check_evidence(&rep, "gmp");
    // The evidence behind change control: both changes' request, approval and implementation.
    assert_eq!(rep["rules"][2]["events"], serde_json::json!([8, 9, 10, 11, 12, 13]));
}

#[test]
fn itil_with_html_report() {
    let (t, dir) = log_with("itil");
    let html = t.path().join("itil.html");
    let (_, rep) = report(&dir, "itil", &["--html", html.to_str().unwrap()]);
    let got = verdicts(&rep);
    assert_eq!(got[0], v("incident_response", "fail", &[(18, "response_minutes('INC-1002',22.0,max(15))")]));
    assert_eq!(got[1], v("change_approval", "fail", &[(54, "implemented_before_cab_approval('CHG-78')")]));
    assert_eq!((got[2].0.as_str(), got[2].1.as_str(), got[2].2[0].0), ("availability", "fail", 32));
    assert!(got[2].2[0].1.starts_with("availability(email,99.97"), "{:?}", got[2]);
    check_evidence(&rep, "itil");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("implemented_before_cab_approval(&#39;CHG-78&#39;)"));
    assert!(page.contains("@media print"));
    assert!(page.contains(rep["pack"]["sha256"].as_str().unwrap()));
}

#[test]
fn query_json_answers_carry_checkable_evidence() {
    let (t, dir) = log_with("telecoms");
    let out = run(&["query", &dir, "event(I, _, _, failover, _, _), meta(I, duration_ms, Ms), Ms > 50.", "--json"]);
    assert!(out.status.success());
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["answers"][0]["bindings"], serde_json::json!({"I": 54, "Ms": 73}));
    // Re-check the evidence with the ledger CLI alone.
    let ev = &q["answers"][0]["events"][0];
    let (proof, cp, entry) = (t.path().join("proof.json"), t.path().join("checkpoint"), t.path().join("entry.json"));
    std::fs::write(&proof, ev["inclusion_proof"].to_string()).unwrap();
    std::fs::write(&cp, q["checkpoint"]["note"].as_str().unwrap()).unwrap();
    std::fs::write(&entry, ev["entry"].as_str().unwrap()).unwrap();
    let vkey = format!("{dir}/log.vkey");
    let out = run(&[
        "log",
        "check-inclusion",
        "--proof",
        proof.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--vkey",
        &vkey,
        "--entry",
        entry.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // No answer: exit 1, "false."; a syntax error: exit 1 with the error, not a crash.
    let out = run(&["query", &dir, "event(I, _, _, no_such_type, _, _)."]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(1), "false."));
    let out = run(&["query", &dir, "event(I, _, _"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax error"));

    // The prompt reads goals from stdin; an error in one does not affect the next.
    let mut child = Command::new(BIN)
        .args(["query", &dir])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"foo(.\nX = 1.\nevent(I, _, _, failover,\n  _, _), meta(I, duration_ms, 73).\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "X = 1.\nI = 54.    % events: 54\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax error"));

    // Deleting the index and rebuilding it gives identical answers.
    let goal = "event(I, T, _, service_down, _, _), meta(I, service, S).";
    let before = run(&["query", &dir, goal, "--json"]).stdout;
    for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(Path::new(&dir).join(f));
    }
    assert!(run(&["log", "reindex", &dir]).status.success());
    assert_eq!(run(&["query", &dir, goal, "--json"]).stdout, before);
}

#[test]
fn a_single_query_stops_at_its_wall_clock_limit() {
    let (_t, dir) = log_with("gmp");
    let start = std::time::Instant::now();
    let out = run(&["query", &dir, "length(L, N), N < 0.", "--timeout", "1", "--inference-limit", "100000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("time limit"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}
