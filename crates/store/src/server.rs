//! A self-hosted Blossom server over a directory: what `zkaudit serve`
//! mounts under `/blossom`, so a prover or a buyer needs no third party.
//!
//! Routes (relative to the mount point), per the BUD documents:
//! `GET`/`HEAD /<sha256>[.ext]` (BUD-01), `PUT /upload` (BUD-02),
//! `HEAD /upload` (BUD-06), `GET /list/<pubkey>` and `DELETE /<sha256>`
//! (BUD-12). Uploads and deletes need a kind 24242 authorization event
//! (BUD-11); fetching and listing do not. Every error carries its reason in
//! `X-Reason`.
//!
//! On disk: `DIR/<sha256>` holds the bytes (written to a temporary file,
//! synced, renamed, and the directory synced, so a blob is either whole or
//! absent, and an acknowledged one survives a crash) and
//! `DIR/<sha256>.json` its [`Meta`]. A blob is removed when its last owner
//! deletes it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::blossom::{authorize, check_auth, Authorization, BlobDescriptor, Verb};
use crate::{is_sha256_hex, sha256_hex, Error};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The blob directory (created if missing).
    pub dir: PathBuf,
    /// Largest upload accepted (bytes); larger ones get 413.
    pub max_blob_bytes: u64,
    /// The path the router is mounted under (`/blossom`), for descriptor URLs.
    pub mount: String,
    /// The public base URL for descriptors; `None` builds it from the
    /// request's `Host` header and [`Config::mount`].
    pub public_url: Option<String>,
}

/// What is kept beside a blob.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    /// MIME type as uploaded.
    #[serde(rename = "type")]
    pub content_type: String,
    /// First upload, seconds since the Unix epoch.
    pub uploaded: u64,
    /// Public keys (hex) that uploaded it.
    pub owners: Vec<String>,
}

/// The server's state: its directory and limits.
pub struct BlobServer {
    config: Config,
    /// Serializes metadata updates (owners of one blob).
    meta_lock: Mutex<()>,
}

/// An error answer: the status, with the reason in `X-Reason` and the body.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let reason = self.1.replace(['\r', '\n'], " ");
        let challenge = if self.0 == StatusCode::UNAUTHORIZED { "Nostr" } else { "" };
        let mut r = (self.0, [("X-Reason", reason.clone()), (header::CONTENT_TYPE.as_str(), "text/plain; charset=utf-8".to_owned())], reason).into_response();
        if !challenge.is_empty() {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Nostr"));
        }
        r
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl BlobServer {
    /// Opens (creating) the blob directory.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be made.
    pub fn open(config: Config) -> Result<Arc<BlobServer>, Error> {
        std::fs::create_dir_all(&config.dir).map_err(Error::io(&config.dir))?;
        Ok(Arc::new(BlobServer { config, meta_lock: Mutex::new(()) }))
    }

    fn blob_path(&self, sha: &str) -> PathBuf {
        self.config.dir.join(sha)
    }

    fn meta_path(&self, sha: &str) -> PathBuf {
        self.config.dir.join(format!("{sha}.json"))
    }

    fn meta(&self, sha: &str) -> Result<Option<Meta>, Error> {
        let p = self.meta_path(sha);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Io { path: p, source: std::io::Error::other(e) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path: p, source: e }),
        }
    }

    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
        use std::io::Write as _;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
        tmp.write_all(bytes).map_err(Error::io(path))?;
        tmp.as_file().sync_all().map_err(Error::io(path))?;
        tmp.persist(path).map_err(|e| Error::Io { path: path.to_owned(), source: e.error })?;
        // The new directory entry, so an acknowledged upload survives a crash.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
    }

    /// Stores `bytes` for `owner`, returning the meta as it now stands.
    fn store(&self, sha: &str, bytes: &[u8], content_type: &str, owner: &str) -> Result<Meta, Error> {
        let _g = self.meta_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.blob_path(sha);
        if !path.exists() {
            BlobServer::write_atomic(&path, bytes)?;
        }
        let mut meta = self.meta(sha)?.unwrap_or_else(|| Meta { content_type: content_type.to_owned(), uploaded: now(), owners: Vec::new() });
        if !meta.owners.iter().any(|o| o == owner) {
            meta.owners.push(owner.to_owned());
        }
        let json = serde_json::to_vec(&meta).map_err(|e| Error::Io { path: self.meta_path(sha), source: std::io::Error::other(e) })?;
        BlobServer::write_atomic(&self.meta_path(sha), &json)?;
        Ok(meta)
    }

    /// Stores `bytes` as `owner` (e.g. a service's own name) from inside
    /// the process, as an upload would; returns their SHA-256 (64 hex),
    /// under which `GET <mount>/<sha256>` serves them.
    ///
    /// # Errors
    /// [`Error::Io`] when the blob or its metadata cannot be written.
    pub fn put(&self, bytes: &[u8], content_type: &str, owner: &str) -> Result<String, Error> {
        let sha = sha256_hex(bytes);
        self.store(&sha, bytes, content_type, owner)?;
        Ok(sha)
    }

    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}{}", self.config.mount.trim_end_matches('/'))
    }

    fn descriptor(&self, headers: &HeaderMap, sha: &str, size: u64, meta: &Meta) -> BlobDescriptor {
        BlobDescriptor {
            url: format!("{}/{sha}", self.base_url(headers)),
            sha256: sha.to_owned(),
            size,
            content_type: meta.content_type.clone(),
            uploaded: meta.uploaded,
        }
    }
}

