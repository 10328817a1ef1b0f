#!/usr/bin/env bash
# What `zkaudit quarantine guard` costs each execution: N executions
# (default 2000) of /bin/true from Python's subprocess, timed without the
# guard and with it guarding the mount of a scratch directory (here the
# root file system, so /bin/true is guarded too; it is hashed once, then
# found by inode), alternated REPS times (default 5). Prints each run and
# the medians in µs per execution. Needs root (fanotify permission events).
#
#   scripts/bench-guard.sh [N] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

N=${1:-2000}
REPS=${2:-5}
cargo build --locked -q -p zkaudit-cli
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkaudit-bench-guard.XXXXXX")
GUARD=""
cleanup() {
  if [ -n "$GUARD" ]; then kill "$GUARD" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
"$ZKAUDIT_BIN" log init "$WORK/ledger" --origin bench.zkaudit.invalid/guard >/dev/null

# One timed loop of N executions: microseconds per execution.
execs() {
  python3 - "$N" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1])
t = time.perf_counter()
for _ in range(n):
    subprocess.run(["/bin/true"], check=True)
print(f"{(time.perf_counter() - t) / n * 1e6:.1f}")
PY
}

plain=()
guarded=()
for rep in $(seq "$REPS"); do
  plain+=("$(execs)")
  mkfifo "$WORK/ready.$rep"
  "$ZKAUDIT_BIN" quarantine guard --ledger "$WORK/ledger" --mount "$WORK" >"$WORK/ready.$rep" &
  GUARD=$!
  read -r _ <"$WORK/ready.$rep"
  guarded+=("$(execs)")
  kill -TERM "$GUARD"
  wait "$GUARD"
  GUARD=""
  echo "run $rep: plain ${plain[-1]} µs, guarded ${guarded[-1]} µs per execution"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mp=$(median "${plain[@]}")
mg=$(median "${guarded[@]}")
echo "median of $REPS: plain $mp µs, guarded $mg µs per execution ($(python3 -c "print(f'{$mg/$mp:.2f}')")x, +$(python3 -c "print(f'{$mg-$mp:.1f}')") µs)"
