//! The gateway's HTTP front: one listener serving `/npm/`, `/pypi/` and
//! `/cargo/`, metadata passed through with artifact URLs pointing back
//! through it, and every artifact fetched whole, checked, decided on and
//! recorded as one `download` event before a byte of it is served.
//!
//! Each download runs in its own task, apart from the connection that
//! asked for it, so a client that hangs up cannot stop it from being
//! recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use zkaudit_collect::{Destination, Observation, OcsfClass, Sink, SinkError, SinkOptions};
use zkaudit_event::{Digest, Layer};

use crate::artifact::{Artifact, Digests};
use crate::osv::{Osv, OsvError};
use crate::package::{check_version, Ecosystem};
use crate::policy::{purl_matches, Action, Policy, PolicyError};
use crate::provenance::Provenance;
use crate::quarantine;
use crate::sigstore::{Sigstore, SigstoreError};
use crate::upstream::{FetchError, Fetched, Fetcher, Upstreams};
use crate::{cargo, npm, provenance, pypi};

/// The collector name of the gateway's events (`observer.type`).
pub const COLLECTOR: &str = "registry-gateway";

/// How long fetched metadata is reused for artifact lookups.
const META_TTL: Duration = Duration::from_secs(60);
/// Longest request path accepted, in bytes.
const MAX_PATH_BYTES: usize = 2048;
/// Most header bytes a request may carry (package clients send a few hundred).
const MAX_HEADER_BYTES: usize = 16 << 10;

/// How the gateway is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The upstream of each ecosystem (see [`Upstreams::discover`]).
    pub upstreams: Upstreams,
    /// Where the events go.
    pub destination: Destination,
    /// The policy file; `None` for [`Policy::default`].
    pub policy_file: Option<PathBuf>,
    /// An OSV export to check against.
    pub osv_dir: Option<PathBuf>,
    /// The quarantine store's directory.
    pub quarantine_dir: PathBuf,
    /// A Sigstore `trusted_root.json` to verify provenance against; `None`
    /// for the embedded public-good root ([`Sigstore::public_good`]).
    pub trusted_root: Option<PathBuf>,
}

/// Why the gateway could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The policy file.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The OSV export.
    #[error(transparent)]
    Osv(#[from] OsvError),
    /// The Sigstore trust root.
    #[error(transparent)]
    Sigstore(#[from] SigstoreError),
    /// The event sink.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The listener.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No ecosystem has an upstream.
    #[error("no upstream for any ecosystem: {0}")]
    NoUpstream(String),
    /// The HTTP client could not be set up.
    #[error("the upstream HTTP client: {0}")]
    Client(String),
    /// The serving task failed.
    #[error("the gateway's task failed: {0}")]
    Task(String),
}

/// What a gateway run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Artifact requests decided on (each one `download` event).
    pub downloads: u64,
    /// Artifacts served.
    pub served: u64,
    /// Artifacts quarantined (answered 403).
    pub quarantined: u64,
    /// Requests that failed upstream (each one `download` event too).
    pub failed: u64,
    /// What the sink did.
    pub sink: zkaudit_collect::Report,
}

/// A running gateway.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The upstreams in use.
    pub upstreams: Upstreams,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<Report, GatewayError>>,
}

impl Running {
    /// Stops accepting requests, waits for downloads in flight to be
    /// recorded, records the stop and flushes the sink.
    ///
    /// # Errors
    /// The sink's error, if delivery failed.
    pub async fn stop(mut self) -> Result<Report, GatewayError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.map_err(|e| GatewayError::Task(e.to_string()))?
    }
}

#[derive(Clone)]
enum Meta {
    Json(Arc<Value>),
    Text(Arc<String>),
}

struct Shared {
    upstreams: Upstreams,
    fetcher: Fetcher,
    policy: Policy,
    policy_digest: String,
    osv: Osv,
    sigstore: Sigstore,
    quarantine: quarantine::Store,
    sink: Mutex<Option<Sink>>,
    start_event: Digest,
    instance: String,
    listen: SocketAddr,
    meta: Mutex<HashMap<(Ecosystem, String), (Instant, Meta)>>,
    cargo_dl: tokio::sync::Mutex<Option<String>>,
    downloads: AtomicU64,
    served: AtomicU64,
    quarantined: AtomicU64,
    failed: AtomicU64,
}

