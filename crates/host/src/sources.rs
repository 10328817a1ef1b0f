//! Reading one source of host metrics: the raw files, their digest, and the
//! metric points parsed from them.
//!
//! Sources and the files they read (under the root, `/` by default):
//!
//! | source | files | metrics (OpenTelemetry semantic conventions) |
//! |---|---|---|
//! | `cpu` | `/proc/stat` | `system.cpu.time{cpu,mode}` s (USER_HZ = 100) |
//! | `load` | `/proc/loadavg` | `system.cpu.load_average.1m`, `.5m`, `.15m` |
//! | `memory` | `/proc/meminfo` | `system.memory.usage{state}` By, `system.memory.limit` By |
//! | `pressure` | `/proc/pressure/{cpu,memory,io}` | `system.psi.total{resource,stall}` µs, `system.psi.avg10{resource,stall}` % (PSI; not in the conventions, named in their style) |
//! | `disk` | `/proc/diskstats` | `system.disk.io{device,direction}` By, `system.disk.operations{device,direction}`, `system.disk.io_time{device}` s |
//! | `network` | `/proc/net/dev` | `system.network.io{device,direction}` By, `system.network.packets`, `.errors`, `.dropped` |
//! | `filesystem` | `/proc/mounts` + statvfs | `system.filesystem.usage{device,mountpoint,type,state}` By (live root only) |
//! | `hwmon` | `/sys/class/hwmon/*/temp*_input`, `name`, `temp*_label` | `hw.temperature{chip,sensor}` °C |
//! | `thermal` | `/sys/class/thermal/thermal_zone*/{temp,type}` | `hw.temperature{zone,type}` °C |
//! | `rapl` | `/sys/class/powercap/intel-rapl*/{energy_uj,max_energy_range_uj,name}` | `hw.energy{zone,name}` J (a counter) |
//!
//! A metric's key is its name followed by its attributes in braces, in a
//! fixed order, as OpenMetrics writes labels: `system.cpu.time{cpu=0,mode=user}`.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use zkaudit_event::Digest;

/// One metric point: its key (name and attributes) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// `name` or `name{attr=value,…}`.
    pub key: String,
    /// The value, in the unit the name's convention gives.
    pub value: f64,
}

fn point(name: &str, attrs: &[(&str, &str)], value: f64) -> Point {
    let key =
        if attrs.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", attrs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")) };
    Point { key, value }
}

/// What one source gave in one sample.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The source's name (`cpu`, `memory`, `hwmon`, …).
    pub source: &'static str,
    /// SHA-256 over the raw files read, each as its path (from the root,
    /// e.g. `/proc/stat`), a NUL byte, its length as a big-endian u64 and
    /// its bytes, in the order read.
    pub input: Digest,
    /// The files read, from the root.
    pub files: Vec<String>,
    /// Metric points.
    pub points: Vec<Point>,
}

/// Reads raw files under a root and digests them.
struct Files<'r> {
    root: &'r Path,
    hash: Sha256,
    names: Vec<String>,
}

impl<'r> Files<'r> {
    fn new(root: &'r Path) -> Self {
        Self { root, hash: Sha256::new(), names: Vec::new() }
    }

    /// The file at `rel` (e.g. `/proc/stat`) as text, or `None` when it
    /// cannot be read (missing sensor, no permission).
    fn read(&mut self, rel: &str) -> Option<String> {
        let bytes = std::fs::read(self.root.join(rel.trim_start_matches('/'))).ok()?;
        self.hash.update(rel.as_bytes());
        self.hash.update([0]);
        self.hash.update((bytes.len() as u64).to_be_bytes());
        self.hash.update(&bytes);
        self.names.push(rel.to_owned());
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Entries of directory `rel` whose names start with `prefix`, sorted.
    fn list(&self, rel: &str, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join(rel.trim_start_matches('/')))
            .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
            .unwrap_or_default();
        v.sort_by_key(|a| natural(a));
        v
    }

    fn done(self, source: &'static str, points: Vec<Point>) -> Option<Reading> {
        if self.names.is_empty() {
            return None;
        }
        Some(Reading { source, input: Digest(self.hash.finalize().into()), files: self.names, points })
    }
}

/// Sort key that puts `temp10` after `temp9`.
fn natural(s: &str) -> (String, u64) {
    let digits: String = s.chars().rev().take_while(char::is_ascii_digit).collect::<Vec<_>>().into_iter().rev().collect();
    (s[..s.len() - digits.len()].to_owned(), digits.parse().unwrap_or(0))
}

