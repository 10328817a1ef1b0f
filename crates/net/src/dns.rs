//! DNS over UDP (ports 53, 5353, 5355) and over TCP (port 53, each message
//! after a two-byte length, RFC 1035 §4.2.2): queries matched to responses
//! by transaction ID, in the fields of Zeek's `dns.log`. Messages are parsed
//! with the `simple-dns` crate; the header bits are read from the fixed
//! 12-byte header (RFC 1035 §4.1.1).

use std::collections::BTreeMap;

use serde::Serialize;
use simple_dns::rdata::RData;

/// Ports whose UDP payloads are taken as DNS (DNS, mDNS, LLMNR).
pub const PORTS: [u16; 3] = [53, 5353, 5355];

/// One DNS transaction, as Zeek's `dns.log` names its fields.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DnsRecord {
    /// Capture time of the query (or of the response, if no query was seen), Unix ns.
    #[serde(skip)]
    pub ts_ns: i64,
    /// Transaction ID.
    pub trans_id: u16,
    /// Seconds from query to response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
    /// The first question's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Its class (1 = C_INTERNET).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qclass: Option<u16>,
    /// Its type (1 = A, 28 = AAAA, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qtype: Option<u16>,
    /// The type's mnemonic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qtype_name: Option<String>,
    /// Response code (0 = NOERROR, 3 = NXDOMAIN, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<u16>,
    /// Its mnemonic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode_name: Option<String>,
    /// Authoritative answer.
    #[serde(rename = "AA")]
    pub aa: bool,
    /// Truncated.
    #[serde(rename = "TC")]
    pub tc: bool,
    /// Recursion desired.
    #[serde(rename = "RD")]
    pub rd: bool,
    /// Recursion available.
    #[serde(rename = "RA")]
    pub ra: bool,
    /// The answers' data as text (addresses, names).
    pub answers: Vec<String>,
    /// Their TTLs, in seconds.
    #[serde(rename = "TTLs")]
    pub ttls: Vec<f64>,
    /// The message could not be parsed past its header.
    pub rejected: bool,
}

/// Largest DNS message over TCP, in bytes (the length prefix's range).
const MAX_TCP_MESSAGE: usize = 65_535;

/// Open transactions of one flow.
#[derive(Debug, Default)]
pub struct DnsState {
    open: BTreeMap<u16, DnsRecord>,
    done: Vec<DnsRecord>,
    /// TCP only: stream bytes not yet framed, per direction (client, server).
    tcp: [Vec<u8>; 2],
    /// TCP only: a direction had a hole; its framing is lost.
    tcp_lost: [bool; 2],
}

impl DnsState {
    /// Takes in-order TCP stream bytes from the client or the server and
    /// handles each complete length-prefixed message.
    pub fn on_stream(&mut self, from_client: bool, ts_ns: i64, bytes: &[u8]) {
        let d = usize::from(!from_client);
        if self.tcp_lost[d] {
            return;
        }
        let mut buf = std::mem::take(&mut self.tcp[d]);
        buf.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(len) = buf.get(at..at + 2).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))) {
            let Some(msg) = buf.get(at + 2..at + 2 + len) else { break };
            self.on_message(ts_ns, msg);
            at += 2 + len;
        }
        buf.drain(..at);
        if buf.len() > MAX_TCP_MESSAGE + 2 {
            self.tcp_lost[d] = true;
            buf.clear();
        }
        self.tcp[d] = buf;
    }

    /// The TCP stream had a hole in this direction: stop framing it.
    pub fn on_gap(&mut self, from_client: bool) {
        let d = usize::from(!from_client);
        self.tcp_lost[d] = true;
        self.tcp[d].clear();
    }

    /// Takes one UDP payload seen at `ts_ns`.
    pub fn on_message(&mut self, ts_ns: i64, msg: &[u8]) {
        if msg.len() < 12 {
            return;
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let (b2, b3) = (msg[2], msg[3]);
        let is_response = b2 & 0x80 != 0;
        let mut rec = DnsRecord { ts_ns, trans_id: id, rd: b2 & 0x01 != 0, ..DnsRecord::default() };
        let parsed = simple_dns::Packet::parse(msg);
        if let Ok(p) = &parsed {
            if let Some(q) = p.questions.first() {
                let qtype = u16::from(q.qtype);
                let name = q.qname.to_string();
                // The root zone prints as "." (as dig and Zeek show it).
                rec.query = Some(if name.is_empty() { ".".to_owned() } else { name });
                rec.qclass = Some(u16::from(q.qclass));
                rec.qtype = Some(qtype);
                rec.qtype_name = Some(type_name(qtype));
            }
        } else {
            rec.rejected = true;
        }
        if !is_response {
            self.open.insert(id, rec);
            return;
        }
        let mut done = self.open.remove(&id).unwrap_or_else(|| rec.clone());
        if done.ts_ns != ts_ns {
            done.rtt = Some((ts_ns - done.ts_ns) as f64 / 1e9);
        }
        if done.query.is_none() {
            done.query = rec.query;
            done.qclass = rec.qclass;
            done.qtype = rec.qtype;
            done.qtype_name = rec.qtype_name;
        }
        let rcode = u16::from(b3 & 0x0f);
        done.rcode = Some(rcode);
        done.rcode_name = Some(rcode_name(rcode).to_owned());
        done.aa = b2 & 0x04 != 0;
        done.tc = b2 & 0x02 != 0;
        done.ra = b3 & 0x80 != 0;
        done.rejected |= rec.rejected;
        if let Ok(p) = parsed {
            for a in &p.answers {
                done.answers.push(rdata_text(&a.rdata));
                done.ttls.push(f64::from(a.ttl));
            }
        }
        self.done.push(done);
    }

    /// Every transaction, answered or not, in the order they completed.
    pub fn finish(mut self) -> Vec<DnsRecord> {
        self.done.extend(self.open.into_values());
        self.done
    }
}

