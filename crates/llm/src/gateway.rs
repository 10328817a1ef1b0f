//! The gateway: an OpenAI-compatible HTTP server in front of an upstream
//! provider. Each call is authenticated with a zkaudit token, checked
//! against the [`Policy`], forwarded, filtered on the way back, and
//! recorded as one `llm_call` event through the collector SDK's sink, with
//! salted commitments to the request and the response. Calls are recorded
//! whatever happens to them: refused, failed upstream, broken mid-stream,
//! or abandoned by the client.
//!
//! Each call runs in its own task, apart from the connection that made it,
//! so a client that goes away cannot stop its call from being recorded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use zkaudit_collect::{Destination, Observation, OcsfClass, Sink, SinkOptions};
use zkaudit_event::{Digest, Layer, Timestamp};
use zkaudit_jobs::{Scope, Store, Token, TokenCache};

use crate::api::{check_request, request_texts, response_texts, ApiError, Operation, RequestFacts};
use crate::commit::{CallStore, Opening, StoredCall, REQUEST_TAG, RESPONSE_TAG};
use crate::pii::{Entity, Scanner};
use crate::policy::{Action, Policy};
use crate::stream::{Counts, Guard, SseFilter, Step};

/// The collector name of the gateway's events (`observer.type`).
pub const COLLECTOR: &str = "llm-gateway";

/// Largest upstream response body read whole, in bytes.
const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// How often the policy file is looked at for changes.
const POLICY_POLL: Duration = Duration::from_secs(2);

/// How the gateway is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The upstream's base URL as OpenAI clients take it, e.g.
    /// `http://127.0.0.1:9000/v1`; operation paths (`/chat/completions`)
    /// are appended. Plain HTTP.
    pub upstream: String,
    /// The upstream's API key, sent as a bearer token; never recorded.
    pub upstream_key: Option<String>,
    /// The policy file (`None`: the defaults, which allow no model).
    pub policy_file: Option<PathBuf>,
    /// Where events go.
    pub destination: Destination,
    /// The private call store (salts and contents).
    pub call_store: PathBuf,
    /// The job store whose tokens callers present (a SQLite path or
    /// `postgres://` URL; `zkaudit token create` makes them).
    pub tokens: String,
}

/// Why the gateway could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The policy file is not valid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The call store failed.
    #[error(transparent)]
    Store(#[from] crate::commit::StoreError),
    /// The token store failed.
    #[error("token store: {0}")]
    Tokens(#[from] zkaudit_jobs::Error),
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] zkaudit_collect::SinkError),
    /// The upstream URL is not usable.
    #[error("--upstream {url}: {why}")]
    Upstream {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The gateway's own task failed (a panic in it).
    #[error("the gateway's task failed: {0}")]
    Task(String),
    /// Listening failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// What a gateway run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Calls recorded (each one `llm_call` event).
    pub calls: u64,
    /// Policy versions recorded (`llm_policy` events).
    pub policies: u64,
    /// Calls whose salts and contents could not be stored.
    pub store_errors: u64,
    /// What the sink did.
    pub sink: zkaudit_collect::Report,
}

/// The policy in force, with its rate limiters and event.
struct Active {
    policy: Policy,
    digest: Digest,
    /// The digest of the `llm_policy` event that recorded it.
    event: Digest,
    requests: Option<DefaultKeyedRateLimiter<String>>,
    tokens: Option<DefaultKeyedRateLimiter<String>>,
}

impl Active {
    fn new(policy: Policy, event: Digest) -> Self {
        let limiter = |n: u32| NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Active {
            digest: policy.digest(),
            requests: limiter(policy.rate_limits.requests_per_minute),
            tokens: limiter(policy.rate_limits.tokens_per_minute),
            policy,
            event,
        }
    }
}

struct Shared {
    upstream: String,
    upstream_auth: Option<HeaderValue>,
    client: Client<HttpConnector, Full<Bytes>>,
    policy: RwLock<Arc<Active>>,
    scanner: Scanner,
    sink: Mutex<Option<Sink>>,
    stored: std::sync::mpsc::SyncSender<StoredCall>,
    tokens: Arc<TokenCache>,
    instance: String,
    start_event: Digest,
    seq: AtomicU64,
    policies: AtomicU64,
    store_errors: Arc<AtomicU64>,
}