/// An answer that is not an artifact: status and a sentence, as JSON
/// `{"error": …}` for npm (which prints that field) and text otherwise.
struct Refusal {
    status: StatusCode,
    message: String,
    eco: Option<Ecosystem>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into(), eco: None }
    }

    fn of(mut self, eco: Ecosystem) -> Self {
        self.eco = Some(eco);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let msg = format!("zkaudit registry gateway: {}", self.message);
        if self.eco == Some(Ecosystem::Npm) {
            (self.status, axum::Json(json!({ "error": msg }))).into_response()
        } else {
            (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response()
        }
    }
}

fn fetch_refusal(e: &FetchError) -> Refusal {
    match e {
        FetchError::Status { status: 404 | 410, .. } => Refusal::new(StatusCode::NOT_FOUND, format!("not found upstream: {e}")),
        FetchError::Unreachable { why, .. } if why.contains("timed out") => Refusal::new(StatusCode::GATEWAY_TIMEOUT, format!("the upstream timed out: {e}")),
        _ => Refusal::new(StatusCode::BAD_GATEWAY, format!("the upstream failed, nothing was served: {e}")),
    }
}

impl Shared {
    fn record(&self, o: Observation) -> Option<Digest> {
        let event = o.into_event();
        let mut sink = self.sink.lock().ok()?;
        match sink.as_mut()?.send(&event) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("registry-gateway: recording a {} event failed: {e}", event.kind);
                None
            }
        }
    }

    /// Records `o` and waits until it is durable (appended, or spooled for
    /// a server): the digest, or `None` if it could not be kept.
    async fn record_durably(&self, o: Observation) -> Option<Digest> {
        let event = o.into_event();
        let (tx, rx) = oneshot::channel();
        let sent = {
            let mut sink = self.sink.lock().ok()?;
            sink.as_mut()?.send_then(&event, move |r| {
                let _ = tx.send(r);
            })
        };
        let digest = match sent {
            Ok(d) => d,
            Err(e) => {
                eprintln!("registry-gateway: recording a {} event failed: {e}", event.kind);
                return None;
            }
        };
        match rx.await {
            Ok(Ok(())) => Some(digest),
            Ok(Err(e)) => {
                eprintln!("registry-gateway: a {} event could not be kept: {e}", event.kind);
                None
            }
            Err(_) => None,
        }
    }

    fn upstream(&self, eco: Ecosystem) -> Result<&str, Refusal> {
        self.upstreams
            .get(eco)
            .ok_or_else(|| Refusal::new(StatusCode::SERVICE_UNAVAILABLE, format!("no {eco} upstream is configured (give --upstream-{eco})")).of(eco))
    }

    fn cached(&self, eco: Ecosystem, key: &str) -> Option<Meta> {
        let m = self.meta.lock().ok()?;
        m.get(&(eco, key.to_owned())).filter(|(t, _)| t.elapsed() < META_TTL).map(|(_, v)| v.clone())
    }

    fn cache(&self, eco: Ecosystem, key: &str, meta: Meta) {
        if let Ok(mut m) = self.meta.lock() {
            if m.len() > 4096 {
                m.retain(|_, (t, _)| t.elapsed() < META_TTL);
            }
            m.insert((eco, key.to_owned()), (Instant::now(), meta));
        }
    }

    /// Metadata of `name` in `eco`, from the cache or the upstream.
    async fn meta(&self, eco: Ecosystem, name: &str, refresh: bool) -> Result<Meta, Refusal> {
        if !refresh {
            if let Some(m) = self.cached(eco, name) {
                return Ok(m);
            }
        }
        let base = self.upstream(eco)?;
        let (url, accept) = match eco {
            Ecosystem::Npm => (npm::packument_url(base, name), "application/json"),
            Ecosystem::Pypi => (pypi::page_url(base, name), pypi::JSON_V1),
            Ecosystem::Cargo => (format!("{base}/{}", cargo::index_path(name)), "text/plain"),
        };
        let fetched = match self.fetcher.get(&url, accept).await {
            Ok(f) => f,
            Err(e) => {
                if !matches!(e, FetchError::Status { status: 404 | 410, .. }) {
                    self.record_failure(eco, name, None, &url, "metadata", &e).await;
                }
                return Err(fetch_refusal(&e).of(eco));
            }
        };
        let meta = match eco {
            Ecosystem::Cargo => Meta::Text(Arc::new(String::from_utf8_lossy(&fetched.body).into_owned())),
            _ => {
                if eco == Ecosystem::Pypi && !fetched.content_type.as_deref().is_some_and(|c| c.starts_with(pypi::JSON_V1)) {
                    return Err(Refusal::new(StatusCode::BAD_GATEWAY, format!("{url} did not answer in PEP 691 JSON ({JSON})", JSON = pypi::JSON_V1)).of(eco));
                }
                let mut doc: Value = serde_json::from_slice(&fetched.body)
                    .map_err(|e| Refusal::new(StatusCode::BAD_GATEWAY, format!("{url} answered metadata that is not JSON: {e}")).of(eco))?;
                if eco == Ecosystem::Pypi {
                    pypi::resolve(&mut doc, &fetched.url);
                }
                Meta::Json(Arc::new(doc))
            }
        };
        self.cache(eco, name, meta.clone());
        Ok(meta)
    }

    /// The artifact `find` picks from `name`'s metadata: from the cached
    /// copy, else from a fresh one (a version published since it was cached).
    async fn find_artifact(&self, eco: Ecosystem, name: &str, find: impl Fn(&Meta) -> Option<Artifact>) -> Result<Option<Artifact>, Refusal> {
        if let Some(a) = find(&self.meta(eco, name, false).await?) {
            return Ok(Some(a));
        }
        Ok(find(&self.meta(eco, name, true).await?))
    }

    /// Records a request that failed before anything could be served,
    /// and waits for the event to be kept.
    async fn record_failure(&self, eco: Ecosystem, name: &str, artifact: Option<&Artifact>, url: &str, stage: &str, e: &FetchError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut o = self.observation("download_failed").outcome(false);
        o = o
            .field("package.type", eco.purl_type())
            .field("package.name", name)
            .field("url.full", url)
            .field("zkaudit.download.stage", stage)
            .field("error.message", e.to_string());
        if let FetchError::Status { status, .. } = e {
            o = o.field("zkaudit.download.upstream_status", *status);
        }
        if let Some(a) = artifact {
            o = o.field("package.version", a.package.version.as_str()).field("zkaudit.download.purl", a.package.purl()).field("file.name", a.file.as_str());
        }
        // Answered only once kept, like a download.
        self.record_durably(o).await;
    }

    fn observation(&self, action: &str) -> Observation {
        Observation::new("download", Layer::Application, OcsfClass::HttpActivity, 3, action)
            .parent(self.start_event)
            .field("service.instance.id", self.instance.as_str())
            .field("zkaudit.policy.digest", self.policy_digest.as_str())
    }
}

