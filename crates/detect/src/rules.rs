//! Threshold rules, in the frequency + timeframe style of Wazuh's rules,
//! from a TOML file:
//!
//! ```toml
//! [[rule]]
//! id = "ssh-brute-force"
//! description = "5 failed logins from one source in 2 minutes"
//! severity = "high"                      # OCSF caption, any case
//! type = "authentication"                # the event type it reads
//! where = { "event.outcome" = "failure" } # metadata equalities, optional
//! frequency = 5                          # this many matching events …
//! timeframe_s = 120                      # … within this many seconds …
//! group_by = "source.ip"                 # … with the same value here (optional)
//!
//! [[rule]]
//! id = "slow-failover"
//! description = "a failover over 50 ms"
//! severity = "medium"
//! type = "failover"
//! field = "duration_ms"                  # a numeric metadata field …
//! above = 50                             # … greater than this (or `below`)
//! ```
//!
//! A rule is either a frequency rule (`frequency` and `timeframe_s`) or a
//! value rule (`field` with `above` and/or `below`), never both.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::Severity;

/// A rule file that cannot be used: `file` and, where known, the rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file cannot be read.
    #[error("{file}: {error}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        error: std::io::Error,
    },
    /// The file is not TOML of the expected shape (line and column in the
    /// message).
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with its position.
        message: String,
    },
    /// A rule is inconsistent.
    #[error("{file}: rule {rule:?}: {message}")]
    Rule {
        /// The file.
        file: String,
        /// The rule's ID.
        rule: String,
        /// What is wrong.
        message: String,
    },
}

/// What a rule fires on.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `count` matching events within `timeframe_s`, per `group_by` value.
    Frequency {
        /// Events needed.
        count: u64,
        /// Window, s.
        timeframe_s: u64,
        /// Metadata field whose value groups the events.
        group_by: Option<String>,
    },
    /// One event whose numeric `field` is above or below a bound.
    Value {
        /// The metadata field.
        field: String,
        /// Fires when the value is greater than this.
        above: Option<f64>,
        /// Fires when the value is less than this.
        below: Option<f64>,
    },
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Its ID (the finding's `rule.id`).
    pub id: String,
    /// What it detects.
    pub description: String,
    /// Severity of its findings.
    pub severity: Severity,
    /// The event type it reads.
    pub event_type: String,
    /// Metadata equalities an event must meet (key, RFC 8785 JSON value).
    pub conditions: Vec<(String, String)>,
    /// What makes it fire.
    pub condition: Condition,
}

/// A rule file's rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    description: String,
    #[serde(default = "medium")]
    severity: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default, rename = "where")]
    conditions: BTreeMap<String, toml::Value>,
    frequency: Option<u64>,
    timeframe_s: Option<u64>,
    group_by: Option<String>,
    field: Option<String>,
    above: Option<f64>,
    below: Option<f64>,
}

fn medium() -> String {
    "medium".into()
}

fn json_text(v: &toml::Value) -> Option<String> {
    let j = match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number)?,
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        _ => return None,
    };
    Some(j.to_string())
}

impl Rules {
    /// Reads a rule file.
    ///
    /// # Errors
    /// [`RuleError`] naming the file, and the line and column or the rule.
    pub fn load(path: &Path) -> Result<Rules, RuleError> {
        let text = std::fs::read_to_string(path).map_err(|error| RuleError::Io { file: path.display().to_string(), error })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses rule file text; `file` names it in errors.
    ///
    /// # Errors
    /// As [`Rules::load`].
    pub fn parse(text: &str, file: &str) -> Result<Rules, RuleError> {
        let raw: File = toml::from_str(text).map_err(|e| RuleError::Syntax { file: file.to_owned(), message: e.to_string() })?;
        let mut rules = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for r in raw.rule {
            let bad = |message: &str| RuleError::Rule { file: file.to_owned(), rule: r.id.clone(), message: message.to_owned() };
            if !seen.insert(r.id.clone()) {
                return Err(bad("the ID is used twice"));
            }
            let severity = Severity::parse(&r.severity).ok_or_else(|| bad("severity must be informational, low, medium, high or critical"))?;
            let condition = match (r.frequency, r.timeframe_s, &r.field) {
                (Some(count), Some(timeframe_s), None) if count > 0 && timeframe_s > 0 && r.above.is_none() && r.below.is_none() => {
                    Condition::Frequency { count, timeframe_s, group_by: r.group_by.clone() }
                }
                (None, None, Some(field)) if (r.above.is_some() || r.below.is_some()) && r.group_by.is_none() => {
                    Condition::Value { field: field.clone(), above: r.above, below: r.below }
                }
                _ => return Err(bad("give either `frequency` and `timeframe_s` (both > 0, optionally `group_by`), or `field` with `above` and/or `below`")),
            };
            let conditions = r
                .conditions
                .iter()
                .map(|(k, v)| json_text(v).map(|j| (k.clone(), j)).ok_or_else(|| bad(&format!("`where.{k}` must be a string, number or boolean"))))
                .collect::<Result<_, _>>()?;
            rules.push(Rule { id: r.id, description: r.description, severity, event_type: r.event_type, conditions, condition });
        }
        Ok(Rules { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_rule_kinds_parse_and_mistakes_are_named() {
        let r = Rules::parse(include_str!("../../../examples/detect/rules.toml"), "rules.toml").unwrap();
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.rules[0].condition, Condition::Frequency { count: 5, timeframe_s: 120, group_by: Some("source.ip".into()) });
        assert_eq!(r.rules[0].conditions, vec![("event.outcome".to_owned(), "\"failure\"".to_owned())]);
        assert_eq!(r.rules[0].severity, Severity::High);
        assert_eq!(r.rules[1].severity, Severity::Medium);
        assert_eq!(r.rules[1].condition, Condition::Value { field: "duration_ms".into(), above: Some(50.0), below: None });

        let r = Rules::parse("[[rule]]\nid = \"x\"\ndescription = \"d\"\ntype = \"t\"\nfield = \"f\"\nbelow = 1\n", "r.toml").unwrap();
        assert_eq!(r.rules[0].severity, Severity::Medium, "the default severity");
        let e = Rules::parse("[[rule]]\nid = \"x\"\ndescription = \"d\"\ntype = \"t\"\nfrequency = 5\n", "r.toml").unwrap_err();
        assert!(e.to_string().starts_with("r.toml: rule \"x\": give either"), "{e}");
        let e =
            Rules::parse("[[rule]]\nid = \"x\"\ndescription = \"d\"\ntype = \"t\"\nfield = \"f\"\nabove = 1\nseverity = \"urgent\"\n", "r.toml").unwrap_err();
        assert!(e.to_string().contains("severity must be"), "{e}");
        let e = Rules::parse("[[rule]]\nid = \"x\"\nfrequency = \"five\"\n", "r.toml").unwrap_err();
        assert!(e.to_string().starts_with("r.toml: ") && e.to_string().contains("line"), "{e}");
    }
}
