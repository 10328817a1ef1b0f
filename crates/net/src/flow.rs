//! Flows: packets grouped by their Community ID tuple into connections,
//! summarised in the fields of Zeek's `conn.log` (state, history, bytes and
//! packets each way), with TCP streams reassembled in order for the DNS,
//! TLS and HTTP analysers.
//!
//! A flow ends when TCP has closed (both FINs, or a RST) and 5 s of capture
//! time have passed, after an inactivity timeout (TCP 300 s, others 60 s,
//! as Zeek's defaults), or at the end of the input.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use zkaudit_event::Digest;

use crate::capture::Packet;
use crate::community_id::FlowTuple;
use crate::decode::Decoded;
use crate::dns::{DnsRecord, DnsState};
use crate::http::{HttpRecord, HttpState};
use crate::tls::{TlsRecord, TlsState};

/// Capture time a closed TCP flow lingers for late packets, ns.
const CLOSE_DELAY_NS: i64 = 5_000_000_000;
/// Inactivity timeouts, ns.
const TCP_TIMEOUT_NS: i64 = 300_000_000_000;
const OTHER_TIMEOUT_NS: i64 = 60_000_000_000;
/// Out-of-order bytes held per direction before a hole is declared.
const MAX_PENDING: usize = 256 << 10;

/// One connection, as Zeek's `conn.log` names its fields.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConnRecord {
    /// First packet's capture time, Unix ns (the event's timestamp).
    #[serde(skip)]
    pub ts_ns: i64,
    /// Connection ID (`C` + 17 base62 characters), derived from the flow's
    /// Community ID and first packet, so that re-ingesting a file gives the
    /// same IDs.
    pub uid: String,
    /// Originator address.
    #[serde(rename = "id.orig_h")]
    pub orig_h: IpAddr,
    /// Originator port (ICMP: type).
    #[serde(rename = "id.orig_p")]
    pub orig_p: u16,
    /// Responder address.
    #[serde(rename = "id.resp_h")]
    pub resp_h: IpAddr,
    /// Responder port (ICMP: code or counterpart type).
    #[serde(rename = "id.resp_p")]
    pub resp_p: u16,
    /// Transport: `tcp`, `udp`, `icmp`, or `unknown_transport`.
    pub proto: &'static str,
    /// Application protocol found (`dns`, `ssl`, `http`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'static str>,
    /// Seconds from first to last packet.
    pub duration: f64,
    /// Payload bytes the originator sent (TCP: sequence space, so
    /// retransmissions count once).
    pub orig_bytes: u64,
    /// Payload bytes the responder sent.
    pub resp_bytes: u64,
    /// Zeek's connection state (`S0`, `S1`, `SF`, `REJ`, `RSTO`, …).
    pub conn_state: &'static str,
    /// Zeek's history letters (upper case: originator).
    pub history: String,
    /// Stream bytes never seen (holes in the TCP sequence space).
    pub missed_bytes: u64,
    /// Packets from the originator.
    pub orig_pkts: u64,
    /// IP bytes from the originator.
    pub orig_ip_bytes: u64,
    /// Packets from the responder.
    pub resp_pkts: u64,
    /// IP bytes from the responder.
    pub resp_ip_bytes: u64,
    /// Community ID v1 (seed 0).
    pub community_id: String,
    /// IP protocol number.
    #[serde(skip)]
    pub proto_number: u8,
    /// Number (from 1) of the flow's first packet in its capture file.
    #[serde(skip)]
    pub first_packet: u64,
    /// SHA-256 of the flow's packets written as a classic pcap file; see
    /// [`FlowDigest`].
    #[serde(skip)]
    pub packets_digest: Digest,
}

/// A finished flow and what the analysers found in it.
#[derive(Clone, Debug)]
pub struct FinishedFlow {
    /// The connection.
    pub conn: ConnRecord,
    /// DNS transactions.
    pub dns: Vec<DnsRecord>,
    /// TLS handshake.
    pub tls: Option<TlsRecord>,
    /// HTTP transactions.
    pub http: Vec<HttpRecord>,
}

