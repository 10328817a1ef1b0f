//! Anomaly findings over what the ledger recorded (`zkaudit detect`).
//!
//! This crate owns the detectors, their parameters, the threshold rule
//! file, and the finding event (type `finding`, layer `application`, OCSF
//! Detection Finding 2004, ECS `event.kind: alert`):
//!
//! * **rate**: events per (host, layer, type) per bucket against an EWMA
//!   baseline, scaled by a robust spread (median absolute deviation over a
//!   trailing window of buckets) — [`RateParams`];
//! * **first seen**, after a learning period per host: a new executable, a
//!   new destination for an executable, a new parent → child process pair
//!   (Elastic's rare-process and rare-destination detections) —
//!   [`FirstSeenParams`];
//! * **threshold rules** from a TOML file, in Wazuh's frequency + timeframe
//!   style or on one numeric field ([`rules`]);
//! * **host metric outliers**: CPU, memory and filesystem samples of
//!   `zkaudit collect host` against the median and MAD of the host's recent
//!   samples (the modified z-score of Iglewicz and Hoaglin) — [`HostParams`].
//!
//! Detection is a pure function of the events ([`detect`]): the same
//! events give the same findings, with the same IDs, so running it again
//! records nothing twice ([`run`] skips IDs the ledger already holds). A
//! finding names the events it rests on by leaf index
//! (`zkaudit.finding.events`) and lists their output digests as `parents`,
//! so the auditor and the packs can follow them, and a finding, once
//! recorded, can never be quietly removed.
//!
//! It must not change or hide an event, and writes only through the
//! collector sink (`zkaudit-collect`), as every collector does.

#![forbid(unsafe_code)]

mod detectors;
pub mod rules;
mod run;
mod stats;

use std::collections::BTreeSet;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use zkaudit_collect::shape::{empty_digest, Observation, OcsfClass};
use zkaudit_event::{Digest, Event, Layer, Timestamp};
use zkaudit_index::IndexedEvent;

pub use rules::{Rule, RuleError, Rules};
pub use run::{run, RunError, RunReport};

/// The event type of findings.
pub const FINDING_TYPE: &str = "finding";
/// Evidence events a finding names at most (the count is always given).
pub const MAX_EVIDENCE: usize = 50;

/// Rate anomalies: events per (host, layer, type) per bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateParams {
    /// Bucket width, s.
    pub bucket_s: u64,
    /// Trailing buckets the median and MAD are taken over.
    pub window: usize,
    /// Buckets of history a series needs before it can be anomalous.
    pub min_history: usize,
    /// EWMA smoothing factor of the baseline, in (0, 1].
    pub alpha: f64,
    /// Robust z-score at or above which a bucket is anomalous:
    /// `(count − EWMA) / max(1.4826 · MAD, √max(median, 1))`.
    pub z: f64,
    /// Fewest events in an anomalous bucket.
    pub min_count: u64,
}

impl Default for RateParams {
    fn default() -> Self {
        Self { bucket_s: 60, window: 30, min_history: 10, alpha: 0.3, z: 6.0, min_count: 20 }
    }
}

/// First-seen detections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FirstSeenParams {
    /// Seconds from a host's first event during which everything seen is
    /// learned, not reported.
    pub learning_s: u64,
}

impl Default for FirstSeenParams {
    fn default() -> Self {
        Self { learning_s: 3600 }
    }
}

/// Host metric outliers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostParams {
    /// Trailing samples of the same host and metric compared against.
    pub window: usize,
    /// Samples needed before a metric can be an outlier.
    pub min_history: usize,
    /// Modified z-score at or above which a sample is an outlier:
    /// `|x − median| / (1.4826 · MAD)`.
    pub z: f64,
    /// Smallest deviation that counts for utilisations (0..1).
    pub min_utilization_delta: f64,
    /// Smallest deviation that counts for usages, as a share of the median.
    pub min_usage_share: f64,
}

impl Default for HostParams {
    fn default() -> Self {
        Self { window: 30, min_history: 10, z: 6.0, min_utilization_delta: 0.25, min_usage_share: 0.1 }
    }
}

/// Every detector's parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Params {
    /// Rate anomalies.
    pub rate: RateParams,
    /// First-seen detections.
    pub first_seen: FirstSeenParams,
    /// Host metric outliers.
    pub host: HostParams,
}

/// How severe a finding is (OCSF `severity_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 1.
    Informational,
    /// 2.
    Low,
    /// 3.
    Medium,
    /// 4.
    High,
    /// 5.
    Critical,
}

impl Severity {
    /// The OCSF `severity_id`.
    pub fn id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// The OCSF `severity` caption.
    pub fn caption(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// Parses a caption, any case.
    pub fn parse(s: &str) -> Option<Self> {
        [Severity::Informational, Severity::Low, Severity::Medium, Severity::High, Severity::Critical].into_iter().find(|v| v.caption().eq_ignore_ascii_case(s))
    }
}

/// Which detector found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// [`RateParams`].
    Rate,
    /// [`FirstSeenParams`].
    FirstSeen,
    /// A rule of the rule file.
    Threshold,
    /// [`HostParams`].
    HostMetric,
}

