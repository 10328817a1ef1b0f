#!/usr/bin/env bash
# Sourced by the other scripts. Makes sure both toolchains are present:
# * the host toolchain: a Rust >= 1.89 cargo (rustup's when present, else
#   Debian's rustc-web/cargo-web, bookworm-security ships 1.9x);
# * the RISC Zero guest toolchain: Debian's rustc-web, cargo-web and
#   rust-web-src (whose rustc knows riscv32im-risc0-zkvm-elf) plus lld-22,
#   used by crates/zkvm/build.rs under /usr/bin.
# * PostgreSQL's server binaries (Debian's postgresql), which the index
#   tests start on loopback in a temporary directory of their own.
# Nothing is downloaded outside the package registries.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

rust_ok() {
  command -v cargo >/dev/null 2>&1 || return 1
  local v
  v=$(rustc --version 2>/dev/null | awk '{print $2}') || return 1
  [ "$(printf '%s\n' "1.89.0" "$v" | sort -V | head -n1)" = "1.89.0" ]
}

guest_ok() {
  [ -x /usr/bin/cargo ] && [ -e /usr/bin/rust-lld ] && [ -d /usr/lib/rustlib/src/rust ] &&
    /usr/bin/rustc --print target-list 2>/dev/null | grep -qx riscv32im-risc0-zkvm-elf
}

if ! rust_ok || ! guest_ok; then
  echo "setup: installing Debian's rustc-web, cargo-web, rust-web-src and lld-22" >&2
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 gcc g++ >/dev/null
  rust_ok || { echo "setup: could not get Rust >= 1.89" >&2; exit 1; }
  guest_ok || { echo "setup: the Debian toolchain does not target riscv32im-risc0-zkvm-elf" >&2; exit 1; }
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "setup: installing Debian's postgresql (server binaries for the index tests)" >&2
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
