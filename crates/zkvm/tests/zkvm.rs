//! The real guest in the real zkVM: execute-only runs against native
//! execution for every example, refusals by the guest, one real proof, and
//! tampering with the receipt, the registry, the plan and the data.

use std::path::{Path, PathBuf};

use zkaudit_merkle::Sha2;
use zkaudit_plan::source::PlanFile;
use zkaudit_plan::{records, Bounds};
use zkaudit_zkvm::registry::{self, ProgramEntry};
use zkaudit_zkvm::verify::{encode_receipt, VerifyError};
use zkaudit_zkvm::{
    best_segment_po2, execute, prove, CacheUse, EntryFor, Expectations, Job, ProveError, ProveOptions, ReceiptCache, Registry, AUTO_SEGMENT_PO2,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The job for an example plan over one data file, and its native journal.
fn example_job(example: &str, input: &str, data: &Path) -> (Job, zkaudit_plan::Journal) {
    let plan = PlanFile::load(&root().join(format!("examples/{example}/plan.yaml"))).unwrap();
    let program = plan.compile(&Bounds::default()).unwrap();
    let spec = &program.inputs[0];
    assert_eq!(spec.id, input);
    let table = zkaudit_plan::data::load(spec, data).unwrap();
    let words = records::encode(spec, &table);
    let c = records::commit(&Sha2, &[(spec.record_words(), words.as_slice())]);
    let (journal, _) = zkaudit_plan::finish(&program, &plan.hash, &c.data_root, std::slice::from_ref(&words), &Sha2).unwrap();
    let job = Job {
        plan_jcs: plan.jcs.clone(),
        plan_hash: plan.hash,
        data_root: c.data_root,
        inputs: vec![(table.rows, words)],
        max_cycles: program.limits.max_cycles,
    };
    (job, journal)
}

fn income() -> (Job, zkaudit_plan::Journal) {
    example_job("income-threshold", "payments", &root().join("examples/income-threshold/payments.csv"))
}

/// Each example over its data (`../shared/data` beside the project): its
/// name, guest job and native journal.
fn every_example() -> Vec<(&'static str, Job, zkaudit_plan::Journal)> {
    let shared = root().join("../shared/data");
    [
        ("income-threshold", "payments", root().join("examples/income-threshold/payments.csv")),
        ("stocks-summary", "prices", shared.join("stocks.csv")),
        ("seattle-weather", "weather", shared.join("seattle-weather.csv")),
    ]
    .into_iter()
    .map(|(example, input, data)| {
        let (job, native) = example_job(example, input, &data);
        (example, job, native)
    })
    .collect()
}

#[test]
fn guest_and_native_journals_are_identical_for_every_example() {
    for (example, job, native) in every_example() {
        let e = execute(&job, None).unwrap_or_else(|err| panic!("{example}: {err}"));
        assert_eq!(e.journal, native, "{example}");
        assert!(e.user_cycles > 0 && e.total_cycles >= e.user_cycles, "{example}");
    }
}

/// Without a given segment size, a job is proved at the size that costs the
/// fewest total (padded) cycles: checked against executions at every size,
/// and never above one 2^20 segment's padding for the examples.
#[test]
fn the_segment_size_chosen_pads_least() {
    for (example, job, native) in every_example() {
        let (po2, best) = best_segment_po2(&job).unwrap();
        assert_eq!(best.journal, native, "{example}");
        assert!(AUTO_SEGMENT_PO2.contains(&po2), "{example}: {po2}");
        for other in AUTO_SEGMENT_PO2 {
            let e = execute(&job, Some(other)).unwrap();
            eprintln!("{example}: 2^{other}: {} segments, {} total cycles", e.segments, e.total_cycles);
            assert!(best.total_cycles <= e.total_cycles, "{example}: 2^{po2} gives {} cycles, 2^{other} {}", best.total_cycles, e.total_cycles);
            assert!(best.total_cycles < e.total_cycles || other <= po2, "{example}: ties go to the larger size");
        }
    }
}

/// The guest's ELF names source files (panic locations) relative to its
/// workspace root or under the build's fixed prefix for crates.io sources,
/// never where this checkout or cargo's crates.io sources lie.
#[test]
fn the_guest_names_no_local_path() {
    let program = zkaudit_zkvm::guest::GUEST_PROGRAM;
    let holds = |needle: &[u8]| program.windows(needle.len()).any(|w| w == needle);
    let crates = root().join("crates").canonicalize().unwrap();
    assert!(!holds(crates.to_str().unwrap().as_bytes()), "the guest names {}", crates.display());
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        assert!(!holds(home.join("registry").to_str().unwrap().as_bytes()), "the guest names {}", home.display());
    }
    // The names it does use are there, so the search itself works.
    assert!(holds(b"deps/plan/src/"));
    assert!(holds(b"/cargo/registry/src/"));
}

