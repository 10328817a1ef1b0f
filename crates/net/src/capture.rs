//! Reading capture files: classic pcap (micro- and nanosecond, either byte
//! order) and pcapng (every interface's link type, timestamp resolution
//! and offset), optionally gzip-compressed, through the `pcap-parser`
//! crate.
//!
//! Packets are numbered from 1 in file order, as tshark's `frame.number`
//! counts them, so that an error or an event can name the packet.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};

/// Largest capture record accepted, in bytes (tcpdump's own limit is
/// 262,144; pcapng allows more, and a larger length is almost always a
/// corrupt file).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// One captured packet.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Its number in the file, from 1 (tshark's `frame.number`).
    pub number: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The link-layer header type (LINKTYPE_* of tcpdump.org), e.g. 1
    /// Ethernet, 113 Linux SLL, 0 BSD loopback.
    pub linktype: u32,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The packet's length on the wire, in bytes.
    pub orig_len: u32,
    /// The capture's snap length for this interface, in bytes.
    pub snaplen: u32,
}

/// Why a capture file could not be read (to its end).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file starts with neither a pcap nor a pcapng header.
    #[error("{file}: not a pcap or pcapng capture ({detail})")]
    NotACapture {
        /// The file.
        file: PathBuf,
        /// What was found.
        detail: String,
    },
    /// A record is malformed or cut short; the packets before it were read.
    #[error("{file}: packet {packet} (byte offset {offset}): {detail}")]
    BadRecord {
        /// The file.
        file: PathBuf,
        /// The number the packet would have had (1-based).
        packet: u64,
        /// Byte offset of the record in the (decompressed) file.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
}

/// What reading a file gave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Packets handed to the callback.
    pub packets: u64,
    /// Bytes of the (decompressed) file consumed.
    pub bytes: u64,
}

/// One pcapng interface (Interface Description Block).
#[derive(Clone, Copy)]
struct Iface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

/// Reads every packet of the capture at `path` (pcap or pcapng; a `.gz`
/// file, by its magic bytes, is decompressed on the fly) and calls `f` on
/// each, in order. Reading stops at the first structural error, after the
/// packets before it were handed over.
///
/// # Errors
/// [`CaptureError`], naming the file and, for a bad record, its packet
/// number and byte offset.
pub fn read_packets(path: &Path, mut f: impl FnMut(&Packet<'_>)) -> Result<ReadSummary, CaptureError> {
    let io = |source| CaptureError::Io { file: path.to_owned(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic).map_err(io)? == 2 && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    // pcap-parser reads into its own 1 MiB buffer: no BufReader (one copy less).
    let reader: Box<dyn Read + Send> = if gz { Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))) } else { Box::new(file) };
    read_from(path, reader, &mut f)
}

