//! Scalar types and their exact, float-free representations.
//!
//! Every scalar is an `i64` at run time: integers as themselves, decimals
//! scaled by `10^scale` (`39.81` at scale 2 is `3981`), booleans as 0 or 1,
//! dates as days since 1970-01-01 and enum labels as their position in the
//! declared list. Digests are 32 bytes. Guest and host therefore agree bit for
//! bit, and every arithmetic step is checked: overflow is an error, never a wrap.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;

/// Largest decimal scale (digits after the point).
pub const MAX_SCALE: u8 = 18;

/// The static type of a column or expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// Signed 64-bit integer.
    Int,
    /// Fixed-point decimal with this many places.
    Decimal(u8),
    /// Boolean.
    Bool,
    /// Days since 1970-01-01, as a calendar date.
    Date,
    /// An enum with these labels.
    Enum(Rc<[String]>),
    /// A 32-byte digest.
    Digest,
}

impl Type {
    /// The decimal scale of a numeric type (`int` is scale 0), else `None`.
    pub fn scale(&self) -> Option<u8> {
        match self {
            Type::Int => Some(0),
            Type::Decimal(s) => Some(*s),
            _ => None,
        }
    }

    /// Number of 32-bit words in this type's record encoding.
    pub fn words(&self) -> usize {
        match self {
            Type::Int | Type::Decimal(_) => 2,
            Type::Bool | Type::Date | Type::Enum(_) => 1,
            Type::Digest => 8,
        }
    }

    /// The type's name as written in plans, with its parameters.
    pub fn describe(&self) -> String {
        match self {
            Type::Int => "int".into(),
            Type::Decimal(s) => format!("decimal(scale {s})"),
            Type::Bool => "bool".into(),
            Type::Date => "date".into(),
            Type::Enum(v) => format!("enum({})", v.join("|")),
            Type::Digest => "digest".into(),
        }
    }
}

/// `10^k` for `k ≤ 18`.
pub fn pow10(k: u8) -> i64 {
    10i64.pow(u32::from(k))
}

/// Parses a decimal string (`-12.5`, `3`, `0.75`) into an integer at `scale`.
///
/// Returns `None` for anything else: exponents, more fraction digits than
/// `scale` (that would lose precision), signs other than a leading `-`/`+`,
/// or a value beyond `i64`.
pub fn parse_decimal(text: &str, scale: u8) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || body.ends_with('.') && frac_part.is_empty() && int_part.is_empty()
    {
        return None;
    }
    if frac_part.len() > usize::from(scale) {
        return None;
    }
    let mut v: i64 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        v = v.checked_mul(10)?.checked_sub(i64::from(b - b'0'))?;
    }
    let pad = scale - frac_part.len() as u8;
    v = v.checked_mul(pow10(pad))?;
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

/// The number of fraction digits a decimal literal is written with.
pub fn literal_scale(text: &str) -> u8 {
    text.split_once('.').map_or(0, |(_, f)| f.len().min(255) as u8)
}

