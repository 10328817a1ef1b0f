//! The gateway's policy: which models may be served, how fast each token
//! may call, and what happens to personal data and secrets.
//!
//! A policy is a TOML file; every field is optional and defaults to the
//! safe choice:
//!
//! ```toml
//! # gen_ai.provider.name of the upstream (OpenTelemetry GenAI conventions)
//! provider = "openai"
//!
//! [models]
//! # Exact names, or a prefix ending in `*`. Checked against the model the
//! # caller asked for and the model the upstream says it served.
//! # Default: none (every call is refused with 403).
//! allow = ["gpt-4o-mini*", "text-embedding-3-small"]
//!
//! [rate_limits]
//! # Per caller token, GCRA with a burst of one minute's quota; 0 = no limit.
//! requests_per_minute = 60          # default 60
//! tokens_per_minute = 100000        # default 100000
//!
//! [pii]
//! # block | redact | flag, per entity; defaults shown.
//! email = "redact"
//! phone = "redact"
//! card_number = "block"
//! iban = "block"
//! us_ssn = "block"
//! secret = "block"
//! scan_requests = true
//! scan_responses = true
//!
//! [limits]
//! max_request_bytes = 1048576       # larger bodies get 413
//! ```
//!
//! The policy's identity is its [`Policy::digest`]: the SHA-256 of the RFC
//! 8785 JSON of the effective policy (defaults filled in), so two files
//! that mean the same policy have the same digest. Each call's event names
//! the digest of the policy that decided it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zkaudit_event::Digest;

use crate::pii::Entity;

/// What a PII rule does with a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request (400), or end the response with an error.
    Block,
    /// Replace the match with `[REDACTED:ENTITY]` and go on.
    Redact,
    /// Let it through; the event counts it.
    Flag,
}

impl Action {
    /// `block`, `redact` or `flag`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Flag => "flag",
        }
    }
}

/// `[models]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Models {
    /// Allowed model names: exact, or a prefix ending in `*`.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[rate_limits]`, per caller token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per minute (0: no limit).
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    /// Tokens (input + output, as the upstream counts them) per minute (0: no limit).
    #[serde(default = "default_tpm")]
    pub tokens_per_minute: u32,
}

fn default_rpm() -> u32 {
    60
}

fn default_tpm() -> u32 {
    100_000
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { requests_per_minute: default_rpm(), tokens_per_minute: default_tpm() }
    }
}

/// `[pii]`: an action per entity, and where to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiRules {
    /// E-mail addresses.
    #[serde(default = "redact")]
    pub email: Action,
    /// Telephone numbers.
    #[serde(default = "redact")]
    pub phone: Action,
    /// Luhn-valid payment card numbers.
    #[serde(default = "block")]
    pub card_number: Action,
    /// MOD 97-10-valid IBANs.
    #[serde(default = "block")]
    pub iban: Action,
    /// US Social Security numbers.
    #[serde(default = "block")]
    pub us_ssn: Action,
    /// API keys and secrets.
    #[serde(default = "block")]
    pub secret: Action,
    /// Check what callers send.
    #[serde(default = "yes")]
    pub scan_requests: bool,
    /// Check what the upstream answers (streams as they pass).
    #[serde(default = "yes")]
    pub scan_responses: bool,
}

fn redact() -> Action {
    Action::Redact
}

fn block() -> Action {
    Action::Block
}

fn yes() -> bool {
    true
}

impl Default for PiiRules {
    fn default() -> Self {
        Self {
            email: Action::Redact,
            phone: Action::Redact,
            card_number: Action::Block,
            iban: Action::Block,
            us_ssn: Action::Block,
            secret: Action::Block,
            scan_requests: true,
            scan_responses: true,
        }
    }
}

impl PiiRules {
    /// The action for `entity`.
    pub fn action(&self, entity: Entity) -> Action {
        match entity {
            Entity::Email => self.email,
            Entity::Phone => self.phone,
            Entity::CardNumber => self.card_number,
            Entity::Iban => self.iban,
            Entity::UsSsn => self.us_ssn,
            Entity::Secret => self.secret,
        }
    }
}

/// `[limits]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes; larger ones get 413.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
}

fn default_max_request() -> usize {
    1 << 20
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_request_bytes: default_max_request() }
    }
}

/// A whole policy, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `gen_ai.provider.name` of the upstream (`openai`, `azure.ai.openai`, …).
    #[serde(default = "default_provider")]
    pub provider: String,
    /// The model allowlist.
    #[serde(default)]
    pub models: Models,
    /// Per-token rate limits.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// PII rules.
    #[serde(default)]
    pub pii: PiiRules,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
}

fn default_provider() -> String {
    "openai".into()
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            provider: default_provider(),
            models: Models::default(),
            rate_limits: RateLimits::default(),
            pii: PiiRules::default(),
            limits: Limits::default(),
        }
    }
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("policy {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid policy: TOML syntax, an unknown field, a
    /// wrong type or value; the message names line and column.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl Policy {
    /// Reads and checks a policy file.
    ///
    /// # Errors
    /// [`PolicyError`], with the line and column of what is wrong.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses policy TOML; `name` is used in errors.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`].
    pub fn parse(text: &str, name: &str) -> Result<Policy, PolicyError> {
        toml::from_str::<Policy>(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let before = &text[..at.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            PolicyError::Invalid { path: name.to_owned(), line, column, message: e.message().to_owned() }
        })
    }

    /// The RFC 8785 JSON of this policy.
    pub fn canonical_json(&self) -> String {
        // A policy is strings, integers and booleans: it always serializes.
        serde_json::to_value(self).and_then(|v| zkaudit_event::jcs::to_string(&v)).unwrap_or_else(|e| unreachable!("policy JSON: {e}"))
    }

    /// SHA-256 of [`Policy::canonical_json`]: the policy's identity in events.
    pub fn digest(&self) -> Digest {
        Digest(Sha256::digest(self.canonical_json()).into())
    }

    /// Whether `model` is on the allowlist.
    pub fn model_allowed(&self, model: &str) -> bool {
        self.models.allow.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => a == model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_and_digest_ignores_spelling() {
        let p = Policy::parse("", "empty").unwrap();
        assert!(!p.model_allowed("gpt-4o"));
        assert_eq!(p.pii.card_number, Action::Block);
        assert_eq!(p.rate_limits.requests_per_minute, 60);
        let q = Policy::parse("provider = \"openai\"\n[pii]\nemail = \"redact\"\n", "same").unwrap();
        assert_eq!(p.digest(), q.digest());
        let r = Policy::parse("[models]\nallow = [\"gpt-4o*\"]\n", "r").unwrap();
        assert!(r.model_allowed("gpt-4o-mini-2024-07-18") && !r.model_allowed("gpt-3.5"));
        assert_ne!(p.digest(), r.digest());
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = Policy::parse("[pii]\nemail = \"shred\"\n", "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:2:9:"), "{e}");
        let e = Policy::parse("[models]\nallowed = []\n", "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:2:1:") && e.contains("allowed"), "{e}");
    }
}
