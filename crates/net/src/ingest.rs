//! The use case: capture files in, ledger events out.
//!
//! Per file, [`analyze_file`] reads packets ([`crate::capture`]), decodes
//! them ([`crate::decode`]) and groups them into flows ([`crate::flow`]);
//! [`Ingest`] turns each finished flow into a `network_flow` event and its
//! DNS, TLS and HTTP findings into `dns_query`, `tls_handshake` and
//! `http_request` events whose `parents` hold the flow event's digest,
//! then a `capture_file` event whose `input` is the file's SHA-256. A file
//! that cannot be read to its end also gets a `collector_gap` event naming
//! the packet where reading stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use zkaudit_collect::shape::{digest_file, gap, GapReason};
use zkaudit_collect::{Observation, OcsfClass, Sink, SinkError};
use zkaudit_event::{Digest, Layer, Timestamp};

use crate::capture::{read_packets, CaptureError, Packet};
use crate::decode::{decode, Undecoded};
use crate::flow::{ConnRecord, FinishedFlow, FlowTable};

/// The collector's name (`observer.type` of its gap events).
pub const COLLECTOR: &str = "zkaudit-net";

/// What one file gave.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct FileStats {
    /// The file as given.
    pub file: PathBuf,
    /// SHA-256 of the file's bytes as stored (compressed, if it is);
    /// `None` if the file could not be read.
    pub sha256: Option<Digest>,
    /// Packets read.
    pub packets: u64,
    /// Bytes of the (decompressed) capture read.
    pub bytes: u64,
    /// IPv4 and IPv6 packets grouped into flows.
    pub ip_packets: u64,
    /// Packets that were not IP (ARP, STP, …).
    pub not_ip: u64,
    /// Packets whose headers were malformed or cut short.
    pub malformed: u64,
    /// Packets of link types not decoded, by link type number.
    pub unsupported_link: BTreeMap<u32, u64>,
    /// Flows.
    pub flows: u64,
    /// DNS transactions.
    pub dns: u64,
    /// TLS handshakes.
    pub tls: u64,
    /// HTTP transactions.
    pub http: u64,
    /// Why reading stopped early, if it did (file, packet number, reason).
    pub error: Option<String>,
}

/// Reads the capture at `path` and hands each finished flow to `on_flow`,
/// in the order flows end, while another thread takes the file's SHA-256.
/// Reading errors stop the file but keep what was read before them (its
/// flows are finished and handed over).
pub fn analyze_file(path: &Path, seed: u16, on_flow: &mut dyn FnMut(FinishedFlow)) -> (FileStats, Option<CaptureError>) {
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| digest_file(path));
        let (mut stats, err) = analyze_packets(path, seed, on_flow);
        stats.sha256 = hashing.join().ok().and_then(Result::ok).map(|(d, _)| d);
        (stats, err)
    })
}

fn analyze_packets(path: &Path, seed: u16, on_flow: &mut dyn FnMut(FinishedFlow)) -> (FileStats, Option<CaptureError>) {
    let mut stats = FileStats { file: path.to_owned(), ..FileStats::default() };
    let mut table = FlowTable::new(seed);
    let result = read_packets(path, |p: &Packet<'_>| match decode(p.linktype, p.data) {
        Ok(d) => {
            stats.ip_packets += 1;
            table.add(p, &d, on_flow);
        }
        Err(Undecoded::NotIp) => stats.not_ip += 1,
        Err(Undecoded::Malformed) => stats.malformed += 1,
        Err(Undecoded::UnsupportedLink(l)) => *stats.unsupported_link.entry(l).or_default() += 1,
    });
    table.finish(on_flow);
    match result {
        Ok(s) => {
            stats.packets = s.packets;
            stats.bytes = s.bytes;
            (stats, None)
        }
        Err(e) => {
            stats.packets = stats.ip_packets + stats.not_ip + stats.malformed + stats.unsupported_link.values().sum::<u64>();
            stats.error = Some(e.to_string());
            (stats, Some(e))
        }
    }
}

/// Writes capture files into a sink as events.
pub struct Ingest<'s> {
    sink: &'s mut Sink,
    /// Community ID seed (0 unless the deployment agreed on another).
    pub seed: u16,
}

