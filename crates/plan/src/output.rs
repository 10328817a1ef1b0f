//! Canonical JSON rendering of results (RFC 8785).
//!
//! A one-row result renders as an object, any other as an array of objects.
//! Keys come out sorted; column names are ASCII identifiers, so byte order is
//! RFC 8785's UTF-16 order. Integers within ±(2^53 − 1) are JSON numbers and
//! larger ones strings; decimals are strings with exactly `scale` places
//! (`"39.81"`), dates `"YYYY-MM-DD"`, enum cells their label and digests 64
//! lowercase hex digits. No floats are ever produced.

use alloc::vec::Vec;

use crate::expr::{Schema, MAX_SAFE_INT};
use crate::table::{Col, Table};
use crate::validate::Card;
use crate::value::{self, Type};

/// Renders columns `cols` (already in key order) of `t` as canonical JSON.
pub fn render(t: &Table, schema: &Schema, card: Card, cols: &[usize]) -> Vec<u8> {
    // Room for a short cell and its key each (up to 64 KiB), so that a
    // small result is written without growing the buffer (each growth
    // copies it, and in the zkVM leaves the old buffer behind in fresh
    // pages).
    let mut s = alloc::string::String::with_capacity((2 + t.rows.saturating_mul(2 + cols.len() * 24)).min(1 << 16));
    let one = card == Card::One && t.rows == 1;
    if !one {
        s.push('[');
    }
    for r in 0..t.rows {
        if r > 0 {
            s.push(',');
        }
        s.push('{');
        for (k, &c) in cols.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            let (name, ty) = &schema[c];
            string(&mut s, name);
            s.push(':');
            match &t.cols[c] {
                Col::Digest(v) => {
                    s.push('"');
                    s.push_str(&value::hex(&v[r]));
                    s.push('"');
                }
                Col::Num(v) => cell(&mut s, ty, v[r]),
            }
        }
        s.push('}');
    }
    if !one {
        s.push(']');
    }
    s.into_bytes()
}

fn cell(s: &mut alloc::string::String, ty: &Type, v: i64) {
    match ty {
        Type::Int if v.unsigned_abs() <= MAX_SAFE_INT as u64 => value::push_int(s, v),
        Type::Int => {
            s.push('"');
            value::push_int(s, v);
            s.push('"');
        }
        Type::Decimal(scale) => {
            s.push('"');
            s.push_str(&value::format_decimal(v, *scale));
            s.push('"');
        }
        Type::Bool => s.push_str(if v != 0 { "true" } else { "false" }),
        Type::Date => {
            s.push('"');
            s.push_str(&value::format_date(v));
            s.push('"');
        }
        Type::Enum(labels) => match usize::try_from(v).ok().and_then(|i| labels.get(i)) {
            Some(l) => string(s, l),
            None => s.push_str("null"),
        },
        Type::Digest => unreachable!("digest cells live in digest columns"),
    }
}

/// Writes a JSON string with RFC 8785 §3.2.2.2 escaping.
pub fn string(s: &mut alloc::string::String, text: &str) {
    s.push('"');
    // Column names and labels rarely need escaping: copied whole, not
    // encoded again char by char (in the zkVM that was most of rendering).
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        s.push_str(text);
        s.push('"');
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                s.push_str(if (c as u32) < 0x10 { "\\u000" } else { "\\u001" });
                s.push(char::from(b"0123456789abcdef"[(c as usize) & 15]));
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    /// Every escape RFC 8785 §3.2.2.2 prescribes, against serde_json's
    /// serializer (an independent implementation of the same rules).
    #[test]
    fn strings_escape_as_rfc_8785_says() {
        let text: alloc::string::String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
        let mut s = alloc::string::String::new();
        super::string(&mut s, &text);
        assert_eq!(s, serde_json::to_string(&text).unwrap());
        // Text with nothing to escape takes the whole-string path.
        let plain = "months_above_100 é€😀 ~";
        s.clear();
        super::string(&mut s, plain);
        assert_eq!(s, serde_json::to_string(plain).unwrap());
    }
}
