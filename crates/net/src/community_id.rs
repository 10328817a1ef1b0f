//! The Community ID v1 flow hash (corelight's community-id spec): the key
//! that joins our flows to Zeek's `conn.log`, Suricata's EVE JSON and
//! Arkime sessions.
//!
//! `"1:" + base64(SHA-1(seed ‖ addr_a ‖ addr_b ‖ proto ‖ 0 ‖ port_a ‖ port_b))`
//! with the seed and ports as 16-bit big-endian, and the endpoints ordered
//! so that (addr_a, port_a) is the smaller one. For ICMP and ICMPv6 the
//! "ports" are the type and either the counterpart type (for request and
//! reply pairs, so both directions hash alike) or the code (one-way
//! messages, never reordered).

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// A flow's endpoints in Community ID order, as hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// IP protocol number.
    pub proto: u8,
    /// The first endpoint (smaller, unless one-way ICMP).
    pub a: (IpAddr, u16),
    /// The second endpoint.
    pub b: (IpAddr, u16),
    /// Whether the protocol has ports (or ICMP type/code) in the hash.
    pub has_ports: bool,
    /// Whether `a` is the packet's source (false: the packet went b → a).
    pub a_is_src: bool,
}

impl FlowTuple {
    /// The tuple of a packet from `src` to `dst` with protocol `proto` and
    /// `ports` (or ICMP type and code; `None` for port-less protocols).
    pub fn new(src: IpAddr, dst: IpAddr, proto: u8, ports: Option<(u16, u16)>) -> Self {
        let (sp, dp, one_way) = match (proto, ports) {
            (1 | 58, Some((ty, code))) => match icmp_counterpart(proto == 58, ty as u8) {
                Some(other) => (ty, u16::from(other), false),
                None => (ty, code, true),
            },
            (_, Some((s, d))) => (s, d, false),
            (_, None) => (0, 0, false),
        };
        let src_first = one_way || (src, sp) <= (dst, dp);
        let (a, b) = if src_first { ((src, sp), (dst, dp)) } else { ((dst, dp), (src, sp)) };
        Self { proto, a, b, has_ports: ports.is_some(), a_is_src: src_first }
    }

    /// The Community ID v1 string with `seed` (0 by default), e.g.
    /// `1:wCb3OG7yAFWelaUydu0D+125CLM=`.
    pub fn community_id(&self, seed: u16) -> String {
        let mut h = Sha1::new();
        h.update(seed.to_be_bytes());
        addr_bytes(&mut h, self.a.0);
        addr_bytes(&mut h, self.b.0);
        h.update([self.proto, 0]);
        if self.has_ports {
            h.update(self.a.1.to_be_bytes());
            h.update(self.b.1.to_be_bytes());
        }
        format!("1:{}", base64::engine::general_purpose::STANDARD.encode(h.finalize()))
    }
}

fn addr_bytes(h: &mut Sha1, a: IpAddr) {
    match a {
        IpAddr::V4(v) => h.update(v.octets()),
        IpAddr::V6(v) => h.update(v.octets()),
    }
}

/// The counterpart of an ICMP (v6 = false) or ICMPv6 message type in a
/// request/reply pair, per the spec's tables.
fn icmp_counterpart(v6: bool, ty: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        // echo, router solicitation/advertisement, neighbor
        // solicitation/advertisement, MLD query/report, node information
        // query/response, home agent address discovery.
        &[(128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145)]
    } else {
        // echo, timestamp, information, router solicitation/advertisement,
        // address mask.
        &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)]
    };
    pairs.iter().find_map(|&(x, y)| {
        if ty == x {
            Some(y)
        } else if ty == y {
            Some(x)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(src: &str, dst: &str, proto: u8, ports: Option<(u16, u16)>) -> String {
        FlowTuple::new(src.parse().unwrap(), dst.parse().unwrap(), proto, ports).community_id(0)
    }

    /// The spec's README table (default seed).
    #[test]
    fn matches_the_spec_table() {
        assert_eq!(id("1.2.3.4", "5.6.7.8", 6, Some((1122, 3344))), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
        assert_eq!(id("5.6.7.8", "1.2.3.4", 6, Some((3344, 1122))), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
        assert_eq!(id("1.2.3.4", "5.6.7.8", 17, Some((1122, 3344))), "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=");
        assert_eq!(id("1.2.3.4", "5.6.7.8", 132, Some((1122, 3344))), "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=");
        assert_eq!(id("1.2.3.4", "5.6.7.8", 1, Some((8, 0))), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=");
        assert_eq!(id("5.6.7.8", "1.2.3.4", 1, Some((0, 0))), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=");
        assert_eq!(id("1.2.3.4", "5.6.7.8", 1, Some((11, 0))), "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=");
        let (a, b) = ("fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D");
        assert_eq!(id(a, b, 58, Some((128, 0))), "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=");
        assert_eq!(id(b, a, 58, Some((129, 0))), "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=");
        assert_eq!(id(a, b, 58, Some((146, 0))), "1:fYC8+pz24E+EhANP1EZhpX0Dw10=");
        assert_eq!(id("1.2.3.4", "5.6.7.8", 46, None), "1:ikv3kmf89luf73WPz1jOs49S768=");
        assert_eq!(id(b, a, 46, None), "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=");
        let seeded = FlowTuple::new("1.2.3.4".parse().unwrap(), "5.6.7.8".parse().unwrap(), 6, Some((1122, 3344)));
        assert_eq!(seeded.community_id(1), "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=");
    }
}
