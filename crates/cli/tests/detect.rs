//! `zkaudit detect` on replays of really recorded streams: the processes,
//! files and network of a real command recorded by `zkaudit record`,
//! replayed minute after minute for three hours on one host, with and
//! without injected anomalies (a burst, a new executable started by a
//! known one, a new destination, failed logins, a slow failover), and the
//! host samples of `zkaudit collect host` with and without a real
//! `stress-ng` CPU spike. Every injected anomaly must be found; the clean
//! replay gives no finding at all (N = 0), the clean host run at most one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::{json, Value};

#[path = "../../../tests-support/daemon.rs"]
mod daemon;

const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");
/// The replay starts here: 2026-03-01T00:00:00Z.
const BASE_S: i64 = 1_772_323_200;
const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The host test measures CPU: nothing else of this binary runs meanwhile.
static CPU: Mutex<()> = Mutex::new(());

fn zk(args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(ZKAUDIT).args(args).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "zkaudit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn ledger(t: &Path, name: &str) -> PathBuf {
    zk(&["log", "init", name, "--origin", &format!("test.example/{name}")], t);
    t.join(name)
}

fn entries(dir: &Path) -> Vec<Value> {
    let r = zkaudit_tlog::LogReader::open(dir).unwrap();
    let mut out = Vec::new();
    r.for_each_entry(0, r.size(), |_, b| {
        out.push(serde_json::from_slice(b).unwrap());
        Ok(())
    })
    .unwrap();
    out
}

fn ts(s: i64, ms: i64) -> String {
    zkaudit_event::Timestamp::from_unix_nanos(i128::from(s) * 1_000_000_000 + i128::from(ms) * 1_000_000).unwrap().as_str().to_owned()
}

/// The recorded events re-timed into minute `m` (+ `ms` offset), on host
/// `web-1`, with process entity IDs made unique to the copy.
fn copy(recorded: &[Value], m: i64, ms: i64, tag: &str) -> Vec<Value> {
    recorded
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let mut e = e.clone();
            e["timestamp"] = json!(ts(BASE_S + m * 60, ms + k as i64 * 100));
            let md = e["metadata"].as_object_mut().unwrap();
            md.insert("host.name".into(), json!("web-1"));
            for key in ["process.entity_id", "process.parent.entity_id"] {
                if let Some(Value::String(id)) = md.get(key) {
                    let id = format!("{id}-{tag}");
                    md.insert(key.into(), json!(id));
                }
            }
            e
        })
        .collect()
}

fn event(m: i64, s: i64, layer: &str, kind: &str, metadata: Value) -> Value {
    let mut md = metadata;
    md["host.name"] = json!("web-1");
    json!({"version": "1.0", "timestamp": ts(BASE_S + m * 60 + s, 0), "layer": layer, "type": kind, "input": EMPTY, "output": EMPTY, "metadata": md})
}

fn login_failed(m: i64, s: i64, ip: &str) -> Value {
    event(m, s, "application", "authentication", json!({"event.outcome": "failure", "source.ip": ip, "user.name": "root"}))
}

fn failover(m: i64, ms: u64) -> Value {
    event(m, 0, "network", "failover", json!({"duration_ms": ms, "service": "core-router-east"}))
}

/// Three hours of the recorded stream, a failed login every half hour and
/// a fast failover every hour; with `inject`, the anomalies on top.
fn replay(recorded: &[Value], inject: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for m in 0..180 {
        out.extend(copy(recorded, m, 0, &m.to_string()));
        if m % 30 == 15 {
            out.push(login_failed(m, 30, "192.0.2.1"));
        }
        if m % 60 == 40 {
            out.push(failover(m, 18));
        }
    }
    if inject {
        // A burst: forty more copies within minute 150.
        for j in 0..40 {
            out.extend(copy(recorded, 150, 5 + j, &format!("150-b{j}")));
        }
        // A new executable at minute 160, started by the recorded shell.
        let shell = recorded.iter().find(|e| e["type"] == "process_exec").unwrap();
        let shell_id = format!("{}-160", shell["metadata"]["process.entity_id"].as_str().unwrap());
        out.push(event(160, 30, "computation", "process_exec", json!({"process.executable": "/tmp/.cache/xmrig", "process.entity_id": "injected-1", "process.parent.entity_id": shell_id, "process.args": ["xmrig"]})));
        // A new destination for the shell at minute 170.
        let id = format!("{}-170", shell["metadata"]["process.entity_id"].as_str().unwrap());
        out.push(event(170, 30, "network", "network_connect", json!({"process.entity_id": id, "destination.ip": "203.0.113.7", "destination.port": 4444})));
        // Six failed logins from one source within a minute, at minute 120.
        for s in 0..6 {
            out.push(login_failed(120, s * 9, "198.51.100.9"));
        }
        // A slow failover at minute 140.
        out.push(failover(140, 73));
    }
    out
}

