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
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let crates = manifest.parent().expect("crates/dashboard has a parent").to_path_buf();
    let wasm_crate = crates.join("verify-wasm");
    for dir in ["verify-wasm/src", "verify/src", "note/src", "merkle/src"] {
        watch(&crates.join(dir));
    }
    for f in ["verify-wasm/Cargo.toml", "verify-wasm/Cargo.lock", "verify/Cargo.toml", "note/Cargo.toml", "merkle/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", crates.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=ZKAUDIT_GUEST_CARGO");
    println!("cargo:rerun-if-env-changed=ZKAUDIT_GUEST_RUSTC");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // target/<profile>/build/<pkg>/out → target/wasm-verifier, shared by profiles.
    let target_dir = out.ancestors().nth(4).unwrap_or(&out).join("wasm-verifier");
    let cargo = env::var("ZKAUDIT_GUEST_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let rustc = env::var("ZKAUDIT_GUEST_RUSTC").unwrap_or_else(|_| "/usr/bin/rustc".into());
    let mut cmd = Command::new(&cargo);
    cmd.env_clear()
        .env("PATH", env::var("PATH").unwrap_or_default())
        .env("HOME", env::var("HOME").unwrap_or_default())
        .env("RUSTC", &rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", "-Clinker=rust-lld")
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--locked", "--target", "wasm32-unknown-unknown"])
        .arg("-Zbuild-std=std,panic_abort")
        .arg("--manifest-path")
        .arg(wasm_crate.join("Cargo.toml"));
    if let Ok(home) = env::var("CARGO_HOME") {
        cmd.env("CARGO_HOME", home);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "cannot run `{cargo}` to build the browser verifier ({e}). Install Debian's rustc-web, cargo-web, \
             rust-web-src and lld-22 (scripts/setup.sh does), or set ZKAUDIT_GUEST_CARGO/ZKAUDIT_GUEST_RUSTC."
        )
    });
    assert!(status.success(), "building the browser verifier (crates/verify-wasm) failed ({status})");
    let wasm = target_dir.join("wasm32-unknown-unknown/release/zkaudit_verify_wasm.wasm");
    fs::copy(&wasm, out.join("verify.wasm")).unwrap_or_else(|e| panic!("cannot copy {}: {e}", wasm.display()));
}

fn watch(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                watch(&p);
            } else {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}