impl Shared {
    fn record(&self, o: Observation) -> Option<Digest> {
        let event = o.into_event();
        let mut sink = self.sink.lock().ok()?;
        match sink.as_mut()?.send(&event) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("llm-gateway: recording a {} event failed: {e}", event.kind);
                None
            }
        }
    }

    fn active(&self) -> Arc<Active> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Records `policy` as an `llm_policy` event and puts it in force.
    fn install(&self, policy: Policy, source: &str) {
        let previous = self.policy.read().ok().map(|p| p.digest);
        let mut o = Observation::new("llm_policy", Layer::Application, OcsfClass::ApiActivity, 3, "policy_loaded")
            .input(policy.digest())
            .parent(self.start_event)
            .field("service.instance.id", self.instance.as_str())
            .field("zkaudit.llm.policy.digest", policy.digest().to_string())
            .field("zkaudit.llm.policy.source", source)
            .field("zkaudit.llm.policy.json", policy.canonical_json())
            .field("gen_ai.provider.name", policy.provider.as_str())
            .field("zkaudit.llm.models.allow", policy.models.allow.clone())
            .field("zkaudit.llm.rate_limits.requests_per_minute", policy.rate_limits.requests_per_minute)
            .field("zkaudit.llm.rate_limits.tokens_per_minute", policy.rate_limits.tokens_per_minute);
        for e in Entity::ALL {
            o = o.field(&format!("zkaudit.llm.pii.{e}"), policy.pii.action(e).as_str());
        }
        if let Some(p) = previous {
            o = o.field("zkaudit.llm.policy.previous", p.to_string());
        }
        let event = self.record(o.outcome(true)).unwrap_or(Digest([0; 32]));
        self.policies.fetch_add(1, Ordering::Relaxed);
        let active = Arc::new(Active::new(policy, event));
        match self.policy.write() {
            Ok(mut p) => *p = active,
            Err(p) => *p.into_inner() = active,
        }
    }
}

/// A running gateway.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<Report, GatewayError>>,
}

impl Running {
    /// Stops accepting calls, waits for the calls in flight to be
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

/// Starts the gateway: loads the policy, opens the stores and the sink,
/// records `llm_gateway_start` and the policy, and serves until
/// [`Running::stop`].
///
/// # Errors
/// [`GatewayError`] if anything it needs is not there.
pub async fn start(config: Config) -> Result<Running, GatewayError> {
    let policy = match &config.policy_file {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    };
    if !config.upstream.starts_with("http://") {
        return Err(GatewayError::Upstream {
            url: config.upstream.clone(),
            why: "the gateway speaks plain HTTP to its upstream (http://…); reach an https provider through a local TLS proxy".into(),
        });
    }
    let upstream_auth = match &config.upstream_key {
        Some(k) => Some(
            HeaderValue::from_str(&format!("Bearer {k}"))
                .map_err(|_| GatewayError::Upstream { url: config.upstream.clone(), why: "the upstream key is not a valid header value".into() })?,
        ),
        None => None,
    };
    let tokens = Arc::new(Store::open(&config.tokens)?);
    let mut store = CallStore::open(&config.call_store)?;
    let mut opts = SinkOptions::new(COLLECTOR, Layer::Application);
    opts.linger = Duration::from_millis(50);
    let sink = Sink::open(config.destination.clone(), opts)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|source| GatewayError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| GatewayError::Listen { addr: config.listen, source })?;

    let (stored, stored_rx) = std::sync::mpsc::sync_channel::<StoredCall>(1 << 16);
    let store_errors = Arc::new(AtomicU64::new(0));
    let errors = Arc::clone(&store_errors);
    let store_thread = std::thread::spawn(move || {
        while let Ok(first) = stored_rx.recv() {
            let mut batch = vec![first];
            while let (true, Ok(c)) = (batch.len() < 1024, stored_rx.try_recv()) {
                batch.push(c);
            }
            if let Err(e) = store.put(&batch) {
                errors.fetch_add(batch.len() as u64, Ordering::Relaxed);
                eprintln!("llm-gateway: storing {} calls' salts failed: {e}", batch.len());
            }
        }
    });

