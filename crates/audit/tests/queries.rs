//! Prolog queries over a real log and SQLite index.

use std::path::PathBuf;

use zkaudit_audit::{term, Engine, Options, QueryError};
use zkaudit_index::Sqlite;
use zkaudit_tlog::LogReader;

#[path = "../../../tests-support/events.rs"]
mod events;
use events::append_stream;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Fixture {
    fn new(streams: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        zkaudit_tlog::init(&dir, "audit.test/log").unwrap();
        for s in streams {
            append_stream(&dir, s);
        }
        Self { _tmp: tmp, dir }
    }

    fn engine(&self, opts: Options) -> Engine {
        let reader = LogReader::open(&self.dir).unwrap();
        let mut index = Sqlite::open(&self.dir.join("index.sqlite")).unwrap();
        zkaudit_index::sync(&mut index, &reader, &mut |_| {}).unwrap();
        let vkey = zkaudit_tlog::read_vkey(&self.dir).unwrap();
        Engine::new(&zkaudit_tlog::LedgerDir::new(&self.dir), reader, Box::new(index), vkey, None, opts)
    }
}

/// The answers as `Name = text` strings, one line per answer.
fn texts(e: &mut Engine, goal: &str) -> Vec<String> {
    e.query(goal)
        .unwrap_or_else(|err| panic!("{goal}: {err}"))
        .answers
        .iter()
        .map(|a| match a.bindings.is_empty() {
            true => "true".to_owned(),
            false => a.bindings.iter().map(|(k, v)| format!("{k} = {}", term::text(v))).collect::<Vec<_>>().join(", "),
        })
        .collect()
}

#[test]
fn events_and_metadata_load_on_demand_with_evidence() {
    let f = Fixture::new(&["telecoms", "trading"]);
    let mut e = f.engine(Options::default());
    let got = texts(&mut e, "event(I, _, _, failover, _, _), meta(I, duration_ms, Ms)");
    assert_eq!(got, ["I = 12, Ms = 18", "I = 31, Ms = 42", "I = 54, Ms = 73"]);
    // Only the failovers were loaded, not the log.
    assert_eq!(e.loaded_events(), 3);
    let out = e.query("event(I, _, _, failover, _, _), meta(I, duration_ms, Ms), Ms > 50.").unwrap();
    assert_eq!(out.answers.len(), 1);
    assert_eq!(out.answers[0].events, [54], "the answer names the event it rests on");

    // Evidence: each named event with an inclusion proof against the checkpoint.
    let ev = zkaudit_audit::evidence::events_json(e.reader(), &out.answers[0].events).unwrap();
    let p = &ev[0]["inclusion_proof"];
    assert_eq!(p["tree_size"], 85);
    let hashes: Vec<[u8; 32]> = p["hashes"].as_array().unwrap().iter().map(|h| hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap()).collect();
    let entry = ev[0]["entry"].as_str().unwrap();
    assert!(entry.contains("\"duration_ms\":73"));
    let root = e.reader().checkpoint().root;
    zkaudit_merkle::verify_inclusion(&zkaudit_merkle::leaf_hash(entry.as_bytes()), 54, 85, &hashes, &root).unwrap();

    // Precision and timestamp text; a bound index; counting with findall.
    assert_eq!(texts(&mut e, "event(I, _, _, order_executed, _, _), timestamp(I, _, P), P > 1000"), ["I = 78, P = 1000000"]);
    assert_eq!(texts(&mut e, "event(54, T, L, Ty, _, _)"), ["T = 1769166000000000000, L = network, Ty = failover"]);
    assert_eq!(texts(&mut e, "findall(I, event(I, _, network, _, _, _), L), length(L, N)").len(), 1);
    assert_eq!(texts(&mut e, "findall(I, event(I, _, network, _, _, _), L), length(L, N), N = X")[0].split(", ").last(), Some("X = 71"));
    // An unbound type loads everything.
    assert_eq!(texts(&mut e, "findall(I, event(I, _, _, _, _, _), L), length(L, N), N = X")[0].split(", ").last(), Some("X = 85"));
    assert_eq!(e.loaded_events(), 85);
}

