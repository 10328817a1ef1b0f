//! Naming stores and blobs: the `--store` URL and the reference a blob is
//! known by once stored.

use serde::{Deserialize, Serialize};

use crate::blossom::BlobDescriptor;
use crate::{is_sha256_hex, Error};

/// Which protocol a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Blossom (BUD-01/02): blobs by SHA-256 over HTTP.
    Blossom,
    /// IPFS through the Kubo RPC API (`/api/v0/…`).
    Ipfs,
}

/// A parsed `--store` URL: `blossom+http://host:port/prefix` or
/// `ipfs+http://host:port` (the Kubo RPC API's address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    /// The protocol.
    pub backend: Backend,
    /// The HTTP base URL, without the scheme prefix or a trailing `/`.
    pub base: String,
}

impl std::str::FromStr for StoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<StoreUrl, Error> {
        let bad = |reason: &str| Error::Url { url: url.to_owned(), reason: reason.to_owned() };
        let (backend, rest) = if let Some(r) = url.strip_prefix("blossom+") {
            (Backend::Blossom, r)
        } else if let Some(r) = url.strip_prefix("ipfs+") {
            (Backend::Ipfs, r)
        } else {
            return Err(bad("expected blossom+http(s)://… or ipfs+http(s)://…"));
        };
        let Some(after) = rest.strip_prefix("http://").or_else(|| rest.strip_prefix("https://")) else {
            return Err(bad("after `blossom+` or `ipfs+` comes an http:// or https:// URL"));
        };
        if after.is_empty() || after.starts_with('/') {
            return Err(bad("no host"));
        }
        if rest.contains(['?', '#', ' ']) {
            return Err(bad("a store URL has no query, fragment or spaces"));
        }
        Ok(StoreUrl { backend, base: rest.trim_end_matches('/').to_owned() })
    }
}

/// A stored blob: its SHA-256 (what it is), and where it can be fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// A Blossom URL (`…/<sha256>`) or `ipfs://<cid>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The CID an IPFS node returned for the bytes (CIDv1, raw leaves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl BlobRef {
    /// The reference to a blob a Blossom server described.
    pub fn from_descriptor(d: &BlobDescriptor) -> BlobRef {
        BlobRef { sha256: d.sha256.clone(), size: d.size, url: Some(d.url.clone()), cid: None }
    }

    /// The reference to name the blob by (a `proof-ref` tag, a job's
    /// `proof_ref`, a report's `proofRef`): its URL where known, else the
    /// bare SHA-256; [`BlobRef::parse`] reads it back.
    pub fn reference(&self) -> String {
        self.url.clone().unwrap_or_else(|| self.sha256.clone())
    }

    /// Parses a reference as a user or a `proof-ref` tag gives it: a
    /// SHA-256, a Blossom URL ending in one (with an optional extension),
    /// or `ipfs://<cid>`; `sha256` supplies the digest an IPFS reference
    /// does not carry.
    ///
    /// # Errors
    /// [`Error::Ref`] when it is none of these, or an `ipfs://` reference
    /// comes without its SHA-256.
    pub fn parse(reference: &str, sha256: Option<&str>) -> Result<BlobRef, Error> {
        let bad = |reason: String| Error::Ref { reference: reference.to_owned(), reason };
        if let Some(s) = sha256 {
            if !is_sha256_hex(s) {
                return Err(bad(format!("`{s}` is not a SHA-256 (64 lowercase hex digits)")));
            }
        }
        if is_sha256_hex(reference) {
            return Ok(BlobRef { sha256: reference.to_owned(), size: 0, url: None, cid: None });
        }
        if let Some(cid) = reference.strip_prefix("ipfs://") {
            if cid.is_empty() || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("not a CID after ipfs://".into()));
            }
            let sha256 = sha256.ok_or_else(|| bad("an IPFS reference needs the blob's SHA-256 beside it (a CID is not a SHA-256)".into()))?;
            return Ok(BlobRef { sha256: sha256.to_owned(), size: 0, url: Some(reference.to_owned()), cid: Some(cid.to_owned()) });
        }
        if reference.starts_with("http://") || reference.starts_with("https://") {
            let last = reference.rsplit('/').next().unwrap_or_default();
            let hash = last.split('.').next().unwrap_or_default();
            if !is_sha256_hex(hash) {
                return Err(bad("a Blossom URL ends in the blob's SHA-256 (BUD-01)".into()));
            }
            if let Some(s) = sha256 {
                if s != hash {
                    return Err(bad(format!("the URL names SHA-256 {hash}, the reference says {s}")));
                }
            }
            return Ok(BlobRef { sha256: hash.to_owned(), size: 0, url: Some(reference.to_owned()), cid: None });
        }
        Err(bad("expected a SHA-256, a Blossom URL or ipfs://<cid>".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "b1674191a88ec5cdd733e4240a81803105dc412d6c6708d53ab94fc248f4f553";

    #[test]
    fn store_urls() {
        let u: StoreUrl = "blossom+http://127.0.0.1:8080/blossom/".parse().unwrap();
        assert_eq!(u, StoreUrl { backend: Backend::Blossom, base: "http://127.0.0.1:8080/blossom".into() });
        let u: StoreUrl = "ipfs+http://127.0.0.1:5001".parse().unwrap();
        assert_eq!(u.backend, Backend::Ipfs);
        for bad in ["http://x", "blossom+ftp://x", "ipfs+http://", "blossom+http://x/?a=1"] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert_eq!(BlobRef::parse(H, None).unwrap().sha256, H);
        let r = BlobRef::parse(&format!("http://h:1/blossom/{H}.bin"), None).unwrap();
        assert_eq!(r.sha256, H);
        let r = BlobRef::parse("ipfs://bafkreiabc", Some(H)).unwrap();
        assert_eq!(r.cid.as_deref(), Some("bafkreiabc"));
        assert!(BlobRef::parse("ipfs://bafkreiabc", None).is_err());
        assert!(BlobRef::parse("http://h/blossom/nothash", None).is_err());
        assert!(BlobRef::parse(&format!("http://h/{H}"), Some(&H.replace('b', "c"))).is_err());
        assert!(BlobRef::parse(&H.to_uppercase(), None).is_err());
    }
}
