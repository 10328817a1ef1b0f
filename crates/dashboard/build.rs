//! Builds the browser's verifier (`crates/verify-wasm`) for
//! `wasm32-unknown-unknown` and leaves it in `OUT_DIR/verify.wasm`, so
//! the dashboard's assets are all inside the binary.
//!
//! rustup's toolchain here has no wasm32 standard library and cannot fetch
//! one, so this uses Debian's `rustc-web` with `-Zbuild-std`, as
//! `crates/zkvm/build.rs` does for the RISC Zero guest, and Debian's
//! `lld` as the WebAssembly linker.
//!
//! Environment: `ZKAUDIT_GUEST_CARGO` / `ZKAUDIT_GUEST_RUSTC`, as for the
//! guest (default `/usr/bin/cargo`, `/usr/bin/rustc`).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let crates = manifest.parent().expect("crates/dashboard has a parent").to_path_buf();
    let wasm_crate = crates.join("verify-wasm");
    watch_inputs(
        &crates,
        &["verify-wasm/src", "verify/src", "note/src", "merkle/src"],
        &["verify-wasm/Cargo.toml", "verify-wasm/Cargo.lock", "verify/Cargo.toml", "note/Cargo.toml", "merkle/Cargo.toml"],
    );

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // target/<profile>/build/<pkg>/out → target/wasm-verifier, shared by profiles.
    let target_dir = out.ancestors().nth(4).unwrap_or(&out).join("wasm-verifier");
    let (mut cmd, cargo) = debian_cargo(&target_dir);
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Clinker=rust-lld")
        .args(["--target", "wasm32-unknown-unknown", "-Zbuild-std=std,panic_abort", "--manifest-path"])
        .arg(wasm_crate.join("Cargo.toml"));
    let status = cmd.status().unwrap_or_else(|e| panic!("{}", toolchain_missing(&cargo, "the browser verifier", &e)));
    assert!(status.success(), "building the browser verifier (crates/verify-wasm) failed ({status})");
    let wasm = target_dir.join("wasm32-unknown-unknown/release/zkaudit_verify_wasm.wasm");
    fs::copy(&wasm, out.join("verify.wasm")).unwrap_or_else(|e| panic!("cannot copy {}: {e}", wasm.display()));
}

include!("../../build-support/debian_toolchain.rs");
