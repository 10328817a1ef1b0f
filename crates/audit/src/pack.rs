//! Compliance packs: Prolog rule files evaluated over recorded events.
//!
//! A pack declares, in Prolog:
//!
//! * `pack(Name, Version, Title)`: its name and version (semver atom);
//! * `param(Name, Default)`: each threshold, read by rules with `pval/2`
//!   so that `--param Name=Value` can override it;
//! * `rule(Id, Description)`: each rule;
//! * `check(Id, Used, Violations)`: `Used` is the list of leaf indices the
//!   verdict rests on, `Violations` a list of `violation(Index, Reason)`.
//!
//! A rule fails if it has violations, has no evidence if `Used` is empty,
//! and passes otherwise. The pack's identity is the SHA-256 of its file.

use std::path::{Path, PathBuf};

use scryer_prolog::Term;
use sha2::{Digest as _, Sha256};

use crate::engine::{Engine, QueryError};
use crate::term::{self, as_i64, list_items, quote_atom};

/// A pack file as read from disk.
#[derive(Clone, Debug)]
pub struct PackFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text.
    pub source: String,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

/// Errors evaluating a pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The pack file cannot be read.
    #[error("reading pack {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The pack does not follow the pack protocol.
    #[error("pack {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// `--param` names no parameter of the pack or has a bad value.
    #[error("--param {0}")]
    Param(String),
    /// A rule's query failed.
    #[error("pack {path}, rule {rule}: {source}")]
    Rule {
        /// The file.
        path: PathBuf,
        /// The rule.
        rule: String,
        /// The query error.
        source: QueryError,
    },
    /// A query about the pack itself failed.
    #[error("pack {path}: {source}")]
    Query {
        /// The file.
        path: PathBuf,
        /// The query error.
        source: QueryError,
    },
}

impl PackFile {
    /// Reads `path` and hashes it.
    pub fn load(path: &Path) -> Result<Self, PackError> {
        let bytes = std::fs::read(path).map_err(|source| PackError::Read { path: path.to_owned(), source })?;
        let source = String::from_utf8(bytes).map_err(|e| PackError::Invalid { path: path.to_owned(), reason: format!("not UTF-8: {e}") })?;
        Ok(Self::from_source(path, source))
    }

    /// A pack whose text is already in memory (a built-in pack); `path`
    /// names it in reports.
    pub fn from_source(path: &Path, source: String) -> Self {
        let sha256 = Sha256::digest(source.as_bytes()).into();
        Self { path: path.to_owned(), source, sha256 }
    }
}

/// A rule's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Evidence exists and nothing violates the rule.
    Pass,
    /// At least one event violates the rule.
    Fail,
    /// No recorded event bears on the rule (not a pass).
    NoEvidence,
}

impl Verdict {
    /// `pass`, `fail` or `no_evidence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoEvidence => "no_evidence",
        }
    }
}

/// One violating event and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Leaf index of the violating event.
    pub leaf_index: u64,
    /// The reason term as Prolog text, e.g. `failover_ms(73,max(50))`.
    pub reason: String,
}

/// The result of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleResult {
    /// Rule ID.
    pub id: String,
    /// What the rule requires.
    pub description: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Leaf indices the verdict rests on, ascending.
    pub events: Vec<u64>,
    /// Violations, by leaf index.
    pub violations: Vec<Violation>,
    /// What the rule measured, `(name, Prolog text of the value)`, from
    /// the pack's optional `measure(Rule, Name, Value)` (e.g.
    /// `max_failover_ms`, `73`), in the pack's order.
    pub measures: Vec<(String, String)>,
}

/// A pack's evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `pack/3` name.
    pub name: String,
    /// `pack/3` version.
    pub version: String,
    /// `pack/3` title.
    pub title: String,
    /// SHA-256 of the pack file (hex).
    pub sha256: String,
    /// Parameters in force, `(name, Prolog text)`, overrides applied.
    pub params: Vec<(String, String)>,
    /// One result per rule, in the pack's order.
    pub rules: Vec<RuleResult>,
}

/// A `--param` value as Prolog: numbers as written, anything else an atom.
fn param_value(v: &str) -> String {
    let number = v.parse::<i64>().is_ok() || (v.parse::<f64>().is_ok() && v.contains('.') && !v.ends_with('.') && !v.starts_with('.'));
    if number {
        v.to_owned()
    } else {
        quote_atom(v)
    }
}

fn atom_text(t: &Term) -> String {
    match t {
        Term::Atom(a) => a.clone(),
        Term::String(s) => s.clone(),
        other => term::text(other),
    }
}

