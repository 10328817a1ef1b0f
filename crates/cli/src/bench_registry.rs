//! `zkaudit bench registry`: artifact downloads and metadata requests
//! through the registry gateway against the same requests sent straight to
//! its upstream, in one run.
//!
//! The upstream is served locally (a keep-alive HTTP/1.1 server in this
//! process, answering an npm packument and one tarball of `--size-kib`
//! random bytes from memory), so the network is out of the figures. The
//! gateway is the real one, recording into a fresh local ledger, so each
//! download includes fetching the whole artifact, hashing it (SHA-256,
//! SHA-512), the checks, and waiting for its event to be durable.
//!
//! * downloads: `--clients` threads GET the artifact for `--seconds`,
//!   direct, then through the gateway as an npm tarball (checked against
//!   its SHA-512 integrity) and as a crate (checked against its SHA-256
//!   `cksum`): downloads/s, MB/s, latency p50/p99;
//! * metadata: one client GETs the packument for `--seconds`, direct, then
//!   through the gateway (which fetches it from the upstream each time):
//!   latency p50/p99, and the gateway's added latency at each.
//!
//! Where `nginx` is installed (Debian's `nginx-light`), the downloads are
//! also measured through nginx as a bare reverse proxy of the same
//! upstream (`Nginx`): no hashing, no checks, no recording. Client,
//! upstream and proxy share this machine's cores, so that row is what any
//! proxy can reach here, the reference for the gateway's share of direct.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::output::{out, outln, print_json};

