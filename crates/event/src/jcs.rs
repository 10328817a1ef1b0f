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
    b == b'"' || b == b'\\' || b < 0x20
}

/// Position of the first [`special`] byte of `bytes`, testing eight bytes
/// at a time in a `u64`.
///
/// For a word `x`, `(x - n·0x0101…01) & !x & 0x8080…80` sets the high bit
/// of every byte below `n` (n ≤ 0x80) that no lower byte borrowed from,
/// so its lowest set bit is the first such byte exactly (a borrow only
/// flags bytes above a true one). Zero bytes of `x ^ c·0x0101…01` are the
/// bytes equal to `c`.
pub(crate) fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x;
    let (words, tail) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word);
        let hit = (below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1) | below(x, 0x20)) & HIGH;
        if hit != 0 {
            return Some(i * 8 + (hit.trailing_zeros() / 8) as usize);
        }
    }
    tail.iter().position(|&b| special(b)).map(|i| words.len() * 8 + i)
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

#[cfg(test)]
mod tests {
    use super::{first_special, special};

    /// The word-at-a-time scan against a byte-at-a-time one, on every
    /// byte value at every position of lines of 0 to 40 bytes, with and
    /// without a special byte after it (which must not hide it), and on
    /// high bytes around the limits of the borrow trick.
    #[test]
    fn first_special_finds_the_first_special_byte() {
        let naive = |b: &[u8]| b.iter().position(|&c| special(c));
        for len in 0..40 {
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut line = vec![b'a'; len];
                    line[at] = v;
                    assert_eq!(first_special(&line), naive(&line), "{v:#04x} at {at} of {len}");
                    if at + 1 < len {
                        line[at + 1] = b'"';
                        assert_eq!(first_special(&line), naive(&line), "{v:#04x} at {at} of {len}, a quote after it");
                        line[len - 1] = 0;
                        assert_eq!(first_special(&line), naive(&line), "{v:#04x} at {at} of {len}, NUL last");
                    }
                }
            }
        }
        let mixed: Vec<u8> = (0..64u8).map(|i| 0x80 | i.wrapping_mul(37)).chain([0x7f, 0x20, 0x21, 0x1f]).collect();
        assert_eq!(first_special(&mixed), Some(67));
    }
}
