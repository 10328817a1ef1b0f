#!/usr/bin/env bash
# Sourced by the other scripts. Makes sure both toolchains are present:
# * the host toolchain: a Rust >= 1.89 cargo (rustup's when present, else
#   Debian's rustc-web/cargo-web, bookworm-security ships 1.9x);
# * the RISC Zero guest toolchain: Debian's rustc-web, cargo-web and
#   rust-web-src (whose rustc knows riscv32im-risc0-zkvm-elf) plus lld-22,
#   used by crates/zkvm/build.rs under /usr/bin;
# * PostgreSQL's server binaries (Debian's postgresql), which the index,
#   job-store and server tests start on loopback in temporary directories;
# * shellcheck (Debian's), a gate of scripts/test.sh;
# * Debian's chromium and playwright-core (npm) for the dashboard's tests.
# Nothing is downloaded outside the package registries. Works as root (no
# sudo needed) and as a user with sudo.
#
# It also sets CARGO_TARGET_DIR (unless already set) to one persistent target
# directory outside the clone, shared by every script and by CI, so that a
# fresh clone on a machine that has built zkaudit before rebuilds only what
# changed. ZKAUDIT_BIN is the zkaudit binary the scripts build and run.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/zkaudit-target}"
export ZKAUDIT_BIN="$CARGO_TARGET_DIR/debug/zkaudit"

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# Installs Debian packages non-interactively (env passes the variable through
# sudo, which resets the environment).
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

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
  apt_install rustc-web cargo-web rust-web-src lld-22 gcc g++
  rust_ok || { echo "setup: could not get Rust >= 1.89" >&2; exit 1; }
  guest_ok || { echo "setup: the Debian toolchain does not target riscv32im-risc0-zkvm-elf" >&2; exit 1; }
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "setup: installing Debian's postgresql (server binaries for the tests)" >&2
  apt_install postgresql
fi

if ! command -v shellcheck >/dev/null 2>&1; then
  echo "setup: installing Debian's shellcheck (a gate of scripts/test.sh)" >&2
  apt_install shellcheck
fi
if ! command -v strace >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
  echo "setup: installing Debian's strace, gcc and python3 (the recorder's tests trace them)" >&2
  apt_install strace gcc python3
fi
if ! command -v tshark >/dev/null 2>&1 || ! command -v tcpdump >/dev/null 2>&1 || ! command -v dnsmasq >/dev/null 2>&1 ||
  ! command -v curl >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 ||
  ! command -v stress-ng >/dev/null 2>&1 || ! command -v git >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
  echo "setup: installing Debian's tshark, tcpdump, dnsmasq, curl, openssl (the capture tests), stress-ng (the host collector's live test), git and openssh-client (git ingest's signing test)" >&2
  apt_install tshark tcpdump dnsmasq-base curl openssl stress-ng git openssh-client
fi
if [ ! -e /usr/include/pcap/pcap.h ]; then
  echo "setup: installing Debian's libpcap-dev (zkaudit collect net links libpcap)" >&2
  apt_install libpcap-dev
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing Debian's npm (the registry gateway's tests install through it)" >&2
  apt_install npm
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium (the dashboard's tests drive it)" >&2
  apt_install chromium
fi
mkdir -p "$CARGO_TARGET_DIR"

# The dashboard's tests drive chromium with playwright-core (npm), installed
# from tests-browser/package-lock.json beside the build.
export ZKAUDIT_NODE_PATH="$CARGO_TARGET_DIR/browser/node_modules"
if ! cmp -s tests-browser/package-lock.json "$CARGO_TARGET_DIR/browser/package-lock.json" || [ ! -d "$ZKAUDIT_NODE_PATH/playwright-core" ]; then
  echo "setup: installing playwright-core (npm) into $CARGO_TARGET_DIR/browser" >&2
  mkdir -p "$CARGO_TARGET_DIR/browser"
  cp tests-browser/package.json tests-browser/package-lock.json "$CARGO_TARGET_DIR/browser/"
  npm ci --prefix "$CARGO_TARGET_DIR/browser" --no-audit --no-fund --loglevel=error >/dev/null
fi

# The LLM gateway's tests drive it with the official `openai` Python client
# (PyPI), kept in a virtual environment beside the build.
export ZKAUDIT_PYTHON="$CARGO_TARGET_DIR/py-openai/bin/python"
if ! "$ZKAUDIT_PYTHON" -c 'import openai' >/dev/null 2>&1; then
  echo "setup: installing the openai Python client (PyPI) into $CARGO_TARGET_DIR/py-openai" >&2
  python3 -m venv "$CARGO_TARGET_DIR/py-openai" >/dev/null 2>&1 || {
    apt_install python3-venv
    rm -rf "$CARGO_TARGET_DIR/py-openai"
    python3 -m venv "$CARGO_TARGET_DIR/py-openai"
  }
  "$CARGO_TARGET_DIR/py-openai/bin/pip" install -q 'openai==2.54.0'
fi

# The proof market's tests run an independent Nostr relay: the PyPI package
# nostr-relay (NIP-01 on SQLite; it rejects events with bad signatures), in
# a virtual environment beside the build.
export ZKAUDIT_NOSTR_RELAY="$CARGO_TARGET_DIR/py-nostr-relay/bin/nostr-relay"
if ! "$CARGO_TARGET_DIR/py-nostr-relay/bin/python" -c 'import nostr_relay' >/dev/null 2>&1; then
  echo "setup: installing nostr-relay (PyPI) into $CARGO_TARGET_DIR/py-nostr-relay" >&2
  rm -rf "$CARGO_TARGET_DIR/py-nostr-relay"
  python3 -m venv "$CARGO_TARGET_DIR/py-nostr-relay" >/dev/null 2>&1 || {
    apt_install python3-venv
    python3 -m venv "$CARGO_TARGET_DIR/py-nostr-relay"
  }
  "$CARGO_TARGET_DIR/py-nostr-relay/bin/pip" install -q 'nostr-relay==1.14'
fi

# The IPFS fallback's test runs a real IPFS node offline on loopback: npm's
# js-ipfs 0.66 (its HTTP API speaks the Kubo RPC; npm's kubo package would
# download a binary), installed from tests-ipfs/package-lock.json beside the
# build. It needs a Promise.withResolvers polyfill on Node 20.
export ZKAUDIT_JSIPFS="$CARGO_TARGET_DIR/ipfs/node_modules/.bin/jsipfs"
ZKAUDIT_JSIPFS_POLYFILL="$(pwd)/tests-ipfs/polyfill.cjs"
export ZKAUDIT_JSIPFS_POLYFILL
if ! cmp -s tests-ipfs/package-lock.json "$CARGO_TARGET_DIR/ipfs/package-lock.json" || [ ! -x "$ZKAUDIT_JSIPFS" ]; then
  echo "setup: installing js-ipfs (npm) into $CARGO_TARGET_DIR/ipfs" >&2
  mkdir -p "$CARGO_TARGET_DIR/ipfs"
  cp tests-ipfs/package.json tests-ipfs/package-lock.json "$CARGO_TARGET_DIR/ipfs/"
  # npm install, not npm ci: the lock is kept, but an optional dependency of
  # an optional dependency names a GitHub tarball, which npm ci refuses.
  npm install --prefix "$CARGO_TARGET_DIR/ipfs" --no-audit --no-fund --loglevel=error >/dev/null
  cp tests-ipfs/package-lock.json "$CARGO_TARGET_DIR/ipfs/package-lock.json"
fi
