#!/usr/bin/env bash
# Sourced by the other scripts: makes sure a Rust toolchain (>= 1.89) is on PATH.
# Uses rustup's cargo when present; otherwise installs Debian's rustc-web/cargo-web
# (bookworm-security ships 1.9x). Nothing is downloaded outside the package registries.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"

rust_ok() {
  command -v cargo >/dev/null 2>&1 || return 1
  local v
  v=$(rustc --version 2>/dev/null | awk '{print $2}') || return 1
  [ "$(printf '%s\n' "1.89.0" "$v" | sort -V | head -n1)" = "1.89.0" ]
}

if ! rust_ok; then
  echo "setup: no Rust >= 1.89 found; installing Debian's rustc-web and cargo-web" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web gcc >/dev/null
  rust_ok || { echo "setup: could not get Rust >= 1.89" >&2; exit 1; }
fi
