//! The Blossom protocol: blobs stored and fetched by SHA-256 over HTTP.
//!
//! Follows the BUD documents: BUD-01 (`GET`/`HEAD /<sha256>`, errors with
//! `X-Reason`), BUD-02 (`PUT /upload`, the blob descriptor), BUD-06
//! (`HEAD /upload` preflight with `X-SHA-256`, `X-Content-Length`,
//! `X-Content-Type`), BUD-11 (authorization: a kind 24242 Nostr event,
//! base64 in `Authorization: Nostr …`, with `t`, `x` and `expiration`
//! tags) and BUD-12 (`GET /list/<pubkey>`, `DELETE /<sha256>`).

use std::time::Duration;

use base64::Engine as _;
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{check_digest, is_sha256_hex, sha256_hex, Error};

/// The kind of a Blossom authorization event (BUD-11).
pub const AUTH_KIND: u16 = 24242;

/// How long an authorization event this client signs stays valid (s).
pub const AUTH_LIFETIME_S: u64 = 300;

/// The blob descriptor a Blossom server returns for a blob (BUD-02).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobDescriptor {
    /// Where the blob can be fetched: the server's URL ending in the SHA-256.
    pub url: String,
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type (`application/octet-stream` when unknown).
    #[serde(rename = "type", default)]
    pub content_type: String,
    /// Upload time, seconds since the Unix epoch.
    pub uploaded: u64,
}

/// What an authorization event is for: its `t` tag (BUD-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Fetch a blob.
    Get,
    /// Upload a blob (also the `HEAD /upload` preflight).
    Upload,
    /// List a pubkey's blobs.
    List,
    /// Delete a blob.
    Delete,
}

impl Verb {
    /// The `t` tag's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Upload => "upload",
            Verb::List => "list",
            Verb::Delete => "delete",
        }
    }
}

/// Why an authorization header was refused (answered 401 with the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header where one is required.
    #[error("missing Authorization header: this endpoint needs a kind 24242 Nostr event (BUD-11)")]
    Missing,
    /// Not `Nostr <base64>`, or the base64 or JSON is broken.
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    /// The event's id or BIP-340 signature does not verify.
    #[error("the authorization event's signature does not verify: {0}")]
    Signature(String),
    /// Not kind 24242.
    #[error("the authorization event is kind {0}, not 24242")]
    Kind(u16),
    /// `created_at` is in the future.
    #[error("the authorization event is dated in the future ({0})")]
    Future(u64),
    /// No `expiration` tag, or it has passed.
    #[error("the authorization event {0}")]
    Expired(String),
    /// The `t` tag is missing or names another action.
    #[error("the authorization event is for `{got}`, not `{want}`")]
    Verb {
        /// The action asked for.
        want: &'static str,
        /// The event's `t` tag.
        got: String,
    },
    /// The `x` tags do not include the blob's SHA-256.
    #[error("the authorization event's `x` tags do not name blob {0}")]
    Blob(String),
}

/// Signs a BUD-11 authorization event for `verb` (on blob `sha256`, when
/// given), valid for [`AUTH_LIFETIME_S`], and returns the header value
/// `Nostr <base64 of the event JSON>`.
///
/// # Errors
/// [`Error::Nostr`] if signing fails.
pub fn auth_header(keys: &Keys, verb: Verb, sha256: Option<&str>) -> Result<String, Error> {
    let event = auth_event(keys, verb, sha256, Timestamp::now(), Timestamp::from_secs(Timestamp::now().as_secs() + AUTH_LIFETIME_S))?;
    Ok(format!("Nostr {}", base64::engine::general_purpose::STANDARD.encode(event.as_json())))
}

/// Signs an authorization event with the given times (tests sign expired
/// and future-dated ones with it).
///
/// # Errors
/// [`Error::Nostr`] if signing fails.
pub fn auth_event(keys: &Keys, verb: Verb, sha256: Option<&str>, created_at: Timestamp, expiration: Timestamp) -> Result<Event, Error> {
    let mut tags = vec![Tag::parse(["t", verb.as_str()]).map_err(|e| Error::Nostr(e.to_string()))?, Tag::expiration(expiration)];
    if let Some(x) = sha256 {
        tags.push(Tag::parse(["x", x]).map_err(|e| Error::Nostr(e.to_string()))?);
    }
    EventBuilder::new(Kind::Custom(AUTH_KIND), format!("zkaudit {}", verb.as_str()))
        .tags(tags)
        .custom_created_at(created_at)
        .sign_with_keys(keys)
        .map_err(|e| Error::Nostr(e.to_string()))
}