/// The digest of a flow's packets: SHA-256 of the classic pcap file
/// (little-endian, nanosecond magic `0xa1b23c4d`, version 2.4, zone 0,
/// sigfigs 0, the capture's snap length and the first packet's link type)
/// whose records are exactly the flow's packets in capture order. An
/// auditor re-creates the file from the original capture (e.g. `tshark
/// -r FILE -Y 'tcp.stream == N' -F nsecpcap -w flow.pcap`) and compares.
pub struct FlowDigest(Sha256);

impl FlowDigest {
    fn new(linktype: u32, snaplen: u32) -> Self {
        let mut h = Sha256::new();
        h.update(0xa1b2_3c4du32.to_le_bytes());
        h.update(2u16.to_le_bytes());
        h.update(4u16.to_le_bytes());
        h.update([0u8; 8]);
        h.update(snaplen.to_le_bytes());
        h.update(linktype.to_le_bytes());
        Self(h)
    }

    fn add(&mut self, p: &Packet<'_>) {
        let secs = p.ts_ns.div_euclid(1_000_000_000) as u32;
        let nanos = p.ts_ns.rem_euclid(1_000_000_000) as u32;
        self.0.update(secs.to_le_bytes());
        self.0.update(nanos.to_le_bytes());
        self.0.update((p.data.len() as u32).to_le_bytes());
        self.0.update(p.orig_len.to_le_bytes());
        self.0.update(p.data);
    }
}

/// Which application analyser a flow runs.
enum App {
    /// Not decided yet (TCP: waiting for the client's first bytes).
    Undecided,
    None,
    Dns(DnsState),
    Tls(TlsState),
    Http(HttpState),
}

/// One direction of a TCP stream.
#[derive(Default)]
struct Stream {
    /// Next sequence number expected.
    next: Option<u32>,
    /// Segments ahead of `next`, by sequence number.
    pending: BTreeMap<u32, Vec<u8>>,
    pending_bytes: usize,
    syn: bool,
    fin: bool,
    rst: bool,
    /// Payload bytes (sequence space).
    bytes: u64,
}

struct Flow {
    tuple: FlowTuple,
    /// The originator is the tuple's `a` endpoint.
    orig_is_a: bool,
    start_ns: i64,
    last_ns: i64,
    first_packet: u64,
    pkts: [u64; 2],
    ip_bytes: [u64; 2],
    history: String,
    streams: [Stream; 2],
    missed: u64,
    closed_at: Option<i64>,
    digest: FlowDigest,
    app: App,
}

/// Packets in, finished flows out.
pub struct FlowTable {
    flows: HashMap<FlowTuple, Flow>,
    now: i64,
    next_sweep: i64,
    seed: u16,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self::new(0)
    }
}

impl FlowTable {
    /// An empty table hashing Community IDs with `seed`.
    pub fn new(seed: u16) -> Self {
        Self { flows: HashMap::new(), now: i64::MIN, next_sweep: i64::MIN, seed }
    }

