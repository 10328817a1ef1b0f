//! Prometheus metrics (OpenMetrics text at `/metrics`): queue depth, jobs
//! running, job durations, cycles proven, ledger appends, proofs recorded
//! and stored, HTTP latencies.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::http::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use zkaudit_jobs::worker::Observer;
use zkaudit_jobs::{Finish, Job};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    mode: String,
    state: String,
}

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    queue_depth: Gauge,
    jobs_running: Gauge,
    job_seconds: Family<JobLabels, Histogram>,
    cycles_proven: Counter,
    appended_entries: Counter,
    append_requests: Counter,
    proofs_recorded: Counter,
    proof_record_failures: Counter,
    proofs_stored: Counter,
    proof_store_failures: Counter,
    http_seconds: Family<HttpLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("zkaudit");
        let queue_depth = Gauge::default();
        let jobs_running = Gauge::default();
        let job_seconds = Family::<JobLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.5, 2.0, 14)));
        let cycles_proven = Counter::default();
        let appended_entries = Counter::default();
        let append_requests = Counter::default();
        let proofs_recorded = Counter::default();
        let proof_record_failures = Counter::default();
        let proofs_stored = Counter::default();
        let proof_store_failures = Counter::default();
        let http_seconds = Family::<HttpLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 20)));
        registry.register("queue_depth", "Jobs waiting for a worker", queue_depth.clone());
        registry.register("jobs_running", "Jobs claimed by a worker", jobs_running.clone());
        registry.register("job_duration_seconds", "Wall time of finished job attempts", job_seconds.clone());
        registry.register("cycles_proven", "zkVM cycles proven by this server's workers", cycles_proven.clone());
        registry.register("log_appended_entries", "Events appended to the ledger over HTTP", appended_entries.clone());
        registry.register("log_append_requests", "Append requests acknowledged", append_requests.clone());
        registry.register("proofs_recorded", "Proof events of finished jobs recorded in the ledger", proofs_recorded.clone());
        registry.register(
            "proof_record_failures",
            "Attempts to record a finished job's proof that failed (retried at the next upkeep)",
            proof_record_failures.clone(),
        );
        registry.register("proofs_stored", "Receipts of recorded proofs put in content-addressed storage (serve --store)", proofs_stored.clone());
        registry.register(
            "proof_store_failures",
            "Attempts to put a recorded proof's receipt in storage that failed (retried with backoff)",
            proof_store_failures.clone(),
        );
        registry.register("http_request_duration_seconds", "HTTP request latency by route", http_seconds.clone());
        Metrics {
            registry,
            queue_depth,
            jobs_running,
            job_seconds,
            cycles_proven,
            appended_entries,
            append_requests,
            proofs_recorded,
            proof_record_failures,
            proofs_stored,
            proof_store_failures,
            http_seconds,
        }
    }
}

impl Metrics {
    /// Sets the queue gauges (read from the store at scrape time).
    pub fn set_queue(&self, queued: u64, running: u64) {
        self.queue_depth.set(queued as i64);
        self.jobs_running.set(running as i64);
    }

    /// Counts an acknowledged append of `entries` events.
    pub fn appended(&self, entries: u64) {
        self.appended_entries.inc_by(entries);
        self.append_requests.inc();
    }

    /// Counts proof events recorded in the ledger, and jobs that failed to be.
    pub fn proofs_recorded(&self, recorded: u64, failed: u64) {
        self.proofs_recorded.inc_by(recorded);
        self.proof_record_failures.inc_by(failed);
    }

    /// Counts receipts put in content-addressed storage, and jobs whose
    /// receipt no store took.
    pub fn proofs_stored(&self, stored: u64, failed: u64) {
        self.proofs_stored.inc_by(stored);
        self.proof_store_failures.inc_by(failed);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Observer for Metrics {
    fn finished(&self, job: &Job, f: &Finish, seconds: f64) {
        let labels = JobLabels { mode: job.mode.as_str().into(), state: f.state.as_str().into() };
        self.job_seconds.get_or_create(&labels).observe(seconds);
        // A receipt from the prover's receipt cache was not proved here.
        if f.receipt_id.is_some() && !f.cached {
            self.cycles_proven.inc_by(f.cycles.unwrap_or(0));
        }
    }
}

/// Middleware: observes each request's latency under its route template
/// (`/v1/jobs/{id}`, not the concrete path, to bound the label set).
pub async fn track(State(m): State<Arc<Metrics>>, req: Request<Body>, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let t = Instant::now();
    let r = next.run(req).await;
    let labels = HttpLabels { method, route, status: r.status().as_u16() };
    m.http_seconds.get_or_create(&labels).observe(t.elapsed().as_secs_f64());
    r
}
