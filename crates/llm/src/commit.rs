//! Salted commitments to what was asked and answered, the private store
//! that keeps the salts and contents, and selective disclosure.
//!
//! A call's event carries, as `input`, `SHA-256(REQUEST_TAG ‖ salt ‖
//! JCS(request document))` and, as `output`, the same with
//! [`RESPONSE_TAG`] over the response document, each with its own fresh
//! 32-byte salt (JCS is RFC 8785). The salt makes a short prompt
//! unguessable from its hash; the tags keep a request commitment from ever
//! being read as a response commitment.
//!
//! The salts and the documents live in a [`CallStore`] (a SQLite file, mode
//! 0600), never in the log. [`CallStore::shred`] deletes a call's salts and
//! contents ("crypto-shredding"): the log stays intact and verifiable, but
//! the call's commitments can no longer be opened.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use zkaudit_event::Digest;

/// Domain tag of request commitments.
pub const REQUEST_TAG: &[u8] = b"zkaudit/llm/request/v1\0";
/// Domain tag of response commitments.
pub const RESPONSE_TAG: &[u8] = b"zkaudit/llm/response/v1\0";

/// A 32-byte commitment salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; 32]);

impl Salt {
    /// A fresh salt from the OS's random source.
    pub fn fresh() -> Salt {
        Salt(rand::random())
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(…)")
    }
}

/// The RFC 8785 canonical JSON of `doc`.
pub fn canonical(doc: &Value) -> String {
    // Values built from parsed JSON hold only finite numbers: always writable.
    zkaudit_event::jcs::to_string(doc).unwrap_or_else(|e| unreachable!("canonical JSON of a parsed value: {e}"))
}

/// `SHA-256(tag ‖ salt ‖ canonical_json)`.
pub fn commit(tag: &[u8], salt: &Salt, canonical_json: &str) -> Digest {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(salt.0);
    h.update(canonical_json.as_bytes());
    Digest(h.finalize().into())
}

/// One side (request or response) of a call as committed: the canonical
/// document and its salt.
#[derive(Clone, Debug)]
pub struct Opening {
    /// RFC 8785 JSON of the document.
    pub canonical: String,
    /// The salt.
    pub salt: Salt,
}

impl Opening {
    /// Commits to `doc` with a fresh salt.
    pub fn new(doc: &Value) -> Opening {
        Opening { canonical: canonical(doc), salt: Salt::fresh() }
    }

    /// The commitment under `tag`.
    pub fn commitment(&self, tag: &[u8]) -> Digest {
        commit(tag, &self.salt, &self.canonical)
    }
}

/// What the store keeps for one call.
#[derive(Clone, Debug)]
pub struct StoredCall {
    /// The call's ID (`event.id` of its event).
    pub call_id: String,
    /// The request document and salt.
    pub request: Opening,
    /// The response document and salt.
    pub response: Opening,
}

/// Why the call store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("call store {path}: {source}")]
    Sql {
        /// The store file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The store file's directory could not be made or protected.
    #[error("call store {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No call has this ID in the store.
    #[error("no call {0} in the call store")]
    Unknown(String),
    /// The call's salts were deleted: its content can never be proven again.
    #[error("call {call_id} was shredded at {at}: its salts are gone, so its commitments can no longer be opened")]
    Shredded {
        /// The call.
        call_id: String,
        /// When (RFC 3339).
        at: String,
    },
    /// A stored row is damaged.
    #[error("call store {path}: call {call_id}: {what}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The call.
        call_id: String,
        /// What is wrong.
        what: String,
    },
}

/// The private store of salts and call contents (SQLite, WAL).
pub struct CallStore {
    conn: Connection,
    path: PathBuf,
}

