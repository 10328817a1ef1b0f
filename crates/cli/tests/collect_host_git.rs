//! `zkaudit collect host` and `zkaudit ingest git` as users run them,
//! into real ledgers, asked about with the auditor's predicates.

use std::process::Command;

use serde_json::Value;

#[path = "../../../tests-support/cli.rs"]
mod cli;
use cli::{ledger, query, run, ZKAUDIT};

#[path = "../../../tests-support/ttar.rs"]
mod ttar;

#[test]
fn collect_host_over_the_fixture_tree_and_this_machine() {
    let tree = ttar::fixture_tree(true);
    let tmp = tempfile::tempdir().unwrap();
    let dir = ledger(tmp.path());
    let out = run(Command::new(ZKAUDIT).args(["collect", "host", "--ledger"]).arg(&dir).arg("--root").arg(tree.path()).args([
        "--interval",
        "0.2",
        "--count",
        "2",
        "--json",
    ]));
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((o["samples"].as_u64(), o["unavailable"].as_array().map(Vec::len)), (Some(2), Some(0)), "{o}");
    let e = query(&dir, "host_metric(I, rapl, 'hw.energy{zone=intel-rapl:0,name=package-0}', J).");
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["J"].as_f64(), Some(240422.366267));
    // The files did not change between the samples: 0 W, from the second on.
    let p = query(&dir, "host_metric(I, rapl, 'hw.power{zone=intel-rapl:0,name=package-0}', W).");
    assert_eq!((p.len(), p[0]["W"].as_f64()), (1, Some(0.0)));
    assert!(query(&dir, "sensor_unavailable(I, S).").is_empty());

    // This machine, three samples: a missing sensor is said at most once.
    let dir2 = ledger(&tmp.path().join("live"));
    run(Command::new(ZKAUDIT).args(["collect", "host", "--ledger"]).arg(&dir2).args(["--interval", "0.2", "--count", "3"]));
    assert_eq!(query(&dir2, "host_metric(I, cpu, 'system.cpu.time{cpu=0,mode=user}', V).").len(), 3);
    for s in ["hwmon", "thermal", "rapl"] {
        let n = query(&dir2, &format!("sensor_unavailable(I, {s}).")).len();
        assert!(n <= 1, "{s} said {n} times");
    }
}

#[test]
fn ingest_git_records_commits_once_and_links_them() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.org")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.org"))
    };
    std::fs::create_dir(&repo).unwrap();
    git(&["init", "-q"]);
    for i in 0..3 {
        std::fs::write(repo.join("f.txt"), format!("{i}\n")).unwrap();
        git(&["add", "f.txt"]);
        git(&["commit", "-q", "-m", &format!("change {i}")]);
    }
    let dir = ledger(tmp.path());
    let o: Value = serde_json::from_slice(&run(Command::new(ZKAUDIT).args(["ingest", "git", "--ledger"]).arg(&dir).arg(&repo).arg("--json")).stdout).unwrap();
    assert_eq!((o["commits"].as_u64(), o["ingested"].as_u64()), (Some(3), Some(3)));
    let o: Value = serde_json::from_slice(&run(Command::new(ZKAUDIT).args(["ingest", "git", "--ledger"]).arg(&dir).arg(&repo).arg("--json")).stdout).unwrap();
    assert_eq!((o["ingested"].as_u64(), o["already"].as_u64()), (Some(0), Some(3)));
    let c = query(&dir, "git_commit(I, R, 'ada@example.org', 'change 2').");
    assert_eq!(c.len(), 1);
    let head = String::from_utf8_lossy(&git(&["rev-parse", "HEAD"]).stdout).trim().to_owned();
    assert_eq!(c[0]["R"], head.as_str());
    // Each later commit lists one parent event (the library's tests check
    // that it is the digest of the previous commit's event).
    let with_parent = query(&dir, "git_commit(I, _, _, S), parent(I, _).");
    let mut s: Vec<String> = with_parent.iter().map(|b| b["S"].as_str().unwrap().to_owned()).collect();
    s.sort();
    assert_eq!(s, ["change 1", "change 2"]);
}
