//! `zkaudit ingest pcap` as users run it: real traffic captured on loopback
//! by tcpdump (HTTP to python's http.server, TLS to openssl s_server, DNS
//! to dnsmasq; `examples/pcap-loopback/capture.sh`), ingested into a real
//! ledger, asked about with the auditor's predicates, and cross-checked
//! against what Debian's tshark reports for the same file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "../../../tests-support/cli.rs"]
mod cli;
use cli::{ledger, query, run, ZKAUDIT};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// tshark's packets (`-T json -e …`): each a map of field to its values.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-T", "json", "-Y", filter]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().iter().map(|p| p["_source"]["layers"].as_object().cloned().unwrap_or_default()).collect()
}

fn first(p: &serde_json::Map<String, Value>, f: &str) -> String {
    p.get(f).and_then(|v| v[0].as_str()).unwrap_or_default().to_owned()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn loopback_traffic_matches_tshark() {
    let tmp = tempfile::tempdir().unwrap();
    run(Command::new("bash").arg(root().join("examples/pcap-loopback/capture.sh")).arg(tmp.path().join("cap")));
    let pcap = tmp.path().join("cap/lo.pcap");
    let dir = ledger(tmp.path());
    let out = run(Command::new(ZKAUDIT).args(["ingest", "pcap", "--ledger"]).arg(&dir).arg(&pcap).arg("--json"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &report["files"][0];
    assert_eq!(f["error"], Value::Null);
    assert_eq!(f["packets"], f["ip_packets"]);
    assert!(f["tls"] == 2 && f["dns"] == 2 && f["http"].as_u64().unwrap() >= 2, "{report}");

    // Flows: one per tshark TCP and UDP stream, same originator and responder.
    let mut theirs = BTreeSet::new();
    for (proto, field) in [("tcp", "tcp.stream"), ("udp", "udp.stream")] {
        let mut seen = BTreeSet::new();
        for p in tshark(&pcap, proto, &[field, "ip.src", &format!("{proto}.srcport"), "ip.dst", &format!("{proto}.dstport")]) {
            if seen.insert(first(&p, field)) {
                theirs.insert((
                    proto.to_owned(),
                    first(&p, "ip.src"),
                    first(&p, &format!("{proto}.srcport")),
                    first(&p, "ip.dst"),
                    first(&p, &format!("{proto}.dstport")),
                ));
            }
        }
    }
    let ours: BTreeSet<_> =
        query(&dir, "flow(I, OH, OP, RH, RP, Pr).").iter().map(|b| (s(&b["Pr"]), s(&b["OH"]), s(&b["OP"]), s(&b["RH"]), s(&b["RP"]))).collect();
    assert_eq!(ours, theirs);

    // DNS questions and answers.
    let theirs: BTreeSet<String> = tshark(&pcap, "dns.flags.response == 0", &["dns.qry.name"]).iter().map(|p| first(p, "dns.qry.name")).collect();
    let answers = query(&dir, "dns_answer(I, Q, R, A).");
    let ours: BTreeSet<String> = answers.iter().map(|b| s(&b["Q"])).collect();
    assert_eq!(ours, theirs);
    let theirs_a: BTreeSet<String> = tshark(&pcap, "dns.a", &["dns.a"]).iter().map(|p| first(p, "dns.a")).collect();
    let ours_a: BTreeSet<String> = answers.iter().flat_map(|b| b["A"].as_array().cloned().unwrap_or_default()).map(|a| s(&a)).collect();
    assert_eq!(ours_a, theirs_a);
    assert!(answers.iter().any(|b| b["Q"] == "nx.example.invalid" && b["R"] == "REFUSED"));

    // TLS: SNI and JA3 of each ClientHello, and the certificate's SHA-256.
    let theirs: BTreeSet<(String, String)> = tshark(&pcap, "tls.handshake.type == 1", &["tls.handshake.extensions_server_name", "tls.handshake.ja3"])
        .iter()
        .map(|p| (first(p, "tls.handshake.extensions_server_name"), first(p, "tls.handshake.ja3")))
        .collect();
    let ours: BTreeSet<(String, String)> = query(&dir, "tls_session(I, S, V, J4), meta(I, ja3, J3).").iter().map(|b| (s(&b["S"]), s(&b["J3"]))).collect();
    assert_eq!(ours, theirs);
    let cert_hex = first(&tshark(&pcap, "tls.handshake.type == 11", &["tls.handshake.certificate"])[0], "tls.handshake.certificate");
    let cert = hex::decode(cert_hex.replace(':', "")).unwrap();
    let fp = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&cert));
    let fps = query(&dir, "tls_session(I, 'old.zkaudit.test', V, _), meta(I, cert_chain_fps, F).");
    assert_eq!(fps[0]["F"], serde_json::json!([fp]));
    assert_eq!(fps[0]["V"], "TLSv12");
    // TLS 1.3 encrypts the server's ALPN choice; the client's offer is clear.
    assert_eq!(query(&dir, "tls_session(I, 'sni.zkaudit.test', V, _), meta(I, client_alpn, P).")[0]["P"], serde_json::json!(["h2"]));

    // HTTP requests and response codes.
    let theirs: BTreeSet<(String, String, String)> = tshark(&pcap, "http.request", &["http.request.method", "http.host", "http.request.uri"])
        .iter()
        .map(|p| (first(p, "http.request.method"), first(p, "http.host"), first(p, "http.request.uri")))
        .collect();
    let reqs = query(&dir, "http_request(I, M, H, U, St).");
    let ours: BTreeSet<(String, String, String)> = reqs.iter().map(|b| (s(&b["M"]), s(&b["H"]), s(&b["U"]))).collect();
    assert_eq!(ours, theirs);
    let theirs: Vec<String> = tshark(&pcap, "http.response", &["http.response.code"]).iter().map(|p| first(p, "http.response.code")).collect();
    let mut ours: Vec<String> = reqs.iter().map(|b| s(&b["St"])).collect();
    let mut theirs_sorted = theirs.clone();
    ours.sort();
    theirs_sorted.sort();
    assert_eq!(ours, theirs_sorted);
    assert_eq!(query(&dir, "http_request(I, 'GET', _, '/index.html', 200), meta(I, user_agent, A).")[0]["A"], "zkaudit-test/1");

    // Every child event's flow, and the flow's input: the digest of its
    // packets as a pcap file, which tshark re-creates from the capture.
    assert_eq!(query(&dir, "flow_of(I, F).").len(), query(&dir, "member(T, [dns_query, tls_handshake, http_request]), event(I, _, _, T, _, _).").len());
    // Stream 0 by both ports: two connections to different servers may
    // share a client port.
    let stream0 = tshark(&pcap, "tcp.stream == 0 && tcp.flags.syn == 1 && tcp.flags.ack == 0", &["tcp.srcport", "tcp.dstport"]);
    let (sport, dport) = (first(&stream0[0], "tcp.srcport"), first(&stream0[0], "tcp.dstport"));
    let flow_pcap = tmp.path().join("stream0.pcap");
    run(Command::new("tshark").arg("-r").arg(&pcap).args(["-Y", "tcp.stream == 0", "-F", "nsecpcap", "-w"]).arg(&flow_pcap));
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&flow_pcap).unwrap())));
    let b = query(&dir, &format!("flow(I, _, {sport}, _, {dport}, tcp), event(I, _, _, _, In, _)."));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["In"], digest.as_str());

    // "Was a packet sent from A to B in this window?" (ns since the epoch).
    let dns_from = query(&dir, "packet_sent(I, '127.0.0.53', '127.0.0.1', 0, 9000000000000000000), flow(I, _, _, _, 53, udp).");
    assert_eq!(dns_from.len(), 1);
    assert!(query(&dir, "packet_sent(I, '127.0.0.53', '127.0.0.1', 0, 1000).").is_empty(), "nothing in 1970");
    assert!(query(&dir, "packet_sent(I, '10.9.8.7', _, 0, 9000000000000000000).").is_empty());
}

