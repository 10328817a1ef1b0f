//! Known-bad checks against an OSV advisory export held locally
//! (`--osv DIR`: OSV JSON files, one advisory each, as osv.dev's
//! `all.zip` exports unpack; OSV schema 1.x). `MAL-` entries are the
//! malicious-package reports of the OpenSSF malicious-packages project.
//!
//! A version is affected when it is listed in `affected[].versions`, or
//! falls in an `affected[].ranges` entry of type `SEMVER` or `ECOSYSTEM`
//! (evaluated as the schema says: sorted `introduced` / `fixed` /
//! `last_affected` events). npm and crates.io versions compare as SemVer
//! 2.0; PyPI versions by their PEP 440 release segments, a pre-release or
//! development suffix sorting before its release. `GIT` ranges name commits,
//! not versions, and are ignored.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::package::{Ecosystem, Package};

/// Why the advisory export could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    /// The directory or a file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not an OSV record.
    #[error("{path}: not an OSV record: {why}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the field's path.
        why: String,
    },
}

#[derive(Debug, Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    affected: Vec<Affected>,
}

#[derive(Debug, Deserialize)]
struct Affected {
    package: Option<AffectedPackage>,
    #[serde(default)]
    ranges: Vec<Range>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AffectedPackage {
    ecosystem: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<RangeEvent>,
}

#[derive(Debug, Deserialize)]
struct RangeEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
}

/// One advisory that names a package version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The OSV ID (`GHSA-…`, `PYSEC-…`, `RUSTSEC-…`, `MAL-…`).
    pub id: String,
    /// Its summary, if it has one.
    pub summary: Option<String>,
}

impl Match {
    /// Whether it reports a malicious package (an OpenSSF `MAL-` ID).
    pub fn malicious(&self) -> bool {
        self.id.starts_with("MAL-")
    }
}

struct Entry {
    id: String,
    summary: Option<String>,
    versions: Vec<String>,
    ranges: Vec<Range>,
}

/// The advisories loaded from a directory, by ecosystem and normalised name.
#[derive(Default)]
pub struct Osv {
    by_package: HashMap<(Ecosystem, String), Vec<Entry>>,
    records: usize,
}

impl Osv {
    /// Loads every `*.json` file under `dir` (recursively). Withdrawn
    /// advisories and ecosystems the gateway does not serve are skipped.
    ///
    /// # Errors
    /// [`OsvError`] naming the file that could not be read or parsed.
    pub fn load(dir: &Path) -> Result<Osv, OsvError> {
        let mut osv = Osv::default();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let rd = std::fs::read_dir(&d).map_err(|source| OsvError::Io { path: d.clone(), source })?;
            for entry in rd {
                let entry = entry.map_err(|source| OsvError::Io { path: d.clone(), source })?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let bytes = std::fs::read(&path).map_err(|source| OsvError::Io { path: path.clone(), source })?;
                    let mut de = serde_json::Deserializer::from_slice(&bytes);
                    let record: Record = serde_path_to_error::deserialize(&mut de).map_err(|e| OsvError::Parse { path: path.clone(), why: e.to_string() })?;
                    osv.add(record);
                }
            }
        }
        Ok(osv)
    }

    fn add(&mut self, r: Record) {
        if r.withdrawn.is_some() {
            return;
        }
        self.records += 1;
        for a in r.affected {
            let Some(p) = a.package else { continue };
            let Some(eco) = Ecosystem::ALL.into_iter().find(|e| e.osv_name() == p.ecosystem) else { continue };
            self.by_package.entry((eco, eco.normalize(&p.name))).or_default().push(Entry {
                id: r.id.clone(),
                summary: r.summary.clone(),
                versions: a.versions,
                ranges: a.ranges,
            });
        }
    }

    /// How many advisories were loaded.
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The advisories that affect `pkg`, each once.
    pub fn matches(&self, pkg: &Package) -> Vec<Match> {
        let eco = pkg.ecosystem;
        let mut out: Vec<Match> = Vec::new();
        for e in self.by_package.get(&(eco, eco.normalize(&pkg.name))).into_iter().flatten() {
            let hit =
                e.versions.iter().any(|v| compare(eco, v, &pkg.version) == Some(Ordering::Equal)) || e.ranges.iter().any(|r| in_range(eco, r, &pkg.version));
            if hit && !out.iter().any(|m| m.id == e.id) {
                out.push(Match { id: e.id.clone(), summary: e.summary.clone() });
            }
        }
        out
    }
}

/// Whether `version` falls in `range` (OSV schema, "Evaluation").
fn in_range(eco: Ecosystem, range: &Range, version: &str) -> bool {
    if range.kind != "SEMVER" && range.kind != "ECOSYSTEM" {
        return false;
    }
    // Each introduced opens an interval that the next fixed (exclusive)
    // or last_affected (inclusive) closes.
    let mut affected = false;
    for ev in &range.events {
        if let Some(i) = &ev.introduced {
            if i == "0" || compare(eco, i, version).is_some_and(|o| o != Ordering::Greater) {
                affected = true;
            }
        }
        if let Some(f) = &ev.fixed {
            if affected && compare(eco, f, version).is_some_and(|o| o != Ordering::Greater) {
                affected = false;
            }
        }
        if let Some(l) = &ev.last_affected {
            if affected && compare(eco, l, version) == Some(Ordering::Less) {
                affected = false;
            }
        }
    }
    affected
}

