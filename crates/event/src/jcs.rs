//! RFC 8785 (JCS) canonical JSON, written directly for the shapes an event
//! has, without the per-member buffers of a generic serde formatter.
//!
//! * Object members are sorted by their names as UTF-16 code units (§3.2.3).
//! * Strings are escaped as ECMAScript's `JSON.stringify` does (§3.2.2.2):
//!   `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other controls as `\u00xx`
//!   with lowercase hex; everything else is written as is.
//! * Integers are written in decimal; other numbers as ECMAScript's
//!   `Number.prototype.toString` (§3.2.2.3), through `serde_json_canonicalizer`.
//!
//! `tests/events.rs` checks every output against `serde_json_canonicalizer`
//! as an independent implementation.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Whether `b` cannot stand raw in a JSON string's text: the quote, the
/// backslash and the controls U+0000 to U+001F (RFC 8259 §7), which are
/// also exactly what RFC 8785 escapes.
fn special(b: u8) -> bool {
    // Branch-free (`|`, not `||`), so that a scan of it becomes vector
    // compares.
    (b == b'"') | (b == b'\\') | (b < 0x20)
}

/// Position of the first [`special`] byte of `bytes`, testing sixteen
/// bytes at a time.
pub(crate) fn first_special(bytes: &[u8]) -> Option<usize> {
    let start = bytes.chunks_exact(16).take_while(|chunk| !chunk.iter().fold(false, |hit, &b| hit | special(b))).count() * 16;
    bytes[start..].iter().position(|&b| special(b)).map(|i| start + i)
}

/// Appends `s` as a JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = first_special(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            }
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, n: &Number) -> Result<(), serde_json::Error> {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else {
        out.extend_from_slice(&serde_json_canonicalizer::to_vec(n)?);
    }
    Ok(())
}

/// Appends `d` as a JSON string, `"sha256:<hex>"`.
pub(crate) fn digest(out: &mut Vec<u8>, d: &crate::Digest) {
    /// Each byte's two lowercase hex digits.
    const PAIRS: [[u8; 2]; 256] = {
        let mut t = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = [b"0123456789abcdef"[i >> 4], b"0123456789abcdef"[i & 0xf]];
            i += 1;
        }
        t
    };
    out.extend_from_slice(b"\"sha256:");
    for &b in &d.0 {
        out.extend_from_slice(&PAIRS[usize::from(b)]);
    }
    out.push(b'"');
}

/// Orders member names as RFC 8785 does: by UTF-16 code units.
pub(crate) fn utf16_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Appends the members of `map` as a JSON object, sorted.
pub(crate) fn object(out: &mut Vec<u8>, map: &Map<String, Value>) -> Result<(), serde_json::Error> {
    out.push(b'{');
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|a, b| utf16_order(a.0, b.0));
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        value(out, v)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends `v` in canonical form.
pub(crate) fn value(out: &mut Vec<u8>, v: &Value) -> Result<(), serde_json::Error> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => number(out, n)?,
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => object(out, map)?,
    }
    Ok(())
}

/// The canonical JSON text of `v` (RFC 8785).
///
/// # Errors
/// Only for a number that cannot be written (not finite), which parsing
/// never produces.
pub fn to_string(v: &Value) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    value(&mut out, v)?;
    String::from_utf8(out).map_err(<serde_json::Error as serde::ser::Error>::custom)
}