#[test]
fn a_truncated_capture_is_recorded_up_to_the_cut_with_a_gap_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ledger(tmp.path());
    let full = std::fs::read(root().join("../shared/data/pcap/tcpdump-tests/afs.pcap")).unwrap();
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let gz = root().join("../shared/data/pcap/community-id/pcaps/combined.pcap.gz");
    // A path that does not exist: refused before anything is recorded.
    let out = Command::new(ZKAUDIT).args(["ingest", "pcap", "--ledger"]).arg(&dir).arg(&gz).arg(tmp.path().join("missing.pcap")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pcap: No such file"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(zkaudit_tlog::LogReader::open(&dir).unwrap().size(), 0);
    let out = Command::new(ZKAUDIT).args(["ingest", "pcap", "--ledger"]).arg(&dir).arg(&cut).arg(&gz).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap: packet ") && err.contains("truncated"), "{err}");
    assert!(err.contains("combined.pcap.gz: "), "the next file is still ingested: {err}");
    let gaps = query(&dir, "collector_gap(I, C, R, N), meta(I, 'zkaudit.capture.packet', P).");
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0]["C"].as_str(), gaps[0]["R"].as_str()), (Some("zkaudit-net"), Some("unreadable")));
    assert!(!query(&dir, "meta(I, 'zkaudit.capture.file', F), atom_concat(_, 'cut.pcap', F).").is_empty(), "flows before the cut are recorded");
    let files = query(&dir, "event(I, _, _, capture_file, In, _), meta(I, 'file.path', F).");
    assert_eq!(files.len(), 2);
    // Each capture_file event's input is the file's SHA-256 as stored.
    for (f, bytes) in [(&cut, std::fs::read(&cut).unwrap()), (&gz, std::fs::read(&gz).unwrap())] {
        let b = files.iter().find(|b| b["F"] == f.display().to_string().as_str()).unwrap();
        assert_eq!(b["In"], format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))).as_str());
    }
}