/// A checked authorization event: who signed it and the blobs its `x`
/// tags name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The signer's public key (hex).
    pub pubkey: String,
    /// The SHA-256s of its `x` tags.
    pub blobs: Vec<String>,
}

impl Authorization {
    /// The signer, when an `x` tag names blob `sha256`.
    ///
    /// # Errors
    /// [`AuthError::Blob`] when none does.
    pub fn for_blob(self, sha256: &str) -> Result<String, AuthError> {
        if self.blobs.iter().any(|x| x == sha256) {
            Ok(self.pubkey)
        } else {
            Err(AuthError::Blob(sha256.to_owned()))
        }
    }
}

/// Checks an `Authorization` header value for `verb` on blob `sha256`
/// (BUD-11) at time `now` (s): as [`authorize`], then, when `sha256` is
/// given, that an `x` tag names it. Returns the signer's public key (hex).
///
/// # Errors
/// The [`AuthError`] naming the first check that failed.
pub fn check_auth(header: Option<&str>, verb: Verb, sha256: Option<&str>, now: u64) -> Result<String, AuthError> {
    let auth = authorize(header, verb, now)?;
    match sha256 {
        Some(x) => auth.for_blob(x),
        None => Ok(auth.pubkey),
    }
}

/// Checks an `Authorization` header value for `verb` at time `now` (s),
/// whatever blob it is for (BUD-11): the event decodes, its id and
/// signature verify, it is kind 24242, dated no later than `now`, not
/// expired, and its `t` tag is `verb`.
///
/// # Errors
/// The [`AuthError`] naming the first check that failed.
pub fn authorize(header: Option<&str>, verb: Verb, now: u64) -> Result<Authorization, AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let b64 = header.strip_prefix("Nostr ").ok_or_else(|| AuthError::Malformed("expected `Nostr <base64 event>`".into()))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b64.trim()))
        .map_err(|e| AuthError::Malformed(format!("base64: {e}")))?;
    let event = Event::from_json(&json).map_err(|e| AuthError::Malformed(format!("event JSON: {e}")))?;
    event.verify().map_err(|e| AuthError::Signature(e.to_string()))?;
    if event.kind.as_u16() != AUTH_KIND {
        return Err(AuthError::Kind(event.kind.as_u16()));
    }
    if event.created_at.as_secs() > now + 60 {
        return Err(AuthError::Future(event.created_at.as_secs()));
    }
    let values = |name: &'static str| {
        event.tags.iter().filter(move |t| t.as_slice().first().map(String::as_str) == Some(name)).filter_map(|t| t.as_slice().get(1).cloned())
    };
    let expiration = values("expiration").next().ok_or_else(|| AuthError::Expired("has no `expiration` tag".into()))?;
    let expiration: u64 = expiration.parse().map_err(|_| AuthError::Expired(format!("has a malformed expiration `{expiration}`")))?;
    if expiration <= now {
        return Err(AuthError::Expired(format!("expired at {expiration} (now {now})")));
    }
    let t = values("t").next().unwrap_or_default();
    if t != verb.as_str() {
        return Err(AuthError::Verb { want: verb.as_str(), got: t });
    }
    Ok(Authorization { pubkey: event.pubkey.to_hex(), blobs: values("x").collect() })
}

/// A Blossom client: one server, optional keys for authorization, a
/// timeout on every call.
pub struct Client {
    base: String,
    keys: Option<Keys>,
    agent: ureq::Agent,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into()
}

/// The server's reason for an error status: `X-Reason`, else the body.
fn reason(r: &mut ureq::http::Response<ureq::Body>) -> String {
    if let Some(x) = r.headers().get("x-reason").and_then(|v| v.to_str().ok()) {
        return x.to_owned();
    }
    let body = r.body_mut().with_config().limit(4096).read_to_string().unwrap_or_default();
    if body.is_empty() {
        r.status().canonical_reason().unwrap_or("error").to_owned()
    } else {
        body
    }
}