/// `zkaudit bench registry` arguments.
#[derive(Args)]
pub struct RegistryArgs {
    /// Seconds per measurement (five of them).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent download clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Artifact size in KiB.
    #[arg(long, default_value_t = 256)]
    size_kib: usize,
    /// Scratch directory for the ledger (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Serves the routes `routes_at` makes for its address (exact path →
/// body) over keep-alive HTTP/1.1, one thread per connection.
fn upstream(routes_at: impl FnOnce(SocketAddr) -> HashMap<String, Arc<Vec<u8>>>) -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let routes = Arc::new(routes_at(addr));
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let routes = Arc::clone(&routes);
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let Ok(read) = conn.try_clone() else { return };
                let mut reader = BufReader::new(read);
                let mut conn = std::io::BufWriter::new(conn);
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
                    let (status, body) = match routes.get(&path) {
                        Some(b) => ("200 OK", Arc::clone(b)),
                        None => ("404 Not Found", Arc::new(Vec::new())),
                    };
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n", body.len());
                    if conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(&body)).and_then(|_| conn.flush()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// nginx as a bare reverse proxy of `upstream`, for a reference row: two
/// worker processes, keep-alive to the upstream, no access log, and
/// response buffers of 4 MiB in memory (so an artifact of up to that size
/// never goes to a temporary file). Its files live in `dir`
/// (`nginx.conf` there). Stopped with `nginx -s stop` (which also ends
/// its workers) when dropped.
struct Nginx {
    bin: PathBuf,
    child: Child,
    prefix: PathBuf,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl Nginx {
    /// Starts it, or `Ok(None)` when no `nginx` is installed.
    ///
    /// # Errors
    /// Writing its configuration, spawning it, or its not listening within
    /// 10 s (the error carries its error log).
    fn start(dir: &Path, upstream: SocketAddr) -> Result<Option<Nginx>> {
        let Some(bin) = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"].into_iter().map(PathBuf::from).find(|p| p.exists()) else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        let conf_text = format!(
            r#"worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  proxy_buffer_size 64k;
  proxy_buffers 64 64k;
  proxy_busy_buffers_size 128k;
  upstream up {{ server {upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
"#
        );
        std::fs::write(&conf, conf_text)?;
        let child = Command::new(&bin)
            .args(["-q", "-p"])
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let nginx = Nginx { bin, child, prefix: dir.to_owned(), base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx did not listen on 127.0.0.1:{port} within 10 s: {}", log.trim());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Some(nginx))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let stopped = Command::new(&self.bin)
            .args(["-q", "-s", "stop", "-p"])
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one measurement saw.
struct Run {
    requests: u64,
    bytes: u64,
    seconds: f64,
    latencies_ms: Vec<f64>,
    errors: u64,
}

impl Run {
    fn pct(&self, p: f64) -> f64 {
        let mut l = self.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        if l.is_empty() {
            return f64::NAN;
        }
        l[((l.len() - 1) as f64 * p).round() as usize]
    }
}

/// `clients` threads GET `url` for `seconds`.
fn load(url: &str, clients: usize, seconds: u64) -> Run {
    let stop = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into();
                let (mut n, mut bytes, mut errors, mut lat) = (0u64, 0u64, 0u64, Vec::new());
                while Instant::now() < stop {
                    let t = Instant::now();
                    match agent.get(&url).call() {
                        Ok(mut r) if r.status() == 200 => match r.body_mut().with_config().limit(1 << 30).read_to_vec() {
                            Ok(b) => {
                                lat.push(t.elapsed().as_secs_f64() * 1e3);
                                n += 1;
                                bytes += b.len() as u64;
                            }
                            Err(_) => errors += 1,
                        },
                        _ => errors += 1,
                    }
                }
                (n, bytes, errors, lat)
            })
        })
        .collect();
    let mut run = Run { requests: 0, bytes: 0, seconds: 0.0, latencies_ms: Vec::new(), errors: 0 };
    for t in threads {
        if let Ok((n, b, e, l)) = t.join() {
            run.requests += n;
            run.bytes += b;
            run.errors += e;
            run.latencies_ms.extend(l);
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

/// `zkaudit bench registry`.
pub fn run(a: RegistryArgs) -> Result<()> {
    let blob: Vec<u8> = (0..a.size_kib * 1024).map(|_| rand::random::<u8>()).collect();
    let scratch = tempfile::Builder::new().prefix("zkaudit-bench-registry").tempdir_in(&a.dir)?;
    let ledger = scratch.path().join("ledger");
    zkaudit_tlog::init(&ledger, "bench.zkaudit.test/registry")?;

    let tgz = "/npm/benchpkg/-/benchpkg-1.0.0.tgz";
    let krate = "/cargo-dl/benchcrate/1.0.0/download";
    let integrity = format!("sha512-{}", base64_sha512(&blob));
    let cksum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob));
    let blob = Arc::new(blob);
    let up = upstream(|addr| {
        let packument = json!({"name": "benchpkg", "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {"name": "benchpkg", "version": "1.0.0", "dist": {"tarball": format!("http://{addr}{tgz}"), "integrity": integrity}}},
            "time": {"1.0.0": "2020-01-01T00:00:00.000Z"}});
        let line = json!({"name": "benchcrate", "vers": "1.0.0", "deps": [], "cksum": cksum, "features": {}, "yanked": false});
        HashMap::from([
            (tgz.to_owned(), Arc::clone(&blob)),
            (krate.to_owned(), Arc::clone(&blob)),
            ("/npm/benchpkg".to_owned(), Arc::new(packument.to_string().into_bytes())),
            ("/cargo/config.json".to_owned(), Arc::new(json!({"dl": format!("http://{addr}/cargo-dl")}).to_string().into_bytes())),
            ("/cargo/be/nc/benchcrate".to_owned(), Arc::new(format!("{line}\n").into_bytes())),
        ])
    })?;
    let upstream_base = format!("http://{up}");
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let running = rt.block_on(zkaudit_registry::start(zkaudit_registry::Config {
        listen: "127.0.0.1:0".parse()?,
        upstreams: zkaudit_registry::upstream::Upstreams {
            npm: Some(format!("{upstream_base}/npm")),
            pypi: None,
            cargo: Some(format!("{upstream_base}/cargo")),
        },
        destination: zkaudit_collect::Destination::Ledger { dir: ledger.clone(), index: None },
        policy_file: None,
        osv_dir: None,
        trusted_root: None,
        quarantine_dir: zkaudit_tlog::LedgerDir::new(&ledger).quarantine_dir(),
    }))?;
    let gw = format!("http://{}", running.addr);

    let report = |name: &str, value: f64, unit: &str, note: String| {
        if a.json {
            print_json(&json!({ "bench": name, "value": value, "unit": unit, "note": note }));
        } else {
            outln!("{name:<40} {value:>12.2} {unit:<11} {note}");
        }
    };
    let direct = load(&format!("{upstream_base}{tgz}"), a.clients, a.seconds);
    let nginx = Nginx::start(&scratch.path().join("nginx"), up)?;
    let via_nginx = nginx.as_ref().map(|n| load(&format!("{}{tgz}", n.base), a.clients, a.seconds));
    drop(nginx);
    let via_npm = load(&format!("{gw}{tgz}"), a.clients, a.seconds);
    let via_cargo = load(&format!("{gw}/cargo/dl/benchcrate/1.0.0/download"), a.clients, a.seconds);
    let failed = direct.errors + via_nginx.as_ref().map_or(0, |r| r.errors) + via_npm.errors + via_cargo.errors;
    if failed > 0 {
        eprintln!("bench registry: {failed} requests failed");
    }
    let rate = |r: &Run| r.requests as f64 / r.seconds;
    let rows = [
        ("downloads direct", Some(&direct)),
        ("downloads via nginx (bare proxy)", via_nginx.as_ref()),
        ("downloads via gateway, npm (SHA-512)", Some(&via_npm)),
        ("downloads via gateway, cargo (SHA-256)", Some(&via_cargo)),
    ];
    for (name, r) in rows {
        match r {
            Some(r) => report(
                name,
                rate(r),
                "downloads/s",
                format!("{:.1} MB/s, p50 {:.2} ms, p99 {:.2} ms", r.bytes as f64 / r.seconds / 1e6, r.pct(0.5), r.pct(0.99)),
            ),
            None => eprintln!("bench registry: no nginx installed (apt-get install nginx-light), so no bare-proxy reference row"),
        }
    }
    let shares = [
        ("nginx (bare proxy) / direct", via_nginx.as_ref()),
        ("npm through the gateway / direct", Some(&via_npm)),
        ("cargo through the gateway / direct", Some(&via_cargo)),
    ];
    for (name, r) in shares.into_iter().filter_map(|(n, r)| Some((n, r?))) {
        report(name, rate(r) / rate(&direct) * 100.0, "%", format!("{} clients, {} KiB artifact", a.clients, a.size_kib));
    }

    let meta_direct = load(&format!("{upstream_base}/npm/benchpkg"), 1, a.seconds);
    let meta_via = load(&format!("{gw}/npm/benchpkg"), 1, a.seconds);
    for (name, p) in [("metadata added latency p50", 0.5), ("metadata added latency p99", 0.99)] {
        report(name, meta_via.pct(p) - meta_direct.pct(p), "ms", format!("direct {:.3} ms, through the gateway {:.3} ms", meta_direct.pct(p), meta_via.pct(p)));
    }

    let r = rt.block_on(running.stop())?;
    let served = via_npm.requests + via_cargo.requests;
    report("download events recorded", r.downloads as f64, "events", format!("{served} downloads answered 200; {} events appended in all", r.sink.appended));
    if r.downloads < served {
        bail!("{served} downloads were served but only {} recorded", r.downloads);
    }
    Ok(())
}

fn base64_sha512(b: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(b))
}
