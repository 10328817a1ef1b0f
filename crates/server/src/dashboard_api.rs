//! The SOC dashboard over HTTP: the page and its assets at `/` (public:
//! they hold no data), and the panels' data under `/v1/dashboard/`, which
//! need a `read` token like the rest of the API, with live updates as
//! server-sent events. What each panel holds is `zkaudit-dashboard`'s.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use zkaudit_dashboard::Window;
use zkaudit_jobs::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{blocking, AppState};

/// How often the live stream looks for a new checkpoint.
const STREAM_POLL: Duration = Duration::from_secs(1);

fn dash_err(e: zkaudit_dashboard::Error) -> ApiError {
    match &e {
        zkaudit_dashboard::Error::NoChromium(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        zkaudit_dashboard::Error::BadRequest { field, .. } => ApiError::bad(*field, e.to_string()),
        zkaudit_dashboard::Error::NoSuchEvent { .. } => ApiError::not_found(e.to_string()),
        _ if e.is_client_error() => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
        _ => ApiError::internal(e),
    }
}

fn serve(path: &str) -> Result<Response, ApiError> {
    let a = zkaudit_dashboard::asset(path).ok_or_else(|| ApiError::not_found(format!("no dashboard asset `/{path}`")))?;
    Ok(([(header::CONTENT_TYPE, a.content_type), (header::CACHE_CONTROL, "no-cache")], Bytes::from_static(a.bytes)).into_response())
}

/// `GET /`: the dashboard's page (it holds no data: it asks for a token,
/// then fetches the panels).
pub async fn index() -> Result<Response, ApiError> {
    serve("")
}

/// `GET /assets/{file}`: its scripts, style and WebAssembly verifier.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    serve(&format!("assets/{file}"))
}

/// A time window as the page sends it: RFC 3339 timestamps, either end
/// optional (the ledger's first and last events by default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    from: Option<String>,
    to: Option<String>,
}

fn ns(field: &'static str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let t = zkaudit_event::Timestamp::parse(s).map_err(|e| ApiError::bad(field, e))?;
            i64::try_from(t.unix_nanos()).map_err(|_| ApiError::bad(field, "outside the years 1677–2262"))
        })
        .transpose()
}

impl WindowQuery {
    fn resolve(&self, state: &AppState) -> Result<Window, ApiError> {
        state.dashboard.window(&state.ledger, ns("from", &self.from)?, ns("to", &self.to)?).map_err(dash_err)
    }
}

/// Runs a panel on the blocking pool after checking for a `read` token.
async fn panel<T: serde::Serialize + Send + 'static>(
    state: Arc<AppState>,
    caller: &Caller,
    f: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<Json<T>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(blocking(move || f(&state)).await?))
}