/// The telecoms pack's uptime rule with its evidence taken from recorded
/// flows (`examples/telecoms-flows/run.sh`: a real service stopped while
/// probed and captured).
#[test]
fn the_telecoms_pack_finds_an_outage_in_recorded_flows() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash").arg(root().join("examples/telecoms-flows/run.sh")).arg(tmp.path()).env("ZKAUDIT_BIN", ZKAUDIT).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("as expected"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let dir = tmp.path().join("ledger");
    let a = query(&dir, "availability(web, P, [outage(I, Ns)], _), flow(I, _, _, _, _, tcp), meta(I, conn_state, St).");
    assert_eq!(a.len(), 1, "one outage");
    assert_eq!(a[0]["St"], "REJ");
    let p = a[0]["P"].as_f64().unwrap();
    assert!(p > 20.0 && p < 90.0, "{p}");
    assert!(a[0]["Ns"].as_u64().unwrap() > 500_000_000, "the service was down for 10 probes 0.1 s apart");
}

/// `zkaudit collect net` on loopback: a live capture (libpcap, BPF filter)
/// records the flows and HTTP requests made while it runs, and a session
/// event with libpcap's drop counters.
#[test]
fn live_capture_on_loopback_records_flows_and_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ledger(tmp.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", &port, "--bind", "127.0.0.1"])
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let collector = Command::new(ZKAUDIT)
        .args(["collect", "net", "--ledger"])
        .arg(&dir)
        .args(["-i", "lo", "-f", &format!("tcp port {port}"), "--duration", "4", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for path in ["/", "/missing"] {
        run(Command::new("curl").args(["-s", "-o", "/dev/null", "-A", "zkaudit-live/1", &format!("http://127.0.0.1:{port}{path}")]));
    }
    let out = collector.wait_with_output().unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o["flows"], 2, "{o}");
    assert_eq!(o["kernel_dropped"], 0);
    let reqs = query(&dir, "http_request(I, 'GET', _, U, S), flow_of(I, F), meta(F, 'observer.ingress.interface.name', lo).");
    let got: BTreeSet<(String, String)> = reqs.iter().map(|b| (s(&b["U"]), s(&b["S"]))).collect();
    assert_eq!(got, BTreeSet::from([("/".to_owned(), "200".to_owned()), ("/missing".to_owned(), "404".to_owned())]));
    assert_eq!(query(&dir, "event(I, _, _, capture_session, _, _), meta(I, 'zkaudit.capture.filter', F).")[0]["F"], format!("tcp port {port}").as_str());
}