/// Starts the gateway: loads the policy and the OSV export, opens the sink,
/// records `registry_gateway_start`, and serves until [`Running::stop`].
///
/// # Errors
/// [`GatewayError`] if anything it needs is not there.
pub async fn start(config: Config) -> Result<Running, GatewayError> {
    let policy = match &config.policy_file {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    };
    let osv = match &config.osv_dir {
        Some(d) => Osv::load(d)?,
        None => Osv::default(),
    };
    let sigstore = match &config.trusted_root {
        Some(f) => Sigstore::from_file(f)?,
        None => Sigstore::public_good()?,
    };
    if Ecosystem::ALL.iter().all(|e| config.upstreams.get(*e).is_none()) {
        return Err(GatewayError::NoUpstream("give --upstream-npm, --upstream-pypi or --upstream-cargo".into()));
    }
    let fetcher = Fetcher::new().map_err(GatewayError::Client)?;
    let mut opts = SinkOptions::new(COLLECTOR, Layer::Application);
    // Downloads wait for their event to be durable: keep batches short.
    opts.linger = Duration::from_millis(2);
    let sink = Sink::open(config.destination.clone(), opts)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|source| GatewayError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| GatewayError::Listen { addr: config.listen, source })?;

    let instance = hex::encode(rand::random::<[u8; 8]>());
    let mut shared = Shared {
        upstreams: config.upstreams.clone(),
        fetcher,
        policy_digest: policy.digest(),
        policy,
        osv,
        sigstore,
        quarantine: quarantine::Store::new(&config.quarantine_dir),
        sink: Mutex::new(Some(sink)),
        start_event: Digest([0; 32]),
        instance: instance.clone(),
        listen: addr,
        meta: Mutex::new(HashMap::new()),
        cargo_dl: tokio::sync::Mutex::new(None),
        downloads: AtomicU64::new(0),
        served: AtomicU64::new(0),
        quarantined: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    };
    let mut start = Observation::new("registry_gateway_start", Layer::Application, OcsfClass::HttpActivity, 99, "gateway_started")
        .field("service.instance.id", instance.as_str())
        .field("server.address", addr.to_string())
        .field("zkaudit.policy.digest", shared.policy_digest.as_str())
        .field("zkaudit.policy.json", serde_json::to_value(&shared.policy).unwrap_or(Value::Null))
        .field("zkaudit.policy.source", config.policy_file.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string()))
        .field("zkaudit.osv.advisories", shared.osv.len() as u64)
        .field("zkaudit.sigstore.trusted_root", shared.sigstore.origin())
        .outcome(true);
    for eco in Ecosystem::ALL {
        if let Some(u) = shared.upstreams.get(eco) {
            start = start.field(&format!("zkaudit.registry.upstream.{eco}"), u);
        }
    }
    shared.start_event = shared.record(start).unwrap_or(Digest([0; 32]));
    let shared = Arc::new(shared);

    let app = Router::new().fallback(route).with_state(Arc::clone(&shared));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        let result = served.await;
        // Downloads still running hold a reference each; wait for them to record.
        let deadline = Instant::now() + Duration::from_secs(300);
        while Arc::strong_count(&shared) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let count = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let report = Report {
            downloads: count(&shared.downloads),
            served: count(&shared.served),
            quarantined: count(&shared.quarantined),
            failed: count(&shared.failed),
            sink: zkaudit_collect::Report::default(),
        };
        let stop = Observation::new("registry_gateway_stop", Layer::Application, OcsfClass::HttpActivity, 99, "gateway_stopped")
            .parent(shared.start_event)
            .field("service.instance.id", shared.instance.as_str())
            .field("zkaudit.registry.downloads", report.downloads)
            .field("zkaudit.registry.served", report.served)
            .field("zkaudit.registry.quarantined", report.quarantined)
            .field("zkaudit.registry.failed", report.failed)
            .outcome(result.is_ok());
        shared.record(stop);
        let sink = shared.sink.lock().ok().and_then(|mut s| s.take());
        drop(shared);
        let sink_report = match sink {
            Some(s) => tokio::task::spawn_blocking(move || s.finish()).await.map_err(|e| GatewayError::Task(e.to_string()))??,
            None => zkaudit_collect::Report::default(),
        };
        result.map_err(|source| GatewayError::Listen { addr, source })?;
        Ok(Report { sink: sink_report, ..report })
    });
    Ok(Running { addr, upstreams: config.upstreams, stop: Some(stop_tx), task })
}

