//! Builds the RISC Zero guest (`crates/guest`) and records its image ID.
//!
//! The guest is compiled for `riscv32im-risc0-zkvm-elf` with Debian's
//! `rustc-web` and `-Zbuild-std`, the flags `risc0-build` 3.0.6 passes (see
//! the README). The image ID does not depend on where the checkout lies:
//! the guest reaches the plan and merkle crates through the symlinks in
//! `crates/guest/deps`, under its own workspace root, so cargo hashes their
//! paths into `-C metadata` (which goes into symbol names, and through them
//! into the layout) relative to that root, and names their source files
//! relative to it in panic locations (`deps/plan/src/…`;
//! `crates/zkvm/tests/guest_build.rs` checks it). crates.io sources are
//! named under a fixed prefix instead of CARGO_HOME.
//! The ELF is linked with the v1compat kernel into a program binary, and
//! its image ID is computed here and written into the embedded program
//! registry, so the ID is never copied by hand.
//!
//! Environment:
//! * `ZKAUDIT_GUEST_CARGO` / `ZKAUDIT_GUEST_RUSTC`: the guest toolchain
//!   (default `/usr/bin/cargo`, `/usr/bin/rustc`).

use std::env;
use std::fs;
use std::path::PathBuf;

/// Release date recorded for this guest in the embedded registry. Bump it
/// with the guest's version.
const RELEASE_DATE: &str = "2026-12-03";
/// What CARGO_HOME (crates.io sources) is called in the guest's panic
/// locations.
const GUEST_CARGO_HOME_PREFIX: &str = "/cargo";
/// Features of this guest, as recorded in the registry.
const FEATURES: &[&str] = &["plan-ir/1.0", "input/1", "journal/1", "sha256-accelerated"];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let crates = manifest.parent().expect("crates/zkvm has a parent").to_path_buf();
    let guest = crates.join("guest");
    watch_inputs(&crates, &["guest/src", "plan/src", "merkle/src"], &["guest/Cargo.toml", "guest/Cargo.lock", "plan/Cargo.toml", "merkle/Cargo.toml"]);

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // target/<profile>/build/<pkg>/out → target/riscv-guest, shared by profiles.
    let target_dir = out.ancestors().nth(4).unwrap_or(&out).join("riscv-guest");
    // Panic locations name crates.io sources by absolute path; they are
    // remapped to a fixed prefix so that the ELF names no local path.
    let cargo_home = env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut rustflags = vec![
        "-C".to_owned(),
        "passes=lower-atomic".into(),
        "-C".into(),
        "link-arg=-Ttext=0x00200800".into(),
        "-C".into(),
        "link-arg=--fatal-warnings".into(),
        "-C".into(),
        "panic=abort".into(),
        "--cfg".into(),
        "getrandom_backend=\"custom\"".into(),
    ];
    if let Some(home) = cargo_home {
        rustflags.extend(["--remap-path-prefix".to_owned(), format!("{}={GUEST_CARGO_HOME_PREFIX}", home.display())]);
    }
    let rustflags = rustflags.join("\x1f");
    let (mut cmd, cargo) = debian_cargo(&target_dir);
    cmd.env("RISC0_FEATURE_bigint2", "")
        .env("CC_riscv32im_risc0_zkvm_elf", "/bin/false")
        .env("CFLAGS_riscv32im_risc0_zkvm_elf", "-march=rv32im -nostdlib")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .args(["--target", "riscv32im-risc0-zkvm-elf"])
        .args(["-Zbuild-std=alloc,core,proc_macro,panic_abort,std", "-Zbuild-std-features=compiler-builtins-mem"])
        .arg("--manifest-path")
        .arg(guest.join("Cargo.toml"));
    let status = cmd.status().unwrap_or_else(|e| panic!("{}", toolchain_missing(&cargo, "the RISC Zero guest", &e)));
    assert!(status.success(), "building the RISC Zero guest failed ({status})");

    let elf_path = target_dir.join("riscv32im-risc0-zkvm-elf/release/zkaudit-guest");
    let elf = fs::read(&elf_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", elf_path.display()));
    let program = risc0_binfmt::ProgramBinary::new(&elf, risc0_zkos_v1compat::V1COMPAT_ELF).encode();
    let image_id = risc0_binfmt::compute_image_id(&program).expect("the guest ELF links into a program binary");
    fs::write(out.join("zkaudit-guest.bin"), &program).expect("OUT_DIR is writable");

    let features: Vec<String> = FEATURES.iter().map(|f| format!("{f:?}")).collect();
    let code = format!(
        "/// The guest program binary: the ELF linked with the v1compat kernel.\n\
         pub const GUEST_PROGRAM: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/zkaudit-guest.bin\"));\n\
         /// The guest's image ID, computed from [`GUEST_PROGRAM`] at build time.\n\
         pub const GUEST_IMAGE_ID: &str = \"{image_id}\";\n\
         /// The guest's version (the zkaudit-zkvm crate version).\n\
         pub const GUEST_VERSION: &str = \"{version}\";\n\
         /// The guest's release date.\n\
         pub const GUEST_RELEASE_DATE: &str = \"{RELEASE_DATE}\";\n\
         /// The guest's features.\n\
         pub const GUEST_FEATURES: &[&str] = &[{features}];\n",
        version = env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        features = features.join(", "),
    );
    fs::write(out.join("guest.rs"), code).expect("OUT_DIR is writable");
}

include!("../../build-support/debian_toolchain.rs");