    let instance = hex::encode(rand::random::<[u8; 8]>());
    let mut shared = Shared {
        upstream: config.upstream.trim_end_matches('/').to_owned(),
        upstream_auth,
        client: Client::builder(hyper_util::rt::TokioExecutor::new()).pool_max_idle_per_host(256).build_http(),
        policy: RwLock::new(Arc::new(Active::new(policy.clone(), Digest([0; 32])))),
        scanner: Scanner::new(),
        sink: Mutex::new(Some(sink)),
        stored,
        tokens: Arc::new(TokenCache::new(tokens)),
        instance: instance.clone(),
        start_event: Digest([0; 32]),
        seq: AtomicU64::new(0),
        policies: AtomicU64::new(0),
        store_errors,
    };
    let start = Observation::new("llm_gateway_start", Layer::Application, OcsfClass::ApiActivity, 99, "gateway_started")
        .field("service.instance.id", instance.as_str())
        .field("server.address", addr.to_string())
        .field("zkaudit.llm.upstream", config.upstream.as_str())
        .outcome(true);
    shared.start_event = shared.record(start).unwrap_or(Digest([0; 32]));
    let source = config.policy_file.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    if policy.models.allow.is_empty() {
        eprintln!("llm-gateway: the policy ({source}) allows no model: every call will be refused with 403; list models under [models] allow");
    }
    shared.install(policy, &source);
    let shared = Arc::new(shared);

    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(Arc::clone(&shared));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let watcher = config.policy_file.clone().map(|p| tokio::spawn(watch_policy(Arc::clone(&shared), p)));
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        let result = served.await;
        if let Some(w) = watcher {
            w.abort();
        }
        // Calls still running hold a reference each; wait for them to record.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Arc::strong_count(&shared) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let calls = shared.seq.load(Ordering::SeqCst);
        let stop = Observation::new("llm_gateway_stop", Layer::Application, OcsfClass::ApiActivity, 99, "gateway_stopped")
            .parent(shared.start_event)
            .field("service.instance.id", shared.instance.as_str())
            .field("zkaudit.llm.calls", calls)
            .outcome(result.is_ok());
        shared.record(stop);
        let sink = shared.sink.lock().ok().and_then(|mut s| s.take());
        let policies = shared.policies.load(Ordering::Relaxed);
        let store_errors = Arc::clone(&shared.store_errors);
        drop(shared);
        let sink_report = match sink {
            Some(s) => tokio::task::spawn_blocking(move || s.finish()).await.map_err(|e| GatewayError::Task(e.to_string()))??,
            None => zkaudit_collect::Report::default(),
        };
        let _ = tokio::task::spawn_blocking(move || store_thread.join()).await;
        result.map_err(|source| GatewayError::Listen { addr, source })?;
        Ok(Report { calls, policies, store_errors: store_errors.load(Ordering::Relaxed), sink: sink_report })
    });
    Ok(Running { addr, stop: Some(stop_tx), task })
}

/// Reloads the policy when its file changes; a change is recorded before
/// it takes effect. An invalid new version is refused (the old stays).
async fn watch_policy(shared: Arc<Shared>, path: PathBuf) {
    let stamp = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = stamp(&path);
    loop {
        tokio::time::sleep(POLICY_POLL).await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        match Policy::load(&path) {
            Ok(p) if p.digest() == shared.active().digest => {}
            Ok(p) => shared.install(p, &path.display().to_string()),
            Err(e) => eprintln!("llm-gateway: keeping the policy in force; the changed file is not valid: {e}"),
        }
    }
}

async fn chat(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    call(s, Operation::Chat, headers, body).await
}

async fn completions(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    call(s, Operation::TextCompletion, headers, body).await
}

async fn embeddings(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    call(s, Operation::Embeddings, headers, body).await
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown endpoint; the gateway serves /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models",
    )
}

/// The caller's token: 401 without a known one, 403 without the submit scope.
async fn authenticate(s: &Shared, headers: &HeaderMap) -> Result<Token, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", m).code("invalid_api_key");
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| unauthorized("no API key given: send `Authorization: Bearer <zkaudit token>`"))?;
    let text = value.to_str().map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
    let secret = match text.split_once(' ') {
        Some((scheme, secret)) if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() => secret.trim().to_owned(),
        _ => return Err(unauthorized("expected `Authorization: Bearer <zkaudit token>`")),
    };
    let token = match s.tokens.cached(&secret) {
        Some(t) => t,
        None => {
            let tokens = Arc::clone(&s.tokens);
            tokio::task::spawn_blocking(move || tokens.lookup(&secret))
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()))?
                .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", format!("token store: {e}")))?
        }
    };
    let token = token.ok_or_else(|| unauthorized("unknown or revoked token"))?;
    if !token.scope.allows(Scope::Submit) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "permission_error", format!("token {} has scope `{}`; calls need `submit`", token.id, token.scope)));
    }
    Ok(token)
}

