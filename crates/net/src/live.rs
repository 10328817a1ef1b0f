//! Live capture (`zkaudit collect net`) through libpcap (the `pcap` crate):
//! an interface, an optional BPF filter, the same flows and analysers as
//! capture files. Every second the flows done by then are recorded and
//! libpcap's counters (`pcap_stats`) are read: packets the kernel dropped
//! (`ps_drop`) or the interface dropped (`ps_ifdrop`) since the last
//! reading become a `collector_gap` event (`kernel_lost`) with the count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zkaudit_collect::shape::{gap, GapReason};
use zkaudit_collect::{Destination, Observation, OcsfClass, Report, Sink, SinkError, SinkOptions};
use zkaudit_event::Layer;

use crate::capture::Packet;
use crate::decode::decode;
use crate::flow::{FinishedFlow, FlowTable};
use crate::ingest::{send_flow, Origin, COLLECTOR};

/// What to capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name (`lo`, `eth0`, `any`).
    pub interface: String,
    /// BPF filter expression (tcpdump syntax), if any.
    pub filter: Option<String>,
    /// Stop after this long (`None`: until stopped).
    pub duration: Option<Duration>,
    /// Bytes kept of each packet.
    pub snaplen: i32,
}

/// What a live capture did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveOutcome {
    /// Packets captured.
    pub packets: u64,
    /// Flows recorded.
    pub flows: u64,
    /// Packets the kernel dropped (recorded as gaps).
    pub kernel_dropped: u64,
    /// Packets the interface dropped (recorded as gaps).
    pub interface_dropped: u64,
    /// The sink's figures.
    pub sink: Report,
}

/// Why a live capture failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// libpcap refused (no such interface, no permission, bad filter).
    #[error("{interface}: {what}: {source}")]
    Pcap {
        /// The interface.
        interface: String,
        /// What was being done.
        what: &'static str,
        /// libpcap's error.
        source: pcap::Error,
    },
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// The gap events for libpcap counters that rose from `before` to `now`
/// (kernel drops, interface drops); counters are 32-bit and may wrap.
pub fn drop_gaps(interface: &str, before: (u32, u32), now: (u32, u32)) -> Vec<zkaudit_event::Event> {
    let mut out = Vec::new();
    for (what, b, n) in [("the kernel", before.0, now.0), ("the interface", before.1, now.1)] {
        let lost = n.wrapping_sub(b);
        if lost > 0 {
            let mut g = gap(
                COLLECTOR,
                Layer::Network,
                GapReason::KernelLost,
                u64::from(lost),
                &format!("{lost} packets dropped by {what} on {interface} (pcap_stats)"),
            );
            g.metadata.insert("observer.ingress.interface.name".into(), interface.into());
            out.push(g);
        }
    }
    out
}

/// Captures on `opts.interface` into `dest` until `stop` is set or the
/// duration passes, then records the open flows and stops.
///
/// # Errors
/// [`LiveError`]: libpcap or the sink.
pub fn capture(opts: &LiveOptions, dest: Destination, stop: &AtomicBool) -> Result<LiveOutcome, LiveError> {
    let pe = |what| {
        let interface = opts.interface.clone();
        move |source| LiveError::Pcap { interface: interface.clone(), what, source }
    };
    let cap = pcap::Capture::from_device(opts.interface.as_str()).map_err(pe("finding the device"))?;
    // Non-blocking: with no packets libpcap's read timeout may never fire,
    // and the clock must still tick (flows end, counters are read, stop).
    let mut cap =
        cap.snaplen(opts.snaplen).immediate_mode(true).open().map_err(pe("opening a capture"))?.setnonblock().map_err(pe("setting non-blocking mode"))?;
    if let Some(f) = &opts.filter {
        cap.filter(f, true).map_err(pe("compiling the BPF filter"))?;
    }
    let linktype = cap.get_datalink().0 as u32;
    let mut sink = Sink::open(dest, SinkOptions::new(COLLECTOR, Layer::Network))?;
    let origin = Origin::Interface(&opts.interface);
    let mut table = FlowTable::new(0);
    let mut out = LiveOutcome::default();
    let mut finished: Vec<FinishedFlow> = Vec::new();
    let started = Instant::now();
    let mut next_tick = started + Duration::from_secs(1);
    let mut counters = (0u32, 0u32);
    let snaplen = opts.snaplen.max(0) as u32;
    loop {
        let done = stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| started.elapsed() >= d);
        if done || Instant::now() >= next_tick {
            next_tick += Duration::from_secs(1);
            let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
            table.advance(now_ns, &mut |f| finished.push(f));
            let s = cap.stats().map_err(pe("reading pcap_stats"))?;
            for g in drop_gaps(&opts.interface, counters, (s.dropped, s.if_dropped)) {
                sink.send(&g)?;
            }
            out.kernel_dropped += u64::from(s.dropped.wrapping_sub(counters.0));
            out.interface_dropped += u64::from(s.if_dropped.wrapping_sub(counters.1));
            counters = (s.dropped, s.if_dropped);
        }
        for f in finished.drain(..) {
            out.flows += 1;
            send_flow(&mut sink, &origin, f)?;
        }
        if done {
            break;
        }
        match cap.next_packet() {
            Ok(p) => {
                out.packets += 1;
                // time_t and suseconds_t are i64 on the 64-bit Linux targets this builds for.
                let ts_ns = p.header.ts.tv_sec.saturating_mul(1_000_000_000).saturating_add(p.header.ts.tv_usec.saturating_mul(1000));
                let pkt = Packet { number: out.packets, ts_ns, linktype, data: p.data, orig_len: p.header.len, snaplen };
                if let Ok(d) = decode(linktype, pkt.data) {
                    table.add(&pkt, &d, &mut |f| finished.push(f));
                }
            }
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(pe("reading packets")(e)),
        }
    }
    table.finish(&mut |f| finished.push(f));
    for f in finished.drain(..) {
        out.flows += 1;
        send_flow(&mut sink, &origin, f)?;
    }
    let session = Observation::new("capture_session", Layer::Network, OcsfClass::NetworkActivity, 6, "capture_session")
        .field("observer.ingress.interface.name", opts.interface.clone())
        .field("zkaudit.capture.filter", opts.filter.clone().unwrap_or_default())
        .field("zkaudit.capture.packets", out.packets)
        .field("zkaudit.capture.flows", out.flows)
        .field("zkaudit.capture.kernel_dropped", out.kernel_dropped)
        .field("zkaudit.capture.interface_dropped", out.interface_dropped)
        .into_event();
    sink.send(&session)?;
    out.sink = sink.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_drop_counters_become_gap_events_with_the_count() {
        assert!(drop_gaps("eth0", (5, 0), (5, 0)).is_empty());
        let g = drop_gaps("eth0", (5, 1), (12, 1));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].kind, "collector_gap");
        assert_eq!(g[0].metadata["zkaudit.gap.lost"], 7);
        assert_eq!(g[0].metadata["event.action"], "kernel_lost");
        assert_eq!(g[0].metadata["observer.ingress.interface.name"], "eth0");
        // 32-bit counters wrap.
        let g = drop_gaps("eth0", (u32::MAX - 1, 0), (2, 3));
        assert_eq!((g[0].metadata["zkaudit.gap.lost"].as_u64(), g[1].metadata["zkaudit.gap.lost"].as_u64()), (Some(4), Some(3)));
    }
}