/// `a` against `b` in the ecosystem's order; `None` when either does not
/// parse (so it matches nothing rather than everything).
fn compare(eco: Ecosystem, a: &str, b: &str) -> Option<Ordering> {
    match eco {
        Ecosystem::Npm | Ecosystem::Cargo => {
            let p = |s: &str| semver::Version::parse(s.trim_start_matches('v')).ok();
            Some(p(a)?.cmp(&p(b)?))
        }
        Ecosystem::Pypi => Some(pep440_key(a)?.cmp(&pep440_key(b)?)),
    }
}

/// A sort key for a PEP 440 version: epoch, release segments (trailing
/// zeros dropped), then 0 for a pre-release or development suffix and 1
/// for a final or post release, then the suffix's number.
fn pep440_key(v: &str) -> Option<(u64, Vec<u64>, u8, u64)> {
    let v = v.trim().to_ascii_lowercase();
    let v = v.trim_start_matches('v');
    let (epoch, rest) = match v.split_once('!') {
        Some((e, r)) => (e.parse().ok()?, r),
        None => (0, v),
    };
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (release, suffix) = rest.split_at(end);
    let mut parts: Vec<u64> = release.trim_end_matches('.').split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    let suffix = suffix.trim_start_matches(['.', '-', '_']);
    let num: u64 = suffix.trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '.' || c == '-').parse().unwrap_or(0);
    let phase = if suffix.is_empty() || suffix.starts_with("post") { 1 } else { 0 };
    Some((epoch, parts, phase, num))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(e: Ecosystem, n: &str, v: &str) -> Package {
        Package { ecosystem: e, name: n.into(), version: v.into() }
    }

    fn load(records: &[serde_json::Value]) -> Osv {
        let dir = tempfile::tempdir().unwrap();
        for (i, r) in records.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}.json")), r.to_string()).unwrap();
        }
        Osv::load(dir.path()).unwrap()
    }

    #[test]
    fn versions_and_ranges_match_as_the_schema_says() {
        let osv = load(&[
            serde_json::json!({"schema_version":"1.6.0","id":"MAL-2025-1","modified":"2025-01-01T00:00:00Z","summary":"Malicious code in evil-pkg (npm)",
                "affected":[{"package":{"ecosystem":"npm","name":"evil-pkg"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}),
            serde_json::json!({"id":"GHSA-xxxx","modified":"2025-01-01T00:00:00Z",
                "affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"4.0.0"},{"fixed":"4.17.21"}]}]}]}),
            serde_json::json!({"id":"PYSEC-1","modified":"2025-01-01T00:00:00Z",
                "affected":[{"package":{"ecosystem":"PyPI","name":"Some_Pkg"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"last_affected":"1.2"}]}],"versions":["0.9rc1"]}]}),
            serde_json::json!({"id":"RUSTSEC-1","modified":"2025-01-01T00:00:00Z","withdrawn":"2025-02-01T00:00:00Z",
                "affected":[{"package":{"ecosystem":"crates.io","name":"gone"},"versions":["1.0.0"]}]}),
        ]);
        assert_eq!(osv.len(), 3);
        let m = osv.matches(&pkg(Ecosystem::Npm, "evil-pkg", "9.9.9"));
        assert_eq!(m.len(), 1);
        assert!(m[0].malicious());
        assert_eq!(osv.matches(&pkg(Ecosystem::Npm, "lodash", "4.17.20"))[0].id, "GHSA-xxxx");
        assert!(osv.matches(&pkg(Ecosystem::Npm, "lodash", "4.17.21")).is_empty());
        assert!(osv.matches(&pkg(Ecosystem::Npm, "lodash", "3.10.1")).is_empty());
        assert_eq!(osv.matches(&pkg(Ecosystem::Pypi, "some-pkg", "1.2.0")).len(), 1);
        assert_eq!(osv.matches(&pkg(Ecosystem::Pypi, "some.pkg", "1.1")).len(), 1);
        assert!(osv.matches(&pkg(Ecosystem::Pypi, "some-pkg", "1.2.1")).is_empty());
        assert_eq!(osv.matches(&pkg(Ecosystem::Pypi, "some-pkg", "0.9rc1")).len(), 1);
        assert!(osv.matches(&pkg(Ecosystem::Cargo, "gone", "1.0.0")).is_empty());
    }

    #[test]
    fn pep440_orders_pre_releases_first() {
        assert!(pep440_key("1.0rc1") < pep440_key("1.0"));
        assert!(pep440_key("1.0") == pep440_key("1.0.0"));
        assert!(pep440_key("1.0.post1") > pep440_key("1.0"));
        assert!(pep440_key("1!0.1") > pep440_key("9.0"));
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.json"), r#"{"id": 3}"#).unwrap();
        let e = Osv::load(dir.path()).err().unwrap().to_string();
        assert!(e.contains("bad.json") && e.contains("id"), "{e}");
    }
}
