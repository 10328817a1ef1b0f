//! From a captured frame to addresses, transport and payload, through the
//! `etherparse` crate in its lax mode (a frame cut at the snap length still
//! yields its headers).
//!
//! Link types (tcpdump.org LINKTYPE_*): Ethernet (1, with 802.1Q / QinQ
//! VLAN tags), Linux cooked capture SLL (113) and SLL2 (276), BSD loopback
//! NULL (0, host byte order) and LOOP (108, network order), raw IP (101,
//! and the historical 12 and 14), IPv4 (228) and IPv6 (229).

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// TCP header facts a flow needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tcp {
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Sequence number.
    pub seq: u32,
}

/// A decoded IP packet.
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP, …).
    pub proto: u8,
    /// Source and destination ports (TCP, UDP, SCTP), or for ICMP and
    /// ICMPv6 the type and code; `None` for other protocols and for
    /// non-first fragments.
    pub ports: Option<(u16, u16)>,
    /// TCP flags and sequence number.
    pub tcp: Option<Tcp>,
    /// Length of the IP packet per its header, in bytes.
    pub ip_len: u32,
    /// The transport payload as captured (possibly cut short).
    pub payload: &'a [u8],
    /// The transport payload's length per the headers, in bytes.
    pub payload_len: u32,
}

/// Why a frame gave no IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undecoded {
    /// A link type this decoder does not know.
    UnsupportedLink(u32),
    /// Not IP (ARP, LLDP, STP, …).
    NotIp,
    /// Headers malformed or cut short.
    Malformed,
}

/// Decodes one frame of link type `linktype`.
///
/// # Errors
/// [`Undecoded`] when the frame holds no usable IP packet.
pub fn decode(linktype: u32, frame: &[u8]) -> Result<Decoded<'_>, Undecoded> {
    let lax = match linktype {
        1 => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Undecoded::Malformed)?,
        113 => {
            let proto = be16(frame, 14).ok_or(Undecoded::Malformed)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), frame.get(16..).ok_or(Undecoded::Malformed)?)
        }
        276 => {
            let proto = be16(frame, 0).ok_or(Undecoded::Malformed)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), frame.get(20..).ok_or(Undecoded::Malformed)?)
        }
        0 | 108 => {
            let rest = frame.get(4..).ok_or(Undecoded::Malformed)?;
            // The family is in host order for NULL (either order in
            // practice) and network order for LOOP; 2 is AF_INET, and
            // 10/24/28/30 are AF_INET6 on Linux/BSDs/macOS.
            let fam = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let fam = if fam > 0xffff { fam.swap_bytes() } else { fam };
            match fam {
                2 | 10 | 24 | 28 | 30 => LaxSlicedPacket::from_ip(rest).map_err(|_| Undecoded::Malformed)?,
                _ => return Err(Undecoded::NotIp),
            }
        }
        12 | 14 | 101 | 228 | 229 => LaxSlicedPacket::from_ip(frame).map_err(|_| Undecoded::Malformed)?,
        other => return Err(Undecoded::UnsupportedLink(other)),
    };
    let (src, dst, ip_len, payload) = match &lax.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let p = v4.payload();
            let wire = if p.incomplete { u32::from(h.total_len()).saturating_sub(u32::from(h.ihl()) * 4) } else { p.payload.len() as u32 };
            (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), u32::from(h.total_len()), (p, wire))
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let p = v6.payload();
            let wire = if p.incomplete { u32::from(h.payload_length()) } else { p.payload.len() as u32 };
            (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), u32::from(h.payload_length()) + 40, (p, wire))
        }
        Some(LaxNetSlice::Arp(_)) | None if lax.stop_err.is_none() => return Err(Undecoded::NotIp),
        _ => return Err(Undecoded::Malformed),
    };
    let (ip_payload, ip_payload_wire) = payload;
    let proto = ip_payload.ip_number.0;
    let mut d = Decoded { src, dst, proto, ports: None, tcp: None, ip_len, payload: &[], payload_len: 0 };
    match &lax.transport {
        Some(TransportSlice::Tcp(t)) => {
            d.ports = Some((t.source_port(), t.destination_port()));
            d.tcp = Some(Tcp { syn: t.syn(), ack: t.ack(), fin: t.fin(), rst: t.rst(), seq: t.sequence_number() });
            d.payload = t.payload();
            d.payload_len = ip_payload_wire.saturating_sub(u32::from(t.data_offset()) * 4);
        }
        Some(TransportSlice::Udp(u)) => {
            d.ports = Some((u.source_port(), u.destination_port()));
            d.payload = u.payload();
            d.payload_len = u32::from(u.length()).saturating_sub(8);
        }
        Some(TransportSlice::Icmpv4(i)) => {
            d.ports = Some((u16::from(i.type_u8()), u16::from(i.code_u8())));
            d.payload = i.payload();
            d.payload_len = ip_payload_wire.saturating_sub(8);
        }
        Some(TransportSlice::Icmpv6(i)) => {
            d.ports = Some((u16::from(i.type_u8()), u16::from(i.code_u8())));
            d.payload = i.payload();
            d.payload_len = ip_payload_wire.saturating_sub(8);
        }
        Some(TransportSlice::Igmp(_)) | None => {
            // SCTP (132): the common header starts with both ports;
            // fragments after the first carry no ports.
            if proto == 132 && !ip_payload.fragmented {
                if let (Some(s), Some(t)) = (be16(ip_payload.payload, 0), be16(ip_payload.payload, 2)) {
                    d.ports = Some((s, t));
                }
            }
            d.payload = ip_payload.payload;
            d.payload_len = ip_payload_wire;
        }
    }
    Ok(d)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ethernet_vlan_and_loopback_frames() {
        // Ethernet + 802.1Q + IPv4 + UDP 1.2.3.4:1122 -> 5.6.7.8:53, 4-byte payload.
        let mut f = vec![0u8; 12];
        f.extend([0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        f.extend([0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        f.extend([0x04, 0x62, 0, 53, 0, 12, 0, 0, b'a', b'b', b'c', b'd']);
        let d = decode(1, &f).unwrap();
        assert_eq!((d.src.to_string(), d.dst.to_string(), d.proto, d.ports), ("1.2.3.4".into(), "5.6.7.8".into(), 17, Some((1122, 53))));
        assert_eq!((d.ip_len, d.payload, d.payload_len), (32, &b"abcd"[..], 4));
        // The same IP packet behind a BSD loopback header (AF_INET, host order).
        let mut lo = 2u32.to_le_bytes().to_vec();
        lo.extend(&f[18..]);
        assert_eq!(decode(0, &lo).unwrap().ports, Some((1122, 53)));
        // Cut at the snap length: headers still decoded, payload length from the headers.
        let cut = decode(1, &f[..f.len() - 2]).unwrap();
        assert_eq!((cut.payload, cut.payload_len), (&b"ab"[..], 4));
        assert_eq!(decode(1, &f[..20]).unwrap_err(), Undecoded::Malformed);
        assert_eq!(decode(147, &f).unwrap_err(), Undecoded::UnsupportedLink(147));
        let mut arp = vec![0u8; 12];
        arp.extend([0x08, 0x06]);
        arp.extend([0, 1, 8, 0, 6, 4, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 5, 6, 7, 8]);
        assert_eq!(decode(1, &arp).unwrap_err(), Undecoded::NotIp);
    }
}
