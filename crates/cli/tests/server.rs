//! The proof server, tested as users meet it: the real `zkaudit serve`
//! process on loopback, driven by a real HTTP client (ureq). Most jobs run
//! in `execute-only` mode (the guest runs in the zkVM, nothing is proven);
//! `a_real_proof_through_the_server` proves for real.

#[path = "../../../tests-support/jobs.rs"]
mod jobs;
#[path = "../../../tests-support/pg.rs"]
mod pg;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobs::{income_input, plan_job};
use serde_json::{json, Value};

const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `zkaudit serve` process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", dir, extra)
    }

    /// A server whose provers do not answer from the test run's receipt
    /// cache (`ZKAUDIT_RECEIPT_CACHE`), for tests that need a prover that
    /// is still proving.
    fn start_uncached(dir: &Path, extra: &[&str]) -> Server {
        Server::spawn("127.0.0.1:0", dir, extra, false)
    }

    fn start_on(addr: &str, dir: &Path, extra: &[&str]) -> Server {
        Server::spawn(addr, dir, extra, true)
    }

    fn spawn(addr: &str, dir: &Path, extra: &[&str], receipt_cache: bool) -> Server {
        let mut cmd = Command::new(ZKAUDIT);
        if !receipt_cache {
            cmd.env_remove("ZKAUDIT_RECEIPT_CACHE");
        }
        let mut child = cmd.args(["serve", "--addr", addr, "--dir"]).arg(dir).args(extra).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
        Server { child, url }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ledger() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let out = Command::new(ZKAUDIT).args(["log", "init"]).arg(&dir).args(["--origin", "test.example/server"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, dir)
}

fn token(dir: &Path, scope: &str, tenant: &str, db: Option<&str>) -> String {
    let mut c = Command::new(ZKAUDIT);
    c.args(["token", "create"]).arg(dir).args(["--scope", scope, "--tenant", tenant]);
    if let Some(db) = db {
        c.args(["--db", db]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// `(status, headers we look at, JSON body or the text as a JSON string)`.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    cache_control: Option<String>,
    body: Value,
    bytes: Vec<u8>,
}

fn reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |r: &ureq::http::Response<ureq::Body>, h: &str| r.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (retry_after, cache_control) = (header(&r, "retry-after"), header(&r, "cache-control"));
    let bytes = r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply { status: r.status().as_u16(), retry_after, cache_control, body, bytes }
}

fn call(method: &str, url: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Reply {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let r = match method {
        "GET" | "DELETE" => {
            let mut b = if method == "GET" { a.get(url) } else { a.delete(url) };
            if let Some(h) = &auth {
                b = b.header("Authorization", h);
            }
            b.call()
        }
        _ => {
            let mut b = a.post(url).content_type(content_type);
            if let Some(h) = &auth {
                b = b.header("Authorization", h);
            }
            b.send(body)
        }
    };
    reply(r.unwrap())
}

fn get(url: &str, token: Option<&str>) -> Reply {
    call("GET", url, token, "", b"")
}

fn post(url: &str, token: Option<&str>, body: &Value) -> Reply {
    call("POST", url, token, "application/json", body.to_string().as_bytes())
}

fn wait_final(url: &str, token: &str, id: &str, limit: Duration) -> Value {
    let t = Instant::now();
    loop {
        let r = get(&format!("{url}/v1/jobs/{id}"), Some(token));
        assert_eq!(r.status, 200, "{}", r.body);
        if !matches!(r.body["state"].as_str(), Some("queued" | "running")) {
            return r.body;
        }
        assert!(t.elapsed() < limit, "job {id} still {} after {limit:?}", r.body["state"]);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn jobs_run_and_tenants_see_only_their_own() {
    let (_tmp, dir) = ledger();
    let (alice, bob, reader, admin) =
        (token(&dir, "submit", "alice", None), token(&dir, "submit", "bob", None), token(&dir, "read", "alice", None), token(&dir, "admin", "ops", None));
    let s = Server::start(&dir, &["--workers", "1"]);
    let r = post(&format!("{}/v1/jobs", s.url), Some(&alice), &plan_job("execute-only"));
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["state"], "queued");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let job = wait_final(&s.url, &alice, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["public_outputs"], json!({"meets_threshold": true, "payment_count": 8}));
    assert_eq!(job["token_id"].as_str().map(str::len), Some(16));
    assert!(job["cycles"].as_u64().unwrap() > 0 && job["segments"].as_u64().unwrap() >= 1);
    assert!(job["receipt_id"].is_null(), "execute-only makes no receipt");
    assert!(job["result"].get("output").is_none(), "the private output is not kept");
    assert_eq!(job["attempts"], 1);
    // The expected output of the example, as committed by the journal.
    let expected = std::fs::read(root().join("examples/income-threshold/expected-public.json")).unwrap();
    assert_eq!(job["result"]["publicOutput"], serde_json::from_slice::<Value>(&expected).unwrap());

    // Same tenant (read scope) sees it; another tenant gets 404; admin sees all.
    assert_eq!(get(&format!("{}/v1/jobs/{id}", s.url), Some(&reader)).status, 200);
    assert_eq!(get(&format!("{}/v1/jobs/{id}", s.url), Some(&bob)).status, 404);
    assert_eq!(get(&format!("{}/v1/jobs/{id}", s.url), Some(&admin)).status, 200);
    let mine = get(&format!("{}/v1/jobs?state=succeeded", s.url), Some(&alice));
    assert_eq!(mine.body["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(get(&format!("{}/v1/jobs", s.url), Some(&bob)).body["jobs"], json!([]));
    // A read token cannot submit.
    assert_eq!(post(&format!("{}/v1/jobs", s.url), Some(&reader), &plan_job("execute-only")).status, 403);

    // Health learns the speed; metrics count the job.
    let h = get(&format!("{}/v1/health", s.url), None);
    assert_eq!(h.body["status"], "ok");
    assert!(h.body["recent_job_seconds"].as_f64().unwrap() > 0.0, "{}", h.body);
    assert_eq!(get(&format!("{}/v1/ready", s.url), None).status, 200);
    let m = get(&format!("{}/metrics", s.url), None);
    let text = m.body.as_str().unwrap();
    assert!(text.contains("zkaudit_job_duration_seconds_count{mode=\"execute-only\",state=\"succeeded\"} 1"), "{text}");
    assert!(text.contains("zkaudit_queue_depth 0") && text.contains("zkaudit_http_request_duration_seconds_bucket"), "{text}");

    // The OpenAPI document lists every route the server answers.
    let api = get(&format!("{}/v1/openapi.json", s.url), None).body;
    for p in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/prove/income-threshold",
        "/v1/verify/batch",
        "/v1/provers",
        "/v1/provers/select",
        "/v1/provers/{key}/withdraw",
        "/v1/log/entries",
        "/tile/{path}",
        "/metrics",
        "/v1/dashboard/events/{index}",
    ] {
        assert!(api["paths"].get(p).is_some(), "{p} missing from the OpenAPI document");
    }

    // The attestation is a signed note over the document's canonical form.
    let att = get(&format!("{}/v1/attestation", s.url), None).body;
    assert_eq!(att["document"]["tee"]["present"], false);
    let note = att["signed_note"].as_str().unwrap();
    let jcs = serde_json_canonicalizer::to_string(&att["document"]).unwrap();
    assert!(note.starts_with(&format!("{jcs}\n\n— ")), "{note}");
    let exe_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(std::fs::read(ZKAUDIT).unwrap()));
    assert_eq!(att["document"]["binary_sha256"], exe_hash);
}

#[test]
fn a_full_queue_answers_429_and_ready_503_and_cancel_works() {
    let (_tmp, dir) = ledger();
    let t = token(&dir, "submit", "alice", None);
    let s = Server::start(&dir, &["--workers", "0", "--queue-capacity", "2"]);
    let url = format!("{}/v1/jobs", s.url);
    let a = post(&url, Some(&t), &plan_job("execute-only"));
    let b = post(&url, Some(&t), &plan_job("execute-only"));
    assert_eq!((a.status, b.status), (202, 202));
    let full = post(&url, Some(&t), &plan_job("execute-only"));
    assert_eq!(full.status, 429, "{}", full.body);
    assert!(full.retry_after.as_deref().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    let ready = get(&format!("{}/v1/ready", s.url), None);
    assert_eq!(ready.status, 503);
    assert!(ready.retry_after.is_some());
    let id = a.body["id"].as_str().unwrap();
    let c = call("DELETE", &format!("{url}/{id}"), Some(&t), "", b"");
    assert_eq!((c.status, c.body["state"].as_str()), (202, Some("cancelled")), "{}", c.body);
    assert_eq!(call("DELETE", &format!("{url}/{id}"), Some(&t), "", b"").status, 409);
    assert_eq!(get(&format!("{}/v1/ready", s.url), None).status, 200);
    assert_eq!(post(&url, Some(&t), &plan_job("execute-only")).status, 202);
}

#[test]
fn jobs_survive_a_restart_and_a_cancel_kills_the_prover() {
    let (_tmp, dir) = ledger();
    let t = token(&dir, "submit", "alice", None);
    // A prove job, killed with the server while it runs.
    let s = Server::start_uncached(&dir, &["--workers", "1", "--max-attempts", "2"]);
    let r = post(&format!("{}/v1/prove/income-threshold", s.url), Some(&t), &income_input("prove"));
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let t0 = Instant::now();
    while get(&format!("{}/v1/jobs/{id}", s.url), Some(&t)).body["state"] != "running" {
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    }
    s.kill();
    // Restarted without workers: the job is queued again, one attempt used.
    let s = Server::start(&dir, &["--workers", "0", "--max-attempts", "2"]);
    let job = get(&format!("{}/v1/jobs/{id}", s.url), Some(&t)).body;
    assert_eq!((job["state"].as_str(), job["attempts"].as_u64()), (Some("queued"), Some(1)), "{job}");
    s.kill();
    // With a worker again it runs; cancelling it stops the prover at once.
    let s = Server::start_uncached(&dir, &["--workers", "1", "--max-attempts", "2"]);
    let t0 = Instant::now();
    loop {
        let job = get(&format!("{}/v1/jobs/{id}", s.url), Some(&t)).body;
        if job["state"] == "running" && job["phase"] == "proving" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{job}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = call("DELETE", &format!("{}/v1/jobs/{id}", s.url), Some(&t), "", b"");
    assert_eq!(c.status, 202);
    let job = wait_final(&s.url, &t, &id, Duration::from_secs(10));
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(job["error"].as_str().unwrap().contains("while proving"), "{job}");
    assert_eq!(job["attempts"], 2);
    // No prover of this job is left running (other tests run provers of
    // their own at the same time: the job ID is in the scratch path).
    std::thread::sleep(Duration::from_millis(500));
    let has = |c: &[u8], s: &str| c.windows(s.len()).any(|w| w == s.as_bytes());
    let provers = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| has(c, "job-child") && has(c, ZKAUDIT) && has(c, &id))
        .count();
    assert_eq!(provers, 0, "a cancelled prover is still running");
}

#[test]
fn the_ledger_over_http_matches_the_cli() {
    let (_tmp, dir) = ledger();
    let t = token(&dir, "submit", "alice", None);
    // Every example event, twice: 350 entries, so level 0 has a full tile.
    let mut events = String::new();
    for f in ["telecoms", "trading", "gmp", "itil"] {
        events += &std::fs::read_to_string(root().join(format!("examples/events/{f}.jsonl"))).unwrap();
    }
    let lines: Vec<&str> = events.lines().chain(events.lines()).collect();
    assert_eq!(lines.len(), 350);
    let s = Server::start(&dir, &["--workers", "0"]);
    // 200 as a JSON array, 100 as JSON Lines.
    let array: Vec<Value> = lines[..200].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let a = post(&format!("{}/v1/log/entries", s.url), Some(&t), &json!(array));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!((a.body["first_index"].as_u64(), a.body["count"].as_u64()), (Some(0), Some(200)));
    let nd = lines[200..].join("\n");
    let b = call("POST", &format!("{}/v1/log/entries", s.url), Some(&t), "application/x-ndjson", nd.as_bytes());
    assert_eq!((b.status, b.body["first_index"].as_u64(), b.body["tree_size"].as_u64()), (200, Some(200), Some(350)), "{}", b.body);

    // Reads need a token unless the server allows anonymous reads.
    assert_eq!(get(&format!("{}/v1/log/checkpoint", s.url), None).status, 401);
    let cp = get(&format!("{}/v1/log/checkpoint", s.url), Some(&t)).body;
    assert_eq!(cp["tree_size"], 350);
    let cli = |args: &[&str]| -> Value {
        let out = Command::new(ZKAUDIT).arg("log").args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let d = dir.to_str().unwrap();
    let inc = get(&format!("{}/v1/log/proof/inclusion?index=123&tree_size=250", s.url), Some(&t)).body;
    assert_eq!(inc, cli(&["inclusion", d, "--index", "123", "--tree-size", "250", "--json"]));
    let con = get(&format!("{}/v1/log/proof/consistency?old=17&new=350", s.url), Some(&t)).body;
    assert_eq!(con, cli(&["consistency", d, "--old", "17", "--new", "350", "--json"]));
    s.kill();

    // Tiles as stored, with cache headers a CDN can use.
    let s = Server::start(&dir, &["--workers", "0", "--anonymous-read"]);
    let note = get(&format!("{}/checkpoint", s.url), None);
    assert_eq!(note.bytes, std::fs::read(dir.join("checkpoint")).unwrap());
    assert_eq!(note.cache_control.as_deref(), Some("no-cache"));
    let full = get(&format!("{}/tile/0/000", s.url), None);
    assert_eq!(full.status, 200);
    assert_eq!(full.bytes, std::fs::read(dir.join("tile/0/000")).unwrap());
    assert!(full.cache_control.as_deref().unwrap().contains("immutable"));
    let partial = get(&format!("{}/tile/0/001.p/94", s.url), None);
    assert_eq!(partial.status, 200);
    assert!(!partial.cache_control.as_deref().unwrap().contains("immutable"));
    assert_eq!(get(&format!("{}/tile/entries/000", s.url), None).bytes, std::fs::read(dir.join("tile/entries/000")).unwrap());
    // The appends landed in a log that verifies end to end.
    let out = Command::new(ZKAUDIT).args(["log", "verify", d]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn postgres_workers_share_the_queue() {
    let pg = pg::PgServer::start();
    let (_tmp, dir) = ledger();
    let t = token(&dir, "submit", "alice", Some(&pg.url));
    let s = Server::start(&dir, &["--workers", "0", "--db", &pg.url]);
    assert_eq!(get(&format!("{}/v1/health", s.url), None).body["job_store"], "postgresql");
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let r = post(&format!("{}/v1/jobs", s.url), Some(&t), &plan_job("execute-only"));
            assert_eq!(r.status, 202, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // Two worker processes, as on two machines, claim from PostgreSQL.
    let workers: Vec<Child> = (0..2).map(|_| Command::new(ZKAUDIT).args(["worker", "--db", &pg.url]).stderr(Stdio::null()).spawn().unwrap()).collect();
    let mut names = std::collections::BTreeSet::new();
    for id in &ids {
        let job = wait_final(&s.url, &t, id, Duration::from_secs(180));
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "claimed exactly once: {job}");
        names.insert(job["result"]["planHash"].as_str().unwrap().to_owned());
    }
    assert_eq!(names.len(), 1);
    for mut w in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
}

#[test]
fn a_blossom_store_without_a_key_is_refused_at_start() {
    let (_tmp, dir) = ledger();
    let out = Command::new(ZKAUDIT)
        .args(["serve", "--addr", "127.0.0.1:0", "--dir"])
        .arg(&dir)
        .args(["--store", "blossom+http://127.0.0.1:9/blossom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--store blossom+http://127.0.0.1:9/blossom: uploads to a Blossom server need --key FILE"), "{err}");
    let out = Command::new(ZKAUDIT).args(["serve", "--addr", "127.0.0.1:0", "--dir"]).arg(&dir).args(["--store", "ftp://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown store scheme: {}", String::from_utf8_lossy(&out.stderr));
}

/// The prover registry over HTTP: 404 without a settlement database;
/// with one, registration (admin only; a repeat by the same payment
/// answers with the first record, a second registration gets 409, a stake
/// below the minimum 422), the list, a seeded draw, unbonding, and
/// withdrawal refused (409) before the unbonding period ends. Every step
/// lands in the server's ledger.
#[test]
fn the_prover_registry_over_http() {
    {
        let (_tmp, dir) = ledger();
        let admin = token(&dir, "admin", "ops", None);
        let off = Server::start(&dir, &["--workers", "0"]);
        assert_eq!(get(&format!("{}/v1/provers", off.url), Some(&admin)).status, 404);
    }
    let (tmp, dir) = ledger();
    let admin = token(&dir, "admin", "ops", None);
    let submit = token(&dir, "submit", "alice", None);

    let db = tmp.path().join("settle.sqlite");
    let s = Server::start(&dir, &["--workers", "0", "--settle-db", db.to_str().unwrap(), "--min-stake", "1000"]);
    let url = format!("{}/v1/provers", s.url);
    let alice = json!({"key": "alice", "endpoint": "https://alice.example", "stake": 5000, "ref": "ln-a"});
    assert_eq!(post(&url, Some(&submit), &alice).status, 403);
    let r = post(&url, Some(&admin), &alice);
    assert_eq!((r.status, r.body["zkaudit.prover.tee"].as_str()), (201, Some("none")), "{}", r.body);
    assert_eq!(post(&url, Some(&admin), &alice).body, r.body, "the same payment again");
    let again = post(&url, Some(&admin), &json!({"key": "alice", "endpoint": "https://alice.example", "stake": 5000, "ref": "ln-a2"}));
    assert_eq!(again.status, 409, "{}", again.body);
    let low = post(&url, Some(&admin), &json!({"key": "bob", "endpoint": "https://bob.example", "stake": 10, "ref": "ln-b"}));
    assert_eq!(low.status, 422, "{}", low.body);
    assert_eq!(post(&url, Some(&admin), &json!({"key": "bob", "endpoint": "https://bob.example", "stake": 3000, "ref": "ln-b2"})).status, 201);

    let list = get(&url, Some(&submit)).body;
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["alice", "bob"], "{list}");
    assert_eq!((list[0]["stake"].as_str(), list[0]["reputationBps"].as_u64(), list[0]["status"]["state"].as_str()), (Some("5000"), Some(5000), Some("active")));

    let seed = "ab".repeat(32);
    let pick = post(&format!("{url}/select"), Some(&submit), &json!({"job": "job-1", "seed": seed}));
    assert_eq!(pick.status, 200, "{}", pick.body);
    assert!(["alice", "bob"].contains(&pick.body["zkaudit.prover.key"].as_str().unwrap()));
    assert_eq!(post(&format!("{url}/select"), Some(&submit), &json!({"job": "job-1", "seed": "00".repeat(32)})).body, pick.body, "one draw per job");
    assert_eq!(post(&format!("{url}/select"), Some(&submit), &json!({"job": "job-2", "seed": seed, "require_tee": true})).status, 409);
    assert_eq!(post(&format!("{url}/select"), Some(&submit), &json!({"job": "job-3", "seed": "xyz"})).status, 400);

    assert_eq!(call("POST", &format!("{url}/alice/unbond"), Some(&admin), "", b"").status, 200);
    let w = call("POST", &format!("{url}/alice/withdraw"), Some(&admin), "", b"");
    assert!(w.status == 409 && w.body.to_string().contains("unbonding period ends in"), "{} {}", w.status, w.body);
    assert_eq!(call("POST", &format!("{url}/carol/unbond"), Some(&admin), "", b"").status, 409);

    // Probing (admin): Alice is unbonding and still answerable for
    // downtime, Bob is active; neither endpoint resolves.
    assert_eq!(call("POST", &format!("{url}/probe"), Some(&submit), "", b"").status, 403);
    let p = call("POST", &format!("{url}/probe"), Some(&admin), "", b"");
    assert_eq!(p.status, 200, "{}", p.body);
    let seen: Vec<(&str, bool, bool)> =
        p.body.as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap(), r["reachable"].as_bool().unwrap(), r["recorded"].as_bool().unwrap())).collect();
    assert_eq!(seen, [("alice", false, true), ("bob", false, true)], "{}", p.body);
    // Fresh evidence: refused as expired (422), or for a prover never registered (409).
    use base64::Engine as _;
    let tee = |f: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(root().join("../shared/data/tee").join(f)).unwrap());
    let evidence = json!({"quote": tee("dcap-qvl/sgx_quote"), "collateral": tee("dcap-qvl/sgx_quote_collateral.json")});
    let a = post(&format!("{url}/bob/attest"), Some(&submit), &evidence);
    assert!(a.status == 422 && a.body.to_string().to_lowercase().contains("expired"), "{} {}", a.status, a.body);
    assert_eq!(post(&format!("{url}/carol/attest"), Some(&submit), &evidence).status, 409);
    assert_eq!(post(&format!("{url}/bob/attest"), Some(&submit), &json!({"quote": "!"})).status, 400);
    s.kill();

    // Every step is a ledger event in the server's ledger.
    let out = Command::new(ZKAUDIT).args(["query", dir.to_str().unwrap(), "event(I, _, _, prover, _, _).", "--json"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let answers: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(answers["answers"].as_array().map(Vec::len), Some(6), "register ×2, select, unbond, probe ×2 and no more: {text}");
}

#[test]
fn a_real_proof_through_the_server() {
    let (tmp, dir) = ledger();
    let (t, other) = (token(&dir, "submit", "alice", None), token(&dir, "read", "bob", None));
    // Receipts also go to a Blossom store (another `zkaudit serve`), which
    // is down until the proof is made: the server keeps the receipt and
    // retries until the store takes it.
    let key = tmp.path().join("server.nsec");
    assert!(Command::new(ZKAUDIT).args(["store", "keygen"]).arg(&key).output().unwrap().status.success());
    let blossom_addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let store = format!("blossom+http://{blossom_addr}/blossom");
    let cache = tmp.path().join("cache");
    let s =
        Server::start(&dir, &["--workers", "1", "--store", &store, "--key", key.to_str().unwrap(), "--cache", cache.to_str().unwrap(), "--store-timeout", "5"]);
    let r = post(&format!("{}/v1/prove/income-threshold?wait=600", s.url), Some(&t), &income_input("prove"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "succeeded", "{}", r.body);
    assert_eq!(r.body["public_outputs"], json!({"meets_threshold": true, "payment_count": 8}));
    let rid = r.body["receipt_id"].as_str().unwrap().to_owned();
    let b64 = r.body["receipt"].as_str().unwrap().to_owned();
    // The receipt as a file verifies with the CLI, against the plan hash and data root the server reported.
    let receipt = get(&format!("{}/v1/receipts/{rid}", s.url), Some(&t));
    assert_eq!(receipt.status, 200);
    assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&receipt.bytes)), rid);
    assert_eq!(get(&format!("{}/v1/receipts/{rid}", s.url), Some(&other)).status, 404, "another tenant's receipt");
    let file = tmp.path().join("r.receipt");
    std::fs::write(&file, &receipt.bytes).unwrap();
    let out = Command::new(ZKAUDIT).arg("verify").arg(&file).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let plan_hash = r.body["plan_hash"].as_str().unwrap();
    let root_hex = r.body["history_commitment"].as_str().unwrap().trim_start_matches("0x");
    let v = post(
        &format!("{}/v1/verify", s.url),
        Some(&t),
        &json!({"receipt_id": rid, "expect": {"plan_hash": plan_hash, "data_root": root_hex, "output": {"meets_threshold": true, "payment_count": 8}}}),
    );
    assert_eq!(v.body["valid"], true, "{}", v.body);
    assert!(v.body["output_hash"].as_str().is_some());
    // Batch: the same receipt inline; one with the wrong data root; one tampered.
    let mut tampered = receipt.bytes.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 1;
    use base64::Engine as _;
    let batch = post(
        &format!("{}/v1/verify/batch", s.url),
        Some(&t),
        &json!({"receipts": [
            {"receipt": b64},
            {"receipt_id": rid, "expect": {"data_root": "11".repeat(32)}},
            {"receipt": base64::engine::general_purpose::STANDARD.encode(&tampered)},
        ]}),
    );
    assert_eq!((batch.body["valid"].as_u64(), batch.body["invalid"].as_u64()), (Some(1), Some(2)), "{}", batch.body);
    assert!(batch.body["results"][1]["reason"].as_str().unwrap().contains("data root"), "{}", batch.body);
    let m = get(&format!("{}/metrics", s.url), None).body;
    assert!(m.as_str().unwrap().contains("zkaudit_cycles_proven_total"), "{m}");
    assert!(m.as_str().unwrap().contains("zkaudit_proofs_recorded_total 1"), "{m}");

    // The proof is recorded in the server's ledger, once, and stays once
    // across a restart (which looks for unrecorded proofs again).
    let job_path = format!("/v1/jobs/{}", r.body["id"].as_str().unwrap());
    let job_url = format!("{}{job_path}", s.url);
    let job = get(&job_url, Some(&t)).body;
    let at = job["ledger_index"].as_u64().unwrap_or_else(|| panic!("no ledger_index: {job}"));

    // The store is down: the receipt waits, and the failure is counted.
    let failures = |url: &str| -> u64 {
        let m = get(&format!("{url}/metrics"), None).body;
        let line = m.as_str().unwrap().lines().find(|l| l.starts_with("zkaudit_proof_store_failures_total ")).map(str::to_owned);
        line.and_then(|l| l.rsplit(' ').next().and_then(|n| n.parse().ok())).unwrap_or(0)
    };
    let t0 = Instant::now();
    while failures(&s.url) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no failed store attempt while the store is down");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&job_url, Some(&t)).body["proof_ref"], Value::Null, "nothing stored while the store is down");
    // The store comes up: the receipt is put there, by its SHA-256.
    let (_blob_tmp, blob_dir) = ledger();
    let blossom = Server::start_on(&blossom_addr, &blob_dir, &["--workers", "0"]);
    let t0 = Instant::now();
    let proof_ref = loop {
        if let Some(p) = get(&job_url, Some(&t)).body["proof_ref"].as_str() {
            break p.to_owned();
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "the receipt was not stored within 90 s of the store coming up");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(proof_ref, format!("{}/blossom/{rid}", blossom.url));
    let stored = get(&proof_ref, None);
    assert_eq!(stored.status, 200);
    assert!(stored.bytes == receipt.bytes, "the stored blob is the receipt");
    assert!(get(&format!("{}/metrics", s.url), None).body.as_str().unwrap().contains("zkaudit_proofs_stored_total 1"));
    s.kill();
    blossom.kill();
    let s = Server::start(&dir, &["--workers", "0"]);
    let job = get(&format!("{}{job_path}", s.url), Some(&t)).body;
    assert_eq!((job["ledger_index"].as_u64(), job["proof_ref"].as_str()), (Some(at), Some(proof_ref.as_str())), "{job}");
    s.kill();
    let goal = "zkaudit(computation('income-threshold'), proof(E, Receipt, ImageId, PlanHash, DataRoot, OutputHash, Verifies)).";
    let out = Command::new(ZKAUDIT).arg("query").arg(&dir).arg(goal).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    let answers = q["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "exactly one proof event: {q}");
    let b = &answers[0]["bindings"];
    assert_eq!(b["Verifies"], "valid", "{q}");
    assert_eq!(b["E"], at, "{q}");
    assert_eq!(b["Receipt"], format!("sha256:{rid}"), "{q}");
    assert_eq!(b["PlanHash"], format!("sha256:{plan_hash}"), "{q}");
    assert_eq!(b["DataRoot"], root_hex, "{q}");
    let entry: Value =
        serde_json::from_slice(&Command::new(ZKAUDIT).args(["log", "get"]).arg(&dir).args(["--index", &at.to_string()]).output().unwrap().stdout).unwrap();
    assert_eq!(entry["metadata"]["jobId"], r.body["id"], "{entry}");
}
