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
///
/// The graph is resolved offline for the host platform only: the build
/// downloaded exactly those packages, while the whole graph also names
/// packages of other platforms that a fresh machine has never fetched.
pub fn sigstore_test_data(manifest_dir: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let version = Command::new(&cargo).arg("-vV").output().expect("cargo -vV");
    let version = String::from_utf8_lossy(&version.stdout);
    let host = version.lines().find_map(|l| l.strip_prefix("host: ")).expect("a host line in `cargo -vV`").trim().to_owned();
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked", "--filter-platform", &host, "--manifest-path"])
        .arg(format!("{manifest_dir}/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "sigstore-verify").expect("sigstore-verify in the dependency graph");
    PathBuf::from(pkg["manifest_path"].as_str().unwrap()).parent().unwrap().join("test_data")
}
