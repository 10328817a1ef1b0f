#!/usr/bin/env bash
# Benchmarks the proof server on loopback with wrk (Debian package `wrk`):
#   1. appends: 64 connections POST /v1/log/entries, BATCH events per request;
#   2. the latency of GET /v1/health and GET /v1/jobs/{id} (4 connections
#      each), first with no other load (baseline), then side by side for 10 s
#      under the append load.
# Prints wrk's reports, events/s (= requests/s × BATCH) and p50/p99 of the
# status endpoints idle and under load.
# Usage: scripts/bench-server.sh [BATCH (default 100)] [DURATION (default 20s, at least 13s)]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
BATCH=${1:-100}
DUR=${2:-20s}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 2; }
cargo build --locked --bin zkaudit
Z=$ZKAUDIT_BIN
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
$Z log init "$tmp/ledger" --origin bench.example/log >/dev/null 2>&1
TOKEN=$($Z token create "$tmp/ledger" --scope submit 2>/dev/null)
export TOKEN
$Z serve --dir "$tmp/ledger" --addr 127.0.0.1:0 --workers 0 > "$tmp/out" &
pid=$!
until grep -q listening "$tmp/out" 2>/dev/null; do sleep 0.1; done
URL=$(sed -n 's/listening on //p' "$tmp/out")
# The body: the first BATCH example events (repeated as needed).
export BODY_FILE="$tmp/body.jsonl"
cat examples/events/*.jsonl | python3 -c "
import sys
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
n = int(sys.argv[1])
sys.stdout.write(''.join(lines[i % len(lines)] + '\n' for i in range(n)))" "$BATCH" > "$BODY_FILE"
# A job to poll (no workers: it stays queued).
JOB=$(python3 -c "
import json
print(json.dumps({'plan': open('examples/income-threshold/plan.yaml').read(),
                  'data': {'payments': {'csv': open('examples/income-threshold/payments.csv').read()}},
                  'mode': 'execute-only'}))" | curl -sf -X POST -H "Authorization: Bearer $TOKEN" --data-binary @- "$URL/v1/jobs" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
# Baseline: the status endpoints with no other load, 5 s each.
wrk -t1 -c4 -d5s --latency "$URL/v1/health" > "$tmp/health0.txt"
wrk -t1 -c4 -d5s --latency -H "Authorization: Bearer $TOKEN" "$URL/v1/jobs/$JOB" > "$tmp/job0.txt"
# Appends, and 2 s in, both status endpoints side by side for 10 s.
wrk -t2 -c64 -d"$DUR" --latency -s scripts/wrk-append.lua "$URL/v1/log/entries" > "$tmp/append.txt" &
w=$!
sleep 2
wrk -t1 -c4 -d10s --latency "$URL/v1/health" > "$tmp/health1.txt" &
h=$!
wrk -t1 -c4 -d10s --latency -H "Authorization: Bearer $TOKEN" "$URL/v1/jobs/$JOB" > "$tmp/job1.txt" &
j=$!
wait $h $j $w
for f in append health0 job0 health1 job1; do echo "== $f"; cat "$tmp/$f.txt"; done
echo "== status latency (ms), idle vs. under the append load"
python3 - "$tmp" <<'PY'
import re, sys
def pct(name):
    text = open(f"{sys.argv[1]}/{name}.txt").read()
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    out = {}
    for p in ("50", "99"):
        v, u = re.search(rf"^\s*{p}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
        out[p] = float(v) * unit[u]
    return out
print(f"{'endpoint':<18}{'idle p50':>10}{'idle p99':>10}{'load p50':>10}{'load p99':>10}{'p99 ratio':>11}")
for name, label in (("health", "GET /v1/health"), ("job", "GET /v1/jobs/{id}")):
    a, b = pct(name + "0"), pct(name + "1")
    print(f"{label:<18}{a['50']:>10.2f}{a['99']:>10.2f}{b['50']:>10.2f}{b['99']:>10.2f}{b['99'] / a['99']:>10.1f}x")
PY
rps=$(sed -n 's/^Requests\/sec: *//p' "$tmp/append.txt")
python3 -c "print(f'appended events/s: {float(\"$rps\") * $BATCH:,.0f}')"
size=$(curl -sf "$URL/v1/log/checkpoint" -H "Authorization: Bearer $TOKEN" | python3 -c "import json,sys; print(json.load(sys.stdin)['tree_size'])")
echo "ledger tree size after the run: $size"
$Z log verify "$tmp/ledger" >/dev/null && echo "ledger verifies (fsck) after the run"
