//! The proof market end to end, with real processes on loopback: an
//! independent Nostr relay (the PyPI package `nostr-relay`, NIP-01 on
//! SQLite, installed by scripts/setup.sh as $ZKAUDIT_NOSTR_RELAY), a proof
//! server with its Blossom store (`zkaudit serve`), a provider
//! (`zkaudit dvm serve`) and the buyer (`zkaudit dvm request|verify`).
//! The proof is a real RISC Zero proof of the income-threshold example.

#[path = "../../../tests-support/daemon.rs"]
mod daemon;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon::Daemon;
use serde_json::Value;
use zkaudit_dvm::nostr_sdk::prelude::*;

const ZKAUDIT: &str = env!("CARGO_BIN_EXE_zkaudit");

fn example(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/income-threshold").join(f)
}

/// The relay: restartable on the same port and database.
struct Relay {
    child: Option<Child>,
    config: PathBuf,
    port: u16,
}

impl Relay {
    fn start(dir: &Path) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("relay.yaml");
        // Content up to 64 KiB (its default is 4,096 bytes); receipts still
        // travel by proof-ref, not in events.
        std::fs::write(
            &config,
            format!(
                "storage:\n  sqlalchemy.url: sqlite+aiosqlite:///{}\n  validators:\n    - nostr_relay.validators.is_not_too_large\n    - nostr_relay.validators.is_signed\n    - nostr_relay.validators.is_recent\ngunicorn:\n  bind: 127.0.0.1:{port}\n  workers: 1\n  loglevel: warning\nmax_event_size: 65536\n",
                dir.join("relay.sqlite3").display()
            ),
        )
        .unwrap();
        let mut r = Relay { child: None, config, port };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let bin = std::env::var("ZKAUDIT_NOSTR_RELAY").expect("ZKAUDIT_NOSTR_RELAY (scripts/setup.sh installs the nostr-relay package and sets it)");
        // Its own process group: gunicorn's workers go down with the master.
        let child = Command::new(bin).arg("-c").arg(&self.config).arg("serve").process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the relay did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL to the group: connections drop as in a crash.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", c.id())]).status();
            let _ = c.wait();
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

fn zk(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(ZKAUDIT);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Ledger events of one type, as JSON, by reading every entry.
fn events_of(dir: &Path, kind: &str) -> Vec<Value> {
    let cp = ok(&zk(&["log", "checkpoint", dir.to_str().unwrap()], &[]));
    let size: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
    (0..size)
        .map(|i| serde_json::from_str::<Value>(&ok(&zk(&["log", "get", dir.to_str().unwrap(), "--index", &i.to_string()], &[]))).unwrap())
        .filter(|e| e["type"] == kind)
        .collect()
}

#[test]
fn a_zk_job_over_nostr_is_refused_proved_stored_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let mut relay = Relay::start(t);
    let relay_url = relay.url();
    let (server_dir, dvm_dir) = (t.join("server"), t.join("dvm"));
    ok(&zk(&["log", "init", &s(&server_dir), "--origin", "test.example/market"], &[]));
    ok(&zk(&["log", "init", &s(&dvm_dir), "--origin", "test.example/dvm"], &[]));
    let token = ok(&zk(&["token", "create", &s(&server_dir), "--scope", "submit", "--tenant", "market"], &[])).trim().to_owned();
    let server = Daemon::start(Command::new(ZKAUDIT).args(["serve", "--dir", &s(&server_dir), "--addr", "127.0.0.1:0", "--workers", "1"]));
    let store = format!("blossom+{}/blossom", server.url);
    let (pkey, bkey) = (t.join("provider.nsec"), t.join("buyer.nsec"));
    ok(&zk(&["store", "keygen", &s(&pkey)], &[]));
    ok(&zk(&["store", "keygen", &s(&bkey)], &[]));
    let pcache = t.join("provider-cache");
    let mut provider = Command::new(ZKAUDIT)
        .args([
            "dvm",
            "serve",
            "--relay",
            &relay_url,
            "--key",
            &s(&pkey),
            "--prover",
            &server.url,
            "--prover-token",
            &token,
            "--store",
            &store,
            "--ledger",
            &s(&dvm_dir),
        ])
        .env("ZKAUDIT_STORE_CACHE", &pcache)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(provider.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("serving kind 5750 as npub1"), "{line}");

    let (plan, data) = (s(&example("plan.yaml")), format!("payments={}", s(&example("payments.csv"))));
    let bcache = t.join("buyer-cache");
    let request = |extra: &[&str]| -> (Value, Output) {
        let mut args = vec!["dvm", "request", &plan, "--data", &data, "--relay", &relay_url, "--key", bkey.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let o = zk(&args, &[("ZKAUDIT_STORE_CACHE", &bcache)]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        (v, o)
    };

    // Refusals, each with its reason; the provider keeps serving after each.
    for (extra, want) in [
        (&["--max-proving-time", "1"][..], "over the max-proving-time of 1 s"),
        (&["--zkvm", "sp1"][..], "zkVM `sp1`"),
        (&["--min-program-version", "99.0.0"][..], "older than the requested min-program-version 99.0.0"),
    ] {
        let (v, o) = request(&[extra, &["--wait", "60"]].concat());
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(v["outcome"]["status"], "error", "{v}");
        assert!(v["outcome"]["reason"].as_str().unwrap().contains(want), "{v}");
    }
    let bad_plan = t.join("bad.yaml");
    std::fs::write(&bad_plan, "version: \"1.0\"\nid: x\nsteps: []\n").unwrap();
    let o = zk(&["dvm", "request", &s(&bad_plan), "--relay", &relay_url, "--key", &s(&bkey), "--wait", "60", "--json"], &[]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"]["status"], "error", "{v}");
    assert!(v["outcome"]["reason"].as_str().unwrap().starts_with("plan or data:"), "{v}");

    // A job kind nobody serves: the buyer times out cleanly.
    let started = Instant::now();
    let (v, o) = request(&["--kind", "5751", "--wait", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(v["outcome"]["status"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(30));

    // The real job. While it proves, the relay goes down and comes back:
    // both sides reconnect, and the result arrives once.
    let result = t.join("result.json");
    let buyer = Command::new(ZKAUDIT)
        .args([
            "dvm",
            "request",
            &plan,
            "--data",
            &data,
            "--relay",
            &relay_url,
            "--key",
            &s(&bkey),
            "--wait",
            "900",
            "--bid",
            "2000",
            "--json",
            "--verify",
            "--out",
            &s(&result),
        ])
        .env("ZKAUDIT_STORE_CACHE", &bcache)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while events_of(&dvm_dir, "dvm_request").len() < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "the provider did not record the request");
        std::thread::sleep(Duration::from_millis(500));
    }
    relay.kill();
    std::thread::sleep(Duration::from_secs(2));
    relay.spawn();
    let o = buyer.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"]["status"], "result", "{v}");
    let verdict = &v["verdict"];
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["publicOutput"], serde_json::from_slice::<Value>(&std::fs::read(example("expected-public.json")).unwrap()).unwrap());
    assert!(verdict["proofRef"].as_str().unwrap().starts_with(&format!("{}/blossom/", server.url)), "{verdict}");

    // The ledger: one request event per request, one result, one refusal per refusal.
    std::thread::sleep(Duration::from_secs(1));
    let requests = events_of(&dvm_dir, "dvm_request");
    let mut ids: Vec<&str> = requests.iter().map(|e| e["metadata"]["nostr.event.id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((requests.len(), ids.len()), (5, 5), "each request recorded once");
    assert_eq!(events_of(&dvm_dir, "dvm_refusal").len(), 4);
    let results = events_of(&dvm_dir, "dvm_result");
    assert_eq!(results.len(), 1, "one result, however often the relay delivered the request");
    assert_eq!(results[0]["metadata"]["zkaudit.receipt_sha256"], verdict["receiptSha256"]);

    let verify = |event: &str, extra: &[&str], cache: &Path| -> Value {
        let mut args = vec!["dvm", "verify", event, "--json"];
        args.extend_from_slice(extra);
        let o = zk(&args, &[("ZKAUDIT_STORE_CACHE", cache)]);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
    };
    let result = s(&result);
    assert_eq!(verify(&result, &[], &t.join("fresh-cache"))["valid"], true);
    // By its ID, fetched from the relay: hex with --relay, or an nevent
    // whose relay hint is the only relay named.
    let result_id = EventId::parse(verdict["resultId"].as_str().unwrap()).unwrap();
    let v = verify(&result_id.to_hex(), &["--relay", &relay_url], &t.join("cache-by-id"));
    assert_eq!((v["valid"].as_bool(), v["resultId"].as_str()), (Some(true), verdict["resultId"].as_str()), "{v}");
    let nevent = Nip19Event::new(result_id).relays([RelayUrl::parse(&relay_url).unwrap()]).to_bech32().unwrap();
    assert_eq!(verify(&nevent, &[], &t.join("cache-by-nevent"))["valid"], true);
    // An ID no relay has: a clear error within the timeout, not a hang.
    let o = zk(&["dvm", "verify", &"00".repeat(32), "--relay", &relay_url, "--store-timeout", "3"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("within 3 s"), "{}", String::from_utf8_lossy(&o.stderr));

    // A deprecated program is rejected with the reason.
    let (reg, regkey) = (t.join("registry.note"), t.join("registry.key"));
    let vkey = ok(&zk(&["registry", "init", "--name", "test.example/registry", "--key", &s(&regkey), &s(&reg)], &[])).trim().to_owned();
    let image = verdict["imageId"].as_str().unwrap();
    ok(&zk(&["registry", "deprecate", "--key", &s(&regkey), "--image-id", image, "--reason", "soundness bug CVE-0000-0001", &s(&reg)], &[]));
    let v = verify(&result, &["--registry", &s(&reg), "--registry-vkey", &vkey], &t.join("fresh-cache"));
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("deprecated: soundness bug CVE-0000-0001"), "{v}");

    // A receipt for another plan under the right tags: a result that names
    // a request for a different threshold, with that plan's hash, signed by
    // the provider, but carrying the first receipt.
    let other_plan = std::fs::read_to_string(example("plan.yaml")).unwrap().replace("\"50000.00\"", "\"90000.00\"");
    let first = Event::from_json(std::fs::read_to_string(&result).unwrap()).unwrap();
    let buyer_keys = Keys::parse(std::fs::read_to_string(&bkey).unwrap().trim()).unwrap();
    let provider_keys = Keys::parse(std::fs::read_to_string(&pkey).unwrap().trim()).unwrap();
    let other_file = t.join("other.yaml");
    std::fs::write(&other_file, &other_plan).unwrap();
    let run: Value = serde_json::from_str(&ok(&zk(&["run", &s(&other_file), "--data", &data, "--json"], &[]))).unwrap();
    let other_hash = run["planHash"].as_str().unwrap();
    let mut req_tags: Vec<Vec<String>> = first.tags.iter().map(|t| t.as_slice().to_vec()).filter(|t| t[0] == "i" || t[0] == "verification").collect();
    req_tags.iter_mut().filter(|t| t.get(4).map(String::as_str) == Some("plan")).for_each(|t| t[1] = other_plan.clone());
    let other_request =
        EventBuilder::new(Kind::from_u16(5750), "").tags(req_tags.into_iter().map(|t| Tag::parse(t).unwrap())).sign_with_keys(&buyer_keys).unwrap();
    let forged_tags: Vec<Tag> = first
        .tags
        .iter()
        .map(|t| {
            let mut v = t.as_slice().to_vec();
            match v[0].as_str() {
                "plan-hash" => v[1] = format!("sha256:{other_hash}"),
                "request" => v[1] = other_request.as_json(),
                "e" => v[1] = other_request.id.to_hex(),
                _ => {}
            }
            Tag::parse(v).unwrap()
        })
        .collect();
    let forged = EventBuilder::new(first.kind, first.content.clone()).tags(forged_tags).sign_with_keys(&provider_keys).unwrap();
    let forged_file = t.join("forged.json");
    std::fs::write(&forged_file, forged.as_json()).unwrap();
    let v = verify(&s(&forged_file), &[], &t.join("fresh-cache"));
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains(&format!("plan hash {}", verdict["planHash"].as_str().unwrap())), "{v}");

    // Settlement on the market's accounts: the provider asked the bid
    // back (NIP-90 `amount`); the valid result is paid with the split, the
    // forged one (a receipt for another plan) refunded, and the provider,
    // who signed it, slashed.
    assert_eq!((verdict["bidMsat"].as_u64(), verdict["amountMsat"].as_u64()), (Some(2000), Some(2000)), "{verdict}");
    let (market_db, market_ledger) = (s(&t.join("market.sqlite")), t.join("market-ledger"));
    ok(&zk(&["log", "init", &s(&market_ledger), "--origin", "test.example/dvm-market"], &[]));
    let m = ["--db", &market_db, "--ledger", &s(&market_ledger)];
    ok(&zk(&[&["settle", "deposit", &buyer_keys.public_key().to_hex(), "10000", "--ref", "ln-buyer"][..], &m[..]].concat(), &[]));
    ok(&zk(&[&["settle", "stake", &provider_keys.public_key().to_hex(), "1000000", "--ref", "ln-provider"][..], &m[..]].concat(), &[]));
    let settle = ["--settle-db", &market_db, "--settle-ledger", &s(&market_ledger)];
    let v = verify(&result, &settle, &t.join("fresh-cache"));
    let paid = &v["settlement"];
    assert_eq!((paid["event.action"].as_str(), paid["zkaudit.settlement.split"].clone()), (Some("pay"), serde_json::json!([1400, 400, 200])), "{v}");
    assert_eq!(paid["zkaudit.settlement.job"], verdict["requestId"], "{v}");
    assert_eq!(verify(&result, &settle, &t.join("fresh-cache"))["settlement"], *paid, "settling it again finds the payment");
    let v = verify(&s(&forged_file), &settle, &t.join("fresh-cache"));
    let refund = &v["settlement"];
    assert_eq!((refund["event.action"].as_str(), refund["zkaudit.settlement.cause"].as_str()), (Some("refund"), Some("invalid_proof")), "{v}");
    assert_eq!(refund["zkaudit.settlement.slashed"].as_u64(), Some(100_000), "10% of the provider's stake: {v}");
    let report: Value = serde_json::from_str(&ok(&zk(&["compliance", &s(&market_ledger), "--pack", "settlement", "--json"], &[]))).unwrap();
    assert!(report["rules"].as_array().unwrap().iter().all(|r| r["verdict"] == "pass"), "{report}");

    // The same job asked with its parameters encrypted to the provider
    // (NIP-04, as NIP-90 names it): the buyer's --key reads the request
    // back; without it the verdict says what is missing.
    let plain_tags: Vec<Vec<String>> = first.tags.iter().map(|t| t.as_slice().to_vec()).filter(|t| t[0] == "i" || t[0] == "verification").collect();
    let sealed = nip04::encrypt(buyer_keys.secret_key(), &provider_keys.public_key(), serde_json::to_string(&plain_tags).unwrap()).unwrap();
    let encrypted_request = EventBuilder::new(Kind::from_u16(5750), sealed)
        .tags([Tag::parse(["encrypted"]).unwrap(), Tag::public_key(provider_keys.public_key())])
        .sign_with_keys(&buyer_keys)
        .unwrap();
    let answer_tags: Vec<Tag> = first
        .tags
        .iter()
        .filter(|t| t.as_slice()[0] != "i")
        .map(|t| {
            let mut v = t.as_slice().to_vec();
            match v[0].as_str() {
                "request" => v[1] = encrypted_request.as_json(),
                "e" => v[1] = encrypted_request.id.to_hex(),
                _ => {}
            }
            Tag::parse(v).unwrap()
        })
        .chain([Tag::parse(["encrypted"]).unwrap()])
        .collect();
    let output = nip04::encrypt(provider_keys.secret_key(), &buyer_keys.public_key(), &first.content).unwrap();
    let answer = EventBuilder::new(first.kind, output).tags(answer_tags).sign_with_keys(&provider_keys).unwrap();
    let answer_file = t.join("encrypted-answer.json");
    std::fs::write(&answer_file, answer.as_json()).unwrap();
    let v = verify(&s(&answer_file), &[], &t.join("fresh-cache"));
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("give --key"), "{v}");
    let v = verify(&s(&answer_file), &["--key", &s(&bkey)], &t.join("fresh-cache"));
    assert_eq!((v["valid"].as_bool(), &v["publicOutput"]), (Some(true), &verdict["publicOutput"]), "{v}");
    let v = verify(&s(&answer_file), &["--key", &s(&pkey)], &t.join("fresh-cache"));
    assert!(v["reason"].as_str().unwrap().contains("not by the --key given"), "{v}");

    // A tampered receipt in storage is rejected by digest, never used.
    let sha = verdict["receiptSha256"].as_str().unwrap();
    let blob = server_dir.join("blossom").join(sha);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let v = verify(&result, &[], &t.join("another-fresh-cache"));
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("tampered or wrong blob"), "{v}");

    let _ = provider.kill();
    let _ = provider.wait();
    server.stop();
}
