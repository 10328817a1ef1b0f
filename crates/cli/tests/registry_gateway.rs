//! `zkaudit registry-gateway` end to end, as real processes on loopback.
//!
//! The first test drives the real `npm` and `pip` clients through the
//! gateway against the real npm and PyPI registries (found the way those
//! clients find them: `npm config get registry`, pip's default), and the
//! real `cargo` against a local sparse registry that the test builds from a
//! `.crate` made by `cargo package` (cargo's own crates.io index URL is
//! built into cargo and cannot be discovered from its configuration; the
//! gateway discovers this one from a `[source]` replacement in
//! `$CARGO_HOME/config.toml`). The second test uses a test upstream
//! written here that serves npm packuments and tarballs and can flip a
//! byte, fail with 500, cut a body short, or not be there at all. The
//! third serves real published artifacts with their real provenance (the
//! registries reachable from here do not pass provenance through) and a
//! forged copy of it.

#[path = "../../../tests-support/cli.rs"]
mod cli;
#[path = "../../../tests-support/daemon.rs"]
mod daemon;
#[path = "../../../tests-support/sigstore_data.rs"]
mod sigstore_data;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use cli::{ledger, query, run, ZKAUDIT};
use daemon::Daemon;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

/// six 1.16.0's wheel, as PyPI publishes its SHA-256 (pip checks it with
/// --require-hashes, independently of the gateway).
const SIX_WHEEL: &str = "six-1.16.0-py2.py3-none-any.whl";
const SIX_SHA256: &str = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn sri512(b: &[u8]) -> String {
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(b)))
}

/// One GET (or other method) over a fresh connection, sending `target`
/// byte for byte (no client-side normalisation): (status, body).
fn raw(addr: &str, method: &str, target: &str, extra_headers: &str) -> (u16, Vec<u8>) {
    let hostport = addr.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "{method} {target} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n{extra_headers}\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body_at = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(buf.len(), |p| p + 4);
    (status, buf[body_at..].to_vec())
}

fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    raw(addr, "GET", path, "")
}

/// The metadata of every `download` event for `purl` (as the auditor sees them).
fn downloads(ledger: &Path, purl: &str) -> Vec<Value> {
    query(ledger, &format!("downloaded(I, '{purl}', D, Dec), download_integrity(I, M)."))
}