/// The guest hashes records on the SHA-256 ecall with its own padding, and a
/// wrong pad or a misaligned buffer gives a wrong hash without an error. Its
/// data root must equal the native one for records of every size class:
/// one word, odd widths, widths that end just before and just after a
/// 64-byte block boundary (13/14 and 29/30 words, with the prefix byte and
/// the 9 bytes of padding), and several inputs (one tree each, plus the
/// tree over all).
#[test]
fn the_guest_data_root_equals_the_native_one_for_every_record_width() {
    for widths in [&[1][..], &[2], &[3], &[13], &[14], &[29], &[30], &[5, 14, 1]] {
        let mut steps = String::new();
        let mut files = Vec::new();
        for (i, &w) in widths.iter().enumerate() {
            // `bool` cells are one word each, `int` cells two.
            let (ints, bools) = (w / 2, w % 2);
            let mut schema: Vec<String> = (0..ints).map(|c| format!("{{name: i{c}, type: int}}")).collect();
            schema.extend((0..bools).map(|c| format!("{{name: b{c}, type: bool}}")));
            steps += &format!("  - {{type: data-input, id: in{i}, schema: [{}]}}\n", schema.join(", "));
            let header: Vec<String> = (0..ints).map(|c| format!("i{c}")).chain((0..bools).map(|c| format!("b{c}"))).collect();
            let mut csv = header.join(",") + "\n";
            for r in 0..(5 + i as i64) {
                let row: Vec<String> =
                    (0..ints as i64).map(|c| (r * 1_000_003 - c * 77_777_777_777).to_string()).chain((0..bools).map(|_| (r % 2 == 1).to_string())).collect();
                csv += &(row.join(",") + "\n");
            }
            files.push(csv);
        }
        let text = format!(
            "version: \"1.0\"\nid: widths\njobRequestHash: \"sha256:{}\"\nsteps:\n{steps}  - {{type: aggregate, id: n, operation: {{op: reduce, input: in0, aggregations: [{{name: n, fn: count}}]}}}}\noutput: {{step: n}}\nlimits: {{maxCycles: 16777216, maxMemoryBytes: 8388608, maxOutputBytes: 64}}\n",
            "00".repeat(32)
        );
        let plan = PlanFile::parse("widths.yaml", &text, false).unwrap_or_else(|e| panic!("{widths:?}: {e:?}\n{text}"));
        let program = plan.compile(&Bounds::default()).unwrap_or_else(|e| panic!("{widths:?}: {e:?}\n{text}"));
        let mut words = Vec::new();
        let mut sized = Vec::new();
        for (spec, csv) in program.inputs.iter().zip(&files) {
            let t = zkaudit_plan::data::parse(spec, "widths.csv", csv.as_bytes(), zkaudit_plan::data::Format::Csv).unwrap();
            assert_eq!(spec.record_words(), widths[sized.len()]);
            sized.push((t.rows, records::encode(spec, &t)));
            words.push(spec.record_words());
        }
        let refs: Vec<(usize, &[u32])> = words.iter().zip(&sized).map(|(w, (_, v))| (*w, v.as_slice())).collect();
        let c = records::commit(&Sha2, &refs);
        let job = Job { plan_jcs: plan.jcs.clone(), plan_hash: plan.hash, data_root: c.data_root, inputs: sized, max_cycles: program.limits.max_cycles };
        // The guest panics ("data root mismatch") unless its root is this one.
        let e = execute(&job, None).unwrap_or_else(|err| panic!("record widths {widths:?}: {err}"));
        assert_eq!(e.journal.data_root, c.data_root, "{widths:?}");
    }
}

