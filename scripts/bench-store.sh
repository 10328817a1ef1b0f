#!/usr/bin/env bash
# Blossom throughput on loopback: `zkaudit store put` (preflight + upload,
# SHA-256 on both sides) and `zkaudit store get` (fresh cache, digest
# checked) against `zkaudit serve`'s /blossom, next to curl fetching the
# same file from a static file server (python3 -m http.server) in the same
# run. RUNS runs (default 5) of a SIZE_MB blob (default 32); prints each
# run's MB/s, then the medians.
#
#   scripts/bench-store.sh [SIZE_MB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

SIZE_MB=${1:-32}
RUNS=${2:-5}
cargo build --locked -q -p zkaudit-cli
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkaudit-bench-store.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$ZKAUDIT_BIN" log init "$WORK/ledger" --origin bench.zkaudit.invalid/store >/dev/null
"$ZKAUDIT_BIN" store keygen "$WORK/key.nsec" >/dev/null
mkfifo "$WORK/serve.out"
"$ZKAUDIT_BIN" serve --dir "$WORK/ledger" --addr 127.0.0.1:0 --workers 0 --blossom-max-bytes $((SIZE_MB * 2 * 1024 * 1024)) >"$WORK/serve.out" 2>/dev/null &
PIDS+=($!)
read -r _ _ URL <"$WORK/serve.out"
mkdir "$WORK/static"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/static" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1

mbps() { python3 -c "print(round($SIZE_MB / $1, 1))"; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print($e - $s)"; }
put=(); get=(); curl_static=(); curl_blossom=()
for i in $(seq "$RUNS"); do
  head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom >"$WORK/static/blob$i"
  H=$(sha256sum "$WORK/static/blob$i" | cut -c1-64)
  t=$(ZKAUDIT_STORE_CACHE="$WORK/cache-put$i" secs "$ZKAUDIT_BIN" store put "$WORK/static/blob$i" --store "blossom+$URL/blossom" --key "$WORK/key.nsec")
  put+=("$(mbps "$t")")
  t=$(ZKAUDIT_STORE_CACHE="$WORK/cache-get$i" secs "$ZKAUDIT_BIN" store get "$H" --store "blossom+$URL/blossom" -o "$WORK/got$i")
  get+=("$(mbps "$t")")
  cmp -s "$WORK/static/blob$i" "$WORK/got$i"
  t=$(secs curl -sf -o /dev/null "$URL/blossom/$H")
  curl_blossom+=("$(mbps "$t")")
  t=$(secs curl -sf -o /dev/null "http://127.0.0.1:$PORT/blob$i")
  curl_static+=("$(mbps "$t")")
  echo "{\"run\":$i,\"putMBps\":${put[-1]},\"getMBps\":${get[-1]},\"curlBlossomMBps\":${curl_blossom[-1]},\"curlStaticMBps\":${curl_static[-1]}}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "{\"sizeMB\":$SIZE_MB,\"runs\":$RUNS,\"median\":{\"putMBps\":$(median "${put[@]}"),\"getMBps\":$(median "${get[@]}"),\"curlBlossomMBps\":$(median "${curl_blossom[@]}"),\"curlStaticMBps\":$(median "${curl_static[@]}")}}"