fn token(ledger: &Path, scope: &str) -> String {
    let out = run(Command::new(ZKAUDIT).args(["token", "create"]).arg(ledger).args(["--scope", scope, "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// A minimal HTTP/1.1 upstream: exact paths to canned answers, each of
/// which may be cut short (a `Content-Length` larger than what is sent).
#[derive(Clone)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    cut: bool,
}

struct Upstream {
    url: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let r = Arc::clone(&routes);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                let routes = Arc::clone(&r);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        let reply = routes.lock().unwrap().get(&path).cloned().unwrap_or(Reply { status: 404, body: b"not found".to_vec(), cut: false });
                        let len = if reply.cut { reply.body.len() * 2 } else { reply.body.len() };
                        // Project pages (a path ending in `/`) are PEP 691 JSON.
                        let ctype = if path.ends_with('/') { "application/vnd.pypi.simple.v1+json" } else { "application/json" };
                        let head = format!("HTTP/1.1 {} X\r\nContent-Length: {len}\r\nContent-Type: {ctype}\r\n\r\n", reply.status);
                        let _ = conn.write_all(head.as_bytes());
                        let _ = conn.write_all(&reply.body);
                        if reply.cut {
                            return;
                        }
                    }
                });
            }
        });
        Upstream { url, routes }
    }

    fn set(&self, path: &str, status: u16, body: Vec<u8>, cut: bool) {
        self.routes.lock().unwrap().insert(path.to_owned(), Reply { status, body, cut });
    }

    /// Serves npm package `name` 1.0.0 with `tarball` declared, and what
    /// the tarball URL actually answers.
    fn npm(&self, name: &str, declared: &[u8], served: Reply, scripts: Value) {
        self.npm_version(name, "1.0.0", declared, served, scripts, None);
    }

    /// [`Upstream::npm`] at `version`, with npm's attestations document
    /// (`{"attestations": [...]}`) at the version's `dist.attestations.url`.
    fn npm_version(&self, name: &str, version: &str, declared: &[u8], served: Reply, scripts: Value, attestations: Option<Value>) {
        let file = format!("{name}-{version}.tgz");
        let mut dist = json!({"tarball": format!("{}/npm/{name}/-/{file}", self.url), "integrity": sri512(declared)});
        if let Some(doc) = attestations {
            let path = format!("/attestations/{name}@{version}");
            dist["attestations"] = json!({"url": format!("{}{path}", self.url), "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}});
            self.set(&path, 200, doc.to_string().into_bytes(), false);
        }
        let doc = json!({"name": name, "dist-tags": {"latest": version},
            "versions": {version: {"name": name, "version": version, "scripts": scripts, "dist": dist}},
            "time": {version: "2020-01-01T00:00:00.000Z"}});
        self.set(&format!("/npm/{name}"), 200, doc.to_string().into_bytes(), false);
        self.routes.lock().unwrap().insert(format!("/npm/{name}/-/{file}"), served);
    }

    /// Serves PyPI project `project` with one file (PEP 691 JSON), its
    /// SHA-256 declared and, if given, its PEP 740 provenance object.
    fn pypi(&self, project: &str, file: &str, body: Vec<u8>, provenance: Option<Value>) {
        let mut entry = json!({"filename": file, "url": format!("{}/pypi/files/{file}", self.url),
            "hashes": {"sha256": sha256_hex(&body)}, "upload-time": "2024-01-01T00:00:00.000000Z"});
        if let Some(doc) = provenance {
            let path = format!("/integrity/{project}/{file}/provenance");
            entry["provenance"] = json!(format!("{}{path}", self.url));
            self.set(&path, 200, doc.to_string().into_bytes(), false);
        }
        let page = json!({"meta": {"api-version": "1.1"}, "name": project, "files": [entry]});
        self.set(&format!("/pypi/{project}/"), 200, page.to_string().into_bytes(), false);
        self.set(&format!("/pypi/files/{file}"), 200, body, false);
    }
}

/// A real npm tarball (`package/package.json`, `package/index.js`) made with tar.
fn npm_tarball(dir: &Path, name: &str) -> Vec<u8> {
    let pkg = dir.join(format!("src-{name}")).join("package");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("package.json"), json!({"name": name, "version": "1.0.0"}).to_string()).unwrap();
    std::fs::write(pkg.join("index.js"), format!("module.exports = '{name}';\n")).unwrap();
    let out = dir.join(format!("{name}.tgz"));
    run(Command::new("tar").arg("czf").arg(&out).arg("-C").arg(pkg.parent().unwrap()).arg("package"));
    std::fs::read(out).unwrap()
}

/// A `.crate` made by `cargo package` from a one-function crate.
fn tiny_crate(dir: &Path) -> Vec<u8> {
    let src = dir.join("tinycrate");
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::write(
        src.join("Cargo.toml"),
        "[package]\nname = \"tinycrate\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"a test crate\"\n",
    )
    .unwrap();
    std::fs::write(src.join("src/lib.rs"), "pub fn seven() -> u8 { 7 }\n").unwrap();
    run(Command::new("cargo")
        .args(["package", "--no-verify", "--allow-dirty", "--offline"])
        .current_dir(&src)
        .env("CARGO_HOME", dir.join("pkg-home"))
        .env("CARGO_TARGET_DIR", src.join("target")));
    std::fs::read(src.join("target/package/tinycrate-0.1.0.crate")).unwrap()
}

fn cargo_home(dir: &Path, sparse: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("[source.crates-io]\nreplace-with = \"mirror\"\n[source.mirror]\nregistry = \"sparse+{sparse}\"\n[net]\nretry = 0\n"),
    )
    .unwrap();
    dir.to_path_buf()
}

/// `zkaudit registry-gateway` on any free port, recording into `ledger`
/// under `policy`.
fn gateway(ledger: &Path, policy: &Path) -> Command {
    let mut c = Command::new(ZKAUDIT);
    c.args(["registry-gateway", "--listen", "127.0.0.1:0", "--ledger"]).arg(ledger).arg("--policy").arg(policy);
    c
}

