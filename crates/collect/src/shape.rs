//! The common shape of collected events: ECS field names, OCSF classes and
//! content digests.
//!
//! Metadata keys are ECS field names written flat with dots
//! (`"process.entity_id"`, as Elasticsearch accepts them), so that an
//! auditor's `meta(I, 'process.executable', X)` finds them directly and a
//! SIEM export needs no renaming. Each event also carries
//! `ocsf.class_uid` and `ocsf.activity_id` from the OCSF schema (1.x).

use std::io::{self, Read};
use std::path::Path;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zkaudit_event::{Digest, Event, Layer, Timestamp, EVENT_VERSION};

/// Most parents an event lists; past this the list is cut and
/// `zkaudit.parents_truncated` says how many were left out (an event must
/// fit a tlog-tiles entry, 65,535 bytes; each digest takes 73).
pub const MAX_PARENTS: usize = 512;

/// The OCSF event classes zkaudit's collectors emit (OCSF schema 1.x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcsfClass {
    /// File System Activity (1001), System Activity category.
    FileSystemActivity,
    /// Process Activity (1007), System Activity category.
    ProcessActivity,
    /// Network Activity (4001), Network Activity category.
    NetworkActivity,
    /// HTTP Activity (4002), Network Activity category.
    HttpActivity,
    /// DNS Activity (4003), Network Activity category.
    DnsActivity,
    /// API Activity (6003), Application Activity category: a call to a
    /// service's API, such as an LLM provider's.
    ApiActivity,
    /// Detection Finding (2004), Findings category: an anomaly or rule
    /// match found in what was recorded.
    DetectionFinding,
}

impl OcsfClass {
    /// The OCSF `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            OcsfClass::FileSystemActivity => 1001,
            OcsfClass::ProcessActivity => 1007,
            OcsfClass::NetworkActivity => 4001,
            OcsfClass::HttpActivity => 4002,
            OcsfClass::DnsActivity => 4003,
            OcsfClass::ApiActivity => 6003,
            OcsfClass::DetectionFinding => 2004,
        }
    }

    /// The matching ECS `event.category`.
    pub fn ecs_category(self) -> &'static str {
        match self {
            OcsfClass::FileSystemActivity => "file",
            OcsfClass::ProcessActivity => "process",
            OcsfClass::NetworkActivity | OcsfClass::HttpActivity | OcsfClass::DnsActivity => "network",
            OcsfClass::ApiActivity => "web",
            OcsfClass::DetectionFinding => "intrusion_detection",
        }
    }
}

/// An event being assembled by a collector; [`Observation::into_event`]
/// makes the ledger event.
#[derive(Clone, Debug)]
pub struct Observation {
    timestamp: Timestamp,
    layer: Layer,
    kind: String,
    input: Digest,
    output: Digest,
    metadata: Map<String, Value>,
    parents: Vec<Digest>,
}

impl Observation {
    /// An event of type `kind` observed now, of OCSF `class` with
    /// `activity_id`, whose ECS `event.action` is `action`. `input` and
    /// `output` start as the digest of no bytes.
    pub fn new(kind: &str, layer: Layer, class: OcsfClass, activity_id: u32, action: &str) -> Self {
        let mut metadata = Map::new();
        metadata.insert("event.kind".into(), "event".into());
        metadata.insert("event.category".into(), class.ecs_category().into());
        metadata.insert("event.action".into(), action.into());
        metadata.insert("ocsf.class_uid".into(), class.uid().into());
        metadata.insert("ocsf.activity_id".into(), activity_id.into());
        Self { timestamp: Timestamp::now(), layer, kind: kind.to_owned(), input: empty_digest(), output: empty_digest(), metadata, parents: Vec::new() }
    }

    /// A metric sample (ECS `event.kind: metric`, `event.category: host`),
    /// for which OCSF has no event class, so it carries none.
    pub fn metric(kind: &str, layer: Layer, action: &str) -> Self {
        let mut metadata = Map::new();
        metadata.insert("event.kind".into(), "metric".into());
        metadata.insert("event.category".into(), "host".into());
        metadata.insert("event.action".into(), action.into());
        Self { timestamp: Timestamp::now(), layer, kind: kind.to_owned(), input: empty_digest(), output: empty_digest(), metadata, parents: Vec::new() }
    }

    /// Sets when it happened (default: when [`Observation::new`] ran).
    pub fn at(mut self, t: Timestamp) -> Self {
        self.timestamp = t;
        self
    }

    /// Sets the `input` digest.
    pub fn input(mut self, d: Digest) -> Self {
        self.input = d;
        self
    }

    /// Sets the `output` digest.
    pub fn output(mut self, d: Digest) -> Self {
        self.output = d;
        self
    }

    /// Sets metadata field `key` (an ECS name, or `zkaudit.*` for ours).
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// Sets every field of `fields` (e.g. a serialized Zeek log record).
    pub fn fields(mut self, fields: Map<String, Value>) -> Self {
        self.metadata.extend(fields);
        self
    }

    /// Sets `event.outcome` to `success` or `failure`.
    pub fn outcome(self, ok: bool) -> Self {
        self.field("event.outcome", if ok { "success" } else { "failure" })
    }

    /// Adds a parent (lineage) digest, once.
    pub fn parent(mut self, d: Digest) -> Self {
        if !self.parents.contains(&d) {
            self.parents.push(d);
        }
        self
    }

    /// Adds parents, each once, in order.
    pub fn parents(mut self, ds: impl IntoIterator<Item = Digest>) -> Self {
        for d in ds {
            self = self.parent(d);
        }
        self
    }