#[test]
fn errors_are_clear_and_do_not_poison_the_next_query() {
    let f = Fixture::new(&["gmp"]);
    let mut e = f.engine(Options { inference_limit: 1_000_000, ..Options::default() });
    let ok = "event(I, _, _, batch_record, _, _)";
    assert_eq!(texts(&mut e, ok).len(), 3);

    for (bad, want) in [
        ("event(I, _, _", "syntax error"),
        ("event(I,, _)", "syntax error"),
        ("foo(X)", "existence_error"),
        ("X is 1 + a", "type_error"),
        ("atom_length(X, Y)", "instantiation_error"),
        ("throw(my_ball)", "my_ball"),
    ] {
        let err = e.query(bad).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
        assert_eq!(texts(&mut e, ok).len(), 3, "the query after {bad:?} still works");
    }
    let r = e.query("length(L, N), N < 0");
    assert!(matches!(r, Err(QueryError::Inferences(1_000_000))), "{r:?}");
    assert_eq!(texts(&mut e, ok).len(), 3);
    // Quotes and backslashes in the query text are the query's own.
    assert_eq!(texts(&mut e, r#"atom_length('it''s \\ "x"', N)"#), ["N = 10"]);
}

#[test]
fn limits_on_answers_and_events() {
    let f = Fixture::new(&["itil"]);
    let mut e = f.engine(Options { max_answers: 5, max_events: 40, ..Options::default() });
    let out = e.query("event(I, _, _, service_check, _, _)").unwrap_err();
    assert!(matches!(out, QueryError::TooManyEvents { limit: 40, .. }), "{out}");
    let out = e.query("event(I, _, _, incident_opened, _, _) ; event(I, _, _, incident_responded, _, _)").unwrap();
    assert_eq!(out.answers.len(), 5);
    assert!(out.truncated);
}

#[test]
fn trace_replay_integrity_and_proofs() {
    let f = Fixture::new(&["trading", "gmp"]);
    let mut e = f.engine(Options::default());
    // Lineage: ticket -> routed (order_submitted) -> fill (order_executed).
    let ticket = "sha256:10783d3539cf042810a97bcd7d18894dbb12d2d1c9cb634bddd3d9a546b0d338";
    // The execution lists the ticket among its parents: one hop.
    let got = texts(&mut e, &format!("event(1, _, _, order_executed, _, Out), zkaudit_trace('{ticket}', Out, P)"));
    assert_eq!(got[0].split(", ").last(), Some("P = [1]"));
    let got = texts(&mut e, &format!("event(0, _, _, _, _, Routed), zkaudit_trace('{ticket}', Routed, P)"));
    assert_eq!(got[0].split(", ").last(), Some("P = [0]"));
    let got = e.query(&format!("event(1, _, _, _, _, Out), zkaudit_trace('{ticket}', Out, P)")).unwrap();
    assert_eq!(got.answers[0].events, [1]);
    // Replay a change by its metadata.
    let got = texts(&mut e, "zkaudit_replay(meta(change_id, 'CR-312'), S)");
    assert_eq!(
        got,
        ["S = [step(23,1770706800000000000,change_request),step(25,1770714000000000000,change_implemented),step(27,1770724800000000000,change_approved)]"]
    );
    // No proof events here: zkaudit/2 has no answer.
    assert!(texts(&mut e, "zkaudit(computation(X), P)").is_empty());
    assert_eq!(texts(&mut e, "zkaudit_integrity(log)"), ["true"]);
    // Enumerating gives both scopes; an unknown one is an error naming them, not `false`.
    assert_eq!(texts(&mut e, "zkaudit_integrity(S)"), ["S = checkpoint", "S = log"]);
    let err = e.query("zkaudit_integrity(all)").unwrap_err().to_string();
    assert!(err.contains("integrity_scope") && err.contains("checkpoint") && err.contains("log") && err.contains("all"), "{err}");
    assert_eq!(texts(&mut e, "zkaudit_integrity(checkpoint)"), ["true"], "the engine stays usable");

    // Damage one entry bundle: integrity fails (the checkpoint still verifies).
    let bundle = f.dir.join("tile/entries/000.p/28");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&bundle, bytes).unwrap();
    let mut e = f.engine(Options::default());
    assert!(texts(&mut e, "zkaudit_integrity(log)").is_empty());
    assert_eq!(texts(&mut e, "zkaudit_integrity(checkpoint)"), ["true"]);
}