/// The Blossom routes over `server`, to be nested at its `mount`.
pub fn router<S>(server: Arc<BlobServer>) -> Router<S> {
    let limit = usize::try_from(server.config.max_blob_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/upload", put(upload).head(preflight))
        .route("/list/{pubkey}", get(list))
        .route("/{blob}", get(fetch).head(fetch).delete(delete))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(server)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Refusal> + Send + 'static) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The SHA-256 a `/<sha256>[.ext]` path names.
fn blob_hash(blob: &str) -> Result<String, Refusal> {
    let sha = blob.split('.').next().unwrap_or_default();
    if !is_sha256_hex(sha) {
        return Err(Refusal(StatusCode::BAD_REQUEST, format!("`{blob}` is not a SHA-256 (64 lowercase hex digits, optionally with an extension)")));
    }
    Ok(sha.to_owned())
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn unauthorized(e: crate::blossom::AuthError) -> Refusal {
    Refusal(StatusCode::UNAUTHORIZED, e.to_string())
}

/// `GET`/`HEAD /<sha256>[.ext]` (BUD-01).
async fn fetch(State(s): State<Arc<BlobServer>>, method: Method, UrlPath(blob): UrlPath<String>) -> Result<Response, Refusal> {
    let sha = blob_hash(&blob)?;
    let head = method == Method::HEAD;
    blocking(move || {
        let Some(meta) = s.meta(&sha)? else {
            return Err(Refusal(StatusCode::NOT_FOUND, format!("blob {sha} is not on this server")));
        };
        let path = s.blob_path(&sha);
        let ct = if meta.content_type.is_empty() { "application/octet-stream".to_owned() } else { meta.content_type };
        if head {
            let len = std::fs::metadata(&path).map_err(|e| Error::Io { path: path.clone(), source: e })?.len();
            return Ok(([(header::CONTENT_TYPE, ct), (header::CONTENT_LENGTH, len.to_string())]).into_response());
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::Io { path: path.clone(), source: e })?;
        Ok(([(header::CONTENT_TYPE, ct)], bytes).into_response())
    })
    .await
}

/// The checks an upload and its preflight share: the declared SHA-256's
/// form, the size limit, and the authorization event (its blob is checked
/// by the caller, once the SHA-256 is known).
fn admit(s: &BlobServer, headers: &HeaderMap, sha: Option<&str>, size: Option<u64>) -> Result<Authorization, Refusal> {
    if let Some(sha) = sha {
        if !is_sha256_hex(sha) {
            return Err(Refusal(StatusCode::BAD_REQUEST, format!("X-SHA-256 `{sha}` is not a SHA-256 (64 lowercase hex digits)")));
        }
    }
    if let Some(n) = size {
        if n > s.config.max_blob_bytes {
            return Err(Refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("{n} bytes is over this server's limit of {} bytes", s.config.max_blob_bytes)));
        }
    }
    authorize(header_str(headers, "authorization"), Verb::Upload, now()).map_err(unauthorized)
}

/// `HEAD /upload` (BUD-06): would this upload be accepted?
async fn preflight(State(s): State<Arc<BlobServer>>, headers: HeaderMap) -> Result<StatusCode, Refusal> {
    let sha = header_str(&headers, "x-sha-256").ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "missing X-SHA-256 header".into()))?;
    let len = header_str(&headers, "x-content-length").ok_or_else(|| Refusal(StatusCode::LENGTH_REQUIRED, "missing X-Content-Length header".into()))?;
    let len: u64 = len.parse().map_err(|_| Refusal(StatusCode::BAD_REQUEST, format!("X-Content-Length `{len}` is not a byte count")))?;
    admit(&s, &headers, Some(sha), Some(len))?.for_blob(sha).map_err(unauthorized)?;
    Ok(StatusCode::OK)
}