/// The sources, in the order a sample reads them.
pub const SOURCES: [&str; 10] = ["cpu", "load", "memory", "pressure", "disk", "network", "filesystem", "hwmon", "thermal", "rapl"];

/// Sensor sources: when one gives nothing, a `sensor_unavailable` event
/// says so once.
pub const SENSORS: [&str; 3] = ["hwmon", "thermal", "rapl"];

/// Reads source `source` under `root`; `None` when its files are missing.
pub fn read(source: &str, root: &Path) -> Option<Reading> {
    let mut f = Files::new(root);
    let mut p = Vec::new();
    let name: &'static str = match source {
        "cpu" => {
            let stat = f.read("/proc/stat")?;
            for line in stat.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")) {
                let mut it = line.split_whitespace();
                let cpu = it.next().unwrap_or_default().trim_start_matches("cpu");
                const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
                for (mode, v) in MODES.iter().zip(it) {
                    if let Ok(ticks) = v.parse::<u64>() {
                        p.push(point("system.cpu.time", &[("cpu", cpu), ("mode", mode)], ticks as f64 / 100.0));
                    }
                }
            }
            "cpu"
        }
        "load" => {
            let l = f.read("/proc/loadavg")?;
            for (w, v) in ["1m", "5m", "15m"].iter().zip(l.split_whitespace()) {
                if let Ok(v) = v.parse() {
                    p.push(point(&format!("system.cpu.load_average.{w}"), &[], v));
                }
            }
            "load"
        }
        "memory" => {
            let m = f.read("/proc/meminfo")?;
            let kb = |k: &str| m.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix(':')?.split_whitespace().next()?.parse::<f64>().ok()).map(|v| v * 1024.0);
            if let (Some(total), Some(free), Some(buffers), Some(cached)) = (kb("MemTotal"), kb("MemFree"), kb("Buffers"), kb("Cached")) {
                p.push(point("system.memory.limit", &[], total));
                p.push(point("system.memory.usage", &[("state", "used")], total - free - buffers - cached));
                p.push(point("system.memory.usage", &[("state", "free")], free));
                p.push(point("system.memory.usage", &[("state", "buffers")], buffers));
                p.push(point("system.memory.usage", &[("state", "cached")], cached));
            }
            "memory"
        }
        "pressure" => {
            for res in ["cpu", "memory", "io"] {
                let Some(t) = f.read(&format!("/proc/pressure/{res}")) else { continue };
                for line in t.lines() {
                    let mut it = line.split_whitespace();
                    let Some(stall) = it.next() else { continue };
                    for kv in it {
                        match kv.split_once('=') {
                            Some(("avg10", v)) => p.extend(v.parse().ok().map(|v| point("system.psi.avg10", &[("resource", res), ("stall", stall)], v))),
                            Some(("total", v)) => p.extend(v.parse().ok().map(|v| point("system.psi.total", &[("resource", res), ("stall", stall)], v))),
                            _ => {}
                        }
                    }
                }
            }
            "pressure"
        }
        "disk" => {
            let d = f.read("/proc/diskstats")?;
            for line in d.lines() {
                let c: Vec<&str> = line.split_whitespace().collect();
                if c.len() < 14 {
                    continue;
                }
                let n = |i: usize| c[i].parse::<f64>().unwrap_or(0.0);
                let dev = c[2];
                if n(3) + n(7) == 0.0 {
                    continue; // never used (ram*, loop*)
                }
                p.push(point("system.disk.io", &[("device", dev), ("direction", "read")], n(5) * 512.0));
                p.push(point("system.disk.io", &[("device", dev), ("direction", "write")], n(9) * 512.0));
                p.push(point("system.disk.operations", &[("device", dev), ("direction", "read")], n(3)));
                p.push(point("system.disk.operations", &[("device", dev), ("direction", "write")], n(7)));
                p.push(point("system.disk.io_time", &[("device", dev)], n(12) / 1000.0));
            }
            "disk"
        }
        "network" => {
            let d = f.read("/proc/net/dev")?;
            for line in d.lines().skip(2) {
                let Some((dev, rest)) = line.split_once(':') else { continue };
                let dev = dev.trim();
                let c: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
                if c.len() < 16 {
                    continue;
                }
                for (dir, o) in [("receive", 0), ("transmit", 8)] {
                    p.push(point("system.network.io", &[("device", dev), ("direction", dir)], c[o]));
                    p.push(point("system.network.packets", &[("device", dev), ("direction", dir)], c[o + 1]));
                    p.push(point("system.network.errors", &[("device", dev), ("direction", dir)], c[o + 2]));
                    p.push(point("system.network.dropped", &[("device", dev), ("direction", dir)], c[o + 3]));
                }
            }
            "network"
        }
        "filesystem" => {
            if root != Path::new("/") {
                return None; // statvfs only means something on the live system
            }
            let m = f.read("/proc/mounts")?;
            for line in m.lines() {
                let c: Vec<&str> = line.split_whitespace().collect();
                if c.len() < 3 || !c[0].starts_with('/') {
                    continue; // pseudo file systems
                }
                let Ok(s) = rustix::fs::statvfs(c[1]) else { continue };
                let bs = s.f_frsize as f64;
                let attrs = |state| [("device", c[0]), ("mountpoint", c[1]), ("type", c[2]), ("state", state)];
                p.push(point("system.filesystem.usage", &attrs("used"), (s.f_blocks - s.f_bfree) as f64 * bs));
                p.push(point("system.filesystem.usage", &attrs("free"), s.f_bavail as f64 * bs));
                p.push(point("system.filesystem.usage", &attrs("reserved"), (s.f_bfree - s.f_bavail) as f64 * bs));
            }
            "filesystem"
        }
        "hwmon" => {
            for chip in f.list("/sys/class/hwmon", "hwmon") {
                let dir = format!("/sys/class/hwmon/{chip}");
                let name = f.read(&format!("{dir}/name")).map(|n| n.trim().to_owned()).unwrap_or_else(|| chip.clone());
                for input in f.list(&dir, "temp").into_iter().filter(|n| n.ends_with("_input")) {
                    let sensor = input.trim_end_matches("_input").to_owned();
                    let Some(v) = f.read(&format!("{dir}/{input}")).and_then(|v| v.trim().parse::<f64>().ok()) else { continue };
                    let label = f.read(&format!("{dir}/{sensor}_label")).map(|l| l.trim().to_owned());
                    let chip_id = format!("{chip}:{name}");
                    let mut attrs = vec![("chip", chip_id.as_str()), ("sensor", sensor.as_str())];
                    if let Some(l) = &label {
                        attrs.push(("label", l));
                    }
                    p.push(point("hw.temperature", &attrs, v / 1000.0));
                }
            }
            if p.is_empty() {
                return None;
            }
            "hwmon"
        }
        "thermal" => {
            for zone in f.list("/sys/class/thermal", "thermal_zone") {
                let dir = format!("/sys/class/thermal/{zone}");
                let Some(v) = f.read(&format!("{dir}/temp")).and_then(|v| v.trim().parse::<f64>().ok()) else { continue };
                let ty = f.read(&format!("{dir}/type")).map(|t| t.trim().to_owned()).unwrap_or_default();
                p.push(point("hw.temperature", &[("zone", zone.trim_start_matches("thermal_zone")), ("type", &ty)], v / 1000.0));
            }
            if p.is_empty() {
                return None;
            }
            "thermal"
        }
        "rapl" => {
            for zone in f.list("/sys/class/powercap", "intel-rapl:") {
                let dir = format!("/sys/class/powercap/{zone}");
                let Some(uj) = f.read(&format!("{dir}/energy_uj")).and_then(|v| v.trim().parse::<u64>().ok()) else { continue };
                let name = f.read(&format!("{dir}/name")).map(|t| t.trim().to_owned()).unwrap_or_default();
                let range = f.read(&format!("{dir}/max_energy_range_uj")).and_then(|v| v.trim().parse::<u64>().ok());
                p.push(point("hw.energy", &[("zone", &zone), ("name", &name)], uj as f64 / 1e6));
                if let Some(r) = range {
                    p.push(point("zkaudit.rapl.max_energy_range", &[("zone", &zone), ("name", &name)], r as f64 / 1e6));
                }
            }
            if p.is_empty() {
                return None;
            }
            "rapl"
        }
        _ => return None,
    };
    f.done(name, p)
}

/// Where the root's files live, for messages.
pub fn describe(root: &Path, source: &str) -> PathBuf {
    let rel = match source {
        "hwmon" => "sys/class/hwmon",
        "thermal" => "sys/class/thermal",
        "rapl" => "sys/class/powercap",
        _ => "proc",
    };
    root.join(rel)
}
