//! Compliance reports as JSON and as a printable HTML page. The HTML is
//! rendered from the JSON, so both always say the same thing.

use serde_json::{json, Value};
use zkaudit_tlog::LogReader;

use crate::evidence::{checkpoint_json, events_json};
use crate::pack::{Report, Verdict};

/// The report as JSON: pack identity, engine (zkaudit version and prelude
/// hash), checkpoint, window, parameters, one
/// object per rule (verdict, events, violations), a summary, and evidence
/// (entry and inclusion proof) for every event named.
///
/// `window` is `(from, to)` as given on the command line, if any.
pub fn to_json(r: &Report, file: &str, reader: &LogReader, window: Option<(&str, &str)>) -> Result<Value, zkaudit_tlog::Error> {
    let mut all: Vec<u64> = r.rules.iter().flat_map(|x| x.events.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    let count = |v: Verdict| r.rules.iter().filter(|x| x.verdict == v).count();
    Ok(json!({
        "pack": { "name": r.name, "version": r.version, "title": r.title, "sha256": r.sha256, "file": file },
        "engine": { "zkaudit": env!("CARGO_PKG_VERSION"), "prelude_sha256": crate::prelude_sha256() },
        "checkpoint": checkpoint_json(reader),
        "window": window.map(|(f, t)| json!({ "from": f, "to": t })),
        "params": r.params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "rules": r.rules.iter().map(|x| json!({
            "id": x.id,
            "description": x.description,
            "verdict": x.verdict.as_str(),
            "events": x.events,
            "violations": x.violations.iter().map(|v| json!({ "leaf_index": v.leaf_index, "reason": v.reason })).collect::<Vec<_>>(),
            "measures": x.measures.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "summary": { "pass": count(Verdict::Pass), "fail": count(Verdict::Fail), "no_evidence": count(Verdict::NoEvidence) },
        "evidence": events_json(reader, &all)?,
    }))
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// A self-contained HTML page for a report made by [`to_json`]: a summary,
/// one section per rule with its violating events (type, timestamp,
/// reason) or the events it rests on, and the checkpoint note. It has a
/// print stylesheet (A4, no backgrounds needed, rules kept on one page).
pub fn to_html(report: &Value) -> String {
    let events: std::collections::BTreeMap<u64, Value> = report["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["leaf_index"].as_u64()?, serde_json::from_str(e["entry"].as_str()?).ok()?)))
        .collect();
    let pack = &report["pack"];
    let cp = &report["checkpoint"];
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str(&format!("<title>{} {} compliance report</title>\n", esc(s(pack, "name")), esc(s(pack, "version"))));
    h.push_str(
        "<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f1f1}code,pre{font:12px/1.35 ui-monospace,monospace;word-break:break-all}
.pass{color:#0a6b2d;font-weight:600}.fail{color:#b00020;font-weight:600}.no_evidence{color:#8a5a00;font-weight:600}
.meta td:first-child{width:11rem;color:#444}section{break-inside:avoid}pre{white-space:pre-wrap;background:#f7f7f7;padding:.5rem}
@media print{body{margin:0;max-width:none;font-size:11pt}th{background:none}a{color:inherit}@page{size:A4;margin:15mm}}
</style></head><body>\n",
    );
    h.push_str(&format!("<h1>{} — compliance report</h1>\n<p>{}</p>\n<table class=\"meta\">\n", esc(s(pack, "name")), esc(s(pack, "title"))));
    let row = |h: &mut String, k: &str, v: String| h.push_str(&format!("<tr><td>{k}</td><td>{v}</td></tr>\n"));
    row(&mut h, "Pack", format!("{} version {} (<code>{}</code>)", esc(s(pack, "name")), esc(s(pack, "version")), esc(s(pack, "file"))));
    row(&mut h, "Pack SHA-256", format!("<code>{}</code>", esc(s(pack, "sha256"))));
    let engine = &report["engine"];
    row(&mut h, "Engine", format!("zkaudit {}, prelude SHA-256 <code>{}</code>", esc(s(engine, "zkaudit")), esc(s(engine, "prelude_sha256"))));
    row(&mut h, "Log origin", format!("<code>{}</code>", esc(s(cp, "origin"))));
    row(&mut h, "Checkpoint", format!("tree size {}, root hash <code>{}</code>", cp["tree_size"], esc(s(cp, "root_hash"))));
    let window = match &report["window"] {
        Value::Object(_) => format!("{} to {}", esc(s(&report["window"], "from")), esc(s(&report["window"], "to"))),
        _ => "the whole log".to_owned(),
    };
    row(&mut h, "Window", window);
    let params: Vec<String> =
        report["params"].as_object().into_iter().flatten().map(|(k, v)| format!("{} = {}", esc(k), esc(v.as_str().unwrap_or("")))).collect();
    row(&mut h, "Parameters", params.join("<br>"));
    let sum = &report["summary"];
    row(&mut h, "Summary", format!("{} pass, {} fail, {} without evidence", sum["pass"], sum["fail"], sum["no_evidence"]));
    h.push_str("</table>\n<h2>Verdicts</h2>\n<table><tr><th>Rule</th><th>Requirement</th><th>Verdict</th><th>Events</th></tr>\n");
    let rules = report["rules"].as_array().cloned().unwrap_or_default();
    for r in &rules {
        let v = s(r, "verdict");
        h.push_str(&format!(
            "<tr><td><a href=\"#rule-{id}\">{id}</a></td><td>{}</td><td class=\"{v}\">{}</td><td>{}</td></tr>\n",
            esc(s(r, "description")),
            v.replace('_', " ").to_uppercase(),
            r["events"].as_array().map_or(0, Vec::len),
            id = esc(s(r, "id")),
        ));
    }
    h.push_str("</table>\n");
    let describe = |i: u64| match events.get(&i) {
        Some(e) => (esc(e["type"].as_str().unwrap_or("")), esc(e["timestamp"].as_str().unwrap_or(""))),
        None => (String::new(), String::new()),
    };
    for r in &rules {
        let v = s(r, "verdict");
        h.push_str(&format!(
            "<section id=\"rule-{id}\"><h2>{id}: <span class=\"{v}\">{}</span></h2>\n<p>{}</p>\n",
            v.replace('_', " ").to_uppercase(),
            esc(s(r, "description")),
            id = esc(s(r, "id")),
        ));
        let measures: Vec<String> =
            r["measures"].as_array().into_iter().flatten().map(|m| format!("{} = <strong>{}</strong>", esc(s(m, "name")), esc(s(m, "value")))).collect();
        if !measures.is_empty() {
            h.push_str(&format!("<p>Measured: {}</p>\n", measures.join("; ")));
        }
        let violations = r["violations"].as_array().cloned().unwrap_or_default();
        if !violations.is_empty() {
            h.push_str("<table><tr><th>Leaf index</th><th>Type</th><th>Timestamp</th><th>Violation</th></tr>\n");
            for x in &violations {
                let i = x["leaf_index"].as_u64().unwrap_or(0);
                let (ty, ts) = describe(i);
                h.push_str(&format!("<tr><td>{i}</td><td>{ty}</td><td>{ts}</td><td><code>{}</code></td></tr>\n", esc(s(x, "reason"))));
            }
            h.push_str("</table>\n");
        }
        let used: Vec<u64> = r["events"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
        if !used.is_empty() {
            h.push_str(&format!("<p>Rests on {} event(s), by leaf index: ", used.len()));
            let shown: Vec<String> = used.iter().take(200).map(u64::to_string).collect();
            h.push_str(&shown.join(", "));
            if used.len() > 200 {
                h.push_str(&format!(", … ({} more in the JSON report)", used.len() - 200));
            }
            h.push_str("</p>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str(&format!(
        "<h2>Checkpoint</h2>\n<p>Every event above has an RFC 9162 inclusion proof against this signed checkpoint in the JSON report; \
         <code>zkaudit log check-inclusion</code> re-checks each one.</p>\n<pre>{}</pre>\n</body></html>\n",
        esc(s(cp, "note"))
    ));
    h
}
