//! API errors: every failure is a JSON body `{"error", "status", "field"?,
//! "details"?}` with the status code it names.

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A failed request: status, message, and the request field at fault.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status (4xx for the client's mistakes, 5xx for ours).
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault (`plan.steps[2].type`, `data.prices`, `id`).
    pub field: Option<String>,
    /// Structured details (e.g. every plan error with line and column).
    pub details: Option<Value>,
    /// `Retry-After` seconds (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), field: None, details: None, retry_after: None }
    }

    /// 400 naming `field`.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::BAD_REQUEST, message) }
    }

    /// 422 (well-formed, but not acceptable) naming `field`.
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message) }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    /// 500, for failures of the server itself (store, ledger, threads).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    /// The same error, naming the request field (or header) that caused it.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<zkaudit_jobs::Error> for ApiError {
    fn from(e: zkaudit_jobs::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message, "status": self.status.as_u16()});
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Largest plain-text error body [`json_errors`] rewraps (bytes).
const MAX_REWRAP: usize = 64 * 1024;

/// Middleware: an error response that is not JSON (a 404 for an unknown
/// route, a 405, a 413 for an oversize body, an extractor's rejection)
/// becomes the same JSON shape as [`ApiError`]'s.
pub async fn json_errors(req: Request<Body>, next: Next) -> Response {
    let r = next.run(req).await;
    let status = r.status();
    let is_json = r.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, MAX_REWRAP).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_owned();
    if message.is_empty() {
        message = match status {
            StatusCode::NOT_FOUND => "no such endpoint".into(),
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this endpoint".into(),
            s => s.canonical_reason().unwrap_or("error").to_owned(),
        };
    }
    let mut out = ApiError::new(status, message).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}