#[test]
fn the_guest_refuses_a_wrong_plan_hash_or_data_root() {
    let (good, _) = income();
    let mut j = good.clone();
    j.plan_hash[5] ^= 0x40;
    let e = execute(&j, None).unwrap_err().to_string();
    assert!(e.contains("plan hash mismatch"), "{e}");

    let mut j = good.clone();
    j.data_root[0] ^= 1;
    let e = execute(&j, None).unwrap_err().to_string();
    assert!(e.contains("data root mismatch"), "{e}");

    // One record changed but the old root claimed.
    let mut j = good.clone();
    j.inputs[0].1[2] ^= 1;
    let e = execute(&j, None).unwrap_err().to_string();
    assert!(e.contains("data root mismatch"), "{e}");

    let mut j = good;
    j.max_cycles = 10_000;
    assert!(matches!(execute(&j, None), Err(ProveError::Cycles { limit: 10_000 })));
}

#[test]
fn a_real_proof_verifies_and_every_tampering_is_caught() {
    let (job, native) = income();
    let plan_hash = job.plan_hash;
    let data_root = job.data_root;
    // The test suite shares one receipt cache per run (scripts/test.sh), so
    // this job is proved once however many tests need its receipt.
    let opts = ProveOptions { cache: ReceiptCache::from_env(), ..ProveOptions::default() };
    let proof = prove(job.clone(), opts, |_| {}).expect("proving succeeds");
    assert_eq!(proof.execution.journal, native);
    assert_eq!(proof.execution.segments, 1, "keep test proofs to one segment");
    let bytes = encode_receipt(&proof.receipt).unwrap();
    let embedded = Registry::embedded();
    let expect = Expectations { plan_hash: Some(plan_hash), data_root: Some(data_root), output: Some(native.output.clone()) };
    let ok = zkaudit_zkvm::verify(&bytes, &embedded, &expect).expect("the receipt verifies");
    assert_eq!(ok.kind, "risc0-composite");
    assert_eq!(ok.journal.output, br#"{"meets_threshold":true,"payment_count":8}"#);

    // Byte mutations across the whole receipt: every one must be refused.
    let step = (bytes.len() / 1500).max(1);
    let mut tried = 0;
    for i in (0..bytes.len()).step_by(step).chain(bytes.len() - 200..bytes.len()) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        assert!(zkaudit_zkvm::verify(&bad, &embedded, &expect).is_err(), "flipping byte {i} of {} went unnoticed", bytes.len());
        tried += 1;
    }
    assert!(tried > 1500);
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(zkaudit_zkvm::verify(&bytes[..cut], &embedded, &expect), Err(VerifyError::Decode(_))));
    }

    // An unknown image ID: a registry that does not list this guest.
    let e = zkaudit_zkvm::verify(&bytes, &Registry::default(), &expect).unwrap_err();
    assert!(matches!(e, VerifyError::Registry(registry::Rejection::Unknown(_))), "{e}");

    // A deprecated one, through a signed registry file.
    let dir = tempfile::tempdir().unwrap();
    let key = zkaudit_note::SigningKey::generate("test.example/registry").unwrap();
    let file = dir.path().join("registry.note");
    registry::deprecate(&file, &key, &ok.program.image_id, "CVE-0000-0000 in the interpreter").unwrap();
    let r = Registry::with_file(&file, &key.verifier()).unwrap();
    let e = zkaudit_zkvm::verify(&bytes, &r, &expect).unwrap_err();
    assert!(e.to_string().contains("deprecated: CVE-0000-0000"), "{e}");
    // The same file checked against another key is refused outright.
    let other = zkaudit_note::SigningKey::generate("test.example/registry").unwrap();
    assert!(Registry::with_file(&file, &other.verifier()).is_err());
    // A registry listing another program only: unknown.
    let mut entry: ProgramEntry = registry::embedded_entry();
    entry.image_id = "ab".repeat(32);
    let file2 = dir.path().join("other.note");
    registry::add(&file2, &key, entry).unwrap();
    assert_eq!(Registry::with_file(&file2, &key.verifier()).unwrap().entries().len(), 2);

    // A different plan, different data, a different output.
    let mut wrong = expect.clone();
    wrong.plan_hash = Some(PlanFile::load(&root().join("examples/stocks-summary/plan.yaml")).unwrap().hash);
    assert!(matches!(zkaudit_zkvm::verify(&bytes, &embedded, &wrong), Err(VerifyError::PlanHash { .. })));
    let changed = dir.path().join("payments.csv");
    let text = std::fs::read_to_string(root().join("examples/income-threshold/payments.csv")).unwrap();
    std::fs::write(&changed, text.replacen("2026-02-03,1250.50", "2026-02-03,1250.51", 1)).unwrap();
    let (other_job, _) = example_job("income-threshold", "payments", &changed);
    let mut wrong = expect.clone();
    wrong.data_root = Some(other_job.data_root);
    assert!(matches!(zkaudit_zkvm::verify(&bytes, &embedded, &wrong), Err(VerifyError::DataRoot { .. })));
    let mut wrong = expect;
    wrong.output = Some(br#"{"meets_threshold":false,"payment_count":8}"#.to_vec());
    assert!(matches!(zkaudit_zkvm::verify(&bytes, &embedded, &wrong), Err(VerifyError::Output { .. })));

    the_receipt_cache_answers_only_with_what_verifies(&job, &proof, &bytes);
}