fn append(dir: &Path, events: &[Value]) {
    let file = dir.with_extension("jsonl");
    std::fs::write(&file, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    zk(&["log", "append", dir.to_str().unwrap(), file.to_str().unwrap()], dir.parent().unwrap());
}

fn detect(dir: &Path, rules: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["detect", "--ledger", dir.to_str().unwrap(), "--rules", rules.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    serde_json::from_slice(&zk(&args, dir.parent().unwrap()).stdout).unwrap()
}

fn found(r: &Value) -> Vec<(String, String, String)> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_owned(), f["subject"].as_str().unwrap().to_owned(), f["time_ns"].to_string()))
        .collect()
}

#[test]
fn every_injected_anomaly_is_found_and_the_clean_replay_gives_none() {
    let _cpu = CPU.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/detect/rules.toml");
    // The stream to replay: a real shell script, recorded.
    let rec = ledger(t, "recorded");
    std::fs::write(t.join("data.txt"), "alpha\nbeta\ngamma\n").unwrap();
    zk(
        &["record", "--ledger", "recorded", "--", "sh", "-c", "grep beta data.txt > hits.txt; sort data.txt | head -n 2 > top.txt; wc -l data.txt > count.txt"],
        t,
    );
    let recorded: Vec<Value> = entries(&rec).into_iter().filter(|e| e["type"] != "collector_gap").collect();
    assert!(recorded.iter().filter(|e| e["type"] == "process_exec").count() >= 4, "{recorded:?}");

    // Clean: no finding (N = 0).
    let clean = ledger(t, "clean");
    append(&clean, &replay(&recorded, false));
    let r = detect(&clean, &rules, &[]);
    assert_eq!(r["findings"], json!([]), "false findings on the clean replay: {:#}", r["findings"]);
    assert!(r["events_read"].as_u64().unwrap() > 180 * 4);

    // Injected: every anomaly found, and nothing else.
    let dirty = ledger(t, "dirty");
    append(&dirty, &replay(&recorded, true));
    let r = detect(&dirty, &rules, &[]);
    let f = found(&r);
    eprintln!("findings on the injected replay: {f:#?}");
    let minute = |m: i64| ((BASE_S + m * 60) * 1_000_000_000).to_string();
    let has = |rule: &str, subject: &dyn Fn(&str) -> bool| f.iter().any(|(r, s, _)| r == rule && subject(s));
    assert!(f.iter().any(|(r, s, t)| r == "rate_spike" && s == "computation/process_exec" && *t == minute(150)), "{f:#?}");
    assert!(has("new_executable", &|s| s == "/tmp/.cache/xmrig"), "{f:#?}");
    assert!(has("new_parent_child", &|s| s.ends_with(" -> /tmp/.cache/xmrig")), "{f:#?}");
    assert!(has("new_destination", &|s| s.ends_with(" -> 203.0.113.7:4444")), "{f:#?}");
    assert!(has("ssh-brute-force", &|s| s == "198.51.100.9"), "{f:#?}");
    assert!(has("slow-failover", &|_| true), "{f:#?}");
    let injected_minutes = [120, 140, 150, 160, 170].map(|m| (BASE_S + m * 60) * 1_000_000_000);
    for (rule, subject, t) in &f {
        let t: i64 = t.parse().unwrap();
        assert!(injected_minutes.iter().any(|m| (*m..*m + 60_000_000_000).contains(&t)), "a finding outside the injected minutes: {rule} {subject} at {t}");
    }
    assert_eq!(r["recorded"].as_u64().unwrap() as usize, f.len());

    // Findings are events naming their evidence; a second run adds none.
    let events = entries(&dirty);
    let findings: Vec<&Value> = events.iter().filter(|e| e["type"] == "finding").collect();
    assert_eq!(findings.len(), f.len());
    let brute = findings.iter().find(|e| e["metadata"]["rule.id"] == "ssh-brute-force").unwrap();
    assert_eq!(brute["metadata"]["ocsf.class_uid"], 2004);
    assert_eq!(brute["metadata"]["ocsf.severity"], "High");
    assert_eq!(brute["layer"], "application");
    let cited: Vec<u64> = brute["metadata"]["zkaudit.finding.events"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(cited.len(), 5, "{brute}");
    for i in &cited {
        assert_eq!(events[*i as usize]["metadata"]["source.ip"], "198.51.100.9");
    }
    // The auditor reads them with finding/4.
    let q: Value = serde_json::from_slice(&zk(&["query", "dirty", "finding(I, 'ssh-brute-force', S, E).", "--json"], t).stdout).unwrap();
    assert_eq!(q["answers"][0]["bindings"]["S"], "High", "{q}");
    assert_eq!(q["answers"][0]["bindings"]["E"], json!(cited), "{q}");
    let again = detect(&dirty, &rules, &[]);
    assert_eq!((again["recorded"].as_u64(), again["already_recorded"].as_u64()), (Some(0), Some(f.len() as u64)));
    assert_eq!(entries(&dirty).len(), events.len(), "nothing recorded twice");
}

#[test]
fn a_stress_ng_spike_is_a_host_metric_finding() {
    let _cpu = CPU.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("none.toml"), "").unwrap();
    let rules = t.join("none.toml");
    let collect = |dir: &Path, spike: bool| {
        let mut c = Command::new(ZKAUDIT)
            .args(["collect", "host", "--ledger"])
            .arg(dir)
            .args(["--interval", "0.5", "--count", "26"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if spike {
            std::thread::sleep(std::time::Duration::from_millis(8_500));
            let s = Command::new("stress-ng").args(["--cpu", "0", "--timeout", "3s", "--quiet"]).status().unwrap();
            assert!(s.success());
        }
        assert!(c.wait().unwrap().success());
    };
    let quiet = ledger(t, "quiet");
    collect(&quiet, false);
    let r = detect(&quiet, &rules, &[]);
    let q = found(&r);
    eprintln!("findings on the idle host: {q:?}");
    assert!(q.len() <= 1, "more than one false finding on an idle host: {q:#?}");

    let busy = ledger(t, "busy");
    collect(&busy, true);
    let r = detect(&busy, &rules, &[]);
    let cpu: Vec<&Value> =
        r["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == "host_metric_outlier" && f["subject"] == "system.cpu.utilization (busy)").collect();
    eprintln!("findings on the stressed host: {:#}", r["findings"]);
    assert_eq!(cpu.len(), 1, "one episode, one finding: {:#}", r["findings"]);
    // The first outlying sample may catch stress-ng starting: at least half busy.
    let busy: f64 = cpu[0]["message"].as_str().unwrap().split(" = ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(busy >= 0.5, "{}", cpu[0]);
}

#[test]
fn a_servers_log_is_read_by_tiles_against_its_checkpoint_and_findings_are_recorded_there() {
    let _cpu = CPU.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/detect/rules.toml");
    // Three hours of logins and failovers (more than one entry bundle), with
    // a brute force at minute 120 and a slow failover at minute 140.
    let mut events = Vec::new();
    for m in 0..180 {
        events.push(login_failed(m, 30, "192.0.2.1"));
        events.push(failover(m, 18));
    }
    events.extend((0..6).map(|s| login_failed(120, s * 9, "198.51.100.9")));
    events.push(failover(140, 73));
    let served = ledger(t, "served");
    append(&served, &events);
    // The same events in a local ledger: what a local run finds.
    let local = ledger(t, "local");
    append(&local, &events);
    let expected = found(&detect(&local, &rules, &["--dry-run"]));
    assert!(expected.iter().any(|(r, s, _)| r == "ssh-brute-force" && s == "198.51.100.9"), "{expected:#?}");
    assert!(expected.iter().any(|(r, _, _)| r == "slow-failover"), "{expected:#?}");

    let token = String::from_utf8(zk(&["token", "create", "served", "--scope", "submit", "--tenant", "detect"], t).stdout).unwrap().trim().to_owned();
    let server = daemon::Daemon::start(Command::new(ZKAUDIT).args(["serve", "--workers", "0", "--addr", "127.0.0.1:0", "--dir"]).arg(&served));
    let url = server.url.clone();
    let vkey = served.join("log.vkey");
    let remote = |extra: &[&str]| {
        let mut args = vec!["detect", "--server", &url, "--token", &token, "--rules", rules.to_str().unwrap(), "--spool", "spool", "--json"];
        args.extend_from_slice(extra);
        Command::new(ZKAUDIT).args(&args).current_dir(t).output().unwrap()
    };
    let ok = |out: Output| -> Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // Without the log's key, nothing is read; with another log's, refused.
    let out = remote(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the log's verifier key"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = remote(&["--vkey", local.join("log.vkey").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match the log origin"), "{}", String::from_utf8_lossy(&out.stderr));

    // Read by tiles: the same findings as the local run, recorded in the
    // server's ledger; a second run records none of them again.
    let before = entries(&served).len();
    let r = ok(remote(&["--vkey", vkey.to_str().unwrap()]));
    assert_eq!(found(&r), expected);
    assert_eq!(r["tree_size"].as_u64(), Some(before as u64));
    assert_eq!(r["events_read"].as_u64(), Some(events.len() as u64));
    assert_eq!(r["recorded"].as_u64(), Some(expected.len() as u64));
    let after = entries(&served);
    let recorded: Vec<&Value> = after.iter().filter(|e| e["type"] == "finding").collect();
    assert_eq!((after.len(), recorded.len()), (before + expected.len(), expected.len()));
    let again = ok(remote(&["--vkey", vkey.to_str().unwrap()]));
    assert_eq!((again["recorded"].as_u64(), again["already_recorded"].as_u64()), (Some(0), Some(expected.len() as u64)));
    assert_eq!(entries(&served).len(), after.len(), "nothing recorded twice");

    // One flipped byte in a served entry bundle: the entries no longer hash
    // to the signed root, so nothing is detected or recorded.
    let bundle = served.join("tile/entries/000");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.iter().position(|&b| b == b'7').unwrap();
    bytes[at] = b'8';
    std::fs::write(&bundle, bytes).unwrap();
    let out = remote(&["--vkey", vkey.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tile/entries") && err.contains("the signed checkpoint says"), "{err}");
    assert_eq!(entries(&served).len(), after.len());
    assert!(server.stop().success());
}