/// Evaluates `pack` on `engine` with `overrides` (`name`, `value`) of its
/// parameters.
pub fn evaluate(engine: &mut Engine, pack: &PackFile, overrides: &[(String, String)]) -> Result<Report, PackError> {
    let invalid = |reason: String| PackError::Invalid { path: pack.path.clone(), reason };
    let query_err = |source| PackError::Query { path: pack.path.clone(), source };
    engine.consult("zkaudit_pack", &pack.source);

    let info = engine.query("pack(Name, Version, Title)").map_err(query_err)?;
    let [a] = info.answers.as_slice() else {
        return Err(invalid("must declare exactly one pack(Name, Version, Title) (or it has a syntax error)".into()));
    };
    let get = |k: &str| a.bindings.iter().find(|(n, _)| n == k).map(|(_, t)| atom_text(t)).unwrap_or_default();
    let (name, version, title) = (get("Name"), get("Version"), get("Title"));

    let declared = engine.query("param(Name, Default)").map_err(query_err)?;
    let mut params: Vec<(String, String)> = declared
        .answers
        .iter()
        .map(|a| {
            let n = a.bindings.iter().find(|(k, _)| k == "Name").map(|(_, t)| atom_text(t)).unwrap_or_default();
            let v = a.bindings.iter().find(|(k, _)| k == "Default").map(|(_, t)| term::text(t)).unwrap_or_default();
            (n, v)
        })
        .collect();
    let names = params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let mut facts = Vec::new();
    for (n, v) in overrides {
        let slot =
            params.iter_mut().find(|(p, _)| p == n).ok_or_else(|| PackError::Param(format!("{n}: pack {name} has no such parameter (it has: {names})")))?;
        slot.1 = param_value(v);
        facts.push(format!("'$override'({},{})", quote_atom(n), slot.1));
    }
    engine.assert_facts(facts).map_err(query_err)?;

    let rules = engine.query("rule(Id, Description)").map_err(query_err)?;
    if rules.answers.is_empty() {
        return Err(invalid("declares no rule(Id, Description)".into()));
    }
    let mut results = Vec::new();
    for r in &rules.answers {
        let id = r.bindings.iter().find(|(k, _)| k == "Id").map(|(_, t)| atom_text(t)).unwrap_or_default();
        let description = r.bindings.iter().find(|(k, _)| k == "Description").map(|(_, t)| atom_text(t)).unwrap_or_default();
        let rule_err = |source| PackError::Rule { path: pack.path.clone(), rule: id.clone(), source };
        let out = engine.query(&format!("check({}, Used, Violations)", quote_atom(&id))).map_err(rule_err)?;
        let Some(ans) = out.answers.first() else {
            return Err(invalid(format!("check({id}, Used, Violations) has no answer")));
        };
        let binding = |k: &str| ans.bindings.iter().find(|(n, _)| n == k).map(|(_, t)| t);
        let bad_shape =
            || invalid(format!("check({id}, Used, Violations) must bind Used to a list of leaf indices and Violations to a list of violation(Index, Reason)"));
        let mut events: Vec<u64> = Vec::new();
        for t in binding("Used").and_then(list_items).ok_or_else(bad_shape)? {
            events.push(as_i64(t).and_then(|i| u64::try_from(i).ok()).ok_or_else(bad_shape)?);
        }
        let mut violations = Vec::new();
        for v in binding("Violations").and_then(list_items).ok_or_else(bad_shape)? {
            match v {
                Term::Compound(f, args) if f == "violation" && args.len() == 2 => {
                    let leaf_index = as_i64(&args[0]).and_then(|i| u64::try_from(i).ok()).ok_or_else(bad_shape)?;
                    violations.push(Violation { leaf_index, reason: term::text(&args[1]) });
                    events.push(leaf_index);
                }
                _ => return Err(bad_shape()),
            }
        }
        events.sort_unstable();
        events.dedup();
        violations.sort_by_key(|v| v.leaf_index);
        let verdict = if !violations.is_empty() {
            Verdict::Fail
        } else if events.is_empty() {
            Verdict::NoEvidence
        } else {
            Verdict::Pass
        };
        let measured = engine.query(&format!("'$measure'({}, Name, Value)", quote_atom(&id))).map_err(rule_err)?;
        let measures = measured
            .answers
            .iter()
            .map(|m| {
                let get = |k: &str| m.bindings.iter().find(|(n, _)| n == k).map(|(_, t)| t);
                (get("Name").map(atom_text).unwrap_or_default(), get("Value").map(term::text).unwrap_or_default())
            })
            .collect();
        results.push(RuleResult { id, description, verdict, events, violations, measures });
    }
    Ok(Report { name, version, title, sha256: hex::encode(pack.sha256), params, rules: results })
}
