//! Crash safety: appending processes are killed with SIGKILL at random
//! points, many times over. After each kill `zkaudit log verify` passes, and
//! every index acknowledged before a kill holds identical bytes at the end.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_zkaudit");
const EVENTS: usize = 300;
const BATCH: usize = 25;

fn event_line(round: usize, proc_no: usize, i: usize) -> String {
    format!(
        r#"{{"version":"1.0","timestamp":"2026-11-21T10:{:02}:{:02}.{:09}Z","layer":"application","type":"crash_test","input":"sha256:{:064x}","output":"sha256:{:064x}","metadata":{{"round":{round},"proc":{proc_no},"i":{i},"pad":"{}"}}}}"#,
        round % 60,
        i % 60,
        i,
        round * 1000 + i,
        proc_no,
        "p".repeat(i % 40)
    )
}

/// Writes the input file for one process and returns the entry bytes it will produce.
fn write_input(path: &Path, round: usize, proc_no: usize) -> Vec<Vec<u8>> {
    let text: String = (0..EVENTS).map(|i| event_line(round, proc_no, i) + "\n").collect();
    std::fs::write(path, &text).unwrap();
    zkaudit_event::parse_jsonl(text.as_bytes(), "test").unwrap()
}

fn spawn_append(dir: &Path, input: &Path) -> Child {
    Command::new(BIN)
        .args(["log", "append"])
        .arg(dir)
        .arg(input)
        .args(["--json", "--batch-size", &BATCH.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Complete acknowledgement lines printed before the process died.
fn acks(child: &mut Child) -> Vec<(u64, usize)> {
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["first_index"].as_u64().unwrap(), v["count"].as_u64().unwrap() as usize)
        })
        .collect()
}

fn verify_ok(dir: &Path) {
    let out = Command::new(BIN).args(["log", "verify"]).arg(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.starts_with("ok size="), "log verify failed after a kill: {stdout}");
}

#[test]
fn sigkill_during_appends_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    assert!(Command::new(BIN).args(["log", "init"]).arg(&dir).args(["--origin", "crash.test/log"]).status().unwrap().success());

    let seed: u64 = rand::rng().random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut expected: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut record = |acks: &[(u64, usize)], entries: &[Vec<u8>]| {
        for (k, &(first, count)) in acks.iter().enumerate() {
            assert_eq!(count, BATCH.min(EVENTS - k * BATCH));
            for j in 0..count {
                assert!(expected.insert(first + j as u64, entries[k * BATCH + j].clone()).is_none(), "index {} acknowledged twice", first + j as u64);
            }
        }
    };

    // One uninterrupted run calibrates how long a whole append takes here.
    let input = tmp.path().join("calibrate.jsonl");
    let entries = write_input(&input, 0, 0);
    let t = Instant::now();
    let mut child = spawn_append(&dir, &input);
    child.wait().unwrap();
    let full = t.elapsed();
    let a = acks(&mut child);
    assert_eq!(a.len(), EVENTS.div_ceil(BATCH));
    record(&a, &entries);

    let mut partial_rounds = 0;
    for round in 1..=40 {
        // Every third round races two processes; only one of them is killed.
        let procs = if round % 3 == 0 { 2 } else { 1 };
        let mut children = Vec::new();
        for p in 0..procs {
            let input = tmp.path().join(format!("r{round}p{p}.jsonl"));
            let entries = write_input(&input, round, p);
            children.push((spawn_append(&dir, &input), entries));
        }
        std::thread::sleep(full.mul_f64(rng.random_range(0.0..1.3)));
        children[0].0.kill().unwrap();
        for (child, entries) in &mut children {
            child.wait().unwrap();
            let a = acks(child);
            if a.len() < EVENTS.div_ceil(BATCH) && !a.is_empty() {
                partial_rounds += 1;
            }
            record(&a, entries);
        }
        verify_ok(&dir);
    }
    assert!(partial_rounds > 0, "no kill landed between two acknowledged batches");

    // A clean append after all the kills still works, and everything
    // acknowledged is there, byte for byte.
    let input = tmp.path().join("final.jsonl");
    let entries = write_input(&input, 999, 0);
    let mut child = spawn_append(&dir, &input);
    assert!(child.wait().unwrap().success());
    record(&acks(&mut child), &entries);
    verify_ok(&dir);
    let reader = zkaudit_tlog::LogReader::open(&dir).unwrap();
    for (&i, bytes) in &expected {
        assert_eq!(&reader.entry(i).unwrap(), bytes, "acknowledged index {i} changed or vanished");
    }
    eprintln!("{} acknowledged entries checked; {partial_rounds} kills landed mid-input; final size {}", expected.len(), reader.size());
}