/// Appends the decimal digits of `n`, zero-padded to at least `width`.
/// (Hand-written rather than `core::fmt`, which the guest would otherwise
/// page in and run for every cell of the output.)
pub fn push_digits(s: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut n = n;
    // The low digits by 32-bit division once the rest fits a word: on the
    // zkVM's 32-bit machine a 64-bit division is a library call of dozens
    // of instructions, a 32-bit one a single instruction.
    while n > u64::from(u32::MAX) {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut n = n as u32;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in buf.len() - i..width {
        s.push('0');
    }
    s.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Appends `v` in decimal, with a `-` when negative.
pub fn push_int(s: &mut String, v: i64) {
    if v < 0 {
        s.push('-');
    }
    push_digits(s, v.unsigned_abs(), 1);
}

/// Formats an integer at `scale` as a decimal string with exactly `scale`
/// fraction digits: `format_decimal(3981, 2) == "39.81"`.
pub fn format_decimal(v: i64, scale: u8) -> String {
    let mut s = String::new();
    if scale == 0 {
        push_int(&mut s, v);
        return s;
    }
    if v < 0 {
        s.push('-');
    }
    let mag = v.unsigned_abs();
    let p = 10u64.pow(u32::from(scale));
    // 32-bit division where both fit (see `push_digits`).
    let (int, frac) = match (u32::try_from(mag), u32::try_from(p)) {
        (Ok(m), Ok(p)) => (u64::from(m / p), u64::from(m % p)),
        _ => (mag / p, mag % p),
    };
    push_digits(&mut s, int, 1);
    s.push('.');
    push_digits(&mut s, frac, usize::from(scale));
    s
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`). Returns `None` for an invalid month or day.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `(year, month, day)` of a day count since 1970-01-01 (`civil_from_days`).
///
/// Only the era may need 64-bit arithmetic (for days beyond ±2^31, which
/// no valid date reaches); within an era (146,097 days) everything fits 32
/// bits, which the zkVM divides natively where a 64-bit division is a
/// library call.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = match i32::try_from(z) {
        Ok(z) => i64::from(z.div_euclid(146_097)),
        Err(_) => z.div_euclid(146_097),
    };
    let doe = (z - era * 146_097) as u32; // 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = i64::from(yoe) + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses an ISO 8601 calendar date `YYYY-MM-DD` into days since 1970-01-01.
pub fn parse_iso_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num =
        |r: core::ops::Range<usize>| -> Option<u32> { text.get(r)?.bytes().try_fold(0u32, |a, c| c.is_ascii_digit().then(|| a * 10 + u32::from(c - b'0'))) };
    days_from_civil(i64::from(num(0..4)?), num(5..7)?, num(8..10)?)
}

/// Formats days since 1970-01-01 as `YYYY-MM-DD` (years outside 0..=9999 get
/// a sign and at least four digits, as ISO 8601 expanded years).
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(11);
    if !(0..=9999).contains(&y) {
        s.push(if y < 0 { '-' } else { '+' });
    }
    push_digits(&mut s, y.unsigned_abs(), 4);
    s.push('-');
    push_digits(&mut s, u64::from(m), 2);
    s.push('-');
    push_digits(&mut s, u64::from(d), 2);
    s
}

/// The days-since-epoch range a `date` cell may hold: years -9999 to 9999.
pub const DATE_RANGE: core::ops::RangeInclusive<i64> = -4_371_587..=2_932_896;

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parses exactly 64 lowercase hex digits into 32 bytes.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(b[2 * i])? << 4 | nib(b[2 * i + 1])?;
    }
    Some(out)
}

/// Checks a column or step name: `[A-Za-z_][A-Za-z0-9_]*`, 1 to 64 bytes.
/// Keeping names ASCII makes byte order equal RFC 8785 key order.
pub fn is_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b.len() <= 64 && (b[0].is_ascii_alphabetic() || b[0] == b'_') && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Collects a `Vec` of labels into the shared form used by [`Type::Enum`].
pub fn enum_type(values: &[String]) -> Type {
    Type::Enum(Rc::from(values.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("39.81", 2), Some(3981));
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("7", 1), Some(70));
        assert_eq!(parse_decimal(".5", 1), Some(5));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("1e3", 2), None);
        assert_eq!(parse_decimal("", 2), None);
        assert_eq!(parse_decimal("-", 2), None);
        assert_eq!(parse_decimal(".", 2), None);
        assert_eq!(parse_decimal("--1", 2), None);
        assert_eq!(parse_decimal("9223372036854775807", 0), Some(i64::MAX));
        assert_eq!(parse_decimal("-9223372036854775808", 0), Some(i64::MIN));
        assert_eq!(parse_decimal("9223372036854775808", 0), None);
        assert_eq!(parse_decimal("92233720368547758.08", 2), None);
        assert_eq!(format_decimal(3981, 2), "39.81");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(i64::MIN, 2), "-92233720368547758.08");
        assert_eq!(format_decimal(12, 0), "12");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(2001, 2, 29), None);
        assert_eq!(days_from_civil(2000, 2, 29), Some(11_016));
        assert_eq!(parse_iso_date("2012-01-01"), Some(15_340));
        assert_eq!(parse_iso_date("2012-1-01"), None);
        for z in (*DATE_RANGE.start()..=*DATE_RANGE.end()).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), Some(z));
        }
        // Across the switch from 32-bit to 64-bit era arithmetic (both
        // signs), each day is the one after its predecessor.
        let edge = i64::from(i32::MAX) - 719_468;
        for z in [edge - 3..edge + 3, -edge - 1_438_940..-edge - 1_438_934] {
            for z in z {
                let (y, m, d) = civil_from_days(z);
                let next = if d < days_in_month(y, m) {
                    (y, m, d + 1)
                } else if m < 12 {
                    (y, m + 1, 1)
                } else {
                    (y + 1, 1, 1)
                };
                assert_eq!(civil_from_days(z + 1), next, "day {z}");
            }
        }
        assert_eq!(civil_from_days(*DATE_RANGE.start()), (-9999, 1, 1));
        assert_eq!(civil_from_days(*DATE_RANGE.end()), (9999, 12, 31));
        assert_eq!(format_date(15_340), "2012-01-01");
        assert_eq!(format_date(*DATE_RANGE.start()), "-9999-01-01");
        assert_eq!(format_date(*DATE_RANGE.end()), "9999-12-31");
        assert_eq!(format_date(days_from_civil(-5, 3, 9).unwrap()), "-0005-03-09");
    }

    /// The hand-written digits against `core::fmt`, the independent reference.
    #[test]
    fn digits_match_core_fmt() {
        let w = i64::from(u32::MAX);
        let mut cases = alloc::vec![0, 1, -1, 9, 10, 99, 100, i64::MAX, i64::MIN, i64::MIN + 1, w - 1, w, w + 1, -w, -w - 1, 10 * w + 9];
        let mut x: i64 = 1;
        while let Some(y) = x.checked_mul(7) {
            cases.extend([y, -y, y - 1, y + 1]);
            x = y;
        }
        for v in cases {
            let mut s = String::new();
            push_int(&mut s, v);
            assert_eq!(s, alloc::format!("{v}"));
            for scale in [1u8, 2, 5, 9, 10, 18] {
                let p = 10u64.pow(u32::from(scale));
                let want = alloc::format!("{}{}.{:0w$}", if v < 0 { "-" } else { "" }, v.unsigned_abs() / p, v.unsigned_abs() % p, w = usize::from(scale));
                assert_eq!(format_decimal(v, scale), want, "{v} at scale {scale}");
            }
        }
    }
}
