//! `zkaudit llm-gateway` end to end, as real processes on loopback.
//!
//! No LLM provider is reachable from where these tests run, so the
//! upstream is `zkaudit llm stand-in`: a small OpenAI-compatible server
//! (JSON and server-sent-event answers) that echoes the prompt and, on
//! markers in it, fails with 500, waits before the first token, breaks a
//! stream halfway, or answers with a card number. The gateway, its policy,
//! the ledger, the call store, the auditor and the official `openai`
//! Python client are all real.

#[path = "../../../tests-support/cli.rs"]
mod cli;
#[path = "../../../tests-support/daemon.rs"]
mod daemon;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cli::{ledger, query, run, ZKAUDIT};
use daemon::Daemon;
use serde_json::{json, Value};

struct Setup {
    _tmp: tempfile::TempDir,
    ledger: PathBuf,
    policy: PathBuf,
    token: String,
    upstream: Daemon,
    gateway: Daemon,
}

const POLICY: &str = r#"
[models]
allow = ["gpt-4o-mini*", "text-embedding-3-small", "impostor"]
[rate_limits]
requests_per_minute = 600
[pii]
phone = "flag"
"#;

fn token(ledger: &Path) -> String {
    let out = run(Command::new(ZKAUDIT).args(["token", "create"]).arg(ledger).args(["--scope", "submit", "--tenant", "acme", "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn setup(policy: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = ledger(tmp.path());
    let token = token(&ledger);
    let policy_path = tmp.path().join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let upstream = Daemon::start(Command::new(ZKAUDIT).args(["llm", "stand-in", "--listen", "127.0.0.1:0"]));
    let gateway = Daemon::start(
        Command::new(ZKAUDIT)
            .args(["llm-gateway", "--listen", "127.0.0.1:0", "--upstream"])
            .arg(format!("{}/v1", upstream.url))
            .arg("--policy")
            .arg(&policy_path)
            .arg("--ledger")
            .arg(&ledger)
            .env("ZKAUDIT_UPSTREAM_KEY", "sk-upstream-only"),
    );
    Setup { _tmp: tmp, ledger, policy: policy_path, token, upstream, gateway }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

/// POSTs `body` (raw bytes) to the gateway; (status, parsed body or the text, call id header).
fn post_raw(s: &Setup, path: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> (u16, Value, Option<String>) {
    let mut req = agent().post(format!("{}{path}", s.gateway.url)).header("Content-Type", content_type);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.send(body).unwrap();
    let status = r.status().as_u16();
    let id = r.headers().get("x-zkaudit-call-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), id)
}

fn chat(s: &Setup, body: Value) -> (u16, Value, Option<String>) {
    post_raw(s, "/v1/chat/completions", Some(&s.token), "application/json", body.to_string().as_bytes())
}

fn user(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

fn upstream_last(s: &Setup) -> Value {
    let mut r = agent().get(format!("{}/_standin/last", s.upstream.url)).call().unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

/// Stops the gateway (recording the calls in flight and the stop) and returns its JSON report.
fn stop(s: Setup) -> Setup {
    let Setup { _tmp, ledger, policy, token, upstream, gateway } = s;
    assert!(gateway.stop().success());
    let gateway = Daemon { child: Command::new("true").spawn().unwrap(), url: String::new() };
    Setup { _tmp, ledger, policy, token, upstream, gateway }
}

/// The `llm_call` event of a call, as the auditor sees it: (index, completion, status).
fn call_event(ledger: &Path, id: &str) -> (u64, String, u64) {
    let a = query(ledger, &format!("llm_call(I, '{id}', _, _, _, St), llm_completion(I, C)."));
    assert_eq!(a.len(), 1, "call {id}: {a:?}");
    (a[0]["I"].as_u64().unwrap(), a[0]["C"].as_str().unwrap().to_owned(), a[0]["St"].as_u64().unwrap())
}

/// The official openai client against the gateway, streaming and not,
/// then the auditor's view of what it did.
#[test]
fn the_openai_python_client_works_through_the_gateway() {
    let s = setup(POLICY);
    let python = std::env::var("ZKAUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/llm/openai_client.py");
    let out = Command::new(&python).arg(&script).arg(format!("{}/v1", s.gateway.url)).arg(&s.token).output().unwrap();
    assert!(
        out.status.success(),
        "{python} {}: {}\n(the openai package comes from scripts/setup.sh: ZKAUDIT_PYTHON)",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["chat"]["content"], "You said: hello from python");
    assert_eq!(seen["chat"]["usage"], json!([3, 5]));
    assert_eq!(seen["chat"]["finish"], "stop");
    assert_eq!(seen["stream"], "You said: stream this please");
    assert_eq!(seen["completion"], "You said: complete me");
    assert_eq!(seen["embeddings"], json!([8, 8]));
    // The stand-in also offers gpt-unallowed; the policy hides it.
    assert_eq!(seen["models"], json!(["gpt-4o-mini", "text-embedding-3-small"]));
    assert_eq!(seen["disallowed"], json!([403, "model_not_allowed"]));
    assert_eq!(seen["blocked"], json!([400, "pii_blocked"]));
    assert_eq!(seen["stream_blocked"][0], "error");
    assert!(!seen["stream_blocked"][1].as_str().unwrap().contains("4111 1111"), "{seen}");
    assert_eq!(seen["bad_token"], 401);
    // The upstream got its own key, never the caller's token.
    assert_eq!(upstream_last(&s)["authorization"], "Bearer sk-upstream-only");

    let s = stop(s);
    let calls = query(&s.ledger, "llm_call(I, C, T, Req, Served, St).");
    assert_eq!(calls.len(), 7, "{calls:?}");
    // The streamed call was recorded with its usage (the gateway asked the upstream for it).
    let streamed = query(&s.ledger, "llm_call(I, _, _, _, _, 200), meta(I, 'zkaudit.llm.stream', true), llm_completion(I, complete), llm_usage(I, In, Out).");
    assert_eq!(streamed.len(), 1, "{streamed:?}");
    assert_eq!((streamed[0]["In"].as_u64(), streamed[0]["Out"].as_u64()), (Some(3), Some(5)));
    let meta = query(&s.ledger, "llm_call(I, _, _, _, _, 200), meta(I, 'gen_ai.request.seed', 7), meta(I, 'gen_ai.request.temperature', T), meta(I, 'gen_ai.request.max_tokens', M), meta(I, 'gen_ai.response.finish_reasons', F).");
    assert_eq!(meta.len(), 1, "{meta:?}");
    assert_eq!(meta[0]["M"], 50);
    assert_eq!(meta[0]["F"], json!(["stop"]));
}

/// Redact, flag and block on prompts and responses, the model allowlist
/// both ways, upstream failures, a slow first token, a broken stream and
/// a client that goes away: each answered as the policy says, and each
/// recorded, with the `llm` pack's verdicts on the result.
#[test]
fn policy_decisions_and_failures_are_answered_and_recorded() {
    let s = setup(POLICY);

    // Redact: the upstream never sees the address.
    let (st, body, id) = chat(&s, user("gpt-4o-mini", "mail bob@example.org now"));
    assert_eq!(st, 200, "{body}");
    assert_eq!(upstream_last(&s)["body"]["messages"][0]["content"], "mail [REDACTED:EMAIL] now");
    assert_eq!(body["choices"][0]["message"]["content"], "You said: mail [REDACTED:EMAIL] now");
    let redacted = id.unwrap();
    // Flag: passes through, counted.
    let (st, body, flagged) = chat(&s, user("gpt-4o-mini", "call +44 20 7946 0958"));
    assert_eq!(st, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "You said: call +44 20 7946 0958");
    // Block on the prompt: the upstream is not called.
    let before = upstream_last(&s);
    let (st, body, _) = chat(&s, user("gpt-4o-mini", "ssn 123-45-6789"));
    assert_eq!((st, body["error"]["code"].as_str()), (400, Some("pii_blocked")), "{body}");
    assert_eq!(upstream_last(&s), before);
    // Block on the response, not streamed.
    let (st, body, _) = chat(&s, user("gpt-4o-mini", "tell me [[card]]"));
    assert_eq!((st, body["error"]["code"].as_str()), (400, Some("pii_blocked")), "{body}");
    assert!(!body.to_string().contains("4111 1111"));
    // Models: not allowed (403), and served as another model (withheld, 502).
    let (st, body, _) = chat(&s, user("gpt-4", "hi"));
    assert_eq!((st, body["error"]["type"].as_str(), body["error"]["param"].as_str()), (403, Some("permission_error"), Some("model")));
    let (st, body, _) = chat(&s, user("impostor", "hi"));
    assert_eq!((st, body["error"]["code"].as_str()), (502, Some("model_not_allowed")), "{body}");
    // Upstream error: passed through in its own shape.
    let (st, body, _) = chat(&s, user("gpt-4o-mini", "fail [[500]]"));
    assert_eq!((st, body["error"]["type"].as_str()), (500, Some("server_error")));
    // Redact in a stream, as it passes.
    let (st, body, _) = chat(&s, json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "[[email]] hi"}]}));
    assert_eq!(st, 200);
    let text = body.as_str().unwrap();
    assert!(text.contains("[REDACTED:EMAIL]") && !text.contains("carol@") && text.ends_with("data: [DONE]\n\n"), "{text}");
    // A slow first token.
    let (st, body, slow) = chat(&s, json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "[[slow]] wait"}]}));
    assert_eq!(st, 200, "{body}");
    // A stream that breaks halfway: the client gets an error event.
    let (st, body, broken) =
        chat(&s, json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "[[break]] one two three four five six"}]}));
    assert_eq!(st, 200);
    assert!(body.as_str().unwrap().contains("upstream_broken"), "{body}");
    // A client that reads the headers of a slow stream and hangs up.
    let aborted = abort_mid_stream(&s);

    // Upstream down: 502, recorded.
    let down = {
        let Setup { _tmp, ledger, policy, token, upstream, gateway } = s;
        drop(upstream);
        let s = Setup { _tmp, ledger, policy, token, upstream: Daemon { child: Command::new("true").spawn().unwrap(), url: String::new() }, gateway };
        let (st, body, _) = chat(&s, user("gpt-4o-mini", "anyone there?"));
        assert_eq!((st, body["error"]["code"].as_str()), (502, Some("upstream_unreachable")), "{body}");
        s
    };
    let s = stop(down);

    let completion = |id: &str| call_event(&s.ledger, id).1;
    assert_eq!(completion(&redacted), "complete");
    assert_eq!(completion(&flagged.unwrap()), "complete");
    assert_eq!(completion(&broken.unwrap()), "upstream_broken");
    assert_eq!(completion(&aborted), "client_aborted");
    let ttft = query(&s.ledger, &format!("llm_call(I, '{}', _, _, _, _), meta(I, 'zkaudit.llm.time_to_first_token_ns', N).", slow.unwrap()));
    assert!(ttft[0]["N"].as_u64().unwrap() >= 300_000_000, "{ttft:?}");
    let states: Vec<String> = query(&s.ledger, "llm_completion(I, C).").iter().map(|a| a["C"].as_str().unwrap().to_owned()).collect();
    for c in ["rejected", "blocked", "upstream_error", "upstream_unreachable"] {
        assert!(states.iter().any(|x| x == c), "{c} missing from {states:?}");
    }
    let pii = query(&s.ledger, "llm_pii(I, W, E, N, A).");
    let found: Vec<String> = pii.iter().map(|a| format!("{}/{}/{}", a["W"].as_str().unwrap(), a["E"].as_str().unwrap(), a["A"].as_str().unwrap())).collect();
    for f in ["request/email/redact", "request/phone/flag", "request/us_ssn/block", "response/card_number/block", "response/email/redact"] {
        assert!(found.iter().any(|x| x == f), "{f} missing from {found:?}");
    }
    // No event holds the matched text.
    let log = run(Command::new(ZKAUDIT).args(["log", "verify"]).arg(&s.ledger));
    assert!(String::from_utf8_lossy(&log.stdout).starts_with("ok "));
    for leaf in 0..query(&s.ledger, "event(I, _, _, _, _, _).").len() {
        let e = run(Command::new(ZKAUDIT).args(["log", "get"]).arg(&s.ledger).args(["--index", &leaf.to_string()]));
        let text = String::from_utf8_lossy(&e.stdout);
        for secret in ["bob@example.org", "carol@example.com", "7946 0958", "123-45-6789", "4111 1111"] {
            assert!(!text.contains(secret), "leaf {leaf} holds {secret}: {text}");
        }
    }

    // The pack: the flagged phone number fails pii_handled; the rest pass.
    let out = Command::new(ZKAUDIT).arg("compliance").arg(&s.ledger).args(["--pack", "llm", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let verdict = |rule: &str| report["rules"].as_array().unwrap().iter().find(|r| r["id"] == rule).unwrap()["verdict"].as_str().unwrap().to_owned();
    assert_eq!(verdict("pii_handled"), "fail", "{report}");
    for rule in ["allowed_models", "rate_limits", "complete_records"] {
        assert_eq!(verdict(rule), "pass", "{rule}: {report}");
    }
}

/// Opens a slow, long stream, reads the response head, and hangs up;
/// returns the call's ID.
fn abort_mid_stream(s: &Setup) -> String {
    let addr = s.gateway.url.trim_start_matches("http://");
    let mut sock = TcpStream::connect(addr).unwrap();
    let words = "word ".repeat(20_000);
    let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": format!("[[slow]] {words}")}]}).to_string();
    write!(
        sock,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        s.token,
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let id = head.lines().find_map(|l| l.strip_prefix("x-zkaudit-call-id: ")).unwrap().to_owned();
    drop(sock);
    id
}

/// A call disclosed to an auditor checks against the log with only the
/// verifier key; a tampered disclosure does not; after shredding, the
/// call cannot be disclosed, and the log still verifies.
#[test]
fn disclosure_round_trip_and_shredding() {
    let s = setup(POLICY);
    let (st, _, id) = chat(&s, user("gpt-4o-mini", "a private question"));
    assert_eq!(st, 200);
    let id = id.unwrap();
    let s = stop(s);
    let vkey = std::fs::read_to_string(s.ledger.join("log.vkey")).unwrap();
    let out = run(Command::new(ZKAUDIT).args(["llm", "disclose", "--ledger"]).arg(&s.ledger).arg(&id));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["request"]["body"]["messages"][0]["content"], "a private question");
    assert_eq!(d["response"]["body"]["choices"][0]["message"]["content"], "You said: a private question");
    let file = s.ledger.parent().unwrap().join("disclosure.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let ok = run(Command::new(ZKAUDIT).args(["llm", "check-disclosure"]).arg(&file).args(["--vkey", vkey.trim(), "--json"]));
    let ok: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(ok["call_id"], id.as_str());

    // One changed word in the response, or another salt: rejected.
    let mut bad = d.clone();
    bad["response"]["body"]["choices"][0]["message"]["content"] = json!("You said: a public question");
    std::fs::write(&file, bad.to_string()).unwrap();
    let out = Command::new(ZKAUDIT).args(["llm", "check-disclosure"]).arg(&file).args(["--vkey", vkey.trim()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match the event's `output`"), "{}", String::from_utf8_lossy(&out.stderr));
    let mut bad = d.clone();
    bad["request_salt"] = json!("00".repeat(32));
    std::fs::write(&file, bad.to_string()).unwrap();
    let out = Command::new(ZKAUDIT).args(["llm", "check-disclosure"]).arg(&file).args(["--vkey", vkey.trim()]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match the event's `input`"));

    run(Command::new(ZKAUDIT).args(["llm", "shred", "--ledger"]).arg(&s.ledger).arg(&id));
    let out = Command::new(ZKAUDIT).args(["llm", "disclose", "--ledger"]).arg(&s.ledger).arg(&id).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shredded"), "{}", String::from_utf8_lossy(&out.stderr));
    let store = std::fs::read(s.ledger.join("private/llm-calls.sqlite")).unwrap();
    assert!(!store.windows(16).any(|w| w == b"private question"), "the shredded prompt is still in the store file");
    run(Command::new(ZKAUDIT).args(["log", "verify"]).arg(&s.ledger));
}

/// Over the requests-per-minute limit: 429 with Retry-After in the
/// OpenAI shape; a policy change is recorded and takes effect.
#[test]
fn rate_limits_and_policy_changes() {
    let s = setup("[models]\nallow = [\"gpt-4o-mini\"]\n[rate_limits]\nrequests_per_minute = 3\n");
    for _ in 0..3 {
        assert_eq!(chat(&s, user("gpt-4o-mini", "hi")).0, 200);
    }
    let mut r = agent()
        .post(format!("{}/v1/chat/completions", s.gateway.url))
        .header("Authorization", &format!("Bearer {}", s.token))
        .send(user("gpt-4o-mini", "hi").to_string().as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // Another token has its own budget.
    let other = token(&s.ledger);
    let (st, _, _) = post_raw(&s, "/v1/chat/completions", Some(&other), "application/json", user("gpt-4o-mini", "hi").to_string().as_bytes());
    assert_eq!(st, 200);

    std::fs::write(&s.policy, "[models]\nallow = [\"gpt-4o-mini\"]\n[rate_limits]\nrequests_per_minute = 1000\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while chat(&s, user("gpt-4o-mini", "hi")).0 == 429 {
        assert!(Instant::now() < deadline, "the new policy never took effect");
        std::thread::sleep(Duration::from_millis(250));
    }
    let s = stop(s);
    let policies = query(&s.ledger, "llm_policy(I, D, A, Rpm, Tpm).");
    assert_eq!(policies.iter().map(|p| p["Rpm"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 1000]);
    let denied = query(&s.ledger, "llm_decision(I, 'rate_limit.requests', deny), llm_call(I, _, _, _, none, 429).");
    assert!(!denied.is_empty());
    let out = Command::new(ZKAUDIT).arg("compliance").arg(&s.ledger).args(["--pack", "llm", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in report["rules"].as_array().unwrap() {
        // No PII was sent in this test: that rule has nothing to rest on.
        let expected = if r["id"] == "pii_handled" { "no_evidence" } else { "pass" };
        assert_eq!(r["verdict"], expected, "{r}");
    }
}

/// Malformed requests each get a 4xx in the OpenAI error shape, and the
/// gateway goes on serving.
#[test]
fn malformed_requests_get_openai_errors() {
    let s = setup(POLICY);
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let big = vec![b'x'; (1 << 20) + 10];
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/v1/chat/completions", "application/json", b"{".to_vec()),
        ("/v1/chat/completions", "application/json", b"not json".to_vec()),
        ("/v1/chat/completions", "application/json", b"[1,2]".to_vec()),
        ("/v1/chat/completions", "application/json", b"\"text\"".to_vec()),
        ("/v1/chat/completions", "application/json", json!({"messages": msgs}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini"}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": 5, "messages": msgs}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": "hi"}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": []}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 42}]}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": msgs, "temperature": 7}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": msgs, "temperature": "warm"}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": msgs, "stream": "yes"}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": msgs, "max_tokens": -1}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": msgs, "n": 0}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "gpt-4o-mini", "messages": msgs, "frobnicate": true}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", json!({"model": "", "messages": msgs}).to_string().into_bytes()),
        ("/v1/chat/completions", "application/json", big),
        ("/v1/completions", "application/json", json!({"model": "gpt-4o-mini"}).to_string().into_bytes()),
        ("/v1/completions", "application/json", json!({"model": "gpt-4o-mini", "prompt": []}).to_string().into_bytes()),
        ("/v1/completions", "application/json", json!({"model": "gpt-4o-mini", "prompt": "x", "echo": "no"}).to_string().into_bytes()),
        ("/v1/embeddings", "application/json", json!({"model": "text-embedding-3-small", "input": ""}).to_string().into_bytes()),
        ("/v1/embeddings", "application/json", json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"}).to_string().into_bytes()),
        ("/v1/embeddings", "application/json", json!({"model": "text-embedding-3-small", "input": "x", "dimensions": "many"}).to_string().into_bytes()),
        ("/v1/nonexistent", "application/json", b"{}".to_vec()),
    ];
    assert!(cases.len() >= 20);
    for (path, ct, body) in &cases {
        let (st, v, _) = post_raw(&s, path, Some(&s.token), ct, body);
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        assert!((400..500).contains(&st), "{path} {shown}: HTTP {st} {v}");
        let e = &v["error"];
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()) && e["type"].is_string() && e.get("param").is_some() && e.get("code").is_some(),
            "{path} {shown}: {v}"
        );
    }
    // Without a token, or with a bad one: 401.
    assert_eq!(post_raw(&s, "/v1/chat/completions", None, "application/json", b"{}").0, 401);
    assert_eq!(post_raw(&s, "/v1/chat/completions", Some("zkaudit_nope"), "application/json", b"{}").0, 401);
    // Still serving.
    assert_eq!(chat(&s, user("gpt-4o-mini", "still there?")).0, 200);
    let s = stop(s);
    // Every authenticated call is recorded, the refused ones too: all the
    // cases but the unknown endpoint, and the last good call.
    assert_eq!(query(&s.ledger, "llm_call(I, _, _, _, _, _).").len(), cases.len());
}