impl CallStore {
    /// Opens or creates the store at `path` (its directory made 0700 if new,
    /// the file 0600).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Sql`].
    pub fn open(path: &Path) -> Result<CallStore, StoreError> {
        let io = |source| StoreError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                set_mode(dir, 0o700).map_err(io)?;
            }
        }
        let sql = |source| StoreError::Sql { path: path.to_owned(), source };
        let conn = Connection::open(path).map_err(sql)?;
        set_mode(path, 0o600).map_err(io)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS calls (
               call_id TEXT PRIMARY KEY,
               request TEXT, request_salt BLOB,
               response TEXT, response_salt BLOB,
               shredded_at TEXT
             );",
        )
        .map_err(sql)?;
        Ok(CallStore { conn, path: path.to_owned() })
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql { path: self.path.clone(), source }
    }

    /// Stores calls in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Sql`]; then none of them is stored.
    pub fn put(&mut self, calls: &[StoredCall]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Sql { path: self.path.clone(), source: e })?;
        {
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO calls (call_id, request, request_salt, response, response_salt) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(|e| StoreError::Sql { path: self.path.clone(), source: e })?;
            for c in calls {
                st.execute(params![c.call_id, c.request.canonical, &c.request.salt.0[..], c.response.canonical, &c.response.salt.0[..]])
                    .map_err(|e| StoreError::Sql { path: self.path.clone(), source: e })?;
            }
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// The stored call.
    ///
    /// # Errors
    /// [`StoreError::Unknown`], [`StoreError::Shredded`], [`StoreError::Corrupt`] or [`StoreError::Sql`].
    pub fn get(&self, call_id: &str) -> Result<StoredCall, StoreError> {
        type Row = (Option<String>, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>, Option<String>);
        let row: Option<Row> = self
            .conn
            .query_row("SELECT request, request_salt, response, response_salt, shredded_at FROM calls WHERE call_id = ?1", [call_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((req, req_salt, resp, resp_salt, shredded)) = row else { return Err(StoreError::Unknown(call_id.to_owned())) };
        if let Some(at) = shredded {
            return Err(StoreError::Shredded { call_id: call_id.to_owned(), at });
        }
        let corrupt = |what: &str| StoreError::Corrupt { path: self.path.clone(), call_id: call_id.to_owned(), what: what.to_owned() };
        let salt = |b: Option<Vec<u8>>, which: &str| -> Result<Salt, StoreError> {
            b.and_then(|b| <[u8; 32]>::try_from(b).ok()).map(Salt).ok_or_else(|| corrupt(&format!("{which} salt is not 32 bytes")))
        };
        Ok(StoredCall {
            call_id: call_id.to_owned(),
            request: Opening { canonical: req.ok_or_else(|| corrupt("no request"))?, salt: salt(req_salt, "request")? },
            response: Opening { canonical: resp.ok_or_else(|| corrupt("no response"))?, salt: salt(resp_salt, "response")? },
        })
    }

    /// Deletes a call's salts and contents, keeping only the fact and time
    /// of the deletion. Returns whether there was anything to delete.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] or [`StoreError::Sql`].
    pub fn shred(&mut self, call_id: &str) -> Result<bool, StoreError> {
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let n = self
            .conn
            .execute(
                "UPDATE calls SET request = NULL, request_salt = NULL, response = NULL, response_salt = NULL, shredded_at = ?2
                 WHERE call_id = ?1 AND shredded_at IS NULL",
                params![call_id, now],
            )
            .map_err(|e| self.sql(e))?;
        if n == 0 {
            let known: bool = self.conn.query_row("SELECT COUNT(*) > 0 FROM calls WHERE call_id = ?1", [call_id], |r| r.get(0)).map_err(|e| self.sql(e))?;
            if !known {
                return Err(StoreError::Unknown(call_id.to_owned()));
            }
        }
        // Make the deleted pages unreadable in the file, not just unlinked.
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;").map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// A call opened for an auditor: both documents with their salts, the
/// logged event (its entry, exactly), and the entry's RFC 9162 inclusion
/// proof against a signed checkpoint. `zkaudit llm check-disclosure`
/// checks it with nothing but the log's verifier key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// The call's ID.
    pub call_id: String,
    /// The request document (method, path, body as received).
    pub request: Value,
    /// Its salt, 64 hex digits.
    pub request_salt: String,
    /// The response document (status and body, or the stream's events, as delivered).
    pub response: Value,
    /// Its salt, 64 hex digits.
    pub response_salt: String,
    /// The logged event's entry: its RFC 8785 JSON, exactly as in the log.
    pub entry: String,
    /// The entry's inclusion proof (as `zkaudit log inclusion --json` writes it).
    pub inclusion: Value,
    /// The signed checkpoint the proof is for (a C2SP signed note).
    pub checkpoint: String,
}

/// What checking a disclosure established.
#[derive(Clone, Debug, Serialize)]
pub struct DisclosureCheck {
    /// The call.
    pub call_id: String,
    /// The event's leaf index.
    pub leaf_index: u64,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// The log's origin.
    pub origin: String,
    /// The request commitment (the event's `input`).
    pub input: Digest,
    /// The response commitment (the event's `output`).
    pub output: Digest,
}

/// Why a disclosure was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The entry is not in the log the checkpoint signs.
    #[error(transparent)]
    Inclusion(#[from] zkaudit_app::inclusion::InclusionError),
    /// A field is malformed.
    #[error("disclosure field `{field}`: {why}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A document does not open the event's commitment.
    #[error("the disclosed {which} does not match the event's `{field}` commitment {logged} (it hashes to {computed})")]
    Mismatch {
        /// `request` or `response`.
        which: &'static str,
        /// `input` or `output`.
        field: &'static str,
        /// What the event says.
        logged: Digest,
        /// What the disclosure hashes to.
        computed: Digest,
    },
}

impl Disclosure {
    /// Checks the entry's inclusion under the checkpoint signed by `vkey`,
    /// that the entry is the call's event, and that both documents open
    /// its commitments.
    ///
    /// # Errors
    /// [`DisclosureError`] naming the first check that failed.
    pub fn check(&self, vkey: &zkaudit_note::VerifierKey) -> Result<DisclosureCheck, DisclosureError> {
        let field = |field: &'static str, why: String| DisclosureError::Field { field, why };
        let proof = serde_json::to_vec(&self.inclusion).map_err(|e| field("inclusion", e.to_string()))?;
        let included = zkaudit_app::inclusion::check(&proof, self.checkpoint.as_bytes(), vkey, Some(self.entry.as_bytes()))?;
        let event = zkaudit_event::Event::from_entry(self.entry.as_bytes()).map_err(|e| field("entry", e.to_string()))?;
        if event.metadata.get("event.id").and_then(Value::as_str) != Some(self.call_id.as_str()) {
            return Err(field("entry", format!("the event is not call {} (its event.id is {:?})", self.call_id, event.metadata.get("event.id"))));
        }
        let salt = |name: &'static str, hex: &str| -> Result<Salt, DisclosureError> {
            let b = hex::decode(hex).map_err(|e| field(name, e.to_string()))?;
            <[u8; 32]>::try_from(b).map(Salt).map_err(|_| field(name, "a salt is 32 bytes (64 hex digits)".into()))
        };
        let req = commit(REQUEST_TAG, &salt("request_salt", &self.request_salt)?, &canonical(&self.request));
        if req != event.input {
            return Err(DisclosureError::Mismatch { which: "request", field: "input", logged: event.input, computed: req });
        }
        let resp = commit(RESPONSE_TAG, &salt("response_salt", &self.response_salt)?, &canonical(&self.response));
        if resp != event.output {
            return Err(DisclosureError::Mismatch { which: "response", field: "output", logged: event.output, computed: resp });
        }
        Ok(DisclosureCheck {
            call_id: self.call_id.clone(),
            leaf_index: included.leaf_index,
            tree_size: included.tree_size,
            origin: included.origin,
            input: event.input,
            output: event.output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitments_are_salted_and_domain_separated() {
        let doc = serde_json::json!({"b": 1, "a": "hi"});
        let o = Opening::new(&doc);
        assert_eq!(o.canonical, r#"{"a":"hi","b":1}"#);
        assert_ne!(o.commitment(REQUEST_TAG), o.commitment(RESPONSE_TAG));
        assert_ne!(o.commitment(REQUEST_TAG), Opening::new(&doc).commitment(REQUEST_TAG));
        let mut h = Sha256::new();
        h.update(b"zkaudit/llm/request/v1\0");
        h.update(o.salt.0);
        h.update(br#"{"a":"hi","b":1}"#);
        assert_eq!(o.commitment(REQUEST_TAG).0, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn store_round_trip_and_shred() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private/llm-calls.sqlite");
        let mut s = CallStore::open(&path).unwrap();
        let call =
            StoredCall { call_id: "c1".into(), request: Opening::new(&serde_json::json!({"q": 1})), response: Opening::new(&serde_json::json!({"a": 2})) };
        s.put(std::slice::from_ref(&call)).unwrap();
        let got = s.get("c1").unwrap();
        assert_eq!(got.request.commitment(REQUEST_TAG), call.request.commitment(REQUEST_TAG));
        assert_eq!(got.response.salt, call.response.salt);
        assert!(s.shred("c1").unwrap());
        assert!(matches!(s.get("c1"), Err(StoreError::Shredded { .. })));
        assert!(!s.shred("c1").unwrap());
        assert!(matches!(s.shred("nope"), Err(StoreError::Unknown(_))));
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(5).any(|w| w == br#""q":1"#), "the shredded content is still in the file");
    }
}
