//! Personal data and secrets in text: what the policy's PII rules look for.
//!
//! Each [`Entity`] has a pattern that finds candidates and, where the
//! format has one, a checksum that must hold: payment card numbers the Luhn
//! check (ISO/IEC 7812-1 Annex B), IBANs the ISO 7064 MOD 97-10 check
//! (ISO 13616), US SSNs the SSA's rules for valid area, group and serial
//! numbers. Secrets are found by well-known key prefixes (OpenAI,
//! Anthropic, AWS, GitHub, GitLab, Slack, Google, Stripe, PEM private keys)
//! and, for other tokens, by length and Shannon entropy.
//!
//! [`Scanner::find`] returns non-overlapping [`Finding`]s as byte ranges;
//! what was matched is never kept beyond the caller's text, so a log can
//! say *what kind* of data was seen and how often, never the data itself.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A kind of personal data or secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// An e-mail address (RFC 5322 addr-spec, dot-atom form).
    Email,
    /// A telephone number: E.164 (`+` and 8–15 digits) or a 10-digit North
    /// American number, with the usual separators.
    Phone,
    /// A payment card number: 13–19 digits (spaces or dashes between
    /// groups) that pass the Luhn check.
    CardNumber,
    /// An International Bank Account Number that passes MOD 97-10.
    Iban,
    /// A US Social Security number `AAA-GG-SSSS` with a valid area, group
    /// and serial.
    UsSsn,
    /// An API key or secret: a known key prefix, a PEM private key, or a
    /// long high-entropy token.
    Secret,
}

impl Entity {
    /// Every entity, in the order overlapping findings are preferred.
    pub const ALL: [Entity; 6] = [Entity::Secret, Entity::Iban, Entity::CardNumber, Entity::UsSsn, Entity::Email, Entity::Phone];