/// `PUT /upload` (BUD-02): stores the body and answers its descriptor.
async fn upload(State(s): State<Arc<BlobServer>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Json<BlobDescriptor>, Refusal> {
    let declared = header_str(&headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    // The authorization must name the SHA-256 of the exact bytes, checked below.
    let auth = admit(&s, &headers, None, declared)?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over this server's limit of {} bytes", s.config.max_blob_bytes))
        }
        e => Refusal(e.status(), e.body_text()),
    })?;
    if body.is_empty() {
        return Err(Refusal(StatusCode::BAD_REQUEST, "empty body: nothing to store".into()));
    }
    let sha = sha256_hex(&body);
    if let Some(x) = header_str(&headers, "x-sha-256") {
        if x != sha {
            return Err(Refusal(StatusCode::CONFLICT, format!("the body's SHA-256 is {sha}, not the X-SHA-256 {x} it was sent with")));
        }
    }
    let owner = auth.for_blob(&sha).map_err(unauthorized)?;
    let ct = header_str(&headers, "content-type").unwrap_or("application/octet-stream").to_owned();
    blocking(move || {
        let meta = s.store(&sha, &body, &ct, &owner)?;
        Ok(Json(s.descriptor(&headers, &sha, body.len() as u64, &meta)))
    })
    .await
}

/// `GET /list/<pubkey>` (BUD-12): the blobs `pubkey` uploaded.
async fn list(State(s): State<Arc<BlobServer>>, headers: HeaderMap, UrlPath(pubkey): UrlPath<String>) -> Result<Json<Vec<BlobDescriptor>>, Refusal> {
    if pubkey.len() != 64 || !pubkey.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal(StatusCode::BAD_REQUEST, format!("`{pubkey}` is not a public key (64 hex digits)")));
    }
    let pubkey = pubkey.to_ascii_lowercase();
    blocking(move || {
        let dir = &s.config.dir;
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
            let e = e.map_err(Error::io(dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(sha) = name.strip_suffix(".json").filter(|h| is_sha256_hex(h)) else { continue };
            if let Some(meta) = s.meta(sha)? {
                if meta.owners.contains(&pubkey) {
                    let size = std::fs::metadata(s.blob_path(sha)).map_or(0, |m| m.len());
                    out.push(s.descriptor(&headers, sha, size, &meta));
                }
            }
        }
        out.sort_by(|a, b| b.uploaded.cmp(&a.uploaded).then_with(|| a.sha256.cmp(&b.sha256)));
        Ok(Json(out))
    })
    .await
}

/// `DELETE /<sha256>` (BUD-12): drops the signer's ownership; the blob goes
/// with its last owner.
async fn delete(State(s): State<Arc<BlobServer>>, headers: HeaderMap, UrlPath(blob): UrlPath<String>) -> Result<StatusCode, Refusal> {
    let sha = blob_hash(&blob)?;
    let owner = check_auth(header_str(&headers, "authorization"), Verb::Delete, Some(&sha), now()).map_err(unauthorized)?;
    blocking(move || {
        let _g = s.meta_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(mut meta) = s.meta(&sha)? else {
            return Err(Refusal(StatusCode::NOT_FOUND, format!("blob {sha} is not on this server")));
        };
        if !meta.owners.contains(&owner) {
            return Err(Refusal(StatusCode::FORBIDDEN, format!("{owner} did not upload blob {sha}")));
        }
        meta.owners.retain(|o| o != &owner);
        if meta.owners.is_empty() {
            for p in [s.blob_path(&sha), s.meta_path(&sha)] {
                std::fs::remove_file(&p).map_err(|e| Error::Io { path: p.clone(), source: e })?;
            }
        } else {
            let json = serde_json::to_vec(&meta).map_err(|e| Error::Io { path: s.meta_path(&sha), source: std::io::Error::other(e) })?;
            BlobServer::write_atomic(&s.meta_path(&sha), &json)?;
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
