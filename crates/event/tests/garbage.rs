//! The event parser never panics: random mutations of a valid line are
//! either rejected with a line error or yield canonical entries that read
//! back to the same bytes.

use rand::{Rng, SeedableRng};
use zkaudit_event::{parse_jsonl, Event};

const LINE: &str = r#"{"version":"1.0","timestamp":"2026-01-29T12:20:23.925000001-05:00","layer":"network","type":"failover","input":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","output":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","metadata":{"ms":73,"ok":false,"x":[1.5,"é",null]},"parents":["sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"]}"#;

#[test]
fn mutated_lines_never_panic_and_accepted_ones_are_canonical() {
    let seed: u64 = rand::rng().random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let mut b = LINE.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..3) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => b[i] = rng.random_range(0x20..0x7f),
                1 => {
                    b.remove(i);
                }
                _ => {
                    let json_chars = b"{}[],:\"\\0e-.";
                    b.insert(i, json_chars[rng.random_range(0..json_chars.len())]);
                }
            }
        }
        match parse_jsonl(&b[..], "fuzz") {
            Ok(entries) => {
                accepted += 1;
                for e in entries {
                    let back = Event::from_entry(&e).expect("an accepted entry reads back");
                    assert_eq!(back.canonical_bytes().unwrap(), e, "entry bytes are a fixed point of canonicalisation");
                }
            }
            Err(e) => {
                rejected += 1;
                assert!(e.to_string().contains("fuzz:1"), "error names the line: {e}");
            }
        }
    }
    eprintln!("{accepted} accepted, {rejected} rejected");
}

#[test]
fn invalid_utf8_is_a_line_error() {
    let mut input = format!("{LINE}\n").into_bytes();
    input.extend_from_slice(b"{\"version\":\"1.\xff0\"}\n");
    let err = parse_jsonl(&input[..], "in.jsonl").unwrap_err().to_string();
    assert!(err.contains("in.jsonl:2:15: invalid UTF-8"), "{err}");
}
