//! The SOC dashboard in a real browser: `zkaudit serve` on loopback over a
//! ledger holding the example evidence streams and events recorded from a
//! real process, driven in Debian's chromium by playwright-core
//! (`tests-browser/dashboard.cjs`). The page's numbers are checked against
//! the CLI's answers for the same ledger, the in-browser proof check must
//! say "verified", and "failed" once a byte of the entry bundle is flipped
//! on disk.

#[path = "../../../tests-support/daemon.rs"]
mod daemon;
// Only `plan_job` is used here.
#[allow(dead_code)]
#[path = "../../../tests-support/jobs.rs"]
mod jobs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use daemon::Daemon;
use serde_json::Value;

const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn zk(args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(ZKAUDIT).args(args).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "zkaudit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn zk_json(args: &[&str], cwd: &Path) -> Value {
    // `compliance` exits 1 when a rule fails; its JSON is the answer either way.
    let out = Command::new(ZKAUDIT).args(args).current_dir(cwd).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("zkaudit {args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Runs the browser script in `mode`; its JSON answer.
fn browser(mode: &str, url: &str, token: &str, out: &Path, arg: Option<&str>) -> Value {
    let node_path = std::env::var("ZKAUDIT_NODE_PATH").unwrap_or_else(|_| "/var/tmp/zkaudit-target/browser/node_modules".into());
    assert!(
        Path::new(&node_path).join("playwright-core").is_dir(),
        "playwright-core is not installed in {node_path}: run scripts/test.sh (scripts/setup.sh installs it)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests-browser/dashboard.cjs")).args([mode, url, token]).arg(out).env("NODE_PATH", &node_path);
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "browser {mode}: {}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The entry bundle file holding `index` and the entry's byte range in it.
fn entry_in_bundle(dir: &Path, index: u64) -> (PathBuf, std::ops::Range<usize>) {
    let size = zkaudit_tlog::LogReader::open(dir).unwrap().size();
    let n = index / 256;
    let width = (size - n * 256).min(256);
    let tile = zkaudit_tlog::layout::TileId::entries(n, width as u16);
    let path = dir.join(tile.path());
    let bytes = std::fs::read(&path).unwrap();
    let mut at = 0;
    for i in 0..=(index % 256) {
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        if i == index % 256 {
            return (path, at + 2..at + 2 + len);
        }
        at += 2 + len;
    }
    unreachable!()
}

#[test]
fn the_dashboard_shows_the_ledger_and_verifies_events_in_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    zk(&["log", "init", "ledger", "--origin", "test.example/dashboard"], t);
    for s in ["telecoms", "trading", "gmp", "itil"] {
        let f = root().join(format!("examples/events/{s}.jsonl"));
        zk(&["log", "append", "ledger", f.to_str().unwrap()], t);
    }
    // A real process, recorded: it reads one file and writes another.
    std::fs::write(t.join("input.txt"), "dashboard test input\n").unwrap();
    zk(&["record", "--ledger", "ledger", "--", "sh", "-c", "tr a-z A-Z < input.txt > output.txt"], t);
    let output_digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(std::fs::read(t.join("output.txt")).unwrap())));
    // A collector's gap, in the shape zkaudit-collect writes one.
    let gap = r#"{"input":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","layer":"computation","metadata":{"event.action":"kernel_lost","event.kind":"pipeline_error","message":"ring buffer overrun","observer.type":"audit","zkaudit.gap.lost":17},"output":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","timestamp":"2026-01-20T00:00:00Z","type":"collector_gap","version":"1.0"}"#;
    std::fs::write(t.join("gap.jsonl"), format!("{gap}\n")).unwrap();
    zk(&["log", "append", "ledger", "gap.jsonl"], t);

    let dir = t.join("ledger");
    let size = zkaudit_tlog::LogReader::open(&dir).unwrap().size();
    let token = String::from_utf8(zk(&["token", "create", "ledger", "--scope", "read"], t).stdout).unwrap().trim().to_owned();
    let server = Daemon::start(Command::new(ZKAUDIT).args(["serve", "--workers", "0", "--addr", "127.0.0.1:0", "--dir"]).arg(&dir));
    // Jobs by state for the proofs panel: with no worker, two jobs wait;
    // one is then cancelled.
    let submit = String::from_utf8(zk(&["token", "create", "ledger", "--scope", "submit"], t).stdout).unwrap().trim().to_owned();
    let jobs_agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let mut r = jobs_agent
                .post(format!("{}/v1/jobs", server.url))
                .header("Authorization", format!("Bearer {submit}"))
                .send_json(jobs::plan_job("execute-only"))
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
            r.body_mut().read_json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let cancelled = jobs_agent.delete(format!("{}/v1/jobs/{}", server.url, ids[1])).header("Authorization", format!("Bearer {submit}")).call().unwrap();
    assert_eq!(cancelled.status().as_u16(), 202);
    let shots = t.join("shots");
    std::fs::create_dir_all(&shots).unwrap();

    let v = browser("main", &server.url, &token, &shots, Some(&output_digest));

    // No token: the login page, no panels, and 401 from the data API.
    let u = &v["unauthenticated"];
    assert_eq!((u["login_shown"].as_bool(), u["panels_hidden"].as_bool(), u["api_status"].as_u64()), (Some(true), Some(true), Some(401)), "{u}");

    // Integrity: the tree size, a verified signature.
    assert_eq!(v["integrity"]["tree_size"].as_str().unwrap().replace(',', ""), size.to_string());
    assert!(v["integrity"]["text"].as_str().unwrap().contains("verified"), "{}", v["integrity"]);
    assert!(v["integrity"]["text"].as_str().unwrap().contains("test.example/dashboard"));

    // Compliance: one tile per built-in pack, each with the CLI's verdicts.
    let tiles = v["compliance"].as_array().unwrap();
    let names: Vec<&str> = tiles.iter().map(|t| t["pack"].as_str().unwrap()).collect();
    assert_eq!(names, ["telecoms", "trading", "gmp", "itil", "llm", "settlement"]);
    for tile in tiles {
        let pack = tile["pack"].as_str().unwrap();
        let cli = zk_json(&["compliance", "ledger", "--pack", pack, "--json"], t);
        let s = &cli["summary"];
        assert_eq!(tile["summary"].as_str().unwrap(), format!("{} pass · {} fail · {} no evidence", s["pass"], s["fail"], s["no_evidence"]), "{pack}");
        for (rule, want) in tile["rules"].as_array().unwrap().iter().zip(cli["rules"].as_array().unwrap()) {
            assert_eq!(rule["id"], want["id"]);
            assert_eq!(rule["verdict"], want["verdict"], "{pack} {}", want["id"]);
            let links: Vec<String> = want["violations"].as_array().unwrap().iter().map(|x| format!("#{}", x["leaf_index"])).collect();
            assert_eq!(rule["violations"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect::<Vec<_>>(), links);
            assert_eq!(rule["measures"].as_array().unwrap().len(), want["measures"].as_array().unwrap().len(), "{pack} {}", want["id"]);
        }
    }
    // The numbers of the seed's SOC view, as the packs measure them.
    let failover = tiles[0]["rules"].as_array().unwrap().iter().find(|r| r["id"] == "failover").unwrap();
    assert_eq!(failover["measures"], serde_json::json!(["max failover ms: 73"]));
    let telecoms = zk_json(&["compliance", "ledger", "--pack", "telecoms", "--json"], t);
    let first_violation =
        telecoms["rules"].as_array().unwrap().iter().flat_map(|r| r["violations"].as_array().unwrap().iter()).next().unwrap()["leaf_index"].as_u64().unwrap();

    // Activity: every event of the ledger in the default window, the gap counted.
    assert_eq!(v["activity"]["total"].as_str().unwrap().replace(',', ""), size.to_string());
    assert_eq!(v["activity"]["gaps"].as_str(), Some("1"));
    let rows = v["activity"]["rows"].as_array().unwrap();
    let failovers = rows.iter().find(|r| r[1] == "failover").unwrap();
    assert_eq!(failovers[2], "3", "{failovers}");
    assert!(rows.iter().any(|r| r[1] == "process_exec"), "the recorded process shows: {rows:?}");
    assert!(v["activity"]["chart_label"].as_str().unwrap().contains(&format!("{size} in all")));

    // The SOC report: the CLI's HTML report, and a PDF printed by chromium.
    let reports = &v["reports"];
    assert_eq!((reports["html"]["status"].as_u64(), reports["pdf"]["status"].as_u64()), (Some(200), Some(200)), "{reports}");
    let title = telecoms["pack"]["title"].as_str().unwrap();
    assert!(reports["html"]["text"].as_str().unwrap().contains(title), "the HTML report names the pack");
    assert_eq!(reports["pdf"]["head"], "%PDF-");
    assert_eq!(reports["pdf"]["type"], "application/pdf");
    assert!(reports["pdf"]["size"].as_u64().unwrap() > 10_000, "{reports}");
    assert_eq!(reports["download"], "zkaudit-telecoms-report.pdf");

    // Proofs: jobs by state, none recorded here; findings: no source yet, said so (not zero).
    assert_eq!(v["proofs"]["receipts"].as_str(), Some("0"));
    assert_eq!((v["proofs"]["queued"].as_str(), v["proofs"]["cancelled"].as_str()), (Some("1"), Some("1")), "{}", v["proofs"]);
    assert!(v["findings"]["text"].as_str().unwrap().starts_with("No source"), "{}", v["findings"]);

    // Drill-down: the telecoms pack's first violation opens that event, verified in the browser.
    assert_eq!(v["drill"]["link"].as_str().unwrap(), format!("#{first_violation}"));
    let status = v["drill"]["status"].as_str().unwrap();
    assert!(status.starts_with(&format!("verified against checkpoint {size} signed by test.example/dashboard+")), "{status}");
    let entry = String::from_utf8(zkaudit_tlog::LogReader::open(&dir).unwrap().entry(first_violation).unwrap()).unwrap();
    let shown: Value = serde_json::from_str(v["drill"]["entry"].as_str().unwrap()).unwrap();
    assert_eq!(shown, serde_json::from_str::<Value>(&entry).unwrap());

    // Lineage: the recorded output file's digest leads to the process that wrote it.
    let lineage = v["lineage_of"].as_array().unwrap();
    assert!(lineage.iter().any(|e| e["type"] == "file_write"), "{lineage:?}");
    assert!(lineage.iter().any(|e| e["type"] == "process_exec" && e["about"].as_str().unwrap().ends_with("/tr")), "{lineage:?}");

    // A byte of the entry bundle flipped on disk: the browser's check fails.
    let (bundle, range) = entry_in_bundle(&dir, first_violation);
    let mut bytes = std::fs::read(&bundle).unwrap();
    // The timestamp's first digit: 2026 becomes 3026, the entry still parses.
    let at = range.start + entry.find("\"timestamp\":\"").unwrap() + "\"timestamp\":\"".len();
    assert_eq!(bytes[at], b'2');
    bytes[at] = b'3';
    std::fs::write(&bundle, &bytes).unwrap();
    let f = browser("verify", &server.url, &token, &shots, Some(&first_violation.to_string()));
    let status = f["verify"]["status"].as_str().unwrap();
    assert!(status.starts_with("failed: inclusion proof does not verify"), "{}", f["verify"]);
    // Another event, in the same bundle but untouched, still verifies.
    let f = browser("verify", &server.url, &token, &shots, Some(&(first_violation - 1).to_string()));
    assert!(f["verify"]["status"].as_str().unwrap().starts_with("verified"), "{}", f["verify"]);
    // Without a browser to print with, the PDF is refused with 503 and a
    // reason; an unknown pack is the client's mistake.
    server.stop();
    let server = Daemon::start(
        Command::new(ZKAUDIT).args(["serve", "--workers", "0", "--addr", "127.0.0.1:0", "--dir"]).arg(&dir).env("ZKAUDIT_CHROMIUM", "/nonexistent/chromium"),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |path: &str| {
        let mut r = agent.get(format!("{}{path}", server.url)).header("Authorization", format!("Bearer {token}")).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (status, body) = get("/v1/dashboard/report.pdf?pack=telecoms");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("/nonexistent/chromium"), "{body}");
    let (status, body) = get("/v1/dashboard/report.html?pack=no-such-pack");
    assert_eq!(status, 400, "{body}");
    let (status, _) = get("/v1/dashboard/events/100000");
    assert_eq!(status, 404);
    if let Ok(keep) = std::env::var("ZKAUDIT_KEEP_SCREENSHOTS") {
        for f in std::fs::read_dir(&shots).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
        }
    }
    server.stop();
}
