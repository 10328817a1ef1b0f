//! TLS handshakes seen in a TCP stream, in the fields of Zeek's `ssl.log`
//! with the JA3 and JA4 client fingerprints. Records and handshake
//! messages are parsed with the `tls-parser` crate; the record layer
//! (RFC 8446 §5.1) is framed here so that a handshake message may span
//! records and segments.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tls_parser::{TlsExtension, TlsExtensionType, TlsMessage, TlsMessageHandshake};

/// Most handshake bytes buffered per direction; past this the rest of the
/// stream is not analysed.
const MAX_BUFFER: usize = 256 << 10;

/// One TLS session's handshake, as Zeek's `ssl.log` names its fields.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TlsRecord {
    /// Capture time of the ClientHello, Unix ns.
    #[serde(skip)]
    pub ts_ns: i64,
    /// Negotiated version (`TLSv12`, `TLSv13`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Negotiated cipher suite (IANA name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Server Name Indication from the ClientHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// ALPN protocols the client offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_alpn: Vec<String>,
    /// ALPN protocol the server chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<String>,
    /// Both sides finished the clear-text part of the handshake (and
    /// moved to encrypted records).
    pub established: bool,
    /// JA3 client fingerprint (MD5 of the ClientHello fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    /// JA4 client fingerprint (FoxIO's JA4 spec, TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// SHA-256 fingerprints (hex) of the server's certificate chain, leaf
    /// first (visible up to TLS 1.2; TLS 1.3 encrypts it).
    pub cert_chain_fps: Vec<String>,
}

#[derive(Debug, Default)]
struct Side {
    /// Stream bytes not yet framed into records.
    raw: Vec<u8>,
    /// Handshake bytes not yet framed into messages.
    hs: Vec<u8>,
    /// Saw ChangeCipherSpec or application data: the rest is encrypted.
    encrypted: bool,
    /// Stopped (gap, overflow or garbage).
    stopped: bool,
}

/// The handshake analyser of one TCP connection.
#[derive(Debug, Default)]
pub struct TlsState {
    client: Side,
    server: Side,
    rec: TlsRecord,
    saw_client_hello: bool,
}

/// Whether the first bytes a client sent look like a TLS handshake record.
pub fn looks_like_tls(first: &[u8]) -> bool {
    first.len() >= 3 && first[0] == 0x16 && first[1] == 3 && first[2] <= 4
}

impl TlsState {
    /// Takes in-order stream bytes from the client (`from_client`) or server.
    pub fn on_data(&mut self, from_client: bool, ts_ns: i64, bytes: &[u8]) {
        let side = if from_client { &mut self.client } else { &mut self.server };
        if side.stopped || side.encrypted {
            return;
        }
        if side.raw.len() + bytes.len() > MAX_BUFFER {
            side.stopped = true;
            return;
        }
        side.raw.extend_from_slice(bytes);
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let mut used = 0;
        while let Some(hdr) = side.raw.get(used..used + 5) {
            let (ctype, len) = (hdr[0], usize::from(u16::from_be_bytes([hdr[3], hdr[4]])));
            let Some(body) = side.raw.get(used + 5..used + 5 + len) else { break };
            match ctype {
                22 => side.hs.extend_from_slice(body),
                20 | 23 => side.encrypted = true,
                21 => {}
                _ => side.stopped = true,
            }
            used += 5 + len;
            if side.encrypted || side.stopped {
                break;
            }
        }
        side.raw.drain(..used);
        let mut hs_used = 0;
        while let Some(h) = side.hs.get(hs_used..hs_used + 4) {
            let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            let Some(m) = side.hs.get(hs_used..hs_used + 4 + len) else { break };
            msgs.push(m.to_vec());
            hs_used += 4 + len;
        }
        side.hs.drain(..hs_used);
        for m in msgs {
            if let Ok((_, TlsMessage::Handshake(h))) = tls_parser::parse_tls_message_handshake(&m) {
                self.on_handshake(ts_ns, h);
            }
        }
        self.rec.established = self.client.encrypted && self.server.encrypted && self.rec.version.is_some();
    }

