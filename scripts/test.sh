#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. gates: shellcheck over scripts/ and .ci/, cargo fmt --check, clippy
#      with warnings as errors, and rustdoc with warnings as errors;
#   2. every crate's unit, integration, crash-safety, server and CLI tests
#      (real SQLite, PostgreSQL, HTTP on loopback and RISC Zero proofs).
# Extra arguments go to `cargo test` (e.g. `-p zkaudit-tlog`).
# The build goes to the shared target directory of scripts/setup.sh
# ($CARGO_TARGET_DIR, default /var/tmp/zkaudit-target).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

# One receipt cache for the run: the tests that need a real receipt of the
# income-threshold example share it, so the suite proves that job once (the
# first test to need it proves it; the others verify the cached receipt
# again). Removed at the end; `cargo test` alone proves in every test.
ZKAUDIT_RECEIPT_CACHE="$(mktemp -d -t zkaudit-receipts.XXXXXX)"
export ZKAUDIT_RECEIPT_CACHE
trap 'rm -rf "$ZKAUDIT_RECEIPT_CACHE"' EXIT

step() { printf '== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "shellcheck"
shellcheck scripts/*.sh .ci/run
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked -q
step "cargo test"
cargo test --workspace --locked "$@"
step "done"