fn rdata_text(r: &RData<'_>) -> String {
    match r {
        RData::A(a) => std::net::Ipv4Addr::from(a.address).to_string(),
        RData::AAAA(a) => std::net::Ipv6Addr::from(a.address).to_string(),
        RData::CNAME(n) => n.0.to_string(),
        RData::NS(n) => n.0.to_string(),
        RData::PTR(n) => n.0.to_string(),
        RData::MX(m) => m.exchange.to_string(),
        RData::TXT(t) => format!(
            "TXT {}",
            t.iter_raw()
                .map(|(k, v)| String::from_utf8_lossy(k).into_owned() + &v.map(|v| format!("={}", String::from_utf8_lossy(v))).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        RData::SOA(s) => s.mname.to_string(),
        RData::SRV(s) => s.target.to_string(),
        other => format!("<{}>", type_name(u16::from(other.type_code()))),
    }
}

/// The mnemonic of RR type `t` (IANA DNS parameters), or `TYPE<t>` (RFC 3597).
pub fn type_name(t: u16) -> String {
    let n = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        252 => "AXFR",
        255 => "*",
        257 => "CAA",
        _ => return format!("TYPE{t}"),
    };
    n.to_owned()
}

/// The mnemonic of response code `r` (RFC 1035, RFC 2136).
pub fn rcode_name(r: u16) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_response_to_its_query() {
        let mut q = simple_dns::Packet::new_query(0x1234);
        q.set_flags(simple_dns::PacketFlag::RECURSION_DESIRED);
        q.questions.push(simple_dns::Question::new(
            simple_dns::Name::new_unchecked("example.org"),
            simple_dns::TYPE::A.into(),
            simple_dns::CLASS::IN.into(),
            false,
        ));
        let query = q.build_bytes_vec().unwrap();
        let mut r = q.clone().into_reply();
        r.set_flags(simple_dns::PacketFlag::RECURSION_AVAILABLE);
        r.answers.push(simple_dns::ResourceRecord::new(
            simple_dns::Name::new_unchecked("example.org"),
            simple_dns::CLASS::IN,
            300,
            RData::A(simple_dns::rdata::A { address: 0x5db8_d822 }),
        ));
        let reply = r.build_bytes_vec().unwrap();
        let mut s = DnsState::default();
        s.on_message(1_000_000_000, &query);
        s.on_message(1_002_500_000, &reply);
        s.on_message(2_000_000_000, &query[..5]);
        let out = s.finish();
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert_eq!(
            (d.trans_id, d.query.as_deref(), d.qtype_name.as_deref(), d.rcode_name.as_deref()),
            (0x1234, Some("example.org"), Some("A"), Some("NOERROR"))
        );
        assert_eq!((d.rd, d.ra, d.answers.clone(), d.ttls.clone()), (true, true, vec!["93.184.216.34".to_owned()], vec![300.0]));
        assert!((d.rtt.unwrap() - 0.0025).abs() < 1e-9);

        // The same over TCP, length-prefixed, split across segments.
        let mut s = DnsState::default();
        let mut q = (query.len() as u16).to_be_bytes().to_vec();
        q.extend(&query);
        let mut r = (reply.len() as u16).to_be_bytes().to_vec();
        r.extend(&reply);
        s.on_stream(true, 1_000_000_000, &q[..3]);
        s.on_stream(true, 1_000_000_000, &q[3..]);
        s.on_stream(false, 1_001_000_000, &r);
        let out = s.finish();
        assert_eq!((out.len(), out[0].answers.clone()), (1, vec!["93.184.216.34".to_owned()]));
    }
}
