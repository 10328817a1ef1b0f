//! `zkaudit bench pcap`: capture-file ingest throughput against tshark.
//!
//! A synthetic capture of loopback-style web traffic (Ethernet, IPv4; each
//! connection a TCP handshake, an HTTP/1.1 GET, a 12-segment response with
//! ACKs, and FIN teardown; every 20th preceded by a DNS lookup) of the
//! requested size is written once, then read in interleaved repetitions by:
//!
//! * `analyze`: zkaudit's packet pipeline (decode, flows, DNS/TLS/HTTP
//!   analysers, packet digests), with the finished flows dropped;
//! * `ingest`: `zkaudit ingest pcap` into a fresh local ledger (events
//!   appended, group-committed and indexed);
//! * `tshark`: `tshark -r FILE -T fields -e frame.number` (dissection of
//!   every packet, one field printed), to /dev/null.
//!
//! Figures are medians; ratios are against tshark in the same run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use etherparse::PacketBuilder;
use serde_json::json;

use crate::bench::median;
use crate::output::{out, outln, print_json};

/// `zkaudit bench pcap` arguments.
#[derive(Args)]
pub struct PcapArgs {
    /// Scratch directory for the capture and the ledgers (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Size of the synthetic capture, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Repetitions of each reader.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Skip the tshark baseline.
    #[arg(long)]
    no_tshark: bool,
    /// Skip the ingest into a ledger (ledger-bound, and slow on 1 GiB).
    #[arg(long)]
    no_ingest: bool,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(a: PcapArgs) -> Result<()> {
    let scratch =
        tempfile::Builder::new().prefix("zkaudit-bench-pcap").tempdir_in(&a.dir).with_context(|| format!("scratch directory in {}", a.dir.display()))?;
    let file = scratch.path().join("synthetic.pcap");
    let t = Instant::now();
    let (packets, flows) = write_capture(&file, a.size_mib << 20)?;
    let bytes = std::fs::metadata(&file)?.len();
    if !a.json {
        outln!("synthetic capture: {} MiB, {packets} packets, {flows} TCP connections (written in {:.1} s)", bytes >> 20, t.elapsed().as_secs_f64());
    }
    let tshark = !a.no_tshark && Command::new("tshark").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    let (mut analyze, mut ingest, mut shark) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..a.reps {
        let t = Instant::now();
        let mut n = 0u64;
        let (stats, err) = zkaudit_net::analyze_file(&file, 0, &mut |_| n += 1);
        if let Some(e) = err {
            bail!("{e}");
        }
        analyze.push(t.elapsed());
        if stats.packets != packets {
            bail!("read {} packets of {packets}", stats.packets);
        }
        let mut events = 0;
        if !a.no_ingest {
            let ledger = scratch.path().join(format!("ledger-{rep}"));
            zkaudit_tlog::init(&ledger, "bench.zkaudit.test/pcap")?;
            let t = Instant::now();
            let r = zkaudit_net::ingest::ingest_files(
                std::slice::from_ref(&file),
                zkaudit_collect::Destination::Ledger { dir: ledger.clone(), index: None },
                0,
                &mut |_| {},
            )?;
            ingest.push(t.elapsed());
            if r.sink.appended != r.sink.events {
                bail!("{} of {} events appended", r.sink.appended, r.sink.events);
            }
            events = r.sink.events;
            std::fs::remove_dir_all(&ledger)?;
        }
        if tshark {
            let t = Instant::now();
            let st = Command::new("tshark")
                .arg("-r")
                .arg(&file)
                .args(["-T", "fields", "-e", "frame.number"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if !st.success() {
                bail!("tshark failed: {st}");
            }
            shark.push(t.elapsed());
        }
        if !a.json {
            let secs = |v: &Vec<Duration>| v.get(rep).map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
            outln!("rep {}: analyze {} ({n} flows), ingest {} ({events} events), tshark {}", rep + 1, secs(&analyze), secs(&ingest), secs(&shark));
        }
    }
    let rate = |d: Duration| (packets as f64 / d.as_secs_f64(), bytes as f64 / d.as_secs_f64() / 1e6);
    let sm = (!shark.is_empty()).then(|| median(shark));
    let row = |name: &str, d: Duration| {
        let (pps, mbs) = rate(d);
        json!({"reader": name, "median_s": d.as_secs_f64(), "packets_per_s": pps.round(), "mb_per_s": (mbs * 10.0).round() / 10.0, "x_tshark": sm.map(|s| (s.as_secs_f64() / d.as_secs_f64() * 10.0).round() / 10.0)})
    };
    let mut rows = vec![row("analyze", median(analyze))];
    if !ingest.is_empty() {
        rows.push(row("ingest", median(ingest)));
    }
    if let Some(s) = sm {
        rows.push(row("tshark", s));
    }
    for r in &rows {
        if a.json {
            print_json(r);
        } else {
            outln!(
                "{:8} median {:7.2} s  {:>10} packets/s  {:>7} MB/s  {}",
                r["reader"].as_str().unwrap_or_default(),
                r["median_s"].as_f64().unwrap_or_default(),
                r["packets_per_s"],
                r["mb_per_s"],
                r["x_tshark"].as_f64().map_or(String::new(), |x| format!("{x}x tshark"))
            );
        }
    }
    Ok(())
}

/// Writes a classic pcap (microseconds, Ethernet) of about `target` bytes;
/// returns (packets, TCP connections).
fn write_capture(path: &Path, target: u64) -> Result<(u64, u64)> {
    let mut w = BufWriter::with_capacity(4 << 20, std::fs::File::create(path)?);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0u8; 8])?;
    w.write_all(&262_144u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let (mut written, mut packets, mut conns) = (24u64, 0u64, 0u64);
    let mut ts_us: u64 = 1_764_000_000_000_000;
    let mut buf = Vec::with_capacity(2048);
    let (cmac, smac) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let server = [10, 0, 0, 1];
    let body = vec![b'x'; 12 * 460];
    while written < target {
        let i = conns;
        let client = [10, 1 + (i / 62_500 % 250) as u8, (i / 250 % 250) as u8, (i % 250 + 1) as u8];
        let sport = 1024 + (i % 60_000) as u16;
        let mut emit = |buf: &mut Vec<u8>, w: &mut BufWriter<std::fs::File>| -> Result<()> {
            ts_us += 10;
            w.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
            w.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
            w.write_all(&(buf.len() as u32).to_le_bytes())?;
            w.write_all(&(buf.len() as u32).to_le_bytes())?;
            w.write_all(buf)?;
            written += 16 + buf.len() as u64;
            packets += 1;
            buf.clear();
            Ok(())
        };
        if i % 20 == 0 {
            let q = dns_query(i as u16, false);
            PacketBuilder::ethernet2(cmac, smac).ipv4(client, server, 64).udp(sport, 53).write(&mut buf, &q)?;
            emit(&mut buf, &mut w)?;
            let r = dns_query(i as u16, true);
            PacketBuilder::ethernet2(smac, cmac).ipv4(server, client, 64).udp(53, sport).write(&mut buf, &r)?;
            emit(&mut buf, &mut w)?;
        }
        let (cseq, sseq) = (1000u32, 5000u32);
        let c2s = || PacketBuilder::ethernet2(cmac, smac).ipv4(client, server, 64);
        let s2c = || PacketBuilder::ethernet2(smac, cmac).ipv4(server, client, 64);
        c2s().tcp(sport, 80, cseq, 64_240).syn().write(&mut buf, &[])?;
        emit(&mut buf, &mut w)?;
        s2c().tcp(80, sport, sseq, 65_160).syn().ack(cseq + 1).write(&mut buf, &[])?;
        emit(&mut buf, &mut w)?;
        c2s().tcp(sport, 80, cseq + 1, 502).ack(sseq + 1).write(&mut buf, &[])?;
        emit(&mut buf, &mut w)?;
        let req = format!("GET /obj/{i} HTTP/1.1\r\nHost: bench.zkaudit.test\r\nUser-Agent: zkaudit-bench\r\n\r\n");
        c2s().tcp(sport, 80, cseq + 1, 502).psh().ack(sseq + 1).write(&mut buf, req.as_bytes())?;
        emit(&mut buf, &mut w)?;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let mut resp = head.into_bytes();
        resp.extend_from_slice(&body);
        let cack = cseq + 1 + req.len() as u32;
        let mut off = 0u32;
        for (k, seg) in resp.chunks(460).enumerate() {
            s2c().tcp(80, sport, sseq + 1 + off, 509).ack(cack).write(&mut buf, seg)?;
            emit(&mut buf, &mut w)?;
            off += seg.len() as u32;
            if k % 2 == 1 {
                c2s().tcp(sport, 80, cack, 502).ack(sseq + 1 + off).write(&mut buf, &[])?;
                emit(&mut buf, &mut w)?;
            }
        }
        c2s().tcp(sport, 80, cack, 502).fin().ack(sseq + 1 + off).write(&mut buf, &[])?;
        emit(&mut buf, &mut w)?;
        s2c().tcp(80, sport, sseq + 1 + off, 509).fin().ack(cack + 1).write(&mut buf, &[])?;
        emit(&mut buf, &mut w)?;
        c2s().tcp(sport, 80, cack + 1, 502).ack(sseq + 2 + off).write(&mut buf, &[])?;
        emit(&mut buf, &mut w)?;
        conns += 1;
        ts_us += 1000;
    }
    w.flush()?;
    Ok((packets, conns))
}

/// A DNS query (or its answer) for bench.zkaudit.test A.
fn dns_query(id: u16, response: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend(id.to_be_bytes());
    m.extend(if response { [0x81u8, 0x80] } else { [0x01, 0x00] });
    m.extend([0, 1, 0, u8::from(response), 0, 0, 0, 0]);
    for label in ["bench", "zkaudit", "test"] {
        m.push(label.len() as u8);
        m.extend(label.as_bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    if response {
        m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 10, 0, 0, 1]);
    }
    m
}