/// The percent-decoded segments of `path`, refusing any that could step
/// outside a name: empty inner segments, `.`, `..`, `/` or `\` once
/// decoded, and control characters. A leading `@scope%2fname` npm segment
/// is split in two.
fn segments(path: &str) -> Result<Vec<String>, Refusal> {
    let bad = |why: String| Refusal::new(StatusCode::BAD_REQUEST, why);
    let raw = path.strip_prefix('/').unwrap_or(path);
    let mut out = Vec::new();
    let parts: Vec<&str> = raw.split('/').collect();
    for (i, seg) in parts.iter().enumerate() {
        let pieces: Vec<&str> = if seg.starts_with('@') && i == 1 && parts.first() == Some(&"npm") {
            let lower = seg.to_ascii_lowercase();
            match lower.find("%2f") {
                Some(at) => vec![&seg[..at], &seg[at + 3..]],
                None => vec![seg],
            }
        } else {
            vec![seg]
        };
        for p in pieces {
            let d = percent_decode_str(p).decode_utf8().map_err(|_| bad(format!("path segment {p:?} is not UTF-8 once decoded")))?;
            if d == "." || d == ".." || d.contains(['/', '\\']) || d.chars().any(char::is_control) {
                return Err(bad(format!("path segment {p:?} is not allowed (., .., /, \\ or control characters)")));
            }
            out.push(d.into_owned());
        }
    }
    if let Some(last) = out.last() {
        if last.is_empty() {
            out.pop();
        }
    }
    if out.iter().any(String::is_empty) {
        return Err(bad("empty path segment".into()));
    }
    Ok(out)
}

/// The base URL clients reach the gateway at: the `Host` they used if it
/// is a plain host\[:port\], else the listening address.
fn self_base(s: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)));
    match host {
        Some(h) => format!("http://{h}"),
        None => format!("http://{}", s.listen),
    }
}

