//! `zkaudit plan`, `run`, `prove`, `verify`, `registry` and `bench cycles` through the real
//! binary: one real proof of the income-threshold example, recorded in a
//! ledger and verified with every optional check.

#[path = "../../../tests-support/daemon.rs"]
mod daemon;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_zkaudit");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(root()).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

const INCOME: &str = "examples/income-threshold/plan.yaml";
const PAYMENTS: &str = "payments=examples/income-threshold/payments.csv";

#[test]
fn schema_validate_and_run() {
    let schema: serde_json::Value = serde_json::from_str(&ok(&["plan", "schema"])).unwrap();
    assert_eq!(schema["title"], "Plan");
    assert!(schema.to_string().contains("data-input"));

    let v = json(&["plan", "validate", "examples/stocks-summary/plan.yaml", "--json"]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["executionOrder"], serde_json::json!(["prices", "full_years", "summary"]));
    assert_eq!(v["planHash"].as_str().unwrap().len(), 64);

    let v = json(&["run", INCOME, "--data", PAYMENTS, "--json"]);
    let expected: serde_json::Value = serde_json::from_slice(&std::fs::read(root().join("examples/income-threshold/expected-output.json")).unwrap()).unwrap();
    assert_eq!(v["output"], expected);
    assert_eq!(v["publicOutput"], serde_json::json!({"meets_threshold": true, "payment_count": 8}));
    assert_eq!(v["records"], 11);
}

