//! Plans end to end on the native interpreter: the examples against outputs
//! computed independently (examples/reference.py, Python's decimal module),
//! every step kind, run-time errors, and located validation errors.

use std::path::{Path, PathBuf};

use zkaudit_merkle::Sha2;
use zkaudit_plan::source::{Located, PlanFile};
use zkaudit_plan::{data, records, Bounds, Intake, RunError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a plan over data files; returns (full output, public output, data root).
fn run_files(plan: &PlanFile, data: &[(&str, PathBuf)]) -> Result<(String, String, [u8; 32]), String> {
    let program = plan.compile(&Bounds::default()).map_err(|e| format!("{e:?}"))?;
    let mut words = Vec::new();
    for spec in &program.inputs {
        let path = &data.iter().find(|(n, _)| *n == spec.id).expect("test names every input").1;
        let t = data::load(spec, path).map_err(|e| e.to_string())?;
        words.push(records::encode(spec, &t));
    }
    let sized: Vec<(usize, &[u32])> = program.inputs.iter().zip(&words).map(|(s, w)| (s.record_words(), w.as_slice())).collect();
    let c = records::commit(&Sha2, &sized);
    let (j, out) = zkaudit_plan::finish(&program, &plan.hash, &c.data_root, &words, &Sha2).map_err(|e| e.to_string())?;
    assert_eq!(j.output, out.public);
    Ok((String::from_utf8(out.output).unwrap(), String::from_utf8(out.public).unwrap(), c.data_root))
}

fn run_inline(yaml: &str, data: &[(&str, &str)]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let plan = PlanFile::parse("t.yaml", yaml, false).map_err(|e| format!("{e:?}"))?;
    let files: Vec<(&str, PathBuf)> = data
        .iter()
        .map(|(n, text)| {
            let p = dir.path().join(format!("{n}.csv"));
            std::fs::write(&p, text).unwrap();
            (*n, p)
        })
        .collect();
    run_files(&plan, &files).map(|r| r.0)
}

fn example(name: &str, input: &str, data: PathBuf) -> (String, String) {
    let plan = PlanFile::load(&root().join(format!("examples/{name}/plan.yaml"))).expect("example parses");
    let (full, public, _) = run_files(&plan, &[(input, data)]).expect("example runs");
    (full, public)
}

fn expected(name: &str, file: &str) -> String {
    std::fs::read_to_string(root().join(format!("examples/{name}/{file}"))).unwrap()
}

#[test]
fn examples_match_the_independent_reference() {
    let shared = root().join("../shared/data");
    let (full, public) = example("income-threshold", "payments", root().join("examples/income-threshold/payments.csv"));
    assert_eq!(full, expected("income-threshold", "expected-output.json"));
    assert_eq!(public, expected("income-threshold", "expected-public.json"));
    let (full, _) = example("stocks-summary", "prices", shared.join("stocks.csv"));
    assert_eq!(full, expected("stocks-summary", "expected-output.json"));
    let (full, _) = example("seattle-weather", "weather", shared.join("seattle-weather.csv"));
    assert_eq!(full, expected("seattle-weather", "expected-output.json"));
    let (full, _) = example("stocks-count", "prices", shared.join("stocks.csv"));
    assert_eq!(full, expected("stocks-count", "expected-output.json"));
}

#[test]
fn job_request_hashes_are_the_request_files_digests() {
    for name in ["income-threshold", "stocks-summary", "seattle-weather", "stocks-count"] {
        let plan = PlanFile::load(&root().join(format!("examples/{name}/plan.yaml"))).unwrap();
        let req = std::fs::read(root().join(format!("examples/{name}/request.txt"))).unwrap();
        let digest = zkaudit_plan::value::hex(&zkaudit_merkle::Hasher::sha256(&Sha2, &req));
        assert_eq!(plan.plan.job_request_hash, format!("sha256:{digest}"), "{name}");
    }
}

#[test]
fn json_and_yaml_of_one_plan_hash_alike() {
    let yaml = std::fs::read_to_string(root().join("examples/stocks-summary/plan.yaml")).unwrap();
    let y = PlanFile::parse("p.yaml", &yaml, false).unwrap();
    let json = serde_json::to_string_pretty(&serde_json::from_slice::<serde_json::Value>(&y.jcs).unwrap()).unwrap();
    let j = PlanFile::parse("p.json", &json, true).unwrap();
    assert_eq!(y.hash, j.hash);
    assert_eq!(y.plan, j.plan);
    // Any change to the plan changes its hash.
    let other = PlanFile::parse("p.yaml", &yaml.replace("100.00", "100.01"), false).unwrap();
    assert_ne!(other.hash, y.hash);
}

#[test]
fn one_changed_record_changes_the_data_root() {
    let plan = PlanFile::load(&root().join("examples/stocks-summary/plan.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("../shared/data/stocks.csv")).unwrap();
    let changed = dir.path().join("stocks.csv");
    std::fs::write(&changed, text.replacen("MSFT,Jan 1 2000,39.81", "MSFT,Jan 1 2000,39.82", 1)).unwrap();
    let (_, _, a) = run_files(&plan, &[("prices", root().join("../shared/data/stocks.csv"))]).unwrap();
    let (_, _, b) = run_files(&plan, &[("prices", changed)]).unwrap();
    assert_ne!(a, b);
}

const HEADER: &str = "version: '1.0'\nid: t\njobRequestHash: 'sha256:0000000000000000000000000000000000000000000000000000000000000000'\nlimits: {maxCycles: 1000000, maxMemoryBytes: 1000000, maxOutputBytes: 10000}\n";

fn plan(body: &str) -> String {
    format!("{HEADER}{body}")
}

const NUMS: &str = "  - type: data-input\n    id: t\n    schema:\n      - {name: k, type: enum, values: [a, b, c]}\n      - {name: x, type: int}\n      - {name: d, type: decimal, scale: 2}\n";
const NUMS_CSV: &str = "k,x,d\nb,3,1.50\na,-2,0.25\nb,10,-3\nc,7,2.5\n";

#[test]
fn transforms_filters_and_compute() {
    let p = plan(&format!(
        "steps:\n{NUMS}  - {{type: transform, id: m, input: t, operation: {{op: map, column: y, expression: {{mul: [{{col: x}}, {{col: d}}]}}}}}}\n  - {{type: filter, id: f, input: m, predicate: {{gt: [{{col: y}}, {{decimal: '0'}}]}}}}\n  - {{type: compute, id: c, input: f, columns: [{{name: z, expression: {{add: [{{col: y}}, {{int: 1}}]}}}}, {{name: big, expression: {{ge: [{{col: z}}, {{int: 5}}]}}}}]}}\n  - {{type: transform, id: s, input: c, operation: {{op: select, fields: [k, z, big]}}}}\n  - {{type: transform, id: r, input: s, operation: {{op: rename, mapping: {{z: total}}}}}}\noutput: {{step: r}}\n"
    ));
    assert_eq!(run_inline(&p, &[("t", NUMS_CSV)]).unwrap(), r#"[{"big":true,"k":"b","total":"5.50"},{"big":true,"k":"c","total":"18.50"}]"#);
}

#[test]
fn grouped_and_ungrouped_reduce() {
    let p = plan(&format!(
        "steps:\n{NUMS}  - type: aggregate\n    id: g\n    operation:\n      op: reduce\n      input: t\n      groupBy: [k]\n      aggregations:\n        - {{name: n, fn: count}}\n        - {{name: s, fn: sum, column: x}}\n        - {{name: lo, fn: min, column: d}}\n        - {{name: hi, fn: max, column: d}}\n        - {{name: avg, fn: mean, column: x, scale: 1}}\n        - {{name: pos, fn: count, filter: {{gt: [{{col: x}}, {{int: 0}}]}}}}\noutput: {{step: g}}\n"
    ));
    assert_eq!(
        run_inline(&p, &[("t", NUMS_CSV)]).unwrap(),
        r#"[{"avg":"-2.0","hi":"0.25","k":"a","lo":"0.25","n":1,"pos":0,"s":-2},{"avg":"6.5","hi":"1.50","k":"b","lo":"-3.00","n":2,"pos":2,"s":13},{"avg":"7.0","hi":"2.50","k":"c","lo":"2.50","n":1,"pos":1,"s":7}]"#
    );
    let p = plan(&format!(
        "steps:\n{NUMS}  - {{type: aggregate, id: g, operation: {{op: reduce, input: t, aggregations: [{{name: m, fn: mean, column: d}}]}}}}\noutput: {{step: g}}\n"
    ));
    // (1.50 + 0.25 - 3.00 + 2.50) / 4 = 0.3125 → 0.31
    assert_eq!(run_inline(&p, &[("t", NUMS_CSV)]).unwrap(), r#"{"m":"0.31"}"#);
}

#[test]
fn concat_merge_branch_and_loop() {
    let p = plan(&format!(
        "steps:\n{NUMS}  - {{type: filter, id: lo, input: t, predicate: {{lt: [{{col: x}}, {{int: 5}}]}}}}\n  - {{type: filter, id: hi, input: t, predicate: {{ge: [{{col: x}}, {{int: 5}}]}}}}\n  - {{type: aggregate, id: both, operation: {{op: concat, inputs: [hi, lo]}}}}\n  - {{type: aggregate, id: cnt, operation: {{op: reduce, input: both, groupBy: [k], aggregations: [{{name: n, fn: count}}]}}}}\n  - {{type: aggregate, id: sum, operation: {{op: reduce, input: t, groupBy: [k], aggregations: [{{name: s, fn: sum, column: x}}]}}}}\n  - {{type: aggregate, id: j, operation: {{op: merge, inputs: [cnt, sum], on: [k]}}}}\noutput: {{step: j}}\n"
    ));
    assert_eq!(run_inline(&p, &[("t", NUMS_CSV)]).unwrap(), r#"[{"k":"a","n":1,"s":-2},{"k":"b","n":2,"s":13},{"k":"c","n":1,"s":7}]"#);
    // A loop doubling a value until it passes 100, with a branch on the result.
    let p = plan(&format!(
        "steps:\n{NUMS}  - {{type: aggregate, id: s, operation: {{op: reduce, input: t, aggregations: [{{name: v, fn: sum, column: x}}, {{name: i, fn: count, filter: {{bool: false}}}}]}}}}\n  - {{type: loop, id: l, input: s, maxIterations: 50, until: {{gt: [{{col: v}}, {{int: 100}}]}}, update: [{{name: v, expression: {{mul: [{{col: v}}, {{int: 2}}]}}}}, {{name: i, expression: {{add: [{{col: i}}, {{int: 1}}]}}}}]}}\n  - {{type: compute, id: yes, input: l, columns: [{{name: tag, expression: {{sha256: [{{col: v}}, {{col: i}}]}}}}]}}\n  - {{type: compute, id: no, input: l, columns: [{{name: tag, expression: {{sha256: [{{col: i}}]}}}}]}}\n  - {{type: branch, id: b, input: l, condition: {{eq: [{{col: i}}, {{int: 3}}]}}, then: yes, else: no}}\noutput: {{step: b, public: [i, v]}}\n"
    ));
    // 18 → 36 → 72 → 144 after 3 iterations; tag = SHA-256(le64(144) ‖ le64(3)).
    let out = run_inline(&p, &[("t", NUMS_CSV)]).unwrap();
    let mut msg = 144i64.to_le_bytes().to_vec();
    msg.extend(3i64.to_le_bytes());
    let tag = zkaudit_plan::value::hex(&zkaudit_merkle::Hasher::sha256(&Sha2, &msg));
    assert_eq!(out, format!(r#"{{"i":3,"tag":"{tag}","v":144}}"#));
}

/// A compute step takes its input's table only when nothing else reads it
/// (here a reduce reads `t` after the compute has run), and a grouping key
/// repeated on consecutive rows, then again later, is one group.
#[test]
fn shared_inputs_and_repeated_keys() {
    let p = plan(&format!(
        "steps:\n{NUMS}  - {{type: compute, id: c, input: t, columns: [{{name: y, expression: {{mul: [{{col: x}}, {{int: 2}}]}}}}]}}\n  - {{type: aggregate, id: g, operation: {{op: reduce, input: c, groupBy: [d], aggregations: [{{name: n, fn: count}}, {{name: s, fn: sum, column: y}}]}}}}\n  - {{type: aggregate, id: raw, operation: {{op: reduce, input: t, groupBy: [d], aggregations: [{{name: x, fn: sum, column: x}}]}}}}\n  - {{type: aggregate, id: j, operation: {{op: merge, inputs: [g, raw], on: [d]}}}}\noutput: {{step: j}}\n"
    ));
    let csv = "k,x,d\nb,1,0.5\nb,2,0.5\na,3,1\nb,4,0.5\nc,5,2\nc,6,2\n";
    assert_eq!(run_inline(&p, &[("t", csv)]).unwrap(), r#"[{"d":"0.50","n":3,"s":14,"x":7},{"d":"1.00","n":1,"s":6,"x":3},{"d":"2.00","n":2,"s":22,"x":11}]"#);
}

/// A filter read by one reduce alone leaves its rows in place: the reduce
/// skips the dropped rows. Answers, errors and memory accounting must be
/// those of the gathered table.
#[test]
fn a_filter_feeding_one_reduce() {
    let filtered = |agg: &str, group: &str, pred: &str| {
        plan(&format!(
            "steps:\n{NUMS}  - {{type: filter, id: f, input: t, predicate: {pred}}}\n  - {{type: aggregate, id: g, operation: {{op: reduce, input: f, {group}aggregations: [{agg}]}}}}\noutput: {{step: g}}\n"
        ))
    };
    let positive = "{gt: [{col: x}, {int: 0}]}";
    // Grouped by an enum (direct slots) and by a decimal (the key map).
    let p = filtered("{name: n, fn: count}, {name: s, fn: sum, column: x}, {name: m, fn: mean, column: d}", "groupBy: [k], ", positive);
    assert_eq!(run_inline(&p, &[("t", NUMS_CSV)]).unwrap(), r#"[{"k":"b","m":"-0.75","n":2,"s":13},{"k":"c","m":"2.50","n":1,"s":7}]"#);
    let csv = "k,x,d\na,1,2\nb,-1,1\nc,2,2\na,3,1\nb,-4,2\n";
    let p = filtered("{name: n, fn: count}, {name: hi, fn: max, column: x}", "groupBy: [d], ", positive);
    assert_eq!(run_inline(&p, &[("t", csv)]).unwrap(), r#"[{"d":"1.00","hi":3,"n":1},{"d":"2.00","hi":2,"n":2}]"#);
    // Nothing kept: an ungrouped count is 0, a mean has no rows.
    let none = "{gt: [{col: x}, {int: 100}]}";
    assert_eq!(run_inline(&filtered("{name: n, fn: count}", "", none), &[("t", NUMS_CSV)]).unwrap(), r#"{"n":0}"#);
    assert_eq!(
        run_inline(&filtered("{name: m, fn: mean, column: x}", "", none), &[("t", NUMS_CSV)]).unwrap_err(),
        "step `g`, aggregation `m`: no rows to aggregate"
    );
    // An aggregation filter that can fail is only ever evaluated on kept
    // rows: 10 / x on the dropped row x = 0 must not be computed.
    let p = filtered("{name: q, fn: count, filter: {gt: [{div: [{int: 10}, {col: x}]}, {int: 1}]}}", "", positive);
    assert_eq!(run_inline(&p, &[("t", "k,x,d\na,0,1\nb,5,1\nb,20,1\n")]).unwrap(), r#"{"q":1}"#);
    // The filter is charged as its gathered rows: 96 bytes of input, then
    // 3 kept rows of 3 numbers (72), then one row of one number (8).
    let limited = |bytes: u64| filtered("{name: n, fn: count}", "", positive).replace("maxMemoryBytes: 1000000", &format!("maxMemoryBytes: {bytes}"));
    assert_eq!(run_inline(&limited(167), &[("t", NUMS_CSV)]).unwrap_err(), "step `f` brings table data to 168 bytes, over maxMemoryBytes 167");
    assert_eq!(run_inline(&limited(175), &[("t", NUMS_CSV)]).unwrap_err(), "step `g` brings table data to 176 bytes, over maxMemoryBytes 175");
    assert_eq!(run_inline(&limited(176), &[("t", NUMS_CSV)]).unwrap(), r#"{"n":3}"#);
}

/// Sums past the 64-bit range on the way: a sum or mean whose result fits
/// is exact, one whose result does not is an error (the interpreter keeps
/// 64-bit sums and spills into 128 bits only when one would overflow).
#[test]
fn sums_that_leave_the_64_bit_range_on_the_way() {
    let max = i64::MAX;
    let csv = format!("k,x,d\na,{max},0\na,{max},0\na,-{max},0\na,-{max},0\nb,{max},0\nb,{max},0\nc,-{max},0\nc,-{max},0\nc,-1,0\n");
    let agg = |f: &str| {
        plan(&format!(
            "steps:\n{NUMS}  - {{type: aggregate, id: g, operation: {{op: reduce, input: t, groupBy: [k], aggregations: [{{name: v, fn: {f}, column: x}}]}}}}\noutput: {{step: g}}\n"
        ))
    };
    // c: (-2·(2^63 - 1) - 1) / 3 = -(2^64 - 1) / 3.
    assert_eq!(
        run_inline(&agg("mean"), &[("t", &csv)]).unwrap(),
        format!(r#"[{{"k":"a","v":"0"}},{{"k":"b","v":"{max}"}},{{"k":"c","v":"-6148914691236517205"}}]"#)
    );
    assert_eq!(run_inline(&agg("sum"), &[("t", &csv)]).unwrap_err(), "step `g`, aggregation `v`: sum overflows a 64-bit value");
    let fits =
        csv.replace(&format!("b,{max},0\nb,{max},0\n"), "b,1,0\n").replace(&format!("c,-{max},0\nc,-{max},0\nc,-1,0\n"), &format!("c,-{max},0\nc,-1,0\n"));
    assert_eq!(run_inline(&agg("sum"), &[("t", &fits)]).unwrap(), format!(r#"[{{"k":"a","v":0}},{{"k":"b","v":1}},{{"k":"c","v":"{}"}}]"#, i64::MIN));
}

#[test]
fn run_time_errors_name_the_step_and_row() {
    let over = plan(&format!(
        "steps:\n{NUMS}  - {{type: transform, id: m, input: t, operation: {{op: map, column: y, expression: {{mul: [{{col: x}}, {{int: 4611686018427387904}}]}}}}}}\noutput: {{step: m}}\n"
    ));
    // 2^62 is beyond the I-JSON literal range: rejected before running.
    assert!(run_inline(&over, &[("t", NUMS_CSV)]).unwrap_err().contains("2^53"));
    let over = plan(&format!(
        "steps:\n{NUMS}  - {{type: transform, id: m, input: t, operation: {{op: map, column: y, expression: {{mul: [{{col: x}}, {{int: 9007199254740991}}, ]}}}}}}\n  - {{type: transform, id: m2, input: m, operation: {{op: map, column: z, expression: {{mul: [{{col: y}}, {{int: 9007199254740991}}]}}}}}}\noutput: {{step: m2}}\n"
    ));
    let e = run_inline(&over, &[("t", NUMS_CSV)]).unwrap_err();
    assert_eq!(e, "step `m2`, row 0: arithmetic overflow in `mul`");
    let div = plan(&format!(
        "steps:\n{NUMS}  - {{type: transform, id: m, input: t, operation: {{op: map, column: y, expression: {{div: [{{col: d}}, {{add: [{{col: x}}, {{int: 2}}]}}]}}}}}}\noutput: {{step: m}}\n"
    ));
    assert_eq!(run_inline(&div, &[("t", NUMS_CSV)]).unwrap_err(), "step `m`, row 1: division by zero");
    let bad = run_inline(&plan(&format!("steps:\n{NUMS}output: {{step: t}}\n")), &[("t", "k,x,d\nb,3,1.505\n")]).unwrap_err();
    assert!(bad.ends_with("t.csv:2:3: field `d`: `1.505` is not a decimal with at most 2 places within the 64-bit range"), "{bad}");
    let bad = run_inline(&plan(&format!("steps:\n{NUMS}output: {{step: t}}\n")), &[("t", "k,x,d\nb,3,1.5\nz,1,1\n")]).unwrap_err();
    assert!(bad.ends_with("t.csv:3:1: field `k`: `z` is not one of a, b, c"), "{bad}");
}

/// Records given to an `Intake` in pieces commit, decode and run exactly as
/// whole inputs do (the zkVM guest reads them a page at a time); errors
/// name records by their index in the whole input.
#[test]
fn records_taken_in_pieces_run_as_whole_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let text = plan(&format!("steps:\n{NUMS}  - {{type: aggregate, id: g, operation: {{op: reduce, input: t, groupBy: [k], aggregations: [{{name: s, fn: sum, column: x}}]}}}}\noutput: {{step: g}}\n"));
    let plan = PlanFile::parse("t.yaml", &text, false).unwrap();
    let program = plan.compile(&Bounds::default()).unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, NUMS_CSV).unwrap();
    let spec = &program.inputs[0];
    let words = records::encode(spec, &data::load(spec, &path).unwrap());
    let width = spec.record_words();
    let c = records::commit(&Sha2, &[(width, words.as_slice())]);
    let whole = zkaudit_plan::finish(&program, &plan.hash, &c.data_root, std::slice::from_ref(&words), &Sha2).unwrap();
    for per in [1, 2, 3] {
        let mut intake = Intake::new(&program);
        intake.begin(4, &Sha2).unwrap();
        for piece in words.chunks(per * width) {
            intake.push(piece, &Sha2).unwrap();
        }
        assert_eq!(intake.finish(&plan.hash, &c.data_root, &Sha2).unwrap(), whole, "{per} record(s) at a time");
    }
    // Record 2 (0-based) has an enum cell past the labels: found in the
    // second piece of two records.
    let mut bad = words.clone();
    bad[2 * width] = 7;
    let mut intake = Intake::new(&program);
    intake.begin(4, &Sha2).unwrap();
    intake.push(&bad[..2 * width], &Sha2).unwrap();
    let e = intake.push(&bad[2 * width..], &Sha2).unwrap_err();
    assert_eq!(e.to_string(), "input `t`, record 2, column `k`: enum cell is not a declared label");
    // A partial record, records before any input, a second input, and an
    // input never begun are refused.
    let mut intake = Intake::new(&program);
    assert!(matches!(intake.push(&words, &Sha2), Err(RunError::Exec(_))));
    intake.begin(4, &Sha2).unwrap();
    assert!(matches!(intake.push(&words[..width + 1], &Sha2), Err(RunError::Ragged { words: 6, width: 5, .. })), "{width}");
    assert!(matches!(intake.begin(4, &Sha2), Err(RunError::Exec(_))));
    assert!(matches!(Intake::new(&program).finish(&plan.hash, &c.data_root, &Sha2), Err(RunError::Exec(_))));
}

#[test]
fn declared_data_commitment_is_enforced() {
    let body = |c: &str| plan(&format!("steps:\n{NUMS}    dataCommitment: '{c}'\noutput: {{step: t}}\n"));
    let first = run_inline(&body(&"0".repeat(64)), &[("t", NUMS_CSV)]).unwrap_err();
    assert!(first.contains("does not match its dataCommitment"), "{first}");
    let computed = first.rsplit(' ').next().unwrap().to_string();
    assert!(run_inline(&body(&computed), &[("t", NUMS_CSV)]).is_ok());
}

fn errors(text: &str, json: bool) -> Vec<Located> {
    let f = match PlanFile::parse(if json { "p.json" } else { "p.yaml" }, text, json) {
        Err(e) => return e,
        Ok(f) => f,
    };
    f.compile(&Bounds::default()).expect_err("plan must be invalid")
}

fn at(e: &[Located]) -> Vec<(usize, usize, String)> {
    e.iter().map(|l| (l.line, l.column, l.message.clone())).collect()
}

#[test]
fn invalid_plans_are_reported_at_their_line_and_column() {
    // Several semantic errors in one run, each at its node.
    let yaml = plan(&format!(
        "steps:\n{NUMS}  - type: filter\n    id: f\n    input: nope\n    predicate: {{gt: [{{col: x}}, {{int: 1}}]}}\n  - type: filter\n    id: g\n    input: t\n    predicate: {{gt: [{{col: k}}, {{int: 1}}]}}\n  - type: filter\n    id: h\n    input: t\n    predicate: {{add: [{{col: x}}, {{col: missing}}]}}\noutput: {{step: zz}}\n"
    ));
    let e = at(&errors(&yaml, false));
    assert_eq!(e[0], (14, 12, "no step has the ID `nope`".into()), "{e:?}");
    assert_eq!(e[1], (24, 16, "the output step `zz` does not exist".into()), "{e:?}");
    assert_eq!(e[2], (19, 21, "cannot compare enum(a|b|c) with int".into()), "{e:?}");
    assert_eq!((e[3].0, e[3].1), (23, 39));
    assert!(e[3].2.starts_with("unknown column `missing`"), "{e:?}");

    // A cycle, reported with its path.
    let yaml = plan(&format!(
        "steps:\n{NUMS}  - {{type: filter, id: a, input: b, predicate: {{bool: true}}}}\n  - {{type: filter, id: b, input: a, predicate: {{bool: true}}}}\noutput: {{step: a}}\n"
    ));
    let e = at(&errors(&yaml, false));
    assert_eq!(e, vec![(12, 5, "dependency cycle: a → b → a".into())]);

    // Shape errors from serde, at the offending key.
    let yaml = plan(&format!("steps:\n{NUMS}  - {{type: filter, id: a, input: t, predicat: {{bool: true}}}}\noutput: {{step: a}}\n"));
    let e = at(&errors(&yaml, false));
    assert_eq!((e[0].0, e[0].1), (12, 37), "{e:?}");
    assert!(e[0].2.starts_with("unknown field `predicat`"), "{e:?}");

    // Limits beyond the bounds, and a missing output field.
    let json = r#"{
  "version": "1.0", "id": "x",
  "jobRequestHash": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
  "steps": [{"type": "data-input", "id": "t", "schema": [{"name": "x", "type": "int"}]}],
  "output": {"step": "t"},
  "limits": {"maxCycles": 0, "maxMemoryBytes": 99999999999, "maxOutputBytes": 10}
}"#;
    let e = at(&errors(json, true));
    assert_eq!(e[0], (6, 27, "maxCycles is 0; the configured bounds are 1 to 4294967296".into()));
    assert_eq!((e[1].0, e[1].1), (6, 48));

    // JSON syntax and duplicate keys.
    let e = at(&errors("{\"version\": \"1.0\",\n  \"id\": }", true));
    assert_eq!((e[0].0, e[0].1), (2, 9), "{e:?}");
    let e = at(&errors("{\"version\": \"1.0\",\n  \"version\": \"1.0\"}", true));
    assert_eq!(e[0], (2, 3, "duplicate key `version`".into()));
}

#[test]
fn diagnostics_carry_the_json_pointer_of_their_node() {
    // One error deep inside each kind of nested node; the key with `/` and
    // `~` is escaped (RFC 6901 §3).
    let yaml = plan(&format!(
        "steps:\n{NUMS}  - {{type: transform, id: r, input: t, operation: {{op: rename, mapping: {{'a/b~': y}}}}}}\n  - {{type: aggregate, id: g, operation: {{op: reduce, input: t, aggregations: [{{name: n, fn: count}}, {{name: p, fn: count, filter: {{and: [{{bool: true}}, {{gt: [{{col: k}}, {{int: 1}}]}}]}}}}]}}}}\n  - {{type: aggregate, id: j, operation: {{op: merge, inputs: [t, t], on: [x, nope]}}}}\n  - {{type: compute, id: c, input: t, columns: [{{name: z, expression: {{if: [{{bool: true}}, {{int: 1}}, {{year: [{{col: x}}]}}]}}}}]}}\noutput: {{step: c}}\n"
    ));
    let paths: Vec<String> = errors(&yaml, false).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "/steps/1/operation/mapping/a~1b~0",
            "/steps/2/operation/aggregations/1/filter/and/1/gt",
            "/steps/3/operation/on/1",
            "/steps/4/columns/0/expression/if/2/year/0",
        ]
    );
}

#[test]
fn plan_bytes_must_match_the_plan_hash() {
    let f = PlanFile::load(&root().join("examples/stocks-summary/plan.yaml")).unwrap();
    let mut wrong = f.hash;
    wrong[0] ^= 1;
    assert!(matches!(zkaudit_plan::prepare(&f.jcs, &wrong, &Sha2), Err(RunError::PlanHash { .. })));
    assert!(zkaudit_plan::prepare(&f.jcs, &f.hash, &Sha2).is_ok());
}

#[test]
fn steps_are_read_member_by_member_and_checked_against_their_kind() {
    use zkaudit_plan::ir::Step;
    let step = |json: &str| serde_json::from_str::<Step>(json).map_err(|e| e.to_string());

    // Every kind, in canonical (sorted) and in written order, and back out.
    let kinds = [
        r#"{"type":"data-input","id":"t","schema":[{"name":"x","type":"int"}],"dataCommitment":null}"#,
        r#"{"id":"m","input":"t","operation":{"column":"y","expression":{"col":"x"},"op":"map"},"type":"transform"}"#,
        r#"{"type":"transform","id":"s","input":"t","operation":{"op":"select","fields":["x"]}}"#,
        r#"{"type":"transform","id":"r","input":"t","operation":{"op":"rename","mapping":{"x":"y"}}}"#,
        r#"{"type":"filter","id":"f","input":"t","predicate":{"bool":true}}"#,
        r#"{"id":"g","operation":{"aggregations":[{"fn":"count","name":"n"}],"groupBy":["x"],"input":"t","op":"reduce"},"type":"aggregate"}"#,
        r#"{"type":"aggregate","id":"c","operation":{"op":"concat","inputs":["t","t"]}}"#,
        r#"{"type":"aggregate","id":"j","operation":{"op":"merge","inputs":["t","t"],"on":["x"]}}"#,
        r#"{"type":"compute","id":"k","input":"t","columns":[{"name":"z","expression":{"int":1}}]}"#,
        r#"{"type":"branch","id":"b","input":"t","condition":{"bool":true},"then":"t","else":"t"}"#,
        r#"{"type":"loop","id":"l","input":"t","maxIterations":3,"until":null,"update":[{"name":"x","expression":{"int":1}}]}"#,
    ];
    for json in kinds {
        let s = step(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let again = serde_json::to_string(&s).unwrap();
        assert_eq!(step(&again).unwrap(), s, "{json} → {again}");
    }
    assert!(matches!(step(kinds[0]).unwrap(), Step::DataInput(d) if d.data_commitment.is_none()));

    // A member of another kind is unknown to this one, and the message lists
    // this kind's members only; so is a member no kind has.
    let e = step(r#"{"type":"filter","id":"f","input":"t","predicate":{"bool":true},"schema":[]}"#).unwrap_err();
    assert!(e.starts_with("unknown field `schema`, expected one of `id`, `input`, `predicate`"), "{e}");
    let e = step(r#"{"type":"filter","id":"f","input":"t","predicat":{"bool":true}}"#).unwrap_err();
    assert!(e.starts_with("unknown field `predicat`, expected one of `id`, `input`, `predicate`"), "{e}");
    let e = step(r#"{"type":"aggregate","id":"g","operation":{"op":"concat","inputs":["t"],"on":["x"]}}"#).unwrap_err();
    assert!(e.starts_with("unknown field `on`, expected `inputs`"), "{e}");
    // Missing members, the tag included.
    let e = step(r#"{"type":"filter","id":"f","input":"t"}"#).unwrap_err();
    assert!(e.starts_with("missing field `predicate`"), "{e}");
    let e = step(r#"{"id":"f","input":"t","predicate":{"bool":true}}"#).unwrap_err();
    assert!(e.starts_with("missing field `type`"), "{e}");
    let e = step(r#"{"type":"aggregate","id":"g","operation":{"input":"t","op":"reduce"}}"#).unwrap_err();
    assert!(e.starts_with("missing field `aggregations`"), "{e}");
    // An operation of the other step kind, and an unknown kind.
    let e = step(r#"{"type":"transform","id":"m","input":"t","operation":{"op":"concat","inputs":["t"]}}"#).unwrap_err();
    assert!(e.starts_with("unknown variant `concat`, expected one of `map`, `select`, `rename`"), "{e}");
    let e = step(r#"{"type":"sort","id":"s"}"#).unwrap_err();
    assert!(e.starts_with("unknown variant `sort`"), "{e}");
    // `null` does not stand in for a member that has no null value, and a
    // member is given once.
    let e = step(r#"{"type":"aggregate","id":"g","operation":{"aggregations":[],"groupBy":null,"input":"t","op":"reduce"}}"#).unwrap_err();
    assert!(e.starts_with("invalid type: null, expected a sequence"), "{e}");
    let e = step(r#"{"type":"filter","id":"f","id":"g","input":"t","predicate":{"bool":true}}"#).unwrap_err();
    assert!(e.starts_with("duplicate field `id`"), "{e}");
    let e = step(r#""filter""#).unwrap_err();
    assert!(e.starts_with("invalid type: string \"filter\", expected a plan step"), "{e}");
}