fn python() -> String {
    std::env::var("ZKAUDIT_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn real_clients_install_through_the_gateway_each_artifact_recorded_once() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ledger = ledger(t);

    // The local sparse registry, discovered by the gateway from its CARGO_HOME.
    let up = Upstream::start();
    let krate = tiny_crate(t);
    let cksum = sha256_hex(&krate);
    up.set("/cargo-index/config.json", 200, json!({"dl": format!("{}/cargo-dl", up.url)}).to_string().into_bytes(), false);
    let line = json!({"name": "tinycrate", "vers": "0.1.0", "deps": [], "cksum": cksum, "features": {}, "yanked": false});
    up.set("/cargo-index/ti/ny/tinycrate", 200, format!("{line}\n").into_bytes(), false);
    up.set("/cargo-dl/tinycrate/0.1.0/download", 200, krate.clone(), false);
    let gw_home = cargo_home(&t.join("gw-cargo-home"), &format!("{}/cargo-index/", up.url));

    let policy = t.join("policy.toml");
    std::fs::write(&policy, "[deny]\npackages = [\"pkg:npm/ms@2.1.2\"]\n").unwrap();
    let gw = Daemon::start(gateway(&ledger, &policy).env("CARGO_HOME", &gw_home).env_remove("PIP_INDEX_URL"));

    // npm: two small packages with no dependencies.
    let proj = t.join("npm-proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("package.json"), r#"{"name":"p","version":"1.0.0","private":true}"#).unwrap();
    let npm = |args: &[&str]| {
        output(
            Command::new("npm")
                .args(args)
                .args(["--registry", &format!("{}/npm/", gw.url), "--no-audit", "--no-fund", "--cache"])
                .arg(t.join("npm-cache"))
                .arg("--userconfig")
                .arg(t.join("npmrc"))
                .current_dir(&proj),
        )
    };
    let out = npm(&["install", "is-number@7.0.0", "ms@2.1.3"]);
    assert!(out.status.success(), "npm install: {}", String::from_utf8_lossy(&out.stderr));
    let lock: Value = serde_json::from_slice(&std::fs::read(proj.join("package-lock.json")).unwrap()).unwrap();
    for (name, purl) in [("is-number", "pkg:npm/is-number@7.0.0"), ("ms", "pkg:npm/ms@2.1.3")] {
        let d = downloads(&ledger, purl);
        assert_eq!(d.len(), 1, "{purl}: {d:?}");
        assert_eq!(d[0]["Dec"], "allow");
        assert_eq!(d[0]["M"], "true");
        let i = d[0]["I"].as_u64().unwrap();
        let integrity = query(&ledger, &format!("meta({i}, 'zkaudit.download.integrity', X)."));
        assert_eq!(integrity[0]["X"], lock["packages"][format!("node_modules/{name}")]["integrity"], "{purl}");
        assert!(proj.join("node_modules").join(name).join("package.json").exists());
    }

    // pip: the wheel's SHA-256 is checked by pip itself (--require-hashes).
    std::fs::write(t.join("req.txt"), format!("six==1.16.0 --hash=sha256:{SIX_SHA256}\n")).unwrap();
    let out = output(
        Command::new(python())
            .args(["-m", "pip", "download", "--no-deps", "--no-cache-dir", "--require-hashes", "--only-binary", ":all:", "-r"])
            .arg(t.join("req.txt"))
            .arg("--index-url")
            .arg(format!("{}/pypi/simple/", gw.url))
            .arg("-d")
            .arg(t.join("wheels"))
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_INDEX_URL"),
    );
    assert!(out.status.success(), "pip download: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256_hex(&std::fs::read(t.join("wheels").join(SIX_WHEEL)).unwrap()), SIX_SHA256);
    let d = downloads(&ledger, "pkg:pypi/six@1.16.0");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["D"], format!("sha256:{SIX_SHA256}"));
    assert_eq!(d[0]["M"], "true");

    // cargo: a real `cargo fetch` with crates.io replaced by the gateway.
    let consumer = t.join("consumer");
    std::fs::create_dir_all(consumer.join("src")).unwrap();
    std::fs::write(
        consumer.join("Cargo.toml"),
        "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\ntinycrate = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(consumer.join("src/main.rs"), "fn main() { println!(\"{}\", tinycrate::seven()); }\n").unwrap();
    let client_home = cargo_home(&t.join("client-cargo-home"), &format!("{}/cargo/", gw.url));
    let out = output(Command::new("cargo").arg("fetch").current_dir(&consumer).env("CARGO_HOME", &client_home));
    assert!(out.status.success(), "cargo fetch: {}", String::from_utf8_lossy(&out.stderr));
    let lock = std::fs::read_to_string(consumer.join("Cargo.lock")).unwrap();
    assert!(lock.contains(&format!("checksum = \"{cksum}\"")), "{lock}");
    let d = downloads(&ledger, "pkg:cargo/tinycrate@0.1.0");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["D"], format!("sha256:{cksum}"));

    // A policy that quarantines ms@2.1.2: npm fails with the reason, and
    // nothing of it lands in the project.
    let out = npm(&["install", "ms@2.1.2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("quarantined") && err.contains("deny list"), "{err}");
    let installed: Value = serde_json::from_slice(&std::fs::read(proj.join("node_modules/ms/package.json")).unwrap()).unwrap();
    assert_eq!(installed["version"], "2.1.3", "the quarantined version must not be written");
    let held = downloads(&ledger, "pkg:npm/ms@2.1.2");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["Dec"], "quarantine");
    let sha = held[0]["D"].as_str().unwrap().to_owned();
    let list: Value = serde_json::from_slice(&run(Command::new(ZKAUDIT).args(["quarantine", "list", "--json", "--ledger"]).arg(&ledger)).stdout).unwrap();
    assert_eq!(list[0]["purl"], "pkg:npm/ms@2.1.2");
    let blob = ledger.join("quarantine").join(sha.trim_start_matches("sha256:"));
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&blob).unwrap()) & 0o777, 0o400);

    // Releasing needs an admin token and is recorded; then npm installs it.
    let submit = token(&ledger, "submit");
    let refused =
        output(Command::new(ZKAUDIT).args(["quarantine", "release", "--ledger"]).arg(&ledger).args(["--admin-token", &submit, "--reason", "x", &sha]));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("need admin"));
    let admin = token(&ledger, "admin");
    run(Command::new(ZKAUDIT).args(["quarantine", "release", "--ledger"]).arg(&ledger).args([
        "--admin-token",
        &admin,
        "--reason",
        "reviewed by security",
        &sha,
    ]));
    let out = npm(&["install", "ms@2.1.2"]);
    assert!(out.status.success(), "npm install after release: {}", String::from_utf8_lossy(&out.stderr));
    let rel = query(&ledger, &format!("event(R, _, _, quarantine_release, '{sha}', _), meta(R, 'zkaudit.quarantine.reason', Why), downloaded(I, 'pkg:npm/ms@2.1.2', _, released), parent(I, P)."));
    assert!(!rel.is_empty(), "the release and the released download are recorded");
    assert_eq!(rel[0]["Why"], "reviewed by security");

    // Taint: the tarball fetched through the gateway, unpacked under the
    // recorder; the unpacked index.js derives from the download.
    let (status, tgz) = get(&gw.url, "/npm/ms/-/ms-2.1.3.tgz");
    assert_eq!(status, 200);
    let work = t.join("unpack");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("ms.tgz"), &tgz).unwrap();
    run(Command::new(ZKAUDIT).args(["record", "--ledger"]).arg(&ledger).args(["--", "sh", "-c", "gzip -dk ms.tgz && tar xf ms.tar"]).current_dir(&work));
    let index_js = sha256_hex(&std::fs::read(work.join("package/index.js")).unwrap());
    let taint = query(&ledger, &format!("tainted('sha256:{index_js}', S)."));
    assert!(!taint.is_empty() && taint.iter().all(|a| a["S"] == "pkg:npm/ms@2.1.3"), "{taint:?}");
    assert!(query(&ledger, &format!("tainted('sha256:{index_js}', S), quarantined(_, S, _).")).is_empty());

    assert!(gw.stop().success());
}