async fn route(State(s): State<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "zkaudit registry gateway: only GET and HEAD\n").into_response();
    }
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request's headers take {header_bytes} bytes, more than {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    if uri.path().len() > MAX_PATH_BYTES {
        return Refusal::new(StatusCode::URI_TOO_LONG, format!("the path is longer than {MAX_PATH_BYTES} bytes")).into_response();
    }
    let segs = match segments(uri.path()) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let base = self_base(&s, &headers);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let result = match segs.as_slice() {
        [] => Ok(status_page(&s)),
        ["npm", rest @ ..] => npm_route(&s, rest, &base, peer).await.map_err(|r| r.of(Ecosystem::Npm)),
        ["pypi", rest @ ..] => pypi_route(&s, rest, &base, &accept, peer).await.map_err(|r| r.of(Ecosystem::Pypi)),
        ["cargo", rest @ ..] => cargo_route(&s, rest, &base, peer).await.map_err(|r| r.of(Ecosystem::Cargo)),
        _ => Err(Refusal::new(StatusCode::NOT_FOUND, "unknown path; the gateway serves /npm/, /pypi/simple/ and /cargo/")),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn status_page(s: &Shared) -> Response {
    let up: serde_json::Map<String, Value> = Ecosystem::ALL.iter().map(|e| (e.to_string(), s.upstreams.get(*e).map_or(Value::Null, |u| u.into()))).collect();
    axum::Json(json!({
        "service": "zkaudit registry gateway",
        "upstreams": up,
        "policy": s.policy_digest,
        "osv_advisories": s.osv.len(),
        "downloads": s.downloads.load(Ordering::Relaxed),
    }))
    .into_response()
}

fn json_response(v: &Value, content_type: &'static str) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn check_name(eco: Ecosystem, name: &str) -> Result<(), Refusal> {
    eco.check_name(name).map_err(|why| Refusal::new(StatusCode::BAD_REQUEST, why))
}

async fn npm_route(s: &Arc<Shared>, rest: &[&str], base: &str, peer: SocketAddr) -> Result<Response, Refusal> {
    // `@scope`, `name` form one name; then nothing (packument) or `-`, file.
    let (name, tail) = match rest {
        [scope, n, tail @ ..] if scope.starts_with('@') => (format!("{scope}/{n}"), tail),
        [n, tail @ ..] if *n != "-" => ((*n).to_owned(), tail),
        _ => return Err(Refusal::new(StatusCode::NOT_FOUND, "npm's own endpoints (/-/…, audits, search, login) are not served by the gateway")),
    };
    check_name(Ecosystem::Npm, &name)?;
    match tail {
        [] => {
            let Meta::Json(doc) = s.meta(Ecosystem::Npm, &name, true).await? else { return Err(internal()) };
            let mut doc = (*doc).clone();
            npm::rewrite(&mut doc, &name, base);
            Ok(json_response(&doc, "application/json"))
        }
        ["-", file] if file.ends_with(".tgz") => {
            let find = |m: &Meta| match m {
                Meta::Json(d) => npm::artifact(d, &name, file),
                Meta::Text(_) => None,
            };
            let a = s
                .find_artifact(Ecosystem::Npm, &name, find)
                .await?
                .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("no version of {name} has the tarball {file}")))?;
            Ok(download(s, a, peer).await)
        }
        _ => Err(Refusal::new(StatusCode::NOT_FOUND, format!("unknown npm path under {name}; packuments are /npm/NAME, tarballs /npm/NAME/-/FILE.tgz"))),
    }
}

async fn pypi_route(s: &Arc<Shared>, rest: &[&str], base: &str, accept: &str, peer: SocketAddr) -> Result<Response, Refusal> {
    match rest {
        ["simple"] => Err(Refusal::new(StatusCode::NOT_FOUND, "the full project list is not served; ask for /pypi/simple/PROJECT/")),
        ["simple", project] => {
            check_name(Ecosystem::Pypi, project)?;
            let normalized = Ecosystem::Pypi.normalize(project);
            let Meta::Json(doc) = s.meta(Ecosystem::Pypi, &normalized, true).await? else { return Err(internal()) };
            let page = pypi::for_client(&doc, &normalized, base);
            if accept.is_empty() || accept.contains(pypi::JSON_V1) || accept.contains("*/*") {
                Ok(json_response(&page, pypi::JSON_V1))
            } else {
                Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], pypi::html(&page, &normalized)).into_response())
            }
        }
        ["files", project, file] => {
            check_name(Ecosystem::Pypi, project)?;
            let normalized = Ecosystem::Pypi.normalize(project);
            let find = |m: &Meta| match m {
                Meta::Json(d) => pypi::artifact(d, &normalized, file),
                Meta::Text(_) => None,
            };
            let a = s
                .find_artifact(Ecosystem::Pypi, &normalized, find)
                .await?
                .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("{normalized} has no file {file}")))?;
            check_version(&a.package.version).map_err(|why| Refusal::new(StatusCode::BAD_REQUEST, why))?;
            Ok(download(s, a, peer).await)
        }
        _ => Err(Refusal::new(StatusCode::NOT_FOUND, "unknown PyPI path; pages are /pypi/simple/PROJECT/")),
    }
}