impl Detector {
    /// Its name in findings (`zkaudit.finding.detector`).
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Rate => "rate",
            Detector::FirstSeen => "first_seen",
            Detector::Threshold => "threshold",
            Detector::HostMetric => "host_metric",
        }
    }
}

/// An event a finding rests on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Evidence {
    /// Its leaf index.
    pub leaf_index: u64,
    /// Its output digest (listed among the finding's parents).
    pub output: String,
}

/// One anomaly found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Stable ID: SHA-256 (hex) of detector, rule, host, subject and time.
    pub id: String,
    /// The detector.
    pub detector: Detector,
    /// Rule ID (`rate_spike`, `new_executable`, `new_destination`,
    /// `new_parent_child`, `host_metric_outlier`, or a rule file's ID).
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// What was found, for a person.
    pub message: String,
    /// The host (`host.name`; empty when events name none).
    pub host: String,
    /// What it is about: a series, an executable, a metric, a group.
    pub subject: String,
    /// When, ns since the epoch (bucket start, or the event's time).
    pub time_ns: i64,
    /// The score that crossed the threshold (z-score, count or value).
    pub score: f64,
    /// The events it rests on, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<Evidence>,
    /// How many events it rests on in all.
    pub evidence_total: u64,
}

impl Finding {
    #[allow(clippy::too_many_arguments)]
    fn new(
        detector: Detector,
        rule: &str,
        severity: Severity,
        host: &str,
        subject: &str,
        time_ns: i64,
        score: f64,
        message: String,
        events: &[&IndexedEvent],
    ) -> Self {
        let mut h = Sha256::new();
        for part in [detector.as_str(), rule, host, subject, &time_ns.to_string()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let evidence: BTreeSet<Evidence> = events.iter().map(|e| Evidence { leaf_index: e.leaf_index, output: e.output.clone() }).collect();
        Finding {
            id: hex::encode(h.finalize()),
            detector,
            rule: rule.to_owned(),
            severity,
            message,
            host: host.to_owned(),
            subject: subject.to_owned(),
            time_ns,
            score,
            evidence_total: evidence.len() as u64,
            evidence: evidence.into_iter().take(MAX_EVIDENCE).collect(),
        }
    }

    /// The finding as a ledger event: type `finding`, layer `application`,
    /// OCSF Detection Finding (2004, activity 1 Create) with `severity_id`,
    /// ECS `event.kind: alert`, `rule.id`, `message`; `output` is the
    /// SHA-256 of its ID, and `parents` the evidence's output digests
    /// (except the digest of no bytes).
    pub fn to_event(&self) -> Event {
        let time = Timestamp::from_unix_nanos(i128::from(self.time_ns)).unwrap_or_else(Timestamp::now);
        let id = Digest(Sha256::digest(self.id.as_bytes()).into());
        let mut o = Observation::new(FINDING_TYPE, Layer::Application, OcsfClass::DetectionFinding, 1, &self.rule)
            .at(time)
            .output(id)
            .field("event.kind", "alert")
            .field("event.severity", self.severity.id())
            .field("ocsf.severity_id", self.severity.id())
            .field("ocsf.severity", self.severity.caption())
            .field("rule.id", self.rule.as_str())
            .field("message", self.message.as_str())
            .field("zkaudit.finding.id", self.id.as_str())
            .field("zkaudit.finding.detector", self.detector.as_str())
            .field("zkaudit.finding.subject", self.subject.as_str())
            .field("zkaudit.finding.events", self.evidence.iter().map(|e| e.leaf_index).collect::<Vec<_>>())
            .field("zkaudit.finding.events_total", self.evidence_total);
        if let Some(n) = serde_json::Number::from_f64(self.score) {
            o = o.field("zkaudit.finding.score", n);
        }
        if !self.host.is_empty() {
            o = o.field("host.name", self.host.as_str());
        }
        // The digest of no bytes (a metric sample's output) links nothing.
        let empty = empty_digest();
        o.parents(self.evidence.iter().filter_map(|e| Digest::parse(&e.output).ok()).filter(|d| *d != empty)).into_event()
    }
}

/// Runs every detector over `events` (any order; findings are ignored as
/// input) and returns the findings in time order.
pub fn detect(events: &[IndexedEvent], params: &Params, rules: &Rules) -> Vec<Finding> {
    let mut sorted: Vec<&IndexedEvent> = events.iter().filter(|e| e.kind != FINDING_TYPE).collect();
    sorted.sort_by_key(|e| (e.timestamp_ns, e.leaf_index));
    let mut out = Vec::new();
    out.extend(detectors::rate(&sorted, &params.rate));
    out.extend(detectors::first_seen(&sorted, &params.first_seen));
    out.extend(detectors::threshold(&sorted, rules));
    out.extend(detectors::host_metrics(&sorted, &params.host));
    out.sort_by(|a, b| (a.time_ns, &a.id).cmp(&(b.time_ns, &b.id)));
    out
}

/// A numeric metadata value.
pub(crate) fn number(e: &IndexedEvent, key: &str) -> Option<f64> {
    e.meta(key).and_then(|v| v.parse::<f64>().ok())
}

/// The event's host (`host.name`), or empty.
pub(crate) fn host(e: &IndexedEvent) -> String {
    e.meta_text("host.name").unwrap_or_default()
}