#[test]
fn tampered_failing_and_malformed_requests_are_refused_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ledger = ledger(t);
    let up = Upstream::start();
    let ok = npm_tarball(t, "okpkg");
    up.npm("okpkg", &ok, Reply { status: 200, body: ok.clone(), cut: false }, json!({}));
    let mut flipped = ok.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    up.npm("flippkg", &ok, Reply { status: 200, body: flipped, cut: false }, json!({}));
    up.npm("errpkg", &ok, Reply { status: 500, body: b"boom".to_vec(), cut: false }, json!({}));
    up.npm("truncpkg", &ok, Reply { status: 200, body: ok.clone(), cut: true }, json!({}));
    let evil = npm_tarball(t, "evilpkg");
    up.npm("evilpkg", &evil, Reply { status: 200, body: evil.clone(), cut: false }, json!({"postinstall": "node steal.js"}));
    let osv = t.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("MAL-2026-0001.json"),
        json!({"schema_version": "1.6.0", "id": "MAL-2026-0001", "modified": "2026-01-01T00:00:00Z", "summary": "Malicious code in evilpkg (npm)",
            "affected": [{"package": {"ecosystem": "npm", "name": "evilpkg"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]})
        .to_string(),
    )
    .unwrap();
    let policy = t.join("policy.toml");
    std::fs::write(&policy, "[on]\ninstall_scripts = \"warn\"\n[provenance]\nrequire = [\"pkg:npm/okpkg\"]\n").unwrap();
    let gw = Daemon::start(
        gateway(&ledger, &policy)
            .arg("--osv")
            .arg(&osv)
            .args(["--upstream-npm", &format!("{}/npm", up.url)])
            .args(["--upstream-pypi", &format!("{}/pypi", up.url)])
            .args(["--upstream-cargo", &format!("{}/cargo", up.url)]),
    );

    // The packument's tarball URL points back through the gateway.
    let (status, body) = get(&gw.url, "/npm/okpkg");
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["versions"]["1.0.0"]["dist"]["tarball"], format!("{}/npm/okpkg/-/okpkg-1.0.0.tgz", gw.url));
    let (status, body) = get(&gw.url, "/npm/okpkg/-/okpkg-1.0.0.tgz");
    assert_eq!((status, body == ok), (200, true));

    // Provenance required and missing: a warning.
    let ok_dl = downloads(&ledger, "pkg:npm/okpkg@1.0.0");
    assert_eq!(ok_dl[0]["Dec"], "warn", "okpkg has no provenance and the policy requires it");

    // A flipped byte: the digest check holds it back.
    let (status, body) = get(&gw.url, "/npm/flippkg/-/flippkg-1.0.0.tgz");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("digest_mismatch"));
    let d = downloads(&ledger, "pkg:npm/flippkg@1.0.0");
    assert_eq!((d.len(), &d[0]["Dec"], &d[0]["M"]), (1, &json!("quarantine"), &json!("false")));

    // 500 and a body cut short: a clear 502, a failure event, nothing served.
    for (name, says) in [("errpkg", "answered 500"), ("truncpkg", "ended after")] {
        let (status, body) = get(&gw.url, &format!("/npm/{name}/-/{name}-1.0.0.tgz"));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 502, "{name}: {text}");
        assert!(text.contains(says), "{name}: {text}");
        let f = query(&ledger, &format!("download_failed(I, '{name}', artifact, Msg)."));
        assert_eq!(f.len(), 1, "{name}: {f:?}");
    }

    // An OSV MAL- entry quarantines; the install script is recorded too.
    let (status, body) = get(&gw.url, "/npm/evilpkg/-/evilpkg-1.0.0.tgz");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("MAL-2026-0001"));
    let i = downloads(&ledger, "pkg:npm/evilpkg@1.0.0")[0]["I"].as_u64().unwrap();
    assert_eq!(query(&ledger, &format!("meta({i}, 'vulnerability.id', V)."))[0]["V"], json!(["MAL-2026-0001"]));
    assert_eq!(query(&ledger, &format!("meta({i}, 'zkaudit.download.install_scripts', S)."))[0]["S"], json!(["postinstall"]));

    // Malformed requests: each answered 4xx, and the gateway keeps serving.
    let long = "a".repeat(3000);
    let huge_header = format!("X-Big: {}\r\n", "b".repeat(200_000));
    let cases: Vec<(&str, String, String)> = vec![
        ("GET", "/npm/../etc/passwd".into(), String::new()),
        ("GET", "/npm/%2e%2e/secret".into(), String::new()),
        ("GET", "/npm/okpkg/-/..%2f..%2fetc%2fpasswd".into(), String::new()),
        ("GET", "/pypi/simple/..%5c..".into(), String::new()),
        ("GET", "/pypi/files/six/..%2fsix.whl".into(), String::new()),
        ("GET", "/cargo/dl/tinycrate/../../download".into(), String::new()),
        ("GET", format!("/cargo/dl/tinycrate/{}/download", "9".repeat(200)), String::new()),
        ("GET", "/cargo/dl/1bad/0.1.0/download".into(), String::new()),
        ("GET", "/cargo/dl/tinycrate/1.0.0%00/download".into(), String::new()),
        ("GET", "/cargo/ti/ny/other".into(), String::new()),
        ("GET", "/npm/UPPER".into(), String::new()),
        ("GET", "/npm/%00".into(), String::new()),
        ("GET", "/npm/a%ffb".into(), String::new()),
        ("GET", "/npm/@scope".into(), String::new()),
        ("GET", "/npm/-/v1/search?text=x".into(), String::new()),
        ("GET", "/npm/okpkg/-/okpkg-9.9.9.tgz".into(), String::new()),
        ("GET", "/pypi/simple".into(), String::new()),
        ("GET", "/pypi/simple/-bad-/".into(), String::new()),
        ("GET", "/nothing/here".into(), String::new()),
        ("GET", format!("/npm/{long}"), String::new()),
        ("GET", "/npm/okpkg".into(), huge_header),
        ("POST", "/npm/okpkg".into(), "Content-Length: 0\r\n".into()),
        ("DELETE", "/cargo/config.json".into(), String::new()),
    ];
    assert!(cases.len() >= 20);
    for (method, target, headers) in &cases {
        let (status, body) = raw(&gw.url, method, target, headers);
        assert!((400..500).contains(&status), "{method} {}: {status} {}", &target[..target.len().min(80)], String::from_utf8_lossy(&body));
    }
    assert_eq!(get(&gw.url, "/npm/okpkg/-/okpkg-1.0.0.tgz").0, 200, "still serving after the malformed requests");
    assert!(gw.stop().success());

    // The upstream is down: a clear 502 and a failure event.
    let down = Daemon::start(
        Command::new(ZKAUDIT).args(["registry-gateway", "--listen", "127.0.0.1:0", "--ledger"]).arg(&ledger).args(["--upstream-npm", "http://127.0.0.1:9/npm"]),
    );
    let (status, body) = get(&down.url, "/npm/okpkg");
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(query(&ledger, "download_failed(I, okpkg, metadata, Msg).").len(), 1);
    assert!(down.stop().success());
}

