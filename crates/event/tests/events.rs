//! Event validation, canonical entry bytes and JSON Lines batch errors.

use serde_json::{json, Value};
use zkaudit_event::{parse_jsonl, BatchError, Digest, Event, Layer, LineError, Timestamp, MAX_ENTRY_BYTES, MAX_REPORTED_ERRORS};

const SOURCE: &str = "events.jsonl";

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// A minimal valid event as a JSON value; tests mutate it.
fn event_value() -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-01-29T12:20:23.925000001-05:00",
        "layer": "network",
        "type": "failover",
        "input": digest('a'),
        "output": digest('b'),
        "metadata": {"region": "eu-west", "attempt": 2},
    })
}

fn line_of(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// A valid line whose metadata is `metadata` (raw JSON text, so that it can
/// hold what `serde_json::Value` cannot: duplicate names, huge integers).
fn line_with_metadata(metadata: &str) -> String {
    let line = line_of(&event_value());
    let start = line.find(r#""metadata":"#).unwrap() + r#""metadata":"#.len();
    let end = start + line[start..].find('}').unwrap() + 1;
    format!("{}{metadata}{}", &line[..start], &line[end..])
}

fn parse(input: &str) -> Result<Vec<Vec<u8>>, BatchError> {
    parse_jsonl(input.as_bytes(), SOURCE)
}

/// Parses a batch that must fail and returns its errors and total.
fn malformed(input: &str) -> (Vec<LineError>, usize) {
    match parse(input) {
        Err(BatchError::Malformed { errors, total }) => (errors, total),
        Err(e) => panic!("expected malformed lines, got {e}"),
        Ok(entries) => panic!("expected malformed lines, got {} entries for {input:?}", entries.len()),
    }
}

// ---------------------------------------------------------------------------
// Valid events and their entry bytes
// ---------------------------------------------------------------------------

#[test]
fn entry_bytes_are_rfc8785_canonical_json() {
    // Members out of order, insignificant whitespace, escapes that JCS writes
    // differently, numbers that JCS normalises, and metadata names whose
    // UTF-16 order differs from their UTF-8 order ("😀" is U+D83D U+DE00 in
    // UTF-16 and sorts before "｡", U+FF61; in UTF-8 it would sort after).
    let line = format!(
        concat!(
            r#"{{ "type" : "plan_proof", "version":"1.0",  "parents": ["{c}"],"#,
            r#" "metadata": {{"｡": "x", "😀": {{}}, "\u00e9": "caf\u00e9 \"q\" \u001f\/", "z": [1, 2.50, -0, 1e2, 1E-7, true, null],"#,
            r#" "a": {{"y": 1, "b": 0.1}}}},"#,
            r#" "proof": {{"receipt_digest": "{d}", "kind": "risc0-composite", "journal_digest": "{f}", "image_id": "{e}"}},"#,
            r#" "timestamp": "2026-01-29T12:20:23.925000001-05:00", "output": "{b}", "layer": "computation", "input": "{a}" }}"#,
        ),
        a = digest('a'),
        b = digest('b'),
        c = digest('c'),
        d = digest('d'),
        e = "e".repeat(64),
        f = digest('f'),
    );
    let entries = parse(&line).unwrap();
    assert_eq!(entries.len(), 1);

    let expected = format!(
        concat!(
            r#"{{"input":"{a}","layer":"computation","#,
            r#""metadata":{{"a":{{"b":0.1,"y":1}},"z":[1,2.5,0,100,1e-7,true,null],"é":"café \"q\" \u001f/","😀":{{}},"｡":"x"}},"#,
            r#""output":"{b}","parents":["{c}"],"#,
            r#""proof":{{"image_id":"{e}","journal_digest":"{f}","kind":"risc0-composite","receipt_digest":"{d}"}},"#,
            r#""timestamp":"2026-01-29T12:20:23.925000001-05:00","type":"plan_proof","version":"1.0"}}"#,
        ),
        a = digest('a'),
        b = digest('b'),
        c = digest('c'),
        d = digest('d'),
        e = "e".repeat(64),
        f = digest('f'),
    );
    assert_eq!(String::from_utf8(entries[0].clone()).unwrap(), expected);
    assert_eq!(entries[0], expected.as_bytes());
}

#[test]
fn minimal_event_entry_bytes() {
    let line = line_of(&event_value());
    let expected = format!(
        concat!(
            r#"{{"input":"{a}","layer":"network","metadata":{{"attempt":2,"region":"eu-west"}},"output":"{b}","#,
            r#""timestamp":"2026-01-29T12:20:23.925000001-05:00","type":"failover","version":"1.0"}}"#,
        ),
        a = digest('a'),
        b = digest('b'),
    );
    assert_eq!(parse(&line).unwrap(), vec![expected.clone().into_bytes()]);

    // Explicit nulls for the optional members are the same event.
    let mut v = event_value();
    v["proof"] = Value::Null;
    v["parents"] = Value::Null;
    assert_eq!(parse(&line_of(&v)).unwrap(), vec![expected.into_bytes()]);

    // An empty parents list is kept: it says something different from none.
    let mut v = event_value();
    v["parents"] = json!([]);
    let entry = String::from_utf8(parse(&line_of(&v)).unwrap().remove(0)).unwrap();
    assert!(entry.contains(r#""parents":[],"#), "{entry}");
}

#[test]
fn entries_read_back_to_the_same_bytes() {
    let mut with_proof = event_value();
    with_proof["layer"] = json!("computation");
    with_proof["proof"] = json!({
        "kind": "risc0-composite",
        "receipt_digest": digest('1'),
        "image_id": "0123456789abcdef".repeat(4),
        "journal_digest": digest('2'),
    });
    with_proof["parents"] = json!([digest('3'), digest('4')]);
    let lines = [
        line_of(&event_value()),
        line_of(&with_proof),
        line_with_metadata(r#"{"max":9007199254740991,"min":-9007199254740991,"big":1e21,"tiny":-2.5e-7,"f":1.5}"#),
        line_with_metadata(r#"{"deep":{"a":[[[{"b":[]}]]]},"s":"\u0000\ud83d\ude00"}"#),
    ];
    for line in lines {
        let entry = parse(&line).unwrap().remove(0);
        let event = Event::from_entry(&entry).unwrap_or_else(|e| panic!("entry of {line} does not read back: {e}"));
        assert_eq!(event.canonical_bytes().unwrap(), entry, "{line}");
    }

    let event = Event::from_entry(&parse(&line_of(&with_proof)).unwrap()[0]).unwrap();
    assert_eq!(event.layer, Layer::Computation);
    assert_eq!(event.kind, "failover");
    assert_eq!(event.timestamp.as_str(), "2026-01-29T12:20:23.925000001-05:00");
    assert_eq!(event.input, Digest([0xaa; 32]));
    assert_eq!(event.parents.as_deref(), Some(&[Digest([0x33; 32]), Digest([0x44; 32])][..]));
    assert_eq!(event.proof.unwrap().image_id, "0123456789abcdef".repeat(4));
}

#[test]
fn every_layer_is_accepted() {
    for (name, layer) in [("application", Layer::Application), ("computation", Layer::Computation), ("network", Layer::Network), ("physical", Layer::Physical)]
    {
        let mut v = event_value();
        v["layer"] = json!(name);
        let event = Event::from_entry(&parse(&line_of(&v)).unwrap()[0]).unwrap();
        assert_eq!(event.layer, layer);
        assert_eq!(layer.as_str(), name);
    }
}

// ---------------------------------------------------------------------------
// Malformed lines
// ---------------------------------------------------------------------------

struct Case {
    what: &'static str,
    line: String,
    field: Option<&'static str>,
    message: &'static str,
}

fn case(what: &'static str, line: String, field: Option<&'static str>, message: &'static str) -> Case {
    Case { what, line, field, message }
}

fn without(field: &str) -> String {
    let mut v = event_value();
    v.as_object_mut().unwrap().remove(field).unwrap();
    line_of(&v)
}

fn with(field: &str, value: Value) -> String {
    let mut v = event_value();
    v[field] = value;
    line_of(&v)
}

fn with_proof(f: impl FnOnce(&mut Value)) -> String {
    let mut proof = json!({
        "kind": "risc0-composite",
        "receipt_digest": digest('1'),
        "image_id": "ab".repeat(32),
        "journal_digest": digest('2'),
    });
    f(&mut proof);
    with("proof", proof)
}

fn malformed_cases() -> Vec<Case> {
    let mut cases = vec![
        // Syntax.
        case("truncated object", r#"{"version":"1.0","#.into(), None, "EOF while parsing a value"),
        case("trailing comma", r#"{"version":"1.0",}"#.into(), None, "trailing comma"),
        case("not JSON", "version=1.0".into(), None, "expected value"),
        case("unterminated string", r#"{"version":"1.0"#.into(), Some("version"), "EOF while parsing a string"),
        case("not an object", "[]".into(), None, "expected a JSON object"),
        case("two events on a line", format!("{} {{}}", line_of(&event_value())), None, "trailing characters"),
    ];
    // Every required member.
    for (field, message) in [
        ("version", "missing field `version`"),
        ("timestamp", "missing field `timestamp`"),
        ("layer", "missing field `layer`"),
        ("type", "missing field `type`"),
        ("input", "missing field `input`"),
        ("output", "missing field `output`"),
        ("metadata", "missing field `metadata`"),
    ] {
        cases.push(case("missing member", without(field), Some(field), message));
    }
    cases.extend([
        // Digests.
        case("uppercase digest", with("input", json!(format!("sha256:{}", "A".repeat(64)))), Some("input"), "64 lowercase hex digits"),
        case("short digest", with("output", json!(format!("sha256:{}", "b".repeat(63)))), Some("output"), "64 lowercase hex digits"),
        case("long digest", with("output", json!(format!("sha256:{}", "b".repeat(65)))), Some("output"), "64 lowercase hex digits"),
        case("non-hex digest", with("input", json!(format!("sha256:{}", "g".repeat(64)))), Some("input"), "64 lowercase hex digits"),
        case("digest without prefix", with("input", json!("a".repeat(64))), Some("input"), "must start with \"sha256:\""),
        case("uppercase prefix", with("input", json!(format!("SHA256:{}", "a".repeat(64)))), Some("input"), "must start with \"sha256:\""),
        case("digest not a string", with("input", json!(42)), Some("input"), "invalid type: integer `42`"),
        // Timestamps.
        case("date only", with("timestamp", json!("2026-01-29")), Some("timestamp"), "is not RFC 3339"),
        case("no offset", with("timestamp", json!("2026-01-29T12:20:23")), Some("timestamp"), "is not RFC 3339"),
        case("month 13", with("timestamp", json!("2026-13-01T00:00:00Z")), Some("timestamp"), "is not RFC 3339"),
        case("slashes", with("timestamp", json!("29/01/2026 12:20:23")), Some("timestamp"), "is not RFC 3339"),
        case("odd separator", with("timestamp", json!("2026-01-29X12:20:23Z")), Some("timestamp"), "separated by \"T\""),
        case("dot separator", with("timestamp", json!("2026-01-29.12:20:23Z")), Some("timestamp"), "separated by \"T\""),
        case("ten fraction digits", with("timestamp", json!("2026-01-29T12:20:23.1234567890Z")), Some("timestamp"), "has 10 fractional digits; at most 9"),
        case("timestamp not a string", with("timestamp", json!(1769707223)), Some("timestamp"), "invalid type"),
        // Layer, type, version, unknown members.
        case("unknown layer", with("layer", json!("quantum")), Some("layer"), "unknown variant `quantum`"),
        case("capitalised layer", with("layer", json!("Network")), Some("layer"), "unknown variant `Network`"),
        case("unknown member", with("extra", json!(1)), Some("extra"), "unknown field `extra`"),
        case("empty type", with("type", json!("")), Some("type"), "must not be empty"),
        case("unsupported version", with("version", json!("2.0")), Some("version"), "unsupported version \"2.0\""),
        case("numeric version", with("version", json!(1.0)), Some("version"), "invalid type: floating point `1.0`, expected a string"),
        case(
            "duplicate member",
            line_of(&event_value()).replacen(r#""layer":"network""#, r#""layer":"network","layer":"physical""#, 1),
            None,
            "duplicate field `layer`",
        ),
        // Metadata: I-JSON only.
        case("metadata not an object", with("metadata", json!([1])), Some("metadata"), "expected a JSON object"),
        case("duplicate metadata name", line_with_metadata(r#"{"b":1,"b":2}"#), Some("metadata"), "duplicate member name \"b\""),
        case("escaped duplicate name", line_with_metadata(r#"{"b":1,"\u0062":2}"#), Some("metadata"), "duplicate member name \"b\""),
        case("nested duplicate name", line_with_metadata(r#"{"x":[{"c":1,"c":1}]}"#), Some("metadata.x[0]"), "duplicate member name \"c\""),
        case("2^53", line_with_metadata(r#"{"n":9007199254740992}"#), Some("metadata.n"), "integer 9007199254740992 is outside ±(2^53-1)"),
        case("-2^53", line_with_metadata(r#"{"n":-9007199254740992}"#), Some("metadata.n"), "integer -9007199254740992 is outside ±(2^53-1)"),
        case("u64::MAX", line_with_metadata(r#"{"a":{"n":18446744073709551615}}"#), Some("metadata.a.n"), "is outside ±(2^53-1)"),
        case("2^53 in an array", line_with_metadata(r#"{"l":[1,9007199254740993]}"#), Some("metadata.l[1]"), "is outside ±(2^53-1)"),
        // Integral values that only parse as doubles: rounded by the parser,
        // or written back by RFC 8785 as integers that do not read back.
        case("2^64", line_with_metadata(r#"{"n":18446744073709551616}"#), Some("metadata.n"), "is an integer outside ±(2^53-1)"),
        case("below i64::MIN", line_with_metadata(r#"{"n":-9223372036854775809}"#), Some("metadata.n"), "is an integer outside ±(2^53-1)"),
        case("1e19", line_with_metadata(r#"{"n":1e19}"#), Some("metadata.n"), "number 10000000000000000000 is an integer outside"),
        case("2^53 as a fraction", line_with_metadata(r#"{"n":9007199254740992.0}"#), Some("metadata.n"), "is an integer outside"),
        case("bad escape", line_with_metadata(r#"{"s":"\ud800"}"#), Some("metadata.s"), "unexpected end of hex escape"),
        // Proof references.
        case("uppercase image ID", with_proof(|p| p["image_id"] = json!("AB".repeat(32))), Some("proof.image_id"), "image ID"),
        case("short image ID", with_proof(|p| p["image_id"] = json!("ab".repeat(31))), Some("proof.image_id"), "must be 64 lowercase hex digits"),
        case("long image ID", with_proof(|p| p["image_id"] = json!("ab".repeat(33))), Some("proof.image_id"), "must be 64 lowercase hex digits"),
        case("prefixed image ID", with_proof(|p| p["image_id"] = json!(digest('a'))), Some("proof.image_id"), "must be 64 lowercase hex digits"),
        case(
            "missing image ID",
            with_proof(|p| {
                p.as_object_mut().unwrap().remove("image_id");
            }),
            Some("proof.image_id"),
            "missing field `image_id`",
        ),
        case("bad receipt digest", with_proof(|p| p["receipt_digest"] = json!("sha256:00")), Some("proof.receipt_digest"), "64 lowercase hex digits"),
        case("unknown proof member", with_proof(|p| p["extra"] = json!(true)), Some("proof.extra"), "unknown field `extra`"),
        // Parents.
        case("bad parent digest", with("parents", json!([digest('a'), format!("sha256:{}", "A".repeat(64))])), Some("parents[1]"), "64 lowercase hex digits"),
        case("parents not a list", with("parents", json!(digest('a'))), Some("parents"), "invalid type"),
    ]);
    cases
}

#[test]
fn malformed_lines_report_line_field_and_message() {
    let good = line_of(&event_value());
    for c in malformed_cases() {
        // The bad line is line 4: blank lines count but are skipped.
        let input = format!("{good}\n\n{good}\n{}\n{good}\n", c.line);
        let (errors, total) = malformed(&input);
        assert_eq!((errors.len(), total), (1, 1), "{}: {errors:?}", c.what);
        let e = &errors[0];
        assert_eq!(e.source, SOURCE);
        assert_eq!(e.line, 4, "{}: {e:?}", c.what);
        assert_eq!(e.field.as_deref(), c.field, "{}: {e:?}", c.what);
        assert!(e.message.contains(c.message), "{}: message {:?} lacks {:?}", c.what, e.message, c.message);
        assert!(!e.message.contains(" at line "), "{}: position left in the message {:?}", c.what, e.message);
    }
}

#[test]
fn syntax_errors_report_the_column() {
    for (line, column, message) in [
        (r#"{"version" "1.0"}"#, 12, "expected `:`"),
        (r#"{"version":"1.0",}"#, 18, "trailing comma"),
        (r#"{"version":"1.0","#, 17, "EOF while parsing a value"),
        (r#"{"metadata":{"a":[1,2,]}}"#, 23, "trailing comma"),
        ("  x", 3, "expected value"),
    ] {
        let (errors, _) = malformed(line);
        assert_eq!(errors[0].column, Some(column), "{line}: {:?}", errors[0]);
        assert!(errors[0].message.contains(message), "{line}: {:?}", errors[0]);
    }
    let (errors, _) = malformed(&format!("{} x", line_of(&event_value())));
    assert_eq!(errors[0].column, Some(line_of(&event_value()).len() + 2));
    assert_eq!(errors[0].message, "trailing characters after the event");
}

#[test]
fn entry_size_limit() {
    // The canonical entry must fit a tlog-tiles bundle (uint16 length).
    let base = parse(&line_with_metadata(r#"{"s":""}"#)).unwrap().remove(0).len();
    let fits = MAX_ENTRY_BYTES - base;
    let ok = parse(&line_with_metadata(&format!(r#"{{"s":"{}"}}"#, "x".repeat(fits)))).unwrap();
    assert_eq!(ok[0].len(), MAX_ENTRY_BYTES);

    let (errors, total) = malformed(&line_with_metadata(&format!(r#"{{"s":"{}"}}"#, "x".repeat(fits + 1))));
    assert_eq!(total, 1);
    assert_eq!((errors[0].line, errors[0].column, errors[0].field.as_deref()), (1, None, None));
    assert_eq!(errors[0].message, "canonical entry is 65536 bytes; the tlog-tiles limit is 65535");

    let (errors, _) = malformed(&line_with_metadata(&format!(r#"{{"s":"{}"}}"#, "x".repeat(70_000))));
    assert!(errors[0].message.starts_with("canonical entry is 70"), "{}", errors[0].message);
    assert!(errors[0].message.contains("65535"));

    // The limit is on the canonical bytes, not the line: escapes that JCS
    // shortens do not count against it.
    let escaped = "\\u0078".repeat(fits); // "x", six bytes each on the line
    assert_eq!(parse(&line_with_metadata(&format!(r#"{{"s":"{escaped}"}}"#))).unwrap()[0].len(), MAX_ENTRY_BYTES);
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

fn numbered(i: usize) -> String {
    line_with_metadata(&format!(r#"{{"seq":{i}}}"#))
}

#[test]
fn good_batches_keep_order_and_skip_blank_lines() {
    let input = format!("\n{}\r\n   \n{}\n\t\n{}", numbered(0), numbered(1), numbered(2));
    let entries = parse(&input).unwrap();
    assert_eq!(entries.len(), 3);
    for (i, entry) in entries.iter().enumerate() {
        let event = Event::from_entry(entry).unwrap();
        assert_eq!(event.metadata["seq"], json!(i));
    }
    assert_eq!(parse("").unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(parse("\n\n  \n").unwrap(), Vec::<Vec<u8>>::new());
}

#[test]
fn one_bad_line_rejects_the_whole_batch() {
    for bad_at in [0, 3, 9] {
        let lines: Vec<String> = (0..10).map(|i| if i == bad_at { without("type") } else { numbered(i) }).collect();
        let (errors, total) = malformed(&lines.join("\n"));
        assert_eq!(total, 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, bad_at + 1);
        assert_eq!(errors[0].field.as_deref(), Some("type"));
    }
}

#[test]
fn batch_errors_list_every_bad_line_up_to_the_limit() {
    // Lines 1..=60; every line whose number is a multiple of 2 is bad: 30 bad.
    let lines: Vec<String> = (1..=60).map(|n| if n % 2 == 0 { with("layer", json!(format!("layer{n}"))) } else { numbered(n) }).collect();
    let (errors, total) = malformed(&lines.join("\n"));
    assert_eq!(total, 30);
    assert_eq!(errors.len(), MAX_REPORTED_ERRORS);
    let reported: Vec<usize> = errors.iter().map(|e| e.line).collect();
    let expected: Vec<usize> = (1..=MAX_REPORTED_ERRORS).map(|k| 2 * k).collect();
    assert_eq!(reported, expected);
    for e in &errors {
        assert!(e.message.contains(&format!("unknown variant `layer{}`", e.line)), "{e:?}");
    }

    // Below the limit, every bad line is listed.
    let lines: Vec<String> = (1..=10).map(|n| if n % 3 == 0 { without("input") } else { numbered(n) }).collect();
    let (errors, total) = malformed(&lines.join("\n"));
    assert_eq!(total, 3);
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 6, 9]);

    // The error's text names the count and every listed line.
    let err = parse(&lines.join("\n")).unwrap_err().to_string();
    assert!(err.starts_with("3 malformed event line(s):\n"), "{err}");
    for n in [3, 6, 9] {
        assert!(err.contains(&format!("  {SOURCE}:{n}:")), "{err}");
    }
}

#[test]
fn line_error_display() {
    let e = LineError { source: "in.jsonl".into(), line: 7, column: Some(12), field: Some("metadata.x".into()), message: "boom".into() };
    assert_eq!(e.to_string(), "in.jsonl:7:12: field `metadata.x`: boom");
    let e = LineError { column: None, field: None, ..e };
    assert_eq!(e.to_string(), "in.jsonl:7: boom");
}

#[test]
fn unreadable_input_is_an_io_error() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("device gone"))
        }
    }
    match parse_jsonl(std::io::BufReader::new(Failing), "bad.bin") {
        Err(BatchError::Io { source_name, error }) => {
            assert_eq!(source_name, "bad.bin");
            assert_eq!(error.to_string(), "device gone");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Timestamps and digests
// ---------------------------------------------------------------------------

#[test]
fn timestamp_precision_and_instant() {
    const S: i128 = 1_000_000_000;
    // 2026-01-29T17:20:23Z is 1769707223 s after the epoch.
    for (text, precision_ns, unix_nanos) in [
        ("2026-01-29T12:20:23.925000001-05:00", 1, 1_769_707_223 * S + 925_000_001),
        ("2026-01-29T17:20:23.925000001Z", 1, 1_769_707_223 * S + 925_000_001),
        ("2026-01-29T12:20:23.925-05:00", 1_000_000, 1_769_707_223 * S + 925_000_000),
        ("2026-01-29T12:20:23.92500-05:00", 10_000, 1_769_707_223 * S + 925_000_000),
        ("2026-01-29T12:20:23-05:00", 1_000_000_000, 1_769_707_223 * S),
        ("2026-01-29T22:50:23.5+05:30", 100_000_000, 1_769_707_223 * S + 500_000_000),
        ("1970-01-01T00:00:00Z", 1_000_000_000, 0),
        ("1970-01-01T00:00:00.000+01:00", 1_000_000, -3600 * S),
        ("1969-12-31T23:59:59.999999999Z", 1, -1),
        ("1970-01-01t00:00:01.1z", 100_000_000, S + 100_000_000),
        ("1970-01-01 00:00:01Z", 1_000_000_000, S),
    ] {
        let t = Timestamp::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(t.precision_ns(), precision_ns, "{text}");
        assert_eq!(t.unix_nanos(), unix_nanos, "{text}");
        assert_eq!(t.as_str(), text, "kept as written");
    }
    for bad in [
        "2026-01-29T12:20:23.1234567890Z",
        "2026-01-29T12:20:23.Z",
        "2026-01-29T12:20:23",
        "2026-01-29T12:20:60Z",
        "2026-01-29.12:20:23.123456789Z",
        "2026-01-29_12:20:23Z",
        "",
    ] {
        assert!(Timestamp::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn digest_parse_and_display() {
    let text = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let d = Digest::parse(&text).unwrap();
    assert_eq!(d.0[..8], [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    assert_eq!(d.to_string(), text);
    assert_eq!(format!("{d:?}"), text);
    for bad in [
        "0123456789abcdef".repeat(4),
        format!("sha256:{}", "0123456789ABCDEF".repeat(4)),
        format!("sha256: {}", "0".repeat(63)),
        format!("sha256:{}", "0".repeat(62)),
        "sha256:".into(),
        format!("sha512:{}", "0".repeat(64)),
    ] {
        assert!(Digest::parse(&bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn arrays_are_not_events() {
    let good = r#"{"version":"1.0","timestamp":"2026-01-29T12:20:23Z","layer":"network","type":"failover","input":"sha256:0000000000000000000000000000000000000000000000000000000000000000","output":"sha256:0000000000000000000000000000000000000000000000000000000000000000","metadata":{}}"#;
    assert!(parse_jsonl(good.as_bytes(), "t").is_ok());
    let as_array = r#"["1.0","2026-01-29T12:20:23Z","network","failover","sha256:0000000000000000000000000000000000000000000000000000000000000000","sha256:0000000000000000000000000000000000000000000000000000000000000000",{}]"#;
    let err = parse_jsonl(as_array.as_bytes(), "t").unwrap_err().to_string();
    assert!(err.contains("a JSON object"), "{err}");
    let proof_array = good.replace(r#""metadata":{}"#, r#""metadata":{},"proof":["risc0","sha256:0000000000000000000000000000000000000000000000000000000000000000","00","sha256:0000000000000000000000000000000000000000000000000000000000000000"]"#);
    let err = parse_jsonl(proof_array.as_bytes(), "t").unwrap_err().to_string();
    assert!(err.contains("field `proof`") && err.contains("a JSON object"), "{err}");
}

// ---------------------------------------------------------------------------
// Our RFC 8785 writer against an independent implementation
// ---------------------------------------------------------------------------

/// A random JSON value of the kinds metadata holds, `depth` levels deep at most.
fn random_value(rng: &mut impl rand::Rng, depth: u32) -> Value {
    const NAMES: [&str; 10] = ["a", "B", "é", "😀", "｡", "\u{e000}", "k\u{1}", "tab\t", "\"q\"", "\u{7f}x"];
    const FLOATS: [f64; 10] = [0.1, -0.0, 1e21, 1e-7, 5e-324, 123.456, -2.5e300, 1e22, 0.000001, 9007199254740991.0];
    match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random_range(-(1i64 << 53) + 1..(1i64 << 53))),
        3 => json!(FLOATS[rng.random_range(0..FLOATS.len())]),
        4 => {
            let chars: String = (0..rng.random_range(0..12)).map(|_| NAMES[rng.random_range(0..NAMES.len())]).collect();
            Value::String(chars + "\u{2028}\n\r\u{8}\u{c}\\/")
        }
        5 => Value::Array((0..rng.random_range(0..4)).map(|_| random_value(rng, depth - 1)).collect()),
        _ => Value::Object((0..rng.random_range(0..6)).map(|_| (NAMES[rng.random_range(0..NAMES.len())].to_owned(), random_value(rng, depth - 1))).collect()),
    }
}

#[test]
fn entry_bytes_match_an_independent_rfc8785_implementation() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::rng().random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..2000 {
        let mut v = event_value();
        let Value::Object(meta) = random_value(&mut rng, 3) else { continue };
        v["metadata"] = Value::Object(meta);
        if i % 3 == 0 {
            v["parents"] = json!([digest('c'), digest('d')]);
        }
        if i % 5 == 0 {
            v["proof"] = json!({"kind": "risc0-composite\u{1}", "receipt_digest": digest('e'), "image_id": "f".repeat(64), "journal_digest": digest('0')});
        }
        v["type"] = json!(format!("t\u{0}{i}\u{e9}"));
        let event = Event::from_entry(line_of(&v).as_bytes()).unwrap();
        let ours = event.canonical_bytes().unwrap();
        let theirs = serde_json_canonicalizer::to_vec(&event).unwrap();
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "seed {seed}, event {i}");
        assert_eq!(zkaudit_event::jcs::to_string(&v).unwrap(), serde_json_canonicalizer::to_string(&v).unwrap(), "seed {seed}, value {i}");
    }
}

// ---------------------------------------------------------------------------
// The streaming, parallel reader
// ---------------------------------------------------------------------------

/// Hands out at most `step` bytes per read, as a pipe does.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn lines_longer_than_a_block_and_short_reads_are_read_whole() {
    // Whitespace is not part of the entry, so a line of megabytes can
    // still be a small event; it spans several of the reader's 1 MiB
    // blocks, arriving 100,000 or 4,096 bytes per read.
    let mut text = String::new();
    for i in 0..40 {
        let mut v = event_value();
        v["metadata"] = json!({"i": i});
        let line = line_of(&v);
        let pad = if i % 10 == 3 { 2_500_000 } else { i * 7 };
        text += &line.replacen(',', &format!(",{}", " ".repeat(pad)), 1);
        text += "\n";
    }
    let serial = parse(&text).unwrap();
    assert_eq!(serial.len(), 40);
    for step in [100_000, 4_096] {
        assert_eq!(parse_parallel_from(Trickle { data: text.as_bytes(), step }, text.len(), 2).unwrap(), serial, "{step} bytes per read");
    }
}

/// Collects an entry as the parallel reader's sink receives it.
fn push_entry(block: &mut Vec<Vec<u8>>, entry: &[u8]) -> Result<(), String> {
    block.push(entry.to_vec());
    Ok(())
}

/// Runs the parallel reader and collects what its sink received.
fn parse_parallel(input: &[u8], threads: usize) -> Result<Vec<Vec<u8>>, BatchError> {
    parse_parallel_from(input, input.len(), threads)
}

/// The parallel reader's entries from `reader`, which holds `len` bytes.
fn parse_parallel_from(reader: impl std::io::Read + Send, len: usize, threads: usize) -> Result<Vec<Vec<u8>>, BatchError> {
    let mut out = Vec::new();
    let mut last_bytes = 0;
    let n = zkaudit_event::parse_jsonl_parallel(reader, SOURCE, threads, push_entry, |block: Vec<Vec<u8>>, count, bytes| {
        assert_eq!(count, block.len());
        assert!(bytes >= last_bytes, "progress goes forward");
        last_bytes = bytes;
        out.extend(block);
        true
    })?;
    assert_eq!(n as usize, out.len());
    assert_eq!(last_bytes as usize, len, "progress reaches the end of the input");
    Ok(out)
}

#[test]
fn the_parallel_reader_equals_the_serial_one() {
    // Several blocks of about 1 MiB, lines of varying length, blank lines,
    // CRLF endings and no newline at the end.
    let mut text = String::new();
    for i in 0..12_000 {
        let mut v = event_value();
        v["metadata"] = json!({"i": i, "pad": "p".repeat(i % 300)});
        text += &line_of(&v);
        text += match i % 97 {
            0 => "\r\n",
            1 => "\n\n",
            _ => "\n",
        };
    }
    text.pop();
    let serial = parse(&text).unwrap();
    assert_eq!(serial.len(), 12_000);
    for threads in [1, 2, 3] {
        assert_eq!(parse_parallel(text.as_bytes(), threads).unwrap(), serial, "{threads} threads");
    }
    assert!(parse_parallel(b"", 2).unwrap().is_empty());
}

#[test]
fn the_parallel_reader_reports_the_same_bad_lines_and_stops_feeding() {
    let good = line_of(&event_value());
    // Bad lines in the second and a later block: line numbers stay exact.
    let mut lines: Vec<String> = (0..8000).map(|_| good.clone()).collect();
    lines[4000] = "{not json".into();
    lines[7000] = without("layer");
    lines[7999] = "\u{0}".into();
    let text = lines.join("\n");
    let Err(BatchError::Malformed { errors: serial, total }) = parse(&text) else { panic!("serial parse accepted bad lines") };
    assert_eq!(total, 3);
    let mut fed = 0;
    let r = zkaudit_event::parse_jsonl_parallel(text.as_bytes(), SOURCE, 2, push_entry, |block: Vec<Vec<u8>>, _, _| {
        fed += block.len();
        true
    });
    let Err(BatchError::Malformed { errors, total }) = r else { panic!("parallel parse accepted bad lines") };
    assert_eq!((errors, total), (serial, 3));
    assert_eq!(errors_lines(&parse(&text)), [4001, 7001, 8000]);
    assert!(fed <= 4000, "entries after the first bad line were fed: {fed}");
    // A sink that says stop: reading ends early, without an error.
    let mut blocks = 0;
    let big: String = (0..20_000).map(|_| good.clone() + "\n").collect();
    zkaudit_event::parse_jsonl_parallel(big.as_bytes(), SOURCE, 2, push_entry, |_, _, _| {
        blocks += 1;
        false
    })
    .unwrap();
    assert_eq!(blocks, 1);
    // An entry the block refuses is its line's error.
    let mut marked = event_value();
    marked["metadata"] = json!({"note": "refuse me"});
    let mut lines: Vec<String> = (0..9000).map(|_| good.clone()).collect();
    (lines[3], lines[8500]) = (line_of(&marked), line_of(&marked));
    let refusing = |block: &mut Vec<Vec<u8>>, entry: &[u8]| {
        if entry.windows(9).any(|w| w == b"refuse me") {
            return Err("refused by the block");
        }
        push_entry(block, entry).map_err(|_| "unreachable")
    };
    let r = zkaudit_event::parse_jsonl_parallel(lines.join("\n").as_bytes(), SOURCE, 2, refusing, |_, _, _| true);
    let Err(BatchError::Malformed { errors, total }) = r else { panic!("a refused entry was accepted") };
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!((got, total), (vec![(4, "refused by the block"), (8501, "refused by the block")], 2));
}

fn errors_lines(r: &Result<Vec<Vec<u8>>, BatchError>) -> Vec<usize> {
    match r {
        Err(BatchError::Malformed { errors, .. }) => errors.iter().map(|e| e.line).collect(),
        _ => Vec::new(),
    }
}