    /// The stream had a hole in this direction: stop analysing it.
    pub fn on_gap(&mut self, from_client: bool) {
        if from_client {
            self.client.stopped = true;
        } else {
            self.server.stopped = true;
        }
    }

    fn on_handshake(&mut self, ts_ns: i64, h: TlsMessageHandshake<'_>) {
        match h {
            TlsMessageHandshake::ClientHello(ch) if !self.saw_client_hello => {
                self.saw_client_hello = true;
                self.rec.ts_ns = ts_ns;
                let exts = ch.ext.and_then(|e| tls_parser::parse_tls_client_hello_extensions(e).ok()).map(|(_, v)| v).unwrap_or_default();
                let ciphers: Vec<u16> = ch.ciphers.iter().map(|c| c.0).collect();
                let fp = ClientHelloFields::new(ch.version.0, ciphers, &exts);
                for e in &exts {
                    match e {
                        TlsExtension::SNI(names) => {
                            if let Some((_, n)) = names.first() {
                                self.rec.server_name = Some(String::from_utf8_lossy(n).into_owned());
                            }
                        }
                        TlsExtension::ALPN(protos) => self.rec.client_alpn = protos.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect(),
                        _ => {}
                    }
                }
                self.rec.ja3 = Some(fp.ja3());
                self.rec.ja4 = Some(fp.ja4(self.rec.server_name.is_some(), self.rec.client_alpn.first().map(String::as_str)));
            }
            TlsMessageHandshake::ServerHello(sh) => {
                let mut version = sh.version.0;
                if let Some((_, exts)) = sh.ext.and_then(|e| tls_parser::parse_tls_server_hello_extensions(e).ok()) {
                    for e in exts {
                        match e {
                            TlsExtension::SupportedVersions(v) => {
                                if let Some(v) = v.first() {
                                    version = v.0;
                                }
                            }
                            TlsExtension::ALPN(p) => self.rec.next_protocol = p.first().map(|p| String::from_utf8_lossy(p).into_owned()),
                            _ => {}
                        }
                    }
                }
                self.rec.version = Some(version_name(version));
                self.rec.cipher = Some(
                    tls_parser::TlsCipherSuite::from_id(sh.cipher.0).map(|c| c.name.to_owned()).unwrap_or_else(|| format!("unknown-{:#06x}", sh.cipher.0)),
                );
            }
            TlsMessageHandshake::Certificate(c) if self.rec.cert_chain_fps.is_empty() => {
                self.rec.cert_chain_fps = c.cert_chain.iter().map(|c| hex::encode(Sha256::digest(c.data))).collect();
            }
            _ => {}
        }
    }

    /// The session's record, if a ClientHello or ServerHello was seen.
    pub fn finish(self) -> Option<TlsRecord> {
        (self.saw_client_hello || self.rec.version.is_some()).then_some(self.rec)
    }
}

/// Zeek's name for a protocol version number.
fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv10".into(),
        0x0302 => "TLSv11".into(),
        0x0303 => "TLSv12".into(),
        0x0304 => "TLSv13".into(),
        other => format!("unknown-{other:#06x}"),
    }
}

/// GREASE values (RFC 8701) are left out of both fingerprints.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// The ClientHello fields the fingerprints read, GREASE removed.
struct ClientHelloFields {
    version: u16,
    /// Highest `supported_versions` entry, if the extension was sent.
    max_supported: Option<u16>,
    ciphers: Vec<u16>,
    /// Extension types in the order sent.
    extensions: Vec<u16>,
    groups: Vec<u16>,
    point_formats: Vec<u8>,
    sig_algs: Vec<u16>,
}

