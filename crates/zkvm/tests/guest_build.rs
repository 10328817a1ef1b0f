//! The guest's image ID depends only on its sources and the toolchain, not
//! on where the checkout lies. Cargo derives each crate's `-C metadata`
//! (which goes into symbol names, and through them into the order of the
//! guest's code and constants) from the crate's path: relative to the
//! workspace root for a crate under it, absolute for one outside. So every
//! local crate the guest builds must lie under the guest's workspace root
//! (`crates/guest`); `zkaudit-plan` and `zkaudit-merkle` are reached
//! through the symlinks in `crates/guest/deps`. A crate reached by a path
//! outside it (`../plan`, or a `workspace = true` dependency resolved
//! through the main workspace) gives each checkout its own image ID, and a
//! verifier built elsewhere refuses the prover's receipts as an unknown
//! program.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The local packages of the guest's build, as `(name, manifest directory)`,
/// from `cargo tree` on the guest's manifest and lock file.
fn local_packages(guest: &Path) -> Vec<(String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--edges", "normal", "--prefix", "none", "--format", "{p}", "--manifest-path"])
        .arg(guest.join("Cargo.toml"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let mut local: Vec<(String, PathBuf)> = text
        .lines()
        .filter_map(|line| {
            // `name vX.Y.Z (/abs/path)`, and ` (*)` after a repeat.
            let (name, rest) = line.split_once(' ')?;
            let path = rest.split_once(" (/")?.1.split_once(')')?.0;
            Some((name.to_owned(), PathBuf::from(format!("/{path}"))))
        })
        .collect();
    local.sort();
    local.dedup();
    local
}

#[test]
fn every_local_crate_of_the_guest_lies_under_its_workspace_root() {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates/zkvm has a parent").join("guest");
    let local = local_packages(&guest);
    let names: Vec<&str> = local.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["zkaudit-guest", "zkaudit-merkle", "zkaudit-plan"], "{local:?}");
    for (name, dir) in &local {
        assert!(dir.starts_with(&guest), "{name} is built from {}, outside the guest's workspace root {}", dir.display(), guest.display());
    }
}
