//! A client of the IPFS Kubo RPC API (`POST /api/v0/…`): `add` with CIDv1
//! and raw leaves, `cat`, `pin/add`, `pin/rm` and `repo/gc`. Any node that
//! speaks this API works (Kubo, or js-ipfs's HTTP API in the tests).
//!
//! The CID returned by `add` is kept as the node gave it: it is not a
//! function of the SHA-256 alone (files larger than a chunk become a DAG),
//! so this client never derives one from the other.

use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// A Kubo RPC client: one node, a timeout on every call.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct Added {
    #[serde(rename = "Hash")]
    hash: Option<String>,
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(rename = "Message")]
    message: String,
}

impl Client {
    /// A client of the node whose RPC API is at `base` (`http://host:5001`).
    pub fn new(base: &str, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into();
        Client { base: base.trim_end_matches('/').to_owned(), agent }
    }

    /// The node's RPC base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /api/v0/<path>` with `body` (or none), returning the answer's
    /// bytes (at most `limit`).
    fn call(&self, path: &str, body: Option<(&str, Vec<u8>)>, limit: u64) -> Result<Vec<u8>, Error> {
        let url = format!("{}/api/v0/{path}", self.base);
        let unreachable = |e: ureq::Error| Error::Unreachable { store: self.base.clone(), reason: e.to_string() };
        let sent = match body {
            Some((ct, b)) => self.agent.post(&url).header("Content-Type", ct).send(&b[..]),
            None => self.agent.post(&url).send_empty(),
        };
        let mut r = sent.map_err(unreachable)?;
        let status = r.status().as_u16();
        let bytes = r.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::TooLarge { what: url.clone(), size: limit + 1, limit },
            e => unreachable(e),
        })?;
        if !(200..300).contains(&status) {
            let reason = serde_json::from_slice::<RpcError>(&bytes).map(|e| e.message).unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(Error::Status { store: self.base.clone(), status, reason });
        }
        Ok(bytes)
    }

    /// Adds `bytes` as one file (`add?cid-version=1&raw-leaves=true`) and
    /// returns the CID the node computed. Not pinned: see [`Client::pin_add`].
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Status`] with the node's message, or
    /// [`Error::Protocol`] for an answer without a CID.
    pub fn add(&self, bytes: &[u8]) -> Result<String, Error> {
        let boundary = format!("zkaudit-{}", hex::encode(rand::random::<[u8; 12]>()));
        let mut body = Vec::with_capacity(bytes.len() + 256);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let out = self.call(
            "add?cid-version=1&raw-leaves=true&cid-base=base32&pin=false&progress=false",
            Some((&format!("multipart/form-data; boundary={boundary}"), body)),
            1 << 20,
        )?;
        // One JSON object per line; the file's is the last with a Hash.
        let text = String::from_utf8_lossy(&out);
        text.lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Added>(l).ok()?.hash)
            .ok_or_else(|| Error::Protocol { store: self.base.clone(), reason: format!("`add` answered no CID: {}", text.trim()) })
    }

    /// The bytes of `cid` (`cat`), at most `limit`.
    ///
    /// # Errors
    /// [`Error::Status`] (the node does not have it, or the CID is bad),
    /// [`Error::TooLarge`], [`Error::Unreachable`].
    pub fn cat(&self, cid: &str, limit: u64) -> Result<Vec<u8>, Error> {
        self.call(&format!("cat?arg={cid}"), None, limit)
    }

    /// Pins `cid` (`pin/add`), exempting it from the node's GC.
    ///
    /// # Errors
    /// As [`Client::cat`].
    pub fn pin_add(&self, cid: &str) -> Result<(), Error> {
        self.call(&format!("pin/add?arg={cid}"), None, 1 << 20).map(drop)
    }

    /// Unpins `cid` (`pin/rm`). A CID that is not pinned is not an error.
    ///
    /// # Errors
    /// As [`Client::cat`].
    pub fn pin_rm(&self, cid: &str) -> Result<(), Error> {
        match self.call(&format!("pin/rm?arg={cid}"), None, 1 << 20) {
            Err(Error::Status { reason, .. }) if reason.contains("not pinned") => Ok(()),
            r => r.map(drop),
        }
    }

    /// Runs the node's garbage collection (`repo/gc`).
    ///
    /// # Errors
    /// As [`Client::cat`].
    pub fn repo_gc(&self) -> Result<(), Error> {
        self.call("repo/gc", None, 64 << 20).map(drop)
    }
}