/// pypi-attestations 0.0.31's sdist, with the SHA-256 PyPI publishes for
/// it (pip checks it with --require-hashes). Its test assets hold
/// pypi-attestations 0.0.19's sdist and the PEP 740 provenance object that
/// PyPI serves for that file.
const PA_SDIST: &str = "pypi_attestations-0.0.31.tar.gz";
const PA_SHA256: &str = "5a2473aca7d7f65caf2c3a985691c5cf9264a97fa68c98fbae6e96320bcc7c9a";
const PA_FILE: &str = "pypi_attestations-0.0.19.tar.gz";

/// The value of one metadata field of event `i`.
fn meta(ledger: &Path, i: u64, field: &str) -> Value {
    let rows = query(ledger, &format!("meta({i}, '{field}', V)."));
    assert_eq!(rows.len(), 1, "{field} of event {i}: {rows:?}");
    rows[0]["V"].clone()
}

#[test]
fn published_provenance_is_verified_offline_and_forged_provenance_is_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ledger = ledger(t);
    let up = Upstream::start();

    // npm: the real tarball of sigstore@2.0.0, from the registry npm itself
    // uses, and npm's real SLSA provenance bundle for it.
    let out = output(
        Command::new("npm")
            .args(["pack", "sigstore@2.0.0", "--pack-destination"])
            .arg(t)
            .arg("--cache")
            .arg(t.join("npm-cache"))
            .arg("--userconfig")
            .arg(t.join("npmrc")),
    );
    assert!(out.status.success(), "npm pack: {}", String::from_utf8_lossy(&out.stderr));
    let tgz = std::fs::read(t.join("sigstore-2.0.0.tgz")).unwrap();
    let data = sigstore_data::sigstore_test_data(env!("CARGO_MANIFEST_DIR"));
    let bundle: Value = serde_json::from_slice(&std::fs::read(data.join("bundles/sigstore.js@2.0.0-provenance.sigstore.json")).unwrap()).unwrap();
    let attestations = |b: &Value| json!({"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": b}]});
    up.npm_version("sigstore", "2.0.0", &tgz, Reply { status: 200, body: tgz.clone(), cut: false }, json!({}), Some(attestations(&bundle)));
    // The same bytes under another name, with the statement rewritten to
    // claim another source repository (the signature was over the original).
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut st: Value = serde_json::from_slice(&b64.decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()).unwrap();
    st["predicate"]["buildDefinition"]["externalParameters"]["workflow"]["repository"] = json!("https://github.com/attacker/sigstore-js");
    let mut forged = bundle.clone();
    forged["dsseEnvelope"]["payload"] = json!(b64.encode(st.to_string()));
    up.npm_version("forged", "2.0.0", &tgz, Reply { status: 200, body: tgz.clone(), cut: false }, json!({}), Some(attestations(&forged)));

    // PyPI: a real sdist and the PEP 740 provenance PyPI published for it.
    let pa = t.join("pa");
    std::fs::create_dir_all(&pa).unwrap();
    std::fs::write(pa.join("req.txt"), format!("pypi-attestations==0.0.31 --hash=sha256:{PA_SHA256}\n")).unwrap();
    let out = output(
        Command::new(python())
            .args(["-m", "pip", "download", "--no-deps", "--no-cache-dir", "--require-hashes", "--no-binary", "pypi-attestations", "-r", "req.txt", "-d", "."])
            .current_dir(&pa),
    );
    assert!(out.status.success(), "pip download: {}", String::from_utf8_lossy(&out.stderr));
    let assets = "pypi_attestations-0.0.31/test/assets";
    run(Command::new("tar")
        .arg("xzf")
        .arg(pa.join(PA_SDIST))
        .arg("-C")
        .arg(&pa)
        .arg(format!("{assets}/{PA_FILE}"))
        .arg(format!("{assets}/{PA_FILE}.provenance")));
    let sdist = std::fs::read(pa.join(assets).join(PA_FILE)).unwrap();
    let pep740: Value = serde_json::from_slice(&std::fs::read(pa.join(assets).join(format!("{PA_FILE}.provenance"))).unwrap()).unwrap();
    up.pypi("pypi-attestations", PA_FILE, sdist.clone(), Some(pep740));

    let policy = t.join("policy.toml");
    std::fs::write(&policy, "[provenance]\nrequire = [\"pkg:npm/sigstore\", \"pkg:pypi/pypi-attestations\"]\n").unwrap();
    let gw =
        Daemon::start(gateway(&ledger, &policy).args(["--upstream-npm", &format!("{}/npm", up.url)]).args(["--upstream-pypi", &format!("{}/pypi", up.url)]));

    // The real provenance verifies: served, and the event names the signer.
    let (status, body) = get(&gw.url, "/npm/sigstore/-/sigstore-2.0.0.tgz");
    assert_eq!((status, body == tgz), (200, true), "{}", String::from_utf8_lossy(&body));
    let d = downloads(&ledger, "pkg:npm/sigstore@2.0.0");
    assert_eq!((d.len(), &d[0]["Dec"]), (1, &json!("allow")), "{d:?}");
    let i = d[0]["I"].as_u64().unwrap();
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.verified"), json!("true"), "{}", meta(&ledger, i, "zkaudit.provenance.verification"));
    assert_eq!(
        meta(&ledger, i, "zkaudit.provenance.signer.identity"),
        json!("https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main")
    );
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.signer.issuer"), json!("https://token.actions.githubusercontent.com"));
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.source.repository"), json!("https://github.com/sigstore/sigstore-js"));

    // The forged statement: held back, with the reason, and recorded.
    let (status, body) = get(&gw.url, "/npm/forged/-/forged-2.0.0.tgz");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("invalid_provenance") && text.contains("DSSE signature verification failed"), "{text}");
    let d = downloads(&ledger, "pkg:npm/forged@2.0.0");
    assert_eq!((d.len(), &d[0]["Dec"]), (1, &json!("quarantine")), "{d:?}");
    let i = d[0]["I"].as_u64().unwrap();
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.verified"), json!("false"));
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.source.repository"), json!("https://github.com/attacker/sigstore-js"), "read, and recorded as claimed");

    // PyPI's PEP 740 provenance, verified as the Sigstore bundle it stands for.
    let (status, body) = get(&gw.url, "/pypi/simple/pypi-attestations/");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = get(&gw.url, &format!("/pypi/files/pypi-attestations/{PA_FILE}"));
    assert_eq!((status, body == sdist), (200, true), "{}", String::from_utf8_lossy(&body));
    let d = downloads(&ledger, "pkg:pypi/pypi-attestations@0.0.19");
    assert_eq!((d.len(), &d[0]["Dec"]), (1, &json!("allow")), "{d:?}");
    let i = d[0]["I"].as_u64().unwrap();
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.verified"), json!("true"), "{}", meta(&ledger, i, "zkaudit.provenance.verification"));
    assert_eq!(meta(&ledger, i, "zkaudit.provenance.publisher"), json!("GitHub:trailofbits/pypi-attestations"));
    let id = meta(&ledger, i, "zkaudit.provenance.signer.identity");
    assert!(id.as_str().unwrap().starts_with("https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@"), "{id}");
    assert!(gw.stop().success());
}

