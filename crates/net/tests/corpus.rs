//! The shared capture corpora: the Community ID spec's captures against its
//! published hashes, and every file of tcpdump's test suite (many of them
//! deliberately malformed), which must each ingest or be refused with an
//! error naming the file and packet, without a panic or a hang.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use zkaudit_net::flow::FinishedFlow;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(rel)
}

fn flows(path: &Path) -> Vec<FinishedFlow> {
    let mut out = Vec::new();
    let (stats, err) = zkaudit_net::analyze_file(path, 0, &mut |f| out.push(f));
    assert!(err.is_none(), "{}: {err:?}", path.display());
    assert!(stats.packets > 0);
    out
}

/// `baseline_deflt.json` was made by pycommunityid over `combined.pcap.gz`;
/// every tuple in it must be one of our flows, with the same Community ID,
/// and every flow we found must be in it.
#[test]
fn community_ids_equal_the_spec_baseline() {
    let baseline: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(shared("pcap/community-id/baseline/baseline_deflt.json")).unwrap()).unwrap();
    assert_eq!(baseline.len(), 23);
    let ours = flows(&shared("pcap/community-id/pcaps/combined.pcap.gz"));
    let ids: BTreeSet<String> = ours.iter().map(|f| f.conn.community_id.clone()).collect();
    let expected: BTreeSet<String> = baseline.iter().map(|b| b["communityid"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, expected);
    for b in &baseline {
        let (s, d) = (b["saddr"].as_str().unwrap().parse().unwrap(), b["daddr"].as_str().unwrap().parse().unwrap());
        let f = ours.iter().find(|f| f.conn.community_id == b["communityid"].as_str().unwrap()).unwrap();
        let c = &f.conn;
        assert!((c.orig_h, c.resp_h) == (s, d) || (c.orig_h, c.resp_h) == (d, s), "{b} vs {c:?}");
        assert_eq!(u64::from(c.proto_number), b["proto"].as_u64().unwrap());
    }
    // The TCP and UDP samples are single connections with both directions.
    let tcp = ours.iter().find(|f| f.conn.proto == "tcp").unwrap();
    assert!(tcp.conn.orig_pkts > 0 && tcp.conn.resp_pkts > 0, "{:?}", tcp.conn);
}

/// Every capture in tcpdump's test suite either ingests or is refused with
/// an error naming the file (and, for a bad record, the packet number);
/// each file gets 20 s.
#[test]
fn every_tcpdump_test_capture_ingests_or_is_refused_clearly() {
    let dir = shared("pcap/tcpdump-tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= 800, "{} captures", files.len());
    let (mut ok, mut refused, mut packets, mut flows) = (0, 0, 0u64, 0u64);
    for f in &files {
        let (tx, rx) = mpsc::channel();
        let path = f.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            let r = zkaudit_net::analyze_file(&path, 0, &mut |_| n += 1);
            let _ = tx.send((r, n));
        });
        let ((stats, err), n) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{}: no answer in 20 s (hang)", f.display()),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{}: the analyser panicked", f.display()),
        };
        packets += stats.packets;
        flows += n;
        match err {
            None => ok += 1,
            Some(e) => {
                refused += 1;
                let msg = e.to_string();
                assert!(msg.starts_with(&f.display().to_string()), "error does not name the file: {msg}");
                if let zkaudit_net::capture::CaptureError::BadRecord { packet, .. } = e {
                    assert!(msg.contains(&format!("packet {packet}")), "{msg}");
                }
                assert_eq!(stats.error.as_deref(), Some(msg.as_str()));
            }
        }
    }
    eprintln!("tcpdump corpus: {} files, {ok} ingested, {refused} refused; {packets} packets, {flows} flows", files.len());
    assert!(ok > files.len() * 3 / 4, "only {ok} of {} ingested", files.len());
    assert!(flows > 500 && packets > 5000, "{flows} flows, {packets} packets");
}

/// A capture cut inside a record, and a file that is no capture at all:
/// refused with the file, packet number and offset; the packets before the
/// cut still make flows.
#[test]
fn a_truncated_capture_names_the_packet_where_it_stops() {
    let full = std::fs::read(shared("pcap/tcpdump-tests/afs.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let mut n = 0;
    let (stats, err) = zkaudit_net::analyze_file(&cut, 0, &mut |_| n += 1);
    let err = err.expect("a cut capture is an error");
    let msg = err.to_string();
    assert!(msg.starts_with(&cut.display().to_string()) && msg.contains("truncated"), "{msg}");
    let zkaudit_net::capture::CaptureError::BadRecord { packet, offset, .. } = err else { panic!("{msg}") };
    assert_eq!(packet, stats.packets + 1, "{msg}");
    assert!(offset > 24 && offset < full.len() as u64 / 2, "{msg}");
    assert!(n > 0, "flows before the cut are kept");
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (_, err) = zkaudit_net::analyze_file(&junk, 0, &mut |_| {});
    let msg = err.unwrap().to_string();
    assert!(msg.contains("junk.pcap: not a pcap or pcapng capture"), "{msg}");
}

/// DNS over TCP (tcpdump's `dns_tcp.pcap`): the question and answers
/// tshark sees, in one transaction with its response code.
#[test]
fn dns_over_tcp_is_analysed() {
    let f = flows(&shared("pcap/tcpdump-tests/dns_tcp.pcap"));
    let dns: Vec<_> = f.iter().flat_map(|f| f.dns.iter().map(move |d| (f.conn.proto, d))).collect();
    assert_eq!(dns.len(), 1, "{dns:?}");
    let (proto, d) = dns[0];
    assert_eq!(proto, "tcp");
    assert_eq!(d.query.as_deref(), Some("www.tcpdump.org"));
    assert_eq!(d.rcode_name.as_deref(), Some("NOERROR"));
    assert!(d.rtt.is_some());
}
