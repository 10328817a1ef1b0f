#!/usr/bin/env bash
# The whole test suite: unit, integration, crash-safety and CLI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo test --workspace --locked "$@"
