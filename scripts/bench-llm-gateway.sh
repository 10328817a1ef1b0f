#!/usr/bin/env bash
# Benchmarks `zkaudit llm-gateway` on loopback with wrk (Debian's `wrk`):
# the same chat completion (non-streamed, a short prompt, PII rules on) is
# sent to the stand-in upstream directly, through nginx as a bare reverse
# proxy (Debian's `nginx-light`: keep-alive to the upstream, no logging; the
# least any proxy on these cores adds), and through the gateway, with 1
# connection and then with CONNECTIONS, for DURATION each. Prints wrk's
# reports, the p50/p99 latencies side by side with what each proxy adds,
# and checks that the gateway recorded one llm_call event per call it took.
# Usage: scripts/bench-llm-gateway.sh [CONNECTIONS (default 64)] [DURATION (default 10s)]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
CONN=${1:-64}
DUR=${2:-10s}
command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null || apt_install nginx-light
cargo build --locked --bin zkaudit
Z=$ZKAUDIT_BIN
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
$Z log init "$tmp/ledger" --origin bench.example/llm >/dev/null 2>&1
TOKEN=$($Z token create "$tmp/ledger" --scope submit 2>/dev/null)
export TOKEN
printf '[models]\nallow = ["gpt-4o-mini"]\n[rate_limits]\nrequests_per_minute = 0\ntokens_per_minute = 0\n' > "$tmp/policy.toml"
$Z llm stand-in --listen 127.0.0.1:0 > "$tmp/upstream.out" &
pids+=($!)
until grep -q listening "$tmp/upstream.out" 2>/dev/null; do sleep 0.1; done
UP=$(sed -n 's/listening on //p' "$tmp/upstream.out")
$Z llm-gateway --listen 127.0.0.1:0 --upstream "$UP/v1" --policy "$tmp/policy.toml" --ledger "$tmp/ledger" --json > "$tmp/gateway.out" &
gw=$!
pids+=("$gw")
until grep -q listening "$tmp/gateway.out" 2>/dev/null; do sleep 0.1; done
GW=$(sed -n 's/listening on //p' "$tmp/gateway.out")
NGINX_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$tmp/nginx"
cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  upstream standin { server ${UP#http://}; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://standin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $NGINX_PORT), 1)" 2>/dev/null; do sleep 0.1; done
NG="http://127.0.0.1:$NGINX_PORT"
export BODY_FILE="$tmp/body.json" CONTENT_TYPE=application/json
echo '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0}' > "$BODY_FILE"
for c in 1 "$CONN"; do
  t=$((c < 2 ? 1 : 2))
  wrk -t"$t" -c"$c" -d"$DUR" --latency -s scripts/wrk-append.lua "$UP/v1/chat/completions" > "$tmp/direct-$c.txt"
  wrk -t"$t" -c"$c" -d"$DUR" --latency -s scripts/wrk-append.lua "$NG/v1/chat/completions" > "$tmp/nginx-$c.txt"
  wrk -t"$t" -c"$c" -d"$DUR" --latency -s scripts/wrk-append.lua "$GW/v1/chat/completions" > "$tmp/gateway-$c.txt"
done
kill -TERM "$gw"
wait "$gw" || true
for f in "$tmp"/direct-*.txt "$tmp"/nginx-*.txt "$tmp"/gateway-*.txt; do echo "== $(basename "$f" .txt)"; cat "$f"; done
size=$($Z log verify "$tmp/ledger" | sed -n 's/^ok size=\([0-9]*\).*/\1/p')
python3 - "$tmp" "$CONN" "$size" <<'PY'
import json, re, sys
tmp, conn, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def read(name):
    text = open(f"{tmp}/{name}.txt").read()
    p = {k: float(v) * unit[u] for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    n = int(re.search(r"(\d+) requests in", text).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return p, n, rps, int(non2xx.group(1)) if non2xx else 0
print("== latency (ms) and throughput: direct to the upstream, through nginx (a bare proxy), through the gateway; added = over direct")
print(f"{'connections':>11} {'path':>8} {'p50':>7} {'p99':>7} {'added p50':>9} {'p99':>7} {'rps':>7}")
calls = 0
for c in ["1", conn]:
    d, _, drps, _ = read(f"direct-{c}")
    print(f"{c:>11} {'direct':>8} {d['50']:>7.3f} {d['99']:>7.3f} {'':>9} {'':>7} {drps:>7.0f}")
    for path in ["nginx", "gateway"]:
        g, n, grps, bad = read(f"{path}-{c}")
        assert bad == 0, f"{bad} calls through {path} were not answered 2xx"
        if path == "gateway":
            calls += n
        print(f"{c:>11} {path:>8} {g['50']:>7.3f} {g['99']:>7.3f} {g['50']-d['50']:>9.3f} {g['99']-d['99']:>7.3f} {grps:>7.0f}")
report = json.loads(open(f"{tmp}/gateway.out").read().splitlines()[-1])
events = size - 3 - (report["policies"] - 1)  # less the start, stop and policy events
print(f"== recorded: {report['calls']} calls taken, {events} llm_call events in the ledger, {calls} answered to wrk "
      f"(wrk does not count the calls in flight when it stops); sink appended {report['sink']['appended']}, lost {report['sink']['lost']}")
assert events == report["calls"], "a call was not recorded"
assert report["calls"] >= calls
PY
