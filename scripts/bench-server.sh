#!/usr/bin/env bash
# Benchmarks the proof server on loopback with wrk (Debian package `wrk`):
#   1. appends: 64 connections POST /v1/log/entries, BATCH events per request;
#   2. under that load, the latency of GET /v1/health and GET /v1/jobs/{id}
#      (4 connections each).
# Prints wrk's reports; events/s = requests/s × BATCH.
# Usage: scripts/bench-server.sh [BATCH (default 100)] [DURATION (default 20s)]
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-100}
DUR=${2:-20s}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 2; }
cargo build --locked --bin zkaudit
Z=target/debug/zkaudit
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
echo "== appends: 64 connections, $BATCH events per request, $DUR"
wrk -t2 -c64 -d"$DUR" --latency -s scripts/wrk-append.lua "$URL/v1/log/entries" > "$tmp/append.txt" &
w=$!
sleep 2
echo "== GET /v1/health under that load"
wrk -t1 -c4 -d10s --latency "$URL/v1/health"
echo "== GET /v1/jobs/{id} under that load"
wrk -t1 -c4 -d10s --latency -H "Authorization: Bearer $TOKEN" "$URL/v1/jobs/$JOB"
wait $w
cat "$tmp/append.txt"
rps=$(sed -n 's/^Requests\/sec: *//p' "$tmp/append.txt")
python3 -c "print(f'appended events/s: {float(\"$rps\") * $BATCH:,.0f}')"
size=$(curl -sf "$URL/v1/log/checkpoint" -H "Authorization: Bearer $TOKEN" | python3 -c "import json,sys; print(json.load(sys.stdin)['tree_size'])")
echo "ledger tree size after the run: $size"
$Z log verify "$tmp/ledger" >/dev/null && echo "ledger verifies (fsck) after the run"
