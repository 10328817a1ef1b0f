//! `zkaudit collect host`: the host and physical layer as events.
//!
//! This crate owns sampling `/proc` and `/sys` (CPU time, load, memory,
//! pressure, disk and network I/O, file systems, hwmon and thermal
//! temperatures, RAPL energy) under a root directory, naming the metrics as
//! the OpenTelemetry semantic conventions do ([`sources`]), and turning each
//! source's reading in each interval into one `host_metrics` event of the
//! physical layer whose `input` is the digest of the raw files read. A
//! sensor source that gives nothing (no hwmon, thermal zones or powercap, as
//! in most virtual machines) is said once, as a `sensor_unavailable` event,
//! and never guessed.
//!
//! It must not own the sink or the event shape (`zkaudit-collect`), nor
//! parse anything but procfs and sysfs text.

#![forbid(unsafe_code)]

pub mod sources;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use zkaudit_collect::{Destination, Observation, Report, Sink, SinkError, SinkOptions};
use zkaudit_event::{Event, Layer, Timestamp};

use crate::sources::{Point, Reading, SENSORS, SOURCES};

/// The collector's name (`observer.type`).
pub const COLLECTOR: &str = "zkaudit-host";

/// What to sample and how often.
#[derive(Clone, Debug)]
pub struct Options {
    /// Directory holding `proc/` and `sys/` (`/` for this machine).
    pub root: PathBuf,
    /// Time between samples.
    pub interval: Duration,
    /// Stop after this many samples (`None`: until stopped).
    pub count: Option<u64>,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Samples taken.
    pub samples: u64,
    /// `host_metrics` events.
    pub metric_events: u64,
    /// Sources that gave nothing (each said once, as `sensor_unavailable`).
    pub unavailable: Vec<String>,
    /// The sink's figures.
    pub sink: Report,
}

/// Samples sources and keeps what rates need (the previous counters).
pub struct Sampler {
    root: PathBuf,
    prev: BTreeMap<&'static str, (Instant, Vec<Point>)>,
    said_unavailable: Vec<String>,
}

impl Sampler {
    /// A sampler of the tree under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root, prev: BTreeMap::new(), said_unavailable: Vec::new() }
    }

    /// Sources said to be unavailable so far.
    pub fn unavailable(&self) -> &[String] {
        &self.said_unavailable
    }

    /// Reads every source once and returns its events: one `host_metrics`
    /// per source that gave something, and a `sensor_unavailable` for a
    /// sensor source that gives nothing, the first time only.
    pub fn sample(&mut self) -> Vec<Event> {
        let now = Instant::now();
        let ts = Timestamp::now();
        let mut out = Vec::new();
        for source in SOURCES {
            match sources::read(source, &self.root) {
                Some(r) => {
                    let derived = self.derived(&r, now);
                    out.push(metric_event(&r, &derived, ts.clone()));
                    self.prev.insert(r.source, (now, r.points));
                }
                None if SENSORS.contains(&source) && !self.said_unavailable.iter().any(|s| s == source) => {
                    self.said_unavailable.push(source.to_owned());
                    let dir = sources::describe(&self.root, source);
                    out.push(
                        Observation::metric("sensor_unavailable", Layer::Physical, "sensor_unavailable")
                            .at(ts.clone())
                            .field("observer.type", COLLECTOR)
                            .field("zkaudit.host.source", source)
                            .field("file.path", dir.display().to_string())
                            .field("message", format!("no {source} sensor readings under {}; none will be reported", dir.display()))
                            .into_event(),
                    );
                }
                None => {}
            }
        }
        out
    }

    /// Rates over the interval since the previous sample of the source:
    /// `system.cpu.utilization{mode}` (all CPUs) and `hw.power{zone,name}`
    /// (W, from RAPL energy with its counter's wrap-around).
    fn derived(&self, r: &Reading, now: Instant) -> Vec<Point> {
        let Some((then, prev)) = self.prev.get(r.source) else { return Vec::new() };
        let dt = now.duration_since(*then).as_secs_f64();
        let old = |k: &str| prev.iter().find(|p| p.key == k).map(|p| p.value);
        let mut out = Vec::new();
        match r.source {
            "cpu" => {
                let mut by_mode: BTreeMap<String, f64> = BTreeMap::new();
                for p in &r.points {
                    if let (Some(o), Some(mode)) = (old(&p.key), p.key.split("mode=").nth(1)) {
                        *by_mode.entry(mode.trim_end_matches('}').to_owned()).or_default() += (p.value - o).max(0.0);
                    }
                }
                let total: f64 = by_mode.values().sum();
                if total > 0.0 {
                    out.extend(by_mode.into_iter().map(|(m, v)| Point { key: format!("system.cpu.utilization{{mode={m}}}"), value: v / total }));
                }
            }
            "rapl" if dt > 0.0 => {
                for p in r.points.iter().filter(|p| p.key.starts_with("hw.energy{")) {
                    let Some(o) = old(&p.key) else { continue };
                    let attrs = &p.key["hw.energy".len()..];
                    let range = r.points.iter().find(|q| q.key == format!("zkaudit.rapl.max_energy_range{attrs}")).map(|q| q.value);
                    let delta = match (p.value >= o, range) {
                        (true, _) => p.value - o,
                        (false, Some(range)) => p.value + range - o,
                        (false, None) => continue, // wrapped with no known range: no value rather than a wrong one
                    };
                    out.push(Point { key: format!("hw.power{attrs}"), value: delta / dt });
                }
            }
            _ => {}
        }
        out
    }
}

fn metric_event(r: &Reading, derived: &[Point], ts: Timestamp) -> Event {
    let mut o = Observation::metric("host_metrics", Layer::Physical, "host_metrics")
        .at(ts)
        .input(r.input)
        .field("observer.type", COLLECTOR)
        .field("zkaudit.host.source", r.source)
        .field("zkaudit.host.files", r.files.clone());
    for p in r.points.iter().chain(derived) {
        if let Some(n) = serde_json::Number::from_f64(p.value) {
            o = o.field(&p.key, n);
        }
    }
    o.into_event()
}

/// Samples every `opts.interval` into `dest` until `opts.count` samples or
/// `stop` is set (SIGTERM), then flushes what it has.
///
/// # Errors
/// The sink failed.
pub fn run(opts: &Options, dest: Destination, stop: &AtomicBool, on_sample: &mut dyn FnMut(u64)) -> Result<Outcome, SinkError> {
    // Samples come seconds apart: commit several per batch (each commit
    // is an fsync, a signed checkpoint and an index update). A stop
    // flushes what is pending.
    let mut sink_opts = SinkOptions::new(COLLECTOR, Layer::Physical);
    sink_opts.linger = Duration::from_secs(5);
    let mut sink = Sink::open(dest, sink_opts)?;
    let mut sampler = Sampler::new(opts.root.clone());
    let (mut samples, mut metric_events) = (0u64, 0u64);
    let mut next = Instant::now();
    while opts.count.is_none_or(|c| samples < c) && !stop.load(Ordering::Relaxed) {
        for e in sampler.sample() {
            metric_events += u64::from(e.kind == "host_metrics");
            sink.send(&e)?;
        }
        samples += 1;
        on_sample(samples);
        if opts.count.is_some_and(|c| samples >= c) {
            break;
        }
        next += opts.interval;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(100)));
        }
    }
    let unavailable = sampler.unavailable().to_vec();
    let sink = sink.finish()?;
    Ok(Outcome { samples, metric_events, unavailable, sink })
}