    /// Flows open now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Adds one decoded packet; flows that ended by now go to `done`.
    pub fn add(&mut self, p: &Packet<'_>, d: &Decoded<'_>, done: &mut dyn FnMut(FinishedFlow)) {
        let mut key = FlowTuple::new(d.src, d.dst, d.proto, d.ports);
        let from_a = key.a_is_src;
        key.a_is_src = false;
        self.now = self.now.max(p.ts_ns);
        let flow = self.flows.entry(key).or_insert_with(|| {
            // The first packet's sender is the originator, unless it is a
            // SYN-ACK (we missed the SYN).
            let synack = d.tcp.is_some_and(|t| t.syn && t.ack);
            Flow {
                tuple: key,
                orig_is_a: from_a != synack,
                start_ns: p.ts_ns,
                last_ns: p.ts_ns,
                first_packet: p.number,
                pkts: [0; 2],
                ip_bytes: [0; 2],
                history: String::new(),
                streams: [Stream::default(), Stream::default()],
                missed: 0,
                closed_at: None,
                digest: FlowDigest::new(p.linktype, p.snaplen),
                app: App::Undecided,
            }
        });
        let dir = usize::from(from_a != flow.orig_is_a); // 0: from the originator
        flow.last_ns = flow.last_ns.max(p.ts_ns);
        flow.pkts[dir] += 1;
        flow.ip_bytes[dir] += u64::from(d.ip_len);
        flow.digest.add(p);
        if let Some(t) = d.tcp {
            flow.tcp_segment(dir, p.ts_ns, t, d.payload, d.payload_len);
        } else {
            flow.datagram(dir, p.ts_ns, d);
        }
        if self.now >= self.next_sweep {
            self.next_sweep = self.now.saturating_add(1_000_000_000);
            self.sweep(false, done);
        }
    }

    /// Moves capture time on to `now_ns` with no packet (a live capture's
    /// clock) and ends the flows that are done by then.
    pub fn advance(&mut self, now_ns: i64, done: &mut dyn FnMut(FinishedFlow)) {
        self.now = self.now.max(now_ns);
        self.sweep(false, done);
    }

    /// Ends every flow (end of input), in order of their first packet.
    pub fn finish(&mut self, done: &mut dyn FnMut(FinishedFlow)) {
        self.sweep(true, done);
    }

    fn sweep(&mut self, all: bool, done: &mut dyn FnMut(FinishedFlow)) {
        let now = self.now;
        let mut ended: Vec<FlowTuple> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                all || f.closed_at.is_some_and(|c| now.saturating_sub(c) > CLOSE_DELAY_NS)
                    || now.saturating_sub(f.last_ns) > if f.tuple.proto == 6 { TCP_TIMEOUT_NS } else { OTHER_TIMEOUT_NS }
            })
            .map(|(k, _)| *k)
            .collect();
        let mut flows: Vec<Flow> = ended.drain(..).filter_map(|k| self.flows.remove(&k)).collect();
        flows.sort_by_key(|f| f.first_packet);
        for f in flows {
            done(f.finish(self.seed));
        }
    }
}

impl Flow {
    fn mark(&mut self, dir: usize, letter: char) {
        let l = if dir == 0 { letter.to_ascii_uppercase() } else { letter.to_ascii_lowercase() };
        if !self.history.contains(l) {
            self.history.push(l);
        }
    }

    fn tcp_segment(&mut self, dir: usize, ts: i64, t: crate::decode::Tcp, payload: &[u8], wire_len: u32) {
        match (t.syn, t.ack) {
            (true, false) => self.mark(dir, 's'),
            (true, true) => self.mark(dir, 'h'),
            (false, true) if wire_len == 0 && !t.fin && !t.rst => self.mark(dir, 'a'),
            _ => {}
        }
        if wire_len > 0 {
            self.mark(dir, 'd');
        }
        if t.fin {
            self.mark(dir, 'f');
        }
        if t.rst {
            self.mark(dir, 'r');
        }
        let s = &mut self.streams[dir];
        s.syn |= t.syn;
        s.fin |= t.fin;
        s.rst |= t.rst;
        if t.syn {
            s.next = Some(t.seq.wrapping_add(1));
        }
        let seq = if t.syn { t.seq.wrapping_add(1) } else { t.seq };
        if wire_len > 0 {
            let next = *s.next.get_or_insert(seq);
            let off = seq.wrapping_sub(next) as i32;
            if off > 0 {
                // Ahead of what we have: hold it, or declare a hole.
                if payload.len() as u32 == wire_len && s.pending_bytes + payload.len() <= MAX_PENDING {
                    s.pending_bytes += payload.len();
                    s.pending.insert(seq, payload.to_vec());
                } else {
                    self.missed += off as u64;
                    self.streams[dir].next = Some(seq);
                    self.app_gap(dir);
                    self.deliver(dir, ts, seq, payload, wire_len);
                }
            } else {
                self.deliver(dir, ts, seq, payload, wire_len);
            }
            // Pending segments now in reach.
            loop {
                let s = &mut self.streams[dir];
                let Some(next) = s.next else { break };
                let Some((&pseq, _)) = s.pending.iter().find(|(k, _)| (k.wrapping_sub(next) as i32) <= 0) else { break };
                let Some(seg) = s.pending.remove(&pseq) else { break };
                s.pending_bytes -= seg.len();
                let len = seg.len() as u32;
                self.deliver(dir, ts, pseq, &seg, len);
            }
        }
        let (o, r) = (&self.streams[0], &self.streams[1]);
        if self.closed_at.is_none() && ((o.fin && r.fin) || o.rst || r.rst) {
            self.closed_at = Some(ts);
        }
    }