    /// The ledger event. Parents beyond [`MAX_PARENTS`] are left out and
    /// counted in `zkaudit.parents_truncated`.
    pub fn into_event(mut self) -> Event {
        if self.parents.len() > MAX_PARENTS {
            let cut = self.parents.len() - MAX_PARENTS;
            self.parents.truncate(MAX_PARENTS);
            self.metadata.insert("zkaudit.parents_truncated".into(), cut.into());
        }
        Event {
            version: EVENT_VERSION.to_owned(),
            timestamp: self.timestamp,
            layer: self.layer,
            kind: self.kind,
            input: self.input,
            output: self.output,
            metadata: self.metadata,
            proof: None,
            parents: (!self.parents.is_empty()).then_some(self.parents),
        }
    }
}

/// Why a collector missed something (the `event.action` of a gap event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapReason {
    /// The kernel dropped records (e.g. the audit `lost` counter rose).
    KernelLost,
    /// A buffer of the collector's own was full.
    BufferFull,
    /// The spool reached its size cap; batches were not kept.
    SpoolFull,
    /// A traced process's state could not be read (memory, file, socket).
    Unreadable,
}

impl GapReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::KernelLost => "kernel_lost",
            GapReason::BufferFull => "buffer_full",
            GapReason::SpoolFull => "spool_full",
            GapReason::Unreadable => "unreadable",
        }
    }
}

/// The event type of gap events.
pub const GAP_TYPE: &str = "collector_gap";

/// A gap event: collector `collector` missed `lost` events (or items, per
/// `detail`) for `reason`. Type `collector_gap`, ECS `event.kind`
/// `pipeline_error`; `zkaudit.gap.lost` holds the count.
pub fn gap(collector: &str, layer: Layer, reason: GapReason, lost: u64, detail: &str) -> Event {
    let mut metadata = Map::new();
    metadata.insert("event.kind".into(), "pipeline_error".into());
    metadata.insert("event.action".into(), reason.as_str().into());
    metadata.insert("observer.type".into(), collector.into());
    metadata.insert("zkaudit.gap.lost".into(), lost.into());
    metadata.insert("message".into(), detail.into());
    Event {
        version: EVENT_VERSION.to_owned(),
        timestamp: Timestamp::now(),
        layer,
        kind: GAP_TYPE.into(),
        input: empty_digest(),
        output: empty_digest(),
        metadata,
        proof: None,
        parents: None,
    }
}

/// SHA-256 of no bytes.
pub fn empty_digest() -> Digest {
    digest_bytes(&[])
}

/// SHA-256 of `bytes`.
pub fn digest_bytes(bytes: &[u8]) -> Digest {
    Digest(Sha256::digest(bytes).into())
}

/// SHA-256 of everything `r` yields, and how many bytes that was.
///
/// # Errors
/// A read error.
pub fn digest_reader(mut r: impl Read) -> io::Result<(Digest, u64)> {
    let mut h = Sha256::new();
    let n = io::copy(&mut r, &mut h)?;
    Ok((Digest(h.finalize().into()), n))
}

/// SHA-256 of the file at `path` and its length in bytes.
///
/// # Errors
/// Opening or reading the file.
pub fn digest_file(path: &Path) -> io::Result<(Digest, u64)> {
    digest_reader(std::fs::File::open(path)?)
}

/// An IPv4 or IPv6 address and port from the bytes of a `struct sockaddr`
/// (`sockaddr_in`, `sockaddr_in6`; family in native byte order, port in
/// network order, as Linux lays them out); `None` for other families or
/// too few bytes.
pub fn parse_sockaddr(b: &[u8]) -> Option<std::net::SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    const AF_INET: u16 = 2;
    const AF_INET6: u16 = 10;
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        AF_INET => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b.get(4..8)?).ok()?)), port)),
        AF_INET6 => Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b.get(8..24)?).ok()?)), port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_has_ecs_and_ocsf_fields_and_caps_parents() {
        let mut o = Observation::new("file_write", Layer::Computation, OcsfClass::FileSystemActivity, 3, "write").field("file.path", "/tmp/x");
        for i in 0..(MAX_PARENTS + 3) {
            o = o.parent(digest_bytes(&i.to_le_bytes()));
        }
        o = o.parent(digest_bytes(&0usize.to_le_bytes()));
        let e = o.outcome(true).into_event();
        assert_eq!(e.metadata["ocsf.class_uid"], 1001);
        assert_eq!(e.metadata["ocsf.activity_id"], 3);
        assert_eq!(e.metadata["event.category"], "file");
        assert_eq!(e.metadata["event.outcome"], "success");
        assert_eq!(e.metadata["zkaudit.parents_truncated"], 3);
        assert_eq!(e.parents.as_ref().map(Vec::len), Some(MAX_PARENTS));
        let bytes = e.canonical_bytes().unwrap();
        assert!(bytes.len() < usize::from(u16::MAX));
        // Round-trips through the strict parser the ledger uses.
        assert_eq!(Event::from_entry(&bytes).unwrap(), e);
    }

    #[test]
    fn sockaddrs_parse_as_linux_lays_them_out() {
        let v4 = [2u8, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_sockaddr(&v4), Some("127.0.0.1:8080".parse().unwrap()));
        let mut v6 = [0u8; 28];
        v6[0] = 10;
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(parse_sockaddr(&v6), Some("[::1]:443".parse().unwrap()));
        assert_eq!(parse_sockaddr(&[1, 0, b'/', b't']), None, "AF_UNIX");
        assert_eq!(parse_sockaddr(&v4[..6]), None);
    }

    #[test]
    fn digests_match_known_values() {
        assert_eq!(empty_digest().to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let (d, n) = digest_reader(&b"abc"[..]).unwrap();
        assert_eq!((d.to_string().as_str(), n), ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3));
    }
}
