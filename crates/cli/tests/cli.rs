//! The CLI contract, driven through the real binary as scripts would.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_zkaudit");

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().unwrap()
}

fn ok(args: &[&str], dir: &Path) -> String {
    let out = run(args, dir);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn event(i: usize) -> String {
    format!(
        r#"{{"version":"1.0","timestamp":"2026-11-21T09:00:00.{i:09}Z","layer":"computation","type":"cli_test","input":"sha256:{i:064x}","output":"sha256:{:064x}","metadata":{{"i":{i}}}}}"#,
        i + 1
    )
}

fn write_events(path: &Path, n: usize) {
    std::fs::write(path, (0..n).map(|i| event(i) + "\n").collect::<String>()).unwrap();
}

#[test]
fn init_prints_vkey_and_protects_the_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = run(&["log", "init", "log", "--origin", "example.com/audit"], d);
    assert!(out.status.success());
    let vkey = String::from_utf8(out.stdout).unwrap();
    // base64 may itself contain '+': only the first two are separators.
    let parts: Vec<&str> = vkey.trim().splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "vkey is <name>+<hex id>+<base64>: {vkey}");
    assert_eq!(parts[0], "example.com/audit");
    assert_eq!(parts[1].len(), 8);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(d.join("log/private/log.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(d.join("log/private/log.key")).unwrap();
    let secret_b64 = secret.trim().splitn(5, '+').nth(4).unwrap();
    assert_eq!(secret_b64.len(), 44, "base64 of 0x01 and a 32-byte seed");
    assert!(!vkey.contains(secret_b64) && !String::from_utf8_lossy(&out.stderr).contains(secret_b64));
    // A second init must not clobber the log or its key.
    assert!(!run(&["log", "init", "log", "--origin", "example.com/audit"], d).status.success());
    assert_eq!(std::fs::read_to_string(d.join("log/private/log.key")).unwrap(), secret);
}

#[test]
fn append_get_prove_check_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let vkey = ok(&["log", "init", "log", "--origin", "example.com/audit"], d);
    write_events(&d.join("e.jsonl"), 300);
    let a: serde_json::Value = serde_json::from_str(&ok(&["log", "append", "log", "e.jsonl", "--json"], d)).unwrap();
    assert_eq!(a["first_index"], 0);
    assert_eq!(a["count"], 300);
    assert_eq!(a["tree_size"], 300);
    assert_eq!(a["root_hash"].as_str().unwrap().len(), 64);
    // Standard input works too.
    let mut child = Command::new(BIN)
        .args(["log", "append", "log", "-", "--json"])
        .current_dir(d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all((event(300) + "\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((a["first_index"].as_u64(), a["tree_size"].as_u64()), (Some(300), Some(301)));

    // The entry is the RFC 8785 form of the event: keys sorted.
    let entry = ok(&["log", "get", "log", "--index", "7"], d);
    assert!(entry.starts_with(r#"{"input":"sha256:"#), "{entry}");
    let checkpoint = ok(&["log", "checkpoint", "log"], d);
    assert_eq!(checkpoint.as_bytes(), std::fs::read(d.join("log/checkpoint")).unwrap());
    assert!(checkpoint.starts_with("example.com/audit\n301\n"));

    let proof = ok(&["log", "inclusion", "log", "--index", "7", "--json"], d);
    let p: serde_json::Value = serde_json::from_str(&proof).unwrap();
    assert_eq!((p["leaf_index"].as_u64(), p["tree_size"].as_u64()), (Some(7), Some(301)));
    assert_eq!(p["hashes"].as_array().unwrap().len(), 9);
    std::fs::write(d.join("proof.json"), &proof).unwrap();
    std::fs::write(d.join("cp"), &checkpoint).unwrap();
    std::fs::write(d.join("entry"), &entry).unwrap();
    let check = ["log", "check-inclusion", "--proof", "proof.json", "--checkpoint", "cp", "--vkey", vkey.trim(), "--entry", "entry"];
    assert!(ok(&check, d).starts_with("ok leaf_index=7 tree_size=301"));
    // Any altered hash, index or size in the proof is rejected.
    let mut bad = p.clone();
    bad["hashes"][3] = serde_json::json!("00".repeat(32));
    std::fs::write(d.join("proof.json"), bad.to_string()).unwrap();
    assert!(!run(&check, d).status.success());
    let mut bad = p.clone();
    bad["leaf_index"] = serde_json::json!(6);
    std::fs::write(d.join("proof.json"), bad.to_string()).unwrap();
    assert!(!run(&check, d).status.success());
    let mut bad = p.clone();
    bad["tree_size"] = serde_json::json!(300);
    std::fs::write(d.join("proof.json"), bad.to_string()).unwrap();
    assert!(!run(&check, d).status.success());
    // A different entry is rejected.
    std::fs::write(d.join("proof.json"), &proof).unwrap();
    std::fs::write(d.join("entry"), ok(&["log", "get", "log", "--index", "8"], d)).unwrap();
    assert!(!run(&check, d).status.success());

    let c: serde_json::Value = serde_json::from_str(&ok(&["log", "consistency", "log", "--old", "100", "--json"], d)).unwrap();
    assert_eq!((c["old_size"].as_u64(), c["new_size"].as_u64()), (Some(100), Some(301)));
    assert_eq!(c["new_root"], p["root_hash"]);

    let v = ok(&["log", "verify", "log", "--vkey", vkey.trim()], d);
    assert_eq!(v.trim(), format!("ok size=301 root={}", p["root_hash"].as_str().unwrap()));
    // Another log's key does not verify this log.
    let other = ok(&["log", "init", "other", "--origin", "example.com/audit"], d);
    let out = run(&["log", "verify", "log", "--vkey", other.trim()], d);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checkpoint"));
    // Out-of-range requests are errors, not panics.
    for args in [
        &["log", "get", "log", "--index", "301"][..],
        &["log", "inclusion", "log", "--index", "5", "--tree-size", "400"],
        &["log", "consistency", "log", "--old", "302"],
    ] {
        let out = run(args, d);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
}

#[test]
fn malformed_batch_is_rejected_whole_with_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(&["log", "init", "log", "--origin", "example.com/audit"], d);
    let before = std::fs::read(d.join("log/checkpoint")).unwrap();
    let bad_digest = event(2).replace("sha256:0000", "sha256:ABCD");
    let bad_ts = event(3).replace("2026-11-21T09:00:00.", "2026-11-21 09:00:00,");
    let missing = event(4).replace(r#""layer":"computation","#, "");
    let big = event(5).replace(r#""i":5"#, &format!(r#""i":"{}""#, "x".repeat(70_000)));
    let lines = [event(0), event(1), bad_digest, bad_ts, missing, big, "{not json".into()].join("\n");
    std::fs::write(d.join("bad.jsonl"), lines).unwrap();
    let out = run(&["log", "append", "log", "bad.jsonl"], d);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "5 malformed",
        "bad.jsonl:3",
        "field `input`",
        "bad.jsonl:4",
        "field `timestamp`",
        "bad.jsonl:5",
        "field `layer`",
        "bad.jsonl:6",
        "65535",
        "bad.jsonl:7:",
    ] {
        assert!(err.contains(want), "stderr lacks {want:?}:\n{err}");
    }
    assert_eq!(std::fs::read(d.join("log/checkpoint")).unwrap(), before, "nothing from the bad batch was written");
    assert!(!d.join("log/tile").exists());
}

/// An input of many 1 MiB blocks is streamed into one commit whose entries
/// are exactly the serial parser's; with --batch-size, a bad line deep in
/// the input stops it after the batches before it, and the error says so.
#[test]
fn large_inputs_stream_and_batches_before_a_bad_line_stay_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(&["log", "init", "log", "--origin", "example.com/audit"], d);
    let n = 30_000;
    let text: String = (0..n).map(|i| event(i) + "\n").collect();
    assert!(text.len() > 8 << 20, "several parser blocks");
    std::fs::write(d.join("big.jsonl"), &text).unwrap();
    let a: serde_json::Value = serde_json::from_str(&ok(&["log", "append", "log", "big.jsonl", "--json"], d)).unwrap();
    assert_eq!((a["first_index"].as_u64(), a["count"].as_u64(), a["tree_size"].as_u64()), (Some(0), Some(n as u64), Some(n as u64)));
    let want = zkaudit_event::parse_jsonl(text.as_bytes(), "big").unwrap();
    let reader = zkaudit_tlog::LogReader::open(&d.join("log")).unwrap();
    reader
        .for_each_entry(0, n as u64, |i, e| {
            assert_eq!(e, &want[i as usize][..], "entry {i}");
            Ok(())
        })
        .unwrap();

    // A bad line at line 25,001 with batches of 10,000: two batches commit.
    let mut lines: Vec<String> = (0..n).map(event).collect();
    lines[25_000] = "{not json".into();
    std::fs::write(d.join("bad.jsonl"), lines.join("\n")).unwrap();
    let out = run(&["log", "append", "log", "bad.jsonl", "--batch-size", "10000", "--json"], d);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:25001:") && err.contains("up to tree size 50000"), "{err}");
    let acks: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(acks.iter().map(|a| a["tree_size"].as_u64().unwrap()).collect::<Vec<_>>(), [40_000, 50_000]);
    assert_eq!(zkaudit_tlog::LogReader::open(&d.join("log")).unwrap().size(), 50_000);
}
