#!/usr/bin/env bash
# Captures real traffic on the loopback interface into OUT/lo.pcap (needs
# root for tcpdump, and Debian's tcpdump, dnsmasq, openssl, curl, python3):
#   * two HTTP/1.1 requests (GET with a User-Agent, POST with a body) to
#     python3 -m http.server;
#   * two TLS handshakes to openssl s_server: TLS 1.3 with SNI
#     sni.zkaudit.test and ALPN h2, and TLS 1.2 with SNI old.zkaudit.test
#     (whose certificate is visible on the wire);
#   * two DNS queries over UDP to dnsmasq on 127.0.0.53:53: one answered
#     (www.zkaudit.test A 10.9.8.7), one refused.
# Then: zkaudit ingest pcap --ledger L OUT/lo.pcap
set -euo pipefail
OUT=${1:?usage: capture.sh OUTDIR}
mkdir -p "$OUT"
cd "$OUT"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
TLS_PORT=$(free_port)
DNS_ADDR=127.0.0.53

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
  -days 2 -subj /CN=zkaudit.test 2>/dev/null
echo hello > index.html

# --immediate-mode: packets reach tcpdump as they arrive, not when a
# kernel ring block fills or times out (a block still pending when tcpdump
# stops is lost: the last second of traffic, or all of a short run).
tcpdump -i lo --immediate-mode -U -w lo.pcap "port $HTTP_PORT or port $TLS_PORT or (host $DNS_ADDR and port 53)" 2>tcpdump.err &
pids+=($!)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 >/dev/null 2>&1 &
pids+=($!)
openssl s_server -accept "$TLS_PORT" -cert cert.pem -key key.pem -alpn h2,http/1.1 -www -quiet >/dev/null 2>&1 &
pids+=($!)
dnsmasq --no-daemon --port=53 --listen-address="$DNS_ADDR" --bind-interfaces --no-resolv --no-hosts \
  --address=/zkaudit.test/10.9.8.7 >/dev/null 2>&1 &
pids+=($!)
# Wait for tcpdump and the servers to listen (30 s at most each).
wait_for() {
  local what=$1
  shift
  for _ in $(seq 300); do
    "$@" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "capture.sh: $what did not come up" >&2
  cat tcpdump.err >&2
  exit 1
}
wait_for tcpdump grep -q "listening on" tcpdump.err
wait_for "the HTTP server" python3 -c 'import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))' "$HTTP_PORT"
wait_for "the TLS server" python3 -c 'import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))' "$TLS_PORT"

curl -s -A zkaudit-test/1 "http://127.0.0.1:$HTTP_PORT/index.html" -o /dev/null
curl -s -X POST -d 'abc=1' "http://127.0.0.1:$HTTP_PORT/" -o /dev/null
echo | timeout 5 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername sni.zkaudit.test -alpn h2 >/dev/null 2>&1
echo | timeout 5 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername old.zkaudit.test -tls1_2 >/dev/null 2>&1
python3 - "$DNS_ADDR" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i, name in enumerate(["www.zkaudit.test", "nx.example.invalid"]):
    q = struct.pack(">HHHHHH", 0x4242 + i, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    for _ in range(20):
        s.sendto(q, (sys.argv[1], 53))
        try:
            s.recv(512)
            break
        except socket.timeout:
            pass
PY
# Stop tcpdump cleanly (it writes what it holds) and check it saw traffic.
sleep 0.5
kill -INT "${pids[0]}"
wait "${pids[0]}" || true
if [ "$(stat -c %s lo.pcap)" -le 24 ]; then
  echo "capture.sh: tcpdump captured nothing" >&2
  cat tcpdump.err >&2
  exit 1
fi