fn read_from(path: &Path, reader: Box<dyn Read + Send>, f: &mut dyn FnMut(&Packet<'_>)) -> Result<ReadSummary, CaptureError> {
    let not_capture = |detail: String| CaptureError::NotACapture { file: path.to_owned(), detail };
    let mut r = match pcap_parser::create_reader(1 << 20, reader) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Err(not_capture("empty file".into())),
        Err(PcapError::Incomplete(_)) => return Err(not_capture("file shorter than a capture header".into())),
        Err(PcapError::ReadError) => return Err(CaptureError::Io { file: path.to_owned(), source: std::io::Error::other("read failed (or bad gzip data)") }),
        Err(e) => return Err(not_capture(describe(&e))),
    };
    let mut number: u64 = 0;
    let mut legacy: Option<(u32, u32, u64)> = None; // (linktype, snaplen, ns per unit)
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut capacity = 1usize << 20;
    loop {
        let offset = r.consumed() as u64;
        let bad = |detail: String| CaptureError::BadRecord { file: path.to_owned(), packet: number + 1, offset, detail };
        match r.next() {
            Ok((len, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy = Some((h.network.0 as u32, h.snaplen, if h.is_nanosecond_precision() { 1 } else { 1000 }));
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let Some((linktype, snaplen, ns_per_unit)) = legacy else { return Err(bad("packet record before the file header".into())) };
                        if b.caplen as usize > b.data.len() {
                            return Err(bad(format!("captured length {} exceeds the record", b.caplen)));
                        }
                        number += 1;
                        let ts_ns = i64::from(b.ts_sec).saturating_mul(1_000_000_000).saturating_add(i64::from(b.ts_usec).saturating_mul(ns_per_unit as i64));
                        f(&Packet { number, ts_ns, linktype, data: &b.data[..b.caplen as usize], orig_len: b.origlen, snaplen });
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let units_per_sec = idb.ts_resolution().ok_or_else(|| bad(format!("interface {}: bad if_tsresol {}", ifaces.len(), idb.if_tsresol)))?;
                        ifaces.push(Iface { linktype: idb.linktype.0 as u32, snaplen: idb.snaplen, units_per_sec, offset_s: idb.ts_offset() });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let Some(iface) = ifaces.get(epb.if_id as usize).copied() else {
                            return Err(bad(format!("enhanced packet block names interface {} but {} are described", epb.if_id, ifaces.len())));
                        };
                        if epb.caplen as usize > epb.data.len() {
                            return Err(bad(format!("captured length {} exceeds the block", epb.caplen)));
                        }
                        number += 1;
                        let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let ts_ns = ng_ts_ns(units, iface);
                        f(&Packet {
                            number,
                            ts_ns,
                            linktype: iface.linktype,
                            data: &epb.data[..epb.caplen as usize],
                            orig_len: epb.origlen,
                            snaplen: iface.snaplen,
                        });
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let Some(iface) = ifaces.first().copied() else { return Err(bad("simple packet block before any interface description".into())) };
                        number += 1;
                        let cap = spb.data.len().min(spb.origlen as usize);
                        f(&Packet { number, ts_ns: 0, linktype: iface.linktype, data: &spb.data[..cap], orig_len: spb.origlen, snaplen: iface.snaplen });
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                // No shift per record: refill() shifts the unread tail once.
                r.consume_noshift(len);
            }
            Err(PcapError::Eof) => return Ok(ReadSummary { packets: number, bytes: r.consumed() as u64 }),
            Err(PcapError::Incomplete(_)) => r.refill().map_err(|e| bad(describe(&e)))?,
            Err(PcapError::BufferTooSmall) => {
                if capacity >= MAX_RECORD_BYTES {
                    return Err(bad(format!("record larger than {MAX_RECORD_BYTES} bytes")));
                }
                capacity *= 4;
                if !r.grow(capacity) {
                    return Err(bad("could not grow the read buffer".into()));
                }
                r.refill().map_err(|e| bad(describe(&e)))?;
            }
            Err(PcapError::UnexpectedEof) => return Err(bad("the file ends inside this record (truncated capture)".into())),
            Err(e) => return Err(bad(describe(&e))),
        }
    }
}

/// pcapng timestamp units to Unix nanoseconds.
fn ng_ts_ns(units: u64, iface: Iface) -> i64 {
    let ns = u128::from(units) * 1_000_000_000 / u128::from(iface.units_per_sec.max(1));
    i64::try_from(ns).unwrap_or(i64::MAX).saturating_add(iface.offset_s.saturating_mul(1_000_000_000))
}

fn describe<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof => "unexpected end of file".into(),
        PcapError::BufferTooSmall => "record too large".into(),
        PcapError::UnexpectedEof => "the file ends inside a record (truncated capture)".into(),
        PcapError::ReadError => "read error (or bad gzip data)".into(),
        PcapError::Incomplete(n) => format!("record incomplete ({n} more bytes needed)"),
        PcapError::HeaderNotRecognized => "header not recognized".into(),
        PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => format!("malformed block ({})", k.description()),
    }
}
