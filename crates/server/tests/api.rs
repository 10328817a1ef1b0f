//! The proof server's HTTP API, driven in process: each test opens an
//! [`AppState`] over a fresh ledger and SQLite job store and sends requests
//! straight to [`zkaudit_server::router`] with `tower::ServiceExt::oneshot`,
//! with no process, socket or worker (`workers: 0`, so nothing is proven).
//!
//! Covered here: bad requests get a JSON error naming the field at fault
//! and change nothing; appends with an `Idempotency-Key` are replayed, not
//! repeated, per tenant; appends are indexed as they are acknowledged.
//! The tests that need the real `zkaudit serve` process (workers, restarts,
//! PostgreSQL, real proofs) are in `crates/cli/tests/server.rs`.

#[path = "../../../tests-support/jobs.rs"]
mod jobs;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;
use zkaudit_jobs::Scope;
use zkaudit_server::{AppState, Config};

use jobs::{income_input, plan_job};

/// A router over a fresh ledger, with the secrets of the tokens asked for.
/// Fields drop in order: the router (and the state it holds) before the
/// directory.
struct Api {
    app: Router,
    dir: PathBuf,
    secrets: Vec<String>,
    /// The index follower `zkaudit_server::start` runs beside the router.
    _indexer: zkaudit_app::ledger::IndexFollower,
    _tmp: tempfile::TempDir,
}

/// Makes a ledger and job store, creates `tokens` (scope, tenant), and
/// opens the API's state, all on the blocking pool (it blocks).
async fn api(max_body_bytes: usize, tokens: &'static [(Scope, &'static str)]) -> Api {
    let (tmp, dir, state, secrets, indexer) = tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        zkaudit_tlog::init(&dir, "test.example/server").unwrap();
        let db = dir.join("jobs.sqlite").display().to_string();
        let store = zkaudit_jobs::Store::open(&db).unwrap();
        let secrets: Vec<String> = tokens.iter().map(|(scope, tenant)| store.create_token(*scope, tenant).unwrap().1).collect();
        drop(store);
        let state: Arc<AppState> = AppState::open(Config {
            dir: dir.clone(),
            addr: "127.0.0.1:0".parse().unwrap(),
            db,
            workers: 0,
            queue_capacity: 100,
            max_body_bytes,
            job_timeout_s: 600,
            max_attempts: 3,
            job_ttl: None,
            receipt_ttl: None,
            anonymous_read: false,
            exe: std::env::current_exe().unwrap(),
            segment_po2: None,
            registry: zkaudit_zkvm::Registry::embedded(),
            blossom_max_bytes: zkaudit_store::DEFAULT_MAX_BLOB_BYTES,
            proof_store: None,
            market: None,
        })
        .unwrap();
        let indexer = state.follow_index().unwrap();
        (tmp, dir, state, secrets, indexer)
    })
    .await
    .unwrap();
    Api { app: zkaudit_server::router(state), dir, secrets, _indexer: indexer, _tmp: tmp }
}

/// An answer: status, headers, the body as JSON (or as a JSON string when
/// it is not JSON), and the body's bytes.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
    bytes: Vec<u8>,
}

/// A request to `uri`, with `Authorization: Bearer <token>` if given.
fn request(method: &str, uri: &str, token: Option<&str>) -> axum::http::request::Builder {
    let b = Request::builder().method(method).uri(uri);
    match token {
        Some(t) => b.header(header::AUTHORIZATION, format!("Bearer {t}")),
        None => b,
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let r = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply { status: parts.status.as_u16(), headers: parts.headers, body, bytes }
}

async fn get(app: &Router, uri: &str, token: Option<&str>) -> Reply {
    send(app, request("GET", uri, token).body(Body::empty()).unwrap()).await
}

/// `POST /v1/log/entries` with a JSON array of events, and an
/// `Idempotency-Key` if given.
async fn append(app: &Router, token: &str, key: Option<HeaderValue>, events: &Value) -> Reply {
    let mut b = request("POST", "/v1/log/entries", Some(token)).header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    send(app, b.body(Body::from(events.to_string())).unwrap()).await
}

/// The checkpoint as the API reports it: `(tree_size, root_hash)`.
async fn checkpoint(app: &Router, token: &str) -> (u64, String) {
    let r = get(app, "/v1/log/checkpoint", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (r.body["tree_size"].as_u64().unwrap(), r.body["root_hash"].as_str().unwrap().to_owned())
}

/// Checks that the ledger's index (`DIR/index.sqlite`) reaches the
/// checkpoint, its position the checkpoint's tree size and root: the
/// server's index follower brings it there after the appends (it does not
/// hold them up), so this waits for it, up to 30 s.
async fn assert_indexed(api: &Api, token: &str) {
    let (size, root) = checkpoint(&api.app, token).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let path = api.dir.join("index.sqlite");
        let position = tokio::task::spawn_blocking(move || zkaudit_index::open(path.to_str().unwrap()).unwrap().position().unwrap()).await.unwrap();
        if let Some(p) = position.filter(|p| p.tree_size == size) {
            assert_eq!(hex::encode(p.root_hash), root);
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the index lags the log: {position:?}, log size {size}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A valid event; `n` makes its digests, so different `n` are different
/// entries.
fn event(n: u64) -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:00Z",
        "layer": "application",
        "type": "t",
        "input": format!("sha256:{n:064x}"),
        "output": format!("sha256:{:064x}", n + 1_000_000),
        "metadata": {},
    })
}

fn events(ns: std::ops::Range<u64>) -> Value {
    Value::Array(ns.map(event).collect())
}

fn key(k: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(k).unwrap())
}

