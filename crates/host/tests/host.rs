//! The host collector against node_exporter's captured `/sys` and `/proc`
//! (its fixture tree, unpacked from `sys.ttar`) and node_exporter's own
//! output for it, and live on this machine under load from stress-ng.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zkaudit_event::Event;
use zkaudit_host::Sampler;

#[path = "../../../tests-support/ttar.rs"]
mod ttar;
use ttar::{fixture_tree, fixtures};

/// node_exporter's values: metric name → (labels text → value).
fn expected(metric: &str) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(fixtures().join("e2e-output.txt")).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(metric)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            (labels.starts_with('{') || labels.is_empty()).then(|| (labels.to_owned(), value.parse().unwrap()))
        })
        .collect()
}

fn by_source<'e>(events: &'e [Event], source: &str) -> &'e Event {
    events.iter().find(|e| e.metadata.get("zkaudit.host.source").and_then(|v| v.as_str()) == Some(source)).unwrap_or_else(|| panic!("no {source} event"))
}

fn num(e: &Event, key: &str) -> f64 {
    e.metadata.get(key).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{key} missing in {:?}", e.metadata.keys().collect::<Vec<_>>()))
}

#[test]
fn the_node_exporter_fixtures_give_node_exporters_values() {
    let tmp = fixture_tree(true);
    let mut s = Sampler::new(tmp.path().to_owned());
    let events = s.sample();
    assert!(events.iter().all(|e| e.kind == "host_metrics"), "every source and sensor is in the fixtures: {:?}", s.unavailable());

    let cpu = by_source(&events, "cpu");
    let want = expected("node_cpu_seconds_total");
    assert!(want.len() >= 32);
    for (labels, v) in &want {
        // {cpu="0",mode="idle"} -> system.cpu.time{cpu=0,mode=idle}
        let key = format!("system.cpu.time{}", labels.replace('"', ""));
        assert!((num(cpu, &key) - v).abs() < 1e-6, "{key}: {} vs node_exporter {v}", num(cpu, &key));
    }

    let rapl = by_source(&events, "rapl");
    let package = expected("node_rapl_package_joules_total");
    let core = expected("node_rapl_core_joules_total");
    assert!((num(rapl, "hw.energy{zone=intel-rapl:0,name=package-0}") - package.values().next().unwrap()).abs() < 1e-6);
    assert!((num(rapl, "hw.energy{zone=intel-rapl:0:0,name=core}") - core.values().next().unwrap()).abs() < 1e-6);

    // Temperatures: the same readings as node_exporter's, sensor for sensor.
    let mut ours: Vec<i64> = by_source(&events, "hwmon")
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with("hw.temperature{"))
        .map(|(_, v)| (v.as_f64().unwrap() * 1000.0).round() as i64)
        .collect();
    let mut theirs: Vec<i64> = expected("node_hwmon_temp_celsius").values().map(|v| (v * 1000.0).round() as i64).collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    let thermal = by_source(&events, "thermal");
    assert!((num(thermal, "hw.temperature{zone=0,type=cpu-thermal}") - expected("node_thermal_zone_temp").values().next().unwrap()).abs() < 1e-9);

    let load = by_source(&events, "load");
    assert_eq!(num(load, "system.cpu.load_average.1m"), *expected("node_load1").values().next().unwrap());
    let mem = by_source(&events, "memory");
    assert_eq!(num(mem, "system.memory.limit"), *expected("node_memory_MemTotal_bytes").values().next().unwrap());

    // The input is the digest of the raw files, as documented.
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    let raw = std::fs::read(tmp.path().join("proc/loadavg")).unwrap();
    sha2::Digest::update(&mut h, b"/proc/loadavg\0");
    sha2::Digest::update(&mut h, (raw.len() as u64).to_be_bytes());
    sha2::Digest::update(&mut h, &raw);
    assert_eq!(load.input.0, <[u8; 32]>::from(sha2::Digest::finalize(h)));
    assert_eq!(load.layer, zkaudit_event::Layer::Physical);

    // A second sample over the same files: RAPL power is 0 W (no energy
    // used), not a wrap-around artefact.
    std::thread::sleep(Duration::from_millis(20));
    let again = s.sample();
    assert_eq!(num(by_source(&again, "rapl"), "hw.power{zone=intel-rapl:0,name=package-0}"), 0.0);
}

#[test]
fn a_machine_without_sensors_says_so_once_and_keeps_sampling() {
    // A root with /proc but no /sys at all, like this machine's missing
    // hwmon, thermal zones and powercap.
    let tmp = fixture_tree(false);
    let mut s = Sampler::new(tmp.path().to_owned());
    let first = s.sample();
    let unavailable: Vec<&str> = first.iter().filter(|e| e.kind == "sensor_unavailable").map(|e| e.metadata["zkaudit.host.source"].as_str().unwrap()).collect();
    assert_eq!(unavailable, ["hwmon", "thermal", "rapl"]);
    assert!(first.iter().all(|e| !e.metadata.keys().any(|k| k.starts_with("hw."))), "no invented sensor values");
    let second = s.sample();
    assert!(second.iter().all(|e| e.kind == "host_metrics"), "said once");
    assert!(second.iter().any(|e| e.metadata.get("zkaudit.host.source").and_then(|v| v.as_str()) == Some("cpu")));
}

/// This machine, live, under `stress-ng --cpu 2`: CPU time rises between
/// two samples by about the load put on, and user time dominates.
#[test]
fn live_cpu_time_rises_under_stress_ng() {
    let mut s = Sampler::new(PathBuf::from("/"));
    let before = s.sample();
    let total = |events: &[Event]| -> f64 {
        by_source(events, "cpu")
            .metadata
            .iter()
            .filter(|(k, _)| k.starts_with("system.cpu.time{") && !k.contains("mode=idle") && !k.contains("mode=iowait"))
            .map(|(_, v)| v.as_f64().unwrap())
            .sum()
    };
    let out = Command::new("stress-ng").args(["--cpu", "2", "--timeout", "3s", "--quiet"]).output().expect("stress-ng (Debian's stress-ng) runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = s.sample();
    let busy = total(&after) - total(&before);
    assert!(busy > 2.0, "only {busy} s of CPU time in 3 s of stress-ng --cpu 2");
    let util = by_source(&after, "cpu");
    assert!(num(util, "system.cpu.utilization{mode=user}") > 0.3, "{:?}", util.metadata);
    // This VM has no sensors: said once, no values invented.
    if !Path::new("/sys/class/powercap/intel-rapl:0").exists() {
        assert!(before.iter().any(|e| e.kind == "sensor_unavailable" && e.metadata["zkaudit.host.source"] == "rapl"));
    }
    assert!(by_source(&after, "filesystem").metadata.keys().any(|k| k.starts_with("system.filesystem.usage{") && k.contains("mountpoint=/,")));
}