#[test]
fn invalid_plan_exits_1_with_file_line_column() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.yaml");
    let text = std::fs::read_to_string(root().join(INCOME)).unwrap().replace("input: in_window", "input: in_windw");
    std::fs::write(&p, text).unwrap();
    let out = run(&["plan", "validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with(&format!("{}:29:14: no step has the ID `in_windw`", p.display())), "{stdout}");

    let out = run(&["run", p.to_str().unwrap(), "--data", PAYMENTS]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":29:14: no step has the ID `in_windw`"));
    let out = run(&["run", INCOME, "--data", "nope=x.csv"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the plan has no data-input `nope`"));
}

#[test]
fn registry_files_are_signed_and_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("registry.note");
    let key = tmp.path().join("registry.key");
    let (f, k) = (file.to_str().unwrap(), key.to_str().unwrap());
    let vkey = ok(&["registry", "init", f, "--name", "test.example/registry", "--key", k]).trim().to_string();
    let id = "cd".repeat(32);
    ok(&["registry", "add", f, "--key", k, "--image-id", &id, "--program-version", "0.0.9", "--features", "plan-ir/1.0", "--release-date", "2026-01-02"]);
    ok(&["registry", "deprecate", f, "--key", k, "--image-id", &id, "--reason", "superseded"]);
    let v = json(&["registry", "list", "--registry", f, "--registry-vkey", &vkey, "--json"]);
    let programs = v["programs"].as_array().unwrap();
    assert_eq!(programs.len(), 2);
    assert_eq!(programs[0]["origin"], "embedded");
    assert_eq!(programs[1]["imageId"], id.as_str());
    assert_eq!(programs[1]["deprecated"], true);
    assert_eq!(programs[1]["reason"], "superseded");
    // Tampering with the signed file is refused.
    let text = std::fs::read_to_string(&file).unwrap().replace("superseded", "fine");
    std::fs::write(&file, text).unwrap();
    let out = run(&["registry", "list", "--registry", f, "--registry-vkey", &vkey]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature"));
}

/// TEE evidence from `../shared/data/tee/` (dcap-qvl's SGX quote, virtee's
/// SEV-SNP report): valid only once the signed registry approves its
/// measurement, and refused, with the reason, when its collateral has
/// expired or a byte of it is flipped.
#[test]
fn attestations_verify_against_the_registrys_measurements() {
    let tee = root().join("../shared/data/tee");
    let (quote, collateral) = (tee.join("dcap-qvl/sgx_quote"), tee.join("dcap-qvl/sgx_quote_collateral.json"));
    let (q, c) = (quote.to_str().unwrap(), collateral.to_str().unwrap());
    let attest = |extra: &[&str]| -> (i32, serde_json::Value) {
        let mut args = vec!["attest", "verify", q, "--collateral", c, "--json"];
        args.extend_from_slice(extra);
        let out = run(&args);
        (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
    };
    let july = ["--at", "2025-07-01T00:00:00Z"];
    let (code, v) = attest(&july);
    assert_eq!(code, 1, "{v}");
    let measurement = v["attestation"]["measurement"].as_str().unwrap().to_owned();
    assert!(v["reason"].as_str().unwrap().contains("not approved by the registry"), "{v}");
    assert_eq!(v["attestation"]["tcbStatus"], "ConfigurationAndSWHardeningNeeded");

    // A registry file that approves this enclave's measurement.
    let tmp = tempfile::tempdir().unwrap();
    let (file, key) = (tmp.path().join("registry.note"), tmp.path().join("registry.key"));
    let (f, k) = (file.to_str().unwrap(), key.to_str().unwrap());
    let vkey = ok(&["registry", "init", f, "--name", "test.example/registry", "--key", k]).trim().to_string();
    ok(&["registry", "add", f, "--key", k, "--program-version", "0.1.0", "--release-date", "2026-12-05", "--tee-measurement", &measurement]);
    let reg = ["--registry", f, "--registry-vkey", vkey.as_str()];
    let (code, v) = attest(&[&july[..], &reg[..]].concat());
    assert_eq!((code, v["valid"].as_bool()), (0, Some(true)), "{v}");
    // Now (December 2026) its collateral has expired.
    let (code, v) = attest(&reg);
    assert!(code == 1 && v["reason"].as_str().unwrap().to_lowercase().contains("expired"), "{v}");
    // Only UpToDate platforms, when asked.
    let (code, v) = attest(&[&july[..], &reg[..], &["--require-up-to-date"][..]].concat());
    assert!(code == 1 && v["reason"].as_str().unwrap().contains("not UpToDate"), "{v}");
    // A flipped byte in the quote's body.
    let mut bytes = std::fs::read(&quote).unwrap();
    bytes[120] ^= 1;
    let bad = tmp.path().join("bad_quote");
    std::fs::write(&bad, &bytes).unwrap();
    let out = run(&["attest", "verify", bad.to_str().unwrap(), "--collateral", c, "--at", "2025-07-01T00:00:00Z", "--any-measurement"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("forged: ISV enclave report signature is invalid"), "{}", String::from_utf8_lossy(&out.stdout));

    // An SEV-SNP report with its VCEK, up to AMD's root.
    let report = tee.join("sev/report_milan.hex");
    let vcek = tee.join("sev/vcek_milan.der");
    let v = json(&["attest", "verify", report.to_str().unwrap(), "--collateral", vcek.to_str().unwrap(), "--any-measurement", "--json"]);
    assert_eq!((v["valid"].as_bool(), v["attestation"]["tee"].as_str()), (Some(true), Some("sev-snp")), "{v}");
}

#[test]
fn prove_record_and_verify_one_real_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("ledger");
    let receipt = tmp.path().join("income.receipt");
    let (l, r) = (ledger.to_str().unwrap(), receipt.to_str().unwrap());
    ok(&["log", "init", l, "--origin", "test.example/ledger"]);
    // The receipt also goes to a Blossom store (a `zkaudit serve`'s).
    let blossom_dir = tmp.path().join("blossom-server");
    ok(&["log", "init", blossom_dir.to_str().unwrap(), "--origin", "test.example/blossom"]);
    let server = daemon::Daemon::start(Command::new(BIN).args(["serve", "--dir", blossom_dir.to_str().unwrap(), "--addr", "127.0.0.1:0", "--workers", "0"]));
    let key = tmp.path().join("me.nsec");
    ok(&["store", "keygen", key.to_str().unwrap()]);
    let store = format!("blossom+{}/blossom", server.url);
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let v = json(&["prove", INCOME, "--data", PAYMENTS, "--out", r, "--ledger", l, "--store", &store, "--key", key.to_str().unwrap(), "--cache", c, "--json"]);
    assert_eq!(v["kind"], "risc0-composite");
    assert_eq!(v["ledgerIndex"], 0);
    assert_eq!(v["publicOutput"], serde_json::json!({"meets_threshold": true, "payment_count": 8}));
    let proof_ref = v["proofRef"].as_str().unwrap();
    assert_eq!(proof_ref, format!("{}/blossom/{}", server.url, v["receiptDigest"].as_str().unwrap()));
    let fetched = tmp.path().join("fetched.receipt");
    let fresh = tmp.path().join("fresh-cache");
    ok(&["store", "get", proof_ref, "--store", &store, "--cache", fresh.to_str().unwrap(), "-o", fetched.to_str().unwrap()]);
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&receipt).unwrap());
    server.stop();

    // The ledger's proof event points at this receipt.
    let event: serde_json::Value = serde_json::from_str(&ok(&["log", "get", l, "--index", "0"])).unwrap();
    assert_eq!(event["type"], "zk_proof");
    assert_eq!(event["proof"]["receipt_digest"], format!("sha256:{}", v["receiptDigest"].as_str().unwrap()));

    // An auditor's query finds the proof event and verifies the stored receipt now.
    let q = json(&["query", l, "zkaudit(computation('income-threshold'), proof(I, R, Img, Plan, Data, Out, V)).", "--json"]);
    let b = &q["answers"][0]["bindings"];
    assert_eq!((b["I"].clone(), b["V"].clone()), (serde_json::json!(0), serde_json::json!("valid")), "{q}");
    assert_eq!(b["R"], event["proof"]["receipt_digest"]);
    assert_eq!(q["answers"][0]["events"][0]["inclusion_proof"]["tree_size"], 1);
    // A damaged stored receipt no longer verifies.
    let stored = ledger.join("receipts").join(format!("{}.bin", v["receiptDigest"].as_str().unwrap()));
    let mut bytes = std::fs::read(&stored).unwrap();
    let n = bytes.len();
    bytes[n / 3] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    let q = json(&["query", l, "zkaudit(computation(P), proof(_, _, _, _, _, _, V)).", "--json"]);
    assert!(q["answers"][0]["text"]["V"].as_str().unwrap().starts_with("invalid("), "{q}");

    // Every check passes...
    let expect = root().join("examples/income-threshold/expected-public.json");
    let e = expect.to_str().unwrap();
    let v = json(&["verify", r, "--plan", INCOME, "--data", PAYMENTS, "--expect-output", e, "--json"]);
    assert_eq!(v["valid"], true);
    assert!(v["verifyMillis"].as_f64().unwrap() > 0.0);

    // ...and each failure exits 1 with its reason.
    let fail = |args: &[&str], reason: &str| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.starts_with("FAIL: ") && stdout.contains(reason), "{args:?}: {stdout}");
    };
    fail(&["verify", r, "--plan", "examples/stocks-summary/plan.yaml"], "is for plan hash");
    let changed = tmp.path().join("payments.csv");
    let text = std::fs::read_to_string(root().join("examples/income-threshold/payments.csv")).unwrap();
    std::fs::write(&changed, text.replacen("8200.00,salary", "8200.01,salary", 1)).unwrap();
    fail(&["verify", r, "--plan", INCOME, "--data", &format!("payments={}", changed.display())], "is for data root");
    let wrong = tmp.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"payment_count": 8, "meets_threshold": false}"#).unwrap();
    fail(&["verify", r, "--expect-output", wrong.to_str().unwrap()], "differs from the expected");
    let mut bytes = std::fs::read(&receipt).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = tmp.path().join("bad.receipt");
    std::fs::write(&bad, &bytes).unwrap();
    let out = run(&["verify", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // A registry file that deprecates this very program.
    let file = tmp.path().join("registry.note");
    let key = tmp.path().join("registry.key");
    let vkey = ok(&["registry", "init", file.to_str().unwrap(), "--name", "t.example/r", "--key", key.to_str().unwrap()]);
    let id = json(&["registry", "list", "--json"])["programs"][0]["imageId"].as_str().unwrap().to_string();
    ok(&["registry", "deprecate", file.to_str().unwrap(), "--key", key.to_str().unwrap(), "--image-id", &id, "--reason", "interpreter bug #12"]);
    fail(&["verify", r, "--registry", file.to_str().unwrap(), "--registry-vkey", vkey.trim()], "is deprecated: interpreter bug #12");

    // The ledger still verifies with the proof event in it.
    ok(&["log", "verify", l]);

    settles_jobs_on_the_receipt(tmp.path(), &receipt, &bad);
    provers_register_earn_reputation_and_are_selected(tmp.path(), &receipt, &bad);
    market_jobs_are_served_to_the_drawn_prover(tmp.path(), &receipt, &bad);
}

/// The market over HTTP (`zkaudit serve --settle-db`) with this real
/// receipt: a buyer posts the income job, the registry draws the only
/// prover, which finds the job under its own jobs, fetches the spec and
/// data from the server's Blossom store (they hash to the job's terms),
/// and delivers: the real receipt is paid with the split, a damaged one
/// for a second job is refunded and slashed, a stranger may not deliver,
/// and a job with no receipt by its deadline is refunded.
fn market_jobs_are_served_to_the_drawn_prover(tmp: &Path, receipt: &Path, bad: &Path) {
    let dir = tmp.join("market-ledger");
    ok(&["log", "init", dir.to_str().unwrap(), "--origin", "test.example/market"]);
    let token = |scope: &str, tenant: &str| ok(&["token", "create", dir.to_str().unwrap(), "--scope", scope, "--tenant", tenant]).trim().to_owned();
    let (admin, buyer, prover, stranger) = (token("admin", "ops"), token("submit", "buyer"), token("submit", "pat"), token("submit", "mallory"));
    let db = tmp.join("market.sqlite");
    let server = daemon::Daemon::start(
        Command::new(BIN).args(["serve", "--addr", "127.0.0.1:0", "--workers", "0", "--min-stake", "1000", "--settle-db"]).arg(&db).arg("--dir").arg(&dir),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let send = |method: &str, path: &str, token: &str, body: Vec<u8>, ct: &str| -> (u16, Vec<u8>) {
        let url = format!("{}{path}", server.url);
        let auth = format!("Bearer {token}");
        let r = if method == "GET" {
            agent.get(&url).header("Authorization", &auth).call()
        } else {
            agent.post(&url).header("Authorization", &auth).content_type(ct).send(&body[..])
        };
        let mut r = r.unwrap();
        (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
    };
    let call = |method: &str, path: &str, token: &str, body: serde_json::Value| {
        let (code, bytes) = send(method, path, token, body.to_string().into_bytes(), "application/json");
        (code, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes))))
    };
    let (code, v) = call("POST", "/v1/provers", &admin, serde_json::json!({"key": "pat", "endpoint": "https://pat.example", "stake": 100000, "ref": "ln-pat"}));
    assert_eq!(code, 201, "{v}");
    let (code, v) = call("POST", "/v1/market/deposits", &admin, serde_json::json!({"buyer": "buyer", "amount": 50000, "ref": "ln-buyer"}));
    assert_eq!((code, v["event.action"].as_str()), (201, Some("deposit")), "{v}");
    assert_eq!(call("POST", "/v1/market/deposits", &buyer, serde_json::json!({"buyer": "buyer", "amount": 1, "ref": "x"})).0, 403);

    let plan = std::fs::read_to_string(root().join(INCOME)).unwrap();
    let csv = std::fs::read_to_string(root().join("examples/income-threshold/payments.csv")).unwrap();
    let job = |id: &str| serde_json::json!({"id": id, "plan": plan, "data": {"payments": {"csv": csv}}, "price": 1001, "deadline_s": 600});
    let (code, a) = call("POST", "/v1/market/jobs", &buyer, job("m-1"));
    assert_eq!(code, 201, "{a}");
    assert_eq!((a["prover"].as_str(), a["endpoint"].as_str()), (Some("pat"), Some("https://pat.example")), "{a}");
    assert_eq!(
        (a["accepted"]["zkaudit.settlement.buyer"].as_str(), a["accepted"]["zkaudit.settlement.collateral"].as_u64()),
        (Some("buyer"), Some(10_000)),
        "{a}"
    );
    assert!(a["outcome"].is_null(), "{a}");
    assert_eq!(call("POST", "/v1/market/jobs", &buyer, job("m-1")).1, a, "posting it again answers with the first assignment");
    // The terms are the receipt's: the CLI's plan hash and data root.
    let run = json(&["run", INCOME, "--data", PAYMENTS, "--json"]);
    assert_eq!(
        (&a["accepted"]["zkaudit.settlement.plan_hash"], &a["accepted"]["zkaudit.settlement.data_root"]),
        (&run["planHash"], &run["dataRoot"]),
        "{a} {run}"
    );

    // The prover finds the job among its own, and its spec and data in the store.
    let (code, mine) = call("GET", "/v1/provers/pat/jobs", &prover, serde_json::Value::Null);
    assert_eq!((code, mine.as_array().map(Vec::len)), (200, Some(1)), "{mine}");
    let spec_sha = mine[0]["accepted"]["zkaudit.settlement.spec"].as_str().unwrap().to_owned();
    let (code, spec_bytes) = send("GET", &format!("/blossom/{spec_sha}"), &prover, Vec::new(), "");
    assert_eq!(code, 200);
    assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&spec_bytes)), spec_sha);
    let spec: serde_json::Value = serde_json::from_slice(&spec_bytes).unwrap();
    let blob = spec["data"][0]["blob"].as_str().unwrap();
    let (code, data) = send("GET", &format!("/blossom/{blob}"), &prover, Vec::new(), "");
    assert_eq!((code, data), (200, csv.clone().into_bytes()), "the data as posted");

    // Only the drawn prover delivers; the real receipt is paid.
    let receipt_bytes = std::fs::read(receipt).unwrap();
    let (code, _) = send("POST", "/v1/market/jobs/m-1/receipt", &stranger, receipt_bytes.clone(), "application/octet-stream");
    assert_eq!(code, 403);
    let (code, bytes) = send("POST", "/v1/market/jobs/m-1/receipt", &prover, receipt_bytes.clone(), "application/octet-stream");
    let paid: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (code, paid["event.action"].as_str(), paid["zkaudit.settlement.split"].clone()),
        (200, Some("pay"), serde_json::json!([700, 201, 100])),
        "{paid}"
    );
    assert_eq!(call("GET", "/v1/market/jobs/m-1", &buyer, serde_json::Value::Null).1["outcome"], paid);
    let (code, bytes) = send("POST", "/v1/market/jobs/m-1/receipt", &prover, receipt_bytes.clone(), "application/octet-stream");
    assert_eq!((code, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()), (200, paid.clone()), "the same delivery again finds its payment");
    let (code, _) = send("POST", "/v1/market/jobs/m-1/receipt", &prover, std::fs::read(bad).unwrap(), "application/octet-stream");
    assert_eq!(code, 409, "another receipt for a settled job");
    assert_eq!(call("GET", "/v1/market/jobs/m-1", &buyer, serde_json::Value::Null).1["outcome"], paid);

    // A damaged receipt for another job: refunded, and the prover slashed.
    assert_eq!(call("POST", "/v1/market/jobs", &buyer, job("m-2")).0, 201);
    let (code, bytes) = send("POST", "/v1/market/jobs/m-2/receipt", &prover, std::fs::read(bad).unwrap(), "application/octet-stream");
    let refund: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!((code, refund["event.action"].as_str(), refund["zkaudit.settlement.cause"].as_str()), (200, Some("refund"), Some("invalid_proof")), "{refund}");
    assert!(refund["zkaudit.settlement.slashed"].as_u64().unwrap() > 0, "{refund}");

    // No receipt by the deadline (1 s): refunded on request, not before.
    let mut quick = job("m-3");
    quick["deadline_s"] = 1.into();
    assert_eq!(call("POST", "/v1/market/jobs", &buyer, quick).0, 201);
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let (code, v) = call("POST", "/v1/market/jobs/m-3/expire", &buyer, serde_json::Value::Null);
    assert_eq!((code, v["zkaudit.settlement.cause"].as_str()), (200, Some("deadline_missed")), "{v}");
    let (code, v) = call("POST", "/v1/market/jobs/m-1/expire", &buyer, serde_json::Value::Null);
    assert_eq!(code, 422, "m-1 is not overdue: {v}");
    assert_eq!(call("GET", "/v1/market/jobs/nope", &buyer, serde_json::Value::Null).0, 404);
    let (code, list) = call("GET", "/v1/provers", &buyer, serde_json::Value::Null);
    assert_eq!((code, list[0]["outcomes"].clone()), (200, serde_json::json!({"succeeded": 1, "failed": 1, "timedOut": 1})), "{list}");
    drop(server);
    let report = json(&["compliance", dir.to_str().unwrap(), "--pack", "settlement", "--json"]);
    assert!(report["rules"].as_array().unwrap().iter().all(|r| r["verdict"] == "pass"), "{report}");
}