impl Client {
    /// A client of the server at `base` (`http://host:port/prefix`).
    pub fn new(base: &str, keys: Option<Keys>, timeout: Duration) -> Client {
        Client { base: base.trim_end_matches('/').to_owned(), keys, agent: agent(timeout) }
    }

    /// A client for the server a blob URL (`…/<sha256>[.ext]`) points at.
    pub fn for_blob_url(url: &str, timeout: Duration) -> Option<Client> {
        let (base, last) = url.rsplit_once('/')?;
        is_sha256_hex(last.split('.').next()?).then(|| Client::new(base, None, timeout))
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::Unreachable { store: self.base.clone(), reason: e.to_string() }
    }

    fn status(&self, r: &mut ureq::http::Response<ureq::Body>) -> Error {
        Error::Status { store: self.base.clone(), status: r.status().as_u16(), reason: reason(r) }
    }

    fn auth(&self, verb: Verb, sha256: Option<&str>) -> Result<Option<String>, Error> {
        self.keys.as_ref().map(|k| auth_header(k, verb, sha256)).transpose()
    }

    /// Uploads `bytes`: a `HEAD /upload` preflight (BUD-06), then
    /// `PUT /upload` (BUD-02), and checks that the descriptor names the
    /// bytes' SHA-256 and size.
    ///
    /// # Errors
    /// [`Error::Status`] with the server's reason (from the preflight or the
    /// upload), [`Error::Unreachable`], or [`Error::Protocol`] for a
    /// descriptor that does not match.
    pub fn upload(&self, bytes: &[u8], content_type: &str) -> Result<BlobDescriptor, Error> {
        let sha = sha256_hex(bytes);
        let auth = self.auth(Verb::Upload, Some(&sha))?;
        let url = format!("{}/upload", self.base);
        let mut head =
            self.agent.head(&url).header("X-SHA-256", &sha).header("X-Content-Length", bytes.len().to_string()).header("X-Content-Type", content_type);
        if let Some(a) = &auth {
            head = head.header("Authorization", a);
        }
        let mut r = head.call().map_err(|e| self.unreachable(e))?;
        if !r.status().is_success() {
            return Err(self.status(&mut r));
        }
        let mut put = self.agent.put(&url).header("Content-Type", content_type).header("X-SHA-256", &sha);
        if let Some(a) = &auth {
            put = put.header("Authorization", a);
        }
        let mut r = put.send(bytes).map_err(|e| self.unreachable(e))?;
        if !r.status().is_success() {
            return Err(self.status(&mut r));
        }
        let text = r.body_mut().read_to_string().map_err(|e| self.unreachable(e))?;
        let d: BlobDescriptor = serde_json::from_str(&text)
            .map_err(|e| Error::Protocol { store: self.base.clone(), reason: format!("the upload's answer is not a blob descriptor: {e}") })?;
        if d.sha256 != sha || d.size != bytes.len() as u64 {
            return Err(Error::Protocol {
                store: self.base.clone(),
                reason: format!("the descriptor names {} ({} bytes), the upload was {sha} ({} bytes)", d.sha256, d.size, bytes.len()),
            });
        }
        Ok(d)
    }