impl<'s> Ingest<'s> {
    /// Ingest into `sink`.
    pub fn new(sink: &'s mut Sink) -> Self {
        Self { sink, seed: 0 }
    }

    /// Ingests one file: its flows and their findings, a `capture_file`
    /// event, and a gap event if it could not be read to its end. Returns
    /// the file's figures; `error` is set when reading stopped early.
    ///
    /// # Errors
    /// The sink failed (the ledger, or the spool of a server sink).
    pub fn file(&mut self, path: &Path) -> Result<FileStats, SinkError> {
        let name = path.display().to_string();
        let mut sink_err: Option<SinkError> = None;
        let mut counts = (0u64, 0u64, 0u64, 0u64);
        let sink = &mut *self.sink;
        let (mut stats, err) = analyze_file(path, self.seed, &mut |f: FinishedFlow| {
            if sink_err.is_some() {
                return;
            }
            counts.0 += 1;
            counts.1 += f.dns.len() as u64;
            counts.2 += u64::from(f.tls.is_some());
            counts.3 += f.http.len() as u64;
            if let Err(e) = send_flow(sink, &Origin::File(&name), f) {
                sink_err = Some(e);
            }
        });
        if let Some(e) = sink_err {
            return Err(e);
        }
        (stats.flows, stats.dns, stats.tls, stats.http) = counts;
        if let Some(e) = &err {
            let packet = match e {
                CaptureError::BadRecord { packet, .. } => *packet,
                _ => 1,
            };
            let mut g = gap(COLLECTOR, Layer::Network, GapReason::Unreadable, 1, &e.to_string());
            g.metadata.insert("file.path".into(), name.clone().into());
            g.metadata.insert("zkaudit.capture.packet".into(), packet.into());
            self.sink.send(&g)?;
        }
        let mut obs = Observation::new("capture_file", Layer::Network, OcsfClass::NetworkActivity, 6, "capture_file").field("file.path", name);
        for (k, v) in as_map(&stats) {
            obs = obs.field(&format!("zkaudit.capture.{k}"), v);
        }
        if let Some(d) = stats.sha256 {
            obs = obs.input(d);
        }
        self.sink.send(&obs.into_event())?;
        Ok(stats)
    }
}

