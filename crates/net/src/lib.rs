//! Network traffic as ledger events.
//!
//! This crate owns turning packets into network-layer events in the shape
//! security teams already read: flows with Zeek's `conn.log` fields and a
//! Community ID v1 hash ([`flow`], [`community_id`]), DNS ([`dns`], Zeek's
//! `dns.log`), TLS handshakes with JA3/JA4 fingerprints ([`tls`], `ssl.log`)
//! and HTTP/1.x transactions ([`http`], `http.log`), each child event
//! holding its flow's event in `parents` and each flow's `input` the digest
//! of its packets. Capture files (pcap, pcapng, gzip) are read by
//! [`capture`]; [`ingest`] is the use case that writes them into a
//! collector sink; `live` (cargo feature `live`, libpcap) captures from an
//! interface.
//!
//! It must not parse wire formats by hand where a maintained crate does
//! (pcap-parser, etherparse, simple-dns, tls-parser, httparse), nor own
//! the sink, the spool or the event shape (`zkaudit-collect`), nor the
//! ledger.

#![forbid(unsafe_code)]

pub mod capture;
pub mod community_id;
pub mod decode;
pub mod dns;
pub mod flow;
pub mod http;
pub mod ingest;
#[cfg(feature = "live")]
pub mod live;
pub mod tls;

pub use ingest::{analyze_file, FileStats, Ingest};