/// `GET /v1/dashboard/integrity`: tree size, checkpoint, key, signature,
/// the last consistency and full checks.
pub async fn integrity(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<zkaudit_dashboard::Integrity>, ApiError> {
    panel(state, &caller, |s| s.dashboard.integrity(&s.ledger).map_err(dash_err)).await
}

/// `POST /v1/dashboard/integrity/check`: runs `zkaudit_integrity(log)` now.
pub async fn check_log(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<zkaudit_dashboard::FullCheck>, ApiError> {
    panel(state, &caller, |s| s.dashboard.check_log(&s.ledger).map_err(dash_err)).await
}

/// `GET /v1/dashboard/activity?from=&to=`.
pub async fn activity(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<WindowQuery>) -> Result<Json<zkaudit_dashboard::Activity>, ApiError> {
    panel(state, &caller, move |s| s.dashboard.activity(&s.ledger, q.resolve(s)?).map_err(dash_err)).await
}

/// `GET /v1/dashboard/compliance?from=&to=`.
pub async fn compliance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<WindowQuery>,
) -> Result<Json<zkaudit_dashboard::Compliance>, ApiError> {
    panel(state, &caller, move |s| s.dashboard.compliance(&s.ledger, q.resolve(s)?).map_err(dash_err)).await
}

/// `GET /v1/dashboard/proofs`.
pub async fn proofs(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<zkaudit_dashboard::Proofs>, ApiError> {
    panel(state, &caller, |s| s.dashboard.proofs(&s.ledger, &s.store, s.config.workers).map_err(dash_err)).await
}

/// `GET /v1/dashboard/findings?from=&to=`.
pub async fn findings(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<WindowQuery>) -> Result<Json<zkaudit_dashboard::Findings>, ApiError> {
    panel(state, &caller, move |s| s.dashboard.findings(&s.ledger, q.resolve(s)?).map_err(dash_err)).await
}

/// `GET /v1/dashboard/events/{index}`: the event, its inclusion proof and
/// where its entry bundle lies, for the browser to verify.
pub async fn event(State(state): State<Arc<AppState>>, caller: Caller, Path(index): Path<u64>) -> Result<Json<zkaudit_dashboard::EventView>, ApiError> {
    panel(state, &caller, move |s| s.dashboard.event(&s.ledger, index).map_err(dash_err)).await
}

/// Query of `GET /v1/dashboard/lineage`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageQuery {
    digest: String,
}

/// `GET /v1/dashboard/lineage?digest=sha256:…`.
pub async fn lineage(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<LineageQuery>) -> Result<Json<zkaudit_dashboard::Lineage>, ApiError> {
    panel(state, &caller, move |s| s.dashboard.lineage(&s.ledger, &q.digest).map_err(dash_err)).await
}

/// Query of `GET /v1/dashboard/report.html`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pack: String,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/dashboard/report.html?pack=&from=&to=`: the compliance report
/// of one pack, as `zkaudit compliance --html` writes it, as a download.
pub async fn report_html(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ReportQuery>) -> Result<Response, ApiError> {
    report(state, caller, q, "html", "text/html; charset=utf-8", |s, pack, w| s.dashboard.report_html(&s.ledger, pack, w).map(String::into_bytes)).await
}

/// `GET /v1/dashboard/report.pdf?pack=&from=&to=`: the same report printed
/// to PDF by headless Chromium (503 where there is none).
pub async fn report_pdf(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ReportQuery>) -> Result<Response, ApiError> {
    report(state, caller, q, "pdf", "application/pdf", |s, pack, w| s.dashboard.report_pdf(&s.ledger, pack, w)).await
}

/// A report download: `render` on the blocking pool, as an attachment.
async fn report(
    state: Arc<AppState>,
    caller: Caller,
    q: ReportQuery,
    ext: &'static str,
    content_type: &'static str,
    render: impl FnOnce(&AppState, &str, Window) -> Result<Vec<u8>, zkaudit_dashboard::Error> + Send + 'static,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let name = q.pack.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let bytes = blocking(move || {
        let w = WindowQuery { from: q.from, to: q.to }.resolve(&state)?;
        render(&state, &q.pack, w).map_err(dash_err)
    })
    .await?;
    let disposition = format!("attachment; filename=\"zkaudit-{name}-report.{ext}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes).into_response())
}

/// `GET /v1/dashboard/stream`: server-sent events. A `checkpoint` event
/// (`{"tree_size", "root_hash"}`) first and whenever the log grows, so
/// the page refreshes its panels; comments keep the connection alive.
pub async fn stream(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Scope::Read)?;
    let events = stream::unfold((state, None::<(u64, [u8; 32])>), |(state, last)| async move {
        loop {
            let st = Arc::clone(&state);
            let now = blocking(move || st.ledger.reader().map(|r| (r.size(), r.checkpoint().root)).map_err(ApiError::internal)).await;
            match now {
                Ok(now) if Some(now) != last => {
                    let data = json!({ "tree_size": now.0, "root_hash": hex::encode(now.1) }).to_string();
                    return Some((Ok(Event::default().event("checkpoint").data(data)), (state, Some(now))));
                }
                _ => tokio::time::sleep(STREAM_POLL).await,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