/// The receipt cache: a hit returns the same receipt without proving; an
/// entry whose receipt was changed, or that holds another job's receipt,
/// is refused and removed.
fn the_receipt_cache_answers_only_with_what_verifies(job: &Job, proof: &zkaudit_zkvm::Proof, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let cache = ReceiptCache::new(dir.path().join("receipts"));
    let entry = EntryFor::new(job, &ProveOptions::default());
    assert!(matches!(cache.lookup(&entry), Ok(None)));
    cache.store(&entry, proof).unwrap();

    // A hit: prove() answers from the cache without proving.
    let opts = ProveOptions { cache: Some(cache.clone()), ..ProveOptions::default() };
    let hit = prove(job.clone(), opts, |p| panic!("proving again despite the cache: {p:?}")).unwrap();
    assert_eq!(hit.cache, CacheUse::Hit);
    assert_eq!(zkaudit_zkvm::verify::encode_receipt(&hit.receipt).unwrap(), bytes);
    assert_eq!(hit.execution, proof.execution);
    assert_eq!(hit.prove_time.as_millis(), proof.prove_time.as_millis());

    // Another segment size is another entry.
    let other = EntryFor { segment_po2: Some(16), ..entry };
    assert!(matches!(cache.lookup(&other), Ok(None)));

    // A changed receipt is refused and its entry removed.
    let receipt_file = cache.dir().join(format!("{}.receipt", entry.key()));
    let mut bad = bytes.to_vec();
    bad[bytes.len() / 2] ^= 1;
    std::fs::write(&receipt_file, &bad).unwrap();
    let e = cache.lookup(&entry).unwrap_err();
    assert!(e.contains(&entry.key()), "{e}");
    assert!(!receipt_file.exists());
    assert!(matches!(cache.lookup(&entry), Ok(None)));

    // This job's receipt filed under another job's entry: refused.
    let mut elsewhere = entry;
    elsewhere.data_root[0] ^= 1;
    cache.store(&elsewhere, proof).unwrap();
    let e = cache.lookup(&elsewhere).unwrap_err();
    assert!(e.contains("another plan or data root"), "{e}");
}