fn as_map(v: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Where packets came from.
pub(crate) enum Origin<'a> {
    /// A capture file (`zkaudit.capture.file`).
    File(&'a str),
    /// A live interface (ECS `observer.ingress.interface.name`).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Interface(&'a str),
}

/// The fields every network event of a flow shares: Zeek's `uid` and
/// `id.*`, ECS `source.*`, `destination.*`, `network.*`, and the origin.
fn flow_fields(o: Observation, c: &ConnRecord, origin: &Origin<'_>) -> Observation {
    let o = match origin {
        Origin::File(f) => o.field("zkaudit.capture.file", *f),
        Origin::Interface(i) => o.field("observer.ingress.interface.name", *i),
    };
    o.field("uid", c.uid.clone())
        .field("id.orig_h", c.orig_h.to_string())
        .field("id.orig_p", c.orig_p)
        .field("id.resp_h", c.resp_h.to_string())
        .field("id.resp_p", c.resp_p)
        .field("source.ip", c.orig_h.to_string())
        .field("source.port", c.orig_p)
        .field("destination.ip", c.resp_h.to_string())
        .field("destination.port", c.resp_p)
        .field("network.transport", c.proto)
        .field("network.iana_number", c.proto_number.to_string())
        .field("network.community_id", c.community_id.clone())
        .field("zkaudit.capture.first_packet", c.first_packet)
        .input(c.packets_digest)
}

/// The event timestamp of capture time `ts_ns`. Any i64 of nanoseconds
/// lies in 1677–2262, inside what [`Timestamp::from_unix_nanos`] takes, so
/// the fallback is never used.
fn at(ts_ns: i64) -> Timestamp {
    Timestamp::from_unix_nanos(i128::from(ts_ns)).unwrap_or_else(Timestamp::now)
}

/// An event of flow `c` of type `kind` (also its ECS `event.action`), at
/// `ts_ns`, with the Zeek fields of `record`.
fn network_event(kind: &str, class: OcsfClass, activity: u32, c: &ConnRecord, origin: &Origin<'_>, ts_ns: i64, record: &impl Serialize) -> Observation {
    flow_fields(Observation::new(kind, Layer::Network, class, activity, kind), c, origin).at(at(ts_ns)).fields(as_map(record))
}

/// The OCSF Network Activity `activity_id` of a connection state.
fn network_activity(state: &str) -> u32 {
    match state {
        "SF" => 2,
        "RSTO" | "RSTR" | "RSTOS0" | "RSTRH" => 3,
        "S0" | "SH" | "SHR" => 4,
        "REJ" => 5,
        _ => 6,
    }
}

/// Sends a finished flow's event, then its DNS, TLS and HTTP events with
/// the flow's digest in `parents`.
pub(crate) fn send_flow(sink: &mut Sink, origin: &Origin<'_>, f: FinishedFlow) -> Result<(), SinkError> {
    let c = &f.conn;
    let flow = network_event("network_flow", OcsfClass::NetworkActivity, network_activity(c.conn_state), c, origin, c.ts_ns, c)
        .field("event.duration", (c.duration * 1e9) as i64)
        .into_event();
    let parent = sink.send(&flow)?;
    for d in &f.dns {
        let activity = if d.rcode.is_some() { 2 } else { 1 };
        let mut o = network_event("dns_query", OcsfClass::DnsActivity, activity, c, origin, d.ts_ns, d).parent(parent);
        if let Some(q) = &d.query {
            o = o.field("dns.question.name", q.clone());
        }
        sink.send(&o.into_event())?;
    }
    if let Some(t) = &f.tls {
        let mut o = network_event("tls_handshake", OcsfClass::NetworkActivity, 6, c, origin, t.ts_ns, t).parent(parent);
        if let Some(sni) = &t.server_name {
            o = o.field("tls.client.server_name", sni.clone());
        }
        sink.send(&o.into_event())?;
    }
    for h in &f.http {
        let activity = match h.method.as_str() {
            "CONNECT" => 1,
            "DELETE" => 2,
            "GET" => 3,
            "HEAD" => 4,
            "OPTIONS" => 5,
            "POST" => 6,
            "PUT" => 7,
            "TRACE" => 8,
            _ => 99,
        };
        let mut o = network_event("http_request", OcsfClass::HttpActivity, activity, c, origin, h.ts_ns, h)
            .field("http.request.method", h.method.clone())
            .field("url.original", h.uri.clone())
            .parent(parent);
        if let Some(s) = h.status_code {
            o = o.field("http.response.status_code", s);
        }
        sink.send(&o.into_event())?;
    }
    Ok(())
}

/// What `zkaudit ingest pcap` did.
#[derive(Clone, Debug, Serialize)]
pub struct IngestReport {
    /// Per file, in the order given.
    pub files: Vec<FileStats>,
    /// The sink's figures (events, appended, leaf range, spool).
    pub sink: zkaudit_collect::Report,
}

impl IngestReport {
    /// Files that could not be read to their end.
    pub fn refused(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }
}

/// Why `ingest_files` stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A file named could not be opened; nothing was ingested.
    #[error("{file}: {source}")]
    Open {
        /// The file.
        file: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Ingests `paths` in order into `dest` (one sink for all), calling
/// `progress` after each file. Every file is opened first, so a wrong path
/// records nothing.
///
/// # Errors
/// [`IngestError`]: a file cannot be opened, or the sink failed.
pub fn ingest_files(
    paths: &[PathBuf],
    dest: zkaudit_collect::Destination,
    seed: u16,
    progress: &mut dyn FnMut(&FileStats),
) -> Result<IngestReport, IngestError> {
    for p in paths {
        std::fs::File::open(p).map_err(|source| IngestError::Open { file: p.clone(), source })?;
    }
    let mut sink = Sink::open(dest, zkaudit_collect::SinkOptions::new(COLLECTOR, Layer::Network))?;
    let mut files = Vec::with_capacity(paths.len());
    let mut ingest = Ingest::new(&mut sink);
    ingest.seed = seed;
    for p in paths {
        let s = ingest.file(p)?;
        progress(&s);
        files.push(s);
    }
    let sink = sink.finish()?;
    Ok(IngestReport { files, sink })
}
