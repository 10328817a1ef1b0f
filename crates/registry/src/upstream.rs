//! The upstream registries: where each ecosystem's requests go, found the
//! way its own client finds them, and the HTTP client that fetches from
//! them.
//!
//! Where no URL is given, the gateway asks the client's own configuration
//! at start-up: `npm config get registry`; pip's `index-url` (from
//! `$PIP_INDEX_URL`, then `pip config list`), else pip's built-in default
//! as pip itself reports it; for cargo, a `[source.crates-io]
//! replace-with` in `$CARGO_HOME/config.toml` naming a `registry =
//! "sparse+…"` source. This crate names no registry host of its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;

use crate::package::Ecosystem;

/// Largest body fetched from an upstream, in bytes (artifacts and
/// metadata alike); past it the fetch fails rather than truncating.
pub const MAX_BODY_BYTES: u64 = 512 << 20;

/// The upstream base URL of each ecosystem; `None` turns it off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upstreams {
    /// npm registry base, e.g. the value of `npm config get registry`.
    pub npm: Option<String>,
    /// PyPI simple-API base (…`/simple`).
    pub pypi: Option<String>,
    /// A sparse index base (the URL after `sparse+`).
    pub cargo: Option<String>,
}

impl Upstreams {
    /// The base for `eco`, without a trailing slash.
    pub fn get(&self, eco: Ecosystem) -> Option<&str> {
        match eco {
            Ecosystem::Npm => self.npm.as_deref(),
            Ecosystem::Pypi => self.pypi.as_deref(),
            Ecosystem::Cargo => self.cargo.as_deref(),
        }
        .map(|u| u.trim_end_matches('/'))
    }

    /// Fills each missing URL from the client's own configuration, and
    /// returns, per ecosystem still missing, why none was found.
    pub fn discover(&mut self) -> Vec<(Ecosystem, String)> {
        let mut missing = Vec::new();
        if self.npm.is_none() {
            match npm_registry() {
                Ok(u) => self.npm = Some(u),
                Err(why) => missing.push((Ecosystem::Npm, why)),
            }
        }
        if self.pypi.is_none() {
            match pip_index() {
                Ok(u) => self.pypi = Some(u),
                Err(why) => missing.push((Ecosystem::Pypi, why)),
            }
        }
        if self.cargo.is_none() {
            match cargo_index() {
                Ok(u) => self.cargo = Some(u),
                Err(why) => missing.push((Ecosystem::Cargo, why)),
            }
        }
        missing
    }
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{shown}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn http_url(u: &str, from: &str) -> Result<String, String> {
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(u.to_owned())
    } else {
        Err(format!("{from} gave {u:?}, which is not an http(s) URL"))
    }
}

/// `npm config get registry`.
fn npm_registry() -> Result<String, String> {
    let u = output(Command::new("npm").args(["config", "get", "registry"]))?;
    http_url(&u, "npm config get registry")
}

/// pip's index URL: `$PIP_INDEX_URL`, `pip config list`, or pip's default.
fn pip_index() -> Result<String, String> {
    if let Ok(u) = std::env::var("PIP_INDEX_URL") {
        return http_url(&u, "$PIP_INDEX_URL");
    }
    let python = std::env::var("ZKAUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    if let Ok(list) = output(Command::new(&python).args(["-m", "pip", "config", "list"])) {
        for line in list.lines() {
            if let Some((key, value)) = line.split_once('=') {
                if key.ends_with(".index-url") {
                    return http_url(value.trim_matches(['\'', '"']), "pip config list");
                }
            }
        }
    }
    let u = output(Command::new(&python).args(["-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"]))?;
    http_url(&u, "pip's built-in default index")
}

/// A sparse registry that cargo's configuration puts in place of crates.io.
fn cargo_index() -> Result<String, String> {
    let home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(home) = home else { return Err("neither $CARGO_HOME nor $HOME is set".into()) };
    for name in ["config.toml", "config"] {
        let path = home.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let source = doc.get("source").and_then(|s| s.as_table());
        let replaced = source.and_then(|s| s.get("crates-io")).and_then(|c| c.get("replace-with")).and_then(|r| r.as_str());
        if let Some(r) = replaced {
            let reg = source.and_then(|s| s.get(r)).and_then(|t| t.get("registry")).and_then(|u| u.as_str());
            if let Some(u) = reg.and_then(|u| u.strip_prefix("sparse+")) {
                return http_url(u, &path.display().to_string());
            }
        }
    }
    Err(format!(
        "cargo's crates.io index is built into cargo and no sparse replacement is configured in {}; give --upstream-cargo",
        home.join("config.toml").display()
    ))
}

/// Why an upstream fetch failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection, a timeout, or a body cut short (the length it
    /// declared was not reached).
    #[error("{url}: {why}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The client's message.
        why: String,
    },
    /// The upstream answered with an error status.
    #[error("{url}: the upstream answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body was larger than [`MAX_BODY_BYTES`].
    #[error("{url}: the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge {
        /// The URL.
        url: String,
    },
}

/// A whole response from an upstream.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The URL after redirects.
    pub url: String,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The whole body.
    pub body: Bytes,
}

/// The client for upstream registries: HTTPS with the system's trust
/// store (so a TLS-inspecting egress proxy's CA in it is honoured),
/// redirects followed, connect timeout 10 s, whole request 300 s.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    /// A client.
    ///
    /// # Errors
    /// The TLS set-up's message, e.g. when no trust store is found.
    pub fn new() -> Result<Fetcher, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("zkaudit-registry-gateway/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Fetcher { client })
    }

    /// GETs `url` whole, with `accept` as the `Accept` header. A body is
    /// returned only if it arrived complete: a connection closed before
    /// the declared `Content-Length`, or a broken chunked body, is
    /// [`FetchError::Unreachable`].
    ///
    /// # Errors
    /// [`FetchError`].
    pub async fn get(&self, url: &str, accept: &str) -> Result<Fetched, FetchError> {
        let unreachable = |e: reqwest::Error| FetchError::Unreachable { url: url.to_owned(), why: error_chain(&e) };
        let mut resp = self.client.get(url).header(reqwest::header::ACCEPT, accept).send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status { url: url.to_owned(), status: status.as_u16() });
        }
        let declared = resp.content_length();
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(FetchError::TooLarge { url: url.to_owned() });
        }
        let final_url = resp.url().to_string();
        let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
        let broke = |got: usize, e: reqwest::Error| FetchError::Unreachable {
            url: url.to_owned(),
            why: format!("the body ended after {got} of {} bytes: {}", declared.map_or_else(|| "?".to_owned(), |n| n.to_string()), error_chain(&e)),
        };
        while let Some(chunk) = resp.chunk().await.map_err(|e| broke(body.len(), e))? {
            if (body.len() + chunk.len()) as u64 > MAX_BODY_BYTES {
                return Err(FetchError::TooLarge { url: url.to_owned() });
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(n) = declared {
            if body.len() as u64 != n {
                return Err(FetchError::Unreachable { url: url.to_owned(), why: format!("the body ended after {} of {n} bytes", body.len()) });
            }
        }
        Ok(Fetched { url: final_url, content_type, body: Bytes::from(body) })
    }
}

/// An error with its causes, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
