//! Bearer-token authentication (RFC 6750) with `read`, `submit` and
//! `admin` scopes. Tokens are looked up by the SHA-256 of their secret,
//! through the job store's [`zkaudit_jobs::TokenCache`], so that appends
//! under load do not hit the database on every request.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use zkaudit_jobs::{Scope, Token};

use crate::error::ApiError;
use crate::{blocking, AppState};

/// Who made a request: a token, or nobody.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token presented, if any.
    pub token: Option<Token>,
}

impl Caller {
    /// The token, if it has `scope`: 401 without a token, 403 with one
    /// whose scope is too narrow.
    pub fn require(&self, scope: Scope) -> Result<&Token, ApiError> {
        let t = self.token.as_ref().ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "this endpoint needs a bearer token (Authorization: Bearer …)"))?;
        if t.scope.allows(scope) {
            Ok(t)
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, format!("token {} has scope `{}`; this needs `{scope}`", t.id, t.scope)))
        }
    }

    /// The tenant whose jobs this caller sees: `None` (all) for admins.
    pub fn tenant_filter(&self) -> Option<&str> {
        match &self.token {
            Some(t) if t.scope == Scope::Admin => None,
            Some(t) => Some(t.tenant.as_str()),
            None => Some(""),
        }
    }

    /// Checks a read of the public ledger: anyone when the server allows
    /// anonymous reads, else a `read` token.
    pub fn require_log_read(&self, state: &AppState) -> Result<(), ApiError> {
        if state.config.anonymous_read {
            Ok(())
        } else {
            self.require(Scope::Read).map(|_| ())
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller { token: None });
        };
        let unauthorized = |m: &str| ApiError { field: Some("Authorization".into()), ..ApiError::new(StatusCode::UNAUTHORIZED, m) };
        let text = value.to_str().map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
        let (scheme, secret) = text.split_once(' ').ok_or_else(|| unauthorized("expected `Authorization: Bearer <token>`"))?;
        if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
            return Err(unauthorized("expected `Authorization: Bearer <token>`"));
        }
        let secret = secret.trim().to_owned();
        let token = match state.tokens.cached(&secret) {
            Some(t) => t,
            None => {
                let tokens = Arc::clone(&state.tokens);
                blocking(move || tokens.lookup(&secret).map_err(ApiError::from)).await?
            }
        };
        match token {
            Some(t) => Ok(Caller { token: Some(t) }),
            None => Err(unauthorized("unknown or revoked token")),
        }
    }
}