/// `GET /v1/models`: the upstream's list, less the models the policy does not allow.
async fn models(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticate(&s, &headers).await {
        return e.into_response();
    }
    let mut req = Request::get(format!("{}/models", s.upstream));
    if let Some(a) = &s.upstream_auth {
        req = req.header(header::AUTHORIZATION, a.clone());
    }
    let Ok(req) = req.body(Full::new(Bytes::new())) else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "building the upstream request").into_response();
    };
    let resp = match s.client.request(req).await {
        Ok(r) => r,
        Err(e) => return upstream_unreachable(&e).into_response(),
    };
    let status = resp.status();
    let bytes = match Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ApiError::new(StatusCode::BAD_GATEWAY, "server_error", format!("reading the upstream's answer: {e}")).into_response(),
    };
    let Ok(mut list) = serde_json::from_slice::<Value>(&bytes) else {
        return ApiError::new(StatusCode::BAD_GATEWAY, "server_error", "the upstream's model list is not JSON").into_response();
    };
    let active = s.active();
    if let Some(data) = list.get_mut("data").and_then(Value::as_array_mut) {
        data.retain(|m| m.get("id").and_then(Value::as_str).is_some_and(|id| active.policy.model_allowed(id)));
    }
    (status, axum::Json(list)).into_response()
}

fn upstream_unreachable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "server_error", format!("the upstream could not be reached: {e}")).code("upstream_unreachable")
}

/// How a call ended (`zkaudit.llm.completion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Completion {
    /// The whole answer was handed to the client.
    Complete,
    /// The gateway refused the call (bad request, model, rate limit, PII in the prompt).
    Rejected,
    /// A PII `block` rule stopped the response.
    Blocked,
    /// The upstream answered with an error status.
    UpstreamError,
    /// The upstream could not be reached.
    UpstreamUnreachable,
    /// The upstream's answer broke off or was malformed.
    UpstreamBroken,
    /// The client went away before the answer was delivered.
    ClientAborted,
}

impl Completion {
    fn as_str(self) -> &'static str {
        match self {
            Completion::Complete => "complete",
            Completion::Rejected => "rejected",
            Completion::Blocked => "blocked",
            Completion::UpstreamError => "upstream_error",
            Completion::UpstreamUnreachable => "upstream_unreachable",
            Completion::UpstreamBroken => "upstream_broken",
            Completion::ClientAborted => "client_aborted",
        }
    }
}

/// Everything one call's event records, filled in as the call goes.
struct CallRecord {
    id: String,
    seq: u64,
    op: Operation,
    token: Token,
    policy: Arc<Active>,
    at: Timestamp,
    started: Instant,
    request: Value,
    facts: Option<RequestFacts>,
    decisions: Vec<String>,
    pii: Counts,
    status: u16,
    completion: Completion,
    response: Value,
    response_id: Option<String>,
    response_model: Option<String>,
    finish_reasons: Vec<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    first_token_ns: Option<u64>,
    stream: bool,
    error: Option<String>,
}

impl CallRecord {
    fn decide(&mut self, rule: &str, decision: &str) {
        self.decisions.push(format!("{rule}={decision}"));
    }

    /// Ends the call as refused with `e` (the response is the error).
    fn refuse(&mut self, e: &ApiError, completion: Completion) {
        self.status = e.status.as_u16();
        self.completion = completion;
        self.response = json!({"status": self.status, "body": e.body()});
        self.error = Some(e.message.clone());
    }