/// The prover registry over the same real receipt: registration with
/// stake (below the minimum refused), reputation from settled jobs, a
/// seeded draw that anyone can repeat from the recorded seed, unbonding
/// and withdrawal after the unbonding period.
fn provers_register_earn_reputation_and_are_selected(tmp: &Path, receipt: &Path, bad: &Path) {
    let ledger = tmp.join("provers-ledger");
    let (l, db) = (ledger.to_str().unwrap(), tmp.join("provers.sqlite"));
    ok(&["log", "init", l, "--origin", "test.example/provers"]);
    let db = db.to_str().unwrap();
    let call = |cmd: &str, sub: &str, args: &[&str]| -> (i32, serde_json::Value) {
        let mut all = vec![cmd, sub, "--db", db, "--ledger", l, "--json"];
        if cmd == "provers" {
            all.extend_from_slice(&["--min-stake", "500000"]);
        }
        all.extend_from_slice(args);
        let out = run(&all);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
        (out.status.code().unwrap(), v)
    };
    let (code, v) = call("provers", "register", &["alice", "--endpoint", "https://alice.example/v1", "--stake", "2000000", "--ref", "ln-a"]);
    assert_eq!((code, v["zkaudit.prover.tee"].as_str()), (0, Some("none")), "{v}");
    assert_eq!(
        call("provers", "register", &["alice", "--endpoint", "https://alice.example/v1", "--stake", "2000000", "--ref", "ln-a"]).1,
        v,
        "a repeat finds the step"
    );
    assert_eq!(call("provers", "register", &["bob", "--endpoint", "https://bob.example", "--stake", "1000000", "--ref", "ln-b"]).0, 0);
    let (code, v) = call("provers", "register", &["carl", "--endpoint", "https://carl.example", "--stake", "100", "--ref", "ln-c"]);
    assert!(code == 2 && v.as_str().unwrap().contains("below the minimum of 500000"), "{code} {v}");
    let (code, v) = call("provers", "register", &["alice", "--endpoint", "https://alice.example", "--stake", "5", "--ref", "ln-a2"]);
    assert!(code == 2 && v.as_str().unwrap().contains("registered already"), "{code} {v}");
    let (code, v) = call("provers", "register", &["dan", "--endpoint", "not a url", "--stake", "600000", "--ref", "ln-d"]);
    assert!(code == 2 && v.as_str().unwrap().contains("is not a URL"), "{code} {v}");

    // Alice proves validly, Bob submits a damaged receipt.
    assert_eq!(call("settle", "deposit", &["buyer", "100000", "--ref", "ln-buyer"]).0, 0);
    for (job, prover, r) in [("job-a", "alice", receipt), ("job-b", "bob", bad)] {
        assert_eq!(call("settle", "accept", &[job, "--buyer", "buyer", "--prover", prover, "--price", "1000", "--deadline", "600"]).0, 0);
        let code = call("settle", "fulfil", &[job, "--receipt", r.to_str().unwrap(), "--plan", INCOME, "--data", PAYMENTS]).0;
        assert_eq!(code, if prover == "alice" { 0 } else { 1 });
    }
    let list = call("provers", "list", &[]).1;
    let (a, b) = (row_of(&list, "alice"), row_of(&list, "bob"));
    assert_eq!((a["outcomes"]["succeeded"].as_u64(), a["reputationBps"].as_u64(), a["rampBps"].as_u64()), (Some(1), Some(6_666), Some(200)), "{a}");
    assert_eq!((b["outcomes"]["failed"].as_u64(), b["reputationBps"].as_u64(), b["stake"].as_str()), (Some(1), Some(2_500), Some("900000")), "{b}");
    assert_eq!(a["weight"], "26664", "2,000,000 × 6,666 × 200 / 10^8");
    assert!(list.as_array().unwrap().iter().all(|p| p["key"] != "carl"));

    // The draw: recorded with its seed, repeated identically, and
    // reproducible from the listed weights alone.
    let seed = "5eed".repeat(16);
    let (code, sel) = call("provers", "select", &["job-x", "--seed", &seed]);
    assert_eq!(code, 0, "{sel}");
    assert_eq!(call("provers", "select", &["job-x", "--seed", &seed]).1, sel);
    assert_eq!(
        sel["zkaudit.prover.policy"],
        serde_json::json!({"minStake": "500000", "verificationPeriod": 100, "unbondingS": 604800, "downtimeS": 3600}),
        "{sel}"
    );
    let draw = zkaudit_settle::provers::draw_value(&<[u8; 32]>::try_from(hex::decode(&seed).unwrap()).unwrap(), "job-x");
    let weights: Vec<(String, u128)> =
        list.as_array().unwrap().iter().map(|p| (p["key"].as_str().unwrap().to_owned(), p["weight"].as_str().unwrap().parse().unwrap())).collect();
    let total: u128 = weights.iter().map(|w| w.1).sum();
    assert_eq!(sel["zkaudit.prover.total_weight"].as_str(), Some(total.to_string().as_str()), "{sel}");
    let at = draw % total;
    let mut cumulative = 0;
    let expected = weights.iter().find(|(_, w)| {
        cumulative += w;
        at < cumulative
    });
    assert_eq!(sel["zkaudit.prover.key"].as_str(), expected.map(|e| e.0.as_str()), "{sel} {weights:?}");
    let (code, v) = call("provers", "select", &["job-tee", "--seed", &seed, "--require-tee"]);
    assert!(code == 2 && v.as_str().unwrap().contains("and a TEE"), "{code} {v}");

    // Registering with TEE evidence: verified now against the registry's
    // approved measurements. The SGX sample's collateral has expired; the
    // SEV-SNP sample (whose VCEK chains to AMD's root) registers once its
    // measurement is approved, and is then the only prover a TEE job draws.
    let tee = root().join("../shared/data/tee");
    let path = |p: &str| tee.join(p).to_str().unwrap().to_owned();
    let (code, v) = call(
        "provers",
        "register",
        &[
            "erin",
            "--endpoint",
            "https://erin.example",
            "--stake",
            "600000",
            "--ref",
            "ln-e",
            "--quote",
            &path("dcap-qvl/sgx_quote"),
            "--collateral",
            &path("dcap-qvl/sgx_quote_collateral.json"),
        ],
    );
    assert!(code == 2 && v.as_str().unwrap().contains("attestation refused") && v.as_str().unwrap().to_lowercase().contains("expired"), "{code} {v}");
    let snp = ["--quote", &path("sev/report_milan.hex"), "--collateral", &path("sev/vcek_milan.der")].map(str::to_owned);
    let (code, v) = call(
        "provers",
        "register",
        &[&["fay", "--endpoint", "https://fay.example", "--stake", "600000", "--ref", "ln-f"][..], &snp.each_ref().map(String::as_str)[..]].concat(),
    );
    assert!(code == 2 && v.as_str().unwrap().contains("not approved by the registry"), "{code} {v}");
    let measurement = json(&["attest", "verify", &path("sev/report_milan.hex"), "--collateral", &path("sev/vcek_milan.der"), "--any-measurement", "--json"])
        ["attestation"]["measurement"]
        .as_str()
        .unwrap()
        .to_owned();
    let (file, key) = (tmp.join("provers-registry.note"), tmp.join("provers-registry.key"));
    let (f, k) = (file.to_str().unwrap(), key.to_str().unwrap());
    let vkey = ok(&["registry", "init", f, "--name", "test.example/registry", "--key", k]).trim().to_string();
    ok(&["registry", "add", f, "--key", k, "--program-version", "0.1.0", "--release-date", "2026-12-05", "--tee-measurement", &measurement]);
    let with_registry = [
        &["fay", "--endpoint", "https://fay.example", "--stake", "600000", "--ref", "ln-f", "--registry", f, "--registry-vkey", &vkey][..],
        &snp.each_ref().map(String::as_str)[..],
    ]
    .concat();
    let (code, v) = call("provers", "register", &with_registry);
    assert_eq!((code, v["zkaudit.prover.tee"].as_str(), v["zkaudit.prover.tee_measurement"].as_str()), (0, Some("sev-snp"), Some(measurement.as_str())), "{v}");
    assert_eq!(call("provers", "select", &["job-tee", "--seed", &seed, "--require-tee"]).1["zkaudit.prover.key"], "fay");

    // Unbonding: Alice is no longer drawn, and withdraws only after the period.
    assert_eq!(call("provers", "unbond", &["alice"]).0, 0);
    for i in 0..5 {
        assert_ne!(call("provers", "select", &[&format!("job-after-{i}"), "--seed", &seed]).1["zkaudit.prover.key"], "alice");
    }
    let (code, v) = call("provers", "withdraw", &["alice"]);
    assert!(code == 2 && v.as_str().unwrap().contains("unbonding period ends in"), "{code} {v}");
    let (code, v) = call("provers", "withdraw", &["bob"]);
    assert!(code == 2 && v.as_str().unwrap().contains("run `unbond` first"), "{code} {v}");
    let (code, v) = call("provers", "withdraw", &["alice", "--unbonding", "0"]);
    assert_eq!((code, v["zkaudit.prover.amount"].as_u64()), (0, Some(2_000_000)), "{v}");
    assert_eq!(call("settle", "balance", &["stake", "alice"]).1["net"], "0");
    assert_eq!(row_of(&call("provers", "list", &[]).1, "alice")["status"]["state"], "withdrawn");

    // Fresh evidence: the same report again is recorded as an attestation;
    // one with a flipped measurement byte fails its own signature under
    // the chip's VCEK: forged, so Fay loses all her free stake, is banned
    // and drawn no more.
    let fay_stake = || call("settle", "balance", &["stake", "fay"]).1["net"].as_str().unwrap().to_owned();
    assert_eq!(fay_stake(), "600000");
    let attest = |quote: &str| {
        let args = ["fay", "--quote", quote, "--collateral", &path("sev/vcek_milan.der"), "--registry", f, "--registry-vkey", &vkey];
        call("provers", "attest", &args)
    };
    let (code, v) = attest(&path("sev/report_milan.hex"));
    assert_eq!((code, v["event.action"].as_str(), v["zkaudit.prover.tee"].as_str()), (0, Some("attest"), Some("sev-snp")), "{v}");
    let mut forged = zkaudit_attest::evidence_bytes(&std::fs::read(path("sev/report_milan.hex")).unwrap());
    forged[0x90] ^= 0x80;
    let forged_file = tmp.join("forged-report.bin");
    std::fs::write(&forged_file, &forged).unwrap();
    let (code, v) = attest(forged_file.to_str().unwrap());
    assert_eq!((code, v["event.action"].as_str()), (1, Some("ban")), "{v}");
    assert!(v["event.reason"].as_str().unwrap().contains("forged"), "{v}");
    assert_eq!(attest(forged_file.to_str().unwrap()).1, v, "the same evidence again finds the ban");
    assert_eq!(fay_stake(), "0", "100% of the free stake");
    assert_eq!(row_of(&call("provers", "list", &[]).1, "fay")["status"]["state"], "banned");
    let (code, v) = call("provers", "select", &["job-tee-2", "--seed", &seed, "--require-tee"]);
    assert!(code == 2 && v.as_str().unwrap().contains("and a TEE"), "{code} {v}");
    let (code, v) = call("provers", "register", &with_registry);
    assert_eq!(code, 0, "the registration step is found, not taken again: {v}");
    let again = [&["fay", "--endpoint", "https://fay.example", "--stake", "600000", "--ref", "ln-f2"][..]].concat();
    let (code, v) = call("provers", "register", &again);
    assert!(code == 2 && v.as_str().unwrap().contains("banned"), "{code} {v}");
    let (code, v) = attest(&path("sev/report_milan.hex"));
    assert!(code == 0 && v["event.action"] == "attest", "evidence seen before answers with its first record: {v}");

    // Downtime: Gus serves on loopback, Bob's endpoint does not resolve.
    // An outage longer than --downtime-after costs 1% of the free stake,
    // once; coming back is recorded.
    let gus = Endpoint::start(None);
    let url = format!("http://{}/", gus.addr);
    assert_eq!(call("provers", "register", &["gus", "--endpoint", &url, "--stake", "800000", "--ref", "ln-g"]).0, 0);
    let probe = |after: &str| {
        let (code, v) = call("provers", "probe", &["--timeout", "2", "--downtime-after", after]);
        assert_eq!(code, 0, "{v}");
        let by = |k: &str| v.as_array().unwrap().iter().find(|r| r["key"] == k).cloned().unwrap_or_else(|| panic!("{k} in {v}"));
        (by("gus"), by("bob"), v)
    };
    let (g, b, all) = probe("3600");
    assert_eq!(
        (g["reachable"].as_bool(), g["recorded"].as_bool(), b["reachable"].as_bool(), b["recorded"].as_bool()),
        (Some(true), Some(true), Some(false), Some(true)),
        "{all}"
    );
    assert!(all.as_array().unwrap().iter().all(|r| r["key"] != "fay" && r["key"] != "alice"), "banned and withdrawn provers are not probed: {all}");
    let addr = gus.addr;
    drop(gus);
    let (g, b, all) = probe("1");
    assert_eq!((g["reachable"].as_bool(), g["recorded"].as_bool(), b["recorded"].as_bool()), (Some(false), Some(true), Some(false)), "{all}");
    assert!(b["slash"].is_null() || b["slash"]["zkaudit.settlement.slashed"].as_u64() == Some(9_000), "{all}");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let (g, b, all) = probe("1");
    assert_eq!(g["slash"]["zkaudit.settlement.slashed"].as_u64(), Some(8_000), "1% of 800,000: {all}");
    assert_eq!((b["slash"]["zkaudit.settlement.slashed"].as_u64(), b["slash"]["zkaudit.settlement.cause"].as_str()), (Some(9_000), Some("downtime")), "{all}");
    let (g2, _, _) = probe("1");
    assert_eq!(g2["slash"], g["slash"], "one penalty per outage");
    assert_eq!(call("settle", "balance", &["stake", "gus"]).1["net"], "792000");
    let back = Endpoint::start(Some(addr));
    let (g, _, all) = probe("1");
    assert_eq!((g["reachable"].as_bool(), g["recorded"].as_bool(), g["slash"].is_null()), (Some(true), Some(true), true), "{all}");
    drop(back);

    // The settlement pack holds over the penalties: each rests on a
    // recorded outage or a forged verdict.
    let report = json(&["compliance", l, "--pack", "settlement", "--json"]);
    assert!(report["rules"].as_array().unwrap().iter().all(|r| r["verdict"] == "pass"), "{report}");
    // Every step is in the ledger, which still verifies.
    ok(&["log", "verify", l]);
}