async fn cargo_route(s: &Arc<Shared>, rest: &[&str], base: &str, peer: SocketAddr) -> Result<Response, Refusal> {
    s.upstream(Ecosystem::Cargo)?;
    match rest {
        ["config.json"] => Ok(json_response(&cargo::config(base), "application/json")),
        ["dl", name, version, "download"] => {
            check_name(Ecosystem::Cargo, name)?;
            check_version(version).map_err(|why| Refusal::new(StatusCode::BAD_REQUEST, why))?;
            let dl = cargo_dl(s).await?;
            let find = |m: &Meta| match m {
                Meta::Text(t) => cargo::artifact(t, &dl, name, version),
                Meta::Json(_) => None,
            };
            let a = s
                .find_artifact(Ecosystem::Cargo, &name.to_ascii_lowercase(), find)
                .await?
                .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("the index has no version {version} of {name}")))?;
            Ok(download(s, a, peer).await)
        }
        [.., name] => {
            check_name(Ecosystem::Cargo, name)?;
            if rest.join("/") != cargo::index_path(name) {
                return Err(Refusal::new(StatusCode::NOT_FOUND, format!("{} is not the index path of {name} ({})", rest.join("/"), cargo::index_path(name))));
            }
            let key = name.to_ascii_lowercase();
            let Meta::Text(text) = s.meta(Ecosystem::Cargo, &key, true).await? else { return Err(internal()) };
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], (*text).clone()).into_response())
        }
        [] => Err(Refusal::new(StatusCode::NOT_FOUND, "the sparse index is /cargo/config.json and /cargo/PREFIX/NAME")),
    }
}

/// The upstream's `dl` template, from its `config.json` (fetched once).
async fn cargo_dl(s: &Shared) -> Result<String, Refusal> {
    let mut dl = s.cargo_dl.lock().await;
    if let Some(d) = dl.as_ref() {
        return Ok(d.clone());
    }
    let base = s.upstream(Ecosystem::Cargo)?;
    let url = format!("{base}/config.json");
    let f = s.fetcher.get(&url, "application/json").await.map_err(|e| fetch_refusal(&e))?;
    let v: Value = serde_json::from_slice(&f.body).map_err(|e| Refusal::new(StatusCode::BAD_GATEWAY, format!("{url}: not JSON: {e}")))?;
    let d = v.get("dl").and_then(Value::as_str).ok_or_else(|| Refusal::new(StatusCode::BAD_GATEWAY, format!("{url} has no \"dl\"")))?.to_owned();
    *dl = Some(d.clone());
    Ok(d)
}

fn internal() -> Refusal {
    Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "metadata of the wrong kind in the cache")
}

/// One rule that fired on an artifact.
#[derive(Clone, Debug, Serialize)]
struct Finding {
    rule: &'static str,
    action: Action,
    reason: String,
}

/// Fetches, checks, decides on and records one artifact, in a task of its
/// own, and answers with it or with the reason it is held back.
async fn download(s: &Arc<Shared>, a: Artifact, peer: SocketAddr) -> Response {
    let task = tokio::spawn(decide_and_record(Arc::clone(s), a, peer));
    match task.await {
        Ok(r) => r,
        Err(e) => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the download task failed: {e}")).into_response(),
    }
}

