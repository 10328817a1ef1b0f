//! The fast path of the JSON Lines reader: one pass over a line that writes
//! its entry bytes (RFC 8785) without building serde values.
//!
//! It takes only what it can decide exactly as the full parser
//! (`serde_json` into [`Event`](crate::Event) through the strict I-JSON
//! visitors) would, and answers `None` for everything else: then the full
//! parser decides, accepting or naming the error. So it never accepts a
//! line the full parser refuses, and where both accept, the bytes are the
//! same; the unit tests below check both on random and mutated lines.
//!
//! Deferred to the full parser: escapes in member names and in the
//! `version`, `type`, `layer`, `timestamp` and digest strings, numbers with
//! a fraction or exponent, `-0`, integers beyond ±(2^53−1), a non-null
//! `proof`, duplicate or unknown members, nesting deeper than
//! [`MAX_DEPTH`], and any syntax error.

use crate::event::{EntryFields, LowerHex, Timestamp, EVENT_VERSION};
use crate::jcs::{first_special, string, utf16_order};
use crate::strict::MAX_SAFE_INTEGER;
use crate::Layer;

/// Deepest nesting of objects and arrays taken here (the line's object is
/// depth 1); serde_json refuses beyond 128.
const MAX_DEPTH: u32 = 64;

/// Buffers that one thread reuses from line to line.
#[derive(Default)]
pub(crate) struct Buffers {
    /// The line's canonical metadata object.
    metadata: Vec<u8>,
    /// An object's members while they are put in order.
    reorder: Vec<u8>,
    /// A string's text with its escapes decoded.
    text: String,
}

/// Writes the entry bytes of `line` to `out` (which it clears first), or
/// answers `None` to leave the line to the full parser.
pub(crate) fn write_entry(line: &[u8], buffers: &mut Buffers, out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    let text = std::str::from_utf8(line).ok()?;
    let mut c = Cursor { text, b: line, i: 0 };
    let mut top = Top::default();
    let Buffers { metadata, reorder, text: decoded } = buffers;
    metadata.clear();
    let mut scratch = Scratch { members: Vec::new(), reorder, text: decoded };
    // An empty object lacks the required members, so it ends below.
    c.list(b'{', b'}', |c, _| {
        let key = c.plain_string()?;
        c.expect(b':')?;
        match key {
            "version" => set(&mut top.version, c.plain_string()?)?,
            "timestamp" => set(&mut top.timestamp, c.plain_string()?)?,
            "layer" => set(&mut top.layer, Layer::from_name(c.plain_string()?)?)?,
            "type" => set(&mut top.kind, c.plain_string()?)?,
            "input" => set(&mut top.input, c.digest()?)?,
            "output" => set(&mut top.output, c.digest()?)?,
            "metadata" => {
                if c.peek()? != b'{' {
                    return None;
                }
                set(&mut top.metadata, ())?;
                c.object(metadata, &mut scratch, 2)?;
            }
            "parents" => set(&mut top.parents, c.parents()?)?,
            "proof" => {
                c.skip_ws();
                c.literal(b"null")?;
                set(&mut top.proof, ())?;
            }
            _ => return None,
        }
        Some(())
    })?;
    c.skip_ws();
    if c.i != line.len() {
        return None;
    }
    let (version, timestamp, kind) = (top.version?, top.timestamp?, top.kind?);
    top.metadata?;
    if version != EVENT_VERSION || kind.is_empty() || !(Timestamp::is_plain_utc(timestamp) || Timestamp::check(timestamp).is_ok()) {
        return None;
    }
    let fields = EntryFields {
        input: &top.input?,
        layer: top.layer?,
        output: &top.output?,
        parents: top.parents.as_ref().and_then(Option::as_deref),
        proof: None,
        timestamp,
        kind,
        version,
    };
    fields
        .write(out, |out| {
            out.extend_from_slice(metadata);
            Ok::<(), ()>(())
        })
        .ok()
}

/// Sets a member seen for the first time; `None` for a duplicate.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// The line's members as read so far.
#[derive(Default)]
struct Top<'a> {
    version: Option<&'a str>,
    timestamp: Option<&'a str>,
    layer: Option<Layer>,
    kind: Option<&'a str>,
    input: Option<LowerHex<'a>>,
    output: Option<LowerHex<'a>>,
    metadata: Option<()>,
    /// `Some(None)` for an explicit `null`.
    parents: Option<Option<Vec<LowerHex<'a>>>>,
    /// Only `null` is taken here.
    proof: Option<()>,
}