    fn finish(self, s: &Shared) {
        let request = Opening::new(&self.request);
        let response = Opening::new(&self.response);
        let mut o = Observation::new("llm_call", Layer::Application, OcsfClass::ApiActivity, 1, self.op.name())
            .at(self.at)
            .input(request.commitment(REQUEST_TAG))
            .output(response.commitment(RESPONSE_TAG))
            .parent(self.policy.event)
            .field("event.id", self.id.as_str())
            .field("event.duration", u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
            .field("service.instance.id", s.instance.as_str())
            .field("zkaudit.llm.seq", self.seq)
            .field("user.id", self.token.id.as_str())
            .field("zkaudit.tenant", self.token.tenant.as_str())
            .field("gen_ai.operation.name", self.op.name())
            .field("gen_ai.provider.name", self.policy.policy.provider.as_str())
            .field("url.path", self.op.path())
            .field("http.response.status_code", self.status)
            .field("zkaudit.llm.stream", self.stream)
            .field("zkaudit.llm.completion", self.completion.as_str())
            .field("zkaudit.llm.policy.digest", self.policy.digest.to_string())
            .field("zkaudit.llm.policy.decisions", self.decisions.clone())
            .field("zkaudit.llm.pii.findings", self.pii.iter().map(|((place, e, a), n)| format!("{place}/{e}/{n}/{}", a.as_str())).collect::<Vec<_>>())
            .outcome(self.completion == Completion::Complete && self.status < 400);
        if let Some(f) = &self.facts {
            o = o.field("gen_ai.request.model", f.model.as_str());
            if let Some(t) = f.temperature {
                o = o.field("gen_ai.request.temperature", t);
            }
            if let Some(m) = f.max_tokens {
                o = o.field("gen_ai.request.max_tokens", m);
            }
            if let Some(seed) = f.seed {
                o = o.field("gen_ai.request.seed", seed);
            }
        }
        for (key, v) in [("gen_ai.response.model", &self.response_model), ("gen_ai.response.id", &self.response_id), ("error.message", &self.error)] {
            if let Some(v) = v {
                o = o.field(key, v.as_str());
            }
        }
        if !self.finish_reasons.is_empty() {
            o = o.field("gen_ai.response.finish_reasons", self.finish_reasons.clone());
        }
        if let Some(n) = self.input_tokens {
            o = o.field("gen_ai.usage.input_tokens", n);
        }
        if let Some(n) = self.output_tokens {
            o = o.field("gen_ai.usage.output_tokens", n);
        }
        if let Some(ns) = self.first_token_ns {
            o = o.field("zkaudit.llm.time_to_first_token_ns", ns);
        }
        if s.stored.send(StoredCall { call_id: self.id.clone(), request, response }).is_err() {
            s.store_errors.fetch_add(1, Ordering::Relaxed);
        }
        s.record(o);
    }
}

/// One POST call: authenticated here, then run in its own task.
async fn call(s: Arc<Shared>, op: Operation, headers: HeaderMap, body: Body) -> Response {
    let token = match authenticate(&s, &headers).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let seq = s.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let record = CallRecord {
        id: format!("call_{}", hex::encode(rand::random::<[u8; 12]>())),
        seq,
        op,
        token,
        policy: s.active(),
        at: Timestamp::now(),
        started: Instant::now(),
        request: json!({"method": "POST", "path": op.path()}),
        facts: None,
        decisions: Vec::new(),
        pii: Counts::new(),
        status: 0,
        completion: Completion::Complete,
        response: Value::Null,
        response_id: None,
        response_model: None,
        finish_reasons: Vec::new(),
        input_tokens: None,
        output_tokens: None,
        first_token_ns: None,
        stream: false,
        error: None,
    };
    let (tx, rx) = oneshot::channel();
    tokio::spawn(run_call(s, record, body, tx));
    match rx.await {
        Ok(r) => r,
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the call ended without an answer").into_response(),
    }
}

/// Sends `response` to the client with the call's ID in
/// `x-zkaudit-call-id`; notes an abort if the client is gone.
fn answer(rec: &mut CallRecord, tx: oneshot::Sender<Response>, mut response: Response) {
    if let Ok(v) = HeaderValue::from_str(&rec.id) {
        response.headers_mut().insert("x-zkaudit-call-id", v);
    }
    if tx.send(response).is_err() && rec.completion == Completion::Complete {
        rec.completion = Completion::ClientAborted;
    }
}

async fn run_call(s: Arc<Shared>, mut rec: CallRecord, body: Body, tx: oneshot::Sender<Response>) {
    let mut tx = Some(tx);
    let response = prepare_and_forward(&s, &mut rec, body, &mut tx).await;
    if let (Some(response), Some(tx)) = (response, tx) {
        answer(&mut rec, tx, response);
    }
    rec.finish(&s);
}

/// Ends the call as refused with `e`; the response to send.
fn refuse(rec: &mut CallRecord, e: ApiError, c: Completion) -> Option<Response> {
    rec.refuse(&e, c);
    Some(e.into_response())
}

/// Checks and forwards the call. Returns the response to send, or `None`
/// when it was sent already through `tx` (a stream, which it then pumps
/// to the end).
async fn prepare_and_forward(s: &Shared, rec: &mut CallRecord, body: Body, tx: &mut Option<oneshot::Sender<Response>>) -> Option<Response> {
    let policy = Arc::clone(&rec.policy);
    let limit = policy.policy.limits.max_request_bytes;
    let raw = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_large = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            rec.request["error"] = json!(if too_large { format!("body over {limit} bytes (not kept)") } else { format!("body unreadable: {e}") });
            let err = if too_large {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("the request body is larger than {limit} bytes"))
                    .code("request_too_large")
            } else {
                ApiError::invalid(None, format!("the request body could not be read: {e}"))
            };
            return refuse(rec, err, if too_large { Completion::Rejected } else { Completion::ClientAborted });
        }
    };
    let mut body: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => {
            rec.request["body_text"] = json!(String::from_utf8_lossy(&raw));
            let err = ApiError::invalid(None, format!("the request body is not valid JSON: {e} (line {}, column {})", e.line(), e.column()));
            return refuse(rec, err, Completion::Rejected);
        }
    };
    rec.request["body"] = body.clone();
    let facts = match check_request(rec.op, &body) {
        Ok(f) => f,
        Err(e) => return refuse(rec, e, Completion::Rejected),
    };
    rec.stream = facts.stream;
    rec.facts = Some(facts.clone());

    if !policy.policy.model_allowed(&facts.model) {
        rec.decide("model_allowlist.request", "deny");
        let e =
            ApiError::new(StatusCode::FORBIDDEN, "permission_error", format!("the policy does not allow model `{}`", facts.model)).code("model_not_allowed");
        return refuse(rec, ApiError { param: Some("model".into()), ..e }, Completion::Rejected);
    }
    rec.decide("model_allowlist.request", "allow");

    if let Some(l) = &policy.requests {
        if let Err(not_until) = l.check_key(&rec.token.id) {
            rec.decide("rate_limit.requests", "deny");
            let e = rate_limited(
                format!("token {} is over {} requests per minute", rec.token.id, policy.policy.rate_limits.requests_per_minute),
                wait_of(&not_until),
            );
            return refuse(rec, e, Completion::Rejected);
        }
        rec.decide("rate_limit.requests", "allow");
    }
    if let Some(l) = &policy.tokens {
        // The prompt at 4 bytes a token, plus the most it may generate.
        let estimate = (raw.len() / 4) as u64 + u64::from(facts.max_tokens.unwrap_or(0));
        let n = NonZeroU32::new(u32::try_from(estimate.max(1)).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let verdict = match l.check_key_n(&rec.token.id, n) {
            Ok(Ok(())) => None,
            Ok(Err(not_until)) => Some(wait_of(&not_until)),
            Err(_) => Some(Duration::from_secs(60)),
        };
        if let Some(wait) = verdict {
            rec.decide("rate_limit.tokens", "deny");
            let e = rate_limited(
                format!("token {} is over {} tokens per minute (this call: about {estimate})", rec.token.id, policy.policy.rate_limits.tokens_per_minute),
                wait,
            );
            return refuse(rec, e, Completion::Rejected);
        }
        rec.decide("rate_limit.tokens", "allow");
    }

    if policy.policy.pii.scan_requests {
        let mut guard = Guard::new(&s.scanner, policy.policy.pii, "request");
        let blocked = guard.apply(|each| request_texts(rec.op, &mut body, each));
        rec.pii = guard.counts;
        if let Some(entity) = blocked {
            rec.decide("pii.request", "block");
            let e = ApiError::invalid(None, format!("the request was refused by policy: it contains {entity}")).code("pii_blocked");
            return refuse(rec, ApiError { kind: "policy_violation", ..e }, Completion::Rejected);
        }
        rec.decide("pii.request", if rec.pii.keys().any(|(_, _, a)| *a == Action::Redact) { "redact" } else { "allow" });
    }

    if facts.stream {
        // Always ask for usage, so a streamed call is never recorded without it.
        if let Some(o) = body.as_object_mut() {
            let so = o.entry("stream_options").or_insert_with(|| json!({}));
            if let Some(so) = so.as_object_mut() {
                so.insert("include_usage".into(), Value::Bool(true));
            }
        }
    }
    let mut req = Request::post(format!("{}{}", s.upstream, rec.op.path().trim_start_matches("/v1"))).header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = &s.upstream_auth {
        req = req.header(header::AUTHORIZATION, a.clone());
    }
    let upstream_body = serde_json::to_vec(&body).unwrap_or_default();
    let Ok(req) = req.body(Full::new(Bytes::from(upstream_body))) else {
        let e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "building the upstream request");
        return refuse(rec, e, Completion::UpstreamUnreachable);
    };
    let resp = match s.client.request(req).await {
        Ok(r) => r,
        Err(e) => return refuse(rec, upstream_unreachable(&e), Completion::UpstreamUnreachable),
    };
    let status = resp.status();
    rec.status = status.as_u16();
    let is_sse = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/event-stream"));
    if facts.stream && status.is_success() && is_sse {
        if let Some(tx) = tx.take() {
            pump_stream(s, rec, resp.into_body(), tx, &policy).await;
        }
        return None;
    }
    let bytes = match Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let err = ApiError::new(StatusCode::BAD_GATEWAY, "server_error", format!("the upstream's answer broke off: {e}")).code("upstream_broken");
            return refuse(rec, err, Completion::UpstreamBroken);
        }
    };
    let Ok(mut answer_body) = serde_json::from_slice::<Value>(&bytes) else {
        let err = ApiError::new(StatusCode::BAD_GATEWAY, "server_error", format!("the upstream answered HTTP {status} with a body that is not JSON"))
            .code("upstream_broken");
        return refuse(rec, err, Completion::UpstreamBroken);
    };
    if !status.is_success() {
        rec.completion = Completion::UpstreamError;
        rec.error = answer_body.pointer("/error/message").and_then(Value::as_str).map(str::to_owned);
        rec.response = json!({"status": rec.status, "body": answer_body});
        return Some((status, axum::Json(answer_body)).into_response());
    }
    rec.response_id = answer_body.get("id").and_then(Value::as_str).map(str::to_owned);
    rec.response_model = answer_body.get("model").and_then(Value::as_str).map(str::to_owned);
    rec.input_tokens = answer_body.pointer("/usage/prompt_tokens").and_then(Value::as_u64);
    rec.output_tokens = answer_body.pointer("/usage/completion_tokens").and_then(Value::as_u64);
    rec.finish_reasons = answer_body
        .get("choices")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("finish_reason").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default();
    rec.first_token_ns = Some(u64::try_from(rec.started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    if let Some(e) = served_model_refused(rec, &policy) {
        return refuse(rec, e, Completion::Blocked);
    }
    if policy.policy.pii.scan_responses {
        let mut guard = Guard::new(&s.scanner, policy.policy.pii, "response");
        let blocked = guard.apply(|each| response_texts(&mut answer_body, each));
        merge(&mut rec.pii, guard.counts);
        if let Some(entity) = blocked {
            rec.decide("pii.response", "block");
            let e = ApiError::invalid(None, format!("the response was withheld by policy: it contained {entity}")).code("pii_blocked");
            return refuse(rec, ApiError { kind: "policy_violation", ..e }, Completion::Blocked);
        }
        rec.decide("pii.response", if rec.pii.keys().any(|(p, _, a)| *p == "response" && *a == Action::Redact) { "redact" } else { "allow" });
    }
    rec.response = json!({"status": rec.status, "body": answer_body});
    Some((status, axum::Json(answer_body)).into_response())
}

fn merge(into: &mut Counts, from: Counts) {
    for (k, n) in from {
        *into.entry(k).or_default() += n;
    }
}

/// Checks the model the upstream says it served against the allowlist.
fn served_model_refused(rec: &mut CallRecord, policy: &Active) -> Option<ApiError> {
    let served = rec.response_model.clone()?;
    if policy.policy.model_allowed(&served) {
        rec.decide("model_allowlist.response", "allow");
        return None;
    }
    rec.decide("model_allowlist.response", "deny");
    Some(
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            format!("the upstream served model `{served}`, which the policy does not allow; its answer was withheld"),
        )
        .code("model_not_allowed"),
    )
}

