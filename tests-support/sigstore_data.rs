//! Real Sigstore bundles for tests: the `test_data` directory of the
//! `sigstore-verify` package this build depends on, which cargo has
//! already unpacked (found with `cargo metadata`; nothing is copied into
//! this repository). It holds, among others, npm's SLSA provenance bundle
//! for `sigstore@2.0.0` (`bundles/sigstore.js@2.0.0-provenance.sigstore.json`),
//! a managed-key bundle and the public-good and scaffolding trust roots.

use std::path::PathBuf;
use std::process::Command;

/// The `test_data` directory of the `sigstore-verify` package in the
/// dependency graph of the crate at `manifest_dir`.
pub fn sigstore_test_data(manifest_dir: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked", "--manifest-path"])
        .arg(format!("{manifest_dir}/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "sigstore-verify").expect("sigstore-verify in the dependency graph");
    PathBuf::from(pkg["manifest_path"].as_str().unwrap()).parent().unwrap().join("test_data")
}