/// What the value writers share within one line.
struct Scratch<'a, 'b> {
    /// Members of the objects being written, innermost last: each name
    /// and the span of `"name":value` in the output.
    members: Vec<(&'a str, usize, usize)>,
    reorder: &'b mut Vec<u8>,
    text: &'b mut String,
}

struct Cursor<'a> {
    /// The line, known to be UTF-8.
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.b.get(self.i).copied()
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// `word` exactly, here (no whitespace skipped).
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string with no escapes, without its quotes; `None` for one with
    /// escapes or control characters (which JSON refuses raw).
    fn plain_string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        let len = first_special(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        // Both ends are at ASCII quotes, so on character boundaries.
        self.text.get(start..start + len)
    }

    /// A digest, `"sha256:<64 lowercase hex>"`, as its hex digits.
    fn digest(&mut self) -> Option<LowerHex<'a>> {
        LowerHex::check(self.plain_string()?.strip_prefix("sha256:")?.as_bytes())
    }

    /// `parents`: `null` or an array of digests.
    fn parents(&mut self) -> Option<Option<Vec<LowerHex<'a>>>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let mut parents = Vec::new();
        self.list(b'[', b']', |c, _| {
            parents.push(c.digest()?);
            Some(())
        })?;
        Some(Some(parents))
    }

    /// A JSON array or object: `open`, then `item` for each element
    /// (told whether it is the first) separated by commas, then `close`.
    fn list(&mut self, open: u8, close: u8, mut item: impl FnMut(&mut Self, bool) -> Option<()>) -> Option<()> {
        self.expect(open)?;
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        let mut first = true;
        loop {
            item(self, first)?;
            first = false;
            match self.next()? {
                b',' => {}
                b if b == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// Writes the canonical form of the value here to `out`.
    fn value(&mut self, out: &mut Vec<u8>, sc: &mut Scratch<'a, '_>, depth: u32) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(out, sc, depth + 1),
            b'[' => self.array(out, sc, depth + 1),
            b'"' => self.string_value(out, sc),
            b't' => self.literal(b"true").map(|()| out.extend_from_slice(b"true")),
            b'f' => self.literal(b"false").map(|()| out.extend_from_slice(b"false")),
            b'n' => self.literal(b"null").map(|()| out.extend_from_slice(b"null")),
            b'-' | b'0'..=b'9' => self.integer(out),
            _ => None,
        }
    }

    /// An object, its members sorted by name as UTF-16 code units
    /// (RFC 8785 §3.2.3); `None` for a duplicate name.
    fn object(&mut self, out: &mut Vec<u8>, sc: &mut Scratch<'a, '_>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        out.push(b'{');
        let (first, base) = (sc.members.len(), out.len());
        self.list(b'{', b'}', |c, head| {
            if !head {
                out.push(b',');
            }
            let start = out.len();
            let name = c.plain_string()?;
            c.expect(b':')?;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            c.value(out, sc, depth)?;
            sc.members.push((name, start, out.len()));
            Some(())
        })?;
        let members = &mut sc.members[first..];
        if !members.is_sorted_by(|a, b| utf16_order(a.0, b.0).is_lt()) {
            members.sort_unstable_by(|a, b| utf16_order(a.0, b.0));
            if members.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
            sc.reorder.clear();
            sc.reorder.extend_from_slice(&out[base..]);
            out.truncate(base);
            for (n, &(_, start, end)) in members.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(sc.reorder.get(start - base..end - base)?);
            }
        }
        sc.members.truncate(first);
        out.push(b'}');
        Some(())
    }

    fn array(&mut self, out: &mut Vec<u8>, sc: &mut Scratch<'a, '_>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        out.push(b'[');
        self.list(b'[', b']', |c, head| {
            if !head {
                out.push(b',');
            }
            c.value(out, sc, depth)
        })?;
        out.push(b']');
        Some(())
    }

    /// A string value: as written when it has no escapes (its canonical
    /// form then is itself), else decoded and written again as RFC 8785
    /// escapes it.
    fn string_value(&mut self, out: &mut Vec<u8>, sc: &mut Scratch<'a, '_>) -> Option<()> {
        let at = self.i;
        if let Some(s) = self.plain_string() {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
            return Some(());
        }
        self.i = at;
        self.expect(b'"')?;
        sc.text.clear();
        loop {
            let rest = self.b.get(self.i..)?;
            let len = first_special(rest)?;
            if rest[len] < 0x20 {
                return None;
            }
            sc.text.push_str(self.text.get(self.i..self.i + len)?);
            self.i += len + 1;
            if rest[len] == b'"' {
                break;
            }
            let letter = *self.b.get(self.i)?;
            self.i += 1;
            let c = match letter {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => match self.hex4()? {
                    // A high surrogate must be followed by an escaped low
                    // one; a lone one is refused.
                    high @ 0xD800..=0xDBFF => {
                        self.literal(b"\\u")?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        char::from_u32(0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00))?
                    }
                    unit => char::from_u32(u32::from(unit))?,
                },
                _ => return None,
            };
            sc.text.push(c);
        }
        string(out, sc.text);
        Some(())
    }

    /// Four hex digits of a `\u` escape, either case.
    fn hex4(&mut self) -> Option<u16> {
        let digits = self.b.get(self.i..self.i + 4)?;
        let mut v = 0u16;
        for &d in digits {
            v = (v << 4) | u16::from(char::from(d).to_digit(16)? as u8);
        }
        self.i += 4;
        Some(v)
    }

    /// An integer within ±(2^53−1), written as it stands (which is its
    /// canonical form); `None` for `-0`, leading zeros, and any fraction
    /// or exponent.
    fn integer(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.i;
        let negative = self.b.get(self.i) == Some(&b'-');
        let digits_at = start + usize::from(negative);
        let n = self.b.get(digits_at..)?.iter().take_while(|b| b.is_ascii_digit()).count();
        let digits = self.b.get(digits_at..digits_at + n)?;
        let end = digits_at + n;
        if n == 0 || n > 16 || (digits[0] == b'0' && (n > 1 || negative)) || matches!(self.b.get(end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = digits.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        if value > MAX_SAFE_INTEGER {
            return None;
        }
        out.extend_from_slice(&self.b[start..end]);
        self.i = end;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    //! The fast path against the full parser, which `tests/events.rs`
    //! checks against an independent RFC 8785 implementation: on random
    //! events written with random member order, whitespace and escapes,
    //! and on random mutations of them. Where the fast path answers, the
    //! full parser must accept with the same bytes.

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::{write_entry, Buffers};
    use crate::event::EventObject;

    /// What the fast path makes of `line`.
    fn entry_bytes(line: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![b'?'; 3];
        write_entry(line, &mut Buffers::default(), &mut out).map(|()| out)
    }

    /// What the full parser makes of `line`.
    fn full(line: &[u8]) -> Option<Vec<u8>> {
        let EventObject(event) = serde_json::from_slice(line).ok()?;
        event.canonical_bytes().ok()
    }

    const NAMES: [&str; 9] = ["a", "b", "B", "ab", "seq", "host", "é", "\u{1F600}", "\u{ff61}"];
    const CHARS: [char; 14] = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '\u{2028}', '\u{1F600}', '\u{ffff}'];
    const NUMBERS: [&str; 16] = [
        "0",
        "-1",
        "42",
        "-0",
        "01",
        "1.5",
        "1e3",
        "2E-2",
        "9007199254740991",
        "-9007199254740991",
        "9007199254740992",
        "1.0",
        "-",
        "1.",
        "123456789012345678",
        "0.1",
    ];

    fn ws(rng: &mut StdRng, out: &mut String) {
        for _ in 0..rng.random_range(0..3usize).saturating_sub(1) {
            out.push([' ', '\t', '\r', '\n'][rng.random_range(0..4)]);
        }
    }

    /// `s` as a JSON string, each character raw or escaped at random.
    fn string(rng: &mut StdRng, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let must = matches!(c, '"' | '\\') || u32::from(c) < 0x20;
            match (must, rng.random_range(0..4)) {
                (false, 0..=2) => out.push(c),
                (_, 3) | (true, 0) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        if rng.random() {
                            out.push_str(&format!("\\u{u:04x}"));
                        } else {
                            out.push_str(&format!("\\u{u:04X}"));
                        }
                    }
                }
                _ => out.push_str(match c {
                    '"' => "\\\"",
                    '\\' => "\\\\",
                    '\n' => "\\n",
                    _ => "\\u0001",
                }),
            }
        }
        out.push('"');
    }

    fn value(rng: &mut StdRng, depth: u32, out: &mut String) {
        ws(rng, out);
        match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
            0 => out.push_str(["null", "true", "false"][rng.random_range(0..3)]),
            1 | 2 => out.push_str(NUMBERS[rng.random_range(0..NUMBERS.len())]),
            3 | 4 => {
                let s: String = (0..rng.random_range(0..6)).map(|_| CHARS[rng.random_range(0..CHARS.len())]).collect();
                string(rng, &s, out);
            }
            5 => {
                out.push('[');
                for i in 0..rng.random_range(0..4) {
                    if i > 0 {
                        out.push(',');
                    }
                    value(rng, depth - 1, out);
                }
                ws(rng, out);
                out.push(']');
            }
            _ => object(rng, depth - 1, out),
        }
        ws(rng, out);
    }

    fn object(rng: &mut StdRng, depth: u32, out: &mut String) {
        out.push('{');
        for i in 0..rng.random_range(0..5) {
            if i > 0 {
                out.push(',');
            }
            ws(rng, out);
            let name = NAMES[rng.random_range(0..NAMES.len())];
            string(rng, name, out);
            ws(rng, out);
            out.push(':');
            value(rng, depth, out);
        }
        ws(rng, out);
        out.push('}');
    }

    fn digest(rng: &mut StdRng) -> String {
        let hex: String = (0..64).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect();
        format!("\"sha256:{hex}\"")
    }

    /// A random event line; most are valid events.
    fn event(rng: &mut StdRng) -> String {
        let mut members: Vec<String> = vec![
            r#""version":"1.0""#.into(),
            format!(r#""timestamp":"{}""#, ["2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123456789+01:00", "2026-11-21 10:00:00.5Z"][rng.random_range(0..3)]),
            format!(r#""layer":"{}""#, ["network", "application", "computation", "physical"][rng.random_range(0..4)]),
            format!(r#""type":"{}""#, ["rpc_call", "db", "x y"][rng.random_range(0..3)]),
            format!(r#""input":{}"#, digest(rng)),
            format!(r#""output":{}"#, digest(rng)),
        ];
        let mut metadata = String::from(r#""metadata":"#);
        object(rng, 3, &mut metadata);
        members.push(metadata);
        match rng.random_range(0..4) {
            0 => members.push(r#""parents":null"#.into()),
            1 => members.push(format!(r#""parents":[{}]"#, (0..rng.random_range(0..3)).map(|_| digest(rng)).collect::<Vec<_>>().join(","))),
            _ => {}
        }
        if rng.random_range(0..8) == 0 {
            members.push(r#""proof":null"#.into());
        }
        for i in (1..members.len()).rev() {
            members.swap(i, rng.random_range(0..=i));
        }
        let mut line = String::from("{");
        for (i, m) in members.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            ws(rng, &mut line);
            line.push_str(m);
            ws(rng, &mut line);
        }
        line.push('}');
        ws(rng, &mut line);
        line
    }

    /// Bytes that steer a mutation towards the parser's edges.
    const EDGES: &[u8] = b"{}[],:\"\\ \t0123456789-+.eEutfnl\x00\x1f\x7f\xc3\xa9\xff";

    fn mutate(rng: &mut StdRng, line: &[u8]) -> Vec<u8> {
        let mut m = line.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..=m.len());
            match rng.random_range(0..4) {
                0 if at < m.len() => {
                    m.remove(at);
                }
                1 if at < m.len() => m[at] = EDGES[rng.random_range(0..EDGES.len())],
                2 => m.insert(at, EDGES[rng.random_range(0..EDGES.len())]),
                _ => {
                    let from = rng.random_range(0..m.len());
                    let piece: Vec<u8> = m[from..(from + rng.random_range(1..12)).min(m.len())].to_vec();
                    m.splice(at..at, piece);
                }
            }
        }
        m
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_parser() {
        let seed: u64 = rand::rng().random();
        eprintln!("seed {seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut fast_valid, mut valid, mut fast_mutated) = (0, 0, 0);
        for _ in 0..20_000 {
            let line = event(&mut rng);
            let want = full(line.as_bytes());
            if let Some(got) = entry_bytes(line.as_bytes()) {
                assert_eq!(Some(&got), want.as_ref(), "seed {seed}: line {line}");
                fast_valid += 1;
            }
            valid += usize::from(want.is_some());
            for _ in 0..4 {
                let m = mutate(&mut rng, line.as_bytes());
                if let Some(got) = entry_bytes(&m) {
                    assert_eq!(Some(&got), full(&m).as_ref(), "seed {seed}: mutated line {}", String::from_utf8_lossy(&m));
                    fast_mutated += 1;
                }
            }
        }
        // The generator must exercise both paths: the fast one on most
        // valid lines, the full one on the rest.
        assert!(valid > 5_000 && fast_valid > valid / 4 && fast_valid < valid, "seed {seed}: {fast_valid} of {valid} valid lines fast");
        eprintln!("{fast_valid} of {valid} valid lines fast, {fast_mutated} mutated lines fast");
        assert!(fast_mutated > 300, "seed {seed}: {fast_mutated} mutated lines fast");
    }

    /// The quick timestamp check against the full one (the `time` crate's
    /// RFC 3339 parser and our checks): on random `…Z` timestamps, both
    /// agree wherever the second is below 60; on random mutations, the
    /// quick one accepts nothing the full one refuses.
    #[test]
    fn plain_utc_timestamps_are_exactly_the_valid_ones_of_their_form() {
        use crate::event::Timestamp;
        let seed: u64 = rand::rng().random();
        let mut rng = StdRng::seed_from_u64(seed);
        let fractions = ["", ".", ".1", ".123456789", ".1234567890", ".12a", "5"];
        let (mut quick, mut mutated_quick) = (0, 0);
        for _ in 0..100_000 {
            let (y, mo, d) = (rng.random_range(0..10_000), rng.random_range(0..14), rng.random_range(0..33));
            let (h, mi, sec) = (rng.random_range(0..25), rng.random_range(0..61), rng.random_range(0..61));
            let f = fractions[rng.random_range(0..fractions.len())];
            let t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{f}Z");
            let full = Timestamp::check(&t).is_ok();
            if sec < 60 {
                assert_eq!(Timestamp::is_plain_utc(&t), full, "seed {seed}: {t}");
            } else {
                assert!(!Timestamp::is_plain_utc(&t), "seed {seed}: {t}");
            }
            quick += usize::from(Timestamp::is_plain_utc(&t));
            let mut m = t.into_bytes();
            let at = rng.random_range(0..m.len());
            match rng.random_range(0..3) {
                0 => m[at] = b"0189:-.TtZz +"[rng.random_range(0..13)],
                1 => {
                    m.remove(at);
                }
                _ => m.insert(at, b"09:-.Z"[rng.random_range(0..6)]),
            }
            let m = String::from_utf8(m).unwrap();
            if Timestamp::is_plain_utc(&m) {
                assert!(Timestamp::check(&m).is_ok(), "seed {seed}: {m}");
                mutated_quick += 1;
            }
        }
        assert!(quick > 10_000 && mutated_quick > 1_000, "seed {seed}: {quick} quick, {mutated_quick} mutated quick");
        for leap in ["2024-02-29T00:00:00Z", "2000-02-29T23:59:59.5Z"] {
            assert!(Timestamp::is_plain_utc(leap), "{leap}");
        }
        for not in ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-01-01t00:00:00Z", "2026-01-01T00:00:00+00:00"] {
            assert!(!Timestamp::is_plain_utc(not), "{not}");
        }
    }

    #[test]
    fn the_common_shape_takes_the_fast_path() {
        let line = br#"{"type":"rpc_call","version":"1.0","timestamp":"2026-11-21T00:00:00.000000000Z","layer":"network","input":"sha256:0000000000000000000000000000000000000000000000000000000000000000","output":"sha256:0000000000000000000000000000000000000000000000009e3779b97f4a7c15","metadata":{"seq":0,"host":"node-0","pad":"x\"y","nested":{"b":[1,{"z":null,"a":true}],"a":-5}},"parents":[]}"#;
        let got = entry_bytes(line).map(String::from_utf8);
        let want = r#"{"input":"sha256:0000000000000000000000000000000000000000000000000000000000000000","layer":"network","metadata":{"host":"node-0","nested":{"a":-5,"b":[1,{"a":true,"z":null}]},"pad":"x\"y","seq":0},"output":"sha256:0000000000000000000000000000000000000000000000009e3779b97f4a7c15","parents":[],"timestamp":"2026-11-21T00:00:00.000000000Z","type":"rpc_call","version":"1.0"}"#;
        assert_eq!(got, Some(Ok(want.to_owned())));
        assert_eq!(full(line), Some(want.as_bytes().to_vec()));
    }
}
