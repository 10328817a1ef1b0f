//! The Blossom server on loopback, driven by this crate's client and by
//! raw HTTP requests: uploads, fetches, the preflight, lists and deletes,
//! and malformed or unauthorized requests, each refused with its reason in
//! `X-Reason` while the server keeps serving.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
use zkaudit_store::blossom::{auth_event, auth_header, Client, Verb};
use zkaudit_store::server::{router, BlobServer, Config};
use zkaudit_store::{sha256_hex, BlobRef, Error, ProofStore, Remote};

const MAX: u64 = 64 * 1024;

fn start(dir: &std::path::Path) -> String {
    let server = BlobServer::open(Config { dir: dir.to_owned(), max_blob_bytes: MAX, mount: "/blossom".into(), public_url: None }).unwrap();
    let app: axum::Router = axum::Router::new().nest("/blossom", router(Arc::clone(&server)));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    format!("http://{}/blossom", rx.recv().unwrap())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Status and `X-Reason` of a raw request.
fn raw(method: &str, url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = agent().run(req.body(body.to_vec()).unwrap()).unwrap();
    (r.status().as_u16(), r.headers().get("x-reason").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default())
}

fn header_of(e: &nostr::Event) -> String {
    format!("Nostr {}", base64::engine::general_purpose::STANDARD.encode(e.as_json()))
}

#[test]
fn upload_fetch_list_delete_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let base = start(&tmp.path().join("blobs"));
    let keys = Keys::generate();
    let client = Client::new(&base, Some(keys.clone()), Duration::from_secs(10));
    let blob = b"receipt bytes, as a prover would upload them".repeat(50);
    let sha = sha256_hex(&blob);

    // Upload (preflight + PUT), fetch, HEAD, list.
    let d = client.upload(&blob, "application/octet-stream").unwrap();
    assert_eq!((d.sha256.as_str(), d.size), (sha.as_str(), blob.len() as u64));
    assert_eq!(d.url, format!("{base}/{sha}"));
    assert_eq!(client.get(&sha, MAX).unwrap(), blob);
    assert!(client.has(&sha).unwrap());
    assert_eq!(raw("GET", &format!("{base}/{sha}.bin"), &[], b"").0, 200, "an extension is allowed (BUD-01)");
    let listed = client.list(&keys.public_key().to_hex()).unwrap();
    assert_eq!(listed, vec![d.clone()]);
    assert!(client.list(&Keys::generate().public_key().to_hex()).unwrap().is_empty());

    // Through the proof store: a fresh cache fetches by URL, checks, caches.
    let store = ProofStore {
        remotes: vec![Remote::Blossom(Client::new(&base, Some(keys.clone()), Duration::from_secs(10)))],
        cache: zkaudit_store::cache::Cache::open(&tmp.path().join("cache"), 1 << 20).unwrap(),
        max_blob_bytes: MAX,
        timeout: Duration::from_secs(10),
    };
    let r = BlobRef::parse(&d.url, None).unwrap();
    assert_eq!(store.get(&r).unwrap(), blob);
    assert_eq!(store.cache.list().unwrap().len(), 1);

    let now = Timestamp::now().as_secs();
    let upload_auth = |verb: Verb, x: Option<&str>, created: u64, exp: u64| {
        header_of(&auth_event(&keys, verb, x, Timestamp::from_secs(created), Timestamp::from_secs(exp)).unwrap())
    };
    let other = b"another blob".to_vec();
    let osha = sha256_hex(&other);
    let put = |headers: &[(&str, String)], body: &[u8]| raw("PUT", &format!("{base}/upload"), headers, body);
    let a = |h: String| ("Authorization", h);

    // Each malformed or unauthorized request: status and a reason.
    let wrong_kind = EventBuilder::new(Kind::TextNote, "x").tags([Tag::expiration(Timestamp::from_secs(now + 60))]).sign_with_keys(&keys).unwrap();
    let mut bad_sig: serde_json::Value =
        serde_json::from_str(&auth_event(&keys, Verb::Upload, Some(&osha), Timestamp::from_secs(now), Timestamp::from_secs(now + 60)).unwrap().as_json())
            .unwrap();
    bad_sig["sig"] = serde_json::Value::String("00".repeat(64));
    let no_exp = EventBuilder::new(Kind::Custom(24242), "x")
        .tags([Tag::parse(["t", "upload"]).unwrap(), Tag::parse(["x", &osha]).unwrap()])
        .sign_with_keys(&keys)
        .unwrap();
    let cases: Vec<((u16, String), u16, &str)> = vec![
        (put(&[], &other), 401, "missing Authorization"),
        (put(&[a("Bearer abc".into())], &other), 401, "expected `Nostr <base64 event>`"),
        (put(&[a("Nostr %%%".into())], &other), 401, "base64"),
        (put(&[a(format!("Nostr {}", base64::engine::general_purpose::STANDARD.encode("{}")))], &other), 401, "event JSON"),
        (put(&[a(format!("Nostr {}", base64::engine::general_purpose::STANDARD.encode(bad_sig.to_string())))], &other), 401, "signature"),
        (put(&[a(header_of(&wrong_kind))], &other), 401, "kind 1, not 24242"),
        (put(&[a(header_of(&no_exp))], &other), 401, "no `expiration` tag"),
        (put(&[a(upload_auth(Verb::Upload, Some(&osha), now - 120, now - 60))], &other), 401, "expired"),
        (put(&[a(upload_auth(Verb::Upload, Some(&osha), now + 3600, now + 7200))], &other), 401, "future"),
        (put(&[a(upload_auth(Verb::Delete, Some(&osha), now, now + 60))], &other), 401, "for `delete`, not `upload`"),
        (put(&[a(upload_auth(Verb::Upload, Some(&sha), now, now + 60))], &other), 401, "do not name blob"),
        (put(&[a(upload_auth(Verb::Upload, Some(&osha), now, now + 60)), ("X-SHA-256", sha.clone())], &other), 409, "not the X-SHA-256"),
        (put(&[a(upload_auth(Verb::Upload, None, now, now + 60))], b""), 400, "empty body"),
        (put(&[a(upload_auth(Verb::Upload, None, now, now + 60))], &vec![7u8; MAX as usize + 1]), 413, "over this server's limit"),
        (raw("HEAD", &format!("{base}/upload"), &[("X-Content-Length", "5".into())], b""), 400, ""),
        (raw("HEAD", &format!("{base}/upload"), &[("X-SHA-256", osha.clone())], b""), 411, ""),
        (raw("HEAD", &format!("{base}/upload"), &[("X-SHA-256", osha.clone()), ("X-Content-Length", (MAX + 1).to_string())], b""), 413, ""),
        (raw("HEAD", &format!("{base}/upload"), &[("X-SHA-256", "abc".into()), ("X-Content-Length", "5".into())], b""), 400, ""),
        (raw("GET", &format!("{base}/not-a-hash"), &[], b""), 400, "not a SHA-256"),
        (raw("GET", &format!("{base}/{osha}"), &[], b""), 404, "not on this server"),
        (raw("GET", &format!("{base}/list/xyz"), &[], b""), 400, "not a public key"),
        (raw("DELETE", &format!("{base}/{sha}"), &[], b""), 401, "missing Authorization"),
        (
            raw(
                "DELETE",
                &format!("{base}/{sha}"),
                &[a(header_of(&auth_event(&Keys::generate(), Verb::Delete, Some(&sha), Timestamp::from_secs(now), Timestamp::from_secs(now + 60)).unwrap()))],
                b"",
            ),
            403,
            "did not upload",
        ),
    ];
    for (i, ((status, reason), want_status, want_reason)) in cases.into_iter().enumerate() {
        assert_eq!(status, want_status, "case {i}: {reason}");
        // HEAD answers have no body; their reason is still in X-Reason.
        assert!(!reason.is_empty() && reason.contains(want_reason), "case {i}: X-Reason {reason:?} should contain {want_reason:?}");
    }

    // Still serving: the preflight passes, a good upload lands, the owner deletes.
    let ok = raw(
        "HEAD",
        &format!("{base}/upload"),
        &[("X-SHA-256", osha.clone()), ("X-Content-Length", other.len().to_string()), a(auth_header(&keys, Verb::Upload, Some(&osha)).unwrap())],
        b"",
    );
    assert_eq!(ok.0, 200, "{}", ok.1);
    client.upload(&other, "text/plain").unwrap();
    client.delete(&sha).unwrap();
    assert!(!client.has(&sha).unwrap());
    assert!(matches!(client.get(&sha, MAX), Err(Error::Status { status: 404, .. })));

    // A blob changed on the server's disk is refused by the client's digest check.
    std::fs::write(tmp.path().join("blobs").join(&osha), b"another blob, changed").unwrap();
    assert!(matches!(client.get(&osha, MAX), Err(Error::Digest { .. })));

    // A store that is down is a clear error within the timeout, not a hang.
    let down = Client::new("http://127.0.0.1:9/blossom", None, Duration::from_secs(2));
    assert!(matches!(down.get(&sha, MAX), Err(Error::Unreachable { .. })));
}