/// Writes an executable file.
fn executable(path: &Path, body: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn the_guard_refuses_to_execute_a_quarantined_file_wherever_it_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ledger = ledger(t);
    let up = Upstream::start();
    // An "artifact" that is a script, held back by the deny list.
    let script = b"#!/bin/sh\necho pwned\n".to_vec();
    up.npm("evilbin", &script, Reply { status: 200, body: script.clone(), cut: false }, json!({}));
    let policy = t.join("policy.toml");
    std::fs::write(&policy, "[deny]\npackages = [\"pkg:npm/evilbin\"]\n").unwrap();
    let gw = Daemon::start(gateway(&ledger, &policy).args(["--upstream-npm", &format!("{}/npm", up.url)]));
    assert_eq!(get(&gw.url, "/npm/evilbin/-/evilbin-1.0.0.tgz").0, 403);
    assert!(gw.stop().success());
    let sha = format!("sha256:{}", sha256_hex(&script));
    let shown: Value = serde_json::from_slice(&run(Command::new(ZKAUDIT).args(["quarantine", "show", "--ledger"]).arg(&ledger).arg(&sha)).stdout).unwrap();

    // The same bytes under an innocent name elsewhere, and a harmless script.
    let copy = t.join("bin/innocent-name");
    executable(&copy, &script);
    let fine = t.join("bin/fine.sh");
    executable(&fine, b"#!/bin/sh\necho fine\n");
    assert_eq!(output(&mut Command::new(&copy)).stdout, b"pwned\n", "runs before the guard starts");

    let mut guard = Command::new(ZKAUDIT)
        .args(["quarantine", "guard", "--ledger"])
        .arg(&ledger)
        .arg("--mount")
        .arg(t)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(guard.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("against 1 quarantined digests"), "{line:?}");

    let refused = Command::new(&copy).output().expect_err("the kernel refuses the exec");
    assert_eq!(refused.raw_os_error(), Some(1), "EPERM: {refused}");
    assert_eq!(output(&mut Command::new(&fine)).stdout, b"fine\n", "other files run");

    // Released by an admin: it runs again, without restarting the guard.
    let admin = token(&ledger, "admin");
    run(Command::new(ZKAUDIT).args(["quarantine", "release", "--ledger"]).arg(&ledger).args(["--admin-token", &admin, "--reason", "a test script", &sha]));
    let ran = (0..50).find_map(|_| match Command::new(&copy).output() {
        Ok(out) => Some(out),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    });
    assert_eq!(ran.expect("runs within 5 s of the release").stdout, b"pwned\n");

    Command::new("kill").arg("-TERM").arg(guard.id().to_string()).status().unwrap();
    assert!(guard.wait().unwrap().success());
    let d = query(&ledger, "exec_denied(I, X, D, P), parent(I, Dl).");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["X"], json!(copy.display().to_string()));
    assert_eq!((&d[0]["D"], &d[0]["P"]), (&json!(sha), &json!("pkg:npm/evilbin@1.0.0")));
    assert_eq!(d[0]["Dl"], shown["event"], "its parent is the download event");
    // The guarded window: a start and a stop event, with the counts.
    let w = query(&ledger, "event(S, _, _, quarantine_guard_start, _, _), event(E, _, _, quarantine_guard_stop, _, _), meta(E, 'zkaudit.guard.denied', N).");
    assert_eq!((w.len(), &w[0]["N"]), (1, &json!(1)), "{w:?}");
}
