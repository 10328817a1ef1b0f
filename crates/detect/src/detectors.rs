//! The four detectors. Each reads the events in time order and returns
//! its findings; none keeps state between calls.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use zkaudit_index::IndexedEvent;

use crate::rules::{Condition, Rules};
use crate::stats::{mad, median, MAD_SIGMA};
use crate::{host, number, Detector, Finding, FirstSeenParams, HostParams, RateParams, Severity};

const NS: i64 = 1_000_000_000;

/// Rate anomalies per (host, layer, type): see [`RateParams`]. A bucket
/// found anomalous is kept out of the baseline, so a long burst does not
/// teach the detector that bursts are normal; consecutive anomalous
/// buckets are one episode and one finding (its first bucket).
pub fn rate(events: &[&IndexedEvent], p: &RateParams) -> Vec<Finding> {
    let bucket_ns = i64::try_from(p.bucket_s).unwrap_or(i64::MAX / NS).max(1).saturating_mul(NS);
    let Some(last) = events.last().map(|e| e.timestamp_ns.div_euclid(bucket_ns)) else {
        return Vec::new();
    };
    // Series → bucket → its events.
    let mut series: BTreeMap<(String, String, String), BTreeMap<i64, Vec<&IndexedEvent>>> = BTreeMap::new();
    for e in events {
        series.entry((host(e), e.layer.clone(), e.kind.clone())).or_default().entry(e.timestamp_ns.div_euclid(bucket_ns)).or_default().push(e);
    }
    let mut out = Vec::new();
    for ((h, layer, kind), buckets) in series {
        let Some((&first, _)) = buckets.first_key_value() else { continue };
        let mut history: VecDeque<f64> = VecDeque::with_capacity(p.window);
        let mut ewma: Option<f64> = None;
        let mut in_episode = false;
        for b in first..=last {
            let evs = buckets.get(&b).map_or(&[][..], Vec::as_slice);
            let c = evs.len() as f64;
            if history.len() >= p.min_history {
                let hist: Vec<f64> = history.iter().copied().collect();
                let (m, d) = (median(&hist).unwrap_or(0.0), mad(&hist).unwrap_or(0.0));
                let scale = (MAD_SIGMA * d).max(m.max(1.0).sqrt());
                let z = (c - ewma.unwrap_or(m)) / scale;
                if z >= p.z && evs.len() as u64 >= p.min_count {
                    if std::mem::replace(&mut in_episode, true) {
                        continue;
                    }
                    let severity = if z >= 2.0 * p.z { Severity::High } else { Severity::Medium };
                    let subject = format!("{layer}/{kind}");
                    let msg = format!(
                        "{} {kind} events ({layer}){} in {} s from {}, against a baseline of {:.1} (median {m}, MAD {d}): robust z {z:.1}",
                        evs.len(),
                        if h.is_empty() { String::new() } else { format!(" on {h}") },
                        p.bucket_s,
                        crate::Timestamp::from_unix_nanos(i128::from(b * bucket_ns)).map_or_else(|| (b * bucket_ns).to_string(), |t| t.as_str().to_owned()),
                        ewma.unwrap_or(m),
                    );
                    out.push(Finding::new(Detector::Rate, "rate_spike", severity, &h, &subject, b * bucket_ns, z, msg, evs));
                    continue;
                }
            }
            in_episode = false;
            ewma = Some(ewma.map_or(c, |e| p.alpha * c + (1.0 - p.alpha) * e));
            if history.len() == p.window {
                history.pop_front();
            }
            history.push_back(c);
        }
    }
    out
}

/// First seen after each host's learning period: a new executable, a new
/// destination (IP and port) for an executable, a new parent → child pair
/// of executables.
pub fn first_seen(events: &[&IndexedEvent], p: &FirstSeenParams) -> Vec<Finding> {
    let learning_ns = i64::try_from(p.learning_s).unwrap_or(i64::MAX / NS).saturating_mul(NS);
    let mut host_start: HashMap<String, i64> = HashMap::new();
    let mut exe_of: HashMap<String, String> = HashMap::new();
    let mut known: BTreeSet<(String, &'static str, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for e in events {
        let h = host(e);
        let start = *host_start.entry(h.clone()).or_insert(e.timestamp_ns);
        let learning = e.timestamp_ns < start.saturating_add(learning_ns);
        let mut novel = |rule: &'static str, subject: String, severity: Severity, msg: String| {
            if known.insert((h.clone(), rule, subject.clone())) && !learning {
                out.push(Finding::new(Detector::FirstSeen, rule, severity, &h, &subject, e.timestamp_ns, 1.0, msg, &[e]));
            }
        };
        let on = if h.is_empty() { String::new() } else { format!(" on {h}") };
        match e.kind.as_str() {
            "process_exec" | "process_fork" => {
                let (Some(exe), Some(id)) = (e.meta_text("process.executable"), e.meta_text("process.entity_id")) else { continue };
                exe_of.insert(id, exe.clone());
                if e.kind == "process_exec" {
                    novel("new_executable", exe.clone(), Severity::Medium, format!("first run of {exe}{on} after the learning period"));
                    if let Some(parent) = e.meta_text("process.parent.entity_id").and_then(|p| exe_of.get(&p).cloned()) {
                        novel("new_parent_child", format!("{parent} -> {exe}"), Severity::Medium, format!("{parent} started {exe}{on} for the first time"));
                    }
                }
            }
            "network_connect" => {
                let (Some(id), Some(ip), Some(port)) = (e.meta_text("process.entity_id"), e.meta_text("destination.ip"), e.meta_text("destination.port"))
                else {
                    continue;
                };
                let exe = exe_of.get(&id).cloned().unwrap_or_else(|| "unknown executable".into());
                novel("new_destination", format!("{exe} -> {ip}:{port}"), Severity::Low, format!("{exe}{on} connected to {ip}:{port} for the first time"));
            }
            _ => {}
        }
    }
    out
}