/// Asserts that `r` is the JSON error `{error, status, field}` of `status`,
/// naming `field` if given.
fn assert_error(r: &Reply, status: u16, field: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert!(r.body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: not a JSON error: {:?}", r.body);
    assert_eq!(r.body["status"], status, "{what}: {}", r.body);
    if let Some(f) = field {
        assert_eq!(r.body["field"], f, "{what}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_naming_the_field() {
    let api = api(100_000, &[(Scope::Submit, "alice"), (Scope::Read, "alice")]).await;
    let (t, reader) = (api.secrets[0].as_str(), api.secrets[1].as_str());
    let good_plan = plan_job("execute-only");
    let mut unknown_step = good_plan.clone();
    unknown_step["plan"] = json!(good_plan["plan"].as_str().unwrap().replace("type: filter", "type: teleport"));
    let mut bad_csv = good_plan.clone();
    bad_csv["data"]["payments"]["csv"] = json!("date,amount,kind\n2026-01-15,12.345,salary\n");
    let mut wrong_input = good_plan.clone();
    wrong_input["data"] = json!({"prices": {"csv": "a\n1\n"}});
    let mut two_kinds = good_plan.clone();
    two_kinds["data"]["payments"]["jsonl"] = json!("{}");
    let mut income_bad_amount = income_input("execute-only");
    income_bad_amount["payment_history"][2]["amount"] = json!("lots");
    let mut income_bad_commit = income_input("execute-only");
    income_bad_commit["history_commitment"] = json!(format!("0x{}", "00".repeat(32)));
    let mut income_bad_threshold = income_input("execute-only");
    income_bad_threshold["threshold"] = json!("1.234");
    let big = vec![b'x'; 200_000];
    let bad_token = "zkaudit_0000000000000000000000000000000000000000000000000000000000000000";
    let j = "application/json";
    /// Method, URI, token, content type, body, expected status and field.
    type Case<'a> = (&'a str, String, Option<&'a str>, &'a str, Vec<u8>, u16, Option<&'a str>);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("POST", "/v1/jobs".into(), Some(t), j, b"{not json".to_vec(), 400, Some("body")),
        ("POST", "/v1/jobs".into(), Some(t), j, b"[]".to_vec(), 400, Some("body")),
        ("POST", "/v1/jobs".into(), Some(t), j, br#"{"plan": 5}"#.to_vec(), 400, Some("plan")),
        ("POST", "/v1/jobs".into(), Some(t), j, br#"{"colour": "red"}"#.to_vec(), 400, Some("colour")),
        ("POST", "/v1/jobs".into(), Some(t), j, br#"{"data": {}}"#.to_vec(), 400, Some("plan")),
        ("POST", "/v1/jobs".into(), Some(t), j, unknown_step.to_string().into_bytes(), 422, Some("plan")),
        ("POST", "/v1/jobs".into(), Some(t), j, bad_csv.to_string().into_bytes(), 422, Some("data.payments")),
        ("POST", "/v1/jobs".into(), Some(t), j, wrong_input.to_string().into_bytes(), 422, Some("data")),
        ("POST", "/v1/jobs".into(), Some(t), j, two_kinds.to_string().into_bytes(), 400, Some("data.payments")),
        ("POST", "/v1/jobs".into(), Some(t), j, br#"{"plan": "x: 1", "mode": "fast"}"#.to_vec(), 400, Some("mode")),
        ("POST", "/v1/jobs".into(), Some(t), j, br#"{"builtin": "mine-bitcoin", "input": {}}"#.to_vec(), 400, Some("builtin")),
        ("POST", "/v1/jobs".into(), Some(t), j, big.clone(), 413, None),
        ("POST", "/v1/jobs".into(), None, j, good_plan.to_string().into_bytes(), 401, None),
        ("POST", "/v1/jobs".into(), Some(bad_token), j, good_plan.to_string().into_bytes(), 401, Some("Authorization")),
        ("POST", "/v1/jobs".into(), Some(reader), j, good_plan.to_string().into_bytes(), 403, None),
        ("POST", "/v1/prove/income-threshold".into(), Some(t), j, income_bad_amount.to_string().into_bytes(), 422, Some("payment_history[2].amount")),
        ("POST", "/v1/prove/income-threshold".into(), Some(t), j, income_bad_commit.to_string().into_bytes(), 422, Some("history_commitment")),
        ("POST", "/v1/prove/income-threshold".into(), Some(t), j, income_bad_threshold.to_string().into_bytes(), 422, Some("threshold")),
        ("POST", "/v1/prove/income-threshold".into(), Some(t), j, br#"{"threshold": 1}"#.to_vec(), 400, Some("body")),
        ("GET", "/v1/jobs/not-a-job".into(), Some(t), j, vec![], 400, Some("id")),
        ("GET", format!("/v1/jobs/{}", "0".repeat(32)), Some(t), j, vec![], 404, None),
        ("DELETE", format!("/v1/jobs/{}", "0".repeat(32)), Some(t), j, vec![], 404, None),
        ("GET", "/v1/jobs?state=sleeping".into(), Some(t), j, vec![], 400, Some("state")),
        ("GET", "/v1/jobs?limit=0".into(), Some(t), j, vec![], 400, Some("limit")),
        ("GET", "/v1/receipts/xyz".into(), Some(t), j, vec![], 400, Some("id")),
        ("POST", "/v1/verify".into(), Some(t), j, br#"{"receipt": "%%%"}"#.to_vec(), 400, Some("receipt")),
        ("POST", "/v1/verify".into(), Some(t), j, br#"{}"#.to_vec(), 400, Some("receipt")),
        ("POST", "/v1/verify/batch".into(), Some(t), j, br#"{"receipts": []}"#.to_vec(), 400, Some("receipts")),
        ("POST", "/v1/log/entries".into(), Some(t), j, br#"[{"version": "1.0"}]"#.to_vec(), 400, Some("[0].timestamp")),
        ("POST", "/v1/log/entries".into(), Some(t), "application/x-ndjson", b"{\"x\":1}\n".to_vec(), 400, None),
        ("POST", "/v1/log/entries".into(), Some(t), j, b"[]".to_vec(), 400, Some("body")),
        ("GET", "/v1/log/proof/inclusion?index=5".into(), Some(t), j, vec![], 400, None),
        ("GET", "/v1/log/proof/inclusion?index=minus".into(), Some(t), j, vec![], 400, None),
        ("GET", "/tile/../private/log.key".into(), Some(t), j, vec![], 404, None),
        ("GET", "/v1/nothing-here".into(), Some(t), j, vec![], 404, None),
        ("PUT", "/v1/health".into(), None, j, vec![], 405, None),
    ];
    assert_eq!(cases.len(), 36);
    for (method, uri, tok, ct, body, status, field) in cases {
        let mut b = request(method, &uri, tok);
        if method == "POST" {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let r = send(&api.app, b.body(Body::from(body)).unwrap()).await;
        assert_error(&r, status, field, &format!("{method} {uri}"));
    }
    // Nothing was queued or appended, and the router still serves.
    let health = get(&api.app, "/v1/health", None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["queue_length"], 0, "{}", health.body);
    assert_eq!(checkpoint(&api.app, t).await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_append_is_replayed_not_repeated() {
    let api = api(1 << 20, &[(Scope::Submit, "alice")]).await;
    let (app, t) = (&api.app, api.secrets[0].as_str());
    let batch = events(0..2);

    // The first request with key K appends, and says so as `log append --json` does.
    let first = append(app, t, key("K"), &batch).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let (size, root) = checkpoint(app, t).await;
    assert_eq!(size, 2);
    assert_eq!(first.body, json!({"first_index": 0, "count": 2, "tree_size": 2, "root_hash": root}));
    assert!(first.headers.get("idempotent-replayed").is_none(), "a first append is not a replay");
    assert_indexed(&api, t).await;

    // The same request again: the first answer, byte for byte, and nothing appended.
    let retry = append(app, t, key("K"), &batch).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.bytes, first.bytes);
    assert_eq!(retry.headers.get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    assert_eq!(checkpoint(app, t).await, (2, root.clone()));

    // The same key with another body: 409 naming the header, nothing appended.
    let other = append(app, t, key("K"), &events(2..3)).await;
    assert_error(&other, 409, Some("Idempotency-Key"), "key K with another body");
    assert_eq!(checkpoint(app, t).await, (2, root.clone()));
    // ... and the key still answers its own request.
    let again = append(app, t, key("K"), &batch).await;
    assert_eq!((again.status, &again.bytes), (200, &first.bytes), "{}", again.body);

    // Another key appends, even the same events.
    let second = append(app, t, key("K2"), &batch).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.headers.get("idempotent-replayed").is_none());
    let (size, root2) = checkpoint(app, t).await;
    assert_eq!(size, 4);
    assert_ne!(root2, root);
    assert_eq!(second.body, json!({"first_index": 2, "count": 2, "tree_size": 4, "root_hash": root2}));
    assert_indexed(&api, t).await;

    // Without a key, nothing is deduplicated: each request appends.
    for n in [6, 8] {
        let r = append(app, t, None, &batch).await;
        assert_eq!((r.status, r.body["tree_size"].as_u64()), (200, Some(n)), "{}", r.body);
        assert!(r.headers.get("idempotent-replayed").is_none());
    }
    assert_indexed(&api, t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_1_to_255_printable_characters() {
    let api = api(1 << 20, &[(Scope::Submit, "alice")]).await;
    let (app, t) = (&api.app, api.secrets[0].as_str());
    let batch = events(0..1);
    for (what, k) in [
        ("empty", HeaderValue::from_static("")),
        ("256 characters", HeaderValue::from_str(&"k".repeat(256)).unwrap()),
        ("a tab", HeaderValue::from_static("a\tb")),
        ("not ASCII", HeaderValue::from_bytes("clé".as_bytes()).unwrap()),
    ] {
        let r = append(app, t, Some(k), &batch).await;
        assert_error(&r, 400, Some("Idempotency-Key"), what);
    }
    assert_eq!(checkpoint(app, t).await.0, 0, "a rejected key appended");

    // 255 characters, printable ASCII with spaces, is a key.
    let long = format!("a b~{}", "k".repeat(251));
    assert_eq!(long.len(), 255);
    let r = append(app, t, key(&long), &batch).await;
    assert_eq!((r.status, r.body["tree_size"].as_u64()), (200, Some(1)), "{}", r.body);
    let retry = append(app, t, key(&long), &batch).await;
    assert_eq!((retry.status, &retry.bytes), (200, &r.bytes), "{}", retry.body);
    assert!(retry.headers.get("idempotent-replayed").is_some());
    assert_eq!(checkpoint(app, t).await.0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_per_tenant() {
    let api = api(1 << 20, &[(Scope::Submit, "alice"), (Scope::Submit, "bob")]).await;
    let (app, alice, bob) = (&api.app, api.secrets[0].as_str(), api.secrets[1].as_str());
    let batch = events(0..3);
    let a = append(app, alice, key("K"), &batch).await;
    assert_eq!((a.status, a.body["first_index"].as_u64()), (200, Some(0)), "{}", a.body);

    // Bob's K is not Alice's: the same request appends again.
    let b = append(app, bob, key("K"), &batch).await;
    assert_eq!(b.status, 200, "{}", b.body);
    assert!(b.headers.get("idempotent-replayed").is_none(), "bob got alice's answer: {}", b.body);
    assert_eq!((b.body["first_index"].as_u64(), b.body["tree_size"].as_u64()), (Some(3), Some(6)), "{}", b.body);
    assert_eq!(checkpoint(app, alice).await.0, 6);
    assert_indexed(&api, alice).await;

    // Each tenant's retry gets its own first answer.
    let a2 = append(app, alice, key("K"), &batch).await;
    assert_eq!((a2.status, &a2.bytes), (200, &a.bytes), "{}", a2.body);
    let b2 = append(app, bob, key("K"), &batch).await;
    assert_eq!((b2.status, &b2.bytes), (200, &b.bytes), "{}", b2.body);
    assert!(a2.headers.get("idempotent-replayed").is_some() && b2.headers.get("idempotent-replayed").is_some());
    // And a conflict on Bob's K is Bob's alone.
    assert_error(&append(app, bob, key("K"), &events(9..10)).await, 409, Some("Idempotency-Key"), "bob's K with another body");
    assert_eq!(checkpoint(app, alice).await.0, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_indexed_after_they_are_acknowledged() {
    let api = api(1 << 20, &[(Scope::Submit, "alice")]).await;
    let (app, t) = (&api.app, api.secrets[0].as_str());
    let a = append(app, t, None, &events(0..5)).await;
    assert_eq!((a.status, a.body["tree_size"].as_u64()), (200, Some(5)), "{}", a.body);
    assert_indexed(&api, t).await;
    // JSON Lines too.
    let lines: String = (5..12).map(|n| format!("{}\n", event(n))).collect();
    let req = request("POST", "/v1/log/entries", Some(t)).header(header::CONTENT_TYPE, "application/x-ndjson").body(Body::from(lines)).unwrap();
    let b = send(app, req).await;
    assert_eq!((b.status, b.body["first_index"].as_u64(), b.body["tree_size"].as_u64()), (200, Some(5), Some(12)), "{}", b.body);
    assert_indexed(&api, t).await;
}