async fn decide_and_record(s: Arc<Shared>, a: Artifact, peer: SocketAddr) -> Response {
    let eco = a.package.ecosystem;
    let started = Instant::now();
    let fetched: Fetched = match s.fetcher.get(&a.url, "*/*").await {
        Ok(f) => f,
        Err(e) => {
            s.record_failure(eco, &a.package.name, Some(&a), &a.url, "artifact", &e).await;
            return fetch_refusal(&e).of(eco).into_response();
        }
    };
    let body = fetched.body.clone();
    let declared = a.declared.clone();
    let npm = eco == Ecosystem::Npm;
    let digests = match tokio::task::spawn_blocking(move || Digests::for_declared(&body, declared.as_ref(), npm)).await {
        Ok(d) => d,
        Err(e) => return Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, format!("hashing failed: {e}")).into_response(),
    };
    let purl = a.package.purl();
    let (prov, prov_error) = read_provenance(&s, &a, &digests).await;
    let findings = assess(&s, &a, &purl, &digests, &prov);
    let mut decision = findings.iter().map(|f| f.action).max().unwrap_or(Action::Allow);
    let sha = Digest(digests.sha256);
    let held = s.quarantine.get(&sha.to_string()).ok().flatten();
    let released = held.as_ref().and_then(|e| e.released.clone());
    let decision_name = match (decision, &released) {
        (Action::Quarantine, Some(_)) => {
            decision = Action::Warn;
            "released"
        }
        _ => decision.as_str(),
    };
    let status = if decision == Action::Quarantine { 403 } else { 200 };

    let matched = a.declared.as_ref().map(|d| digests.matches(d));
    let osv = s.osv.matches(&a.package);
    let mut o = s
        .observation(if decision == Action::Quarantine { "package_quarantined" } else { "package_downloaded" })
        .input(sha)
        // What was served is the output; a held artifact served nothing.
        .output(if decision == Action::Quarantine { zkaudit_collect::shape::empty_digest() } else { sha })
        .outcome(decision != Action::Quarantine)
        .field("package.type", eco.purl_type())
        .field("package.name", a.package.name.as_str())
        .field("package.version", a.package.version.as_str())
        .field("package.size", digests.size)
        .field("zkaudit.download.purl", purl.as_str())
        .field("file.name", a.file.as_str())
        .field("file.size", digests.size)
        .field("file.hash.sha256", hex::encode(digests.sha256))
        .field("url.full", fetched.url.as_str())
        .field("client.address", peer.ip().to_string())
        .field("http.response.status_code", status)
        .field("event.duration", started.elapsed().as_nanos() as u64)
        .field("zkaudit.download.digest_match", matched.map_or(Value::Null, Value::Bool))
        .field("zkaudit.download.decision", decision_name)
        .field("zkaudit.download.findings", serde_json::to_value(&findings).unwrap_or(Value::Null))
        .field("zkaudit.download.install_scripts", a.install_scripts.clone())
        .field("vulnerability.id", osv.iter().map(|m| m.id.clone()).collect::<Vec<_>>())
        .field("zkaudit.osv.malicious", osv.iter().any(|m| m.malicious()))
        .field("zkaudit.intoto.subject.name", purl.as_str())
        .field("zkaudit.intoto.subject.digest.sha256", hex::encode(digests.sha256))
        .fields(prov.fields());
    if let (Some(d), Some(sri)) = (digests.sha512, digests.sri_sha512()) {
        o = o.field("file.hash.sha512", hex::encode(d)).field("zkaudit.download.integrity", sri);
    }
    if let Some(d) = &a.declared {
        let (alg, value) = d.parts();
        o = o.field("zkaudit.download.declared.algorithm", alg).field("zkaudit.download.declared.value", value);
    }
    if let Some(p) = a.published {
        o = o.field("zkaudit.download.published", p.format(&Rfc3339).unwrap_or_default());
    }
    if let Some(e) = &prov_error {
        o = o.field("zkaudit.provenance.error", e.as_str());
    }
    if let Some(r) = &released {
        o = o.field("zkaudit.quarantine.released_by", r.by.as_str()).field("zkaudit.quarantine.release_event", r.event.to_string()).parent(r.event);
    }
    if let Some(h) = &held {
        o = o.parent(h.event);
    }
    // Recorded durably before anything is served: an artifact whose event
    // could not be kept is not served at all.
    let Some(event) = s.record_durably(o).await else {
        return Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the download could not be recorded, so it is not served; try again").of(eco).into_response();
    };
    s.downloads.fetch_add(1, Ordering::Relaxed);

    if decision == Action::Quarantine {
        s.quarantined.fetch_add(1, Ordering::Relaxed);
        let reasons: Vec<String> = findings.iter().filter(|f| f.action == Action::Quarantine).map(|f| format!("{}: {}", f.rule, f.reason)).collect();
        let entry = quarantine::Entry {
            sha256: sha,
            purl: purl.clone(),
            package: a.package.clone(),
            file: a.file.clone(),
            size: digests.size,
            url: fetched.url.clone(),
            reasons: reasons.clone(),
            event,
            at: OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
            released: None,
        };
        if let Err(e) = s.quarantine.put(&entry, &fetched.body) {
            eprintln!("registry-gateway: keeping {purl} in quarantine failed: {e}");
        }
        let msg = format!(
            "{purl} ({}) is quarantined: {}; event {event}; an admin can release it with `zkaudit quarantine release {sha}`",
            a.file,
            reasons.join("; ")
        );
        return Refusal::new(StatusCode::FORBIDDEN, msg).of(eco).into_response();
    }
    s.served.fetch_add(1, Ordering::Relaxed);
    let mut resp = Response::new(Body::from(fetched.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    if let Ok(v) = HeaderValue::from_str(&event.to_string()) {
        h.insert("x-zkaudit-event", v);
    }
    resp
}

/// Fetches and reads the artifact's provenance, if the registry publishes
/// any; the second value says why it could not be read.
async fn read_provenance(s: &Shared, a: &Artifact, d: &Digests) -> (Provenance, Option<String>) {
    let Some(url) = &a.provenance_url else { return (Provenance::default(), None) };
    let body: Bytes = match s.fetcher.get(url, "application/json").await {
        Ok(f) => f.body,
        Err(FetchError::Status { status: 404, .. }) => return (Provenance::default(), None),
        Err(e) => return (Provenance::default(), Some(e.to_string())),
    };
    // Verification is a few ms of signature checks: off the async workers.
    let (eco, sigstore, sha256, sha512) = (a.package.ecosystem, s.sigstore.clone(), d.sha256, d.sha512);
    let read = tokio::task::spawn_blocking(move || match eco {
        Ecosystem::Npm => match &sha512 {
            Some(sha512) => provenance::from_npm(&body, sha512, &sigstore),
            None => Err("no SHA-512 was computed to match the attestations' subjects".into()),
        },
        Ecosystem::Pypi => provenance::from_pep740(&body, &sha256, &sigstore),
        Ecosystem::Cargo => Ok(Provenance::default()),
    })
    .await;
    match read {
        Ok(Ok(p)) => (p, None),
        Ok(Err(e)) => (Provenance::default(), Some(format!("{url}: {e}"))),
        Err(e) => (Provenance::default(), Some(format!("{url}: reading the provenance failed: {e}"))),
    }
}

/// The rules of the policy that fire on this artifact.
fn assess(s: &Shared, a: &Artifact, purl: &str, d: &Digests, prov: &Provenance) -> Vec<Finding> {
    let on = &s.policy.on;
    let mut out = Vec::new();
    let mut add = |rule, action, reason: String| out.push(Finding { rule, action, reason });
    if let Some(decl) = &a.declared {
        if !d.matches(decl) {
            let (alg, value) = decl.parts();
            add(
                "digest_mismatch",
                on.digest_mismatch,
                format!("the bytes fetched (sha256 {}) do not match the registry's {alg} {value}", hex::encode(d.sha256)),
            );
        }
    }
    for m in s.osv.matches(&a.package) {
        let summary = m.summary.clone().unwrap_or_default();
        if m.malicious() {
            add("malicious", on.malicious, format!("OSV {} reports this version as malicious: {summary}", m.id));
        } else {
            add("vulnerable", on.vulnerable, format!("OSV {} affects this version: {summary}", m.id));
        }
    }
    if !prov.invalid.is_empty() {
        add("invalid_provenance", on.invalid_provenance, format!("provenance about these bytes does not verify: {}", prov.invalid.join("; ")));
    }
    if s.policy.provenance.require.iter().any(|p| purl_matches(p, purl)) && !prov.verified() {
        add("missing_provenance", on.missing_provenance, format!("verified provenance is required for {purl}: {}", prov.verification()));
    }
    if s.policy.age.min_hours > 0 {
        let min = time::Duration::hours(s.policy.age.min_hours as i64);
        match a.published {
            Some(p) if OffsetDateTime::now_utc() - p >= min => {}
            Some(p) => {
                add("too_new", on.too_new, format!("published {} , less than {} hours ago", p.format(&Rfc3339).unwrap_or_default(), s.policy.age.min_hours))
            }
            None => add(
                "too_new",
                on.too_new,
                format!("the registry gives no publication time, so the {}-hour minimum age cannot be checked", s.policy.age.min_hours),
            ),
        }
    }
    if !a.install_scripts.is_empty() {
        add("install_scripts", on.install_scripts, format!("npm runs install scripts: {}", a.install_scripts.join(", ")));
    }
    if s.policy.deny.packages.iter().any(|p| purl_matches(p, purl)) {
        add("denied", on.denied, format!("{purl} is on the deny list"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments() {
        assert_eq!(segments("/npm/@types%2fnode").ok().unwrap(), vec!["npm", "@types", "node"]);
        assert_eq!(segments("/pypi/simple/six/").ok().unwrap(), vec!["pypi", "simple", "six"]);
        for bad in ["/npm/..", "/npm/%2e%2e/x", "/npm/a%2fb", "/npm//x", "/npm/%00", "/pypi/simple/a%5cb"] {
            assert!(segments(bad).is_err(), "{bad}");
        }
    }
}