/// The rule file's rules.
pub fn threshold(events: &[&IndexedEvent], rules: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in &rules.rules {
        let matching =
            events.iter().filter(|e| e.kind == r.event_type && r.conditions.iter().all(|(k, want)| e.metadata.iter().any(|(key, v)| key == k && v == want)));
        match &r.condition {
            Condition::Value { field, above, below } => {
                for e in matching {
                    let Some(v) = number(e, field) else { continue };
                    if above.is_some_and(|a| v > a) || below.is_some_and(|b| v < b) {
                        let bound = above.filter(|a| v > *a).map_or_else(|| format!("below {}", below.unwrap_or(v)), |a| format!("above {a}"));
                        let msg = format!("{}: {field} = {v}, {bound}", r.description);
                        out.push(Finding::new(Detector::Threshold, &r.id, r.severity, &host(e), &e.leaf_index.to_string(), e.timestamp_ns, v, msg, &[e]));
                    }
                }
            }
            Condition::Frequency { count, timeframe_s, group_by } => {
                let window_ns = i64::try_from(*timeframe_s).unwrap_or(i64::MAX / NS).saturating_mul(NS);
                let mut groups: HashMap<String, VecDeque<&IndexedEvent>> = HashMap::new();
                for e in matching {
                    let g = group_by.as_ref().map_or_else(String::new, |k| e.meta_text(k).unwrap_or_default());
                    let q = groups.entry(g.clone()).or_default();
                    q.push_back(e);
                    while q.front().is_some_and(|f| f.timestamp_ns <= e.timestamp_ns - window_ns) {
                        q.pop_front();
                    }
                    if q.len() as u64 >= *count {
                        let evs: Vec<&IndexedEvent> = q.drain(..).collect();
                        let by = group_by.as_ref().map_or_else(String::new, |k| format!(" with {k} = {g}"));
                        let msg = format!("{}: {} {} events{by} within {timeframe_s} s", r.description, evs.len(), r.event_type);
                        out.push(Finding::new(Detector::Threshold, &r.id, r.severity, &host(e), &g, e.timestamp_ns, evs.len() as f64, msg, &evs));
                    }
                }
            }
        }
    }
    out
}

/// The metric a host sample key stands for, if tracked, with its value:
/// CPU busy (1 − idle utilisation), memory used, filesystem used.
fn tracked(key: &str, value: f64) -> Option<(String, f64, bool)> {
    if key == "system.cpu.utilization{mode=idle}" {
        return Some(("system.cpu.utilization (busy)".into(), 1.0 - value, true));
    }
    if key == "system.memory.usage{state=used}" || (key.starts_with("system.filesystem.usage{") && key.contains("state=used")) {
        return Some((key.to_owned(), value, false));
    }
    None
}

/// Host metric outliers: see [`HostParams`]. Outlying samples stay out of
/// the history; consecutive ones are one episode and one finding.
pub fn host_metrics(events: &[&IndexedEvent], p: &HostParams) -> Vec<Finding> {
    let mut history: HashMap<(String, String), VecDeque<f64>> = HashMap::new();
    let mut episodes: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e.kind == "host_metrics") {
        let h = host(e);
        for (k, v) in &e.metadata {
            let Some((metric, x, utilization)) = v.parse::<f64>().ok().and_then(|x| tracked(k, x)) else { continue };
            let hist = history.entry((h.clone(), metric.clone())).or_default();
            if hist.len() >= p.min_history {
                let xs: Vec<f64> = hist.iter().copied().collect();
                let (m, d) = (median(&xs).unwrap_or(0.0), mad(&xs).unwrap_or(0.0));
                let floor = if utilization { p.min_utilization_delta } else { p.min_usage_share * m.abs() };
                let dev = (x - m).abs();
                let z = if d > 0.0 {
                    dev / (MAD_SIGMA * d)
                } else if dev > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                };
                if z >= p.z && dev >= floor && dev > 0.0 {
                    if !episodes.insert((h.clone(), metric.clone())) {
                        continue;
                    }
                    let severity = if utilization && x >= 0.9 { Severity::High } else { Severity::Medium };
                    let on = if h.is_empty() { String::new() } else { format!(" on {h}") };
                    let msg = format!("{metric}{on} = {x:.3}, against a median of {m:.3} over the last {} samples (MAD {d:.3})", xs.len());
                    let score = if z.is_finite() { z } else { dev };
                    out.push(Finding::new(Detector::HostMetric, "host_metric_outlier", severity, &h, &metric, e.timestamp_ns, score, msg, &[e]));
                    continue;
                }
            }
            episodes.remove(&(h.clone(), metric));
            if hist.len() == p.window {
                hist.pop_front();
            }
            hist.push_back(x);
        }
    }
    out
}