    /// Hands the new part of a segment (seq, wire_len bytes of which
    /// `payload` were captured) to the analyser and advances the stream.
    fn deliver(&mut self, dir: usize, ts: i64, seq: u32, payload: &[u8], wire_len: u32) {
        let s = &mut self.streams[dir];
        let Some(next) = s.next else { return };
        let behind = next.wrapping_sub(seq);
        if behind >= wire_len {
            return; // all of it seen before (a retransmission)
        }
        let new_wire = wire_len - behind;
        s.bytes += u64::from(new_wire);
        s.next = Some(next.wrapping_add(new_wire));
        let captured = payload.get(behind as usize..).unwrap_or_default();
        if !captured.is_empty() {
            self.app_data(dir, ts, captured);
        }
        if (captured.len() as u32) < new_wire {
            // Cut by the snap length: the analyser loses the rest.
            self.app_gap(dir);
        }
    }

    fn app_data(&mut self, dir: usize, ts: i64, bytes: &[u8]) {
        if matches!(self.app, App::Undecided) {
            let dns_port = self.tuple.a.1 == 53 || self.tuple.b.1 == 53;
            self.app = if dns_port {
                App::Dns(DnsState::default())
            } else if dir != 0 {
                App::None // the server spoke first: not a protocol we analyse
            } else if crate::tls::looks_like_tls(bytes) {
                App::Tls(TlsState::default())
            } else if crate::http::looks_like_http(bytes) {
                App::Http(HttpState::default())
            } else {
                App::None
            };
        }
        match &mut self.app {
            App::Tls(s) => s.on_data(dir == 0, ts, bytes),
            App::Http(s) => s.on_data(dir == 0, ts, bytes),
            App::Dns(s) => s.on_stream(dir == 0, ts, bytes),
            _ => {}
        }
    }

    fn app_gap(&mut self, dir: usize) {
        match &mut self.app {
            App::Tls(s) => s.on_gap(dir == 0),
            App::Http(s) => s.on_gap(dir == 0),
            App::Dns(s) => s.on_gap(dir == 0),
            _ => {}
        }
    }

    fn datagram(&mut self, dir: usize, ts: i64, d: &Decoded<'_>) {
        if d.payload_len > 0 {
            self.mark(dir, 'd');
        }
        self.streams[dir].bytes += u64::from(d.payload_len);
        if matches!(self.app, App::Undecided) {
            let dns = d.proto == 17 && d.ports.is_some_and(|(s, t)| crate::dns::PORTS.contains(&s) || crate::dns::PORTS.contains(&t));
            self.app = if dns { App::Dns(DnsState::default()) } else { App::None };
        }
        if let App::Dns(s) = &mut self.app {
            s.on_message(ts, d.payload);
        }
    }

