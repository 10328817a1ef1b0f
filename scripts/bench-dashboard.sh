#!/usr/bin/env bash
# The SOC dashboard's load times over a ledger of EVENTS events (default
# 10^6: the four example evidence streams plus background events over 30
# days, 64 hosts, 16 types), measured by the browser itself: Debian's
# chromium driven by playwright-core (tests-browser/dashboard.cjs timing),
# reading the Navigation Timing and Resource Timing entries of RUNS fresh
# loads (default 5). Prints each run's figures as JSON, then the medians.
#
#   scripts/bench-dashboard.sh [EVENTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

EVENTS=${1:-1000000}
RUNS=${2:-5}
cargo build --locked -q -p zkaudit-cli
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkaudit-bench-dashboard.XXXXXX")
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$ZKAUDIT_BIN" log init "$WORK/ledger" --origin bench.zkaudit.invalid/dashboard >/dev/null
cat examples/events/{telecoms,trading,gmp,itil}.jsonl >"$WORK/examples.jsonl"
python3 - "$EVENTS" "$(wc -l <"$WORK/examples.jsonl")" >"$WORK/background.jsonl" <<'EOF'
import json, sys
n = int(sys.argv[1]) - int(sys.argv[2])
types = ["rpc_call", "db_write", "db_read", "cache_miss", "login", "logout", "file_upload", "file_download",
         "config_read", "queue_publish", "queue_consume", "dns_lookup", "tls_handshake", "batch_job", "api_request", "metric_flush"]
t0 = 1767225600  # 2026-01-01T00:00:00Z
span = 30 * 86400
out = sys.stdout
for i in range(max(n, 0)):
    ns = t0 * 10**9 + span * 10**9 * i // max(n, 1)
    s, frac = divmod(ns, 10**9)
    h, rem = divmod(s % 86400, 3600)
    d = (s - t0) // 86400 + 1
    ts = "2026-01-%02dT%02d:%02d:%02d.%09dZ" % (d, h, rem // 60, rem % 60, frac)
    out.write(json.dumps({"version": "1.0", "timestamp": ts, "layer": "network" if i % 3 == 0 else "application",
                          "type": types[i % 16], "input": "sha256:%064x" % i, "output": "sha256:%064x" % ((i * 0x9E3779B97F4A7C15) % 2**64),
                          "metadata": {"host.name": "node-%d" % (i % 64), "seq": i}}, separators=(",", ":")) + "\n")
EOF
"$ZKAUDIT_BIN" log append "$WORK/ledger" "$WORK/examples.jsonl" >/dev/null
"$ZKAUDIT_BIN" log append "$WORK/ledger" "$WORK/background.jsonl" >/dev/null
"$ZKAUDIT_BIN" log reindex "$WORK/ledger" >/dev/null
TOKEN=$("$ZKAUDIT_BIN" token create "$WORK/ledger" --scope read)
"$ZKAUDIT_BIN" serve --workers 0 --addr 127.0.0.1:0 --dir "$WORK/ledger" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$WORK/serve.out" | head -n1)
[ -n "$URL" ] || { cat "$WORK/serve.err" >&2; exit 1; }

for i in $(seq 1 "$RUNS"); do
  NODE_PATH="$ZKAUDIT_NODE_PATH" node tests-browser/dashboard.cjs timing "$URL" "$TOKEN" "$WORK" | tee "$WORK/run-$i.json"
  echo
done
python3 - "$WORK" "$RUNS" "$EVENTS" <<'EOF'
import json, statistics, sys
work, runs, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rs = [json.load(open(f"{work}/run-{i}.json"))["timing"] for i in range(1, runs + 1)]
med = lambda xs: statistics.median(xs)
print(f"ledger: {events:,} events; {runs} fresh loads; medians:")
print(f"  first data (integrity answer received): {med([r['first_data_ms'] for r in rs]):.0f} ms")
print(f"  DOMContentLoaded: {med([r['nav']['dom_content_loaded'] for r in rs]):.0f} ms, load: {med([r['nav']['load'] for r in rs]):.0f} ms")
print(f"  every panel filled (wall): {med([r['wall_ms'] for r in rs]):.0f} ms")
names = sorted({p["name"] for r in rs for p in r["panels"]})
for n in names:
    xs = [p["ms"] for r in rs for p in r["panels"] if p["name"] == n]
    print(f"  {n:<12} median {med(xs):8.1f} ms  max {max(xs):8.1f} ms  ({len(xs)} requests)")
EOF