    /// Fetches blob `sha256` (`GET /<sha256>`, BUD-01) and checks its
    /// digest; at most `limit` bytes are read.
    ///
    /// # Errors
    /// [`Error::Digest`] for bytes that hash otherwise, [`Error::Status`]
    /// (404 when the server lacks it), [`Error::TooLarge`],
    /// [`Error::Unreachable`].
    pub fn get(&self, sha256: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let url = format!("{}/{sha256}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(a) = self.auth(Verb::Get, Some(sha256))? {
            req = req.header("Authorization", a);
        }
        let mut r = req.call().map_err(|e| self.unreachable(e))?;
        if !r.status().is_success() {
            return Err(self.status(&mut r));
        }
        let bytes = r.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::TooLarge { what: url.clone(), size: limit + 1, limit },
            e => self.unreachable(e),
        })?;
        check_digest(&bytes, sha256, &url)?;
        Ok(bytes)
    }

    /// Whether the server has blob `sha256` (`HEAD /<sha256>`).
    ///
    /// # Errors
    /// [`Error::Status`] for answers other than 200 and 404, [`Error::Unreachable`].
    pub fn has(&self, sha256: &str) -> Result<bool, Error> {
        let mut r = self.agent.head(format!("{}/{sha256}", self.base)).call().map_err(|e| self.unreachable(e))?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status(&mut r)),
        }
    }

    /// The blobs `pubkey` (hex) uploaded (`GET /list/<pubkey>`, BUD-12).
    ///
    /// # Errors
    /// As [`Client::has`], or [`Error::Protocol`] for an answer that is not
    /// a list of descriptors.
    pub fn list(&self, pubkey: &str) -> Result<Vec<BlobDescriptor>, Error> {
        let mut req = self.agent.get(format!("{}/list/{pubkey}", self.base));
        if let Some(a) = self.auth(Verb::List, None)? {
            req = req.header("Authorization", a);
        }
        let mut r = req.call().map_err(|e| self.unreachable(e))?;
        if !r.status().is_success() {
            return Err(self.status(&mut r));
        }
        let text = r.body_mut().read_to_string().map_err(|e| self.unreachable(e))?;
        serde_json::from_str(&text).map_err(|e| Error::Protocol { store: self.base.clone(), reason: format!("not a list of blob descriptors: {e}") })
    }

    /// Deletes blob `sha256` (`DELETE /<sha256>`, BUD-12; needs keys).
    ///
    /// # Errors
    /// [`Error::Status`] with the server's reason, [`Error::Unreachable`].
    pub fn delete(&self, sha256: &str) -> Result<(), Error> {
        let mut req = self.agent.delete(format!("{}/{sha256}", self.base));
        if let Some(a) = self.auth(Verb::Delete, Some(sha256))? {
            req = req.header("Authorization", a);
        }
        let mut r = req.call().map_err(|e| self.unreachable(e))?;
        if !r.status().is_success() {
            return Err(self.status(&mut r));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(e: &Event) -> String {
        format!("Nostr {}", base64::engine::general_purpose::STANDARD.encode(e.as_json()))
    }

    #[test]
    fn authorization_events_are_checked_field_by_field() {
        let keys = Keys::generate();
        let x = sha256_hex(b"blob");
        let now = Timestamp::now().as_secs();
        let ok = auth_event(&keys, Verb::Upload, Some(&x), Timestamp::from_secs(now), Timestamp::from_secs(now + 60)).unwrap();
        assert_eq!(check_auth(Some(&header(&ok)), Verb::Upload, Some(&x), now).unwrap(), keys.public_key().to_hex());
        assert_eq!(check_auth(None, Verb::Upload, Some(&x), now), Err(AuthError::Missing));
        assert!(matches!(check_auth(Some("Bearer x"), Verb::Upload, None, now), Err(AuthError::Malformed(_))));
        assert!(matches!(check_auth(Some("Nostr !!!"), Verb::Upload, None, now), Err(AuthError::Malformed(_))));
        assert!(matches!(check_auth(Some(&header(&ok)), Verb::Delete, Some(&x), now), Err(AuthError::Verb { .. })));
        assert!(matches!(check_auth(Some(&header(&ok)), Verb::Upload, Some(&sha256_hex(b"other")), now), Err(AuthError::Blob(_))));
        assert!(matches!(check_auth(Some(&header(&ok)), Verb::Upload, Some(&x), now + 61), Err(AuthError::Expired(_))));
        let future = auth_event(&keys, Verb::Upload, Some(&x), Timestamp::from_secs(now + 3600), Timestamp::from_secs(now + 7200)).unwrap();
        assert!(matches!(check_auth(Some(&header(&future)), Verb::Upload, Some(&x), now), Err(AuthError::Future(_))));
        // A changed tag breaks the id, so the signature check refuses it.
        let forged = header(&ok).replace(&base64::engine::general_purpose::STANDARD.encode(ok.as_json()), &{
            let mut v: serde_json::Value = serde_json::from_str(&ok.as_json()).unwrap();
            v["content"] = "changed".into();
            base64::engine::general_purpose::STANDARD.encode(v.to_string())
        });
        assert!(matches!(check_auth(Some(&forged), Verb::Upload, Some(&x), now), Err(AuthError::Signature(_))));
        let wrong_kind = EventBuilder::new(Kind::TextNote, "hi").tags([Tag::expiration(Timestamp::from_secs(now + 60))]).sign_with_keys(&keys).unwrap();
        assert_eq!(check_auth(Some(&header(&wrong_kind)), Verb::Upload, None, now), Err(AuthError::Kind(1)));
    }
}