/// The index's position, read as another process would (`None` while empty).
fn index_position(path: &Path) -> Option<u64> {
    use zkaudit_index::Backend as _;
    let mut index = zkaudit_index::Sqlite::open(path).ok()?;
    index.position().ok().flatten().map(|p| p.tree_size)
}

/// The auditor's answers to `goal` as JSON, from the index `index`.
fn answers(dir: &Path, index: &Path, goal: &str) -> serde_json::Value {
    let out = Command::new(BIN).arg("query").arg(dir).arg(goal).arg("--index").arg(index).arg("--json").output().unwrap();
    assert!(out.status.success(), "{goal}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["answers"].clone()
}

/// A query's catch-up of the index is killed with SIGKILL part way: the
/// next query finishes it by itself, and every answer equals that of an
/// index rebuilt from the tiles alone.
#[test]
fn sigkill_during_an_index_catch_up_recovers_by_itself() {
    use zkaudit_index::Backend as _;
    const N: usize = 400_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    assert!(Command::new(BIN).args(["log", "init"]).arg(&dir).args(["--origin", "crash.test/index"]).status().unwrap().success());
    let input = tmp.path().join("events.jsonl");
    let text: String = (0..N)
        .map(|i| {
            let kind = if i.is_multiple_of(10_000) { "rare".to_owned() } else { format!("t{}", i % 7) };
            let flag = if i.is_multiple_of(50_000) { r#","flag":true"# } else { "" };
            format!(
                r#"{{"version":"1.0","timestamp":"2026-11-21T10:{:02}:{:02}.{:09}Z","layer":"{}","type":"{kind}","input":"sha256:{:064x}","output":"sha256:{:064x}","metadata":{{"i":{i}{flag}}}}}"#,
                (i / 60) % 60,
                i % 60,
                i,
                ["application", "network"][i % 2],
                i,
                i / 3,
            ) + "\n"
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    assert!(Command::new(BIN).args(["log", "append"]).arg(&dir).arg(&input).status().unwrap().success());

    let index = dir.join("index.sqlite");
    let mut killed_at = None;
    for _attempt in 0..5 {
        let _ = std::fs::remove_file(&index);
        let mut child = Command::new(BIN).arg("query").arg(&dir).arg("true.").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Kill it once the index holds some, not all, of the log.
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            match index_position(&index) {
                Some(p) if p > 0 && p < N as u64 => {
                    child.kill().unwrap();
                    break;
                }
                Some(_) => break,
                None if Instant::now() > deadline => panic!("the catch-up never started"),
                None => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
        child.wait().unwrap();
        match index_position(&index) {
            Some(p) if p < N as u64 => {
                killed_at = Some(p);
                break;
            }
            _ => continue,
        }
    }
    let killed_at = killed_at.expect("no kill landed during the catch-up in 5 attempts");
    eprintln!("killed the catch-up at tree size {killed_at} of {N}");

    // The next query catches up by itself; a rebuilt index answers the same.
    let rebuilt = tmp.path().join("rebuilt.sqlite");
    assert!(Command::new(BIN).args(["log", "reindex"]).arg(&dir).arg("--index").arg(&rebuilt).status().unwrap().success());
    for goal in [
        "findall(I, event(I, _, _, rare, _, _), L), length(L, N).",
        "findall(I-V, meta(I, flag, V), L).",
        "event(I, T, L, Ty, 'sha256:0000000000000000000000000000000000000000000000000000000000030d3f', O).",
    ] {
        let (got, want) = (answers(&dir, &index, goal), answers(&dir, &rebuilt, goal));
        assert_eq!(got, want, "{goal}");
        assert!(!got.as_array().unwrap().is_empty(), "{goal}: no answers");
    }
    assert_eq!(index_position(&index), Some(N as u64));
    let mut a = zkaudit_index::Sqlite::open(&index).unwrap();
    let mut b = zkaudit_index::Sqlite::open(&rebuilt).unwrap();
    let all = zkaudit_index::Query::new(zkaudit_index::Selector::All);
    assert_eq!(a.count(&all, u64::MAX).unwrap(), N as u64, "no event indexed twice or lost");
    assert_eq!(a.candidates(&all, u64::MAX).unwrap(), b.candidates(&all, u64::MAX).unwrap());
    for t in 0..7 {
        let q = zkaudit_index::Query::new(zkaudit_index::Selector::Type(format!("t{t}")));
        assert_eq!(a.count(&q, u64::MAX).unwrap(), b.count(&q, u64::MAX).unwrap(), "t{t}");
    }
}
