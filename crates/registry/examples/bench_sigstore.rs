//! What verifying one provenance bundle costs: npm's real SLSA provenance
//! bundle for `sigstore@2.0.0` (from the `sigstore-verify` crate's test
//! data, see `tests-support/sigstore_data.rs`) verified against the
//! embedded public-good trust root, in REPS runs (default 7) of 50
//! verifications; prints each run and the median in ms per bundle.
//!
//!     cargo run --locked -p zkaudit-registry --example bench_sigstore [REPS]

#[path = "../../../tests-support/sigstore_data.rs"]
mod sigstore_data;

use std::time::Instant;

use base64::Engine as _;
use serde_json::Value;
use zkaudit_registry::sigstore::{Outcome, Sigstore};

fn main() {
    let reps: usize = std::env::args().nth(1).map_or(7, |r| r.parse().expect("REPS is a number"));
    let path = sigstore_data::sigstore_test_data(env!("CARGO_MANIFEST_DIR")).join("bundles/sigstore.js@2.0.0-provenance.sigstore.json");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&path).expect("the bundle")).expect("JSON");
    let payload = base64::engine::general_purpose::STANDARD.decode(bundle["dsseEnvelope"]["payload"].as_str().expect("payload")).expect("base64");
    let statement: Value = serde_json::from_slice(&payload).expect("statement");
    let digest = hex::decode(statement["subject"][0]["digest"]["sha512"].as_str().expect("digest")).expect("hex");
    let t = Instant::now();
    let sigstore = Sigstore::public_good().expect("the embedded root");
    println!("trust root loaded in {:.3} ms", t.elapsed().as_secs_f64() * 1e3);
    let mut runs = Vec::new();
    for rep in 1..=reps {
        let t = Instant::now();
        for _ in 0..50 {
            assert!(matches!(sigstore.verify(&bundle, "sha512", &digest), Outcome::Verified { .. }));
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / 50.0;
        println!("run {rep}: {ms:.3} ms per bundle");
        runs.push(ms);
    }
    runs.sort_by(f64::total_cmp);
    println!("median of {reps}: {:.3} ms per bundle", runs[reps / 2]);
}
