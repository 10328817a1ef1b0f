#!/usr/bin/env bash
# The telecoms pack's uptime rule, with its evidence taken from recorded
# network flows instead of hand-written service events (needs root for
# tcpdump, and Debian's tcpdump, curl, python3):
#   1. a web service (python3 -m http.server) on loopback is probed with
#      curl every 0.1 s while tcpdump captures; it is stopped for the middle
#      third of the probes (connections refused: Zeek conn_state REJ) and
#      started again;
#   2. the capture goes into a fresh ledger with `zkaudit ingest pcap`, and
#      a service_endpoint event declares that service "web" answers there;
#   3. `zkaudit compliance --pack telecoms` finds the outage in the flows:
#      the uptime rule fails, citing the first refused flow.
# Usage: run.sh [OUTDIR]  (ZKAUDIT_BIN overrides the binary)
set -euo pipefail
OUT=${1:-$(mktemp -d)}
Z=${ZKAUDIT_BIN:-/var/tmp/zkaudit-target/debug/zkaudit}
mkdir -p "$OUT"
cd "$OUT"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

start_web() {
  python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1 &
  web=$!
  # Wait until it listens (without connecting, which would be recorded).
  for _ in $(seq 100); do
    python3 -c 'import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))' "$PORT" && return
    sleep 0.05
  done
}
start_web
# --immediate-mode: packets reach tcpdump as they arrive, not when a
# kernel ring block fills or times out (a block still pending when tcpdump
# stops is lost: the last second of traffic, or all of a short run).
tcpdump -i lo --immediate-mode -U -w web.pcap "tcp port $PORT" 2>tcpdump.err &
pids+=($!)
for _ in $(seq 300); do grep -q "listening on" tcpdump.err 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" tcpdump.err || { echo "run.sh: tcpdump did not start" >&2; cat tcpdump.err >&2; exit 1; }
for i in $(seq 30); do
  if [ "$i" -eq 11 ]; then kill "$web"; wait "$web" 2>/dev/null || true; fi
  if [ "$i" -eq 21 ]; then start_web; fi
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || true
  sleep 0.1
done
kill "$web"
sleep 0.5
kill -INT "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true

rm -rf ledger
"$Z" log init ledger --origin example.com/telecoms-flows >/dev/null
printf '{"version":"1.0","timestamp":"%s","layer":"application","type":"service_endpoint","input":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","output":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","metadata":{"service":"web","ip":"127.0.0.1","port":%d}}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$PORT" | "$Z" log append ledger >/dev/null
"$Z" ingest pcap --ledger ledger web.pcap
"$Z" query ledger "availability(web, Percent, Outages, _)."
"$Z" compliance ledger --pack telecoms --json > report.json || true
python3 - report.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
up = next(x for x in r["rules"] if x["id"] == "uptime")
print("uptime:", up["verdict"], [v["reason"] for v in up["violations"]])
assert up["verdict"] == "fail" and len(up["violations"]) == 1, up
assert "outage_ms(" in up["violations"][0]["reason"], up
print("as expected: the outage was found in the recorded flows")
PY