    /// The name used in policies and events (`card_number`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::CardNumber => "card_number",
            Entity::Iban => "iban",
            Entity::UsSsn => "us_ssn",
            Entity::Secret => "secret",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One match: `text[start..end]` is an `entity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub entity: Entity,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

/// Shortest token the entropy rule looks at, in characters.
const ENTROPY_MIN_LEN: usize = 32;
/// Least Shannon entropy, in bits per character, of a token taken as a secret.
const ENTROPY_MIN_BITS: f64 = 4.0;

/// The compiled patterns; build once and share (it is `Sync`).
pub struct Scanner {
    email: Regex,
    phone: Regex,
    card: Regex,
    iban: Regex,
    ssn: Regex,
    key_prefix: Regex,
    token: Regex,
}

impl Scanner {
    /// Compiles the patterns.
    ///
    /// # Panics
    /// Never: the patterns are constants, and a test compiles them.
    pub fn new() -> Scanner {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| unreachable!("built-in pattern {p}: {e}"));
        Scanner {
            email: re(
                r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
            ),
            phone: re(r"(?:\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}|\(?\b\d{3}\)?[ .-]?\d{3}[ .-]\d{4})\b"),
            card: re(r"\b\d(?:[ -]?\d){12,18}\b"),
            iban: re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
            ssn: re(r"\b(\d{3})-(\d{2})-(\d{4})\b"),
            key_prefix: re(concat!(
                r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----|",
                r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,}|",
                r"glpat-[A-Za-z0-9_-]{20}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|[rs]k_live_[A-Za-z0-9]{24,})"
            )),
            token: re(r"[A-Za-z0-9+/=_-]{32,}"),
        }
    }

    /// Non-overlapping findings in `text`, by start offset. Where two
    /// candidates overlap, the one of the earlier entity in
    /// [`Entity::ALL`] wins (a card number is not also a phone number).
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut all: Vec<Finding> = Vec::new();
        let mut push = |entity: Entity, start: usize, end: usize| {
            if !all.iter().any(|f| f.start < end && start < f.end) {
                all.push(Finding { entity, start, end });
            }
        };
        for m in self.key_prefix.find_iter(text) {
            push(Entity::Secret, m.start(), m.end());
        }
        for m in self.token.find_iter(text) {
            if high_entropy(m.as_str()) {
                push(Entity::Secret, m.start(), m.end());
            }
        }
        for m in self.iban.find_iter(text) {
            if iban_valid(m.as_str()) {
                push(Entity::Iban, m.start(), m.end());
            }
        }
        for m in self.card.find_iter(text) {
            if luhn_valid(m.as_str()) {
                push(Entity::CardNumber, m.start(), m.end());
            }
        }
        for c in self.ssn.captures_iter(text) {
            let (Some(m), Some(a), Some(g), Some(s)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else { continue };
            if ssn_valid(a.as_str(), g.as_str(), s.as_str()) {
                push(Entity::UsSsn, m.start(), m.end());
            }
        }
        for m in self.email.find_iter(text) {
            push(Entity::Email, m.start(), m.end());
        }
        for m in self.phone.find_iter(text) {
            let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
            if (10..=15).contains(&digits) {
                push(Entity::Phone, m.start(), m.end());
            }
        }
        all.sort_by_key(|f| f.start);
        all
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

/// The text to put in place of a redacted `entity`: `[REDACTED:CARD_NUMBER]`.
pub fn placeholder(entity: Entity) -> String {
    format!("[REDACTED:{}]", entity.as_str().to_ascii_uppercase())
}

/// `text` with each finding replaced by its [`placeholder`]; `findings`
/// must be sorted and non-overlapping, as [`Scanner::find`] returns them.
pub fn redact(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.start]);
        out.push_str(&placeholder(f.entity));
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The Luhn check (ISO/IEC 7812-1) over the digits of `s`, which must have
/// 13 to 19 of them.
pub fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Lengths of IBANs by country (ISO 13616 registry), for the countries
/// whose IBANs are most often seen; other country codes are accepted at
/// any length from 15 to 34 when their MOD 97-10 check holds.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("IE", 22),
    ("IT", 27),
    ("LU", 20),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("SE", 24),
];

/// The IBAN check (ISO 13616, ISO 7064 MOD 97-10) over `s` with spaces removed.
pub fn iban_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let country = std::str::from_utf8(&compact[..2]).unwrap_or("");
    if let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) {
        if *len != compact.len() {
            return false;
        }
    }
    // Move the first four characters to the end, letters as 10..35, mod 97.
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// The SSA's validity rules: area not 000, 666 or 900–999; group not 00;
/// serial not 0000.
fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let a: u32 = area.parse().unwrap_or(0);
    a != 0 && a != 666 && a < 900 && group != "00" && serial != "0000"
}

/// Whether `token` looks like a generated secret: long enough, letters and
/// digits mixed, and at least [`ENTROPY_MIN_BITS`] bits per character.
fn high_entropy(token: &str) -> bool {
    if token.len() < ENTROPY_MIN_LEN {
        return false;
    }
    let b = token.as_bytes();
    if !b.iter().any(u8::is_ascii_digit) || !b.iter().any(u8::is_ascii_alphabetic) {
        return false;
    }
    let mut counts = [0u32; 256];
    for &c in b {
        counts[usize::from(c)] += 1;
    }
    let n = b.len() as f64;
    let bits: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum();
    bits >= ENTROPY_MIN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Entity, &str)> {
        Scanner::new().find(text).into_iter().map(|f| (f.entity, &text[f.start..f.end])).collect()
    }

    #[test]
    fn finds_each_entity_and_checks_checksums() {
        assert_eq!(kinds("mail alice.smith+x@example.co.uk now"), vec![(Entity::Email, "alice.smith+x@example.co.uk")]);
        // Visa test number: Luhn-valid; one digit changed: not a card.
        assert_eq!(kinds("card 4111 1111 1111 1111."), vec![(Entity::CardNumber, "4111 1111 1111 1111")]);
        assert!(kinds("card 4111 1111 1111 1112.").iter().all(|(e, _)| *e != Entity::CardNumber));
        assert_eq!(kinds("IBAN GB82 WEST 1234 5698 7654 32 ok"), vec![(Entity::Iban, "GB82 WEST 1234 5698 7654 32")]);
        assert!(kinds("IBAN GB82 WEST 1234 5698 7654 33 ok").iter().all(|(e, _)| *e != Entity::Iban));
        assert_eq!(kinds("ssn 123-45-6789"), vec![(Entity::UsSsn, "123-45-6789")]);
        assert!(kinds("ssn 666-45-6789").is_empty());
        assert_eq!(kinds("call +44 20 7946 0958 today"), vec![(Entity::Phone, "+44 20 7946 0958")]);
        assert_eq!(kinds("call (415) 555-2671 today"), vec![(Entity::Phone, "(415) 555-2671")]);
        assert_eq!(kinds("key sk-proj-abcdefghijklmnopqrstuvwx"), vec![(Entity::Secret, "sk-proj-abcdefghijklmnopqrstuvwx")]);
        assert_eq!(kinds("aws AKIAIOSFODNN7EXAMPLE"), vec![(Entity::Secret, "AKIAIOSFODNN7EXAMPLE")]);
        assert_eq!(kinds("tok 9fQ2xL7vR1mZ8kP3sW6yB0nC4tH5jD2g"), vec![(Entity::Secret, "9fQ2xL7vR1mZ8kP3sW6yB0nC4tH5jD2g")]);
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for t in [
            "The meeting is at 10:30 on 2026-12-03, room 4.",
            "Order 12345 shipped; total 99.95 EUR.",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "The version is 1.2.3 and the year 2026.",
            "a sha256 0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }

    #[test]
    fn redaction_replaces_only_the_findings() {
        let s = Scanner::new();
        let t = "write to bob@example.org or 4111-1111-1111-1111, thanks";
        assert_eq!(redact(t, &s.find(t)), "write to [REDACTED:EMAIL] or [REDACTED:CARD_NUMBER], thanks");
    }
}