impl ClientHelloFields {
    fn new(version: u16, ciphers: Vec<u16>, exts: &[TlsExtension<'_>]) -> Self {
        let mut f = Self {
            version,
            max_supported: None,
            ciphers: ciphers.into_iter().filter(|c| !is_grease(*c)).collect(),
            extensions: Vec::new(),
            groups: Vec::new(),
            point_formats: Vec::new(),
            sig_algs: Vec::new(),
        };
        for e in exts {
            let ty = TlsExtensionType::from(e).0;
            if !is_grease(ty) {
                f.extensions.push(ty);
            }
            match e {
                TlsExtension::EllipticCurves(g) => f.groups = g.iter().map(|g| g.0).filter(|g| !is_grease(*g)).collect(),
                TlsExtension::EcPointFormats(p) => f.point_formats = p.to_vec(),
                TlsExtension::SignatureAlgorithms(s) => f.sig_algs = s.iter().copied().filter(|s| !is_grease(*s)).collect(),
                TlsExtension::SupportedVersions(v) => f.max_supported = v.iter().map(|v| v.0).filter(|v| !is_grease(*v)).max(),
                _ => {}
            }
        }
        f
    }

    /// JA3: MD5 of `version,ciphers,extensions,groups,point_formats`,
    /// each list of decimals joined by `-` (Salesforce's JA3).
    fn ja3(&self) -> String {
        let j = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join("-");
        let s = format!(
            "{},{},{},{},{}",
            self.version,
            j(&mut self.ciphers.iter().map(u16::to_string)),
            j(&mut self.extensions.iter().map(u16::to_string)),
            j(&mut self.groups.iter().map(u16::to_string)),
            j(&mut self.point_formats.iter().map(u8::to_string))
        );
        hex::encode(<md5::Md5 as md5::Digest>::digest(s.as_bytes()))
    }

    /// JA4 for TCP: `t{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{sha256(sorted ciphers)[..12]}_{sha256(sorted extensions w/o SNI, ALPN _ sig algs)[..12]}`.
    fn ja4(&self, has_sni: bool, alpn: Option<&str>) -> String {
        let version = match self.max_supported.unwrap_or(self.version) {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            _ => "00",
        };
        let alpn = match alpn.map(str::as_bytes) {
            Some([first, .., last]) if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() => format!("{}{}", *first as char, *last as char),
            Some([only]) if only.is_ascii_alphanumeric() => format!("{0}{0}", *only as char),
            Some(b) if !b.is_empty() => {
                let h = hex::encode(b);
                format!("{}{}", &h[..1], &h[h.len() - 1..])
            }
            _ => "00".into(),
        };
        let a = format!("t{version}{}{:02}{:02}{alpn}", if has_sni { 'd' } else { 'i' }, self.ciphers.len().min(99), self.extensions.len().min(99));
        let hash12 = |s: &str| if s.is_empty() { "000000000000".to_owned() } else { hex::encode(Sha256::digest(s.as_bytes()))[..12].to_owned() };
        let hexes = |v: &[u16]| v.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(",");
        let mut ciphers = self.ciphers.clone();
        ciphers.sort_unstable();
        let mut exts: Vec<u16> = self.extensions.iter().copied().filter(|e| *e != 0x0000 && *e != 0x0010).collect();
        exts.sort_unstable();
        let mut c = hexes(&exts);
        if !self.sig_algs.is_empty() && !c.is_empty() {
            c = format!("{c}_{}", hexes(&self.sig_algs));
        }
        format!("{a}_{}_{}", hash12(&hexes(&ciphers)), hash12(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of FoxIO's JA4 technical details (a Chrome
    /// ClientHello): `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    #[test]
    fn ja4_matches_the_spec_example() {
        let ciphers = vec![0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
        let f = ClientHelloFields {
            version: 0x0303,
            max_supported: Some(0x0304),
            ciphers,
            extensions: vec![0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015],
            groups: vec![],
            point_formats: vec![],
            sig_algs: vec![0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601],
        };
        assert_eq!(f.ja4(true, Some("h2")), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a));
    }
}