/// A prover's endpoint on loopback: answers every connection with
/// `HTTP/1.1 200 OK` until dropped.
struct Endpoint {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    fn start(at: Option<std::net::SocketAddr>) -> Endpoint {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind(at.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap())).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = c.read(&mut buf);
                        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        Endpoint { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn row_of(list: &serde_json::Value, key: &str) -> serde_json::Value {
    list.as_array().unwrap().iter().find(|p| p["key"] == key).cloned().unwrap_or_else(|| panic!("{key} in {list}"))
}

/// The proof market's settlement on this real receipt (and a damaged
/// copy): paid with the split after verification, refunded and slashed on
/// an invalid receipt, a receipt for another plan, a missed deadline and an
/// upheld challenge; every step in the ledger, and the `settlement` pack
/// passes over it until a payment without a verified receipt is forged in.
fn settles_jobs_on_the_receipt(tmp: &Path, receipt: &Path, bad: &Path) {
    let ledger = tmp.join("settle-ledger");
    let (l, db) = (ledger.to_str().unwrap(), tmp.join("settle.sqlite"));
    ok(&["log", "init", l, "--origin", "test.example/settle"]);
    let (good, bad) = (receipt.to_str().unwrap(), bad.to_str().unwrap());
    let settle = |args: &[&str]| -> (i32, serde_json::Value) {
        let mut all = vec!["settle", args[0], "--db", db.to_str().unwrap(), "--ledger", l, "--json"];
        all.extend_from_slice(&args[1..]);
        let out = run(&all);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(&stdout).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
        (out.status.code().unwrap(), v)
    };
    let accept = |job: &str, deadline: &str| {
        let (code, v) = settle(&["accept", job, "--buyer", "buyer", "--prover", "prover", "--price", "1001", "--deadline", deadline]);
        assert_eq!(code, 0, "{v}");
        v
    };
    assert_eq!(settle(&["deposit", "buyer", "100000", "--ref", "ln-1"]).0, 0);
    assert_eq!(settle(&["stake", "prover", "1000000", "--ref", "ln-2"]).0, 0);
    assert_eq!(accept("job-ok", "600")["zkaudit.settlement.collateral"], 100_000, "10% of the stake");

    // Verified, then paid: 70% / 20% + remainder / 10%; repeating pays nothing more.
    let (code, v) = settle(&["fulfil", "job-ok", "--receipt", good, "--plan", INCOME, "--data", PAYMENTS]);
    assert_eq!((code, v["event.action"].as_str(), v["zkaudit.settlement.verdict"].as_str()), (0, Some("pay"), Some("valid")), "{v}");
    assert_eq!(v["zkaudit.settlement.split"], serde_json::json!([700, 201, 100]));
    assert_eq!(v["zkaudit.settlement.policy"]["prover_bps"], 7000, "the shares applied are recorded: {v}");
    let size = |l: &str| json(&["log", "verify", l, "--json"])["size"].as_u64().unwrap();
    let before = size(l);
    assert_eq!(settle(&["fulfil", "job-ok", "--receipt", good, "--plan", INCOME, "--data", PAYMENTS]).1, v, "a repeat finds the step");
    assert_eq!(size(l), before, "and records nothing more");

    // A damaged receipt, and a good receipt for another plan: refunded, 10% of the free stake slashed.
    accept("job-bad", "600");
    let (code, v) = settle(&["fulfil", "job-bad", "--receipt", bad, "--plan", INCOME, "--data", PAYMENTS]);
    assert_eq!((code, v["event.action"].as_str(), v["zkaudit.settlement.cause"].as_str()), (1, Some("refund"), Some("invalid_proof")), "{v}");
    assert_eq!(v["zkaudit.settlement.slashed"], 100_000);
    accept("job-other-plan", "600");
    let (code, v) = settle(&["fulfil", "job-other-plan", "--receipt", good, "--plan", "examples/stocks-summary/plan.yaml"]);
    assert_eq!(code, 1, "{v}");
    assert!(v["event.reason"].as_str().unwrap().contains("plan hash"), "{v}");

    // A missed deadline: refused before it passes, refunded and slashed after.
    accept("job-late", "1");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (code, v) = settle(&["missed-deadline", "job-late"]);
    assert_eq!((code, v["zkaudit.settlement.cause"].as_str()), (0, Some("deadline_missed")), "{v}");
    accept("job-optimistic", "600");
    let (code, v) = settle(&["missed-deadline", "job-optimistic"]);
    assert!(code == 2 && v.as_str().unwrap().contains("has not passed"), "{code} {v}");

    // Optimistic mode: a challenge against the good receipt is rejected; against the damaged one, upheld.
    let (code, v) = settle(&["challenge", "job-optimistic", "--receipt", good, "--plan", INCOME, "--data", PAYMENTS, "--challenger", "carol"]);
    assert_eq!((code, v["event.action"].as_str()), (0, Some("challenge_rejected")), "{v}");
    let (code, v) = settle(&["challenge", "job-optimistic", "--receipt", bad, "--plan", INCOME, "--data", PAYMENTS, "--challenger", "carol"]);
    assert_eq!(
        (code, v["zkaudit.settlement.cause"].as_str(), v["zkaudit.settlement.challenger"].as_str()),
        (1, Some("challenge_upheld"), Some("carol")),
        "{v}"
    );
    let slashed = v["zkaudit.settlement.slashed"].as_u64().unwrap();
    assert_eq!(v["zkaudit.settlement.challenger_reward"].as_u64().unwrap(), slashed / 2);

    // Balances: the buyer paid for one job only; the prover earned 700.
    let net = |kind: &str, owner: &str| settle(&["balance", kind, owner]).1["net"].as_str().unwrap().parse::<i128>().unwrap();
    assert_eq!(net("buyer", "buyer"), 100_000 - 1001);
    assert_eq!(net("prover", "prover"), 700);
    assert_eq!(net("challenger", "carol"), i128::from(slashed / 2));

    // The pack passes over these steps, then fails on a forged payment.
    let verdicts = || {
        let out = run(&["compliance", l, "--pack", "settlement", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let rules = report["rules"].as_array().unwrap().iter().map(|r| (r["id"].as_str().unwrap().to_owned(), r["verdict"].as_str().unwrap().to_owned()));
        (rules.collect::<Vec<_>>(), report)
    };
    let (v, report) = verdicts();
    assert_eq!(v.len(), 3, "{report}");
    assert!(v.iter().all(|(_, verdict)| verdict == "pass"), "{report}");
    let forged = tmp.join("forged.jsonl");
    let line = serde_json::json!({
        "version": "1.0", "timestamp": "2026-12-05T00:00:00Z", "layer": "application", "type": "settlement",
        "input": format!("sha256:{}", "00".repeat(32)), "output": format!("sha256:{}", "11".repeat(32)),
        "metadata": {"event.action": "pay", "event.outcome": "success", "event.reason": "trust me", "zkaudit.settlement.job": "job-forged",
                     "zkaudit.settlement.buyer": "buyer", "zkaudit.settlement.prover": "prover", "zkaudit.settlement.price": 5,
                     "zkaudit.settlement.deadline_s": 600, "zkaudit.settlement.split": [5, 0, 0], "zkaudit.settlement.slashed": 0,
                     "zkaudit.settlement.challenger_reward": 0}
    });
    std::fs::write(&forged, format!("{line}\n")).unwrap();
    ok(&["log", "append", l, forged.to_str().unwrap()]);
    let (v, report) = verdicts();
    assert_eq!(v.iter().find(|(id, _)| id == "paid_on_valid_receipt").unwrap().1, "fail", "{report}");
    assert!(report.to_string().contains("paid_without_valid_verdict"), "{report}");
    assert!(v.iter().filter(|(id, _)| id != "paid_on_valid_receipt").all(|(_, verdict)| verdict == "pass"), "{report}");
}

/// `bench cycles` runs the real guest (execute-only) over the records
/// repeated: one JSON line per repeat, the guest's journal checked against
/// native execution each time, and more records cost more cycles.
#[test]
fn bench_cycles_measures_the_real_guest_per_repeat() {
    let out = ok(&["bench", "cycles", "examples/stocks-count/plan.yaml", "--data", "prices=../shared/data/stocks.csv", "--repeat", "1,2", "--json"]);
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[0]["repeat"].as_u64(), rows[0]["records"].as_u64()), (Some(1), Some(560)));
    assert_eq!((rows[1]["repeat"].as_u64(), rows[1]["records"].as_u64()), (Some(2), Some(1120)));
    let work = |r: &serde_json::Value| r["userCycles"].as_u64().unwrap() + r["pagingCycles"].as_u64().unwrap();
    assert!(work(&rows[1]) > work(&rows[0]), "{out}");
    assert!(rows[0]["totalCycles"].as_u64().unwrap() >= work(&rows[0]), "{out}");
}
