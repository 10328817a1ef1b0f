// Shared by crates/zkvm/build.rs (the RISC Zero guest) and
// crates/dashboard/build.rs (the browser's WebAssembly verifier), included
// with `include!`: Debian's rustc-web toolchain, run with -Zbuild-std for a
// target rustup's toolchain cannot build here, and change tracking.

/// Tells cargo to rerun the build script when anything under `crates/`
/// `dirs` or `files` changes, or the toolchain variables do.
fn watch_inputs(crates: &std::path::Path, dirs: &[&str], files: &[&str]) {
    for dir in dirs {
        watch(&crates.join(dir));
    }
    for f in files {
        println!("cargo:rerun-if-changed={}", crates.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=ZKAUDIT_GUEST_CARGO");
    println!("cargo:rerun-if-env-changed=ZKAUDIT_GUEST_RUSTC");
}

fn watch(dir: &std::path::Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    if let Ok(entries) = std::fs::read_dir(dir) {
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

/// `cargo build --release --locked` of Debian's toolchain
/// (`ZKAUDIT_GUEST_CARGO` / `ZKAUDIT_GUEST_RUSTC`, default `/usr/bin/cargo`
/// and `/usr/bin/rustc`) into `target_dir`, in a clean environment (PATH,
/// HOME, CARGO_HOME, RUSTC, RUSTDOC, RUSTC_BOOTSTRAP=1): the caller adds
/// the target, `-Zbuild-std`, flags and manifest. Also returns the cargo
/// path, for error messages.
fn debian_cargo(target_dir: &std::path::Path) -> (std::process::Command, String) {
    let cargo = std::env::var("ZKAUDIT_GUEST_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let rustc = std::env::var("ZKAUDIT_GUEST_RUSTC").unwrap_or_else(|_| "/usr/bin/rustc".into());
    let rustdoc = std::path::Path::new(&rustc).with_file_name("rustdoc");
    let mut cmd = std::process::Command::new(&cargo);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("RUSTC", &rustc)
        .env("RUSTDOC", &rustdoc)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--release", "--locked"]);
    if let Ok(home) = std::env::var("CARGO_HOME") {
        cmd.env("CARGO_HOME", home);
    }
    (cmd, cargo)
}

/// What to say when Debian's toolchain cannot be run.
fn toolchain_missing(cargo: &str, what: &str, e: &std::io::Error) -> String {
    format!(
        "cannot run the toolchain `{cargo}` to build {what} ({e}). Install Debian's rustc-web, cargo-web, \
         rust-web-src and lld-22 (scripts/setup.sh does), or set ZKAUDIT_GUEST_CARGO/ZKAUDIT_GUEST_RUSTC."
    )
}