    fn finish(mut self, seed: u16) -> FinishedFlow {
        let (orig, resp) = if self.orig_is_a { (self.tuple.a, self.tuple.b) } else { (self.tuple.b, self.tuple.a) };
        for s in &self.streams {
            self.missed += s.pending.values().map(|v| v.len() as u64).sum::<u64>();
        }
        let community_id = self.tuple.community_id(seed);
        let (o, r) = (&self.streams[0], &self.streams[1]);
        let proto = match self.tuple.proto {
            6 => "tcp",
            17 => "udp",
            1 | 58 => "icmp",
            _ => "unknown_transport",
        };
        let resp_seen = self.pkts[1] > 0;
        let conn_state = if self.tuple.proto == 6 {
            tcp_state(o, r, resp_seen)
        } else if resp_seen {
            "SF"
        } else {
            "S0"
        };
        let (mut dns, mut tls, mut http, mut service) = (Vec::new(), None, Vec::new(), None);
        match std::mem::replace(&mut self.app, App::None) {
            App::Dns(s) => {
                dns = s.finish();
                service = (!dns.is_empty()).then_some("dns");
            }
            App::Tls(s) => {
                tls = s.finish();
                service = tls.is_some().then_some("ssl");
            }
            App::Http(s) => {
                http = s.finish();
                service = (!http.is_empty()).then_some("http");
            }
            App::Undecided | App::None => {}
        }
        let uid = uid(&community_id, self.start_ns, self.first_packet);
        let conn = ConnRecord {
            ts_ns: self.start_ns,
            uid,
            orig_h: orig.0,
            orig_p: orig.1,
            resp_h: resp.0,
            resp_p: resp.1,
            proto,
            service,
            duration: (self.last_ns - self.start_ns) as f64 / 1e9,
            orig_bytes: o.bytes,
            resp_bytes: r.bytes,
            conn_state,
            history: self.history,
            missed_bytes: self.missed,
            orig_pkts: self.pkts[0],
            orig_ip_bytes: self.ip_bytes[0],
            resp_pkts: self.pkts[1],
            resp_ip_bytes: self.ip_bytes[1],
            community_id,
            proto_number: self.tuple.proto,
            first_packet: self.first_packet,
            packets_digest: Digest(self.digest.0.finalize().into()),
        };
        FinishedFlow { conn, dns, tls, http }
    }
}

/// Zeek's `conn_state` for a TCP connection whose responder sent a packet
/// (`resp_seen`) or not.
fn tcp_state(o: &Stream, r: &Stream, resp_seen: bool) -> &'static str {
    let (o_syn, r_synack) = (o.syn, r.syn);
    match () {
        _ if o_syn && !resp_seen => {
            if o.rst {
                "RSTOS0"
            } else if o.fin {
                "SH"
            } else {
                "S0"
            }
        }
        _ if o_syn && r.rst && !r_synack => "REJ",
        _ if o_syn && r_synack => {
            if o.rst {
                "RSTO"
            } else if r.rst {
                "RSTR"
            } else if o.fin && r.fin {
                "SF"
            } else if o.fin {
                "S2"
            } else if r.fin {
                "S3"
            } else {
                "S1"
            }
        }
        _ if r_synack && !o_syn => {
            if r.rst {
                "RSTRH"
            } else if r.fin {
                "SHR"
            } else {
                "OTH"
            }
        }
        _ => "OTH",
    }
}

/// `C` + 17 base62 characters from SHA-256(community ID ‖ start ns ‖ first
/// packet number): Zeek's uid alphabet and length, reproducible.
fn uid(community_id: &str, start_ns: i64, first_packet: u64) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut h = Sha256::new();
    h.update(community_id.as_bytes());
    h.update(start_ns.to_be_bytes());
    h.update(first_packet.to_be_bytes());
    let d = h.finalize();
    let mut n = u128::from_be_bytes(d[..16].try_into().unwrap_or([0; 16]));
    let mut s = String::from("C");
    for _ in 0..17 {
        s.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    s
}
