//! Reading a log that another process serves over HTTP, by C2SP tlog-tiles:
//! `GET <base>/checkpoint` and `GET <base>/tile/entries/<N>[.p/<W>]`.
//!
//! Nothing the server says is taken on trust: the checkpoint's signature is
//! checked against the log's verifier key (chosen by the caller, never
//! fetched), and the entries read are hashed into their RFC 9162 root,
//! which must equal the signed checkpoint's.

use crate::layout::bundle_for_entry;
use crate::reader::verify_checkpoint;
use crate::store::bundle_entries;
use crate::{Error, Result, CHECKPOINT_FILE};
use zkaudit_merkle::{leaf_hash, CompactRange};
use zkaudit_note::{Checkpoint, Note, VerifierKey};

/// A log served by tlog-tiles at a base URL, as of its signed checkpoint.
pub struct RemoteLog {
    http: Http,
    checkpoint: Checkpoint,
}

/// GET requests below one base URL, with an optional bearer token.
struct Http {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl RemoteLog {
    /// Fetches `<base>/checkpoint` (with `token` as a bearer token, if
    /// given), checks its signature against `key` and that the key is named
    /// after the checkpoint's origin.
    ///
    /// # Errors
    /// [`Error::Fetch`] if the request fails or is refused;
    /// [`Error::Note`]/[`Error::Checkpoint`] for a malformed or badly
    /// signed note; [`Error::WrongKey`] for a key of another log.
    pub fn open(base: &str, token: Option<&str>, key: &VerifierKey) -> Result<Self> {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let http = Http { base: base.trim_end_matches('/').to_owned(), token: token.map(str::to_owned), agent };
        let bytes = http.get(CHECKPOINT_FILE)?.ok_or_else(|| Error::Fetch { url: http.url(CHECKPOINT_FILE), reason: "404 Not Found".into() })?;
        let note = Note::parse(&bytes)?;
        let checkpoint = Checkpoint::parse(note.text())?;
        verify_checkpoint(&note, &checkpoint, key)?;
        Ok(Self { http, checkpoint })
    }

    /// The signed checkpoint the log is read at.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Tree size of the checkpoint.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// Calls `f(index, entry)` for every entry of the checkpoint's tree, in
    /// order, one request per entry bundle (256 entries), then checks that
    /// the entries' RFC 9162 root (§2.1.1) is the checkpoint's.
    ///
    /// `f` sees each entry before that final check: a caller must discard
    /// what it kept from them when this returns an error. A partial bundle
    /// the server no longer has is read from the full one, as tlog-tiles
    /// allows.
    ///
    /// # Errors
    /// [`Error::Fetch`] for a failed request; [`Error::Corrupt`] (naming the
    /// URL) for a bundle that does not split into its entries, or entries
    /// whose root is not the checkpoint's; any error of `f`.
    pub fn for_each_entry(&self, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let size = self.size();
        let mut tree = CompactRange::new();
        let mut index = 0;
        while index < size {
            let id = bundle_for_entry(index, size);
            let (path, data) = match self.http.get(&id.path())? {
                Some(data) => (id.path(), data),
                None if !id.is_full() => {
                    let full = id.full_path();
                    let data = self
                        .http
                        .get(&full)?
                        .ok_or_else(|| Error::Fetch { url: self.http.url(&id.path()), reason: "404 Not Found, and no full bundle either".into() })?;
                    (full, data)
                }
                None => return Err(Error::Fetch { url: self.http.url(&id.path()), reason: "404 Not Found".into() }),
            };
            let entries = bundle_entries(&data, id).map_err(|e| Error::corrupt(self.http.url(&path), e.to_string()))?;
            for entry in entries.iter().take(usize::from(id.width)) {
                tree.append(leaf_hash(entry), |_, _, _| {});
                f(index, entry)?;
                index += 1;
            }
        }
        let root = tree.root();
        if root != self.checkpoint.root {
            return Err(Error::corrupt(
                self.http.url("tile/entries"),
                format!("the {size} entries served hash to root {}, the signed checkpoint says {}", hex::encode(root), hex::encode(self.checkpoint.root)),
            ));
        }
        Ok(())
    }
}

impl Http {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// The body of `GET <base>/<path>`, `None` on 404.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(path);
        let fail = |reason: String| Error::Fetch { url: url.clone(), reason };
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        if status == 404 {
            return Ok(None);
        }
        let body = resp.body_mut().with_config().limit(MAX_BODY_BYTES).read_to_vec().map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_owned();
            return Err(fail(format!("{status}: {text}")));
        }
        Ok(Some(body))
    }
}

/// Largest body read: a full bundle of 256 entries of at most 65,535 bytes
/// each, with their 2-byte length prefixes.
const MAX_BODY_BYTES: u64 = 256 * (65_535 + 2);