/// How long until a limiter that said no would say yes.
fn wait_of(n: &governor::NotUntil<<governor::clock::DefaultClock as governor::clock::Clock>::Instant>) -> Duration {
    n.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()))
}

fn rate_limited(message: String, wait: Duration) -> ApiError {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message).code("rate_limit_exceeded");
    e.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
    e
}

/// Streams the upstream's events to the client through the PII filter.
async fn pump_stream(s: &Shared, rec: &mut CallRecord, mut upstream: hyper::body::Incoming, tx: oneshot::Sender<Response>, policy: &Active) {
    let (client_tx, client_rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let stream = futures_util::stream::unfold(client_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    answer(rec, tx, response);
    let guard = policy.policy.pii.scan_responses.then(|| Guard::new(&s.scanner, policy.policy.pii, "response"));
    let include_usage = rec.facts.as_ref().is_some_and(|f| f.include_usage);
    let mut filter = SseFilter::new(guard, include_usage);
    let mut ended = None;
    while rec.completion == Completion::Complete && ended.is_none() {
        let frame = tokio::select! {
            f = upstream.frame() => f,
            _ = client_tx.closed() => { rec.completion = Completion::ClientAborted; break; }
        };
        let data = match frame {
            None => {
                if !filter.facts.done {
                    ended = Some(Completion::UpstreamBroken);
                    rec.error = Some("the upstream's stream ended before [DONE]".into());
                }
                break;
            }
            Some(Err(e)) => {
                rec.error = Some(format!("the upstream's stream broke: {e}"));
                ended = Some(Completion::UpstreamBroken);
                break;
            }
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        let step = filter.feed(&data);
        if rec.first_token_ns.is_none() && filter.facts.first_token_seen {
            rec.first_token_ns = Some(u64::try_from(rec.started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        let (bytes, stop) = match step {
            Step::Send(b) => (b, None),
            Step::Blocked(b, _) => (b, Some(Completion::Blocked)),
            Step::Malformed(m) => {
                rec.error = Some(format!("the upstream's stream is malformed: {m}"));
                (Vec::new(), Some(Completion::UpstreamBroken))
            }
        };
        if !bytes.is_empty() && client_tx.send(Ok(Bytes::from(bytes))).await.is_err() {
            rec.completion = Completion::ClientAborted;
            break;
        }
        if let Some(model) = filter.facts.model.clone() {
            if rec.response_model.is_none() {
                rec.response_model = Some(model);
                if let Some(e) = served_model_refused(rec, policy) {
                    let b = format!("data: {}\n\ndata: [DONE]\n\n", e.body());
                    filter.delivered.push(e.body());
                    let _ = client_tx.send(Ok(Bytes::from(b))).await;
                    rec.error = Some(e.message);
                    ended = Some(Completion::Blocked);
                }
            }
        }
        if stop.is_some() {
            ended = stop;
        }
        if filter.facts.done {
            break;
        }
    }
    if ended == Some(Completion::UpstreamBroken) {
        let e = json!({"error": {"message": rec.error.clone().unwrap_or_default(), "type": "server_error", "param": null, "code": "upstream_broken"}});
        filter.delivered.push(e.clone());
        let _ = client_tx.send(Ok(Bytes::from(format!("data: {e}\n\n")))).await;
    }
    if let Some(c) = ended {
        if rec.completion == Completion::Complete {
            rec.completion = c;
        }
    }
    if rec.completion == Completion::Blocked {
        rec.decide("pii.response", "block");
    } else if policy.policy.pii.scan_responses {
        let redacted = filter.counts().keys().any(|(_, _, a)| *a == Action::Redact);
        rec.decide("pii.response", if redacted { "redact" } else { "allow" });
    }
    merge(&mut rec.pii, filter.counts());
    rec.response_id = filter.facts.id.clone();
    rec.input_tokens = filter.facts.input_tokens;
    rec.output_tokens = filter.facts.output_tokens;
    rec.finish_reasons = filter.facts.finish_reasons.values().cloned().collect();
    rec.response = json!({"status": rec.status, "stream": filter.delivered});
}
